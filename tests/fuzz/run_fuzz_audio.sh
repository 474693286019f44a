#!/bin/sh
# run_fuzz_audio.sh BUILD_DIR SECONDS - runs the audio fuzzers (see `make fuzz-audio`):
# fuzz_audio for SECONDS over a seed corpus of tiny clips in every format (made
# here with ffmpeg + espeak-ng on first use), then fuzz_audio_relay for a third
# of that. Exits nonzero when libFuzzer reports a finding (crash-* files).
set -eu
B=$1
S=$2
SEEDS=$(cd "$(dirname "$0")" && pwd)/seeds
C=$B/corpus-audio
if [ ! -f "$C/.done" ]; then
    mkdir -p "$C"
    FF="ffmpeg -nostdin -hide_banner -loglevel error -y"
    espeak-ng -w "$C/src.wav" "call me back"
    $FF -i "$C/src.wav" -t 0.4 -ar 16000 -ac 1 "$C/s16.wav"
    $FF -i "$C/src.wav" -t 0.4 -ar 8000 -ac 2 -c:a pcm_u8 "$C/u8.wav"
    $FF -i "$C/src.wav" -t 0.4 -c:a libmp3lame -b:a 32k "$C/a.mp3"
    $FF -i "$C/src.wav" -t 0.4 -c:a aac -b:a 32k "$C/a.m4a"
    $FF -i "$C/src.wav" -t 0.4 -c:a aac -b:a 32k "$C/a.aac"
    $FF -i "$C/src.wav" -t 0.4 -c:a flac "$C/a.flac"
    $FF -i "$C/src.wav" -t 0.4 -c:a libvorbis "$C/a.ogg"
    $FF -i "$C/src.wav" -t 0.4 -c:a libopus -b:a 16k "$C/opus.ogg"
    $FF -i "$C/src.wav" -t 0.4 -c:a libopus -b:a 16k -f webm - > "$C/live.webm"
    $FF -i "$C/src.wav" -t 0.4 -c:a pcm_s16le "$C/a.aiff"
    rm -f "$C/src.wav"
    touch "$C/.done"
fi
mkdir -p "$B/corpus-relay" "$B/artifacts"
cd "$B/artifacts"
# Findings of earlier runs were reported then; replay one with ../fuzz_audio FILE.
mkdir -p old
for f in crash-* leak-* timeout-* oom-*; do [ -e "$f" ] && mv "$f" old/; done
rc=0
run() { # name, then libFuzzer arguments; the log's tail is the report
    name=$1
    shift
    if ../"$name" "$@" > "$name.log" 2>&1; then
        tail -n 14 "$name.log"
    else
        tail -n 60 "$name.log"
        rc=1
    fi
}
run fuzz_audio -max_total_time="$S" -max_len=65536 -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 ../corpus-audio
# seeds/audio_relay holds earlier findings: replayed first, as regression inputs
run fuzz_audio_relay -max_total_time=$((S / 3 + 1)) -max_len=65536 -timeout=10 \
    -print_final_stats=1 ../corpus-relay "$SEEDS/audio_relay"
if [ $rc -ne 0 ] || ls crash-* leak-* timeout-* oom-* >/dev/null 2>&1; then
    echo "fuzz-audio: findings, see $B/artifacts"
    exit 1
fi
echo "fuzz-audio: no findings"
