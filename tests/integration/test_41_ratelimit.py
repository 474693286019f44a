"""Rate limits: token buckets per API key and per address (429 with
Retry-After, then recovery), /health never limited, key guessing costs the
address its rate, and the cap on concurrent uploads per key."""
import socket
import time

import requests

from conftest import assert_openai_error
from test_40_auth import bearer, create_key


def burst(server, n, headers=None, path="/v1/models"):
    return [requests.get(server.url(path), headers=headers or {}, timeout=10) for _ in range(n)]


def assert_limited(r):
    err = assert_openai_error(r, 429)
    assert err["type"] == "rate_limit_error"
    assert err["code"] == "rate_limit_exceeded"
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 60
    return retry


def test_key_burst_gets_429_then_recovers(make_server, tmp_path):
    d = tmp_path / "k"
    a, b = create_key(d, "a"), create_key(d, "b")
    s = make_server(args=["--rate-limit-key-rpm", "60", "--rate-limit-burst", "5"], data_dir=d)
    rs = burst(s, 12, bearer(a))
    codes = [r.status_code for r in rs]
    assert codes[:5] == [200] * 5, codes
    assert codes.count(429) >= 5, codes
    retry = assert_limited(rs[-1])
    # another key has its own bucket; health is never limited
    assert requests.get(s.url("/v1/models"), headers=bearer(b), timeout=5).status_code == 200
    assert all(r.status_code == 200 for r in burst(s, 30, path="/health"))
    time.sleep(retry + 0.2)
    assert requests.get(s.url("/v1/models"), headers=bearer(a), timeout=5).status_code == 200
    time.sleep(0.2)
    limited = [e for e in s.events("http.request") if e.get("status") == 429]
    assert limited and all(e.get("deny") == "rate_key" and e.get("key") for e in limited)


def test_address_limit_without_auth(make_server):
    s = make_server(args=["--rate-limit-ip-rpm", "120", "--rate-limit-burst", "3"])
    codes = [r.status_code for r in burst(s, 8)]
    assert codes[:3] == [200] * 3 and 429 in codes, codes
    r = burst(s, 1)[0]
    retry = assert_limited(r)
    assert retry == 1  # 2 per second
    time.sleep(1.2)
    assert burst(s, 1)[0].status_code == 200
    # the web page counts against the address too, health does not
    assert requests.get(s.url("/health"), timeout=5).status_code == 200


def test_guessing_keys_is_rate_limited(make_server, tmp_path):
    d = tmp_path / "g"
    good = create_key(d)
    s = make_server(args=["--rate-limit-ip-rpm", "60", "--rate-limit-burst", "4"], data_dir=d)
    codes = [r.status_code for r in
             burst(s, 10, {"Authorization": "Bearer sk-scribed-guess" + "x" * 38})]
    assert codes[:4] == [401] * 4 and codes[-1] == 429, codes
    # a caller with a valid key is charged to its key, not to the address
    assert requests.get(s.url("/v1/models"), headers=bearer(good), timeout=5).status_code == 200


def open_slow_upload(server, key):
    """Starts a multipart upload and sends only part of its body: it holds an upload slot."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall((f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {key}\r\n"
                  "Content-Type: multipart/form-data; boundary=XyZ\r\n"
                  "Content-Length: 1000000\r\n\r\n"
                  "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                  "Content-Type: audio/wav\r\n\r\nRIFF").encode())
    return sock


def test_concurrent_uploads_capped_per_key(make_server, tmp_path, short_wav):
    d = tmp_path / "u"
    a, b = create_key(d, "a"), create_key(d, "b")
    s = make_server(args=["--max-uploads-per-key", "1"], data_dir=d)
    slow = open_slow_upload(s, a)
    try:
        deadline = time.time() + 10
        while True:  # the slow upload's headers are in once a second one is refused
            with open(short_wav, "rb") as f:
                r = requests.post(s.url("/v1/jobs"), headers=bearer(a),
                                  files={"file": ("a.wav", f, "audio/wav")}, timeout=30)
            if r.status_code == 429 or time.time() > deadline:
                break
            time.sleep(0.2)
        err = assert_openai_error(r, 429)
        assert err["code"] == "too_many_uploads"
        assert r.headers["Retry-After"]
        with open(short_wav, "rb") as f:  # another key is not affected
            r = requests.post(s.url("/v1/jobs"), headers=bearer(b),
                              files={"file": ("a.wav", f, "audio/wav")}, timeout=30)
        assert r.status_code == 202, r.text
    finally:
        slow.close()
    deadline = time.time() + 10
    while time.time() < deadline:  # the slot comes back when the connection ends
        with open(short_wav, "rb") as f:
            r = requests.post(s.url("/v1/jobs"), headers=bearer(a),
                              files={"file": ("a.wav", f, "audio/wav")}, timeout=30)
        if r.status_code == 202:
            break
        time.sleep(0.2)
    assert r.status_code == 202, r.text
