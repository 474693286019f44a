"""Multipart bodies sent with Transfer-Encoding: chunked, as the openai SDK
sends a streamed file (fs.createReadStream): whatever the chunk sizes, the
form fields arrive whole and the answer is the one the body gets in one piece.
Plain sockets, so every chunk boundary is exactly the one the test chose:
every split point of a small body, 1-byte chunks, and the field limits."""
import json
import os
import socket
import struct

import pytest

from conftest import Server, micro_model, shared_dir

BOUNDARY = "b0undary"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Hundreds of requests from one address: no rate limit."""
    if not os.path.exists(micro_model()):
        pytest.skip("no reference model (set SCRIBED_SHARED)")
    s = Server(tmp_path_factory.mktemp("chunked"), ["--workers", "2", "--rate-limit-ip-rpm", "0"])
    s.start()
    yield s
    s.stop()
    s.check_log_clean()


def tiny_wav(samples=16):
    """A valid WAV of a few silent samples: the smallest file the upload check accepts."""
    data = b"\x00\x00" * samples
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" +
            struct.pack("<I", len(data)) + data)


def multipart(fields, wav):
    """The body the openai SDK sends: the file part first, then the fields in order."""
    out = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
           'Content-Type: audio/wav\r\n\r\n'.encode() + wav + b"\r\n"]
    for name, value in fields:
        out.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f'{value}\r\n'.encode())
    out.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


def read_response(sock):
    """(status, body) of one response, read to its end (Content-Length, the last
    chunk, or the server's close); the caller then closes, ending a lingering close."""
    data = b""
    while b"\r\n\r\n" not in data:
        c = sock.recv(65536)
        if not c:
            raise AssertionError(f"connection closed before the headers: {data!r}")
        data += c
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}

    def more():
        c = sock.recv(65536)
        if not c:
            raise EOFError
        return c

    try:
        if "content-length" in headers:
            while len(body) < int(headers["content-length"]):
                body += more()
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            plain = b""
            while True:
                while b"\r\n" not in body:
                    body += more()
                size_line, _, body = body.partition(b"\r\n")
                n = int(size_line.split(b";")[0], 16)
                if n == 0:
                    break
                while len(body) < n + 2:
                    body += more()
                plain, body = plain + body[:n], body[n + 2:]
            body = plain
        else:
            while True:
                body += more()
    except EOFError:
        pass
    return int(lines[0].split()[1]), body


