#!/bin/sh
# entrypoint.sh - container entrypoint of scribed (installed as
# /usr/local/bin/scribed-entrypoint). `serve` (the default) first makes sure
# the data dir is usable and a model is there (downloading it on first start
# unless one is baked into the image), then execs `scribed serve`, so the
# server is the process that receives SIGTERM. Any other command
# (`backup PATH`, `model list`, ...) is passed to scribed unchanged.
#
# It writes nothing outside $SCRIBED_DATA_DIR, so the container runs with a
# read-only root filesystem. Started as root (only the Fly.io image does, see
# docs/DEPLOYMENT.md), it hands the data volume to the service user and drops
# to it with no capabilities and no_new_privs before anything else runs.
#
# Variables (besides scribed's own SCRIBED_* settings, `scribed serve --help`):
#   SCRIBED_MODEL_NAME      whisper model to use/download when SCRIBED_MODEL is
#                           unset (default base.en -> DATA/models/ggml-base.en.bin)
#   SCRIBED_VAD_NAME        VAD model to use/download when SCRIBED_VAD_MODEL is
#                           unset (default silero-v6.2.0; "none" turns VAD off)
#   SCRIBED_MODEL_DOWNLOAD  1 (default): fetch missing models; 0: never
#   SCRIBED_MODEL_BASE_URL  mirror to fetch models from (`--base-url`)
#   SCRIBED_BAKED_DIR       where build-time models live (default /opt/scribed)
#   SCRIBED_RUN_USER        user the service drops to when started as root
set -eu

BIN=${SCRIBED_BIN:-/usr/local/bin/scribed}
DATA=${SCRIBED_DATA_DIR:-/data}
BAKED=${SCRIBED_BAKED_DIR:-/opt/scribed}
RUN_USER=${SCRIBED_RUN_USER:-scribed}

log() { printf 'scribed-entrypoint: %s\n' "$*" >&2; }

if [ "$#" -eq 0 ]; then
    set -- serve
fi
if [ "$1" != "serve" ]; then
    exec "$BIN" "$@"
fi

# Root only long enough to give a root-owned volume (Fly.io mounts them so) to
# the service user; then re-run this script as that user.
if [ "$(id -u)" = 0 ] && [ "${SCRIBED_ALLOW_ROOT:-0}" != 1 ]; then
    run_gid=$(id -g "$RUN_USER")
    mkdir -p "$DATA"
    find "$DATA" -xdev ! -user "$RUN_USER" -exec chown "$RUN_USER:$run_gid" {} +
    exec setpriv --reuid="$RUN_USER" --regid="$run_gid" --init-groups \
        --inh-caps=-all --no-new-privs -- /bin/sh "$0" "$@"
fi

if ! mkdir -p "$DATA/models" 2>/dev/null || [ ! -w "$DATA" ]; then
    log "$DATA is not writable by uid $(id -u). Give the volume to that user" \
        "(chown -R $(id -u):$(id -g) on the host) or start the container as root" \
        "so this script can (see docs/DEPLOYMENT.md, 'Volume permissions')."
    exit 78
fi

# fetch NAME [DIR]: download DIR/models/ggml-NAME.bin (DIR: the data dir);
# failure is not fatal (the service starts anyway and /health says what is
# missing and how to get it).
fetch() {
    into=${2:-$DATA}
    if [ "${SCRIBED_MODEL_DOWNLOAD:-1}" != 1 ]; then
        log "model $1 missing and SCRIBED_MODEL_DOWNLOAD=0: not downloading"
        return 0
    fi
    log "first start: downloading model $1 into $into/models"
    if [ -n "${SCRIBED_MODEL_BASE_URL:-}" ]; then
        "$BIN" model download "$1" --data-dir "$into" --base-url "$SCRIBED_MODEL_BASE_URL" >&2 ||
            log "download of $1 failed; starting without it"
    else
        "$BIN" model download "$1" --data-dir "$into" >&2 ||
            log "download of $1 failed; starting without it"
    fi
}

# pick NAME: print the path of model NAME, preferring the volume over the
# image, downloading it onto the volume when it is in neither.
pick() {
    on_volume="$DATA/models/ggml-$1.bin"
    if [ ! -f "$on_volume" ] && [ -f "$BAKED/models/ggml-$1.bin" ]; then
        printf '%s\n' "$BAKED/models/ggml-$1.bin"
        return 0
    fi
    [ -f "$on_volume" ] || fetch "$1"
    printf '%s\n' "$on_volume"
}

if [ -z "${SCRIBED_MODEL:-}" ]; then
    SCRIBED_MODEL=$(pick "${SCRIBED_MODEL_NAME:-base.en}")
    export SCRIBED_MODEL
elif [ ! -f "$SCRIBED_MODEL" ]; then
    # an explicit DIR/models/ggml-NAME.bin that is absent: fetch NAME into DIR
    name=$(basename "$SCRIBED_MODEL" .bin)
    dir=$(dirname "$SCRIBED_MODEL")
    if [ "${name#ggml-}" != "$name" ] && [ "$(basename "$dir")" = models ]; then
        fetch "${name#ggml-}" "$(dirname "$dir")"
    fi
fi

vad=${SCRIBED_VAD_NAME:-silero-v6.2.0}
if [ -z "${SCRIBED_VAD_MODEL:-}" ] && [ "$vad" != none ]; then
    SCRIBED_VAD_MODEL=$(pick "$vad")
    if [ -f "$SCRIBED_VAD_MODEL" ]; then
        export SCRIBED_VAD_MODEL
    else
        unset SCRIBED_VAD_MODEL
    fi
fi

exec "$BIN" "$@"
