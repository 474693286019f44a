#!/usr/bin/env python3
"""memory_by_length.py - a job's peak memory against the length of its audio.

For each length (minutes, default 1, 60, 120, 240) it writes a FLAC of
silence with the reference utterance every --every seconds, starts a fresh
`scribed serve` (one worker, VAD on), submits the file as a job, waits for
it and prints one line with the server's peak resident size (VmHWM, the
decoder child excluded: it is another process) and the job's wall time:

  minutes=240 audio_s=14400.0 peak_rss_mb=64.1 job_s=... rtf=...

Since the pipeline decodes in passes (src/pipeline/passes.h) the peak should
not grow with the length; before, a job held 4 bytes per sample of decoded
audio (+230 MB per hour). --bin compares another build.

Run with Debian's python3 (python3-requests); ffmpeg makes the FLACs:
  /usr/bin/python3 bench/memory_by_length.py [--bin build/scribed] [--minutes 1,60,240]
"""
import argparse
import os
import platform
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


def make_flac(path, seconds, every_s):
    """`seconds` of silence with the reference utterance every `every_s` seconds, as FLAC."""
    with wave.open(os.path.join(SHARED, "reference", "a_short.wav")) as w:
        params, speech = w.getparams(), w.readframes(w.getnframes())
    silence = b"\0\0" * params.framerate
    ff = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-y", "-f", "s16le", "-ar",
                           str(params.framerate), "-ac", "1", "-i", "-", path],
                          stdin=subprocess.PIPE)
    for second in range(int(seconds)):
        ff.stdin.write(speech if second % every_s == 0 else silence)
    ff.stdin.close()
    if ff.wait() != 0:
        sys.exit("ffmpeg failed")


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(binary, model, vad, path):
    data = tempfile.mkdtemp(prefix="scribed-mem-")
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--data-dir", data, "--model", model, "--vad-model", vad,
                             "--workers", "1", "--max-file-size-mb", "2000",
                             "--max-audio-s", "86400"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if requests.get(base + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        t0 = time.time()
        with open(path, "rb") as f:
            job = requests.post(base + "/v1/jobs", files={"file": (os.path.basename(path), f)},
                                timeout=600).json()
        while True:
            j = requests.get(base + "/v1/jobs/" + job["id"], timeout=10).json()
            if j["status"] not in ("queued", "running"):
                break
            time.sleep(0.5)
        if j["status"] != "succeeded":
            sys.exit(f"job failed: {j}")
        return peak_rss_mb(proc.pid), time.time() - t0, j["timings"]["audio_seconds"]
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "scribed"))
    ap.add_argument("--model", default=os.path.join(SHARED, "reference", "micro-en.f16.bin"))
    ap.add_argument("--vad", default=os.path.join(SHARED, "models", "silero-v6.2.0.bin"))
    ap.add_argument("--minutes", default="1,60,120,240")
    ap.add_argument("--every", type=int, default=300, help="seconds between utterances")
    a = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    print(f"cpu={cpu!r} cores={os.cpu_count()} bin={a.bin}")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in (float(m) for m in a.minutes.split(",")):
            path = os.path.join(tmp, f"{minutes:g}min.flac")
            make_flac(path, minutes * 60, min(a.every, max(1, int(minutes * 60 / 3))))
            peak, wall, audio = run(a.bin, a.model, a.vad, path)
            print(f"minutes={minutes:g} audio_s={audio:.1f} peak_rss_mb={peak:.1f} "
                  f"job_s={wall:.1f} rtf={wall / audio:.4f}", flush=True)
            os.unlink(path)


if __name__ == "__main__":
    main()
