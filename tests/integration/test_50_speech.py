"""POST /v1/audio/speech, GET /v1/audio/voices and `scribed speak` against the
real binary: every format decodes with ffmpeg to 24 kHz audio of the right
length, pcm is exactly the wav's samples, the response streams (chunked; the
first bytes are out while synthesis still runs) and equals the CLI's output,
the bad-input table answers 400 naming the field, and synthesis and
transcription never wait for each other."""
import hashlib
import json
import os
import subprocess
import threading
import time

import pytest
import requests

from conftest import assert_openai_error, scribed_bin, transcribe

TEXT = "Hello from scribed. This sentence is spoken by a speech synthesizer!"
FORMATS = {  # response_format: (ffprobe codec, Content-Type)
    "mp3": ("mp3", "audio/mpeg"),
    "opus": ("opus", "audio/opus"),
    "aac": ("aac", "audio/aac"),
    "flac": ("flac", "audio/flac"),
    "wav": ("pcm_s16le", "audio/wav"),
    "pcm": (None, "audio/pcm"),
}


def speech(server, body, stream=False, timeout=120):
    return requests.post(server.url("/v1/audio/speech"), json=body, stream=stream, timeout=timeout)


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate",
                          "-of", "json", path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["streams"][0]


def decoded_seconds(path, raw_pcm=False):
    """Seconds of audio ffmpeg decodes from the file (24 kHz mono samples counted)."""
    src = ["-f", "s16le", "-ar", "24000", "-ac", "1"] if raw_pcm else []
    out = subprocess.run(["ffmpeg", "-v", "error", *src, "-i", path, "-f", "s16le", "-ar", "24000",
                          "-ac", "1", "-"], capture_output=True, check=True)
    return len(out.stdout) / 48000.0


