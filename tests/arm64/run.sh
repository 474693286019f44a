#!/usr/bin/env bash
# tests/arm64/run.sh BUILD_ARM64 [QEMU]: runs the aarch64 (static) builds of
# the backend unit tests and the engine conformance tests that `make
# check-arm64` made, under qemu-user. Two emulated CPU models:
#   max        ARMv8.x with SDOT: the unit tests cover the scalar, neon and
#              neon-dotprod tables; the kernel-covering conformance tests
#              run on the default table (neon-dotprod)
#   cortex-a57 ARMv8.0 without SDOT: the probe must pick plain NEON
# Prints each run's lines and one closing line `N passed, N failed`.
# Correctness only: emulated timings say nothing about real ARM cores.
set -u
cd "$(dirname "$0")/../.."
B=${1:?usage: tests/arm64/run.sh BUILD_ARM64 [QEMU]}
QEMU=${2:-qemu-aarch64}
export SCRIBED_SHARED=${SCRIBED_SHARED:-$(cd .. && pwd)/shared}
# emulation is ~10-40x slower than native: a longer per-test limit than check.c's 300 s
export CHECK_TIMEOUT=${CHECK_TIMEOUT:-900}
pass=0
fail=0

run() { # LABEL CMD...: one check.h binary, its counts added
    local label=$1
    shift
    echo "== arm64: $label"
    local t0 out rc last p f
    t0=$(date +%s)
    out=$("$@" 2>&1)
    rc=$?
    echo "$out" | grep -v '^ok '
    last=$(tail -n 1 <<<"$out")
    if grep -qE '^[0-9]+ passed, [0-9]+ failed$' <<<"$last"; then
        p=${last%% passed*}
        f=${last#*passed, }
        f=${f%% failed*}
        pass=$((pass + p))
        fail=$((fail + f))
        [ "$rc" -ne 0 ] && [ "$f" = 0 ] && fail=$((fail + 1))
    else
        echo "   (runner died: rc=$rc)"
        fail=$((fail + 1))
    fi
    echo "   ($(($(date +%s) - t0)) s)"
}

# The conformance tests that exercise the kernels on the default table
# (neon-dotprod). A full run takes over an hour under emulation (the batcher
# and fallback tests repeat whole transcriptions), and the two NEON tables
# differ only in the quantized products, which the unit test
# quant_matmul_neon_sdot_equals_plain proves bit-identical.
CONF_TESTS=(decode_greedy engine_encoder_and_prompt_logits engine_teacher_forced
    engine_batch_equals_single quant_models mel_conf_b_sentence vad_conf_probs
    batcher_logits_bitwise)

run "unit_backend, cpu max (scalar, neon, neon-dotprod)" env SCRIBED_TEST_WIDEST_SIMD=neon-dotprod \
    "$QEMU" -cpu max "$B/tests/unit_backend"
run "unit_backend simd_selection, cpu cortex-a57 (no SDOT: neon)" \
    env SCRIBED_TEST_WIDEST_SIMD=neon "$QEMU" -cpu cortex-a57 "$B/tests/unit_backend" simd_selection
run "conformance_engine, cpu max (neon-dotprod)" \
    "$QEMU" -cpu max "$B/tests/conformance_engine" "${CONF_TESTS[@]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
