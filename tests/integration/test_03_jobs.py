"""Async jobs: create -> poll -> result in every format, listing with
pagination, cancellation, webhooks with retries."""
import ipaddress
import json
import os
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from conftest import (PG_MODE, assert_openai_error, database_env, pg_cluster, shared_dir,
                      submit_job, wait_job)


def test_job_lifecycle_and_every_format(server, short_wav):
    r = submit_job(server, short_wav, {"response_format": "srt", "language": "en"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["id"].startswith("job_")
    assert job["status"] in ("queued", "running", "succeeded")
    done = wait_job(server, job["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"] == 1.0
    assert done["error"] is None
    t = done["timings"]
    assert t["audio_seconds"] > 1.5 and t["run_ms"] is not None and t["queued_ms"] is not None
    assert done["request"]["response_format"] == "srt"
    assert done["filename"] == "a_short.wav"
    # default: the format asked for at submission
    r = requests.get(server.url(f"/v1/jobs/{job['id']}/result"), timeout=10)
    assert r.status_code == 200 and "-->" in r.text
    for fmt, check in (("json", lambda r: "text" in r.json()),
                       ("text", lambda r: r.headers["Content-Type"].startswith("text/plain")),
                       ("srt", lambda r: "-->" in r.text),
                       ("vtt", lambda r: r.text.startswith("WEBVTT")),
                       ("verbose_json", lambda r: "segments" in r.json())):
        r = requests.get(server.url(f"/v1/jobs/{job['id']}/result"), params={"format": fmt},
                         timeout=10)
        assert r.status_code == 200, (fmt, r.text)
        assert check(r), fmt
    r = requests.get(server.url(f"/v1/jobs/{job['id']}/result"), params={"format": "docx"},
                     timeout=10)
    assert_openai_error(r, 400, "format")


def db_rows(server, sql, *args):
    """Rows of sql (numbered parameters ?1, ?2 ...) in the server's store, SQLite or PostgreSQL."""
    if PG_MODE:
        for i, a in enumerate(args, 1):
            sql = sql.replace(f"?{i}", "'" + str(a).replace("'", "''") + "'")
        url = database_env(server.data_dir)["SCRIBED_DATABASE_URL"]
        out = pg_cluster().psql(sql, db=url.rsplit("/", 1)[1])
        return [tuple(int(v) if v.lstrip("-").isdigit() else v for v in line.split("|"))
                for line in out.splitlines()]
    with sqlite3.connect(f"file:{server.data_dir}/scribed.db?mode=ro", uri=True) as db:
        return db.execute(sql, args).fetchall()


def test_delete_a_finished_job_removes_upload_and_results(server, short_wav):
    job = submit_job(server, short_wav, {"response_format": "srt"}).json()
    assert wait_job(server, job["id"])["status"] == "succeeded"
    upload = os.path.join(server.data_dir, "uploads", job["id"])
    count = "SELECT (SELECT count(*) FROM jobs WHERE id = ?1) + (SELECT count(*) FROM results" \
            " WHERE job_id = ?1) + (SELECT count(*) FROM uploads WHERE job_id = ?1)"
    if PG_MODE:  # the audio itself is in the database (no file on any node)
        count += " + (SELECT count(*) FROM upload_chunks WHERE job_id = ?1)"
        assert not os.path.exists(upload)
    else:
        assert os.path.exists(upload)
    assert db_rows(server, count, job["id"])[0][0] > 3
    r = requests.delete(server.url(f"/v1/jobs/{job['id']}"), timeout=5)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": job["id"], "object": "transcription.job", "deleted": True}
    assert not os.path.exists(upload)
    assert db_rows(server, count, job["id"])[0][0] == 0
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/result"):
        assert_openai_error(requests.get(server.url(path), timeout=5), 404)
    assert_openai_error(requests.delete(server.url(f"/v1/jobs/{job['id']}"), timeout=5), 404)
    listed = requests.get(server.url("/v1/jobs"), params={"limit": 100}, timeout=5).json()
    assert job["id"] not in [j["id"] for j in listed["data"]]


def test_unknown_job(server):
    assert_openai_error(requests.get(server.url("/v1/jobs/job_nope"), timeout=5), 404)
    assert_openai_error(requests.get(server.url("/v1/jobs/job_nope/result"), timeout=5), 404)
    assert_openai_error(requests.delete(server.url("/v1/jobs/job_nope"), timeout=5), 404)


def test_list_pagination(server, short_wav):
    ids = [submit_job(server, short_wav).json()["id"] for _ in range(5)]
    for i in ids:
        wait_job(server, i)
    r = requests.get(server.url("/v1/jobs"), params={"limit": 2}, timeout=5)
    assert r.status_code == 200
    page = r.json()
    assert page["object"] == "list" and len(page["data"]) == 2 and page["has_more"] is True
    assert page["data"][0]["id"] == ids[-1]  # newest first
    seen = [j["id"] for j in page["data"]]
    while page["has_more"]:
        page = requests.get(server.url("/v1/jobs"), params={"limit": 2, "after": page["last_id"]},
                            timeout=5).json()
        seen += [j["id"] for j in page["data"]]
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    r = requests.get(server.url("/v1/jobs"), params={"status": "succeeded", "limit": 100}, timeout=5)
    assert all(j["status"] == "succeeded" for j in r.json()["data"])
    assert_openai_error(requests.get(server.url("/v1/jobs"), params={"limit": 0}, timeout=5), 400,
                        "limit")
    assert_openai_error(requests.get(server.url("/v1/jobs"), params={"status": "x"}, timeout=5),
                        400, "status")
    assert_openai_error(requests.get(server.url("/v1/jobs"), params={"after": "job_x"}, timeout=5),
                        400, "after")


def test_cancel_queued_and_running(make_server, short_wav, long_wav):
    s = make_server(args=["--workers", "1"])
    first = submit_job(s, long_wav).json()["id"]
    # the second is queued only once the first runs: queued together, the queue
    # would run the shorter one first (short work first)
    wait_job(s, first, statuses=("running",))
    second = submit_job(s, short_wav).json()["id"]
    for jid, status in ((first, "running"), (second, "queued")):
        err = assert_openai_error(requests.get(s.url(f"/v1/jobs/{jid}/result"), timeout=5), 409)
        assert err["code"] == "conflict" and status in err["message"], err
    r = requests.delete(s.url(f"/v1/jobs/{second}"), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = requests.delete(s.url(f"/v1/jobs/{first}"), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    done = wait_job(s, first)
    assert done["status"] == "cancelled"
    err = assert_openai_error(requests.get(s.url(f"/v1/jobs/{first}/result"), timeout=5), 409)
    assert err["code"] == "conflict" and "cancelled" in err["message"]
    assert requests.get(s.url("/health"), timeout=5).json()["queue_depth"] == 0
    # the run itself stops at its next progress check (the end of a 30 s window)


class Hook:
    """A tiny webhook receiver; fails the first `fail_first` deliveries with 500."""

    def __init__(self, fail_first=0):
        self.received = []
        self.fail_first = fail_first
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                code = 500 if len(hook.received) <= hook.fail_first else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def wait_for(cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_callback_delivered_once(make_server, short_wav):
    # the receiver is on loopback: internal targets must be allowed explicitly
    server = make_server(args=["--callback-allow-private", "1"])
    hook = Hook()
    try:
        r = submit_job(server, short_wav, {"callback_url": hook.url, "response_format": "json"})
        assert r.status_code == 202
        jid = r.json()["id"]
        assert wait_for(lambda: len(hook.received) >= 1)
        time.sleep(0.5)
        assert len(hook.received) == 1
        got = hook.received[0]
        assert got["id"] == jid and got["status"] == "succeeded"
        assert "text" in got["result"]
        assert wait_for(lambda: requests.get(server.url(f"/v1/jobs/{jid}"), timeout=5)
                        .json()["callback_status"] == "delivered")
    finally:
        hook.close()


def test_callback_retries_with_backoff(make_server, short_wav):
    s = make_server(args=["--callback-backoff-ms", "100", "--callback-attempts", "4",
                          "--callback-allow-private", "1"])
    hook = Hook(fail_first=2)
    try:
        jid = submit_job(s, short_wav, {"callback_url": hook.url}).json()["id"]
        assert wait_for(lambda: len(hook.received) >= 3)
        time.sleep(0.5)
        assert len(hook.received) == 3
        job = requests.get(s.url(f"/v1/jobs/{jid}"), timeout=5).json()
        assert job["callback_status"] == "delivered"
        assert job["callback_error"] is None  # cleared by the delivery that worked
        attempts = [e for e in s.events("callback.attempt") if e["job"] == jid]
        assert [e["delivered"] for e in attempts] == [False, False, True]
    finally:
        hook.close()


def test_callback_gives_up(make_server, short_wav):
    s = make_server(args=["--callback-backoff-ms", "50", "--callback-attempts", "2",
                          "--callback-allow-private", "1"])
    jid = submit_job(s, short_wav, {"callback_url": "http://127.0.0.1:9/nothing"}).json()["id"]
    assert wait_for(lambda: requests.get(s.url(f"/v1/jobs/{jid}"), timeout=5)
                    .json()["callback_status"] == "failed")
    # the job itself still succeeded; why the webhook failed is on the job
    job = requests.get(s.url(f"/v1/jobs/{jid}"), timeout=5).json()
    assert job["status"] == "succeeded"
    assert job["callback_error"] and "connect" in job["callback_error"].lower(), job


def test_callback_to_internal_address_refused_by_default(make_server, short_wav):
    """No SSRF: by default a webhook may not reach loopback, private or metadata
    addresses; such a callback_url is refused at submission, naming the setting."""
    s = make_server(args=["--callback-backoff-ms", "50", "--callback-attempts", "1",
                          "--callback-timeout-ms", "200"])
    hook = Hook()
    try:
        port = hook.httpd.server_port
        for url in (hook.url, "http://169.254.169.254/latest/meta-data/",
                    f"http://localhost:{port}/hook", f"http://LOCALHOST:{port}/",
                    f"http://x.localhost:{port}/", f"http://[::1]:{port}/",
                    "http://10.1.2.3/", "http://192.168.0.1/", "http://[fe80::1]/",
                    "https://user@127.0.0.1:8443/x", "http://0.0.0.0/"):
            r = submit_job(s, short_wav, {"callback_url": url})
            err = assert_openai_error(r, 400, "callback_url")
            assert "--callback-allow-private" in err["message"], (url, err)
        assert requests.get(s.url("/v1/jobs"), timeout=5).json()["data"] == []
        # a name is taken: it is checked after DNS, at delivery (next test)
        r = submit_job(s, short_wav, {"callback_url": "http://example.com:9/hook"})
        assert r.status_code == 202, r.text
        time.sleep(0.3)
        assert hook.received == []
    finally:
        hook.close()


def test_callback_name_resolving_to_internal_address_fails_with_reason(make_server, short_wav):
    """A name is checked after DNS, at each delivery; the reason ends up on the job."""
    name = socket.gethostname()
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
    except OSError:
        pytest.skip(f"the host name {name} does not resolve")
    if not all(ipaddress.ip_address(a.split("%")[0]).is_private for a in addrs):
        pytest.skip(f"{name} resolves to a public address")
    s = make_server(args=["--callback-backoff-ms", "50", "--callback-attempts", "2"])
    jid = submit_job(s, short_wav, {"callback_url": f"http://{name}:9/hook"}).json()["id"]
    assert wait_for(lambda: requests.get(s.url(f"/v1/jobs/{jid}"), timeout=5)
                    .json()["callback_status"] == "failed")
    job = requests.get(s.url(f"/v1/jobs/{jid}"), timeout=5).json()
    assert "not public" in job["callback_error"], job
    assert "--callback-allow-private" in job["callback_error"], job


def test_bad_callback_url(server, short_wav):
    r = submit_job(server, short_wav, {"callback_url": "file:///etc/passwd"})
    assert_openai_error(r, 400, "callback_url")


def test_failed_job_records_error(server, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64)  # a header and nothing sane
    r = submit_job(server, str(bad))
    assert r.status_code == 202, r.text
    done = wait_job(server, r.json()["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] and done["error"]["message"]
    r = requests.get(server.url(f"/v1/jobs/{done['id']}/result"), timeout=5)
    err = assert_openai_error(r, 409)  # the job's state, not the request, is the problem
    assert err["code"] == "conflict" and "failed" in err["message"], err


def test_progress_is_reported_per_window(make_server):
    """A 52 s clip is two 30 s windows and several 10 s reads: progress rises in steps
    between 0 and 1 (it stayed 0 and jumped to 1); GET /v1/jobs/ID shows the latest."""
    s = make_server(args=["--workers", "1", "--log-level", "debug"])
    clip = os.path.join(shared_dir(), "reference", "c_passage.wav")
    jid = submit_job(s, clip, {"beam_size": "1", "no_fallback": "true"}).json()["id"]
    assert wait_job(s, jid)["status"] == "succeeded"
    steps = [e["progress"] for e in s.events("job.progress") if e["job"] == jid]
    assert steps == sorted(steps), steps
    inside = [p for p in steps if 0 < p < 1]
    assert len(inside) >= 3, steps
    # at least one step comes from the decoder between its windows, not only the reads
    assert any(0.1 < p < 0.95 for p in inside), steps
