"""The container's run-time constraints, proven without a container engine.

bubblewrap builds what `docker run --read-only --tmpfs /tmp -v data:/data
--security-opt no-new-privileges --user 10001` gives the image: every
top-level folder of this machine bind-mounted read-only, a fresh root that
is remounted read-only, a writable data dir at /data, a private /tmp,
new user/pid/ipc/uts namespaces, no_new_privs, and a non-root uid (nobody
when the tests run as root). deploy/entrypoint.sh runs inside it exactly
as the image runs it: it takes the whisper model from a read-only "baked"
folder, downloads the VAD model onto /data on first start (from a local
HTTP server standing in for the model host), and execs `scribed serve`.
Then a transcription and an async job go through, SIGTERM stops it cleanly,
and the data dir holds the database. A write outside /data and /tmp would
fail with EROFS; the log must report none, and /tmp must be left empty.
Also: a read-only data dir stops the entrypoint with a clear message, and
(as root) the entrypoint hands a root-owned volume to the service user and
drops every privilege before it runs anything.
"""
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port, micro_model, scribed_bin, shared_dir, wait_job

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
SILERO = Path(shared_dir()) / "models" / "silero-v6.2.0.bin"
SANDBOX_UID = 65534  # nobody, when the suite runs as root


@functools.lru_cache(maxsize=None)
def runnable():
    """Copies of build/scribed and deploy/entrypoint.sh that the sandbox user can
    run wherever the checkout lives: a checkout under /tmp is hidden by the
    sandbox's own /tmp, and one in a 0700 folder cannot be read by `nobody`.
    /var/tmp is visible (read-only) inside the sandbox."""
    d = Path(tempfile.mkdtemp(prefix="scribed-ro-run-", dir="/var/tmp"))
    os.chmod(d, 0o755)
    shutil.copy(os.path.realpath(scribed_bin()), d / "scribed")
    shutil.copy(ENTRYPOINT, d / "entrypoint.sh")
    os.chmod(d / "scribed", 0o755)
    os.chmod(d / "entrypoint.sh", 0o644)
    return {"bin": str(d / "scribed"), "entrypoint": str(d / "entrypoint.sh"), "dir": d}


@pytest.fixture(scope="module", autouse=True)
def _remove_runnable_copies():
    yield
    if runnable.cache_info().currsize:
        shutil.rmtree(runnable()["dir"], ignore_errors=True)
        runnable.cache_clear()


WRITE_ERRORS = ("Read-only file system", "EROFS", "Permission denied", "cannot create",
                "cannot open", "AddressSanitizer", "runtime error:")


def bwrap_or_skip():
    exe = shutil.which("bwrap")
    if not exe:
        pytest.skip("bubblewrap is not installed (Debian package bubblewrap)")
    r = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-all", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"bwrap cannot create namespaces here: {r.stderr.decode()[:200]}")
    return exe


def owned_tempdir():
    """A folder the sandbox user owns (pytest's tmp_path is 0700 root when run as root)."""
    d = tempfile.mkdtemp(prefix="scribed-ro-")
    if os.geteuid() == 0:
        os.chown(d, SANDBOX_UID, SANDBOX_UID)
    return Path(d)


def sandbox(bwrap, data, tmp, extra_ro=(), data_ro=False):
    """argv prefix running a command like the container would."""
    pre = ["setpriv", "--no-new-privs"]
    if os.geteuid() == 0:
        pre += [f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups"]
    cmd = pre + ["--", bwrap, "--unshare-all", "--share-net", "--die-with-parent"]
    for name in sorted(os.listdir("/")):
        p = "/" + name
        if name in ("proc", "dev", "tmp", "data", "run", "lost+found"):
            continue
        if os.path.islink(p):
            cmd += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            cmd += ["--ro-bind", p, p]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run",
            "--bind", str(tmp), "/tmp",
            "--ro-bind" if data_ro else "--bind", str(data), "/data"]
    for src, dst in extra_ro:
        cmd += ["--ro-bind", str(src), dst]
    cmd += ["--remount-ro", "/", "--chdir", "/data"]
    return cmd


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def model_host(tmp_path):
    """A local stand-in for the model host, serving ggml-silero-v6.2.0.bin."""
    if not SILERO.exists():
        pytest.skip(f"no {SILERO}")
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(SILERO, www / "ggml-silero-v6.2.0.bin")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def find_scribed(pid):
    real = runnable()["bin"]
    for p in descendants(pid):
        try:
            if os.path.realpath(f"/proc/{p}/exe") == real:
                return p
        except OSError:
            pass
    return None


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


