"""A full disk (issue 16 item 5): an upload that does not fit answers 507 with a
clear message, its partial file is removed, and the server goes on serving.
The server runs with its data dir on a 3 MB tmpfs that the test mounts in a
private mount namespace (unshare -Urm), so nothing outside is touched."""
import os
import stat
import subprocess

import pytest
import requests

import conftest
from conftest import assert_openai_error, make_wav


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


def test_upload_on_a_full_disk_is_507_and_the_server_goes_on(small_disk_server, tmp_path,
                                                              short_wav):
    s = small_disk_server
    big = make_wav(tmp_path / "big.wav", 160)  # ~5 MB: more than the disk holds
    assert os.path.getsize(big) > 4 << 20
    for endpoint in ("/v1/jobs", "/v1/audio/transcriptions"):
        with open(big, "rb") as f:
            r = requests.post(s.url(endpoint), data={"model": "whisper-1"},
                              files={"file": ("big.wav", f, "audio/wav")}, timeout=60)
        assert_openai_error(r, 507)
        assert "disk is full" in r.json()["error"]["message"], r.text
    # the partial uploads were removed: a small request fits again
    with open(short_wav, "rb") as f:
        r = requests.post(s.url("/v1/audio/transcriptions"), data={"model": "whisper-1"},
                          files={"file": ("a.wav", f, "audio/wav")}, timeout=120)
    assert r.status_code == 200, r.text
    assert requests.get(s.url("/health"), timeout=5).status_code == 200
