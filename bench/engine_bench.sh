#!/usr/bin/env bash
# engine_bench.sh - scribed's engine on random-weight models of the real
# shapes (tiny, base, small; ../shared/tools/mkmodel.c, seed 1): `scribed bench`
# (encoder, decode, batched/beam decode, prompt) and one whole transcription
# (beam 5, no fallback) per model, as key=value lines prefixed by the model
# name. Models are generated once into MODEL_DIR (private copies: never point
# this at files other processes rewrite). Quantized variants are made with
# `scribed quantize` when QUANT lists types.
#
# usage: bench/engine_bench.sh [MODEL_DIR] [SIZES] [THREADS]
#   MODEL_DIR default /tmp/scribed-bench-models; SIZES default "tiny base small";
#   THREADS default 2. env: SCRIBED (default build/scribed), RUNS (default 3),
#   QUANT (e.g. "q8_0 q5_0"), CLIP (default ../shared/reference/c_passage.wav)
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/scribed-bench-models}
SIZES=${2:-tiny base small}
T=${3:-2}
SCRIBED=${SCRIBED:-$HERE/build/scribed}
RUNS=${RUNS:-3}
QUANT=${QUANT:-}
CLIP=${CLIP:-$HERE/../shared/reference/c_passage.wav}
SHARED=$HERE/../shared
mkdir -p "$DIR"

if [ ! -x "$DIR/mkmodel" ]; then
    cc -O2 -std=c11 -o "$DIR/mkmodel" "$SHARED/tools/mkmodel.c" -lm
fi

echo "threads=$T"
echo "runs=$RUNS"
echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
for size in $SIZES; do
    f16="$DIR/$size-en.f16.bin"
    [ -s "$f16" ] || "$DIR/mkmodel" -v "$SHARED/reference/vocab-base.en.bin" -o "$f16" -p "$size" \
        -t f16 -s 1 > /dev/null
    models="$f16"
    for q in $QUANT; do
        qf="$DIR/$size-en.$q.bin"
        [ -s "$qf" ] || "$SCRIBED" quantize "$f16" "$qf" "$q" > /dev/null
        models="$models $qf"
    done
    for m in $models; do
        tag=$(basename "$m" .bin)
        echo "$tag.load=$(cut -d' ' -f1 /proc/loadavg)"
        "$SCRIBED" bench --model "$m" --threads "$T" --runs "$RUNS" |
            grep -E '_ms|rss' | sed "s/^/$tag./"
        /usr/bin/time -f "%e %M" -o "$DIR/time.out" "$SCRIBED" transcribe --model "$m" \
            --threads "$T" --beam-size 5 --no-fallback "$CLIP" > /dev/null 2>&1
        read -r wall rss < "$DIR/time.out"
        echo "$tag.transcribe_beam5_wall_s=$wall"
        echo "$tag.transcribe_beam5_rss_mib=$((rss / 1024))"
    done
done
