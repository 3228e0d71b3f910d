#!/usr/bin/env bash
# Installs what BNSpec needs on a fresh Debian machine that has the Swift toolchain:
# GNU GSL (libgsl-dev) and pkg-config, which SwiftPM uses to find it; python3-venv when
# missing; cmake and a C compiler, which the C-kernel example (examples/c-kernel, ctest) and the
# library-route tests (they compile kernel libraries) need; and the virtualenv .venv-frameworks
# with NumPy and ONNX Runtime (pinned in tools/requirements-frameworks.txt), which the audit
# tests drive through their adapters.
# Idempotent: does nothing that is already done.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
missing=()
dpkg -s libgsl-dev >/dev/null 2>&1 || missing+=(libgsl-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "setup: error: the Swift toolchain is not on PATH" >&2; exit 1; }
if ! "$here/.venv-frameworks/bin/python" -c 'import numpy, onnxruntime, onnx' >/dev/null 2>&1; then
    echo "setup: creating .venv-frameworks with numpy and onnxruntime" >&2
    "$here/tools/setup_frameworks.sh" --only numpy,onnxruntime >/dev/null
fi