class Sandboxed:
    """deploy/entrypoint.sh serve, inside the sandbox."""

    def __init__(self, bwrap, data, tmp, baked, base_url):
        self.port = free_port()
        self.log_path = Path(tempfile.mkdtemp(prefix="scribed-ro-log-")) / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCRIBED_")}
        env.update({
            "SCRIBED_BIN": runnable()["bin"],
            "SCRIBED_DATA_DIR": "/data",
            "SCRIBED_BAKED_DIR": "/baked",
            "SCRIBED_MODEL_NAME": "micro-en",
            "SCRIBED_VAD_NAME": "silero-v6.2.0",
            "SCRIBED_MODEL_BASE_URL": base_url,
            "SCRIBED_WORKERS": "1",
            "MALLOC_ARENA_MAX": "2",
            "HOME": "/data",
        })
        cmd = sandbox(bwrap, data, tmp, extra_ro=[(baked, "/baked")]) + [
            "/bin/sh", runnable()["entrypoint"], "serve", "--host", "127.0.0.1",
            "--port", str(self.port)]
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{self.port}"

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log()}"
            try:
                r = requests.get(self.base + "/health", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError("not healthy in time:\n" + self.log())

    def stop(self):
        pid = find_scribed(self.proc.pid)
        assert pid, "scribed not found under bwrap"
        os.kill(pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log_file.close()
        return rc


@pytest.fixture
def sandbox_dirs(tmp_path):
    if not os.path.exists(micro_model()):
        pytest.skip(f"no reference model at {micro_model()} (set SCRIBED_SHARED)")
    if not os.path.exists(scribed_bin()):
        pytest.skip(f"{scribed_bin()} not built")
    bwrap = bwrap_or_skip()
    data, tmp, baked = owned_tempdir(), owned_tempdir(), Path(tempfile.mkdtemp(prefix="scribed-baked-"))
    (baked / "models").mkdir()
    shutil.copy(micro_model(), baked / "models" / "ggml-micro-en.bin")
    for p in (baked, baked / "models", baked / "models" / "ggml-micro-en.bin"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    yield bwrap, data, tmp, baked
    for d in (data, tmp, baked):
        shutil.rmtree(d, ignore_errors=True)


def test_readonly_root_round_trip(sandbox_dirs, model_host, short_wav):
    bwrap, data, tmp, baked = sandbox_dirs
    s = Sandboxed(bwrap, data, tmp, baked, model_host)
    try:
        health = s.wait_healthy()
        assert health["model_loaded"] is True and health["vad_loaded"] is True, health
        pid = find_scribed(s.proc.pid)
        st = proc_status(pid)
        assert st["NoNewPrivs"] == "1"
        assert int(st["CapEff"], 16) == 0
        if os.geteuid() == 0:
            assert st["Uid"].split()[0] == str(SANDBOX_UID)
        assert st["Uid"].split()[0] != "0" or os.geteuid() != 0
        # the process really cannot write outside /data and /tmp
        with open(f"/proc/{pid}/mountinfo") as f:
            mounts = {line.split()[4]: line.split()[5] for line in f}
        assert mounts["/"].startswith("ro") and mounts["/usr"].startswith("ro"), mounts
        assert mounts["/data"].startswith("rw") and mounts["/tmp"].startswith("rw")
        # synchronous transcription
        with open(short_wav, "rb") as f:
            r = requests.post(s.base + "/v1/audio/transcriptions", data={"model": "whisper-1"},
                              files={"file": ("a_short.wav", f, "audio/wav")}, timeout=120)
        assert r.status_code == 200, r.text
        assert isinstance(r.json()["text"], str)
        # an async job: upload -> job -> result
        with open(short_wav, "rb") as f:
            r = requests.post(s.base + "/v1/jobs", files={"file": ("a_short.wav", f, "audio/wav")},
                              timeout=60)
        assert r.status_code in (200, 201, 202), r.text
        server = type("S", (), {"url": lambda self, p: s.base + p})()
        job = wait_job(server, r.json()["id"])
        assert job["status"] == "succeeded", job
        r = requests.get(s.base + f"/v1/jobs/{job['id']}/result", timeout=30)
        assert r.status_code == 200, r.text
    finally:
        rc = s.stop()
    log = s.log()
    assert rc == 0, log
    for marker in WRITE_ERRORS:
        assert marker not in log, f"{marker!r} in the log:\n{log[-4000:]}"
    assert "downloading model silero-v6.2.0" in log
    events = [json.loads(l) for l in log.splitlines() if l.startswith("{")]
    started = [e for e in events if e.get("event") == "server.listening"]
    assert started and started[0]["model"] == "/baked/models/ggml-micro-en.bin", started
    assert not [e for e in events if e.get("event") == "model.missing"]
    # everything the service wrote is in the data dir
    names = {p.name for p in data.iterdir()}
    assert "scribed.db" in names, names
    assert (data / "models" / "ggml-silero-v6.2.0.bin").stat().st_size == SILERO.stat().st_size
    left = [str(p.relative_to(tmp)) for p in tmp.rglob("*")]
    assert left == [], f"files left in /tmp: {left}"

    # second start: nothing downloaded again, the job is still there
    s2 = Sandboxed(bwrap, data, tmp, baked, "http://127.0.0.1:9")  # host unreachable now
    try:
        s2.wait_healthy()
        r = requests.get(s2.base + f"/v1/jobs/{job['id']}", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "succeeded"
    finally:
        assert s2.stop() == 0
    assert "downloading" not in s2.log(), s2.log()


def test_readonly_data_dir_is_a_clear_error(sandbox_dirs):
    bwrap, data, tmp, baked = sandbox_dirs
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRIBED_")}
    env.update({"SCRIBED_BIN": runnable()["bin"], "SCRIBED_DATA_DIR": "/data"})
    cmd = sandbox(bwrap, data, tmp, data_ro=True) + ["/bin/sh", runnable()["entrypoint"], "serve"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 78, r.stdout + r.stderr
    assert "/data is not writable" in r.stderr


def test_other_commands_pass_through(sandbox_dirs):
    """`docker run IMAGE model list` runs scribed's command, no model fetching."""
    bwrap, data, tmp, baked = sandbox_dirs
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRIBED_")}
    env.update({"SCRIBED_BIN": runnable()["bin"], "SCRIBED_DATA_DIR": "/data"})
    cmd = sandbox(bwrap, data, tmp) + ["/bin/sh", runnable()["entrypoint"], "model", "list",
                                       "--data-dir", "/data"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "base.en" in r.stdout
    assert not (data / "models").exists() or not any((data / "models").iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="the root hand-over needs root")
def test_root_start_hands_volume_over_and_drops_privileges(tmp_path):
    """As on Fly.io: a root-owned volume, the entrypoint started as root."""
    data = Path(tempfile.mkdtemp(prefix="scribed-vol-"))
    bindir = Path(tempfile.mkdtemp(prefix="scribed-bin-"))
    try:
        (data / "old.db").write_text("x")
        os.chmod(data, 0o700)
        fake = bindir / "scribed"
        fake.write_text("#!/bin/sh\nid -u\ngrep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd):' "
                        "/proc/self/status\necho \"args: $*\"\n")
        os.chmod(bindir, 0o755)
        os.chmod(fake, 0o755)
        model = bindir / "model.bin"
        model.write_text("m")
        os.chmod(model, 0o644)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCRIBED_")}
        env.update({"SCRIBED_BIN": str(fake), "SCRIBED_DATA_DIR": str(data),
                    "SCRIBED_RUN_USER": "nobody", "SCRIBED_MODEL": str(model),
                    "SCRIBED_VAD_NAME": "none"})
        r = subprocess.run(["/bin/sh", runnable()["entrypoint"], "serve", "--port", "1"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == str(SANDBOX_UID), r.stdout
        st = dict(l.split(":\t") for l in lines[1:] if ":\t" in l)
        assert st["NoNewPrivs"] == "1"
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
        assert lines[-1] == "args: serve --port 1"
        for p in (data, data / "old.db", data / "models"):
            assert p.stat().st_uid == SANDBOX_UID, p
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(bindir, ignore_errors=True)
