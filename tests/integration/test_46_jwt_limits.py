"""JWTs cannot outlive the server's cap (--jwt-max-lifetime-s, 24 h by
default: `exp: 1e300` used to be a token that never expires), and carry the
configured audience and issuer when those are set."""
import time

from test_40_auth import bearer, get, make_jwt

SECRET = "jwt-limits-secret-0123456789"


def status(s, token):
    return get(s, "/v1/models", bearer(token)).status_code


def test_lifetime_capped_by_default(make_server):
    s = make_server(env={"SCRIBED_JWT_SECRET": SECRET})
    now = int(time.time())
    assert status(s, make_jwt(SECRET, {"sub": "a", "exp": now + 3600})) == 200
    assert status(s, make_jwt(SECRET, {"sub": "a", "exp": now + 3600, "iat": now})) == 200
    for claims in ({"sub": "a", "exp": 1e300},
                   {"sub": "a", "exp": now + 2 * 86400},
                   {"sub": "a", "exp": now + 600, "iat": now - 2 * 86400},
                   {"sub": "a", "exp": now + 600, "iat": now + 3600},
                   {"sub": "a", "exp": now + 600, "iat": "yesterday"}):
        r = get(s, "/v1/models", bearer(make_jwt(SECRET, claims)))
        assert r.status_code == 401, claims
        assert r.json()["error"]["code"] == "invalid_api_key"


def test_lifetime_cap_configurable(make_server):
    s = make_server(args=["--jwt-max-lifetime-s", "600"], env={"SCRIBED_JWT_SECRET": SECRET})
    now = int(time.time())
    assert status(s, make_jwt(SECRET, {"sub": "a", "exp": now + 300})) == 200
    assert status(s, make_jwt(SECRET, {"sub": "a", "exp": now + 3600})) == 401


def test_audience_and_issuer(make_server):
    s = make_server(env={"SCRIBED_JWT_SECRET": SECRET, "SCRIBED_JWT_AUDIENCE": "scribed-api",
                         "SCRIBED_JWT_ISSUER": "https://idp.example.com/"})
    now = int(time.time())
    base = {"sub": "a", "exp": now + 300, "iss": "https://idp.example.com/"}
    assert status(s, make_jwt(SECRET, {**base, "aud": "scribed-api"})) == 200
    assert status(s, make_jwt(SECRET, {**base, "aud": ["other", "scribed-api"]})) == 200
    assert status(s, make_jwt(SECRET, {**base, "aud": "other"})) == 401
    assert status(s, make_jwt(SECRET, base)) == 401
    assert status(s, make_jwt(SECRET, {**base, "aud": "scribed-api",
                                       "iss": "https://evil.example.com/"})) == 401
    no_iss = {k: v for k, v in base.items() if k != "iss"}
    assert status(s, make_jwt(SECRET, {**no_iss, "aud": "scribed-api"})) == 401
