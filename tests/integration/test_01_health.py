"""Health, metrics, models, request ids, configuration (--help, env), missing model,
a port already in use."""
import os
import re
import subprocess
import time

import requests

from conftest import assert_openai_error, micro_model, scribed_bin, transcribe


def test_health_fields(server):
    r = requests.get(server.url("/health"), timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert body["model_loaded"] is True
    assert isinstance(body["vad_loaded"], bool)
    assert body["queue_depth"] == 0
    assert body["model"]
    assert body["version"]
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Request-Id"]


def test_request_id_echoed_and_logged(server):
    r = requests.get(server.url("/v1/models"), headers={"X-Request-Id": "trace-abc_123"}, timeout=5)
    assert r.headers["X-Request-Id"] == "trace-abc_123"
    time.sleep(0.1)
    reqs = [e for e in server.events("http.request") if e.get("req") == "trace-abc_123"]
    assert reqs and reqs[0]["status"] == 200 and reqs[0]["route"] == "models"
    # a hostile id is replaced, not echoed
    r = requests.get(server.url("/v1/models"), headers={"X-Request-Id": "a\"b<script>"}, timeout=5)
    assert r.headers["X-Request-Id"].startswith("req_")


def test_models_list(server):
    """Ids are stable slugs (the micro test model is no published shape: its file's
    name), whisper-1 is an alias of the loaded model, created is the file's mtime."""
    r = requests.get(server.url("/v1/models"), timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    # the transcription model and its alias first, then speech (tts-1, ...) and the voices
    assert ids[:2] == ["micro-en.f16", "whisper-1"]
    assert "tts-1" in ids and "flite-rms" in ids
    assert all(m.get("type") in ("speech", "voice") for m in body["data"][2:])
    mtime = int(os.stat(micro_model()).st_mtime)
    for m in body["data"]:
        assert m["object"] == "model" and m["owned_by"] == "scribed"
        assert m["created"] > 0
        assert " " not in m["id"]
    assert [m["created"] for m in body["data"][:2]] == [mtime, mtime]


def test_model_retrieve_and_unknown_model(server, short_wav):
    for mid in ("micro-en.f16", "whisper-1"):
        r = requests.get(server.url(f"/v1/models/{mid}"), timeout=5)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == mid and r.json()["object"] == "model"
    r = requests.get(server.url("/v1/models/gpt-9"), timeout=5)
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "The model 'gpt-9' does not exist",
                                  "type": "invalid_request_error", "param": "model",
                                  "code": "model_not_found"}}
    for endpoint in ("/v1/audio/transcriptions", "/v1/audio/translations", "/v1/jobs"):
        r = transcribe(server, short_wav, {"model": "gpt-9"}, endpoint=endpoint)
        err = assert_openai_error(r, 404, "model")
        assert err["code"] == "model_not_found", endpoint
    r = transcribe(server, short_wav, {"model": "micro-en.f16", "response_format": "text"})
    assert r.status_code == 200, r.text


def test_metrics_prometheus(server, short_wav):
    assert transcribe(server, short_wav).status_code == 200
    requests.get(server.url("/health"), timeout=5)
    r = requests.get(server.url("/metrics"), timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    for name in ("scribed_http_requests_total", "scribed_job_duration_seconds_bucket",
                 "scribed_queue_depth", "scribed_audio_seconds_total", "scribed_real_time_factor",
                 "process_resident_memory_bytes", "scribed_jobs_total"):
        assert name in text, name
    assert 'route="transcriptions",status="200"' in text
    audio = [l for l in text.splitlines() if l.startswith("scribed_audio_seconds_total")]
    assert float(audio[0].split()[1]) > 1.0
    for line in text.splitlines():
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])  # every sample parses


def kernels_info(srv):
    """The labels of scribed_kernels_info in /metrics (one sample, value 1)."""
    text = requests.get(srv.url("/metrics"), timeout=5).text
    info = [l for l in text.splitlines() if l.startswith("scribed_kernels_info{")]
    assert len(info) == 1, text
    assert info[0].endswith("} 1")
    return dict(re.findall(r'(\w+)="([^"]*)"', info[0]))


