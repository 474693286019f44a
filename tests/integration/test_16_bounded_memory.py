"""A job's memory does not depend on the audio's length: the file is decoded
as a stream, in passes, and only ~30-60 s of samples are held at a time
(src/pipeline/passes.h). An hour-long WAV (mostly silence, some speech, VAD
on) peaks at the same resident size as a one-minute one; before, the whole
decoded PCM was held (4 bytes per sample: +230 MB for this hour).
bench/memory_by_length.py records the figures up to 4 hours."""
import os
import wave

import pytest
import requests

from conftest import shared_dir, submit_job, wait_job

# Generous: the minute and the hour must peak alike, far below the +230 MB of whole-file PCM.
SAME_PEAK_MB = 48


def speech_and_silence(path, seconds, every_s):
    """`seconds` of digital silence with the reference utterance every `every_s` seconds."""
    with wave.open(os.path.join(shared_dir(), "reference", "a_short.wav")) as w:
        params, speech = w.getparams(), w.readframes(w.getnframes())
    rate, silence = params.framerate, b"\0\0" * params.framerate
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        for second in range(int(seconds)):
            if second % every_s == 0:
                out.writeframes(speech)
            else:
                out.writeframes(silence)
    with wave.open(str(path)) as w:
        return str(path), w.getnframes() / w.getframerate()


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def run_once(make_server, path):
    vad = os.path.join(shared_dir(), "models", "silero-v6.2.0.bin")
    # a small ASan quarantine, so a sanitizer build measures the same thing
    s = make_server(["--workers", "1", "--vad-model", vad, "--max-file-size-mb", "400"],
                    env={"ASAN_OPTIONS": "quarantine_size_mb=4:detect_leaks=1"})
    r = submit_job(s, path, {"response_format": "verbose_json"}, timeout=300)
    assert r.status_code == 202, r.text
    job = wait_job(s, r.json()["id"], timeout=1200)
    assert job["status"] == "succeeded", job
    result = requests.get(s.url(f"/v1/jobs/{job['id']}/result"), timeout=30).json()
    return peak_rss_mb(s.proc.pid), result


def test_an_hour_peaks_like_a_minute(make_server, tmp_path):
    minute, minute_s = speech_and_silence(tmp_path / "minute.wav", 60, 20)
    hour, hour_s = speech_and_silence(tmp_path / "hour.wav", 3600, 300)
    peak_minute, short = run_once(make_server, minute)
    peak_hour, long = run_once(make_server, hour)
    assert abs(long["duration"] - hour_s) < 0.01 and abs(short["duration"] - minute_s) < 0.01
    assert peak_hour - peak_minute < SAME_PEAK_MB, (peak_minute, peak_hour)
    # the speech every 5 minutes is found and its times are those of the original file
    starts = [seg["start"] for seg in long["segments"]]
    assert starts and all(0 <= t <= hour_s for t in starts), starts
