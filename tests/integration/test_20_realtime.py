"""GET /v1/realtime over a real WebSocket client (Debian's python3-websockets):
the scribed dialect (config, binary PCM, end -> ready/segments/error/done), the
OpenAI Realtime transcription intent, bad input, and 20 concurrent streams.

A final's text must equal the file transcription of the same span: each final
carries its span (start/end in seconds with microsecond precision, which
round back to the exact samples); the span is cut from the WAV and sent to
POST /v1/audio/transcriptions with the realtime decoding settings (greedy,
no VAD filter), on the same server and engine.
"""
import asyncio
import base64
import io
import json
import os
import time
import wave

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # resampling for the 24 kHz OpenAI test (python3.11 still has it)

import pytest
import requests
import websockets

from conftest import Server, micro_model, shared_dir

VAD = os.path.join(shared_dir(), "models", "silero-v6.2.0.bin")
PASSAGE = os.path.join(shared_dir(), "reference", "c_passage.wav")
SENTENCE = os.path.join(shared_dir(), "reference", "b_sentence.wav")
CHUNK = 3200  # 100 ms of 16 kHz s16le


@pytest.fixture(scope="module")
def rt_server(tmp_path_factory):
    for f in (micro_model(), VAD, PASSAGE):
        if not os.path.exists(f):
            pytest.skip(f"missing {f} (set SCRIBED_SHARED)")
    s = Server(tmp_path_factory.mktemp("rt"), ["--workers", "2", "--vad-model", VAD],
               env={"SCRIBED_REALTIME_MAX_STREAMS": "8"})
    s.start()
    yield s
    s.stop()
    s.check_log_clean()


