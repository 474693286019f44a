"""Live streams are shared fairly: one API key holds at most
--realtime-streams-per-key of them (the next gets 'too_many_streams' and
close code 1013, other keys are not affected, a closed stream frees its
slot), and only audio keeps a stream from its idle timeout, so a client
sending text messages alone cannot hold a slot."""
import asyncio
import json
import os
import time

import pytest
import websockets

from conftest import micro_model
from test_40_auth import create_key


@pytest.fixture
def rt(make_server, tmp_path):
    if not os.path.exists(micro_model()):
        pytest.skip("no reference model")
    d = tmp_path / "rt"
    a, b = create_key(d, "a"), create_key(d, "b")
    s = make_server(args=["--workers", "1", "--realtime-streams-per-key", "2",
                          "--realtime-idle-s", "2"], data_dir=d)
    s.a, s.b = a, b
    return s


def url(s, key, query=""):
    return f"ws://127.0.0.1:{s.port}/v1/realtime?api_key={key}{query}"


async def open_ready(s, key):
    """A configured stream (the caller closes it), or the refusal: ('error', msg, close code)."""
    ws = await websockets.connect(url(s, key))
    try:  # a refused stream may be told, and closed, before the config is out
        await ws.send(json.dumps({"language": "en", "sample_rate": 16000,
                                  "format": "pcm_s16le"}))
    except websockets.ConnectionClosed:
        pass
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
    except websockets.ConnectionClosed:
        return ("closed", None, ws.close_code)
    if first["type"] == "ready":
        return ws
    try:
        await asyncio.wait_for(ws.wait_closed(), 10)
    except asyncio.TimeoutError:
        pass
    return ("error", first, ws.close_code)


def test_streams_per_key(rt):
    async def run():
        a1 = await open_ready(rt, rt.a)
        a2 = await open_ready(rt, rt.a)
        assert not isinstance(a1, tuple) and not isinstance(a2, tuple), (a1, a2)
        kind, msg, code = await open_ready(rt, rt.a)
        assert kind == "error" and msg["code"] == "too_many_streams", msg
        assert "2 live streams" in msg["message"] and code == 1013
        b1 = await open_ready(rt, rt.b)  # another key is not affected
        assert not isinstance(b1, tuple), b1
        await a1.close()
        # the slot comes back once the server has dropped the stream
        deadline = time.monotonic() + 20
        while True:
            again = await open_ready(rt, rt.a)
            if not isinstance(again, tuple):
                break
            assert again[1]["code"] == "too_many_streams", again
            assert time.monotonic() < deadline, "the closed stream's slot never came back"
            await asyncio.sleep(0.2)
        for ws in (a2, b1, again):
            await ws.close()

    asyncio.run(run())


@pytest.mark.parametrize("dialect", ["scribed", "openai"])
def test_only_audio_resets_the_idle_timer(rt, dialect):
    async def run():
        query = "&intent=transcription" if dialect == "openai" else ""
        async with websockets.connect(url(rt, rt.a, query)) as ws:
            if dialect == "scribed":
                await ws.send(json.dumps({"language": "en"}))
                chatter = json.dumps({"type": "ping"})
            else:
                chatter = json.dumps({"type": "input_audio_buffer.clear"})
            msgs = []

            async def reader():
                try:
                    async for m in ws:
                        msgs.append(json.loads(m))
                except websockets.ConnectionClosed:
                    pass

            task = asyncio.create_task(reader())
            # text messages alone, for 7 times the 2 s idle limit
            chatting = True
            for _ in range(56):
                if task.done():
                    break
                try:
                    await ws.send(chatter)
                except websockets.ConnectionClosed:
                    break
                await asyncio.sleep(0.25)
            else:
                chatting = False
            await asyncio.wait_for(task, 30)
            return msgs, ws.close_code, chatting

    msgs, code, closed_while_chatting = asyncio.run(run())
    assert closed_while_chatting, "text messages kept the stream open"
    # scribed's errors carry code at the top, OpenAI's inside "error"
    errors = [m.get("error", m) for m in msgs if m["type"] == "error"]
    assert errors and errors[-1]["code"] == "idle_timeout", msgs[-3:]
    assert code == 1000


def test_audio_keeps_the_stream_open(rt):
    async def run():
        async with websockets.connect(url(rt, rt.a)) as ws:
            await ws.send(json.dumps({"language": "en"}))
            assert json.loads(await ws.recv())["type"] == "ready"
            silence = bytes(3200)  # 100 ms
            for _ in range(16):  # 4 s of audio at 4x real time: twice the idle limit
                await ws.send(silence)
                await asyncio.sleep(0.25)
            await ws.send(json.dumps({"type": "end"}))
            msgs = [json.loads(m) async for m in ws]
            return msgs, ws.close_code

    msgs, code = asyncio.run(run())
    assert msgs[-1]["type"] == "done" and code == 1000, msgs
    assert not [m for m in msgs if m["type"] == "error"], msgs
