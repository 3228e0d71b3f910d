#!/usr/bin/env bash
# Runs the threaded-kernel and adapter-client tests under ThreadSanitizer and the whole test suite under
# AddressSanitizer with LeakSanitizer (separate build folders, git-ignored).
#   tools/sanitizers.sh [tsan|asan|repro|all]
# Leaks inside the toolchain's Foundation/XCTest are suppressed (tools/lsan-suppressions.txt);
# `repro` builds tools/lsan-repro (no BNSpec code) and shows each of them leaking on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
if [ "$what" = tsan ] || [ "$what" = all ]; then
  echo "== ThreadSanitizer: kernel tests (threaded kernels, 1/2/3 threads) and the adapter client (reader threads)" >&2
  swift test --scratch-path .build-tsan --sanitize=thread --filter "BNKernelsTests|FaultyAdapterTests"
fi
if [ "$what" = asan ] || [ "$what" = all ]; then
  echo "== AddressSanitizer: the test suite" >&2
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" LSAN_OPTIONS="suppressions=$PWD/tools/lsan-suppressions.txt:print_suppressions=1" \
    swift test --scratch-path .build-asan --sanitize=address
fi
if [ "$what" = repro ]; then
  mkdir -p .build-asan
  swiftc -sanitize=address -o .build-asan/lsan-repro tools/lsan-repro/main.swift
  for mode in empty-file process-run readability-handler; do
    echo "== $mode (expect a leak report; no BNSpec code is involved)"
    ASAN_OPTIONS=detect_leaks=1 .build-asan/lsan-repro "$mode" 2>&1 | grep -E 'SUMMARY|readBytesFromFile|ProcessC3run|FileHandleC7monitor' | sort | uniq -c || true
  done
fi