def read_pcm(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


def ws_url(server, query=""):
    return f"ws://127.0.0.1:{server.port}/v1/realtime{query}"


async def stream(server, pcm, pace_s, config=None, end=b"json"):
    """Sends config, then pcm in 100 ms chunks every pace_s; returns (messages with arrival times, close code)."""
    msgs = []
    async with websockets.connect(ws_url(server), max_size=None) as ws:
        await ws.send(json.dumps(config or {"language": "en", "sample_rate": 16000,
                                            "format": "pcm_s16le"}))
        first = json.loads(await ws.recv())
        msgs.append((time.monotonic(), first))
        assert first["type"] == "ready", first

        async def reader():
            async for m in ws:
                msgs.append((time.monotonic(), json.loads(m)))

        task = asyncio.create_task(reader())
        t_last = time.monotonic()
        for i in range(0, len(pcm), CHUNK):
            await ws.send(pcm[i:i + CHUNK])
            if pace_s:
                await asyncio.sleep(pace_s)
        t_last = time.monotonic()
        await ws.send(json.dumps({"type": "end"}) if end == b"json" else end)
        await asyncio.wait_for(task, 300)
        return msgs, ws.close_code, t_last


def wav_bytes(pcm):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return buf.getvalue()


def file_text(server, pcm, start_s, end_s):
    """The same span through the file endpoint with the live decoding settings:
    greedy, one temperature, 8 + 6 tokens per second of audio."""
    a, b = round(start_s * 16000), round(end_s * 16000)
    max_tokens = 8 + int(6.0 * (b - a) / 16000.0)
    r = requests.post(server.url("/v1/audio/transcriptions"),
                      data={"model": "whisper-1", "language": "en", "beam_size": "1",
                            "no_fallback": "true", "max_tokens": str(max_tokens),
                            "vad_filter": "false", "response_format": "json"},
                      files={"file": ("span.wav", wav_bytes(pcm[2 * a:2 * b]), "audio/wav")},
                      timeout=300)
    assert r.status_code == 200, r.text
    return r.json()["text"]


def check_session(server, pcm, msgs, code, need_partials=True):
    types = [m["type"] for _, m in msgs]
    assert types[-1] == "done", types[-5:]
    assert code == 1000
    assert "error" not in types, [m for _, m in msgs if m["type"] == "error"]
    partials = [s for _, m in msgs if m["type"] == "segments" for s in m["segments"]
                if not s["final"]]
    finals = [s for _, m in msgs if m["type"] == "segments" for s in m["segments"] if s["final"]]
    # faster than real time a slow (sanitizer) build may finish utterances before any partial
    assert partials or not need_partials, "no partial text arrived"
    done = msgs[-1][1]
    assert [s["id"] for s in finals] == [s["id"] for s in done["segments"]]
    assert [s["id"] for s in finals] == sorted(s["id"] for s in finals)
    dur = len(pcm) / 2 / 16000
    for a, b in zip(finals, finals[1:]):
        assert a["end"] <= b["start"] + 1e-6, (a, b)
    # c_passage is one speaker reading: the finals cover the audio end to end
    covered = sum(s["end"] - s["start"] for s in finals)
    assert finals[0]["start"] < 1.0 and finals[-1]["end"] > dur - 1.0, finals
    assert covered > 0.85 * dur, (covered, dur)
    assert done["text"] == " ".join(s["text"] for s in finals if s["text"])
    for s in finals:
        assert s["text"] == file_text(server, pcm, s["start"], s["end"]), s
    return partials, finals


def test_realtime_426_without_upgrade(rt_server):
    r = requests.get(rt_server.url("/v1/realtime"), timeout=10)
    assert r.status_code == 426, r.text
    assert r.json()["error"]["code"] == "upgrade_required"


def test_realtime_fast_stream_matches_file_transcription(rt_server):
    pcm = read_pcm(PASSAGE)
    msgs, code, _ = asyncio.run(stream(rt_server, pcm, 0.02))
    check_session(rt_server, pcm, msgs, code, need_partials=False)


def test_realtime_end_of_audio_bytes_and_f32(rt_server):
    pcm = read_pcm(SENTENCE)
    import struct
    ints = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    f32 = struct.pack(f"<{len(ints)}f", *[x / 32768.0 for x in ints])
    msgs, code, _ = asyncio.run(stream(
        rt_server, f32, 0, {"sample_rate": 16000, "format": "pcm_f32le", "language": "en"},
        end=b"END_OF_AUDIO"))
    done = msgs[-1][1]
    assert done["type"] == "done" and code == 1000
    assert done["segments"], done
    # float input with s16 values is the same audio: same text as the s16 file cut
    for s in done["segments"]:
        assert s["text"] == file_text(rt_server, pcm, s["start"], s["end"])


def test_realtime_real_time_pace(rt_server):
    """Once at real-time pace (52 s): partials keep coming while the speaker talks."""
    pcm = read_pcm(PASSAGE)
    t0 = time.monotonic()
    msgs, code, t_last = asyncio.run(stream(rt_server, pcm, 0.1))
    partials, finals = check_session(rt_server, pcm, msgs, code)
    times = [t for t, m in msgs if m["type"] == "segments" and t <= t_last]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    assert times and times[0] - t0 < 3.0, "first text came late"
    median = gaps[len(gaps) // 2]
    print(f"segments messages while streaming: {len(times)}, median gap {median:.2f} s, "
          f"max gap {gaps[-1]:.2f} s")
    assert median <= 1.0, gaps


async def expect_error_close(server, first, second=None):
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(first)
        if second is not None:
            await ws.send(second)
        msgs = []
        try:
            async for m in ws:
                msgs.append(json.loads(m))
        except websockets.ConnectionClosed:
            pass
        return msgs, ws.close_code


@pytest.mark.parametrize("config", [
    b"not json at all",
    json.dumps([1, 2]),
    json.dumps({"format": "mp3"}),
    json.dumps({"sample_rate": 1000}),
    json.dumps({"sample_rate": "16000"}),
    json.dumps({"task": "summarise"}),
    json.dumps({"language": "en; rm -rf"}),
    json.dumps({"vad": {"threshold": 7}}),
    json.dumps({"type": "end"}),
])
def test_realtime_bad_config_errors_and_closes(rt_server, config):
    first = config if isinstance(config, str) else config.decode()
    msgs, code = asyncio.run(expect_error_close(rt_server, first))
    assert msgs and msgs[0]["type"] == "error" and msgs[0]["message"], msgs
    assert code == 1008


def test_realtime_binary_before_config(rt_server):
    msgs, code = asyncio.run(expect_error_close(rt_server, b"\x00\x01" * 100))
    assert msgs[0]["type"] == "error" and "config" in msgs[0]["message"], msgs
    assert code == 1008


def test_realtime_20_concurrent_streams(rt_server):
    pcm = read_pcm(SENTENCE)

    async def one():
        try:
            async with websockets.connect(ws_url(rt_server), max_size=None) as ws:
                try:
                    await ws.send(json.dumps({"language": "en"}))
                except websockets.ConnectionClosed:
                    pass  # a full server may answer before the config is out
                first = json.loads(await ws.recv())
                if first["type"] == "error":
                    with pytest.raises(websockets.ConnectionClosed):
                        await ws.recv()
                    return "full", first, ws.close_code
                for i in range(0, len(pcm), CHUNK):
                    await ws.send(pcm[i:i + CHUNK])
                    await asyncio.sleep(0.01)
                await ws.send(json.dumps({"type": "end"}))
                last = None
                async for m in ws:
                    last = json.loads(m)
                return "done", last, ws.close_code
        except websockets.ConnectionClosed as e:
            return "closed", str(e), None

    async def all20():
        return await asyncio.gather(*[one() for _ in range(20)])

    results = asyncio.run(asyncio.wait_for(all20(), 600))
    kinds = [r[0] for r in results]
    for kind, msg, code in results:
        if kind == "full":
            assert msg["code"] == "server_full" and "full" in msg["message"], msg
            assert code == 1013
        else:
            assert kind == "done" and msg["type"] == "done" and code == 1000, (kind, msg, code)
    assert kinds.count("done") >= 8, kinds
    assert kinds.count("full") >= 1, kinds
    # the slots come back: a new stream is accepted once the others are gone
    msgs, code, _ = asyncio.run(stream(rt_server, pcm[:CHUNK * 20], 0))
    assert msgs[-1][1]["type"] == "done"


def test_realtime_openai_intent(rt_server):
    pcm = read_pcm(SENTENCE)
    pcm24, _ = audioop.ratecv(pcm, 2, 1, 16000, 24000, None)
    silence = b"\x00\x00" * 24000  # 1 s: the server VAD sees the speaker stop

    async def run():
        events = []
        async with websockets.connect(ws_url(rt_server, "?intent=transcription"),
                                      max_size=None) as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "transcription_session.created", created
            await ws.send(json.dumps({"type": "transcription_session.update", "session": {
                "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}))
            upd = json.loads(await ws.recv())
            assert upd["type"] == "transcription_session.updated", upd
            assert upd["session"]["turn_detection"]["silence_duration_ms"] == 500
            audio = pcm24 + silence
            for i in range(0, len(audio), 4800):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(audio[i:i + 4800]).decode()}))
            while True:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 120))
                events.append(ev)
                if ev["type"] == "conversation.item.input_audio_transcription.completed":
                    break
            await ws.send(json.dumps({"type": "input_audio_buffer.bogus"}))
            ev = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert ev["type"] == "error" and ev["error"]["message"], ev
        return events

    events = asyncio.run(run())
    types = [e["type"] for e in events]
    assert types.index("input_audio_buffer.speech_started") < \
        types.index("input_audio_buffer.speech_stopped") < \
        types.index("input_audio_buffer.committed") < \
        types.index("conversation.item.input_audio_transcription.completed"), types
    done = events[-1]
    assert done["item_id"] == events[types.index("input_audio_buffer.committed")]["item_id"]
    assert isinstance(done["transcript"], str)


def test_realtime_openai_manual_commit(rt_server):
    pcm = read_pcm(SENTENCE)
    pcm24, _ = audioop.ratecv(pcm, 2, 1, 16000, 24000, None)

    async def run():
        async with websockets.connect(ws_url(rt_server, "?intent=transcription")) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "session.update",
                                      "session": {"turn_detection": None}}))
            assert json.loads(await ws.recv())["type"] == "session.updated"
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            empty = json.loads(await ws.recv())
            assert empty["type"] == "error", empty
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(pcm24).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            seen = []
            while not seen or seen[-1]["type"] != \
                    "conversation.item.input_audio_transcription.completed":
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            return seen

    seen = asyncio.run(run())
    types = [e["type"] for e in seen]
    assert "input_audio_buffer.committed" in types, types
    assert "input_audio_buffer.speech_started" not in types, types  # no server VAD


