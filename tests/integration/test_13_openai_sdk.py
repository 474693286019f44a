"""The official `openai` npm SDK (v6), unmodified and called as OpenAI's docs
call it, against scribed: in both upload modes the docs show (a streamed file,
sent chunked, and a Buffer through toFile, sent with its length), every response
format, streaming, translations, and every error typed as the SDK types it
(never a connection error). node_modules is installed on first use from the
committed package-lock.json."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import make_wav, shared_dir

HERE = os.path.dirname(os.path.abspath(__file__))
UPLOADS = ["stream", "buffer"]


@pytest.fixture(scope="module")
def node_sdk():
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the openai SDK test")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "openai")):
        cmd = ["npm", "ci", "--no-audit", "--no-fund", "--prefix", HERE]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    return os.path.join(HERE, "openai_client.mjs")


def sdk(script, *args, timeout=300):
    r = subprocess.run(["node", script, *[str(a) for a in args]], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sdk_error(script, server, audio, upload, key="sk-scribed-test", **params):
    return sdk(script, "error", server.url("/v1"), audio, upload, key, json.dumps(params))["error"]


@pytest.mark.parametrize("upload", UPLOADS)
def test_every_format_and_streaming(server, node_sdk, short_wav, upload):
    out = sdk(node_sdk, "formats", server.url("/v1"), short_wav, upload)
    assert isinstance(out["json"]["text"], str)
    assert isinstance(out["text"], str) and not out["text"].startswith("{")
    assert out["srt"].startswith("1\n") and "-->" in out["srt"]
    assert out["vtt"].startswith("WEBVTT") and "-->" in out["vtt"]
    v = out["verbose"]
    assert v["task"] == "transcribe" and v["language"] == "english" and v["duration"] > 1.5
    assert v["segments"] and v["words"], v  # both granularities honoured
    assert all({"word", "start", "end"} <= set(w) for w in v["words"])
    events = out["stream"]
    assert events and events[-1]["type"] == "transcript.text.done"
    assert all(e["type"] == "transcript.text.delta" for e in events[:-1])
    assert "whisper-1" in out["models"]
    assert out["retrieved"]["id"] == "whisper-1" and out["retrieved"]["created"] > 0
    assert out["unknown"] == {"status": 404, "name": "NotFoundError", "code": "model_not_found",
                              "param": "model"}


@pytest.mark.parametrize("upload", UPLOADS)
def test_translations_on_a_multilingual_model(make_server, node_sdk, short_wav, upload):
    model = os.path.join(shared_dir(), "reference", "decoding", "nano4-ml.f16.bin")
    s = make_server(model=model)
    out = sdk(node_sdk, "translate", s.url("/v1"), short_wav, upload)
    # random weights: the shapes are the contract, not the words
    assert set(out["json"]) >= {"text"} and isinstance(out["json"]["text"], str)
    assert out["verbose"]["task"] == "translate" and isinstance(out["verbose"]["segments"], list)
    assert isinstance(out["text"], str) and not out["text"].startswith("{")


@pytest.mark.parametrize("upload", UPLOADS)
def test_bad_request_and_unsupported_file(server, node_sdk, short_wav, tmp_path, upload):
    e = sdk_error(node_sdk, server, short_wav, upload, temperature=7)
    assert (e["class"], e["status"], e["param"]) == ("BadRequestError", 400, "temperature"), e
    assert e["type"] == "invalid_request_error"
    e = sdk_error(node_sdk, server, short_wav, upload, language="xx")
    assert (e["class"], e["status"], e["param"]) == ("BadRequestError", 400, "language"), e
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not audio")
    e = sdk_error(node_sdk, server, str(notes), upload)
    assert e["api_error"] and not e["connection_error"], e
    assert (e["status"], e["param"], e["code"]) == (415, "file", "unsupported_format"), e


@pytest.mark.parametrize("upload", UPLOADS)
def test_file_over_the_limit(make_server, node_sdk, tmp_path, upload):
    """413 whether the size is declared (buffer) or found mid-stream (chunked)."""
    s = make_server(args=["--max-file-size-mb", "1"])
    big = make_wav(tmp_path / "big.wav", 75)  # 2.4 MB
    e = sdk_error(node_sdk, s, big, upload)
    assert e["api_error"] and not e["connection_error"], e
    assert (e["status"], e["param"]) == (413, "file"), e


@pytest.mark.parametrize("upload", UPLOADS)
def test_wrong_key_and_rate_limit(make_server, node_sdk, short_wav, upload):
    """The gate's refusals come before the body is read; the SDK still reads them."""
    s = make_server(env={"SCRIBED_API_KEY": "sk-scribed-right"},
                    args=["--rate-limit-key-rpm", "1", "--rate-limit-burst", "1"])
    e = sdk_error(node_sdk, s, short_wav, upload, key="sk-scribed-wrong")
    assert (e["class"], e["status"], e["code"]) == ("AuthenticationError", 401,
                                                    "invalid_api_key"), e
    assert sdk_error(node_sdk, s, short_wav, upload, key="sk-scribed-right") is None
    e = sdk_error(node_sdk, s, short_wav, upload, key="sk-scribed-right")
    assert (e["class"], e["status"], e["code"]) == ("RateLimitError", 429,
                                                    "rate_limit_exceeded"), e


@pytest.mark.parametrize("upload,connection", [("buffer", "keep-alive"), ("buffer", "close"),
                                               ("stream", "keep-alive")])
def test_load_ends_in_success_or_rate_limit(make_server, node_sdk, short_wav, upload, connection):
    """100 calls, 50 in flight from one address, against a low rate limit: every call
    succeeds or raises RateLimitError (after the SDK's retries where it retries: a
    streamed file is never retried), never a connection error."""
    s = make_server(args=["--rate-limit-ip-rpm", "60", "--rate-limit-burst", "5"])
    out = sdk(node_sdk, "load", s.url("/v1"), short_wav, upload, 100, 50, connection)["outcomes"]
    assert sum(out.values()) == 100, out
    assert set(out) <= {"ok", "RateLimitError:429:rate_limit_exceeded",
                        "RateLimitError:429:too_many_uploads",
                        "RateLimitError:429:too_many_connections"}, out
    assert out.get("ok", 0) >= 5 and out.get("RateLimitError:429:rate_limit_exceeded"), out
