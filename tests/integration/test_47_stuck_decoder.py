"""A stopped (SIGSTOP) or stalled audio decoder child cannot wedge a worker:
/health says degraded and /metrics counts the stuck worker once the decoder
has been silent past --stuck-worker-s, DELETE kills the child at once and
frees the worker, and without a cancel the wall limit (--decode-timeout-s
plus --decode-ms-per-audio-s per second of audio delivered) fails the job
with a timeout instead of holding it for 10 minutes."""
import os
import signal
import time

import pytest
import requests

from conftest import make_wav, micro_model, submit_job, wait_job


def decoder_children(pid):
    """The server's sandboxed decoder processes (posix_spawn'd `scribed __audio-decode`)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids = f.read().split()
        except OSError:
            continue
        for k in kids:
            try:
                with open(f"/proc/{k}/cmdline", "rb") as f:
                    if b"__audio-decode" in f.read():
                        found.append(int(k))
            except OSError:
                pass
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_a_decoder(server, deadline_s=120):
    """SIGSTOPs the decoder of the running job; returns its pid."""
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        for child in decoder_children(server.proc.pid):
            try:
                os.kill(child, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            time.sleep(0.05)
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    return child
        time.sleep(0.02)
    raise AssertionError("no decoder child to stop")


def health(server):
    return requests.get(server.url("/health"), timeout=5).json()


def metric(server, name):
    for line in requests.get(server.url("/metrics"), timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory):
    if not os.path.exists(micro_model()):
        pytest.skip("no reference model")
    return make_wav(tmp_path_factory.mktemp("stuck") / "long120.wav", 120)


def test_stopped_decoder_degrades_health_and_cancel_kills_it(make_server, long_audio,
                                                             short_wav):
    s = make_server(args=["--workers", "1", "--stuck-worker-s", "1",
                          "--decode-timeout-s", "3600"])
    assert health(s)["status"] == "healthy"
    jid = submit_job(s, long_audio).json()["id"]
    child = stop_a_decoder(s)
    try:
        deadline = time.time() + 60
        while health(s)["status"] != "degraded":
            assert time.time() < deadline, health(s)
            time.sleep(0.1)
        h = health(s)
        assert h["workers_stuck"] == 1 and "decoder" in h["error"], h
        # the only worker is stuck: nothing is being served
        assert requests.get(s.url("/health"), timeout=5).status_code == 503
        assert metric(s, "scribed_workers_stuck") == 1
        assert metric(s, "scribed_worker_stalls_total") >= 1

        r = requests.delete(s.url(f"/v1/jobs/{jid}"), timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        deadline = time.time() + 10  # the old wall limit held it for 600 s
        while alive(child):
            assert time.time() < deadline, "cancel did not kill the stopped decoder"
            time.sleep(0.05)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
    deadline = time.time() + 10
    while health(s)["status"] != "healthy":
        assert time.time() < deadline, health(s)
        time.sleep(0.1)
    assert metric(s, "scribed_workers_stuck") == 0
    # the worker is free again
    done = wait_job(s, submit_job(s, short_wav).json()["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert [e for e in s.events("worker.stuck") if e["job"] == jid]


def test_stopped_decoder_times_out_without_cancel(make_server, long_audio):
    s = make_server(args=["--workers", "1", "--decode-timeout-s", "2",
                          "--decode-ms-per-audio-s", "0"])
    jid = submit_job(s, long_audio).json()["id"]
    child = stop_a_decoder(s)
    try:
        done = wait_job(s, jid, timeout=60)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "timeout", done
    deadline = time.time() + 10
    while alive(child):
        assert time.time() < deadline, "the timed-out decoder was left running"
        time.sleep(0.05)
