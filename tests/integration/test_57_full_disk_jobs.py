"""A full disk under the job store (issue 16 item 5): a job that cannot be
recorded answers 503 and leaves no upload behind; a job whose results cannot
be saved retries, then fails with the reason in `error` and never stays
`running`. The server's data dir is a 4 MB tmpfs and its uploads dir a
separate 16 MB one, both mounted in a private mount namespace (unshare -Urm,
as test_49 does), so the database's disk fills up while uploads still fit.
The test fills that disk itself, from outside, through /proc/PID/root."""
import errno
import os
import signal
import stat
import time

import pytest
import requests

import conftest
from conftest import make_wav, submit_job, wait_job
from test_49_full_disk import namespaces_work

# the disk that fills up is the one under DATA/scribed.db: PostgreSQL's is elsewhere
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def db_disk_server(make_server, tmp_path, monkeypatch):
    if not namespaces_work():
        pytest.skip("unshare -Urm is not allowed here")
    real = conftest.scribed_bin()
    wrapper = tmp_path / "scribed-on-small-disks"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# scribed with --data-dir on a 4 MB tmpfs and its uploads on a 16 MB one\n"
        "dir=; prev=\n"
        "for a in \"$@\"; do [ \"$prev\" = --data-dir ] && dir=$a; prev=$a; done\n"
        "exec unshare -Urm sh -c 'mount -t tmpfs -o size=4m tmpfs \"$0\" && mkdir \"$0/uploads\""
        " && mount -t tmpfs -o size=16m tmpfs \"$0/uploads\" && exec \"$@\"' "
        f"\"$dir\" {real} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(conftest, "scribed_bin", lambda: str(wrapper))
    s = make_server(args=["--workers", "1", "--sweep-interval-s", "1"])
    if not os.path.isdir(inside(s, "uploads")):
        pytest.skip("/proc/PID/root of the server is not readable here")
    return s


def inside(s, *parts):
    """A path in the server's data dir as the server sees it (its mount namespace)."""
    return os.path.join(f"/proc/{s.proc.pid}/root", s.data_dir.lstrip("/"), *parts)


def fill(path):
    """Writes path until the disk under it is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 64 << 10, 4 << 10, 512):
            while True:
                try:
                    n += f.write(b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return n


def metric(s, name):
    for line in requests.get(s.url("/metrics"), timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def decoder_child(s, timeout=60):
    """The pid of the server's sandboxed decoder, once one runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for task in os.listdir(f"/proc/{s.proc.pid}/task"):
            try:
                with open(f"/proc/{s.proc.pid}/task/{task}/children") as f:
                    kids = f.read().split()
            except OSError:
                continue
            if kids:
                return int(kids[0])
        time.sleep(0.01)
    raise AssertionError("no decoder process appeared")


def test_a_job_that_cannot_be_recorded_is_503_and_leaves_no_upload(db_disk_server, short_wav):
    s = db_disk_server
    filler = inside(s, "filler")
    assert fill(filler) > 0
    with open(short_wav, "rb") as f:
        r = requests.post(s.url("/v1/jobs"), data={"model": "whisper-1"},
                          files={"file": ("a.wav", f, "audio/wav")}, timeout=60)
    assert r.status_code == 503, r.text
    assert r.headers.get("Retry-After")
    err = r.json()["error"]
    assert "disk is full" in err["message"] and err["code"] == "service_unavailable", err
    assert os.listdir(inside(s, "uploads")) == []  # the upload that fitted was removed
    assert s.events("job.insert_failed")
    # space again: the next job goes through
    os.unlink(filler)
    r = submit_job(s, short_wav)
    assert r.status_code == 202, r.text
    assert wait_job(s, r.json()["id"])["status"] == "succeeded"


def test_results_that_cannot_be_saved_fail_the_job_with_the_reason(db_disk_server, tmp_path):
    s = db_disk_server
    audio = make_wav(tmp_path / "a.wav", 40)
    r = submit_job(s, audio)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    wait_job(s, job_id, statuses=("running",))
    # the decoder held still while the disk fills: the job cannot finish before it is full
    child = decoder_child(s)
    os.kill(child, signal.SIGSTOP)
    try:
        assert fill(inside(s, "filler")) > 0
    finally:
        os.kill(child, signal.SIGCONT)
    job = wait_job(s, job_id, timeout=120)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "insufficient_storage", job
    assert "could not be saved" in job["error"]["message"], job
    assert "disk is full" in job["error"]["message"], job
    retries = s.events("job.save_retry")
    assert [e["attempt"] for e in retries] == [1, 2, 3], retries
    assert [e["job"] for e in s.events("job.save_failed")] == [job_id]
    done = [e for e in s.events("job.done") if e["job"] == job_id]
    assert done and done[0]["status"] == "failed" and "could not be saved" in done[0]["error"]
    assert s.events("disk.reserve_released")
    assert metric(s, "scribed_job_save_retries_total") == 3
    assert metric(s, "scribed_job_save_failures_total") == 1
    # nothing stays running, and the server goes on once there is room
    listed = requests.get(s.url("/v1/jobs?status=running"), timeout=10).json()
    assert listed["data"] == [], listed
    os.unlink(inside(s, "filler"))
    r = submit_job(s, make_wav(tmp_path / "b.wav", 3))
    assert r.status_code == 202, r.text
    assert wait_job(s, r.json()["id"])["status"] == "succeeded"
