"""A webhook whose delivery a dead node held (issue 17): the node that ran
the job is killed while its POST is in flight; once its claim expires a live
node re-claims the delivery and posts it, without any node restarting, and
only one node ever records it delivered. Skipped without PostgreSQL."""
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import pg_available, pg_cluster, submit_job, wait_job

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL server not installed")

LEASE_S = 3


class Receiver:
    """The first POST hangs (its sender dies meanwhile); every later one gets 200."""

    def __init__(self):
        self.posts = 0
        self.first = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        rx = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with rx.lock:
                    rx.posts += 1
                    n = rx.posts
                if n == 1:
                    rx.first.set()
                    rx.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()


def test_dead_nodes_webhook_moves_to_a_live_node(make_server, short_wav):
    url = pg_cluster().database("cb_" + uuid.uuid4().hex[:12])
    db = url.rsplit("/", 1)[1]
    common = ["--database-url", url, "--lease-s", str(LEASE_S), "--callback-allow-private", "1",
              "--callback-timeout-ms", "2000", "--callback-backoff-ms", "100"]
    rx = Receiver()
    try:
        api = make_server(args=["--workers", "0", *common])
        w1 = make_server(args=["--workers", "1", *common], command="worker")
        jid = submit_job(api, short_wav, {"callback_url": rx.url}).json()["id"]
        assert rx.first.wait(120), "the worker never posted the webhook"
        w1.kill9()  # mid-POST: the delivery stays PENDING, claimed by a dead node
        killed = time.time()
        assert wait_job(api, jid)["status"] == "succeeded"
        deadline = time.time() + 60
        while pg_cluster().psql(f"SELECT cb_state FROM jobs WHERE id = '{jid}'",
                                db=db).strip() != "2":  # STORE_CB_DELIVERED
            assert time.time() < deadline, "no live node took the webhook over"
            time.sleep(0.2)
        moved_s = time.time() - killed
        assert rx.posts == 2, rx.posts  # the cut-off POST, then one delivery
        assert [e["job"] for e in api.events("callback.reclaimed")] == [jid]
        delivered = [e for e in api.events("callback.attempt") if e.get("delivered")]
        assert [e["job"] for e in delivered] == [jid]
        print(f"webhook of a killed node delivered by another {moved_s:.1f} s after kill -9")
    finally:
        rx.close()
