#!/usr/bin/env bash
# `make test-pg`: the store's unit tests and the integration suite with every
# server on PostgreSQL (a private cluster, started and stopped here).
# Prints one closing line `N passed, N failed` like tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export SCRIBED_SHARED=${SCRIBED_SHARED:-$(cd .. && pwd)/shared}
export SCRIBED_BIN=${SCRIBED_BIN:-$PWD/$BUILD/scribed}
export SCRIBED_BUILD=$PWD/$BUILD
root=$(mktemp -d /tmp/scribed-pgrun-XXXXXX)
chmod 755 "$root"
trap 'tests/pg/pg.sh stop "$root/pg"; rm -rf "$root"' EXIT
tests/pg/pg.sh start "$root/pg" >/dev/null || exit 1
fail=0
pass=0

echo "== unit_store on PostgreSQL"
out=$(SCRIBED_TEST_PG=$(tests/pg/pg.sh conninfo "$root/pg") "$BUILD/tests/unit_store" 2>&1)
echo "$out"
last=$(tail -n 1 <<<"$out")
pass=$((pass + $(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$last")))
fail=$((fail + $(sed -n 's/^[0-9]* passed, \([0-9]*\) failed$/\1/p' <<<"$last")))

echo "== integration (pytest) on PostgreSQL"
out=$(SCRIBED_TEST_DATABASE=pg /usr/bin/python3 -m pytest -q -p no:cacheprovider \
      ${PYTEST_ARGS:-tests/integration} 2>&1)
echo "$out"
summary=$(grep -E '(passed|failed|error)' <<<"$out" | tail -n 1)
p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+')
f=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+')
e=$(grep -oE '[0-9]+ error' <<<"$summary" | grep -oE '[0-9]+')
pass=$((pass + ${p:-0}))
fail=$((fail + ${f:-0} + ${e:-0}))
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
