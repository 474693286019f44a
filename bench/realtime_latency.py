#!/usr/bin/python3
"""Realtime latency benchmark (not a timed test): how long after the last audio
of an utterance its final segment arrives, streaming at real-time pace.

Starts `scribed serve` (1 worker x THREADS compute threads, Silero VAD) with the
given model, streams a signal of reference utterances separated by silence in
100 ms chunks at real-time pace over /v1/realtime, and for each final segment
reports
  after_speech: final received - send time of the chunk holding the last speech
                sample (span end - speech pad), i.e. what a user waits after
                they stop talking;
  after_span:   final received - send time of the chunk holding the span's end.
It also prints the server's decode times (job.done run_s) for context.

  /usr/bin/python3 bench/realtime_latency.py --model /tmp/base-en.f16.bin
Model: build/mkmodel -v ../shared/reference/vocab-base.en.bin -o /tmp/base-en.f16.bin -p base -t f16 -s 1
"""
import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave

import requests
import websockets

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.environ.get("SCRIBED_SHARED") or os.path.abspath(os.path.join(REPO, "..", "shared"))
PAD_S = 0.1  # scribed's default speech_pad_ms


def pcm_of(name):
    with wave.open(os.path.join(SHARED, "reference", name)) as w:
        return w.readframes(w.getnframes())


def signal(n_utts, gap_s):
    parts = [pcm_of("a_short.wav"), pcm_of("b_sentence.wav")]
    gap = b"\x00\x00" * int(16000 * gap_s)
    out = gap
    for i in range(n_utts):
        out += parts[i % 2] + gap
    return out


async def run(port, pcm):
    sent = []  # (sample offset after the chunk, time sent)
    finals = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/realtime", max_size=None) as ws:
        await ws.send(json.dumps({"language": "en", "sample_rate": 16000, "format": "pcm_s16le"}))
        assert json.loads(await ws.recv())["type"] == "ready"

        async def reader():
            async for m in ws:
                o = json.loads(m)
                if o["type"] == "segments":
                    for s in o["segments"]:
                        if s["final"]:
                            finals.append((time.monotonic(), s))

        task = asyncio.create_task(reader())
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(pcm), 3200)):
            # real-time pace against the clock, not sleep drift
            await asyncio.sleep(max(0.0, t0 + k * 0.1 - time.monotonic()))
            await ws.send(pcm[i:i + 3200])
            sent.append(((i + 3200) // 2, time.monotonic()))
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(task, 600)
    return sent, finals


def sent_time(sent, sample):
    for end, t in sent:
        if end >= sample:
            return t
    return sent[-1][1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/tmp/base-en.f16.bin")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--utterances", type=int, default=8)
    ap.add_argument("--gap-s", type=float, default=1.5)
    ap.add_argument("--bin", default=os.environ.get("SCRIBED_BIN") or os.path.join(REPO, "build", "scribed"))
    a = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="rtbench-")
    log = open(os.path.join(data, "server.log"), "w+")
    proc = subprocess.Popen([a.bin, "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--data-dir", data, "--model", a.model, "--workers", "1",
                             "--threads", str(a.threads), "--vad-model",
                             os.path.join(SHARED, "models", "silero-v6.2.0.bin")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        pcm = signal(a.utterances, a.gap_s)
        sent, finals = asyncio.run(run(port, pcm))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    after_speech, after_span = [], []
    for t, s in finals:
        end = round(s["end"] * 16000)
        after_span.append(t - sent_time(sent, end))
        after_speech.append(t - sent_time(sent, end - int(PAD_S * 16000)))
        print(f"utt {s['id']}: {s['start']:7.3f}-{s['end']:7.3f} s  after_speech {after_speech[-1]:.3f} s"
              f"  after_span {after_span[-1]:.3f} s")
    log.seek(0)
    runs = [json.loads(l)["run_s"] for l in log if '"job.done"' in l]
    print(f"model={a.model} threads={a.threads} utterances={len(finals)} audio={len(pcm) / 32000:.1f} s")
    print(f"decodes={len(runs)} decode run_s median={statistics.median(runs):.3f} max={max(runs):.3f}")
    print(f"latency after_speech median={statistics.median(after_speech):.3f} s "
          f"p90={sorted(after_speech)[int(0.9 * (len(after_speech) - 1))]:.3f} s")
    print(f"latency after_span   median={statistics.median(after_span):.3f} s")


if __name__ == "__main__":
    sys.exit(main())