def post(server, path, body, cuts=None, chunked=True):
    """POSTs body over a plain socket: chunked with one chunk per piece between the
    cut offsets (every piece sent on its own), or with Content-Length in one piece."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as s:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n")
        if not chunked:
            s.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        else:
            s.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
            edges = [0] + sorted(cuts or []) + [len(body)]
            for a, b in zip(edges, edges[1:]):
                if b > a:
                    s.sendall(b"%x\r\n" % (b - a) + body[a:b] + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        return read_response(s)


def every_split(body):
    """Two chunks cut at every offset, then one chunk per byte."""
    yield from ([k] for k in range(1, len(body)))
    yield list(range(1, len(body)))


def answers(server, path, body):
    """The distinct (status, body) answers over every splitting, each with its first cuts."""
    seen = {}
    for cuts in every_split(body):
        seen.setdefault(post(server, path, body, cuts), cuts)
    return seen


@pytest.mark.parametrize("field,value", [("temperature", "7"),
                                         ("response_format", "srtx"),
                                         ("language", "xx"),
                                         ("timestamp_granularities[]", "words")])
def test_refusals_are_identical_at_every_split(server, field, value):
    """An invalid value is refused the same way (400, same field, same message naming
    the value) wherever the chunks cut the body: the value arrives whole."""
    fields = [("model", "whisper-1"), ("response_format", "srt"), ("language", "en"),
              ("temperature", "0.2"), ("timestamp_granularities[]", "segment")]
    fields = [(k, v) for k, v in fields if k != field] + [(field, value)]
    body = multipart(fields, tiny_wav())
    status, whole = post(server, "/v1/audio/transcriptions", body, chunked=False)
    assert status == 400, whole
    err = json.loads(whole)["error"]
    assert err["param"] == field and f"'{value}'" in err["message"], err
    seen = answers(server, "/v1/audio/transcriptions", body)
    assert list(seen) == [(400, whole)], {k: v[:3] for k, v in seen.items()}


def test_job_fields_arrive_whole_at_every_split(server):
    """/v1/jobs reads callback_url as a field of its own (not through the parameter
    table): an ftp URL is refused at every split, after every other field passed."""
    fields = [("response_format", "srt"), ("language", "en"), ("temperature", "0.5"),
              ("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment"),
              ("callback_url", "ftp://example.com/hook")]
    body = multipart(fields, tiny_wav())
    status, whole = post(server, "/v1/jobs", body, chunked=False)
    assert status == 400 and json.loads(whole)["error"]["param"] == "callback_url", whole
    seen = answers(server, "/v1/jobs", body)
    assert list(seen) == [(400, whole)], {k: v[:3] for k, v in seen.items()}


def test_job_request_echo_is_identical_in_one_byte_chunks(server):
    """The job's parsed request (echoed in the 202) is the same whether the body came
    in one piece, in 1-byte chunks or cut inside each value."""
    fields = [("response_format", "srt"), ("language", "en"), ("temperature", "0.5"),
              ("timestamp_granularities[]", "word"), ("prompt", "Hello there."),
              ("callback_url", "https://example.com/hook")]
    body = multipart(fields, tiny_wav())
    mids = [body.index(v.encode()) + len(v) // 2 for _, v in fields]
    got = []
    for chunked, cuts in ((False, None), (True, list(range(1, len(body)))), (True, mids)):
        status, resp = post(server, "/v1/jobs", body, cuts, chunked=chunked)
        assert status == 202, resp
        job = json.loads(resp)
        got.append((job["request"], job["callback_url"]))
    assert got[0] == ({"language": "en", "prompt": "Hello there.", "response_format": "srt",
                       "temperature": 0.5, "word_timestamps": True},
                      "https://example.com/hook"), got[0]
    assert got[1] == got[0] and got[2] == got[0], got


@pytest.mark.parametrize("fields,check", [
    ([("response_format", "srt")], lambda b: b"-->" in b and not b.startswith(b"{")),
    ([("response_format", "vtt")], lambda b: b.startswith(b"WEBVTT")),
    ([("response_format", "text")], lambda b: not b.startswith(b"{")),
    ([("response_format", "verbose_json"), ("timestamp_granularities[]", "word"),
      ("timestamp_granularities[]", "segment")],
     lambda b: "words" in json.loads(b) and "segments" in json.loads(b)),
    ([("stream", "true")], lambda b: b"transcript.text.done" in b),
])
def test_fields_are_honoured_in_small_chunks(server, fields, check):
    """Real transcriptions: the same answer in one piece, in 1-byte chunks over the
    fields, and cut inside each value (srt really yields SRT, stream really streams)."""
    with open(f"{shared_dir()}/reference/a_short.wav", "rb") as f:
        wav = f.read()
    body = multipart([("model", "whisper-1"), ("language", "en"), ("beam_size", "1"),
                      ("no_fallback", "true")] + fields, wav)
    status, whole = post(server, "/v1/audio/transcriptions", body, chunked=False)
    assert status == 200 and check(whole), whole[:300]
    tail = body.index(b"\r\n--" + BOUNDARY.encode())  # the fields: 1-byte chunks from here
    mids = [body.index(v.encode(), tail) + len(v) // 2 for _, v in fields]
    for cuts in (list(range(tail, len(body))), mids):
        status, resp = post(server, "/v1/audio/transcriptions", body, cuts)
        assert (status, resp) == (200, whole), (cuts[:5], resp[:300])


def test_field_limits_hold_in_one_byte_chunks(server):
    """Limits count fields and bytes, not pieces: 60 fields in 1-byte chunks are
    accepted as in one piece; 65 fields, or a value over 64 KiB, are refused in both."""
    def verdict(fields):
        body = multipart([("model", "whisper-1"), ("response_format", "text")] + fields,
                         tiny_wav())
        whole = post(server, "/v1/audio/transcriptions", body, chunked=False)
        tail = body.index(b"\r\n--" + BOUNDARY.encode())
        cut = post(server, "/v1/audio/transcriptions", body, list(range(tail, len(body))))
        assert cut == whole, (cut, whole)
        return whole

    status, _ = verdict([(f"x_{i}", "v") for i in range(58)])
    assert status == 200
    status, resp = verdict([(f"x_{i}", "v") for i in range(63)])
    assert status == 400 and b"too many form fields" in resp, resp
    status, resp = verdict([("prompt", "a" * (64 * 1024 + 1))])
    assert status == 400 and b"longer than 64 KiB" in resp, resp
