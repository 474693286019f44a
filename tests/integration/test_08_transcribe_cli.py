"""`scribed transcribe` from the command line: a real transcription in every
format, and bad input (flags, model, audio) as one clear line on stderr with a
non-zero exit, never a crash."""
import json
import os
import subprocess

import pytest

from conftest import micro_model, scribed_bin, shared_dir

CLIP = os.path.join(shared_dir(), "reference", "a_short.wav")


def run(*args):
    return subprocess.run([scribed_bin(), "transcribe", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(autouse=True)
def _need_model():
    if not os.path.exists(micro_model()):
        pytest.skip(f"no reference model at {micro_model()} (set SCRIBED_SHARED)")


def test_verbose_json_has_openai_shape():
    r = run("--model", micro_model(), "--format", "verbose_json", "--beam-size", "1",
            "--no-fallback", CLIP)
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["task"] == "transcribe" and 1.9 < body["duration"] < 2.1
    for seg in body["segments"]:
        assert {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                "compression_ratio", "no_speech_prob"} <= set(seg)


@pytest.mark.parametrize("fmt,check", [
    ("srt", lambda out: "-->" in out and "," in out.split("-->")[0]),
    ("vtt", lambda out: out.startswith("WEBVTT")),
    ("json", lambda out: "text" in json.loads(out)),
])
def test_subtitle_and_json_formats(fmt, check):
    r = run("--model", micro_model(), "--format", fmt, "--beam-size", "1", "--no-fallback", CLIP)
    assert r.returncode == 0, r.stderr
    assert check(r.stdout), r.stdout


@pytest.mark.parametrize("flag,value", [
    ("--beam-size", "x"), ("--threads", "99999999999"), ("--temperature", "nan"),
    ("--max-tokens", "3.5"), ("--format", "docx"), ("--task", "summarize")])
def test_bad_flag_values_name_the_flag(flag, value):
    r = run("--model", micro_model(), flag, value, CLIP)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert flag.lstrip("-").split("-")[0] in r.stderr, r.stderr


@pytest.mark.parametrize("flag,value,words", [
    ("--beam-size", "0", ["--beam-size", "1 to 16"]), ("--beam-size", "17", ["1 to 16"]),
    ("--temperature", "-0.5", ["--temperature", "0 to 1"]),
    ("--max-tokens", "300", ["0 to 224"]), ("--language", "xx", ["unknown language 'xx'"])])
def test_out_of_range_parameters_are_usage_errors_naming_the_range(flag, value, words):
    # the ranges are the API's (one parameter table): refused before any work, never clamped
    r = run("--model", micro_model(), flag, value, CLIP)
    assert r.returncode == 2 and all(w in r.stderr for w in words), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("flag,value", [("--language", "de"), ("--task", "translate")])
def test_multilingual_only_parameters_on_an_english_model(flag, value):
    r = run("--model", micro_model(), flag, value, CLIP)
    assert r.returncode == 1 and "English-only" in r.stderr, r.stderr


def test_beam_size_above_the_default_slots_is_honoured():
    r = run("--model", micro_model(), "--format", "json", "--beam-size", "8", CLIP)
    assert r.returncode == 0, r.stderr
    assert "text" in json.loads(r.stdout)


def test_help_lists_the_table_of_parameters():
    r = run("--help")
    assert r.returncode == 0
    for flag in ("--beam-size N", "--best-of N", "--vad-threshold X", "--no-vad-filter",
                 "--format json|text|srt|vtt|verbose_json", "--model PATH"):
        assert flag in r.stdout, flag


def test_bad_model_and_audio_files(tmp_path):
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 10)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    cases = [
        (["--model", str(tmp_path / "missing.bin"), CLIP], "missing.bin"),
        (["--model", str(text), CLIP], str(text)),
        (["--model", micro_model(), str(text)], "not a recognised audio format"),
        (["--model", micro_model(), str(empty)], "empty"),
        (["--model", micro_model(), str(tmp_path / "nope.wav")], "nope.wav"),
    ]
    for args, want in cases:
        r = run(*args)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert r.stderr.count("\n") == 1 and want in r.stderr, (args, r.stderr)
