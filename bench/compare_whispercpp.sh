#!/usr/bin/env bash
# compare_whispercpp.sh - scribed's engine next to whisper.cpp on the same
# machine, in one run: alternating runs (ours, theirs, ours, ...), best of N,
# key=value lines and ratios (ours / theirs; < 1 means we are faster).
# Builds nothing: point it at a whisper.cpp build's bin dir (whisper-bench,
# whisper-cli) and at PRIVATE model copies (another process regenerating a
# shared file under a running bench crashes it with SIGBUS).
#
# usage: bench/compare_whispercpp.sh WCPP_BIN_DIR [MODEL] [CLIP] [N] [THREADS...]
#   MODEL   ggml model (default /tmp/perf-base-en.f16.bin)
#   CLIP    audio for the end-to-end run (default ../shared/reference/c_passage.wav)
#   N       runs per configuration (default 3)
#   THREADS thread counts for the bench part (default "1 2")
# env: SCRIBED=path of our binary (default build/scribed), SKIP_E2E=1, SKIP_BENCH=1
#
# Printed first: the CPU (cpu_model, cpu_fms = family/model/stepping, cpu_flags: the
# SIMD features the kernels care about), membw_t1_gbs / membw_t2_gbs (bench/membw.c,
# built here; MEMBW_MIB sets its buffer, default 512) and one cpu_line= summing them up.
# Printed per thread count T: {ours,wcpp}_{encoder_ms,decode_ms,batched5_ms}_tT and
# ratio_*_tT; decode_mb_per_token (what one decoder step streams: weights and
# cross-attention K/V) and {ours,wcpp}_bwfrac_{decode,batched5}_tT = that over the time
# and the T-thread membw (a batched step streams it once for 5 tokens); ours_kernels_tT:
# the kernels our calibration chose (cached in a scratch data dir for the run); end to end (2 threads, beam 5, no fallback): {ours,wcpp}_e2e_wall_s,
# {ours,wcpp}_e2e_rss_mib, ratio_e2e_wall, ratio_e2e_rss; load_* = 1-minute load average
# when each part started (the machine is shared; figures under load are pessimistic).
set -euo pipefail

WBIN=${1:?usage: $0 WCPP_BIN_DIR [MODEL] [CLIP] [N] [THREADS...]}
MODEL=${2:-/tmp/perf-base-en.f16.bin}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CLIP=${3:-$HERE/../shared/reference/c_passage.wav}
N=${4:-3}
shift $(( $# < 4 ? $# : 4 ))
THREADS=${*:-1 2}
SCRIBED=${SCRIBED:-$HERE/build/scribed}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for f in "$WBIN/whisper-bench" "$WBIN/whisper-cli" "$SCRIBED" "$MODEL" "$CLIP"; do
    [ -e "$f" ] || { echo "missing: $f" >&2; exit 2; }
done

load1() { cut -d' ' -f1 /proc/loadavg; }
# min of a list of numbers on stdin ("" if none)
min() { sort -g | head -n1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "nan"; else printf "%.3f\n", a / b }'; }

echo "model=$MODEL"
echo "clip=$CLIP"
echo "runs=$N"
echo "wcpp_bin=$WBIN"
cpuinfo() { { grep -m1 "^$1" /proc/cpuinfo || true; } | cut -d: -f2 | sed 's/^ //'; }
echo "cpu=$(cpuinfo 'model name') x $(nproc)"
echo "cpu_model=$(cpuinfo 'model name')"
echo "cpu_fms=$(cpuinfo 'cpu family')/$(cpuinfo 'model')/$(cpuinfo 'stepping')"
# the features the kernel tables depend on (x86: AVX2/AVX-512 family; arm64: NEON/fp16/dot)
FLAGS=$( (cpuinfo flags; cpuinfo Features) | tr ' ' '\n' | grep -xE \
    'avx2|fma|f16c|avx512f|avx512vl|avx512bw|avx512dq|avx512_vnni|avx512_bf16|avx512_fp16|avx_vnni|amx_tile|asimd|fphp|asimdhp|asimddp|sve' \
    | paste -sd, -)
echo "cpu_flags=$FLAGS"
cc -O2 -mavx2 -pthread -o "$TMP/membw" "$HERE/bench/membw.c" 2> /dev/null ||
    cc -O2 -pthread -o "$TMP/membw" "$HERE/bench/membw.c"
"$TMP/membw" "${MEMBW_MIB:-512}" 1 2 > "$TMP/membw.out"
cat "$TMP/membw.out"
MEMBW_1=$(sed -n 's/^membw_t1_gbs=//p' "$TMP/membw.out")
MEMBW_2=$(sed -n 's/^membw_t2_gbs=//p' "$TMP/membw.out")
echo "cpu_line=$(cpuinfo 'model name') | family/model/stepping $(cpuinfo 'cpu family')/$(cpuinfo 'model')/$(cpuinfo 'stepping') | $FLAGS | membw ${MEMBW_1} GB/s 1 thread, ${MEMBW_2} GB/s 2 threads | $(nproc) CPUs"
# bandwidth fraction: MB per token over ms per token (= GB/s) over the machine's GB/s
bwfrac() { awk -v mb="$1" -v ms="$2" -v per="$3" -v bw="$4" 'BEGIN { if (mb == "" || ms == "" || ms == 0 || bw == "") print "nan"; else printf "%.2f\n", mb / (ms * per) / bw }'; }
mkdir -p "$TMP/data" # our kernel-choice cache for this run: the first bench run calibrates

if [ -z "${SKIP_BENCH:-}" ]; then
for T in $THREADS; do
    echo "load_bench_t$T=$(load1)"
    : > "$TMP/o.enc"; : > "$TMP/o.dec"; : > "$TMP/o.bat"
    : > "$TMP/w.enc"; : > "$TMP/w.dec"; : > "$TMP/w.bat"
    for ((i = 0; i < N; i++)); do
        "$SCRIBED" bench --model "$MODEL" --threads "$T" --runs 1 --data-dir "$TMP/data" > "$TMP/o.out"
        MB=$(sed -n 's/^decode_mb_per_token=//p' "$TMP/o.out")
        KERNELS=$(sed -n 's/^kernels=//p' "$TMP/o.out")
        sed -n 's/^encoder_ms=//p' "$TMP/o.out" >> "$TMP/o.enc"
        sed -n 's/^decode_ms_per_token=//p' "$TMP/o.out" >> "$TMP/o.dec"
        sed -n 's/^batched5_ms_per_token=//p' "$TMP/o.out" >> "$TMP/o.bat"
        "$WBIN/whisper-bench" -m "$MODEL" -t "$T" -w 0 > "$TMP/w.out" 2>&1
        # "encode time =  1609.59 ms /     1 runs (  1609.59 ms per run)": the per-run figure
        grep 'encode time' "$TMP/w.out" | sed 's/.*(\s*\([0-9.]*\) ms per run).*/\1/' >> "$TMP/w.enc"
        grep 'decode time' "$TMP/w.out" | sed 's/.*(\s*\([0-9.]*\) ms per run).*/\1/' >> "$TMP/w.dec"
        grep 'batchd time' "$TMP/w.out" | sed 's/.*(\s*\([0-9.]*\) ms per run).*/\1/' >> "$TMP/w.bat"
    done
    for k in enc dec bat; do
        case $k in enc) name=encoder_ms ;; dec) name=decode_ms ;; bat) name=batched5_ms ;; esac
        o=$(min < "$TMP/o.$k"); w=$(min < "$TMP/w.$k")
        echo "ours_${name}_t$T=$o"
        echo "wcpp_${name}_t$T=$w"
        echo "ratio_${name}_t$T=$(ratio "$o" "$w")"
        bw=$([ "$T" = 1 ] && echo "$MEMBW_1" || echo "$MEMBW_2")
        [ "$T" -gt 2 ] && bw="" # membw is measured at 1 and 2 threads only
        case $k in
        dec) echo "ours_bwfrac_decode_t$T=$(bwfrac "$MB" "$o" 1 "$bw")"
             echo "wcpp_bwfrac_decode_t$T=$(bwfrac "$MB" "$w" 1 "$bw")" ;;
        bat) echo "ours_bwfrac_batched5_t$T=$(bwfrac "$MB" "$o" 5 "$bw")"
             echo "wcpp_bwfrac_batched5_t$T=$(bwfrac "$MB" "$w" 5 "$bw")" ;;
        esac
    done
    echo "decode_mb_per_token=$MB"
    echo "ours_kernels_t$T=$KERNELS"
