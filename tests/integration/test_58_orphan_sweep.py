"""Jobs left `running` with no worker (issue 16 item 5): on a single node
(SQLite) a sweep every --sweep-interval-s re-queues a job that the store
says is running but that no worker of the process holds, or fails it once it
has been started --max-attempts times; a job a worker really runs is never
touched. The orphan is made the way the store would hold one after a write
that could not be made: the test sets the row back to `running` itself."""
import os
import signal
import sqlite3
import time

import pytest
import requests

from conftest import make_wav, submit_job, wait_job
from test_57_full_disk_jobs import decoder_child, metric

pytestmark = pytest.mark.sqlite_only


def set_running(s, job_id, attempts):
    db = sqlite3.connect(os.path.join(s.data_dir, "scribed.db"), timeout=30)
    with db:
        n = db.execute("UPDATE jobs SET status = 'running', attempts = ?, finished_ms = 0"
                       " WHERE id = ?", (attempts, job_id)).rowcount
    db.close()
    assert n == 1


def swept(s, job_id):
    return [e for e in s.events("job.swept") if e["job"] == job_id]


def wait_swept(s, job_id, count, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(swept(s, job_id)) >= count:
            return swept(s, job_id)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} was not swept {count} times:\n{s.log()}")


def test_a_running_job_without_a_worker_is_requeued_then_failed(make_server, short_wav,
                                                                 tmp_path):
    s = make_server(["--workers", "1", "--sweep-interval-s", "1", "--max-attempts", "2"])
    r = submit_job(s, short_wav)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert wait_job(s, job_id)["status"] == "succeeded"

    # an orphan started once: back to the queue, and it runs again
    set_running(s, job_id, 1)
    events = wait_swept(s, job_id, 1)
    assert events[0]["action"] == "requeued" and events[0]["attempts"] == 1, events
    job = wait_job(s, job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job

    # an orphan started max-attempts times: failed, with the reason
    set_running(s, job_id, 2)
    events = wait_swept(s, job_id, 2)
    assert events[1]["action"] == "failed", events
    job = wait_job(s, job_id, statuses=("failed",))
    assert "started 2 times" in job["error"]["message"], job
    assert metric(s, "scribed_jobs_swept_total") == 2

    # a job a worker holds is left alone however many sweeps pass while it runs
    r = submit_job(s, make_wav(tmp_path / "long.wav", 40))
    assert r.status_code == 202, r.text
    live = r.json()["id"]
    wait_job(s, live, statuses=("running",))
    child = decoder_child(s)
    os.kill(child, signal.SIGSTOP)
    try:
        time.sleep(3)  # three sweep intervals with the job held still
    finally:
        os.kill(child, signal.SIGCONT)
    assert wait_job(s, live)["status"] == "succeeded"
    assert swept(s, live) == []
    assert metric(s, "scribed_jobs_swept_total") == 2
    assert requests.get(s.url("/health"), timeout=5).status_code == 200
