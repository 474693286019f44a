"""Structured extraction (issue 20): after transcription a job sends the
transcript to an LLM and stores the validated object beside the transcript.

No LLM runs here, so a stand-in server in this file speaks both protocols as
their public documentation describes them (OpenAI's chat completions with
response_format json_schema; Anthropic's messages with one tool and
tool_choice), records every request, and answers from a script: a valid
object, invalid JSON, an object the schema refuses, 429 with Retry-After,
500, a hang, a body over the size cap.
"""
import asyncio
import json
import os
import wave
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import websockets

from conftest import Server, micro_model, scribed_bin, submit_job, transcribe

LLM_KEY = "sk-llm-test-SECRET-6f1d2c9a"
API_KEY = "scribed-static-key-55"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "action_items"],
    "properties": {
        "summary": {"type": "string", "minLength": 1},
        "action_items": {"type": "array", "items": {"type": "string"}},
    },
}
INSTRUCTIONS = "Summarise the recording in one sentence and list its action items."
VALID = {"summary": "A short test recording.", "action_items": ["check the result"]}


class StandIn:
    """The LLM API stand-in: POST /v1/chat/completions and /v1/messages, plus /hook for webhooks."""

    def __init__(self):
        self.requests = []      # (path, headers dict (lower-case names), body dict, time)
        self.hooks = []
        self.script = []        # actions for the next requests; empty: "valid"
        self.in_flight = 0
        self.max_in_flight = 0
        self.slow_now = 0
        self.max_slow_overlap = 0
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                if self.path == "/hook":
                    with stand_in.lock:
                        stand_in.hooks.append(json.loads(raw))
                    return self.reply(200, {})
                body = json.loads(raw)
                with stand_in.lock:
                    stand_in.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                              body, time.monotonic()))
                    action = stand_in.script.pop(0) if stand_in.script else "valid"
                with stand_in.lock:
                    stand_in.in_flight += 1
                    stand_in.max_in_flight = max(stand_in.max_in_flight, stand_in.in_flight)
                try:
                    stand_in.answer(self, action, body)
                finally:
                    with stand_in.lock:
                        stand_in.in_flight -= 1

            def reply(self, status, obj, headers=None, raw=None):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def hook_url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def reset(self, script=()):
        with self.lock:
            self.requests.clear()
            self.hooks.clear()
            self.script = list(script)
            self.max_in_flight = 0
            self.max_slow_overlap = 0

    def answer(self, h, action, body):
        anthropic = h.path.endswith("/messages")
        if action == "429":
            return h.reply(429, {"error": {"type": "rate_limit_error", "message": "slow down"}},
                           {"Retry-After": "1"})
        if action == "500":
            return h.reply(500, {"error": {"type": "api_error", "message": "internal"}})
        if action == "401":
            return h.reply(401, {"error": {"type": "authentication_error",
                                           "message": f"invalid x-api-key {LLM_KEY}"}})
        if action == "slow":
            # counted around the wait only: the handler thread still runs for a moment
            # after the client has read the answer and sent its next request
            with self.lock:
                self.slow_now += 1
                self.max_slow_overlap = max(self.max_slow_overlap, self.slow_now)
            time.sleep(1.5)
            with self.lock:
                self.slow_now -= 1
            action = "valid"
        if action == "hang":
            time.sleep(6)
            return h.reply(200, {})
        if action == "huge":
            return h.reply(200, None, raw=b'{"pad": "' + b"x" * (2 << 20) + b'"}')
        data = {"valid": VALID, "violating": {"summary": 5, "extra": True}}.get(action)
        if anthropic:
            tool = body["tool_choice"]["name"]
            content = [{"type": "tool_use", "id": "toolu_01", "name": tool, "input": data}]
            if action == "invalid":
                content = [{"type": "text", "text": "I cannot use tools today."}]
            return h.reply(200, {"id": "msg_01", "type": "message", "role": "assistant",
                                 "model": body["model"], "content": content,
                                 "stop_reason": "tool_use", "stop_sequence": None,
                                 "usage": {"input_tokens": 13, "output_tokens": 9}})
        text = "Sure! {not json" if action == "invalid" else json.dumps(data)
        return h.reply(200, {"id": "chatcmpl-01", "object": "chat.completion", "created": 1,
                             "model": body["model"],
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text,
                                                      "refusal": None}}],
                             "usage": {"prompt_tokens": 11, "completion_tokens": 7,
                                       "total_tokens": 18}})

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def stand_in():
    s = StandIn()
    yield s
    s.close()