def test_realtime_idle_and_session_limits(make_server):
    """Idle streams and streams past the session limit are closed cleanly, with a message."""
    s = make_server(args=["--workers", "1", "--vad-model", VAD],
                    env={"SCRIBED_REALTIME_IDLE_S": "2", "SCRIBED_REALTIME_MAX_SESSION_S": "4"})
    pcm = read_pcm(SENTENCE)

    async def idle():
        async with websockets.connect(ws_url(s)) as ws:
            await ws.send(json.dumps({"language": "en"}))
            msgs = []
            t0 = time.monotonic()
            try:
                async for m in ws:
                    msgs.append(json.loads(m))
            except websockets.ConnectionClosed:
                pass
            return msgs, ws.close_code, time.monotonic() - t0

    msgs, code, took = asyncio.run(idle())
    assert [m["type"] for m in msgs] == ["ready", "error"], msgs
    assert msgs[1]["code"] == "idle_timeout" and code == 1000 and 1.5 < took < 10

    async def too_long():
        async with websockets.connect(ws_url(s), max_size=None) as ws:
            await ws.send(json.dumps({"language": "en"}))
            msgs = []

            async def reader():
                async for m in ws:
                    msgs.append(json.loads(m))

            task = asyncio.create_task(reader())
            try:
                for _ in range(100):  # keeps talking well past the 4 s limit
                    for i in range(0, len(pcm), CHUNK):
                        await ws.send(pcm[i:i + CHUNK])
                        await asyncio.sleep(0.1)
            except websockets.ConnectionClosed:
                pass
            await asyncio.wait_for(task, 60)
            return msgs, ws.close_code

    msgs, code = asyncio.run(too_long())
    types = [m["type"] for m in msgs]
    assert "error" in types and types[-1] == "done", types
    assert [m for m in msgs if m["type"] == "error"][0]["code"] == "session_too_long"
    assert code == 1000
    assert msgs[-1]["duration"] < 10


