#!/bin/sh
# mkfixtures.sh DIR - writes the audio test fixtures into DIR (must exist):
# one spoken clip (espeak-ng) in every accepted format at several rates and
# channel layouts, a reference decode of each made by the ffmpeg CLI
# (<clip>.ref.f32, 16 kHz mono float), and the bad inputs of the error table.
# Needs ffmpeg and espeak-ng (Debian packages, listed in .ci/packages.txt).
set -eu
D=$1
cd "$D"
FF="ffmpeg -nostdin -hide_banner -loglevel error -y"
BX="-fflags +bitexact -flags:a +bitexact"

espeak-ng -w src.wav "please call me back tomorrow morning, the quick brown fox jumps over the lazy dog"
$FF -i src.wav -ar 16000 -ac 1 -f f32le src16k.f32

clip() { # name, then ffmpeg output options
    name=$1
    shift
    $FF -i src.wav "$@" "$name"
    $FF -i "$name" -vn -ac 1 -ar 16000 -f f32le "$name.ref.f32"
}
clip wav_s16_16k_mono.wav -ar 16000 -ac 1 -c:a pcm_s16le
clip wav_s16_44k_stereo.wav -ar 44100 -ac 2 -c:a pcm_s16le
clip wav_u8_8k_mono.wav -ar 8000 -ac 1 -c:a pcm_u8
clip wav_s24_48k_mono.wav -ar 48000 -ac 1 -c:a pcm_s24le
clip wav_s32_96k_4ch.wav -ar 96000 -af "pan=quad|c0=c0|c1=0.5*c0|c2=0.8*c0|c3=c0" -c:a pcm_s32le
clip wav_f32_22k_mono.wav -c:a pcm_f32le
clip wav_f64_32k_6ch.wav -ar 32000 -af "pan=5.1|c0=c0|c1=c0|c2=c0|c3=0.1*c0|c4=c0|c5=c0" -c:a pcm_f64le
clip mp3_44k_stereo.mp3 -ar 44100 -ac 2 -c:a libmp3lame -b:a 128k
clip mp3_22k_mono.mp3 -c:a libmp3lame -q:a 4
clip m4a_48k_stereo.m4a -ar 48000 -ac 2 -c:a aac -b:a 128k
clip m4a_16k_mono.m4a -ar 16000 -ac 1 -c:a aac -b:a 64k
clip flac_44k_stereo.flac -ar 44100 -ac 2 -c:a flac
clip flac_16k_mono.flac -ar 16000 -ac 1 -c:a flac
clip ogg_vorbis_44k_stereo.ogg -ar 44100 -ac 2 -c:a libvorbis -q:a 5
clip ogg_opus_48k_mono.ogg -c:a libopus -b:a 64k
clip webm_opus_48k_stereo.webm -ac 2 -c:a libopus -b:a 96k
clip aac_adts_44k.aac -ar 44100 -c:a aac -b:a 128k
# An mp4 with a video track first and the speech as its audio track.
$FF -f lavfi -i color=c=blue:s=64x64:r=10 -i src.wav -shortest -map 0:v -map 1:a -c:v libx264 \
    -preset ultrafast -c:a aac -b:a 96k mp4_video_aac.mp4
$FF -i mp4_video_aac.mp4 -vn -ac 1 -ar 16000 -f f32le mp4_video_aac.mp4.ref.f32
# Like Chromium's MediaRecorder: webm written to a pipe, so no duration and no cues.
$FF -i src.wav -ac 1 -c:a libopus -f webm - > webm_live_opus.webm
$FF -i webm_live_opus.webm -ac 1 -ar 16000 -f f32le webm_live_opus.webm.ref.f32
# Rate and channel layout change mid-stream (44.1 kHz stereo, then 22.05 kHz mono).
cat mp3_44k_stereo.mp3 mp3_22k_mono.mp3 > changes_midway.mp3
# Raw s16le 16 kHz mono for raw_pcm_s16le.
$FF -i src.wav -ar 16000 -ac 1 -f s16le raw_s16le_16k.pcm

# ---- bad inputs ----
: > empty.mp3
printf 'This is a plain text file that someone renamed to .mp3\n' > text.mp3
trunc() { # src dst: keep the first half
    n=$(wc -c < "$1")
    head -c $((n / 2)) "$1" > "$2"
}
trunc mp3_44k_stereo.mp3 trunc.mp3
$FF -i src.wav -c:a aac -b:a 96k -movflags +faststart faststart.m4a
trunc faststart.m4a trunc_faststart.m4a
trunc m4a_48k_stereo.m4a trunc_moov_at_end.m4a
trunc flac_44k_stereo.flac trunc.flac
# A 16 kHz s16 WAV whose data chunk claims 10 hours (1152000000 bytes = 0x44AA2000).
$FF -i src.wav -ar 16000 -ac 1 -c:a pcm_s16le $BX claims_10h.wav
printf '\000\040\252\104' | dd of=claims_10h.wav bs=1 seek=40 conv=notrunc status=none
# 20 minutes of silence as FLAC written to a pipe: 200 KB, no length in the header.
$FF -f lavfi -i anullsrc=r=16000:cl=mono -t 1200 -c:a flac -f flac - > bomb_20min.flac
$FF -f lavfi -i color=c=black:s=64x64:r=10 -t 2 -c:v libx264 -preset ultrafast video_only.mp4
# A WAV at 767999 Hz: resampling it needs a filter bank of several MiB.
$FF -f lavfi -i sine=f=440:r=16000 -t 1 -c:a pcm_s16le $BX odd_rate.wav
printf '\377\267\013\000\376\157\027\000' | dd of=odd_rate.wav bs=1 seek=24 conv=notrunc status=none
# An HLS playlist posing as mp3 that points at a local file (must never be followed).
printf '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n' \
    > playlist.mp3
touch .done