@pytest.fixture(scope="module")
def templates_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("templates")
    (d / "meeting.json").write_text(json.dumps({"instructions": INSTRUCTIONS, "schema": SCHEMA}))
    return str(d)


def llm_args(stand_in, templates_dir, protocol, *extra):
    return ["--llm-url", stand_in.base, "--llm-protocol", protocol, "--llm-model", "test-model",
            "--llm-timeout", "2", "--llm-max-retries", "2", "--llm-retry-backoff-ms", "50",
            "--llm-max-response-kb", "256", "--extraction-templates", templates_dir,
            "--callback-allow-private", "1", "--workers", "2", *extra]


def start(tmp_path_factory, args, env):
    if not os.path.exists(micro_model()):
        pytest.skip(f"no reference model at {micro_model()} (set SCRIBED_SHARED)")
    s = Server(tmp_path_factory.mktemp("srv"), args, env)
    s.start()
    return s


@pytest.fixture(scope="module", params=["openai", "anthropic"])
def srv(request, tmp_path_factory, stand_in, templates_dir):
    s = start(tmp_path_factory, llm_args(stand_in, templates_dir, request.param,
                                         "--extraction-allow-inline", "1"),
              {"SCRIBED_LLM_API_KEY": LLM_KEY, "SCRIBED_API_KEY": API_KEY})
    s.protocol = request.param
    yield s
    s.stop()
    s.check_log_clean()
    assert LLM_KEY not in s.log()


