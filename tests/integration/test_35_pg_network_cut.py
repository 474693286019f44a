"""A worker cut off from the database (issue 17): the test puts a `scribed
worker` in a network namespace of its own, joined to the host by a veth pair
(the namespace reaches PostgreSQL through a small TCP relay on the host end,
as the private cluster listens on 127.0.0.1 only), lets it claim a job, then
takes the link down. Its lease expires, a worker on the host re-claims the
job and finishes it while the cut-off worker is still cut off; once the link
is back, the cut-off worker's late outcome is dropped (job.lease_lost): the
job shows one result, from its second attempt.

Needs root and iproute2 (`ip netns`); skipped with the reason otherwise, and
without PostgreSQL."""
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import uuid
from datetime import datetime

import pytest
import requests

from conftest import (make_wav, micro_model, pg_available, pg_cluster, scribed_bin, submit_job,
                      wait_job)

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL server not installed")

LEASE_S = 3


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Netns:
    """A network namespace with a veth link to the host: host end HOST_IP, inside NS_IP."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.name, self.host_if, self.ns_if = f"sdt-{tag}", f"sdh{tag}", f"sdn{tag}"
        octet = 16 + int(tag[:2], 16) % 200
        self.host_ip, self.ns_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"
        ip("netns", "add", self.name)
        try:
            ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            ip("link", "set", self.ns_if, "netns", self.name)
            ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            ip("link", "set", self.host_if, "up")
            for cmd in (["addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if],
                        ["link", "set", self.ns_if, "up"], ["link", "set", "lo", "up"]):
                ip("netns", "exec", self.name, "ip", *cmd)
        except subprocess.CalledProcessError:
            self.close()
            raise

    def link(self, up):
        ip("link", "set", self.host_if, "up" if up else "down")

    def close(self):
        ip("link", "del", self.host_if, check=False)
        ip("netns", "del", self.name, check=False)


class Relay:
    """Forwards TCP from listen_ip:port to 127.0.0.1:target (threads; closed with the test)."""

    def __init__(self, listen_ip, target):
        self.sock = socket.socket()
        self.sock.bind((listen_ip, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.target = target
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [])
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            pass
        finally:
            a.close()
            b.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root to make a network namespace")
    if not shutil.which("ip"):
        pytest.skip("needs iproute2's `ip`")
    try:
        ns = Netns()
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot make a network namespace here: {e.stderr.strip()}")
    yield ns
    ns.close()


def events(path, name):
    import json
    out = []
    with open(path, "rb") as f:
        for line in f.read().decode("utf-8", "replace").splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == name:
                out.append(ev)
    return out


def test_cut_off_worker_loses_its_lease_and_the_job_moves(make_server, netns, tmp_path):
    long_wav = make_wav(tmp_path / "long90.wav", 90)  # still running when the cable goes
    url = pg_cluster().database("cut_" + uuid.uuid4().hex[:12])
    db = url.rsplit("/", 1)[1]
    relay = Relay(netns.host_ip, pg_cluster().port)
    api = make_server(args=["--workers", "0", "--database-url", url, "--lease-s", str(LEASE_S)])
    data = tmp_path / "cut"
    data.mkdir()
    log = data / "server.log"
    ns_url = url.replace(f"127.0.0.1:{pg_cluster().port}", f"{netns.host_ip}:{relay.port}")
    with open(log, "ab") as out:
        cut = subprocess.Popen(
            ["ip", "netns", "exec", netns.name, scribed_bin(), "worker", "--data-dir", str(data),
             "--model", micro_model(), "--workers", "1", "--database-url", ns_url,
             "--lease-s", str(LEASE_S), "--node-id", "cut-off", "--health-port", "0"],
            stdout=out, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "SCRIBED_DATABASE_URL"})
    try:
        jid = submit_job(api, long_wav, {"response_format": "text"}).json()["id"]
        deadline = time.time() + 120
        while not any(e["job"] == jid for e in events(log, "job.start")):
            assert cut.poll() is None, log.read_text()
            assert time.time() < deadline, "the namespaced worker never started the job"
            time.sleep(0.1)
        # idle beside it (the job is the namespaced worker's) until the cable is pulled
        host_worker = make_server(args=["--workers", "1", "--database-url", url,
                                        "--lease-s", str(LEASE_S)], command="worker")
        netns.link(False)  # packets vanish, no reset
        cut_at = time.time()
        job = wait_job(api, jid, timeout=300)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2, job
        assert jid in [e["job"] for e in host_worker.events("job.done")]
        started = [e for e in host_worker.events("job.start") if e["job"] == jid][0]
        moved_s = datetime.fromisoformat(started["ts"].replace("Z", "+00:00")).timestamp() - cut_at
        print(f"job of the cut-off worker restarted on another {moved_s:.1f} s after the cut"
              f" (lease {LEASE_S} s)")
        result = requests.get(api.url(f"/v1/jobs/{jid}/result"), timeout=10).text
        finished = pg_cluster().psql(f"SELECT finished_ms FROM jobs WHERE id = '{jid}'", db=db)
        # the link comes back: the cut-off worker's late outcome must not replace the result
        netns.link(True)
        deadline = time.time() + 120
        while not any(e["job"] == jid for e in events(log, "job.lease_lost")):
            assert time.time() < deadline, "the cut-off worker never noticed its lost lease"
            time.sleep(0.2)
        assert requests.get(api.url(f"/v1/jobs/{jid}/result"), timeout=10).text == result
        assert pg_cluster().psql(f"SELECT finished_ms FROM jobs WHERE id = '{jid}'",
                                 db=db) == finished
        assert pg_cluster().psql(f"SELECT count(*) FROM results WHERE job_id = '{jid}'"
                                 f" AND format = 'text'", db=db).strip() == "1"
        assert not any(e["job"] == jid for e in events(log, "job.done"))
    finally:
        cut.kill()
        cut.wait()
        relay.close()
