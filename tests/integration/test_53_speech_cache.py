"""The speech cache (DATA/speech-cache): the same request twice is a hit with
identical bytes and the same ETag, If-None-Match answers 304, concurrent
identical requests synthesise once, expired entries and entries over the
size cap disappear, and /metrics counts hits, misses, bytes and evictions."""
import os
import re
import threading
import time

import requests


def speech(s, body, headers=None):
    return requests.post(s.url("/v1/audio/speech"), json=body, headers=headers or {}, timeout=120)


def metric(s, name):
    text = requests.get(s.url("/metrics"), timeout=10).text
    m = re.search(r"^" + re.escape(name) + r" ([0-9.e+]+)$", text, re.M)
    assert m, (name, text[-2000:])
    return float(m.group(1))


def cache_dir(s):
    return os.path.join(s.data_dir, "speech-cache")


def entries(s):
    return [f for f in os.listdir(cache_dir(s)) if not f.startswith(".")]


def wait_for(cond, what):
    """Polls a condition: the entry lands when the reply's last byte is out, a moment later."""
    deadline = time.monotonic() + 30
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_same_request_twice_is_a_hit_with_identical_bytes(make_server):
    s = make_server()
    body = {"model": "tts-1", "voice": "alloy", "input": "Cache me if you can.",
            "response_format": "mp3"}
    a = speech(s, body)
    b = speech(s, body)
    assert a.status_code == b.status_code == 200
    assert a.headers["X-Cache"] == "miss" and b.headers["X-Cache"] == "hit"
    assert a.content == b.content and len(a.content) > 1000
    assert a.headers["ETag"] == b.headers["ETag"]
    assert a.headers["Cache-Control"] == "private, max-age=3600"
    assert metric(s, 'scribed_speech_cache_requests_total{result="hit"}') == 1
    assert metric(s, 'scribed_speech_cache_requests_total{result="miss"}') == 1
    assert metric(s, "scribed_speech_cache_bytes") == len(a.content)
    assert metric(s, "scribed_speech_cache_files") == 1
    r = speech(s, body, {"If-None-Match": a.headers["ETag"]})
    assert r.status_code == 304 and r.content == b""
    # another speed, format or voice is another entry
    assert speech(s, dict(body, speed=1.5)).headers["X-Cache"] == "miss"
    assert speech(s, dict(body, response_format="wav")).headers["X-Cache"] == "miss"


def test_concurrent_identical_requests_synthesise_once(make_server):
    s = make_server(args=["--speech-slots", "2"])
    body = {"voice": "flite-kal16", "response_format": "pcm",
            "input": " ".join(["Many callers ask for the very same words at once."] * 30)}
    results = [None] * 4

    def call(i):
        results[i] = speech(s, body)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results)
    assert len({r.content for r in results}) == 1
    assert metric(s, 'scribed_speech_cache_requests_total{result="miss"}') == 1
    assert metric(s, 'scribed_speech_cache_requests_total{result="hit"}') == 3
    assert metric(s, 'scribed_speech_requests_total{outcome="ok"}') == 1  # synthesised once


def test_expired_entries_disappear(make_server):
    s = make_server()
    body = {"voice": "alloy", "input": "Old news.", "response_format": "wav"}
    first = speech(s, body)
    wait_for(lambda: len(entries(s)) == 1, "the entry is written")
    [name] = entries(s)
    path = os.path.join(cache_dir(s), name)
    os.utime(path, (1, 1))  # written long before the hour's time-to-live
    again = speech(s, body)  # an expired entry is not served: made again
    assert again.headers["X-Cache"] == "miss" and again.content == first.content
    assert metric(s, "scribed_speech_cache_evictions_total") == 1
    os.utime(path, (1, 1))
    leftover = os.path.join(cache_dir(s), ".tmp-" + "0" * 64)
    open(leftover, "wb").write(b"half an answer")  # a producer's file when the power went
    s.stop()  # start-up sweeps what expired while the service was down, and leftovers
    s.start()
    assert os.listdir(cache_dir(s)) == []


def test_entries_over_the_size_cap_disappear(make_server):
    s = make_server(args=["--speech-cache-mb", "1"])
    small = {"voice": "flite-kal16", "input": "Short and small.", "response_format": "mp3"}
    big = {"voice": "flite-kal16", "response_format": "pcm",
           "input": " ".join(["This answer is larger than the whole cache may hold."] * 12)}
    assert speech(s, small).status_code == 200
    wait_for(lambda: len(entries(s)) == 1, "the small entry is written")
    r = speech(s, big)
    assert r.status_code == 200 and len(r.content) > 1 << 20
    # the oldest go first until the cache is under its cap: both, as the big one alone is over
    wait_for(lambda: entries(s) == [], "both evicted")
    assert metric(s, "scribed_speech_cache_evictions_total") == 2
    assert metric(s, "scribed_speech_cache_bytes") == 0
    # one that fits stays
    assert speech(s, small).headers["X-Cache"] == "miss"
    wait_for(lambda: len(entries(s)) == 1, "the small entry is written again")


def test_cache_off(make_server):
    s = make_server(args=["--speech-cache-mb", "0"])
    body = {"voice": "alloy", "input": "No cache here.", "response_format": "wav"}
    a, b = speech(s, body), speech(s, body)
    assert a.content == b.content and "ETag" not in b.headers
    assert not os.path.exists(cache_dir(s))
