#!/usr/bin/env bash
# Runs the libFuzzer targets of tools/fuzz (NPY reader, catalog parser, case/manifest JSON,
# adapter reply parser) with AddressSanitizer, seeded from golden/ and spec/.
#
#   tools/fuzz.sh [RUNS] [TARGET ...]   (default 1000000 executions, all four targets)
#   FUZZ_BUILD=debug tools/fuzz.sh 20000  (a smoke run: the debug build of the targets, with the
#                                          same sanitizers and Swift's debug-only assertions,
#                                          builds in less than half the time; CI uses it)
#
# The catalog target is seeded line by line and limited to 1 KiB inputs (a whole catalog
# expands to hundreds of cases, ~900 executions/s); the others take inputs up to 4 KiB.
# Prints executions and crashes per target; a crashing input is kept in
# Tests/Fixtures/fuzz-crashes/<target>/ (commit it as a regression input).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-1000000}"; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(fuzz-npy fuzz-catalog fuzz-json fuzz-adapter-reply)
config="${FUZZ_BUILD:-release}"
case "$config" in debug|release) ;; *) echo "fuzz.sh: FUZZ_BUILD must be debug or release, not '$config'" >&2; exit 2 ;; esac
cd "$here/tools/fuzz"
swift build -c "$config" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >&2
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
seed() { mkdir -p "$work/$1"; }
set +o pipefail  # `find | head` ends find with SIGPIPE
seed fuzz-npy; seed fuzz-catalog; seed fuzz-json; seed fuzz-adapter-reply
find "$here/golden" -name '*.npy' | head -300 | while read -r f; do cp "$f" "$work/fuzz-npy/$(echo "$f" | md5sum | cut -c1-16)"; done
find "$here/golden" -name 'case.json' | head -100 | while read -r f; do cp "$f" "$work/fuzz-json/$(echo "$f" | md5sum | cut -c1-16)"; done
cp "$here/golden/manifest.json" "$work/fuzz-json/manifest"
cp "$here/spec/catalog.txt" "$work/fuzz-catalog/catalog"
grep -v '^#' "$here/spec/catalog.txt" | grep . | while read -r line; do printf '%s\n' "$line" > "$work/fuzz-catalog/$(echo "$line" | md5sum | cut -c1-16)"; done
printf '{"type":"result","id":"case-1","outputs":{"y":"/tmp/y.npy"}}' > "$work/fuzz-adapter-reply/result"
printf '{"type":"error","id":"case-1","message":"refused"}' > "$work/fuzz-adapter-reply/error"
printf '{"type":"unsupported","id":"case-1","message":"dtype"}' > "$work/fuzz-adapter-reply/unsupported"
printf '{"type":"result","id":"case-0","outputs":{"y":"/tmp/../tmp/y.npy"}}' > "$work/fuzz-adapter-reply/late"
printf '{"type":"result","outputs":{"y":"y.npy"}}' > "$work/fuzz-adapter-reply/no-id"
printf '{"type":"error","id":"case-2","message":"\\u001b[2J\\u0000"}' > "$work/fuzz-adapter-reply/second"
cp "$here/Tests/Fixtures/bad-inputs/"manifest-*.json "$work/fuzz-json/"
set -o pipefail
status=0
for t in "${targets[@]}"; do
  case "$t" in fuzz-catalog) maxlen=1024 ;; fuzz-npy|fuzz-json|fuzz-adapter-reply) maxlen=4096 ;; *) echo "fuzz.sh: unknown target '$t'" >&2; exit 2 ;; esac
  crashes="$here/Tests/Fixtures/fuzz-crashes/$t"; mkdir -p "$crashes"
  log="$work/$t.log"
  if .build/$config/$t -runs="$runs" -max_len="$maxlen" -artifact_prefix="$crashes/" "$work/$t" > "$log" 2>&1; then r=ok; else r=CRASH; status=1; tail -40 "$log" >&2; fi
  execs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  secs=$(grep -o 'runs in [0-9]* second' "$log" | grep -o '[0-9]*' || echo "?")
  echo "$t: $r, executions ${execs} in ${secs} s, coverage ${cov}, crashes $(find "$crashes" -type f | wc -l)"
done
exit $status
