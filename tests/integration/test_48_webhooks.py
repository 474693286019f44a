"""Webhooks go out concurrently with a cap per destination host, so one
tenant's slow endpoint does not delay another's, and each POST is signed
(Scribed-Signature: t=UNIX,v1=hex HMAC-SHA256(secret, "t.BODY")) so the
receiver can verify it, as with Stripe and GitHub."""
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from conftest import submit_job

SECRET = "whsec-test-0123456789abcdef"


class Receiver:
    """Records deliveries; with hold, each request waits until release() (a slow endpoint)."""

    def __init__(self, host="127.0.0.1", hold=False):
        self.received, self.headers = [], []
        self.in_flight = self.max_in_flight = 0
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        self.lock = threading.Lock()
        rx = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with rx.lock:
                    rx.in_flight += 1
                    rx.max_in_flight = max(rx.max_in_flight, rx.in_flight)
                    rx.received.append(body)
                    rx.headers.append(dict(self.headers))
                rx.gate.wait(120)
                with rx.lock:
                    rx.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def release(self):
        self.gate.set()

    def close(self):
        self.gate.set()
        self.httpd.shutdown()


def wait_for(cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_slow_endpoint_does_not_delay_others_and_is_capped(make_server, short_wav):
    s = make_server(args=["--workers", "2", "--callback-allow-private", "1",
                          "--callback-timeout-ms", "120000", "--callback-concurrency", "4",
                          "--callback-per-host", "2"])
    # two hosts: 127.0.0.1 is slow, 127.0.0.2 (same machine, another host name) is fast
    slow, fast = Receiver(hold=True), Receiver(host="127.0.0.2")
    try:
        slow_jobs = [submit_job(s, short_wav, {"callback_url": slow.url}).json()["id"]
                     for _ in range(4)]
        assert wait_for(lambda: len(slow.received) >= 2), "the slow endpoint got nothing"
        fast_job = submit_job(s, short_wav, {"callback_url": fast.url}).json()["id"]
        # delivered while every slow delivery is still held open
        assert wait_for(lambda: len(fast.received) == 1), "the fast endpoint waited"
        assert json.loads(fast.received[0])["id"] == fast_job
        assert slow.in_flight == 2 and slow.max_in_flight == 2, slow.max_in_flight
        slow.release()
        assert wait_for(lambda: len(slow.received) == 4)
        assert sorted(json.loads(b)["id"] for b in slow.received) == sorted(slow_jobs)
        assert slow.max_in_flight == 2  # never more than the per-host cap
    finally:
        slow.close()
        fast.close()


def verify(secret, header, body, now):
    parts = dict(p.split("=", 1) for p in header.split(","))
    t = int(parts["t"])
    want = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"]) and abs(now - t) < 300


def test_signed_payloads(make_server, short_wav):
    s = make_server(args=["--callback-allow-private", "1"],
                    env={"SCRIBED_CALLBACK_SECRET": SECRET})
    rx = Receiver()
    try:
        jid = submit_job(s, short_wav, {"callback_url": rx.url}).json()["id"]
        assert wait_for(lambda: rx.received)
        body, headers = rx.received[0], rx.headers[0]
        assert json.loads(body)["id"] == jid
        sig = headers["Scribed-Signature"]
        assert verify(SECRET, sig, body, time.time()), sig
        assert not verify("another-secret", sig, body, time.time())
        assert not verify(SECRET, sig, body + b" ", time.time())
        assert SECRET not in s.log()
    finally:
        rx.close()
    # without a secret nothing is signed
    s2 = make_server(args=["--callback-allow-private", "1"])
    rx = Receiver()
    try:
        submit_job(s2, short_wav, {"callback_url": rx.url})
        assert wait_for(lambda: rx.received)
        assert "Scribed-Signature" not in rx.headers[0]
    finally:
        rx.close()


def test_shutdown_does_not_wait_for_a_slow_endpoint(make_server, short_wav):
    """A POST held open by its receiver ends with the service (it stays pending for the next
    start) instead of holding the shutdown for the whole callback timeout."""
    s = make_server(args=["--callback-allow-private", "1", "--callback-timeout-ms", "600000"])
    slow = Receiver(hold=True)
    try:
        jid = submit_job(s, short_wav, {"callback_url": slow.url}).json()["id"]
        assert wait_for(lambda: slow.received)
        s.stop()  # fails the test if the server is not gone within its timeout
        assert s.proc.returncode == 0, s.proc.returncode
        s.start()
        job = requests.get(s.url(f"/v1/jobs/{jid}"), timeout=5).json()
        assert job["callback_status"] in ("pending", "delivered"), job
    finally:
        slow.close()
