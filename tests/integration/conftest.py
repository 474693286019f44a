"""Fixtures for the service's integration tests: start the real `scribed serve`
on 127.0.0.1 with a free port and a temporary data dir, drive it over HTTP.

Env: SCRIBED_BIN (default build/scribed), SCRIBED_SHARED (default ../shared).
SCRIBED_TEST_DATABASE=pg runs every server on PostgreSQL: one private cluster
for the session (tests/pg/pg.sh), one database per data dir (a restart on the
same data dir finds its jobs); tests marked `sqlite_only` (they open the
SQLite file itself) are skipped then.
A test fails if the server's log holds a sanitizer or runtime error report.
"""
import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import wave

import pytest
import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BAD_LOG_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def scribed_bin():
    return os.environ.get("SCRIBED_BIN") or os.path.join(REPO, "build", "scribed")


def shared_dir():
    return os.environ.get("SCRIBED_SHARED") or os.path.abspath(os.path.join(REPO, "..", "shared"))


def micro_model():
    return os.path.join(shared_dir(), "reference", "micro-en.f16.bin")


PG_MODE = os.environ.get("SCRIBED_TEST_DATABASE") == "pg"
PG_SCRIPT = os.path.join(REPO, "tests", "pg", "pg.sh")


class PgCluster:
    """A private PostgreSQL (tests/pg/pg.sh) with password login for user scribed."""

    def __init__(self, root):
        self.root = str(root)
        self.url = subprocess.run([PG_SCRIPT, "start", self.root], check=True, text=True,
                                  capture_output=True).stdout.strip().splitlines()[-1]
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def psql(self, sql, db="scribed"):
        env = dict(os.environ, PGPASSWORD="scribed")
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "scribed",
                               "-d", db, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              env=env, check=True, text=True, capture_output=True).stdout

    def database(self, name):
        """The URL of database `name`, created empty the first time."""
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip():
            self.psql(f"CREATE DATABASE {name}")
        return f"postgres://scribed:scribed@127.0.0.1:{self.port}/{name}"

    def restart(self):
        subprocess.run([PG_SCRIPT, "stop", self.root], check=True)
        subprocess.run([PG_SCRIPT, "start", self.root, str(self.port)], check=True,
                       capture_output=True)

    def stop(self):
        subprocess.run([PG_SCRIPT, "stop", self.root], check=False)


_pg_cluster = None


def pg_available():
    return any(os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb") for v in range(12, 20))


def pg_cluster():
    """The session's private cluster, started on first use and stopped at exit."""
    global _pg_cluster
    if _pg_cluster is None:
        root = tempfile.mkdtemp(prefix="scribed-pg-")
        os.chmod(root, 0o755)
        _pg_cluster = PgCluster(os.path.join(root, "pg"))

        def stop():
            _pg_cluster.stop()
            shutil.rmtree(root, ignore_errors=True)

        atexit.register(stop)
    return _pg_cluster


def database_env(data_dir):
    """What a scribed process on data_dir needs in its environment to find its store."""
    if not PG_MODE:
        return {}
    name = "t_" + hashlib.sha1(os.path.abspath(str(data_dir)).encode()).hexdigest()[:16]
    return {"SCRIBED_DATABASE_URL": pg_cluster().database(name)}


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: reads the SQLite database file itself")


def pytest_collection_modifyitems(config, items):
    if not PG_MODE:
        return
    skip = pytest.mark.skip(reason="reads the SQLite file itself (SCRIBED_TEST_DATABASE=pg)")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `scribed serve` process (or `scribed worker`: command="worker")."""

    def __init__(self, data_dir, args=(), env=None, model=None, command="serve"):
        self.command = command
        self.data_dir = str(data_dir)
        self.args = list(args)
        self.env = env or {}
        self.model = micro_model() if model is None else model
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.logs = []

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def start(self, wait_ready=True, timeout=20):
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = free_port()
        cmd = [scribed_bin(), self.command, "--host", "127.0.0.1", "--port", str(self.port),
               "--data-dir", self.data_dir]
        if self.model:
            cmd += ["--model", self.model]
        cmd += self.args
        env = dict(os.environ)
        env.update(database_env(self.data_dir))
        env.update(self.env)
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"scribed exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = requests.get(self.url("/health"), timeout=2)
                if not wait_ready or r.status_code == 200:
                    return self
                if r.json().get("status") == "unavailable":
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError("scribed did not become healthy:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def events(self, name=None):
        out = []
        for line in self.log().splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if name is None or ev.get("event") == name:
                out.append(ev)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("scribed did not stop in time")
        self.log_file.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log_file.close()

    def check_log_clean(self):
        text = self.log()
        for marker in BAD_LOG_MARKERS:
            assert marker not in text, f"server log reports {marker}:\n{text[-4000:]}"


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(args=[...], env={...}, model=...) -> started Server."""
    servers = []

    def make(args=(), env=None, model=None, data_dir=None, start=True, wait_ready=True,
             command="serve"):
        s = Server(data_dir or tmp_path / f"data{len(servers)}", args, env, model, command)
        servers.append(s)
        if start:
            s.start(wait_ready=wait_ready)
        return s

    yield make
    for s in servers:
        if s.proc and s.proc.poll() is None:
            s.stop()
        s.check_log_clean()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One shared server for a test module (2 workers)."""
    if not os.path.exists(micro_model()):
        pytest.skip(f"no reference model at {micro_model()} (set SCRIBED_SHARED)")
    s = Server(tmp_path_factory.mktemp("srv"), ["--workers", "2"])
    s.start()
    yield s
    s.stop()
    s.check_log_clean()


@pytest.fixture(scope="session")
def short_wav():
    return os.path.join(shared_dir(), "reference", "a_short.wav")


def make_wav(path, seconds, src=None):
    """A WAV of `seconds` made by repeating a reference utterance (real speech, slow to decode)."""
    src = src or os.path.join(shared_dir(), "reference", "a_short.wav")
    with wave.open(src) as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
        dur = w.getnframes() / params.framerate
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames * (int(seconds / dur) + 1))
    return str(path)


@pytest.fixture(scope="session")
def long_wav(tmp_path_factory):
    """~30 s of repeated speech: several seconds of work for the micro model."""
    return make_wav(tmp_path_factory.mktemp("audio") / "long30.wav", 30)


def transcribe(server, path, fields=None, endpoint="/v1/audio/transcriptions", timeout=120):
    data = {"model": "whisper-1"}
    data.update(fields or {})
    with open(path, "rb") as f:
        return requests.post(server.url(endpoint), data=data,
                             files={"file": (os.path.basename(path), f, "audio/wav")},
                             timeout=timeout)


def submit_job(server, path, fields=None, timeout=60):
    data = dict(fields or {})
    with open(path, "rb") as f:
        return requests.post(server.url("/v1/jobs"), data=data,
                             files={"file": (os.path.basename(path), f, "audio/wav")},
                             timeout=timeout)


def wait_job(server, job_id, statuses=("succeeded", "failed", "cancelled"), timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(server.url(f"/v1/jobs/{job_id}"), timeout=10)
        assert r.status_code == 200, r.text
        if r.json()["status"] in statuses:
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {statuses}: {r.json()}")


def assert_openai_error(r, status, param=None):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"}, body
    assert err["message"]
    if param is not None:
        assert err["param"] == param, body
    assert r.headers.get("X-Request-Id")
    return err
