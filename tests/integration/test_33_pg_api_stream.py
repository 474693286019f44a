"""stream=true on an API-only node (issue 17): the job goes through the
shared queue and the node sends OpenAI's events (one delta per segment,
then done) once a worker finished it, the same events a node with workers
sends; a failed job ends the stream with an error event. Skipped without
PostgreSQL."""
import json
import uuid

import pytest
import requests

from conftest import pg_available, pg_cluster

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL server not installed")


def events_of(r):
    return [json.loads(line[len("data: "):]) for line in r.text.splitlines()
            if line.startswith("data: ")]


def post(node, path, name, fields, content_type="audio/wav"):
    data = {"model": "whisper-1", "stream": "true", **fields}
    with open(path, "rb") as f:
        return requests.post(node.url("/v1/audio/transcriptions"), data=data,
                             files={"file": (name, f, content_type)}, timeout=300)


def test_api_only_node_streams_through_the_queue(make_server, short_wav, tmp_path):
    url = pg_cluster().database("st_" + uuid.uuid4().hex[:12])
    api = make_server(args=["--workers", "0", "--database-url", url, "--lease-s", "3"])
    full = make_server(args=["--workers", "1", "--database-url", url, "--lease-s", "3"])
    r = post(api, short_wav, "a.wav", {})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = events_of(r)
    assert events[-1]["type"] == "transcript.text.done" and events[-1]["text"].strip(), events
    assert len(events) >= 2 and all(e["type"] == "transcript.text.delta" for e in events[:-1])
    assert "".join(e["delta"] for e in events[:-1]).strip() == events[-1]["text"].strip()
    # the same text as a node that runs the job itself streams
    local = events_of(post(full, short_wav, "a.wav", {}))
    assert local[-1]["text"].strip() == events[-1]["text"].strip()
    # audio the decoder refuses: the stream ends with an error event, never hangs
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64)
    r = post(api, str(bad), "bad.wav", {})
    if r.status_code == 200:
        ev = events_of(r)
        assert ev[-1]["type"] == "error" and ev[-1]["error"]["code"], ev
    else:  # refused before queueing (the upload's type check)
        assert r.status_code in (400, 415, 422), r.text
