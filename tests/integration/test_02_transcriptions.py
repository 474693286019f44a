"""Synchronous endpoints: every response format, translations, whisper.cpp's
/inference alias, word timestamps, SSE streaming."""
import json
import os
import subprocess

import pytest
import requests

from conftest import assert_openai_error, shared_dir, transcribe


def test_json_default(server, short_wav):
    r = transcribe(server, short_wav)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["text"], str)
    assert r.headers["X-Request-Id"]


def test_text(server, short_wav):
    r = transcribe(server, short_wav, {"response_format": "text"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert not r.text.startswith("{")


def test_srt(server, short_wav):
    r = transcribe(server, short_wav, {"response_format": "srt"})
    assert r.status_code == 200, r.text
    lines = r.text.strip().splitlines()
    assert lines[0] == "1"
    assert "-->" in lines[1] and "," in lines[1]


def test_vtt(server, short_wav):
    r = transcribe(server, short_wav, {"response_format": "vtt"})
    assert r.status_code == 200, r.text
    assert r.text.startswith("WEBVTT")
    assert "-->" in r.text


def test_verbose_json(server, short_wav):
    r = transcribe(server, short_wav, {"response_format": "verbose_json", "language": "en",
                                       "temperature": "0", "prompt": "Hello."})
    assert r.status_code == 200, r.text
    body = r.json()
    for key in ("task", "language", "duration", "text", "segments"):
        assert key in body, key
    assert body["task"] == "transcribe"
    assert 1.5 < body["duration"] < 2.5
    seg = body["segments"][0]
    for key in ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                "compression_ratio", "no_speech_prob"):
        assert key in seg, key


def test_word_timestamps(server, short_wav):
    r = requests.post(server.url("/v1/audio/transcriptions"),
                      data=[("model", "whisper-1"), ("response_format", "verbose_json"),
                            ("timestamp_granularities[]", "word"),
                            ("timestamp_granularities[]", "segment")],
                      files={"file": ("a.wav", open(short_wav, "rb"), "audio/wav")}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "segments" in body
    if body["text"].strip():
        assert body["words"], body
        assert all({"word", "start", "end"} <= set(w) for w in body["words"])
        assert all(w["start"] <= w["end"] for w in body["words"])
        # the words spell the text (punctuation is merged into words, nothing dropped)
        assert "".join(w["word"] for w in body["words"]).strip() == body["text"].strip()


def test_translation(server, short_wav):
    r = transcribe(server, short_wav, {"response_format": "verbose_json"},
                   endpoint="/v1/audio/translations")
    if r.status_code == 400:  # the micro reference model is English-only
        assert_openai_error(r, 400)
        assert "multilingual" in r.json()["error"]["message"]
    else:
        assert r.status_code == 200, r.text
        assert r.json()["task"] == "translate"


def test_stream_sse(server, short_wav):
    r = transcribe(server, short_wav, {"stream": "true"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in r.text.splitlines()
              if line.startswith("data: ")]
    assert events[-1]["type"] == "transcript.text.done"
    assert all(e["type"] == "transcript.text.delta" for e in events[:-1])
    assert "".join(e["delta"] for e in events[:-1]).strip() == events[-1]["text"].strip()


def test_inference_alias(server, short_wav):
    with open(short_wav, "rb") as f:
        r = requests.post(server.url("/inference"),
                          data={"response_format": "json", "temperature": "0.0",
                                "language": "en", "beam_size": "-1", "no_timestamps": "false"},
                          files={"file": ("a.wav", f)}, timeout=120)
    assert r.status_code == 200, r.text
    assert "text" in r.json()
    with open(short_wav, "rb") as f:
        r = requests.post(server.url("/inference"), data={"translate": "maybe"},
                          files={"file": ("a.wav", f)}, timeout=60)
    assert_openai_error(r, 400, "translate")


def test_same_answer_twice(server, short_wav):
    a = transcribe(server, short_wav, {"response_format": "text"}).text
    b = transcribe(server, short_wav, {"response_format": "text"}).text
    assert a == b


def test_vad_model_loaded_and_used(make_server, short_wav):
    import os
    from conftest import shared_dir
    vad = os.path.join(shared_dir(), "models", "silero-v6.2.0.bin")
    if not os.path.exists(vad):
        pytest.skip("no Silero model in shared/models")
    s = make_server(args=["--vad-model", vad])
    assert requests.get(s.url("/health"), timeout=5).json()["vad_loaded"] is True
    r = transcribe(s, short_wav, {"response_format": "verbose_json"})
    assert r.status_code == 200, r.text
    silence = os.path.join(shared_dir(), "reference", "d_silence.wav")
    r = transcribe(s, silence, {"response_format": "json"})
    assert r.status_code == 200, r.text
    assert r.json()["text"].strip() == ""
    r = transcribe(s, short_wav, {"vad_filter": "false"})
    assert r.status_code == 200, r.text
    r = transcribe(s, short_wav, {"vad_filter": "sometimes"})
    assert_openai_error(r, 400, "vad_filter")


def test_stream_sse_sends_segments_as_they_finish(server):
    """A multi-window file streams one delta per segment in chunks, then done;
    a client that leaves mid-stream does not hurt the server."""
    clip = os.path.join(shared_dir(), "reference", "c_passage.wav")
    with open(clip, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"),
                          data={"model": "whisper-1", "stream": "true"},
                          files={"file": ("c.wav", f, "audio/wav")}, stream=True, timeout=300)
    assert r.status_code == 200
    assert r.headers.get("Transfer-Encoding") == "chunked"
    events = [json.loads(line[len(b"data: "):]) for line in r.iter_lines()
              if line.startswith(b"data: ")]
    assert events[-1]["type"] == "transcript.text.done"
    deltas = [e for e in events if e["type"] == "transcript.text.delta"]
    assert len(deltas) >= 2, events
    assert "".join(e["delta"] for e in deltas).strip() == events[-1]["text"].strip()
    with open(clip, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"),
                          data={"model": "whisper-1", "stream": "true"},
                          files={"file": ("c.wav", f, "audio/wav")}, stream=True, timeout=300)
    r.close()  # leave before the first event
    assert requests.get(server.url("/health"), timeout=10).status_code == 200


def test_segments_end_with_the_audio(server, short_wav):
    # the decoder's window is padded to 30 s; no time may point past the audio itself
    r = transcribe(server, short_wav, {"response_format": "verbose_json", "vad_filter": "false",
                                       "timestamp_granularities[]": "word"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["segments"]
    for seg in body["segments"]:
        assert 0 <= seg["start"] <= seg["end"] <= body["duration"] + 1e-6, (seg, body["duration"])
    for word in body.get("words", []):
        assert word["end"] <= body["duration"] + 1e-6, word


@pytest.mark.parametrize("ext", ["aac", "m4a", "mp3", "flac", "ogg", "opus", "webm"])
def test_every_format_the_readme_lists(server, short_wav, tmp_path, ext):
    """The README's list of formats, each through the server (.aac was a 415 while
    the CLI took it)."""
    path = str(tmp_path / f"clip.{ext}")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", short_wav, path], check=True,
                   timeout=60)
    r = transcribe(server, path, {"response_format": "verbose_json"})
    assert r.status_code == 200, (ext, r.text)
    assert r.json()["duration"] > 1.5
