#!/usr/bin/env bash
# Determinism across runs, thread counts and builds (issues #7, #14): with the first bnspec binary
# given (default: the debug build), runs `bnspec verify --digest` in separate processes with the
# threaded kernel on 1, 2 and 3 threads, twice for 2 threads, and requires every output bit of every
# golden case to be identical — threaded equal to fused, the reference and fused equal across runs.
# With more binaries (a release and a debug build) it then requires every implementation's digest
# (one full verify each) to be the same from all of them (NaN is canonical, SPEC §6.3).
#   tools/determinism.sh [BNSPEC_BINARY ...]
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then swift build >&2; bins=("$(swift build --show-bin-path)/bnspec"); fi
digests() {  # binary, then verify arguments → "name digest" lines; fails when verify fails
  local bin="$1"; shift
  local out; out="$("$bin" verify --digest "$@")" || { echo "determinism: $bin verify $* failed" >&2; return 1; }
  awk '/^Output digests/{on=1; next} on && NF==0 {on=0} on {print $1, $2}' <<< "$out"
}
declare -A seen
status=0
for bin in "${bins[0]}"; do
  for run in "1" "2" "2" "3"; do
    lines="$(digests "$bin" --implementation reference --implementation fused --implementation threaded --threads "$run")" || exit 1
    while read -r name digest; do
      key="$name"; [ "$name" = threaded ] && key=fused   # threaded must equal fused bit for bit
      if [ -z "${seen[$key]:-}" ]; then seen[$key]="$digest"
      elif [ "${seen[$key]}" != "$digest" ]; then
        echo "determinism: $name with --threads $run ($bin) gives $digest, earlier ${seen[$key]}" >&2
        echo "  repro: $bin verify --implementation $name --threads $run --digest" >&2
        status=1
      fi
    done <<< "$lines"
  done
done
[ ${#seen[@]} -eq 2 ] || { echo "determinism: expected digests for reference and fused, got ${!seen[*]}" >&2; exit 1; }
if [ ${#bins[@]} -gt 1 ]; then  # every implementation, every build
  first="$(digests "${bins[0]}")" || exit 1
  for bin in "${bins[@]:1}"; do
    other="$(digests "$bin")" || exit 1
    if [ "$first" != "$other" ]; then
      echo "determinism: digests differ between ${bins[0]} and $bin:" >&2
      diff <(echo "$first") <(echo "$other") >&2 || true
      status=1
    fi
  done
fi
if [ $status -eq 0 ]; then
  echo "determinism: reference ${seen[reference]:0:16}…, fused = threaded on 1/2/2/3 threads ${seen[fused]:0:16}… (4 runs, identical)"
  [ ${#bins[@]} -gt 1 ] && echo "determinism: all $(wc -l <<< "$first") implementations' digests identical across the ${#bins[@]} builds"
fi
exit $status
