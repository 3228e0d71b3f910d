#!/usr/bin/env bash
# Runs the threaded-kernel tests under ThreadSanitizer and the whole test suite under
# AddressSanitizer (separate build folders, git-ignored).
#   tools/sanitizers.sh [tsan|asan|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
if [ "$what" = tsan ] || [ "$what" = all ]; then
  echo "== ThreadSanitizer: kernel tests (threaded kernels, 1/2/3 threads)" >&2
  swift test --scratch-path .build-tsan --sanitize=thread --filter "BNKernelsTests"
fi
if [ "$what" = asan ] || [ "$what" = all ]; then
  echo "== AddressSanitizer: the test suite" >&2
  swift test --scratch-path .build-asan --sanitize=address
fi
