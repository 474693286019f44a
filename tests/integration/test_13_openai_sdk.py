"""The official `openai` npm SDK (v4), unmodified, against scribed: every
response format, streaming, models, and errors surfacing as APIError.
node_modules is installed on first use from the committed package-lock.json."""
import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def node_sdk():
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the openai SDK test")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "openai")):
        cmd = ["npm", "ci", "--no-audit", "--no-fund", "--prefix", HERE]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", HERE,
                                "openai@4"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    return os.path.join(HERE, "openai_client.mjs")


def test_openai_sdk_unmodified(server, node_sdk, short_wav, tmp_path):
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("this is not audio")
    r = subprocess.run(["node", node_sdk, server.url("/v1"), short_wav, str(not_audio)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert isinstance(out["json"]["text"], str)
    assert isinstance(out["text"], str) and not out["text"].startswith("{")
    assert out["verbose"]["task"] == "transcribe" and "segments" in out["verbose"]
    assert "-->" in out["srt"]
    assert out["vtt"].startswith("WEBVTT")
    assert out["stream"][-1]["type"] == "transcript.text.done"
    assert all(e["type"] == "transcript.text.delta" for e in out["stream"][:-1])
    assert "whisper-1" in out["models"]
    assert out["error"]["status"] == 415
    assert out["error"]["type"] == "invalid_request_error"
    assert out["error"]["param"] == "file"
    assert out["translation"] == "ok" or out["translation"]["status"] == 400
