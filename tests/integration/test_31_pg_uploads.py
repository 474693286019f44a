"""Uploads stored in PostgreSQL (issue 17 item 4): an API node and a worker
with different data dirs (no shared filesystem) run a job of several MB. The
API node streams the upload into the database in chunks (its memory never
holds the whole file, and its own copy goes once stored), the worker streams
it back into a local file of its own and removes it after the run; the
stored bytes go with the job (DELETE) and with retention.

Each test gets its own database on the session's private cluster; skipped
without PostgreSQL."""
import os
import struct
import time
import uuid
import wave

import pytest
import requests

from conftest import pg_available, pg_cluster, shared_dir, submit_job, wait_job

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL server not installed")

LEASE_S = 3


@pytest.fixture
def db_url():
    return pg_cluster().database("up_" + uuid.uuid4().hex[:12])


def psql(url, sql):
    return pg_cluster().psql(sql, db=url.rsplit("/", 1)[1]).strip()


def big_wav(path, seconds):
    """48 kHz stereo 16-bit (192 KB/s): several MB of real speech, a short decode."""
    with wave.open(os.path.join(shared_dir(), "reference", "a_short.wav")) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        mono = struct.unpack(f"<{w.getnframes()}h", w.readframes(w.getnframes()))
    factor = 48000 // rate
    once = b"".join(struct.pack("<hh", s, s) * factor for s in mono)
    frames = int(seconds * 48000)
    out = (once * (frames * 4 // len(once) + 1))[:frames * 4]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(out)
    return str(path)


def peak_rss_kb(proc):
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def files_under(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_worker_without_shared_disk_runs_a_big_upload(make_server, db_url, tmp_path):
    wav = big_wav(tmp_path / "big.wav", 40)
    size = os.path.getsize(wav)
    assert size > 7_000_000
    api = make_server(args=["--workers", "0", "--database-url", db_url, "--lease-s", str(LEASE_S)],
                      data_dir=tmp_path / "api")
    w = make_server(args=["--workers", "1", "--database-url", db_url, "--lease-s", str(LEASE_S)],
                    command="worker", data_dir=tmp_path / "worker")
    before_kb = peak_rss_kb(api.proc)
    r = submit_job(api, wav, {"response_format": "text"})
    assert r.status_code == 202, r.text
    jid = r.json()["id"]
    # stored whole in the database, in chunks; the API node kept no file
    assert psql(db_url, f"SELECT sum(length(data)) FROM upload_chunks WHERE job_id = '{jid}'") \
        == str(size)
    assert int(psql(db_url, f"SELECT count(*) FROM upload_chunks WHERE job_id = '{jid}'")) >= 7
    assert jid not in " ".join(files_under(tmp_path / "api" / "uploads"))
    grown_kb = peak_rss_kb(api.proc) - before_kb
    assert grown_kb < size / 1024 / 2, f"the API node's peak memory grew {grown_kb} KB"
    job = wait_job(api, jid, timeout=300)
    assert job["status"] == "succeeded", job
    assert requests.get(api.url(f"/v1/jobs/{jid}/result"), timeout=10).text.strip()
    assert jid in [e["job"] for e in w.events("job.done")]
    # the worker's copy went with the run
    assert jid not in " ".join(files_under(tmp_path / "worker" / "uploads"))
    # DELETE takes the stored bytes with the job
    assert requests.delete(api.url(f"/v1/jobs/{jid}"), timeout=10).status_code in (200, 204)
    assert psql(db_url, f"SELECT count(*) FROM upload_chunks WHERE job_id = '{jid}'") == "0"


def test_retention_deletes_stored_uploads(make_server, db_url, short_wav, tmp_path):
    api = make_server(args=["--workers", "0", "--database-url", db_url, "--lease-s", str(LEASE_S),
                            "--upload-retention-days", "0", "--retention-interval-s", "1"],
                      data_dir=tmp_path / "api")
    make_server(args=["--workers", "1", "--database-url", db_url, "--lease-s", str(LEASE_S)],
                command="worker", data_dir=tmp_path / "worker")
    jid = submit_job(api, short_wav).json()["id"]
    assert wait_job(api, jid)["status"] == "succeeded"
    deadline = time.time() + 30
    while psql(db_url, f"SELECT count(*) FROM upload_chunks WHERE job_id = '{jid}'") != "0":
        assert time.time() < deadline, "retention left the stored upload"
        time.sleep(0.2)
    # the job and its result stay; only the audio went
    assert requests.get(api.url(f"/v1/jobs/{jid}/result"), timeout=10).status_code == 200
