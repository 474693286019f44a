"""Authentication: API keys from `scribed keys` (created, listed, revoked, also
while the server runs), SCRIBED_API_KEY, HS256 JWTs, the open routes (health,
web page), /metrics protection, WebSockets with ?api_key=, and that no key
ever reaches the log. Auth stays off while no key or secret exists (every
other test module relies on that)."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests
import websockets

from conftest import assert_openai_error, database_env, micro_model, scribed_bin, shared_dir


def keys(data_dir, *args):
    r = subprocess.run([scribed_bin(), "keys", *args, "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, **database_env(data_dir)))
    assert r.returncode == 0, r.stderr
    return r.stdout


def create_key(data_dir, name="test"):
    out = keys(data_dir, "create", "--name", name)
    key = out.strip().splitlines()[-1]
    assert re.fullmatch(r"sk-scribed-[A-Za-z0-9_-]{43}", key), out
    return key


def key_id(data_dir, name):
    for line in keys(data_dir, "list", "--json").splitlines():
        row = json.loads(line)
        if row["name"] == name:
            return row["id"]
    raise AssertionError(f"no key named {name}")


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def get(server, path, headers=None, params=None):
    return requests.get(server.url(path), headers=headers or {}, params=params, timeout=10)


def wait_status(server, path, headers, status, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = get(server, path, headers)
        if r.status_code == status:
            return r
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {status}; last {r.status_code}")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(secret, claims, header=None):
    head = b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64u(sig)}"


@pytest.fixture(scope="module")
def authed(tmp_path_factory):
    """A server whose data dir has two keys (one revoked) before it starts; debug logging."""
    from conftest import Server
    if not os.path.exists(micro_model()):
        pytest.skip("no reference model")
    d = tmp_path_factory.mktemp("auth")
    good = create_key(d, "good")
    revoked = create_key(d, "revoked")
    keys(d, "revoke", key_id(d, "revoked"))
    s = Server(d, ["--workers", "1", "--log-level", "debug"])
    s.start()
    s.good, s.revoked = good, revoked
    yield s
    s.stop()
    s.check_log_clean()


@pytest.mark.parametrize("case,headers,status", [
    ("no key", {}, 401),
    ("wrong key", {"Authorization": "Bearer sk-scribed-" + "A" * 43}, 401),
    ("not bearer", {"Authorization": "Basic dXNlcjpwYXNz"}, 401),
    ("revoked key", "revoked", 401),
    ("good key", "good", 200),
    ("good key as X-API-Key", "x-good", 200),
])
def test_auth_table(authed, case, headers, status):
    if headers == "good":
        headers = bearer(authed.good)
    elif headers == "x-good":
        headers = {"X-API-Key": authed.good}
    elif headers == "revoked":
        headers = bearer(authed.revoked)
    for path in ("/v1/models", "/v1/jobs"):
        r = get(authed, path, headers)
        assert r.status_code == status, (case, path, r.text)
        if status == 401:
            err = assert_openai_error(r, 401)
            assert err["type"] == "authentication_error"
            assert err["code"] in ("missing_api_key", "invalid_api_key")
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            # the revoked key is not told apart from an unknown one
            assert "revoked" not in err["code"]


def test_open_routes_need_no_key(authed):
    assert get(authed, "/health").status_code == 200
    assert requests.head(authed.url("/health"), timeout=5).status_code == 200
    page = get(authed, "/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    for asset in re.findall(r'(?:src|href)="/?([\w.-]+\.(?:js|css|svg))"', page.text):
        assert get(authed, "/" + asset).status_code == 200, asset
    assert get(authed, "/api.js").status_code == 200
    # unknown API paths do not reveal themselves without a key
    assert get(authed, "/v1/nothing/here").status_code == 401
    assert get(authed, "/v1/nothing/here", bearer(authed.good)).status_code == 404


def test_metrics_protected_by_default(authed):
    assert get(authed, "/metrics").status_code == 401
    r = get(authed, "/metrics", bearer(authed.good))
    assert r.status_code == 200 and "scribed_http_requests_total" in r.text
    # the gate's own counters: the refused request above counts as a missing key
    assert 'scribed_auth_failures_total{reason="missing"}' in r.text
    missing = [l for l in r.text.splitlines()
               if l.startswith('scribed_auth_failures_total{reason="missing"}')]
    assert int(missing[0].split()[-1]) >= 1
    assert 'scribed_rate_limited_total{limit="key"}' in r.text
    assert 'scribed_slow_clients_total{phase="headers"}' in r.text
    assert "scribed_realtime_streams 0" in r.text


def test_metrics_open_when_asked(make_server, tmp_path):
    d = tmp_path / "m"
    key = create_key(d)
    s = make_server(args=["--protect-metrics", "0"], data_dir=d)
    assert get(s, "/metrics").status_code == 200
    assert get(s, "/v1/models").status_code == 401
    assert get(s, "/v1/models", bearer(key)).status_code == 200
    text = get(s, "/metrics").text
    promtool = shutil.which("promtool")
    if promtool:  # the whole exposition, gate counters included, is valid Prometheus text
        out = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr


def test_query_key_only_for_websockets(authed):
    r = get(authed, "/v1/models", params={"api_key": authed.good})
    err = assert_openai_error(r, 401)
    assert "WebSocket" in err["message"]
    # nor on a REST route whose request claims to be a WebSocket upgrade
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for path in ("/v1/jobs", "/v1/models", "/metrics"):
        r = get(authed, path, upgrade, params={"api_key": authed.good})
        err = assert_openai_error(r, 401)
        assert "/v1/realtime" in err["message"], (path, err)


def test_upload_without_key_refused_before_body(authed, short_wav):
    big = b"RIFF" + bytes(4 << 20)
    r = requests.post(authed.url("/v1/audio/transcriptions"), data={"model": "whisper-1"},
                      files={"file": ("a.wav", big, "audio/wav")}, timeout=30)
    assert_openai_error(r, 401)
    refused_id = r.headers["X-Request-Id"]
    with open(short_wav, "rb") as f:
        r = requests.post(authed.url("/v1/audio/transcriptions"), data={"model": "whisper-1"},
                          files={"file": ("a.wav", f, "audio/wav")}, headers=bearer(authed.good),
                          timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["text"]
    # the refused upload was never written (its body was not read)
    assert not [p for p in os.listdir(os.path.join(authed.data_dir, "uploads"))
                if p.startswith(refused_id)]
    refused = [e for e in authed.events("http.request") if e.get("req") == refused_id]
    assert refused and refused[0]["bytes_in"] == 0


def test_websocket_needs_key(authed):
    url = f"ws://127.0.0.1:{authed.port}/v1/realtime"

    async def attempt(u, **kw):
        try:
            async with websockets.connect(u, **kw) as ws:
                await ws.close()
                return 101
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code

    assert asyncio.run(attempt(url)) == 401
    assert asyncio.run(attempt(url + "?api_key=" + authed.revoked)) == 401
    assert asyncio.run(attempt(url + "?api_key=" + authed.good)) == 101
    assert asyncio.run(attempt(url, extra_headers=bearer(authed.good))) == 101


def test_keys_take_effect_while_running(authed):
    d = authed.data_dir
    fresh = create_key(d, "fresh")
    wait_status(authed, "/v1/models", bearer(fresh), 200, timeout=10)
    keys(d, "revoke", key_id(d, "fresh"))
    t0 = time.time()
    wait_status(authed, "/v1/models", bearer(fresh), 401, timeout=10)
    assert time.time() - t0 < 6
    # the good key was used: list shows it
    rows = [json.loads(l) for l in keys(d, "list", "--json").splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["fresh"]["revoked"]
    assert by_name["revoked"]["revoked"]
    assert not by_name["good"]["revoked"]
    assert not any(authed.good in l or authed.revoked in l for l in keys(d, "list").splitlines())


@pytest.mark.sqlite_only
def test_no_key_in_logs(authed):
    # every way of sending a key, good and bad, then read the whole debug-level log
    get(authed, "/v1/models", bearer(authed.good))
    get(authed, "/v1/models", {"X-API-Key": authed.revoked})
    get(authed, "/v1/models", params={"api_key": authed.good})
    get(authed, "/nope", params={"api_key": authed.good})
    time.sleep(0.3)
    log = authed.log()
    for secret in (authed.good, authed.revoked, authed.good[11:], authed.revoked[11:]):
        assert secret not in log
    assert "Bearer" not in log and "api_key=" not in log
    # ... but the key id is there, so a request can be traced to its key
    good_id = key_id(authed.data_dir, "good")
    assert any(e.get("key") == good_id for e in authed.events("http.request"))
    denied = [e for e in authed.events("http.request") if e.get("status") == 401]
    assert denied and all(e.get("deny") for e in denied)
    # the database holds hashes, never keys
    db = b""
    for name in ("scribed.db", "scribed.db-wal"):
        path = os.path.join(authed.data_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                db += f.read()
    assert authed.good.encode() not in db and authed.good[11:].encode() not in db
    assert hashlib.sha256(authed.good.encode()).hexdigest().encode() in db


def test_static_key_from_env(make_server):
    s = make_server(env={"SCRIBED_API_KEY": "static-test-key-123"})
    assert get(s, "/v1/models").status_code == 401
    assert get(s, "/v1/models", bearer("static-test-key-123")).status_code == 200
    assert get(s, "/v1/models", {"X-API-Key": "static-test-key-12"}).status_code == 401
    assert get(s, "/health").status_code == 200
    time.sleep(0.2)
    assert "static-test-key-123" not in s.log()
    assert any(e.get("key") == "static" for e in s.events("http.request"))


def test_jwt_hs256(make_server):
    secret = "jwt-integration-secret"
    s = make_server(env={"JWT_SECRET": secret})
    now = int(time.time())
    good = make_jwt(secret, {"sub": "svc-a", "exp": now + 300})
    r = get(s, "/v1/models", bearer(good))
    assert r.status_code == 200, r.text
    cases = {
        "expired": make_jwt(secret, {"sub": "a", "exp": now - 120}),
        "not yet": make_jwt(secret, {"sub": "a", "exp": now + 600, "nbf": now + 300}),
        "no exp": make_jwt(secret, {"sub": "a"}),
        "other secret": make_jwt("nope", {"sub": "a", "exp": now + 300}),
        "alg none": make_jwt(secret, {"sub": "a", "exp": now + 300}, {"alg": "none"}).rsplit(
            ".", 1)[0] + ".",
        "alg HS512": make_jwt(secret, {"sub": "a", "exp": now + 300}, {"alg": "HS512"}),
    }
    for name, tok in cases.items():
        r = get(s, "/v1/models", bearer(tok))
        assert r.status_code == 401, (name, r.text)
        assert r.json()["error"]["code"] == "invalid_api_key"
    time.sleep(0.2)
    assert any(e.get("key") == "jwt:svc-a" for e in s.events("http.request"))
    assert good not in s.log() and secret not in s.log()
    # SCRIBED_JWT_SECRET is the same setting
    s2 = make_server(env={"SCRIBED_JWT_SECRET": secret})
    assert get(s2, "/v1/models", bearer(good)).status_code == 200


def test_auth_off_without_keys(make_server):
    s = make_server()
    assert get(s, "/v1/models").status_code == 200
    assert get(s, "/metrics").status_code == 200
    assert get(s, "/v1/models", bearer("anything")).status_code == 200


def test_keys_cli_errors(tmp_path):
    r = subprocess.run([scribed_bin(), "keys", "list", "--data-dir", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no database" in r.stderr
    r = subprocess.run([scribed_bin(), "keys", "revoke", "key_nope", "--data-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    r = subprocess.run([scribed_bin(), "keys", "frobnicate"], capture_output=True, text=True,
                       timeout=30)
    # what was wrong first, then the usage
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "scribed keys: unknown keys command 'frobnicate'", r.stderr
    assert lines[1].startswith("usage:"), r.stderr
    for args, why in ((["keys"], "a command is needed"), (["keys", "list", "--name"],
                      "--name needs a value"), (["keys", "list", "--nope"], "'--nope'")):
        r = subprocess.run([scribed_bin(), *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and why in r.stderr.splitlines()[0], r.stderr
