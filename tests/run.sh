#!/usr/bin/env bash
# Runs the whole suite: every unit-test binary, the conformance tests against
# ../shared/reference (twice: on the CPU backend, then on the checking
# backend), then the integration tests (pytest against the real build/scribed).
# Prints one closing line: `N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export SCRIBED_SHARED=${SCRIBED_SHARED:-$(cd .. && pwd)/shared}
export SCRIBED_BIN=${SCRIBED_BIN:-$PWD/$BUILD/scribed}
export SCRIBED_BUILD=$PWD/$BUILD
total_pass=0
total_fail=0

count_line() { # "N passed, N failed" -> adds to totals
    local line=$1
    local p f
    p=$(sed -n 's/^\([0-9]\+\) passed.*/\1/p' <<<"$line")
    f=$(sed -n 's/^[0-9]\+ passed, \([0-9]\+\) failed.*/\1/p' <<<"$line")
    total_pass=$((total_pass + ${p:-0}))
    total_fail=$((total_fail + ${f:-1}))
}

run_bin() { # LABEL CMD...: runs a check.h test binary and adds its counts
    local label=$1
    shift
    echo "== $label"
    out=$("$@" 2>&1)
    rc=$?
    echo "$out"
    last=$(tail -n 1 <<<"$out")
    if grep -qE '^[0-9]+ passed, [0-9]+ failed$' <<<"$last"; then
        count_line "$last"
        [ $rc -ne 0 ] && [ "$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed$/\1/p' <<<"$last")" = 0 ] && total_fail=$((total_fail + 1))
    else
        echo "   (runner died: rc=$rc)"
        total_fail=$((total_fail + 1))
    fi
}

for bin in "$BUILD"/tests/unit_* "$BUILD"/tests/conformance; do
    [ -x "$bin" ] || continue
    run_bin "$(basename "$bin")" "$bin"
done
# The conformance suite again on the checking backend (src/backend/check/): the
# engine's memory is unreachable outside the backend's ops, so any host access
# that a GPU backend could not serve aborts the test.
if [ -x "$BUILD/tests/conformance" ]; then
    run_bin "conformance (SCRIBED_BACKEND_CHECK=1)" env SCRIBED_BACKEND_CHECK=1 "$BUILD/tests/conformance"
fi

# The backend unit tests and the engine conformance tests cross-built for
# aarch64 (NEON kernels) and run under qemu-user (make check-arm64, a few
# minutes), when the cross compiler, qemu and the arm64 libraries are here.
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null &&
    [ -e /usr/lib/aarch64-linux-gnu/libjansson.a ] && [ -e /usr/lib/aarch64-linux-gnu/libz.a ]; then
    echo "== check-arm64 (qemu-aarch64)"
    out=$(make --no-print-directory BUILD="$BUILD" check-arm64 2>&1)
    rc=$?
    grep -vE '^(aarch64-linux-gnu-gcc|ar rcs|make)' <<<"$out"
    last=$(tail -n 1 <<<"$out")
    if grep -qE '^[0-9]+ passed, [0-9]+ failed$' <<<"$last"; then
        count_line "$last"
        [ $rc -ne 0 ] && [ "$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed$/\1/p' <<<"$last")" = 0 ] && total_fail=$((total_fail + 1))
    else
        echo "   (check-arm64 did not finish: rc=$rc)"
        total_fail=$((total_fail + 1))
    fi
else
    echo "== check-arm64: SKIPPED (needs aarch64-linux-gnu-gcc, qemu-aarch64 and the arm64 libjansson-dev, zlib1g-dev: tools/install-deps.sh --test)"
fi

# the store's unit tests once more on a private PostgreSQL (a few seconds), when installed
if [ -x "$BUILD/tests/unit_store" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "== unit_store on PostgreSQL"
    pgroot=$(mktemp -d /tmp/scribed-pgunit-XXXXXX)
    chmod 755 "$pgroot"
    if tests/pg/pg.sh start "$pgroot/pg" >/dev/null; then
        out=$(SCRIBED_TEST_PG=$(tests/pg/pg.sh conninfo "$pgroot/pg") "$BUILD/tests/unit_store" 2>&1)
        echo "$out"
        count_line "$(tail -n 1 <<<"$out")"
        tests/pg/pg.sh stop "$pgroot/pg"
    else
        echo "   (could not start PostgreSQL)"
        total_fail=$((total_fail + 1))
    fi
    rm -rf "$pgroot"
fi

PY=/usr/bin/python3
if ls tests/integration/test_*.py >/dev/null 2>&1; then
    echo "== integration (pytest)"
    out=$($PY -m pytest -q -p no:cacheprovider tests/integration 2>&1)
    rc=$?
    echo "$out"
    summary=$(grep -E '(passed|failed|error)' <<<"$out" | tail -n 1)
    p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+')
    f=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+')
    e=$(grep -oE '[0-9]+ error' <<<"$summary" | grep -oE '[0-9]+')
    total_pass=$((total_pass + ${p:-0}))
    total_fail=$((total_fail + ${f:-0} + ${e:-0}))
    if [ $rc -ne 0 ] && [ $rc -ne 5 ] && [ -z "$f$e" ]; then total_fail=$((total_fail + 1)); fi
fi

# A short libFuzzer run of every parser of untrusted bytes (tests/fuzz/README.md):
# each target replays its committed seeds and earlier findings, then mutates
# for SCRIBED_FUZZ_SECONDS (0 skips). Needs clang-14 (.ci/packages-test.txt).
FUZZ_S=${SCRIBED_FUZZ_SECONDS:-10}
if [ "$FUZZ_S" != 0 ] && command -v clang-14 >/dev/null; then
    echo "== fuzz (${FUZZ_S}s per target)"
    out=$(make --no-print-directory BUILD="$BUILD" fuzz fuzz-audio FUZZ_SECONDS="$FUZZ_S" 2>&1)
    rc=$?
    grep -E '^fuzz|FINDING|contract broken|ERROR:|error:' <<<"$out"
    p=$(grep -cE '^fuzz [a-z]+: .*no findings' <<<"$out")
    f=$(grep -cE '^fuzz [a-z]+: FINDING|^fuzz-audio: findings' <<<"$out")
    grep -q '^fuzz-audio: no findings' <<<"$out" && p=$((p + 1))
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then
        tail -n 30 <<<"$out"
        total_fail=$((total_fail + 1))
    fi
elif [ "$FUZZ_S" != 0 ]; then
    echo "== fuzz: skipped (no clang-14)"
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
