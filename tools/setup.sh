#!/usr/bin/env bash
# Installs what BNSpec needs on a fresh Debian machine that has the Swift toolchain:
# GNU GSL (libgsl-dev) and pkg-config, which SwiftPM uses to find it.
# Idempotent: does nothing when both are present.
set -euo pipefail
missing=()
dpkg -s libgsl-dev >/dev/null 2>&1 || missing+=(libgsl-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "setup: error: the Swift toolchain is not on PATH" >&2; exit 1; }
