#!/usr/bin/env bash
# Determinism across runs, thread counts and instruction sets (issues #7, 20): runs
# `bnspec verify --digest` in separate processes with the threaded kernel on 1, 2 and 3
# threads, twice for 2 threads, and with the kernels' passes forced to each instruction-set
# level (BNSPEC_CPU=baseline, avx2, avx512; a level the CPU lacks runs as the best it has),
# and requires every output bit of every golden case to be identical — threaded equal to
# fused, every kernel equal across runs and levels.
#   tools/determinism.sh [BNSPEC_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
if [ -z "$bin" ]; then swift build >&2; bin="$(swift build --show-bin-path)/bnspec"; fi
kernels=(--implementation fused --implementation threaded --implementation fused-float16 --implementation fused-bfloat16)
digests() {  # BNSPEC_CPU threads [reference] → "name digest" lines (the reference does not depend on the level)
  local extra=(); [ "${3:-}" = reference ] && extra=(--implementation reference)
  BNSPEC_CPU="$1" "$bin" verify "${extra[@]}" "${kernels[@]}" --threads "$2" --digest \
    | awk '/^Output digests/{on=1; next} on && NF==0 {on=0} on {print $1, $2}'
}
declare -A seen
status=0
for run in native:1:reference native:2:reference native:2:reference native:3:reference baseline:2 avx2:2 avx512:2; do
  IFS=: read -r cpu threads ref <<< "$run"
  while read -r name digest; do
    key="$name"; [ "$name" = threaded ] && key=fused   # threaded must equal fused bit for bit
    if [ -z "${seen[$key]:-}" ]; then seen[$key]="$digest"
    elif [ "${seen[$key]}" != "$digest" ]; then
      echo "determinism: $name with BNSPEC_CPU=$cpu --threads $threads gives $digest, earlier ${seen[$key]}" >&2
      echo "  repro: BNSPEC_CPU=$cpu $bin verify --implementation $name --threads $threads --digest" >&2
      status=1
    fi
  done < <(digests "$cpu" "$threads" "$ref")
done
[ ${#seen[@]} -eq 4 ] || { echo "determinism: expected digests for reference, fused, fused-float16, fused-bfloat16; got ${!seen[*]}" >&2; exit 1; }
[ $status -eq 0 ] && echo "determinism: reference ${seen[reference]:0:16}…, fused = threaded ${seen[fused]:0:16}…, fused-float16 ${seen[fused-float16]:0:16}…, fused-bfloat16 ${seen[fused-bfloat16]:0:16}… on 1/2/2/3 threads and the baseline/avx2/avx512 levels (7 runs, identical)"
exit $status
