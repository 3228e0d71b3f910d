#!/usr/bin/env bash
# Builds and runs tools/bounds.c: the memory and arithmetic bounds of this machine for
# the goals of `bnspec bench`, as ratios to memcpy in the same run (see the header of
# bounds.c). Needs clang (the Swift toolchain's); the kernels' passes are compiled in
# from Sources/CBNKernels.
#   tools/bounds.sh [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
cc="$(command -v clang || true)"
[ -n "$cc" ] || { echo "bounds: error: clang not found (it comes with the Swift toolchain)" >&2; exit 1; }
mkdir -p .build
"$cc" -O2 -std=gnu11 -ISources/CBNKernels/include tools/bounds.c Sources/CBNKernels/*.c -lm -lpthread -o .build/bounds
exec .build/bounds "$@"
