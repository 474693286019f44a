#!/usr/bin/env python3
"""tts_bench.py - speech synthesis speed and intelligibility per voice.

For each voice (flite kal16, rms, slt, awb; espeak-ng en):
  speed: `scribed speak` of ~2000 characters (the ten test sentences, five
         times) as pcm (synthesis + resampling) and as mp3 (+ encoding);
         seconds of audio per second of CPU (the child's user + system time).
  WER:   each of the ten sentences of tests/integration/speech_corpus.py
         synthesised alone (wav), recognised by Debian's pocketsphinx
         (en-us model), word error rate over all of them.
Then time to first byte for the same 2000 characters over HTTP (POST
/v1/audio/speech, default voice, mp3 and pcm, cache off) against the whole
response's time, and the same request with the cache on: the miss, then
the hit.
Prints a markdown table for docs/PERFORMANCE.md.

  /usr/bin/python3 bench/tts_bench.py [--voices flite-rms,...] [--no-wer]
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from speech_corpus import SENTENCES, recognise, wer, words  # noqa: E402

BIN = os.environ.get("SCRIBED_BIN") or os.path.join(REPO, "build", "scribed")
VOICES = ["flite-kal16", "flite-rms", "flite-slt", "flite-awb", "espeak-en"]
LONG = " ".join(SENTENCES * 5)


def child_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def speak(voice, fmt, text, out):
    subprocess.run([BIN, "speak", "--voice", voice, "--format", fmt, "--output", out, text],
                   check=True)


def speed(voice, fmt, tmp, rounds=3):
    best = None
    for _ in range(rounds):
        out = os.path.join(tmp, f"speed.{fmt}")
        c0 = child_cpu()
        speak(voice, fmt, LONG, out)
        cpu = child_cpu() - c0
        best = cpu if best is None else min(best, cpu)
    pcm = os.path.join(tmp, "speed.pcm")
    speak(voice, "pcm", LONG, pcm)
    audio_s = os.path.getsize(pcm) / 48000.0
    return audio_s, best


def voice_wer(voice, tmp):
    errors = total = 0
    for i, s in enumerate(SENTENCES):
        out = os.path.join(tmp, f"{voice}-{i}.wav")
        speak(voice, "wav", s, out)
        n = len(words(s))
        errors += wer(s, recognise(out)) * n
        total += n
    return errors / total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(base, fmt):
    t0 = time.monotonic()
    r = requests.post(base + "/v1/audio/speech", stream=True, timeout=300,
                      json={"model": "tts-1", "voice": "alloy", "input": LONG, "response_format": fmt})
    it = r.iter_content(chunk_size=None)
    first = next(it)
    t1 = time.monotonic()
    n = len(first) + sum(len(c) for c in it)
    return t1 - t0, time.monotonic() - t0, n, r.headers.get("X-Cache", "-")


def serve(tmp, model, name, *args):
    port = free_port()
    log = open(os.path.join(tmp, name + ".log"), "w")
    p = subprocess.Popen([BIN, "serve", "--port", str(port), "--data-dir", os.path.join(tmp, name),
                          "--model", model, "--workers", "2", *args], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return p, base


def cache_rows(tmp, model):
    p, base = serve(tmp, model, "cached")
    try:
        return [timed(base, "mp3"), timed(base, "mp3")]
    finally:
        p.terminate()
        p.wait()


def ttfb(tmp, model):
    p, base = serve(tmp, model, "uncached", "--speech-cache-mb", "0")
    try:
        rows = []
        for fmt in ("mp3", "pcm"):
            best = min((timed(base, fmt) for _ in range(3)), key=lambda t: t[0])
            rows.append((fmt,) + best[:3])
        return rows
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voices", default=",".join(VOICES))
    ap.add_argument("--no-wer", action="store_true")
    ap.add_argument("--model", default=os.path.join(
        os.environ.get("SCRIBED_SHARED", os.path.join(REPO, "..", "shared")), "reference",
        "micro-en.f16.bin"))
    a = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    print(f"CPU: {cpu}; input {len(LONG)} characters\n")
    print("| voice | audio s | pcm: audio s per CPU s | mp3: audio s per CPU s | WER (10 sentences) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for v in a.voices.split(","):
            audio_s, cpu_pcm = speed(v, "pcm", tmp)
            _, cpu_mp3 = speed(v, "mp3", tmp)
            w = "" if a.no_wer else f"{100 * voice_wer(v, tmp):.1f} %"
            print(f"| {v} | {audio_s:.1f} | {audio_s / cpu_pcm:.0f} | {audio_s / cpu_mp3:.0f} | {w} |",
                  flush=True)
        print("\n| format | time to first byte | whole response | bytes |")
        print("|---|---|---|---|")
        for fmt, first, whole, n in ttfb(tmp, a.model):
            print(f"| {fmt} | {1000 * first:.0f} ms | {1000 * whole:.0f} ms | {n} |", flush=True)
        print("\n| cache (mp3, same request twice) | first byte | whole response | bytes |")
        print("|---|---|---|---|")
        for first, whole, n, result in cache_rows(tmp, a.model):
            print(f"| {result} | {1000 * first:.0f} ms | {1000 * whole:.0f} ms | {n} |", flush=True)


if __name__ == "__main__":
    main()
