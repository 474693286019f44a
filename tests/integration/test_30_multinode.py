"""Scale-out on PostgreSQL (issue 17): API-only nodes and `scribed worker`
processes sharing one database as the queue. 100 jobs across two API nodes
run exactly once; a worker killed mid-job loses its lease and another worker
finishes the job; a node starting up never re-queues what a live node runs;
bad database settings fail at start with one line.

Each test gets its own database on the session's private cluster
(tests/pg/pg.sh, started by conftest); skipped without PostgreSQL."""
import os
import subprocess
import time
import uuid
from datetime import datetime

import pytest
import requests

from conftest import micro_model, pg_available, pg_cluster, scribed_bin, submit_job, wait_job
from test_40_auth import bearer

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL server not installed")

LEASE_S = 3  # short, so a dead worker's job moves quickly in the test


@pytest.fixture
def db_url():
    return pg_cluster().database("mn_" + uuid.uuid4().hex[:12])


def api_node(make_server, url, **kw):
    return make_server(args=["--workers", "0", "--database-url", url, "--lease-s", str(LEASE_S)],
                       **kw)


def worker(make_server, url, extra=(), **kw):
    return make_server(args=["--workers", "1", "--database-url", url, "--lease-s", str(LEASE_S),
                             *extra], command="worker", **kw)


def job_row(url, job_id):
    out = pg_cluster().psql(f"SELECT status, attempts, coalesce(lease_owner, '') FROM jobs"
                            f" WHERE id = '{job_id}'", db=url.rsplit("/", 1)[1])
    status, attempts, owner = out.strip().split("|")
    return status, int(attempts), owner


def done_ids(node):
    return [e["job"] for e in node.events("job.done")]


def test_100_jobs_across_two_api_nodes_run_exactly_once(make_server, db_url, short_wav):
    apis = [api_node(make_server, db_url) for _ in range(2)]
    workers = [worker(make_server, db_url) for _ in range(2)]
    ids = []
    for i in range(100):
        r = submit_job(apis[i % 2], short_wav, {"response_format": "text"})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for i, jid in enumerate(ids):
        job = wait_job(apis[(i + 1) % 2], jid, timeout=600)  # read from the other API node
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 1, job
    # one result each, the same from either API node
    for jid in ids[:10]:
        bodies = {requests.get(a.url(f"/v1/jobs/{jid}/result"), timeout=10).text for a in apis}
        assert len(bodies) == 1 and bodies.pop().strip()
    ran = done_ids(workers[0]) + done_ids(workers[1])
    assert sorted(ran) == sorted(ids)  # each ran once, on some worker
    assert all(done_ids(workers[k]) for k in range(2)), "both workers took jobs"
    # an API-only node answers synchronous requests through the shared queue
    with open(short_wav, "rb") as f:
        r = requests.post(apis[0].url("/v1/audio/transcriptions"),
                          data={"model": "whisper-1", "response_format": "text"},
                          files={"file": ("a.wav", f, "audio/wav")}, timeout=120)
    assert r.status_code == 200 and r.text.strip(), r.text
    h = requests.get(apis[0].url("/health"), timeout=5).json()
    assert h["role"] == "api" and h["realtime"] is False and h["database"]["reachable"], h
    h = requests.get(workers[0].url("/health"), timeout=5).json()
    assert h["role"] == "worker", h
    assert requests.get(workers[0].url("/v1/models"), timeout=5).status_code == 404
    m = requests.get(workers[0].url("/metrics"), timeout=5).text
    assert "scribed_queue_claims_total" in m


def test_killed_worker_job_moves_to_another(make_server, db_url, long_wav):
    api = api_node(make_server, db_url)
    w1 = worker(make_server, db_url)
    jid = submit_job(api, long_wav, {"response_format": "text"}).json()["id"]
    wait_job(api, jid, statuses=("running", "succeeded"))
    w2 = worker(make_server, db_url)  # idle: the job is w1's
    status, attempts, owner = job_row(db_url, jid)
    if status != "running":
        pytest.skip("the engine finished the job before the kill")
    w1.kill9()
    killed_at = time.time()
    job = wait_job(api, jid, timeout=300)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2, job
    assert jid in done_ids(w2)
    started = [e for e in w2.events("job.start") if e["job"] == jid][0]
    moved_s = datetime.fromisoformat(started["ts"].replace("Z", "+00:00")).timestamp() - killed_at
    print(f"dead worker's job restarted on another worker {moved_s:.1f} s after kill -9 "
          f"(lease {LEASE_S} s)")


