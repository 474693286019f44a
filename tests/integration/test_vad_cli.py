"""`scribed vad` end to end: the shared Silero model on the shared VAD clips."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SCRIBED_BIN", str(ROOT / "build" / "scribed"))
SHARED = Path(os.environ.get("SCRIBED_SHARED", ROOT.parent / "shared"))
MODEL = SHARED / "models" / "silero-v6.2.0.bin"
VAD = SHARED / "reference" / "vad"

pytestmark = pytest.mark.skipif(not Path(BIN).exists(), reason=f"{BIN} not built")


def vad(*args):
    return subprocess.run([BIN, "vad", "--model", str(MODEL), *args], capture_output=True,
                          text=True, timeout=120)


def manifest_clip(name):
    m = json.loads((VAD / "manifest.json").read_text())
    return next(c for c in m["clips"] if c["name"] == name)


def as_cs(out):
    return [[round(s["start"] * 100), round(s["end"] * 100)] for s in json.loads(out)["segments"]]


@pytest.mark.parametrize("clip", ["vad_a_clean", "vad_b_noise", "vad_c_shortgaps"])
def test_segments_match_reference(clip):
    ref = manifest_clip(clip)
    r = vad(str(VAD / f"{clip}.wav"))  # scribed defaults = the reference's custom set
    assert r.returncode == 0, r.stderr
    assert as_cs(r.stdout) == ref["segments_custom_cs"]
    r = vad("--threshold", "0.5", "--min-silence-ms", "100", "--speech-pad-ms", "30",
            "--max-speech-s", "0", str(VAD / f"{clip}.wav"))
    assert r.returncode == 0, r.stderr
    assert as_cs(r.stdout) == ref["segments_default_cs"]


def test_silence_and_noise_have_no_segments():
    for clip in ("d_silence", "e_noise"):
        r = vad(str(SHARED / "reference" / f"{clip}.wav"))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"segments": []}


def test_probs_output():
    r = vad("--probs", str(VAD / "vad_c_shortgaps.wav"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["probs"]) == manifest_clip("vad_c_shortgaps")["n_probs"]
    assert out["window_s"] == 0.032


def test_bench_reports_speed():
    r = vad("--bench", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["windows"] == 1875 and out["threads"] == 1
    assert out["ms_per_audio_minute"] > 0


def test_errors():
    r = subprocess.run([BIN, "vad", "--data-dir", "/nonexistent", str(VAD / "vad_a_clean.wav")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "scribed model download" in r.stderr
    assert vad("--threshold", "2", str(VAD / "vad_a_clean.wav")).returncode == 2
    assert vad("--min-silence-ms", "x", str(VAD / "vad_a_clean.wav")).returncode == 2
    assert vad().returncode == 2
    r = vad("/nonexistent.wav")
    assert r.returncode == 1 and r.stderr.startswith("scribed vad:")
