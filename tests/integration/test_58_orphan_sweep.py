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


def test_a_queued_job_the_queue_lost_is_queued_again(make_server, short_wav, tmp_path):
    """A worker that cannot mark its job started (store_job_start failing on a
    full disk or a database error) drops it from the queue while the row stays
    `queued`; the sweep queues such a row again, once it is older than one
    sweep interval (a fresh submission's row is pushed right after its
    insert). Jobs waiting in the queue are not touched."""
    s = make_server(["--workers", "1", "--sweep-interval-s", "1"])
    r = submit_job(s, short_wav)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert wait_job(s, job_id)["status"] == "succeeded"

    # the row as a dropped job leaves it: queued, not in the process's queue
    db = sqlite3.connect(os.path.join(s.data_dir, "scribed.db"), timeout=30)
    with db:
        n = db.execute("UPDATE jobs SET status = 'queued', finished_ms = 0,"
                       " created_ms = created_ms - 5000 WHERE id = ?", (job_id,)).rowcount
    db.close()
    assert n == 1
    events = wait_swept(s, job_id, 1)
    assert events[0]["action"] == "queued", events
    job = wait_job(s, job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert len(swept(s, job_id)) == 1

    # jobs waiting behind a held worker stay as they are
    child = None
    r = submit_job(s, make_wav(tmp_path / "long.wav", 40))
    assert r.status_code == 202, r.text
    live = r.json()["id"]
    wait_job(s, live, statuses=("running",))
    waiting = [submit_job(s, short_wav).json()["id"] for _ in range(2)]
    child = decoder_child(s)
    os.kill(child, signal.SIGSTOP)
    try:
        time.sleep(3)  # three sweep intervals with the jobs waiting
    finally:
        os.kill(child, signal.SIGCONT)
    for w in [live] + waiting:
        assert wait_job(s, w)["status"] == "succeeded"
        assert swept(s, w) == [], w
