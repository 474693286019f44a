"""Webhooks may not reach internal addresses through IPv6 forms that carry an
IPv4 address or tunnel to one: IPv4-compatible ::/96, translated
::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32. The
address is checked at submission for IP literals (400), and again when curl
connects (after DNS) for names, so none is reached."""
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
    # IP literals are judged at submission (400 naming the setting that allows
    # them); names are judged again after DNS when curl connects
    s = make_server(args=["--callback-backoff-ms", "50", "--callback-attempts", "1",
                          "--callback-timeout-ms", "2000"])
    for url in INTERNAL:
        r = submit_job(s, short_wav, {"callback_url": url})
        assert r.status_code == 400, (url, r.text)
        err = r.json()["error"]
        assert err["param"] == "callback_url" and "not a public address" in err["message"], err
        assert "CALLBACK_ALLOW_PRIVATE" in err["message"], err
