#!/usr/bin/env bash
# tests/gpu/run.sh - the CUDA backend on the GPU machine, in one go: builds an
# engine-only conformance binary and bench with `nvcc` (the machine has CUDA 13
# and cuBLAS 13 but no libmicrohttpd, FFmpeg, wslay or libpq, so the service
# cannot be linked there), runs the conformance suite on the CUDA device
# against ../shared/reference with the CPU's tolerances (every test file but
# the two that decode audio files through FFmpeg), then the benchmark on
# base-, small- and large-shaped random-weight models. Logs go to $OUT (the
# device runner's folder) or build-gpu/logs.
#
# NOT RUN ON A GPU YET: no GPU machine was available to the change that
# wrote it (issue 21, Part 2). On the build machine (nvcc 13.0, no GPU) it
# builds everything and stops at the device check; the CUDA kernels have
# never executed.
#
#   tests/gpu/run.sh [quick]      quick: base shape only
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${BUILD:-build-gpu}
SHARED=${SCRIBED_SHARED:-$(cd .. && pwd)/shared}
LOG=${OUT:-$B/logs}
NVCC=${NVCC:-nvcc}
CC=${CC:-cc}
JOBS=${JOBS:-$(nproc)}
ARCH=${CUDA_ARCH:-sm_90}
mkdir -p "$B/obj" "$B/models" "$LOG"
exec > >(tee "$LOG/run.log") 2>&1

command -v "$NVCC" >/dev/null || { echo "tests/gpu/run.sh: no $NVCC on PATH"; exit 2; }
[ -f /usr/include/zlib.h ] || echo "warning: no zlib.h (whisper/transcribe.c needs it)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$NVCC" --version | tail -n 2

CFLAGS="-std=c17 -D_GNU_SOURCE -DSD_HAVE_CUDA -Isrc -Itests -O2 -g -pthread -fno-strict-aliasing -Wall -Wextra"
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v "$NVCC")")")}
LIBS="-L$CUDA_HOME/lib64 -lcublas -lcudart -lstdc++ -ljansson -lz -lm -lpthread"

echo "== build ($B)"
t0=$(date +%s)
SRCS=$(ls src/util/*.c src/backend/*.c src/backend/cpu/*.c src/backend/check/*.c \
          src/whisper/*.c src/vad/*.c src/cli/bench.c tests/check.c tests/gpu/bench_main.c \
          tests/conformance/*.c | grep -v -e test_pipeline.c -e test_streaming.c)
printf '%s\n' $SRCS | xargs -P "$JOBS" -I{} sh -c \
    'o='"$B"'/obj/$(echo {} | tr / _).o; '"$CC $CFLAGS"' -c {} -o $o || exit 255' || exit 1
"$NVCC" -O3 -std=c++17 -arch="$ARCH" -Isrc -DSD_HAVE_CUDA -Xcompiler -fno-strict-aliasing \
    -c src/backend/cuda/cuda.cu -o "$B/obj/cuda.o" || exit 1
ENGINE=$(ls "$B"/obj/src_{util,backend,whisper,vad}_*.o "$B/obj/cuda.o")
CONF=$(ls "$B"/obj/tests_conformance_*.o "$B/obj/tests_check.c.o")
$CC -pthread -o "$B/conformance" $CONF $ENGINE $LIBS || exit 1
$CC -pthread -o "$B/bench" "$B/obj/src_cli_bench.c.o" "$B/obj/tests_gpu_bench_main.c.o" \
    $ENGINE $LIBS || exit 1
$CC -O2 -std=c11 -o "$B/mkmodel" "$SHARED/tools/mkmodel.c" -lm || exit 1
echo "build: $(( $(date +%s) - t0 )) s"

echo "== the CUDA device answers (else the suite below would quietly test the CPU)"
"$B/bench" --model "$SHARED/reference/micro-en.f16.bin" --device cuda --runs 1 \
    | tee "$LOG/bench-micro-cuda.log"
grep -q '^device=cuda$' "$LOG/bench-micro-cuda.log" || { echo "no CUDA device"; exit 1; }

echo "== conformance on cuda (the default device where a GPU is present)"
SCRIBED_SHARED=$SHARED CHECK_TIMEOUT=300 "$B/conformance" | tee "$LOG/conformance.log"

echo "== bench"
SHAPES="base small large"
[ "${1:-}" = quick ] && SHAPES=base
for p in $SHAPES; do
    m="$B/models/$p.f16.bin"
    [ -f "$m" ] || "$B/mkmodel" -v "$SHARED/reference/vocab-base.en.bin" -o "$m" -p "$p" -t f16 -s 1
    echo "-- $p cuda"
    "$B/bench" --model "$m" --device cuda --threads 1 --runs 5 | tee "$LOG/bench-$p-cuda.log"
done
echo "-- base cpu ($JOBS threads), for the ratio"
"$B/bench" --model "$B/models/base.f16.bin" --device cpu --threads "$JOBS" --runs 3 \
    | tee "$LOG/bench-base-cpu.log"
echo "done; logs in $LOG"