def test_metrics_and_log_name_the_chosen_kernels(make_server):
    """At start the kernels are timed on the model and the choice is cached in the
    data dir; /metrics and the start-up line say which; a restart on the same data
    dir reuses the cache; --calibrate 0 keeps the default table."""
    first = make_server()
    labels = kernels_info(first)
    assert set(labels) == {"gemv_f16", "gemv_q", "gemm", "source"}
    assert labels["source"] == "measured"
    assert all(labels[k] for k in ("gemv_f16", "gemv_q", "gemm"))
    time.sleep(0.2)
    ready = first.events("model.ready")
    assert len(ready) == 1
    choice = " ".join(f"{k}={labels[k]}" for k in ("gemv_f16", "gemv_q", "gemm"))
    assert ready[0]["kernels"] == choice and ready[0]["kernels_source"] == "measured"
    with open(os.path.join(first.data_dir, "kernels.cache")) as f:
        assert choice in f.read()
    first.stop()
    again = make_server(data_dir=first.data_dir)
    assert kernels_info(again) == dict(labels, source="cache")
    again.stop()
    off = make_server(args=["--calibrate", "0"])
    text = requests.get(off.url("/metrics"), timeout=5).text
    assert "scribed_kernels_info{" not in text
    forced = make_server(env={"SCRIBED_SIMD": "scalar"})
    assert kernels_info(forced) == {"gemv_f16": "scalar", "gemv_q": "scalar", "gemm": "scalar",
                                    "source": "forced"}


def test_unknown_route_and_method(server):
    r = requests.get(server.url("/v1/nothing"), timeout=5)
    assert_openai_error(r, 404)
    r = requests.put(server.url("/health"), timeout=5)
    assert_openai_error(r, 405)
    r = requests.get(server.url("/v1/audio/transcriptions"), timeout=5)
    assert_openai_error(r, 405)


def test_keep_alive_reuses_connection(server):
    with requests.Session() as s:
        for _ in range(5):
            r = s.get(server.url("/health"), timeout=5)
            assert r.status_code == 200
            assert r.headers.get("Connection", "").lower() != "close"


def test_help_lists_options_and_env():
    out = subprocess.run([scribed_bin(), "serve", "--help"], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 0
    for needle in ("--port", "SCRIBED_PORT", "8080", "--data-dir", "SCRIBED_DATA_DIR", "--model",
                   "--workers", "SCRIBED_MAX_FILE_SIZE_MB", "200", "--log-level",
                   "SCRIBED_UPLOAD_RETENTION_DAYS"):
        assert needle in out.stdout, needle


def test_bad_flag_and_env_rejected(tmp_path):
    out = subprocess.run([scribed_bin(), "serve", "--port", "99999"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 2 and "65535" in out.stderr
    out = subprocess.run([scribed_bin(), "serve", "--bogus", "1"], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 2 and "bogus" in out.stderr
    env = dict(os.environ, SCRIBED_WORKERS="lots")
    out = subprocess.run([scribed_bin(), "serve", "--data-dir", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "SCRIBED_WORKERS" in out.stderr


def test_env_configures_and_flag_wins(make_server):
    s = make_server(env={"SCRIBED_WORKERS": "3", "SCRIBED_LOG_LEVEL": "debug"})
    body = requests.get(s.url("/health"), timeout=5).json()
    assert body["workers"] == 3
    s2 = make_server(args=["--workers", "1"], env={"SCRIBED_WORKERS": "3"})
    assert requests.get(s2.url("/health"), timeout=5).json()["workers"] == 1


def test_missing_model_keeps_running_with_503(make_server, tmp_path, short_wav):
    s = make_server(model="", data_dir=tmp_path / "nomodel")
    r = requests.get(s.url("/health"), timeout=5)
    assert r.status_code == 503
    body = r.json()
    assert body["model_loaded"] is False
    assert "scribed model download base.en" in body["error"]
    assert s.proc.poll() is None
    r = transcribe(s, short_wav)
    err = assert_openai_error(r, 503)
    assert "scribed model download" in err["message"]
    assert requests.get(s.url("/metrics"), timeout=5).status_code == 200


def test_second_server_on_a_busy_port_fails_at_start(make_server, tmp_path):
    """Two servers must never share a port (the kernel would split requests between
    them): the second exits non-zero with one line, before touching its data dir."""
    first = make_server()
    data = tmp_path / "second"
    try:
        r = subprocess.run([scribed_bin(), "serve", "--host", "127.0.0.1", "--port",
                            str(first.port), "--data-dir", str(data), "--model", micro_model()],
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("a second server started on a port in use")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Address already in use" in lines[0] and str(first.port) in lines[0], lines[0]
    assert not data.exists()
    assert requests.get(first.url("/health"), timeout=5).status_code == 200
