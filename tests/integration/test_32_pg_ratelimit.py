"""Per-key rate limits across API nodes on PostgreSQL (issue 17 item 5): a
key's bucket is one row in the store, so two API nodes together accept what
one would, not twice as much. Skipped without PostgreSQL."""
import uuid

import pytest
import requests

from conftest import pg_available, pg_cluster
from test_30_multinode import create_key_in
from test_40_auth import bearer

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL server not installed")


def test_key_limit_is_the_clusters(make_server):
    url = pg_cluster().database("rl_" + uuid.uuid4().hex[:12])
    key, other = create_key_in("--database-url", url), create_key_in("--database-url", url)
    # one token a minute after a burst of 5: the test never sees a refill it could miscount
    args = ["--workers", "0", "--database-url", url, "--rate-limit-key-rpm", "1",
            "--rate-limit-burst", "5"]
    apis = [make_server(args=args) for _ in range(2)]
    rs = [requests.get(apis[i % 2].url("/v1/models"), headers=bearer(key), timeout=10)
          for i in range(20)]
    codes = [r.status_code for r in rs]
    accepted = codes.count(200)
    # 5 from the burst (6 should a minute pass mid-test); per-node buckets would give 10
    assert 5 <= accepted <= 6, codes
    assert codes[:5] == [200] * 5, codes
    assert codes.count(429) == 20 - accepted, codes
    limited = [r for r in rs if r.status_code == 429]
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in limited)
    assert {r.json()["error"]["code"] for r in limited} == {"rate_limit_exceeded"}
    # both nodes refused, each from the shared bucket
    assert all(any(e.get("status") == 429 for e in a.events("http.request")) for a in apis)
    # another key has its own bucket
    assert requests.get(apis[1].url("/v1/models"), headers=bearer(other),
                        timeout=10).status_code == 200