@pytest.fixture(scope="module")
def pcm_reference(server):
    r = speech(server, {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "pcm"})
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_decodes(server, pcm_reference, tmp_path, fmt):
    r = speech(server, {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": fmt})
    assert r.status_code == 200, r.text
    codec, mime = FORMATS[fmt]
    assert r.headers["Content-Type"] == mime
    assert r.headers.get("Transfer-Encoding") == "chunked"
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(r.content)
    expected = len(pcm_reference) / 48000.0
    assert 2.0 < expected < 10.0, expected  # a plausible length for two sentences
    if codec:
        s = probe(str(path))
        assert s["codec_name"] == codec, s
        # Ogg Opus always decodes at 48 kHz; the others keep our 24 kHz
        assert int(s["sample_rate"]) == (48000 if fmt == "opus" else 24000), s
    seconds = decoded_seconds(str(path), raw_pcm=fmt == "pcm")
    # lossy codecs add their priming and pad the last frame: well under 0.2 s
    assert abs(seconds - expected) < 0.2, (fmt, seconds, expected)


def test_pcm_is_exactly_the_wav_samples(server, pcm_reference):
    r = speech(server, {"voice": "alloy", "input": TEXT, "response_format": "wav"})
    wav = r.content
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt " and wav[36:40] == b"data"
    assert int.from_bytes(wav[24:28], "little") == 24000
    assert int.from_bytes(wav[22:24], "little") == 1 and int.from_bytes(wav[34:36], "little") == 16
    # streamed: the length is unknown when the header leaves
    assert wav[40:44] == b"\xff\xff\xff\xff"
    assert len(pcm_reference) % 2 == 0
    assert wav[44:] == pcm_reference


def test_default_format_is_mp3_and_cli_matches(server, tmp_path):
    r = speech(server, {"input": TEXT, "voice": "alloy"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/mpeg"
    out = tmp_path / "cli.mp3"
    with open(out, "wb") as f:  # `scribed speak ... > out.mp3`
        p = subprocess.run([scribed_bin(), "speak", "--voice", "alloy", TEXT], stdout=f,
                           stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == r.content  # the same engine and encoder


def test_long_input_streams_before_synthesis_ends(server, tmp_path):
    """~2000 characters, slow speech, raw pcm: ~28 MB, far more than the socket
    buffers hold. After the first chunk the client stops reading; the server
    must still be synthesising (its slot is held, counted in /metrics), so the
    first bytes left before the whole text was synthesised. The whole stream
    then equals the CLI's output of the same request."""
    text = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 31)
    assert 1900 < len(text) <= 2048
    body = {"model": "flite-kal16", "input": text, "response_format": "pcm", "speed": 0.25}
    r = speech(server, body, stream=True, timeout=300)
    assert r.status_code == 200 and r.headers.get("Transfer-Encoding") == "chunked"
    it = r.iter_content(chunk_size=65536)
    first = next(it)
    assert first
    metrics = requests.get(server.url("/metrics"), timeout=10).text
    assert "scribed_speech_running 1" in metrics
    digest = hashlib.sha256(first)
    n = len(first)
    for chunk in it:
        digest.update(chunk)
        n += len(chunk)
    assert n > 16 << 20  # what could not have been buffered
    with open(tmp_path / "cli.pcm", "wb") as f:
        p = subprocess.run([scribed_bin(), "speak", "--voice", "flite-kal16", "--speed", "0.25",
                            "--format", "pcm", text], stdout=f, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    assert hashlib.sha256((tmp_path / "cli.pcm").read_bytes()).hexdigest() == digest.hexdigest()


BAD = [
    ({"input": "", "voice": "alloy"}, "input"),
    ({"input": "a" * 4097, "voice": "alloy"}, "input"),
    ({"input": "bell \u0007 here", "voice": "alloy"}, "input"),
    ({"input": "nul \u0000 here", "voice": "alloy"}, "input"),
    ({"input": "   ", "voice": "alloy"}, "input"),
    ({"voice": "alloy"}, "input"),
    ({"input": 12, "voice": "alloy"}, "input"),
    ({"input": "hi", "voice": "nobody"}, "voice"),
    ({"input": "hi", "voice": "alloy", "speed": 0}, "speed"),
    ({"input": "hi", "voice": "alloy", "speed": 5}, "speed"),
    ({"input": "hi", "voice": "alloy", "speed": "fast"}, "speed"),
    ({"input": "hi", "voice": "alloy", "response_format": "xyz"}, "response_format"),
    ({"input": "hi", "voice": "alloy", "model": "whisper-1"}, "model"),
]


@pytest.mark.parametrize("body,param", BAD, ids=[f"{p}-{i}" for i, (_, p) in enumerate(BAD)])
def test_bad_input_is_400_naming_the_field(server, body, param):
    err = assert_openai_error(speech(server, body), 400, param)
    assert err["type"] == "invalid_request_error"


def test_4096_characters_are_accepted(server):
    r = speech(server, {"input": "é" * 4096, "voice": "flite-kal16", "response_format": "pcm"})
    assert r.status_code == 200, r.text


def test_invalid_utf8_and_not_json(server):
    url = server.url("/v1/audio/speech")
    r = requests.post(url, data=b'{"input": "\xff\xfe", "voice": "alloy"}',
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert_openai_error(r, 400, "input")
    r = requests.post(url, data=b"input=hello", timeout=30)
    assert_openai_error(r, 400)
    r = requests.post(url, data=b"x" * (70 << 10), headers={"Content-Type": "application/json"},
                      timeout=30)
    assert_openai_error(r, 413)
    r = requests.get(url, timeout=30)
    assert r.status_code == 405


def test_instructions_and_our_ids_are_accepted(server):
    for body in ({"model": "tts-1-hd", "voice": "shimmer", "instructions": "cheerful"},
                 {"model": "flite", "voice": "flite-awb"},
                 {"model": "espeak-ng", "voice": "espeak-de"},
                 {"model": "flite-slt"}):
        r = speech(server, dict(body, input="Guten Tag. Good day.", response_format="wav"))
        assert r.status_code == 200, (body, r.text)
        assert r.content[:4] == b"RIFF" and len(r.content) > 44 + 24000


def test_auto_voice_follows_the_texts_language(server):
    # voice "auto": English gets the default flite voice, other languages espeak-ng's
    for text, voice in (("Ich glaube, das ist nicht die richtige Antwort.", "espeak-de"),
                        ("Je pense que le rendez-vous est pour demain.", "espeak-fr"),
                        ("The meeting is on Tuesday and we have to be there.", "flite-rms")):
        before = len(server.events("speech.done"))
        r = speech(server, {"input": text, "voice": "auto", "response_format": "wav"})
        assert r.status_code == 200, r.text
        assert r.content[:4] == b"RIFF" and len(r.content) > 44 + 24000
        deadline = time.time() + 10  # logged when the response is released, just after
        while len(server.events("speech.done")) == before and time.time() < deadline:
            time.sleep(0.05)
        done = server.events("speech.done")[before:]
        assert done and done[-1]["voice"] == voice, (text, done)


def test_voices_and_models(server):
    voices = requests.get(server.url("/v1/audio/voices"), timeout=10).json()["data"]
    ids = {v["id"]: v for v in voices}
    assert {"flite-kal16", "flite-rms", "flite-slt", "flite-awb", "espeak-en"} <= set(ids)
    for v in voices:
        assert set(v) >= {"id", "language", "engine", "sample_rate", "openai_name"}
        assert v["engine"] in ("flite", "espeak-ng")
    assert ids["flite-rms"]["sample_rate"] == 16000 and ids["espeak-en"]["sample_rate"] == 22050
    named = {n for v in voices for n in v["openai_names"]}
    assert named == {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                     "shimmer", "verse"}
    assert [v["id"] for v in voices if v["default"]] == ["flite-rms"]
    models = [m["id"] for m in requests.get(server.url("/v1/models"), timeout=10).json()["data"]]
    assert "whisper-1" in models and "tts-1" in models and "tts-1-hd" in models
    assert "flite-rms" in models


def test_synthesis_and_transcription_do_not_wait_for_each_other(make_server, short_wav):
    s = make_server(args=["--workers", "1", "--speech-slots", "1", "--max-queue", "4"])
    # the only synthesis slot held by a stream nobody reads...
    text = " ".join(["Speech keeps its own slot while transcription runs."] * 40)
    held = speech(s, {"model": "flite-kal16", "input": text, "response_format": "pcm",
                      "speed": 0.25}, stream=True, timeout=300)
    assert held.status_code == 200
    next(held.iter_content(chunk_size=4096))
    # ...does not keep transcription from its worker
    r = transcribe(s, short_wav)
    assert r.status_code == 200, r.text
    held.close()
    # and a worker busy with transcriptions (one running, more queued) does not keep speech waiting
    results = []
    jobs = [threading.Thread(target=lambda: results.append(transcribe(s, short_wav)))
            for _ in range(3)]
    for t in jobs:
        t.start()
    try:
        for _ in range(600):  # until the worker is busy (a condition, not a time)
            if requests.get(s.url("/health"), timeout=10).json()["jobs_running"] >= 1:
                break
            threading.Event().wait(0.05)
        r = speech(s, {"input": "Still speaking.", "voice": "alloy", "response_format": "wav"})
        assert r.status_code == 200 and len(r.content) > 44
    finally:
        for t in jobs:
            t.join()
    assert all(x.status_code == 200 for x in results)


def test_cli_errors_are_one_line(tmp_path):
    for args, needle in ((["--voice", "nobody", "hi"], "--voice"),
                         (["--speed", "9", "hi"], "--speed"),
                         (["--format", "xyz", "hi"], "--format"),
                         ([""], "input")):
        p = subprocess.run([scribed_bin(), "speak", "--output", str(tmp_path / "x"), *args],
                           capture_output=True, text=True)
        assert p.returncode == 2, p
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], p.stderr
    p = subprocess.run([scribed_bin(), "speak", "--list-voices"], capture_output=True, text=True)
    assert p.returncode == 0 and "flite-rms" in p.stdout and "alloy" in p.stdout
