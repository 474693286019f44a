#!/usr/bin/env python3
"""Jobs per minute through the async API on the micro model: PostgreSQL
shared queue (one API-only node + N `scribed worker` processes of one worker
thread each) against SQLite (one `scribed serve --workers N`), and the time a
dead worker's job takes to start again elsewhere.

  SCRIBED_SHARED=/work/shared bench/scaleout_throughput.py [--jobs 60] [--workers 1,2,3]

  ... --move-only   only the dead-worker measurement (default lease, 20 s)

Prints one line per run. Uses tests/pg/pg.sh for a private cluster."""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave

import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.environ.get("SCRIBED_SHARED", os.path.join(REPO, "..", "shared"))
BIN = os.environ.get("SCRIBED_BIN", os.path.join(REPO, "build", "scribed"))
MODEL = os.path.join(SHARED, "reference", "micro-en.f16.bin")
AUDIO = os.path.join(SHARED, "reference", "b_sentence.wav")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, data, args, log):
    port = free_port()
    p = subprocess.Popen([BIN, cmd, "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                          data, "--model", MODEL, "--threads", "1", "--rate-limit-ip-rpm", "0", *args],
                         stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                return p, base
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{cmd} did not start: see {log}")


def run_jobs(api, n):
    t0 = time.time()
    ids = []
    for _ in range(n):
        with open(AUDIO, "rb") as f:
            r = requests.post(api + "/v1/jobs", files={"file": ("b.wav", f, "audio/wav")},
                              timeout=60)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    pending = set(ids)
    while pending:
        for jid in list(pending):
            st = requests.get(f"{api}/v1/jobs/{jid}", timeout=10).json()["status"]
            if st in ("succeeded", "failed", "cancelled"):
                assert st == "succeeded", st
                pending.discard(jid)
        time.sleep(0.05)
    return n / ((time.time() - t0) / 60)


def long_wav(path, seconds=30):
    src = os.path.join(SHARED, "reference", "a_short.wav")
    with wave.open(src) as w:
        params, frames, n = w.getparams(), w.readframes(w.getnframes()), w.getnframes()
    with wave.open(path, "wb") as out:
        out.setparams(params)
        out.writeframes(frames * (int(seconds * params.framerate / n) + 1))
    return path


def measure_move(root, url):
    """kill -9 the worker running a job; seconds until another worker starts it."""
    db = f"move_{os.getpid()}"
    subprocess.run(["psql", url, "-qc", f"CREATE DATABASE {db}"], check=True)
    dburl = url.rsplit("/", 1)[0] + "/" + db
    d = tempfile.mkdtemp(dir=root)
    procs = []
    p, api = start("serve", d + "/a", ["--workers", "0", "--database-url", dburl], d + "/a.log")
    procs.append(p)
    workers = [start("worker", f"{d}/w{k}", ["--workers", "1", "--database-url", dburl],
                     f"{d}/w{k}.log") for k in range(2)]
    procs += [w for w, _ in workers]
    with open(long_wav(d + "/long.wav"), "rb") as f:
        jid = requests.post(api + "/v1/jobs", files={"file": ("l.wav", f, "audio/wav")},
                            timeout=60).json()["id"]
    while requests.get(f"{api}/v1/jobs/{jid}", timeout=5).json()["status"] != "running":
        time.sleep(0.02)
    # "running" in the store comes at the claim; the worker runs it once its upload is fetched
    victim = None
    while victim is None:
        victim = next((w for w, base in workers
                       if requests.get(base + "/health", timeout=5).json()["jobs_running"] == 1),
                      None)
        time.sleep(0.02)
    victim.kill()
    victim.wait()
    t0 = time.time()
    while requests.get(f"{api}/v1/jobs/{jid}", timeout=5).json()["attempts"] < 2:
        time.sleep(0.05)
    moved = time.time() - t0
    procs.remove(victim)
    stop(procs)
    print(f"dead worker: job restarted on the other worker {moved:.1f} s after kill -9 "
          f"(default lease 20 s, poll 5 s)", flush=True)


def load():
    """The machine's load average: other work on the box skews jobs/min."""
    return "load %.2f %.2f %.2f" % os.getloadavg()


def stop(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=60)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--move-only", action="store_true")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="scribed-bench-")
    os.chmod(root, 0o755)
    pg = os.path.join(root, "pg")
    url = subprocess.run([os.path.join(REPO, "tests", "pg", "pg.sh"), "start", pg], check=True,
                         capture_output=True, text=True).stdout.strip()
    try:
        if a.move_only:
            measure_move(root, url)
            return 0
        for n in [int(x) for x in a.workers.split(",")]:
            d = tempfile.mkdtemp(dir=root)
            p, api = start("serve", d + "/s", ["--workers", str(n)], d + "/s.log")
            jpm = run_jobs(api, a.jobs)
            stop([p])
            print(f"sqlite   workers={n} jobs={a.jobs} {jpm:.0f} jobs/min {load()}", flush=True)
            db = f"b{n}_{os.getpid()}"
            subprocess.run(["psql", url, "-qc", f"CREATE DATABASE {db}"], check=True)
            dburl = url.rsplit("/", 1)[0] + "/" + db
            procs = []
            p, api = start("serve", d + "/a", ["--workers", "0", "--database-url", dburl],
                           d + "/a.log")
            procs.append(p)
            for k in range(n):
                w, _ = start("worker", f"{d}/w{k}", ["--workers", "1", "--database-url", dburl],
                             f"{d}/w{k}.log")
                procs.append(w)
            jpm = run_jobs(api, a.jobs)
            stop(procs)
            print(f"postgres workers={n} jobs={a.jobs} {jpm:.0f} jobs/min "
                  f"(1 API node + {n} worker processes, separate data dirs) {load()}", flush=True)
        measure_move(root, url)
    finally:
        subprocess.run([os.path.join(REPO, "tests", "pg", "pg.sh"), "stop", pg])
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
