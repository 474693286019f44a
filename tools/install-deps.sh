#!/bin/sh
# Installs the Debian 12 packages scribed needs: .ci/packages.txt builds and
# runs it; --test adds .ci/packages-test.txt (the test suite's tools). Runs
# apt-get directly as root (a fresh root Debian box has no sudo) and through
# sudo otherwise. --dry-run prints the commands instead of running them.
set -eu
cd "$(dirname "$0")/.."

usage() {
    echo "usage: tools/install-deps.sh [--test] [--dry-run]"
}

lists=.ci/packages.txt
dry=
for arg in "$@"; do
    case $arg in
    --test) lists="$lists .ci/packages-test.txt" ;;
    --dry-run) dry=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

as_root=
if [ "$(id -u)" != 0 ]; then
    as_root=sudo
    if [ -z "$dry" ] && ! command -v sudo >/dev/null 2>&1; then
        echo "install-deps.sh: not root and sudo is missing: run it as root" >&2
        exit 1
    fi
fi

run() {
    if [ -n "$dry" ]; then echo "$*"; else "$@"; fi
}

# A package named NAME:ARCH (the arm64 libraries of the cross check, make
# check-arm64) needs that architecture known to dpkg before apt-get update.
for arch in $(cat $lists | sed -n 's/^[^#:]*:\([a-z0-9]*\)$/\1/p' | sort -u); do
    run $as_root dpkg --add-architecture "$arch"
done
# shellcheck disable=SC2046 # one package per word
run $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
run $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(cat $lists)
