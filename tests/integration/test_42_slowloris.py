"""Slow clients: many connections sending their headers one byte per second
(slowloris) do not stop normal requests from being served; the server cuts
them at the header deadline even though they never go idle; a body that
trickles in gets 408. The attacker uses another loopback address
(127.0.0.2) so the per-address connection limit can tell it apart."""
import re
import socket
import threading
import time

import requests

REQUEST = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200


class Slowloris:
    """n connections from src, each sending one more header byte per second until stopped."""

    def __init__(self, port, n, src="127.0.0.2"):
        self.socks, self.cut_at, self.t0 = [], {}, time.time()
        for _ in range(n):
            s = socket.socket()
            s.bind((src, 0))
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            s.setblocking(False)
            self.socks.append(s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stop.is_set() and i < len(REQUEST):
            for s in self.socks:
                if s in self.cut_at:
                    continue
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        self.cut_at[s] = time.time() - self.t0
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    self.cut_at[s] = time.time() - self.t0
                    continue
                try:
                    s.send(REQUEST[i:i + 1])
                except OSError:
                    self.cut_at[s] = time.time() - self.t0
            i += 1
            self.stop.wait(1.0)

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def normal_requests(server, seconds, every=0.3):
    """GET /v1/models from 127.0.0.1 for `seconds`; returns (status, latency) pairs."""
    out, end = [], time.time() + seconds
    while time.time() < end:
        t = time.time()
        try:
            code = requests.get(server.url("/v1/models"), timeout=5).status_code
        except requests.RequestException as e:
            code = repr(e)
        out.append((code, time.time() - t))
        time.sleep(every)
    return out


def test_slowloris_from_another_address(make_server):
    s = make_server(args=["--header-timeout-s", "3", "--max-connections", "64",
                          "--max-connections-per-ip", "16"])
    attack = Slowloris(s.port, 150)
    try:
        results = normal_requests(s, 7)
        assert results and all(code == 200 for code, _ in results), results
        assert max(lat for _, lat in results) < 2.0, results
        # every attacking connection has been closed by now: refused over the
        # per-address limit at once, or cut at the 3 s header deadline
        time.sleep(0.5)
        assert len(attack.cut_at) == len(attack.socks), (len(attack.cut_at), len(attack.socks))
        assert max(attack.cut_at.values()) < 6.5, sorted(attack.cut_at.values())[-5:]
    finally:
        attack.close()
    assert requests.get(s.url("/health"), timeout=5).status_code == 200


def test_slowloris_same_address_is_cut_at_header_deadline(make_server):
    s = make_server(args=["--header-timeout-s", "2", "--max-connections", "48",
                          "--max-connections-per-ip", "0"])
    attack = Slowloris(s.port, 40, src="127.0.0.1")
    try:
        time.sleep(0.5)
        # 40 trickling connections, each with its own thread: normal requests still go through
        results = normal_requests(s, 2)
        assert all(code == 200 for code, _ in results), results
        time.sleep(2.5)
        assert len(attack.cut_at) == len(attack.socks) == 40
        times = sorted(attack.cut_at.values())
        assert 1.8 <= times[0] and times[-1] < 4.5, times
    finally:
        attack.close()


def read_response(sock):
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head, re.I)[1])
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_kept_alive_connection_idle_vs_trickling(make_server):
    """An idle kept-alive connection outlives the header deadline (a proxy's
    upstream pool reuses it safely); a next request that trickles is cut."""
    s = make_server(args=["--header-timeout-s", "2"])
    req = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", s.port))
    try:
        sock.sendall(req)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(3.5)  # idle longer than the header deadline
        sock.sendall(req)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        t0 = time.time()
        for ch in REQUEST[:12]:  # the next request, one byte a second
            try:
                sock.send(bytes([ch]))
            except OSError:
                break
            sock.settimeout(1.0)
            try:
                if sock.recv(1) == b"":
                    break
            except socket.timeout:
                pass
            except OSError:
                break
        took = time.time() - t0
        assert 1.8 <= took < 8, took  # 2 s after its first or (racing the answer) second byte
    finally:
        sock.close()


def test_slow_body_gets_408(make_server):
    s = make_server(args=["--body-timeout-s", "2", "--body-min-rate", "1000"])
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
                 b"Content-Length: 100000\r\n\r\n--XyZ\r\n")
    sock.settimeout(0.25)
    t0, answer = time.time(), b""
    try:
        while time.time() - t0 < 10 and b"\r\n\r\n" not in answer:
            try:
                sock.send(b"x")
            except OSError:
                pass
            try:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            except socket.timeout:
                pass
            except OSError:
                break
    finally:
        sock.close()
    took = time.time() - t0
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 1.8 <= took < 5, took
    # a body at a normal pace is unaffected
    r = requests.post(s.url("/v1/jobs"), files={"file": ("a.wav", b"RIFF" + b"\0" * 50000)},
                      timeout=10)
    assert r.status_code != 408