def test_restart_requeues_none_of_a_live_nodes_jobs(make_server, db_url, long_wav, tmp_path):
    api = api_node(make_server, db_url)
    w1 = worker(make_server, db_url)
    jid = submit_job(api, long_wav).json()["id"]
    wait_job(api, jid, statuses=("running", "succeeded"))
    # another node starts (and stops, and starts again) while w1 runs the job
    for _ in range(2):
        other = worker(make_server, db_url, data_dir=tmp_path / "other")
        assert other.events("jobs.recovered")[-1]["queued"] == 0
        other.stop()
    job = wait_job(api, jid, timeout=300)
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert jid in done_ids(w1)


def test_restart_under_same_node_id_requeues_its_own_job(make_server, db_url, long_wav,
                                                         tmp_path):
    api = api_node(make_server, db_url)
    w = worker(make_server, db_url, extra=["--node-id", "w-fixed", "--lease-s", "600"],
               data_dir=tmp_path / "w")
    jid = submit_job(api, long_wav).json()["id"]
    wait_job(api, jid, statuses=("running", "succeeded"))
    if job_row(db_url, jid)[0] != "running":
        pytest.skip("the engine finished the job before the kill")
    w.kill9()
    # its lease has 10 minutes to run: only recovery of its own id brings the job back now
    w2 = worker(make_server, db_url, extra=["--node-id", "w-fixed", "--lease-s", "600"],
                data_dir=tmp_path / "w")
    job = wait_job(api, jid, timeout=300)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert jid in done_ids(w2)


