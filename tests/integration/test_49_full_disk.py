"""A full disk (issue 16 item 5): an upload that does not fit answers 507 with a
clear message, its partial file is removed, and the server goes on serving.
The server runs with its data dir on a 3 MB tmpfs that the test mounts in a
private mount namespace (unshare -Urm), so nothing outside is touched."""
import json
import os
import socket
import stat
import subprocess

import pytest
import requests

import conftest
from conftest import make_wav


def namespaces_work():
    try:
        return subprocess.run(["unshare", "-Urm", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def small_disk_server(make_server, tmp_path, monkeypatch):
    if not namespaces_work():
        pytest.skip("unshare -Urm is not allowed here")
    real = conftest.scribed_bin()
    wrapper = tmp_path / "scribed-on-small-disk"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# scribed with its --data-dir on a fresh 3 MB tmpfs, in a private mount namespace\n"
        "dir=; prev=\n"
        "for a in \"$@\"; do [ \"$prev\" = --data-dir ] && dir=$a; prev=$a; done\n"
        "exec unshare -Urm sh -c 'mount -t tmpfs -o size=3m tmpfs \"$0\" && exec \"$@\"' "
        f"\"$dir\" {real} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(conftest, "scribed_bin", lambda: str(wrapper))
    return make_server(args=["--workers", "1"])


def post_file_and_hold(s, endpoint, path):
    """POSTs path as the multipart 'file' on a raw connection, reads the answer and
    leaves the connection open: a client that has not closed yet (as requests' pool
    holds its connection) keeps the server lingering in its answer."""
    boundary = "scribedfulldisk"
    with open(path, "rb") as f:
        data = f.read()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
            f"whisper-1\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    c.sendall((f"POST {endpoint} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        got = c.recv(65536)
        if not got:
            break
        answer += got
    status = int(answer.split(b" ", 2)[1])
    return c, status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_upload_on_a_full_disk_is_507_and_the_server_goes_on(small_disk_server, tmp_path,
                                                              short_wav):
    s = small_disk_server
    big = make_wav(tmp_path / "big.wav", 160)  # ~5 MB: more than the disk holds
    assert os.path.getsize(big) > 4 << 20
    held = []
    try:
        for endpoint in ("/v1/jobs", "/v1/audio/transcriptions"):
            c, status, body = post_file_and_hold(s, endpoint, big)
            held.append(c)
            assert status == 507, body
            assert body["error"]["code"] == "insufficient_storage", body
            assert "disk is full" in body["error"]["message"], body
        # the partial uploads were removed before the answers went out, not when
        # their connections end: a small request fits again at once
        with open(short_wav, "rb") as f:
            r = requests.post(s.url("/v1/audio/transcriptions"), data={"model": "whisper-1"},
                              files={"file": ("a.wav", f, "audio/wav")}, timeout=120)
        assert r.status_code == 200, r.text
        assert requests.get(s.url("/health"), timeout=5).status_code == 200
    finally:
        for c in held:
            c.close()