def wait_job(s, jid, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = requests.get(s.url(f"/v1/jobs/{jid}"), headers=AUTH, timeout=5).json()
        if j["status"] in ("succeeded", "failed", "cancelled"):
            return j
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def job_with_extraction(s, wav, fields=None):
    f = {"extract": "meeting"}
    f.update(fields or {})
    with open(wav, "rb") as fh:
        r = requests.post(s.url("/v1/jobs"), data=f, headers=AUTH,
                          files={"file": ("a.wav", fh, "audio/wav")}, timeout=60)
    assert r.status_code == 202, r.text
    job = wait_job(s, r.json()["id"])
    assert job["status"] == "succeeded", job  # whatever the LLM did
    ex = requests.get(s.url(f"/v1/jobs/{job['id']}/extraction"), headers=AUTH, timeout=5)
    assert ex.status_code == 200, ex.text
    return job, ex.json()


def transcript_text(s, jid):
    return requests.get(s.url(f"/v1/jobs/{jid}/result"), params={"format": "json"},
                        headers=AUTH, timeout=5).json()["text"]


def test_request_matches_protocol_and_result_is_stored(srv, stand_in, short_wav):
    stand_in.reset()
    job, ex = job_with_extraction(srv, short_wav)
    assert ex["status"] == "succeeded" and ex["error"] is None
    assert ex["data"] == VALID
    assert ex["template"] == "meeting" and ex["model"] == "test-model"
    assert ex["timings"]["requests"] == 1 and ex["timings"]["repair_rounds"] == 0
    assert ex["timings"]["llm_s"] >= 0
    assert len(stand_in.requests) == 1
    path, headers, body, _ = stand_in.requests[0]
    text = transcript_text(srv, job["id"])
    assert text.strip()
    assert body["model"] == "test-model"
    assert LLM_KEY not in json.dumps(body)
    assert headers["content-type"] == "application/json"
    if srv.protocol == "openai":
        assert path == "/v1/chat/completions"
        assert headers["authorization"] == f"Bearer {LLM_KEY}"
        assert "x-api-key" not in headers
        assert ex["usage"] == {"input_tokens": 11, "output_tokens": 7}
        msgs = body["messages"]
        assert [m["role"] for m in msgs] == ["system", "user"]
        assert INSTRUCTIONS in msgs[0]["content"]
        assert text in msgs[1]["content"]
        rf = body["response_format"]
        assert rf["type"] == "json_schema"
        assert rf["json_schema"] == {"name": "meeting", "schema": SCHEMA, "strict": True}
    else:
        assert path == "/v1/messages"
        assert headers["x-api-key"] == LLM_KEY
        assert headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in headers
        assert ex["usage"] == {"input_tokens": 13, "output_tokens": 9}
        assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
        assert INSTRUCTIONS in body["system"]
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert text in body["messages"][0]["content"]
        assert len(body["tools"]) == 1
        assert body["tools"][0]["name"] == "meeting"
        assert body["tools"][0]["input_schema"] == SCHEMA
        assert body["tool_choice"] == {"type": "tool", "name": "meeting"}
    # verbose_json carries it under its own key; json stays OpenAI's shape
    vj = requests.get(srv.url(f"/v1/jobs/{job['id']}/result"), params={"format": "verbose_json"},
                      headers=AUTH, timeout=5).json()
    assert vj["extraction"] == ex and vj["text"] == text
    assert job["request"]["extract"] == "meeting"
    # the transcript and the model's answer stay out of the (info-level) log
    time.sleep(0.2)
    log = srv.log()
    assert text.strip() not in log and VALID["summary"] not in log


def test_repair_round_sends_the_errors_back(srv, stand_in, short_wav):
    stand_in.reset(["violating", "valid"])
    _, ex = job_with_extraction(srv, short_wav)
    assert ex["status"] == "succeeded" and ex["data"] == VALID
    assert ex["timings"]["requests"] == 2 and ex["timings"]["repair_rounds"] == 1
    assert len(stand_in.requests) == 2
    body = stand_in.requests[1][2]
    msgs = body["messages"][1:] if srv.protocol == "openai" else body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert json.loads(msgs[1]["content"]) == {"summary": 5, "extra": True}
    assert "/summary" in msgs[2]["content"] and "/extra" in msgs[2]["content"]
    assert "/action_items" in msgs[2]["content"]  # required, missing


def test_second_bad_answer_fails_the_extraction_not_the_job(srv, stand_in, short_wav):
    stand_in.reset(["violating", "violating"])
    job, ex = job_with_extraction(srv, short_wav)
    assert job["status"] == "succeeded"
    assert ex["status"] == "failed" and ex["data"] is None
    assert ex["error"]["code"] and "schema" in ex["error"]["message"]
    assert len(stand_in.requests) == 2
    # invalid JSON (OpenAI) is repaired like a schema fault; a missing tool_use block cannot be
    stand_in.reset(["invalid", "valid"])
    _, ex = job_with_extraction(srv, short_wav)
    if srv.protocol == "openai":
        assert ex["status"] == "succeeded" and len(stand_in.requests) == 2
        assert stand_in.requests[1][2]["messages"][2]["content"] == "Sure! {not json"
    else:
        assert ex["status"] == "failed" and len(stand_in.requests) == 1
        assert "tool_use" in ex["error"]["message"]


def test_429_retry_after_is_honoured(srv, stand_in, short_wav):
    stand_in.reset(["429", "valid"])
    _, ex = job_with_extraction(srv, short_wav)
    assert ex["status"] == "succeeded" and ex["timings"]["requests"] == 2
    # Retry-After: 1 beats the 50 ms backoff (a lower bound, not a speed measurement)
    assert stand_in.requests[1][3] - stand_in.requests[0][3] >= 0.9


def test_5xx_retries_are_bounded(srv, stand_in, short_wav):
    stand_in.reset(["500", "500", "500", "valid"])
    job, ex = job_with_extraction(srv, short_wav)
    assert job["status"] == "succeeded"
    assert ex["status"] == "failed" and "HTTP 500" in ex["error"]["message"]
    assert len(stand_in.requests) == 3  # first try + --llm-max-retries 2
    stand_in.reset(["401"])
    _, ex = job_with_extraction(srv, short_wav)
    assert ex["status"] == "failed" and len(stand_in.requests) == 1  # 4xx: no retry
    assert "401" in ex["error"]["message"] and LLM_KEY not in ex["error"]["message"]


def test_hang_times_out_and_big_answers_are_refused(srv, stand_in, short_wav):
    stand_in.reset(["hang"])
    job, ex = job_with_extraction(srv, short_wav)
    assert job["status"] == "succeeded"
    assert ex["status"] == "failed" and ex["error"]["code"] == "timeout"
    assert len(stand_in.requests) == 1  # a total timeout is not retried
    stand_in.reset(["huge"])
    _, ex = job_with_extraction(srv, short_wav)
    assert ex["status"] == "failed" and "larger than" in ex["error"]["message"]


def test_sync_endpoint_and_webhook_carry_the_extraction(srv, stand_in, short_wav):
    stand_in.reset()
    for fmt in ("verbose_json", "json"):
        with open(short_wav, "rb") as fh:
            r = requests.post(srv.url("/v1/audio/transcriptions"), headers=AUTH,
                              data={"model": "whisper-1", "extract": "meeting",
                                    "response_format": fmt},
                              files={"file": ("a.wav", fh, "audio/wav")}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["extraction"]["data"] == VALID and "text" in r.json()
    with open(short_wav, "rb") as fh:
        r = requests.post(srv.url("/v1/audio/transcriptions"), headers=AUTH,
                          data={"model": "whisper-1", "extract": "meeting",
                                "response_format": "text"},
                          files={"file": ("a.wav", fh, "audio/wav")}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "extract"
    stand_in.reset()
    with open(short_wav, "rb") as fh:
        r = requests.post(srv.url("/v1/jobs"), headers=AUTH,
                          data={"extract": "meeting", "callback_url": stand_in.hook_url},
                          files={"file": ("a.wav", fh, "audio/wav")}, timeout=60)
    jid = r.json()["id"]
    deadline = time.time() + 30
    while not stand_in.hooks and time.time() < deadline:
        time.sleep(0.05)
    assert stand_in.hooks and stand_in.hooks[0]["id"] == jid
    assert stand_in.hooks[0]["extraction"]["data"] == VALID


def test_inline_schema_and_refusals(srv, stand_in, short_wav):
    inline = {"type": "object", "properties": {"topic": {"type": "string"}},
              "required": ["topic"], "additionalProperties": False}
    stand_in.reset()
    _, ex = job_with_extraction(srv, short_wav, {"extract": "", "extract_schema": json.dumps(inline),
                                                  "extract_instructions": "Name the topic."})
    # the stand-in answers VALID, which this schema refuses twice: the request still had the schema
    assert ex["status"] == "failed"
    body = stand_in.requests[0][2]
    sent = (body["response_format"]["json_schema"]["schema"] if srv.protocol == "openai"
            else body["tools"][0]["input_schema"])
    assert sent == inline

    def post(fields):
        with open(short_wav, "rb") as fh:
            return requests.post(srv.url("/v1/jobs"), headers=AUTH, data=fields,
                                 files={"file": ("a.wav", fh, "audio/wav")}, timeout=60)
    r = post({"extract": "nope"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "extract"
    r = post({"extract_schema": "{not json"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "extract_schema"
    r = post({"extract_schema": json.dumps({"type": "text"})})
    assert r.status_code == 400 and r.json()["error"]["param"] == "extract_schema"
    # a job without extraction has none to show
    r = post({})
    jid = wait_job(srv, r.json()["id"])["id"]
    assert requests.get(srv.url(f"/v1/jobs/{jid}/extraction"), headers=AUTH,
                        timeout=5).status_code == 404


def test_routes_need_a_key_and_templates_are_listed(srv):
    r = requests.get(srv.url("/v1/extraction/templates"), timeout=5)
    assert r.status_code == 401
    assert requests.get(srv.url("/v1/jobs/job_x/extraction"), timeout=5).status_code == 401
    r = requests.get(srv.url("/v1/extraction/templates"), headers=AUTH, timeout=5)
    assert r.status_code == 200
    lst = r.json()
    assert [t["name"] for t in lst["data"]] == ["meeting"]
    assert lst["data"][0]["schema"] == SCHEMA and lst["data"][0]["instructions"] == INSTRUCTIONS
    assert lst["llm_configured"] is True and lst["inline_schemas"] is True


def test_health_and_metrics_never_show_the_key(srv):
    h = requests.get(srv.url("/health"), timeout=5)
    llm = h.json()["llm"]
    assert llm["configured"] is True and llm["protocol"] == srv.protocol
    assert llm["model"] == "test-model" and llm["reachable"] in (True, False)
    assert LLM_KEY not in h.text
    m = requests.get(srv.url("/metrics"), headers=AUTH, timeout=5).text
    assert LLM_KEY not in m
    calls = [l for l in m.splitlines() if l.startswith("scribed_llm_calls_total ")]
    fails = [l for l in m.splitlines() if l.startswith("scribed_llm_failures_total ")]
    assert calls and int(calls[0].split()[1]) >= 10
    assert fails and int(fails[0].split()[1]) >= 5
    assert 'scribed_llm_tokens_total{kind="input"}' in m
    assert "scribed_llm_duration_seconds_count" in m
    log = srv.log()
    assert LLM_KEY not in log and LLM_KEY[8:] not in log
    assert any(e.get("status") == "failed" for e in srv.events("extraction.done"))


def test_misconfiguration_is_refused(make_server, tmp_path, stand_in, short_wav):
    # a template that is not a schema stops the start with one line naming the file
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.json").write_text('{"instructions": "x", "schema": {"type": "nope"}}')
    p = subprocess.run([scribed_bin(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
                        "--extraction-templates", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.json" in lines[0], p.stderr
    p = subprocess.run([scribed_bin(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
                        "--llm-url", stand_in.base],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--llm-model" in p.stderr
    # the key is never a flag
    p = subprocess.run([scribed_bin(), "serve", "--llm-api-key", "x"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "unknown option" in p.stderr
    # credentials in the URL stay out of the log too
    s = make_server(args=["--llm-url", "http://user:pw-SECRET-1@127.0.0.1:9/v1?key=SECRET-2",
                          "--llm-model", "m"])
    assert any(e.get("url") == "http://127.0.0.1:9/v1" for e in s.events("llm.configured"))
    assert "SECRET" not in s.log()
    # no LLM: extract is refused up front; no inline permission: extract_schema is
    s = make_server()
    r = submit_job(s, short_wav, {"extract": "meeting"})
    assert r.status_code == 400 and "not configured" in r.json()["error"]["message"]
    assert requests.get(s.url("/health"), timeout=5).json()["llm"] == {"configured": False}
    key_file = tmp_path / "key"
    key_file.write_text(LLM_KEY + "\n")
    tdir = tmp_path / "t"
    tdir.mkdir()
    (tdir / "meeting.json").write_text(json.dumps({"instructions": INSTRUCTIONS, "schema": SCHEMA}))
    s = make_server(args=["--llm-url", stand_in.base, "--llm-model", "m",
                          "--llm-api-key-file", str(key_file), "--extraction-templates", str(tdir)])
    r = submit_job(s, short_wav, {"extract_schema": json.dumps(SCHEMA)})
    assert r.status_code == 400 and r.json()["error"]["param"] == "extract_schema"
    # the key from the file reaches the API's header
    stand_in.reset()
    r = submit_job(s, short_wav, {"extract": "meeting"})
    jid = r.json()["id"]
    wait_job(s, jid)
    assert stand_in.requests[0][1]["authorization"] == f"Bearer {LLM_KEY}"
    assert LLM_KEY not in s.log()


def test_realtime_session_ends_with_an_extraction(srv, stand_in, short_wav):
    with wave.open(short_wav) as w:
        pcm = w.readframes(w.getnframes())

    async def session(config, end):
        msgs = []
        url = f"ws://127.0.0.1:{srv.port}/v1/realtime"
        async with websockets.connect(url, extra_headers=AUTH, max_size=None) as ws:
            await ws.send(json.dumps(config))
            assert json.loads(await ws.recv())["type"] == "ready"
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i:i + 3200])
            await ws.send(json.dumps(end))
            async for m in ws:
                msgs.append(json.loads(m))
        return msgs

    base = {"sample_rate": 16000, "format": "pcm_s16le", "use_vad": False}
    stand_in.reset()
    msgs = asyncio.run(session(dict(base, extract="meeting"), {"type": "end"}))
    types = [m["type"] for m in msgs]
    assert types[-2:] == ["done", "extraction"], types
    ex = msgs[-1]
    assert ex["status"] == "succeeded" and ex["data"] == VALID and ex["template"] == "meeting"
    assert len(stand_in.requests) == 1  # once for the session, not per decode
    body = stand_in.requests[0][2]
    user = body["messages"][-1]["content"]
    assert msgs[-2]["text"] and msgs[-2]["text"] in user
    # asked for at the end instead; a failing LLM still gives the transcript first
    stand_in.reset(["401"])
    msgs = asyncio.run(session(base, {"type": "end", "extract": "meeting"}))
    assert [m["type"] for m in msgs][-2:] == ["done", "extraction"]
    assert msgs[-1]["status"] == "failed"
    # an unknown template is refused with the config
    async def bad():
        url = f"ws://127.0.0.1:{srv.port}/v1/realtime"
        async with websockets.connect(url, extra_headers=AUTH) as ws:
            await ws.send(json.dumps(dict(base, extract="nope")))
            return json.loads(await ws.recv())
    m = asyncio.run(bad())
    assert m["type"] == "error" and "template" in m["message"]


def test_concurrency_cap(make_server, stand_in, templates_dir, short_wav):
    # two workers finish transcribing together; with --llm-concurrency 1 their LLM calls queue
    s = make_server(args=llm_args(stand_in, templates_dir, "openai", "--llm-concurrency", "1"))
    stand_in.reset(["slow"] * 3)
    ids = []
    for _ in range(3):
        r = submit_job(s, short_wav, {"extract": "meeting"})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for jid in ids:
        assert wait_job(s, jid, timeout=120)["status"] == "succeeded"
        ex = requests.get(s.url(f"/v1/jobs/{jid}/extraction"), timeout=5).json()
        assert ex["status"] == "succeeded"
    assert len(stand_in.requests) == 3
    assert stand_in.max_slow_overlap == 1


def test_cancel_cuts_a_waiting_extraction_short(make_server, stand_in, templates_dir, short_wav):
    s = make_server(args=llm_args(stand_in, templates_dir, "openai", "--llm-timeout", "60"))
    stand_in.reset(["hang"])
    jid = submit_job(s, short_wav, {"extract": "meeting"}).json()["id"]
    deadline = time.time() + 60
    while not stand_in.requests and time.time() < deadline:
        time.sleep(0.05)
    assert stand_in.requests
    assert requests.delete(s.url(f"/v1/jobs/{jid}"), timeout=5).status_code == 200
    assert wait_job(s, jid)["status"] == "cancelled"
    deadline = time.time() + 10
    while not s.events("extraction.done") and time.time() < deadline:
        time.sleep(0.05)
    done = s.events("extraction.done")
    # the request in flight was aborted, not answered (the stand-in never answers usefully)
    assert done and done[0]["error"] and "cancelled" in done[0]["error"]


def test_drain_requeues_a_job_waiting_on_the_llm(make_server, tmp_path, stand_in, templates_dir,
                                                 short_wav):
    # running jobs get --drain-timeout-s to finish; then they are cancelled and re-queued
    args = llm_args(stand_in, templates_dir, "openai", "--llm-timeout", "60",
                    "--drain-timeout-s", "1")
    s = make_server(args=args, data_dir=tmp_path / "drain")
    stand_in.reset(["hang"])
    jid = submit_job(s, short_wav, {"extract": "meeting"}).json()["id"]
    deadline = time.time() + 60
    while not stand_in.requests and time.time() < deadline:
        time.sleep(0.05)
    assert stand_in.requests
    assert s.stop() == 0
    # the drain did not have to give up on the worker: the LLM request was aborted
    assert not s.events("server.abandon")
    assert "cancelled" in s.events("extraction.done")[0]["error"]
    # after the restart the job runs again, extraction included
    stand_in.reset()
    s2 = make_server(args=args, data_dir=tmp_path / "drain")
    job = wait_job(s2, jid)
    assert job["status"] == "succeeded"
    ex = requests.get(s2.url(f"/v1/jobs/{jid}/extraction"), timeout=5).json()
    assert ex["status"] == "succeeded" and ex["data"] == VALID