def run_serve(*args, timeout=30):
    return subprocess.run([scribed_bin(), "serve", "--host", "127.0.0.1", "--port", "0",
                           "--model", micro_model(), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_bad_database_settings_fail_at_start_with_one_line(tmp_path, db_url):
    port = pg_cluster().port
    cases = {
        "refused password": f"postgres://scribed:wrong-secret@127.0.0.1:{port}/scribed",
        "nothing listening": "postgres://scribed:wrong-secret@127.0.0.1:1/scribed",
        "bad url": "postgresql://scribed@127.0.0.1:notaport/x",
        "no such database": f"postgres://scribed:scribed@127.0.0.1:{port}/nope_{os.getpid()}",
    }
    for case, url in cases.items():
        out = run_serve("--data-dir", str(tmp_path / "d"), "--database-url", url)
        assert out.returncode == 1, (case, out.stderr)
        lines = [l for l in out.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "PostgreSQL" in lines[0], (case, out.stderr)
        assert "wrong-secret" not in out.stderr
    # a database a newer scribed migrated: refused, nothing changed
    pg_cluster().psql("CREATE TABLE scribed_schema (version INTEGER NOT NULL);"
                      " INSERT INTO scribed_schema VALUES (999)", db=db_url.rsplit("/", 1)[1])
    out = run_serve("--data-dir", str(tmp_path / "d"), "--database-url", db_url)
    assert out.returncode == 1 and "newer" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert pg_cluster().psql("SELECT count(*) FROM pg_tables WHERE tablename = 'jobs'",
                             db=db_url.rsplit("/", 1)[1]).strip() == "0"
    # a worker needs the shared queue
    out = subprocess.run([scribed_bin(), "worker", "--data-dir", str(tmp_path / "w"),
                          "--health-port", "0", "--model", micro_model()],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "--database-url" in out.stderr, out.stderr


def test_postgres_restart_mid_run_loses_nothing(make_server, db_url, long_wav, short_wav):
    api = api_node(make_server, db_url)
    w = worker(make_server, db_url)
    before = [submit_job(api, short_wav).json()["id"] for _ in range(3)]
    running = submit_job(api, long_wav, {"response_format": "text"}).json()["id"]
    wait_job(api, running, statuses=("running", "succeeded"))
    pg_cluster().restart()  # every node's connections break under it
    # the nodes reconnect by themselves: new work is taken and finished
    after = [submit_job(api, short_wav).json()["id"] for _ in range(3)]
    for jid in before + [running] + after:
        job = wait_job(api, jid, timeout=300)
        assert job["status"] == "succeeded", job
    assert api.proc.poll() is None and w.proc.poll() is None
    assert requests.get(api.url("/health"), timeout=5).json()["database"]["reachable"]


def create_key_in(*where, admin=False):
    """A new API key in the store `where` names (--data-dir DIR or --database-url URL)."""
    out = subprocess.run([scribed_bin(), "keys", "create", "--name", "k", *where,
                          *(["--admin"] if admin else [])],
                         capture_output=True, text=True, timeout=30,
                         env={k: v for k, v in os.environ.items()
                              if k != "SCRIBED_DATABASE_URL"})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_tenants_stay_apart_across_nodes(make_server, db_url, short_wav):
    """A job belongs to the key that created it on whichever node it is read,
    cancelled or deleted; the worker that ran it kept its owner; an admin key sees all."""
    alice, bob = (create_key_in("--database-url", db_url) for _ in range(2))
    boss = create_key_in("--database-url", db_url, admin=True)
    apis = [api_node(make_server, db_url) for _ in range(2)]
    worker(make_server, db_url)
    with open(short_wav, "rb") as f:
        r = requests.post(apis[0].url("/v1/jobs"), headers=bearer(alice),
                          data={"response_format": "text"},
                          files={"file": ("a.wav", f, "audio/wav")}, timeout=60)
    assert r.status_code == 202, r.text
    jid = r.json()["id"]
    deadline = time.time() + 300
    while True:  # read from the other API node, as its owner
        job = requests.get(apis[1].url(f"/v1/jobs/{jid}"), headers=bearer(alice), timeout=5).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        assert time.time() < deadline, job
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    for node in apis:
        for path in (f"/v1/jobs/{jid}", f"/v1/jobs/{jid}/result"):
            assert requests.get(node.url(path), headers=bearer(bob), timeout=5).status_code == 404
        assert requests.delete(node.url(f"/v1/jobs/{jid}"), headers=bearer(bob),
                               timeout=5).status_code == 404
        listed = requests.get(node.url("/v1/jobs"), headers=bearer(bob), timeout=5).json()
        assert [j["id"] for j in listed["data"]] == [], listed
        listed = requests.get(node.url("/v1/jobs"), headers=bearer(boss), timeout=5).json()
        assert [j["id"] for j in listed["data"]] == [jid], listed
    assert requests.get(apis[1].url(f"/v1/jobs/{jid}/result"), headers=bearer(alice),
                        timeout=5).text.strip()


def test_store_copy_moves_a_single_node_deployment(make_server, db_url, short_wav, tmp_path):
    data = tmp_path / "single"
    key = create_key_in("--data-dir", str(data))
    other = create_key_in("--data-dir", str(data))
    boss = create_key_in("--data-dir", str(data), admin=True)
    s = make_server(data_dir=data, args=["--database-url", f"sqlite://{data}/scribed.db"])
    auth = {"Authorization": f"Bearer {key}"}
    with open(short_wav, "rb") as f:
        jid = requests.post(s.url("/v1/jobs"), headers=auth, data={"response_format": "text"},
                            files={"file": ("a.wav", f, "audio/wav")}, timeout=60).json()["id"]
    deadline = time.time() + 120
    while requests.get(s.url(f"/v1/jobs/{jid}"), headers=auth,
                       timeout=5).json()["status"] != "succeeded":
        assert time.time() < deadline
        time.sleep(0.1)
    text = requests.get(s.url(f"/v1/jobs/{jid}/result"), headers=auth, timeout=5).text
    s.stop()
    copy = [scribed_bin(), "store", "copy", "--from", str(data), "--to", db_url]
    out = subprocess.run(copy, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "copied 1 jobs" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(copy, capture_output=True, text=True, timeout=60)  # again: nothing new
    assert out.returncode == 0 and "copied 0 jobs (1 already there)" in out.stdout, out.stdout
    s2 = make_server(data_dir=data, args=["--database-url", db_url])
    job = requests.get(s2.url(f"/v1/jobs/{jid}"), headers=auth, timeout=5).json()
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert requests.get(s2.url(f"/v1/jobs/{jid}/result"), headers=auth, timeout=5).text == text
    assert requests.get(s2.url("/v1/jobs"), timeout=5).status_code == 401  # the key came along
    # the job's owner and the keys' admin flag came along too
    assert requests.get(s2.url(f"/v1/jobs/{jid}"), headers=bearer(other),
                        timeout=5).status_code == 404
    assert requests.get(s2.url(f"/v1/jobs/{jid}"), headers=bearer(boss),
                        timeout=5).status_code == 200
    out = subprocess.run([scribed_bin(), "store", "copy", "--from", str(tmp_path / "none"),
                          "--to", db_url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "no database" in out.stderr
