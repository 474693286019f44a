"""Tenants: a job belongs to the key (or JWT sub) that created it. Another
caller gets 404 for it, word for word the answer for a job that does not
exist (no existence oracle), on every route: list, get, result, cancel, the
list cursor; its webhook carries only that job. An admin key (`scribed keys
create --admin`) sees and cancels every job. With auth off there is one
tenant, and its jobs stay the admin's once keys appear."""
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from conftest import assert_openai_error, micro_model
from test_40_auth import bearer, create_key, keys, make_jwt

SECRET = "tenant-test-secret-0123456789abcdef"


def create_admin(data_dir, name="admin"):
    out = keys(data_dir, "create", "--name", name, "--admin")
    assert "admin" in out
    return out.strip().splitlines()[-1]


def submit(server, key, path, fields=None):
    with open(path, "rb") as f:
        r = requests.post(server.url("/v1/jobs"), data=fields or {}, headers=bearer(key),
                          files={"file": (os.path.basename(path), f, "audio/wav")}, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def wait_done(server, key, job_id, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(server.url(f"/v1/jobs/{job_id}"), headers=bearer(key), timeout=10)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("succeeded", "failed", "cancelled"):
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never finished")


def listed(server, key, **params):
    r = requests.get(server.url("/v1/jobs"), headers=bearer(key), params=params, timeout=10)
    assert r.status_code == 200, r.text
    return [j["id"] for j in r.json()["data"]]


def call(server, method, path, key, params=None):
    return requests.request(method, server.url(path), headers=bearer(key), params=params,
                            timeout=10)


def same_as_missing(server, method, path, key, job_id, params=None):
    """The answer for another tenant's job is the answer for an id nobody has."""
    theirs = call(server, method, path.format(job_id), key, params)
    missing_id = "job_" + "0" * (len(job_id) - 4)
    missing = call(server, method, path.format(missing_id), key, params)
    assert_openai_error(theirs, missing.status_code)
    a, b = theirs.json()["error"], missing.json()["error"]
    assert a["message"].replace(job_id, "ID") == b["message"].replace(missing_id, "ID"), (a, b)
    assert (a["type"], a["code"], a["param"]) == (b["type"], b["code"], b["param"])
    return theirs


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    from conftest import Server
    if not os.path.exists(micro_model()):
        pytest.skip("no reference model")
    d = tmp_path_factory.mktemp("tenants")
    ka, kb, admin = create_key(d, "alice"), create_key(d, "bob"), create_admin(d)
    s = Server(d, ["--workers", "1", "--jwt-secret", SECRET])
    s.start()
    s.a, s.b, s.admin = ka, kb, admin
    yield s
    s.stop()
    s.check_log_clean()


def test_keys_list_shows_admin(tenants):
    rows = [json.loads(l) for l in keys(tenants.data_dir, "list", "--json").splitlines()]
    assert {r["name"]: r["admin"] for r in rows} == {"alice": False, "bob": False, "admin": True}


def test_two_keys_cannot_see_or_touch_each_others_jobs(tenants, short_wav):
    s = tenants
    ja = submit(s, s.a, short_wav, {"response_format": "text"})
    jb = submit(s, s.b, short_wav, {"response_format": "text"})
    assert wait_done(s, s.a, ja)["status"] == "succeeded"
    assert wait_done(s, s.b, jb)["status"] == "succeeded"

    assert ja in listed(s, s.a) and jb not in listed(s, s.a)
    assert jb in listed(s, s.b) and ja not in listed(s, s.b)
    assert listed(s, s.a, status="succeeded") == [ja]
    for key, theirs in ((s.a, jb), (s.b, ja)):
        same_as_missing(s, "GET", "/v1/jobs/{}", key, theirs)
        same_as_missing(s, "GET", "/v1/jobs/{}/result", key, theirs)
        same_as_missing(s, "GET", "/v1/jobs/{}/result", key, theirs, {"format": "srt"})
        same_as_missing(s, "DELETE", "/v1/jobs/{}", key, theirs)
        # a cursor naming another tenant's job is an unknown cursor
        r = call(s, "GET", "/v1/jobs", key, {"after": theirs})
        miss = call(s, "GET", "/v1/jobs", key, {"after": "job_" + "0" * (len(theirs) - 4)})
        assert_openai_error(r, 400, "after")
        assert r.json()["error"]["code"] == miss.json()["error"]["code"]
    # each still reads its own
    r = call(s, "GET", f"/v1/jobs/{ja}/result", s.a)
    assert r.status_code == 200 and r.text.strip()

    # the admin sees and reads both
    everyone = listed(s, s.admin)
    assert ja in everyone and jb in everyone
    for j in (ja, jb):
        assert call(s, "GET", f"/v1/jobs/{j}", s.admin).status_code == 200
        assert call(s, "GET", f"/v1/jobs/{j}/result", s.admin).status_code == 200


def test_cancel_only_by_owner_or_admin(tenants, long_wav, short_wav):
    s = tenants
    # one worker: the long job runs, the next two wait
    running = submit(s, s.a, long_wav)
    # on PostgreSQL the worker claims the shortest job in the store: let it take the long one
    deadline = time.time() + 60
    while call(s, "GET", f"/v1/jobs/{running}", s.a).json()["status"] == "queued":
        assert time.time() < deadline
        time.sleep(0.05)
    queued = submit(s, s.a, short_wav)
    queued2 = submit(s, s.a, short_wav)
    same_as_missing(s, "DELETE", "/v1/jobs/{}", s.b, queued)
    same_as_missing(s, "DELETE", "/v1/jobs/{}", s.b, running)
    assert call(s, "GET", f"/v1/jobs/{queued}", s.a).json()["status"] == "queued"
    assert call(s, "GET", f"/v1/jobs/{running}", s.a).json()["status"] in ("queued", "running")
    # the admin may cancel anyone's; the owner its own
    r = call(s, "DELETE", f"/v1/jobs/{running}", s.admin)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    r = call(s, "DELETE", f"/v1/jobs/{queued2}", s.a)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert wait_done(s, s.a, queued)["status"] == "succeeded"


def test_jwt_subjects_are_tenants(tenants, short_wav):
    s = tenants
    exp = int(time.time()) + 600
    alice = make_jwt(SECRET, {"sub": "alice", "exp": exp})
    mallory = make_jwt(SECRET, {"sub": "mallory", "exp": exp})
    j = submit(s, alice, short_wav)
    assert wait_done(s, alice, j)["status"] == "succeeded"
    assert j in listed(s, alice) and j not in listed(s, mallory)
    same_as_missing(s, "GET", "/v1/jobs/{}", mallory, j)
    # a JWT whose sub is a key's id is still not that key
    assert j not in listed(s, s.a)
    assert j in listed(s, s.admin)


class Hook:
    def __init__(self):
        self.received = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_auth_off_is_one_tenant_and_its_jobs_stay_admin_only(make_server, tmp_path, short_wav):
    d = tmp_path / "open"
    s = make_server(args=["--workers", "1", "--callback-allow-private", "1"], data_dir=d)
    hook = Hook()
    try:
        with open(short_wav, "rb") as f:
            r = requests.post(s.url("/v1/jobs"), data={"callback_url": hook.url},
                              files={"file": ("a.wav", f, "audio/wav")}, timeout=60)
        assert r.status_code == 202, r.text
        j = r.json()["id"]
        deadline = time.time() + 60
        while time.time() < deadline and not hook.received:
            time.sleep(0.05)
        # the webhook is about this job alone
        assert [h["id"] for h in hook.received] == [j]
    finally:
        hook.close()
    assert requests.get(s.url(f"/v1/jobs/{j}"), timeout=5).status_code == 200
    assert [x["id"] for x in requests.get(s.url("/v1/jobs"), timeout=5).json()["data"]] == [j]
    # keys appear: the open tenant's jobs are nobody's but the admin's
    key, admin = create_key(d, "later"), create_admin(d, "root")
    deadline = time.time() + 10
    while requests.get(s.url("/v1/models"), timeout=5).status_code != 401:
        assert time.time() < deadline
        time.sleep(0.2)
    assert listed(s, key) == []
    assert_openai_error(call(s, "GET", f"/v1/jobs/{j}", key), 404)
    assert listed(s, admin) == [j]
