#!/bin/bash
# runtime-deps.sh BINARY - print the Debian packages that provide the shared
# libraries BINARY links directly (its DT_NEEDED entries), one per line,
# sorted. The Dockerfile's build stage runs it so the slim runtime stage
# installs exactly what the binary needs, and stays right when the Makefile
# gains a library. libc6 is left out (every Debian image has it). Needs
# readelf (binutils), ldconfig and dpkg: run it where the binary was built.
set -euo pipefail
bin=${1:?usage: runtime-deps.sh BINARY}
arch=$(dpkg --print-architecture)
# read once: an early-exiting reader on a live `ldconfig -p` pipe would SIGPIPE it
cache=$(ldconfig -p)

readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r soname; do
    path=$(awk -v so="$soname" '$1 == so && !found { print $NF; found = 1 }' <<<"$cache")
    if [ -z "$path" ]; then
        echo "runtime-deps.sh: $soname not found by ldconfig" >&2
        exit 1
    fi
    # dpkg knows the path it unpacked; with merged /usr that may be /lib/...
    pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null ||
          dpkg -S "/usr$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null || true)
    pkg=${pkg%%:*}
    if [ -z "$pkg" ]; then
        echo "runtime-deps.sh: no package owns $path ($soname)" >&2
        exit 1
    fi
    case "$pkg" in
        libc6) ;;
        *) echo "$pkg" ;;
    esac
done | sed "s/:$arch\$//" | sort -u
