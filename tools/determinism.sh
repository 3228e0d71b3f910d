#!/usr/bin/env bash
# Determinism across runs and thread counts (issue #7): runs `bnspec verify --digest` in
# separate processes with the threaded kernel on 1, 2 and 3 threads, twice for 2 threads,
# and requires every output bit of every golden case to be identical — threaded equal to
# fused, the reference and fused equal across runs.
#   tools/determinism.sh [BNSPEC_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
if [ -z "$bin" ]; then swift build >&2; bin="$(swift build --show-bin-path)/bnspec"; fi
digests() {  # threads → "name digest" lines
  "$bin" verify --implementation reference --implementation fused --implementation threaded --threads "$1" --digest \
    | awk '/^Output digests/{on=1; next} on && NF==0 {on=0} on {print $1, $2}'
}
declare -A seen
status=0
for run in "1" "2" "2" "3"; do
  while read -r name digest; do
    key="$name"; [ "$name" = threaded ] && key=fused   # threaded must equal fused bit for bit
    if [ -z "${seen[$key]:-}" ]; then seen[$key]="$digest"
    elif [ "${seen[$key]}" != "$digest" ]; then
      echo "determinism: $name with --threads $run gives $digest, earlier ${seen[$key]}" >&2
      echo "  repro: $bin verify --implementation $name --threads $run --digest" >&2
      status=1
    fi
  done < <(digests "$run")
done
[ ${#seen[@]} -eq 2 ] || { echo "determinism: expected digests for reference and fused, got ${!seen[*]}" >&2; exit 1; }
[ $status -eq 0 ] && echo "determinism: reference ${seen[reference]:0:16}…, fused = threaded on 1/2/2/3 threads ${seen[fused]:0:16}… (4 runs, identical)"
exit $status
