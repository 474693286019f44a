#!/usr/bin/env bash
# gemm_vs_openblas.sh - builds bench/gemm_vs_openblas.c against BUILD's
# libraries (default build/; run `make` first) and Debian's OpenBLAS
# (libopenblas-dev), then runs it for each thread count. key=value output.
# usage: bench/gemm_vs_openblas.sh [BUILD] [REPS] [THREADS...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
REPS=${2:-5}
shift $(( $# < 2 ? $# : 2 ))
THREADS=${*:-1 2}
OUT=$HERE/$BUILD/gemm_vs_openblas
cc -O2 -std=c17 -D_GNU_SOURCE -I"$HERE/src" -I/usr/include/x86_64-linux-gnu \
    -o "$OUT" "$HERE/bench/gemm_vs_openblas.c" "$HERE/$BUILD/lib/libsd_backend.a" \
    "$HERE/$BUILD/lib/libsd_util.a" -lopenblas -lm -pthread
for t in $THREADS; do
    echo "load=$(cut -d' ' -f1 /proc/loadavg)"
    "$OUT" "$t" "$REPS"
done
