"""`scribed model` against a local HTTP server (never the real host).

A http.server on 127.0.0.1 serves a temp folder with a copy of the shared
Silero file; --base-url points the command at it. Checks: good checksum ->
installed atomically; corrupted file -> refused, nothing left behind;
404 -> clear error; unknown checksum -> refused unless --sha256/--no-verify.
"""
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SCRIBED_BIN", str(ROOT / "build" / "scribed"))
SHARED = Path(os.environ.get("SCRIBED_SHARED", ROOT.parent / "shared"))
SILERO = SHARED / "models" / "silero-v6.2.0.bin"
SILERO_SHA256 = "2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987"

pytestmark = pytest.mark.skipif(not Path(BIN).exists(), reason=f"{BIN} not built")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Yields (folder served, base url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run(*args, timeout=60):
    return subprocess.run([BIN, "model", *args], capture_output=True, text=True, timeout=timeout)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def models_dir_files(data):
    d = data / "models"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_verified_and_installed(server, tmp_path):
    www, url = server
    shutil.copy(SILERO, www / "ggml-silero-v6.2.0.bin")
    data = tmp_path / "data"
    r = run("download", "silero-v6.2.0", "--data-dir", str(data), "--base-url", url)
    assert r.returncode == 0, r.stderr
    dest = data / "models" / "ggml-silero-v6.2.0.bin"
    assert r.stdout.strip() == str(dest)
    assert sha256(dest) == SILERO_SHA256
    assert models_dir_files(data) == ["ggml-silero-v6.2.0.bin"]  # no .part left
    # idempotent: a second run finds it installed
    r = run("download", "silero", "--data-dir", str(data), "--base-url", url + "/")
    assert r.returncode == 0, r.stderr
    assert "already installed" in r.stderr
    # list shows it
    r = run("list", "--data-dir", str(data))
    assert r.returncode == 0
    line = [l for l in r.stdout.splitlines() if l.startswith("silero-v6.2.0")][0]
    assert "sha256" in line and "yes" in line


def test_corrupted_file_refused_nothing_left(server, tmp_path):
    www, url = server
    blob = bytearray(SILERO.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    (www / "ggml-silero-v6.2.0.bin").write_bytes(bytes(blob))
    data = tmp_path / "data"
    r = run("download", "silero-v6.2.0", "--data-dir", str(data), "--base-url", url)
    assert r.returncode == 1
    assert "SHA-256 mismatch" in r.stderr and "nothing installed" in r.stderr
    assert models_dir_files(data) == []


def test_corrupted_whisper_file_refused_by_sha1(server, tmp_path):
    www, url = server
    (www / "ggml-tiny.en.bin").write_bytes(b"not really a model" * 100)
    data = tmp_path / "data"
    r = run("download", "tiny.en", "--data-dir", str(data), "--base-url", url)
    assert r.returncode == 1
    assert "SHA-1 mismatch" in r.stderr
    assert "c78c86eb1a8faa21b369bcd33207cc90d64ae9df" in r.stderr
    assert models_dir_files(data) == []


def test_404_is_a_clear_error(server, tmp_path):
    _, url = server
    data = tmp_path / "data"
    r = run("download", "base.en", "--data-dir", str(data), "--base-url", url)
    assert r.returncode == 1
    assert "HTTP 404" in r.stderr
    assert models_dir_files(data) == []


def test_unreachable_server(tmp_path):
    data = tmp_path / "data"
    r = run("download", "silero", "--data-dir", str(data), "--base-url", "http://127.0.0.1:9")
    assert r.returncode == 1
    assert "127.0.0.1:9" in r.stderr
    assert models_dir_files(data) == []


def test_unknown_checksum_needs_consent(server, tmp_path):
    www, url = server
    payload = b"quantized stand-in" * 1000
    (www / "ggml-tiny-q5_1.bin").write_bytes(payload)
    data = tmp_path / "data"
    r = run("download", "tiny-q5_1", "--data-dir", str(data), "--base-url", url)
    assert r.returncode == 1
    assert "no published checksum" in r.stderr
    assert models_dir_files(data) == []
    # a user-given SHA-256 that does not match: refused
    r = run("download", "tiny-q5_1", "--data-dir", str(data), "--base-url", url, "--sha256", "0" * 64)
    assert r.returncode == 1 and "mismatch" in r.stderr
    assert models_dir_files(data) == []
    # the right one: installed
    good = hashlib.sha256(payload).hexdigest()
    r = run("download", "tiny-q5_1", "--data-dir", str(data), "--base-url", url, "--sha256", good)
    assert r.returncode == 0, r.stderr
    assert (data / "models" / "ggml-tiny-q5_1.bin").read_bytes() == payload
    # --no-verify with --force: installed again, with a warning
    r = run("download", "tiny-q5_1", "--data-dir", str(data), "--base-url", url, "--no-verify",
            "--force")
    assert r.returncode == 0, r.stderr
    assert "without verification" in r.stderr
    assert models_dir_files(data) == ["ggml-tiny-q5_1.bin"]


def test_bad_usage():
    assert run("download", "no-such-model").returncode == 2
    assert run("download").returncode == 2
    assert run("frobnicate", "x").returncode == 2
    assert run("download", "tiny", "--sha256", "xyz").returncode == 2
    r = run("list")
    assert r.returncode == 0
    for name in ("tiny", "base.en", "large-v3-turbo", "large-v3-turbo-q5_0", "silero-v6.2.0"):
        assert any(l.split()[0] == name for l in r.stdout.splitlines()[1:] if l.strip())


def test_hash_matches_hashlib(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(os.urandom(200_003))
    r = run("hash", str(f))
    assert r.returncode == 0
    lines = dict(l.split() for l in r.stdout.splitlines())
    assert lines["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert lines["sha1"] == hashlib.sha1(f.read_bytes()).hexdigest()


def test_only_http_urls(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SILERO, src / "ggml-silero-v6.2.0.bin")
    data = tmp_path / "data"
    r = run("download", "silero", "--data-dir", str(data), "--base-url", f"file://{src}")
    assert r.returncode == 1
    assert models_dir_files(data) == []
