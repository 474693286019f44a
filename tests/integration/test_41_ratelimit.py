"""Rate limits: token buckets per API key and per address (429 with
Retry-After, then recovery), /health never limited, key guessing costs the
address its rate, the cap on concurrent uploads per key, the cap on
connections per address; and every refusal reaches the client as an answer
it can read (the body is read first, or the close lingers), on a connection
that stays alive where it can."""
import os
import re
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
    # The slow upload must be admitted before the second one. If the second one's
    # headers get in first (a loaded machine can run its thread first), the slow one
    # is the one refused (its answer waits for its body) and holds nothing: then the
    # test opens a new slow upload and tries again.
    slow = None
    deadline = time.time() + 20
    try:
        while True:
            if slow:
                slow.close()
            slow = open_slow_upload(s, a)
            time.sleep(0.3)  # time for its headers to be read and admitted
            with open(short_wav, "rb") as f:
                r = requests.post(s.url("/v1/jobs"), headers=bearer(a),
                                  files={"file": ("a.wav", f, "audio/wav")}, timeout=30)
            if r.status_code == 429 or time.time() > deadline:
                break
        err = assert_openai_error(r, 429)
        assert err["code"] == "too_many_uploads"
        assert r.headers["Retry-After"]
        with open(short_wav, "rb") as f:  # another key is not affected
            r = requests.post(s.url("/v1/jobs"), headers=bearer(b),
                              files={"file": ("a.wav", f, "audio/wav")}, timeout=30)
        assert r.status_code == 202, r.text
    finally:
        if slow:
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


def read_answer(sock):
    """One response off a kept-alive socket: (status, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        c = sock.recv(65536)
        assert c, f"closed before the answer: {data!r}"
        data += c
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    while len(body) < int(headers["content-length"]):
        c = sock.recv(65536)
        assert c, "closed in the middle of the answer"
        body += c
    return int(lines[0].split()[1]), headers, body


def multipart_request(path, wav_bytes, extra=""):
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + wav_bytes + b"\r\n--XyZ--\r\n")
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
            "Content-Type: multipart/form-data; boundary=XyZ\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_refused_upload_keeps_the_connection_alive(make_server, short_wav):
    """A 429 decided from the headers waits for the body (read and dropped): the client
    reads it, and its kept-alive connection serves the next request."""
    s = make_server(args=["--rate-limit-ip-rpm", "1", "--rate-limit-burst", "1"])
    with open(short_wav, "rb") as f:
        wav = f.read()
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_answer(sock)[0] == 200  # the one token
        sock.sendall(multipart_request("/v1/audio/transcriptions", wav))
        status, headers, body = read_answer(sock)
        assert status == 429 and b"rate_limit_exceeded" in body, body
        assert headers["retry-after"] and headers.get("connection", "").lower() != "close"
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_answer(sock)[0] == 200


def test_refused_big_upload_still_reads_its_answer(make_server, tmp_path):
    """A client that sends its whole body before it reads (Python's requests, Node's
    fetch with a Buffer) gets the 401 decided from the headers, body declared or chunked,
    instead of a reset: past 1 MiB the answer goes out first and the close lingers."""
    s = make_server(env={"SCRIBED_API_KEY": "sk-scribed-right"})
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + os.urandom(5 << 20))
    with open(big, "rb") as f:
        r = requests.post(s.url("/v1/audio/transcriptions"), data={"model": "whisper-1"},
                          files={"file": ("big.wav", f)}, timeout=60)
    assert_openai_error(r, 401)

    def chunks():
        yield b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
        for _ in range(5 * 16):
            yield os.urandom(65536)
        yield b"\r\n--XyZ--\r\n"

    r = requests.post(s.url("/v1/audio/transcriptions"), data=chunks(), timeout=60,
                      headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert_openai_error(r, 401)
    assert requests.get(s.url("/health"), timeout=5).status_code == 200


def test_connections_over_the_address_limit_get_429(make_server):
    """Past --max-connections-per-ip a connection's request is answered 429 and the
    connection closed after it (a client's pool may open one too many); past twice
    the limit connections are closed at once. Health is never limited."""
    s = make_server(args=["--max-connections-per-ip", "3"])
    held = []

    def counted_connection(deadline):
        """A connection within the limit (the start's health probes may still be closing)."""
        while True:
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            try:
                c.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if read_answer(c)[0] == 200:
                    return c
            except (ConnectionResetError, AssertionError):
                pass
            c.close()
            assert time.time() < deadline, "no connection within the limit"
            time.sleep(0.1)

    try:
        for _ in range(3):
            held.append(counted_connection(time.time() + 10))
        over = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        held.append(over)
        over.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = read_answer(over)
        assert status == 429 and b"too_many_connections" in body, body
        assert headers["connection"].lower() == "close" and int(headers["retry-after"]) >= 1
        assert over.recv(1) == b""  # closed after its answer
        probe = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        held.append(probe)
        probe.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_answer(probe)[0] == 200
        # A flood: 10 more connections while 4 are held (3 counted, the probe). The hard
        # limit is 6, so at most 2 get in, plus one for each connection the server
        # has closed but libmicrohttpd has not yet taken off its count (`over`, and
        # any refused while waiting for a counted one): its cleanup runs after the
        # client has seen the close, at a time the test cannot observe.
        flood = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(10)]
        held.extend(flood)
        cut_at_accept = 0
        for c in flood:
            try:
                c.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                cut_at_accept += c.recv(1) == b""  # closed at accept: no answer
            except (ConnectionResetError, BrokenPipeError):
                cut_at_accept += 1
        assert cut_at_accept >= 4, f"only {cut_at_accept} of 10 closed at accept"
        for c in held[2:]:  # one counted connection goes, and every extra one
            c.close()
        del held[2:]
        counted_connection(time.time() + 10).close()  # a new one is served again
        held[0].sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        metrics = read_answer(held[0])[2].decode()
        refused = re.search(r'scribed_rate_limited_total\{limit="connections"\} (\d+)', metrics)
        assert refused and int(refused[1]) >= 1, metrics
    finally:
        for c in held:
            c.close()
