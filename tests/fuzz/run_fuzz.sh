#!/bin/sh
# run_fuzz.sh BUILD_DIR SECONDS TARGET... - runs the libFuzzer targets built by
# `make fuzz` (tests/fuzz/fuzz_TARGET.c), each for SECONDS, over the committed
# seeds in tests/fuzz/seeds/TARGET/ (earlier findings included: they are
# replayed first, as regression inputs) plus a working corpus in
# BUILD_DIR/corpus-TARGET that grows between runs. Exits nonzero when any
# target reports a finding; the input is left in BUILD_DIR/artifacts/ and the
# log's tail printed. Prints one line per target: executions and findings.
set -u
B=$1
S=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$B/artifacts"
B=$(cd "$B" && pwd)

# The model loader's seeds are real-shaped files cut short (made once).
model_seeds() {
    d=$B/corpus-model
    [ -f "$d/.done" ] && return 0
    mkdir -p "$d"
    vocab=$(ls "${SCRIBED_SHARED:-$HERE/../../../shared}"/reference/*vocab*.bin 2>/dev/null | head -n 1)
    mk=$B/../mkmodel
    if [ -n "$vocab" ] && [ -x "$mk" ]; then
        "$mk" -v "$vocab" -o "$d/full.bin" -p micro >/dev/null 2>&1 &&
            for n in 48 400 4096 65536 600000; do head -c $n "$d/full.bin" > "$d/head-$n"; done
        rm -f "$d/full.bin"
    fi
    touch "$d/.done"
}

rc=0
for t in "$@"; do
    [ "$t" = model ] && model_seeds
    corpus=$B/corpus-$t
    mkdir -p "$corpus"
    seeds=$HERE/seeds/$t
    [ -d "$seeds" ] || seeds=
    log=$B/artifacts/$t.log
    max_len=65536
    [ "$t" = model ] && max_len=1048576
    # shellcheck disable=SC2086
    (cd "$B/artifacts" && "$B/fuzz_$t" -max_total_time="$S" -max_len=$max_len -timeout=20 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$B/artifacts/$t-" "$corpus" $seeds) > "$log" 2>&1
    code=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $code -ne 0 ]; then
        echo "fuzz $t: FINDING after ${runs:-?} executions (exit $code); input in $B/artifacts/"
        tail -n 40 "$log"
        rc=1
    else
        echo "fuzz $t: ${runs:-?} executions in ${S}s, no findings"
    fi
done
exit $rc
