"""Webhooks may not reach internal addresses through IPv6 forms that carry an
IPv4 address or tunnel to one: IPv4-compatible ::/96, translated
::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32. The
address is checked when curl connects (after DNS), and each is refused as
'not public' without a byte sent."""
import time

import requests

from conftest import submit_job

INTERNAL = [
    "http://[::127.0.0.1]:9/hook",
    "http://[::ffff:0:127.0.0.1]:9/hook",
    "http://[64:ff9b::127.0.0.1]:9/hook",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[2002:7f00:1::1]:9/hook",
    "http://[2002:a9fe:a9fe::]/latest/meta-data/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:9/hook",
]


def test_ipv6_forms_of_internal_addresses_are_refused(make_server, short_wav):
    s = make_server(args=["--callback-backoff-ms", "50", "--callback-attempts", "1",
                          "--callback-timeout-ms", "2000"])
    jobs = {}
    for url in INTERNAL:
        r = submit_job(s, short_wav, {"callback_url": url})
        assert r.status_code == 202, (url, r.text)
        jobs[r.json()["id"]] = url
    deadline = time.time() + 120
    pending = set(jobs)
    while pending and time.time() < deadline:
        for jid in list(pending):
            if requests.get(s.url(f"/v1/jobs/{jid}"), timeout=5).json()["callback_status"] \
                    == "failed":
                pending.discard(jid)
        time.sleep(0.1)
    assert not pending, [jobs[j] for j in pending]
    time.sleep(0.3)
    attempts = {e["job"]: e for e in s.events("callback.attempt")}
    for jid, url in jobs.items():
        e = attempts[jid]
        assert not e["delivered"] and "not public" in e.get("error", ""), (url, e)