def test_realtime_backlog_stops_reading(make_server):
    """A client sending far faster than the server decodes is not buffered without bound:
    past the backlog limit the server stops reading, so the client's sends stall."""
    s = make_server(args=["--workers", "1", "--vad-model", VAD],
                    env={"SCRIBED_REALTIME_MAX_BACKLOG_S": "5"})
    pcm = read_pcm(PASSAGE)
    chunk = pcm[:32000 * 10]  # 10 s per message

    async def flood():
        async with websockets.connect(ws_url(s), max_size=None, write_limit=2 ** 16) as ws:
            await ws.send(json.dumps({"language": "en"}))
            assert json.loads(await ws.recv())["type"] == "ready"
            sent = 0
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < 4:
                    await asyncio.wait_for(ws.send(chunk), 4)
                    sent += len(chunk)
            except asyncio.TimeoutError:
                pass
            return sent / 32000

    sent_s = asyncio.run(flood())
    print(f"audio accepted in 4 s of flooding: {sent_s:.0f} s")
    # socket buffers take some megabytes, but not 4 s of unthrottled localhost sending
    assert sent_s < 300, f"{sent_s:.0f} s of audio went in without back-pressure"
    assert requests.get(s.url("/health"), timeout=5).status_code == 200


def test_realtime_needs_the_api_key_when_one_is_set(make_server):
    s = make_server(args=["--workers", "1"], env={"SCRIBED_API_KEY": "sk-test-realtime-0123456789"})

    async def connect(query, headers=None):
        try:
            async with websockets.connect(ws_url(s, query), extra_headers=headers or {}) as ws:
                await ws.send(json.dumps({"language": "en"}))
                return json.loads(await ws.recv())["type"]
        except websockets.InvalidStatusCode as e:
            return e.status_code

    assert asyncio.run(connect("")) == 401
    assert asyncio.run(connect("?api_key=wrong")) == 401
    assert asyncio.run(connect("?api_key=sk-test-realtime-0123456789")) == "ready"
    assert asyncio.run(connect("", {"Authorization": "Bearer sk-test-realtime-0123456789"})) == "ready"


def test_realtime_shutdown_closes_streams(make_server):
    """SIGTERM with a live stream open: the client is told and the server exits in time."""
    s = make_server(args=["--workers", "1", "--vad-model", VAD])
    pcm = read_pcm(SENTENCE)

    async def run():
        async with websockets.connect(ws_url(s), max_size=None) as ws:
            await ws.send(json.dumps({"language": "en"}))
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(pcm[:CHUNK * 10])
            t0 = time.monotonic()
            s.proc.send_signal(15)
            msgs = []
            try:
                async for m in ws:
                    msgs.append(json.loads(m))
            except websockets.ConnectionClosed:
                pass
            return msgs, ws.close_code, time.monotonic() - t0

    msgs, code, took = asyncio.run(run())
    errors = [m for m in msgs if m["type"] == "error"]
    assert errors and errors[-1]["code"] == "shutting_down", msgs
    assert code == 1001 and took < 10
    assert s.proc.wait(timeout=30) == 0
