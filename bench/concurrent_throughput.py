#!/usr/bin/env python3
"""concurrent_throughput.py - what shared decoding steps buy a busy server.

Starts `scribed serve` (--workers workers, --threads compute threads each,
no VAD so every request decodes the whole clip) once with --batch-decode 0
and once with 1, alternating for --rounds, and each time sends --requests
synchronous transcriptions of the clip (--beam, --no-fallback), --concurrency
at a time. Prints one
key=value line per run and the best of each setting:

  batch=B wall_s=... requests_per_min=... audio_x_realtime=...
  decode_batches=... decode_batch_steps=... (from /metrics)

Run with Debian's python3 (python3-requests):
  /usr/bin/python3 bench/concurrent_throughput.py --model /tmp/base-en.f16.bin
"""
import argparse
import concurrent.futures
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import wave

import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.environ.get("SCRIBED_SHARED") or os.path.abspath(os.path.join(REPO, "..", "shared"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(a, batch, data):
    port = free_port()
    log = open(os.path.join(data, f"server-{batch}.log"), "w")
    pin = ["taskset", "-c", a.taskset] if a.taskset else []
    proc = subprocess.Popen(pin + [a.bin, "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--data-dir", data, "--model", a.model,
                             "--workers", str(a.workers), "--threads", str(a.threads),
                             "--batch-decode", str(batch), "--max-queue", "1000"],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("scribed did not become healthy")


def transcribe(port, clip, a):
    with open(clip, "rb") as f:
        r = requests.post(f"http://127.0.0.1:{port}/v1/audio/transcriptions",
                          files={"file": ("clip.wav", f, "audio/wav")},
                          data={"model": "whisper-1", "response_format": "json", "beam_size": str(a.beam),
                                "vad_filter": "false", "temperature": "0",
                                "no_fallback": "true" if a.no_fallback else "false"},
                          timeout=3600)
    if r.status_code != 200:
        sys.exit(f"transcription failed: {r.status_code} {r.text}")
    return r.json()["text"]


def metric(text, name):
    m = re.search(rf"^{name} (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def one_run(a, batch, clip, audio_s):
    data = tempfile.mkdtemp(prefix="tput-")
    proc, port = start(a, batch, data)
    try:
        transcribe(port, clip, a)  # warm: model pages, allocator
        m0 = requests.get(f"http://127.0.0.1:{port}/metrics").text
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(a.concurrency) as ex:
            texts = list(ex.map(lambda _: transcribe(port, clip, a), range(a.requests)))
        wall = time.monotonic() - t0
        m1 = requests.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    batches = metric(m1, "scribed_decode_batches_total") - metric(m0, "scribed_decode_batches_total")
    steps = (metric(m1, "scribed_decode_batch_steps_total")
             - metric(m0, "scribed_decode_batch_steps_total"))
    print(f"batch={batch} wall_s={wall:.2f} requests_per_min={60 * a.requests / wall:.1f} "
          f"audio_x_realtime={a.requests * audio_s / wall:.1f} decode_batches={batches} "
          f"decode_batch_steps={steps} distinct_texts={len(set(texts))}", flush=True)
    return wall, set(texts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/tmp/base-en.f16.bin")
    ap.add_argument("--clip", default=os.path.join(SHARED, "reference", "c_passage.wav"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--no-fallback", action="store_true", help="one temperature per window")
    ap.add_argument("--taskset", help="CPU list the server may use (e.g. 0: one core)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bin", default=os.environ.get("SCRIBED_BIN") or os.path.join(REPO, "build", "scribed"))
    a = ap.parse_args()
    with wave.open(a.clip) as w:
        audio_s = w.getnframes() / w.getframerate()
    print(f"model={a.model} clip={os.path.basename(a.clip)} audio_s={audio_s:.1f} "
          f"cpus={a.taskset or 'all'} workers={a.workers} threads={a.threads} requests={a.requests} "
          f"concurrency={a.concurrency} beam={a.beam} no_fallback={a.no_fallback}", flush=True)
    best, texts = {0: 1e30, 1: 1e30}, {0: set(), 1: set()}
    for _ in range(a.rounds):
        for batch in (0, 1):
            wall, t = one_run(a, batch, a.clip, audio_s)
            best[batch] = min(best[batch], wall)
            texts[batch] |= t
    print(f"best_wall_s_unbatched={best[0]:.2f} best_wall_s_batched={best[1]:.2f} "
          f"ratio={best[1] / best[0]:.3f} same_text={texts[0] == texts[1] and len(texts[0]) == 1}")


if __name__ == "__main__":
    sys.exit(main())
