"""The official `openai` npm SDK (v6), unmodified, against POST
/v1/audio/speech: `client.audio.speech.create(...)` in every response format
writes a file ffmpeg decodes (the result plays), and bad input is typed as
the SDK types it (BadRequestError, the field in `param`)."""
import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CODECS = {"mp3": "mp3", "opus": "opus", "aac": "aac", "flac": "flac", "wav": "pcm_s16le"}


@pytest.fixture(scope="module")
def node_sdk():
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the openai SDK test")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "openai")):
        cmd = ["npm", "ci", "--no-audit", "--no-fund", "--prefix", HERE]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    return os.path.join(HERE, "speech_client.mjs")


def sdk(script, *args):
    r = subprocess.run(["node", script, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def decode_seconds(path, raw_pcm=False):
    src = ["-f", "s16le", "-ar", "24000", "-ac", "1"] if raw_pcm else []
    out = subprocess.run(["ffmpeg", "-v", "error", *src, "-i", path, "-f", "s16le", "-ac", "1",
                          "-ar", "24000", "-"], capture_output=True, check=True)
    return len(out.stdout) / 48000.0


def test_speech_create_every_format_plays(server, node_sdk, tmp_path):
    out = sdk(node_sdk, "formats", server.url("/v1"), str(tmp_path))
    lengths = {}
    for fmt, got in out.items():
        path = got["file"]
        if fmt in CODECS:
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                                    "-of", "json", path], capture_output=True, text=True, check=True)
            assert json.loads(probe.stdout)["streams"][0]["codec_name"] == CODECS[fmt]
        if fmt == "default":
            assert got["content_type"] == "audio/mpeg"
        lengths[fmt] = decode_seconds(path, raw_pcm=fmt == "pcm")
    assert 2.0 < lengths["pcm"] < 8.0, lengths
    for fmt in CODECS:
        assert abs(lengths[fmt] - lengths["pcm"]) < 0.2, lengths
    assert 0.3 < lengths["default"] < lengths["pcm"]  # two words at 1.5x


@pytest.mark.parametrize("params,param", [
    ({"voice": "nobody"}, "voice"),
    ({"input": ""}, "input"),
    ({"speed": 5}, "speed"),
    ({"response_format": "xyz"}, "response_format"),
])
def test_bad_input_is_a_typed_error(server, node_sdk, params, param):
    e = sdk(node_sdk, "error", server.url("/v1"), json.dumps(params))["error"]
    assert e and (e["class"], e["status"], e["param"]) == ("BadRequestError", 400, param), e
    assert e["type"] == "invalid_request_error"