done
fi

if [ -z "${SKIP_E2E:-}" ]; then
    echo "load_e2e=$(load1)"
    : > "$TMP/o.wall"; : > "$TMP/o.rss"; : > "$TMP/w.wall"; : > "$TMP/w.rss"
    # wall seconds and peak RSS (MiB) from GNU time's -f "%e %M"
    for ((i = 0; i < N; i++)); do
        /usr/bin/time -f "%e %M" -o "$TMP/o.time" "$SCRIBED" transcribe --model "$MODEL" \
            --threads 2 --beam-size 5 --no-fallback "$CLIP" > "$TMP/o.txt" 2> "$TMP/o.err"
        awk '{ print $1 > "'"$TMP/o.wall"'.1"; printf "%.0f\n", $2 / 1024 > "'"$TMP/o.rss"'.1" }' "$TMP/o.time"
        cat "$TMP/o.wall.1" >> "$TMP/o.wall"; cat "$TMP/o.rss.1" >> "$TMP/o.rss"
        /usr/bin/time -f "%e %M" -o "$TMP/w.time" "$WBIN/whisper-cli" -m "$MODEL" -f "$CLIP" \
            -t 2 -nf -bs 5 > "$TMP/w.txt" 2> "$TMP/w.err"
        awk '{ print $1 > "'"$TMP/w.wall"'.1"; printf "%.0f\n", $2 / 1024 > "'"$TMP/w.rss"'.1" }' "$TMP/w.time"
        cat "$TMP/w.wall.1" >> "$TMP/w.wall"; cat "$TMP/w.rss.1" >> "$TMP/w.rss"
    done
    o=$(min < "$TMP/o.wall"); w=$(min < "$TMP/w.wall")
    echo "ours_e2e_wall_s=$o"
    echo "wcpp_e2e_wall_s=$w"
    echo "ratio_e2e_wall=$(ratio "$o" "$w")"
    o=$(sort -g "$TMP/o.rss" | tail -n1); w=$(sort -g "$TMP/w.rss" | tail -n1)
    echo "ours_e2e_rss_mib=$o"
    echo "wcpp_e2e_rss_mib=$w"
    echo "ratio_e2e_rss=$(ratio "$o" "$w")"
    echo "ours_e2e_text_bytes=$(wc -c < "$TMP/o.txt")"
fi
echo "load_end=$(load1)"
