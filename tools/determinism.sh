#!/usr/bin/env bash
# Determinism across runs, thread counts, instruction sets and builds (issues #7, #14, #20): with the
# first bnspec binary given (default: the debug build), runs `bnspec verify --digest` in separate
# processes with the threaded kernel on 1, 2 and 3 threads, twice for 2 threads, and with the
# kernels' passes forced to each instruction-set level (BNSPEC_CPU=baseline, avx2, avx512; a level
# the CPU lacks runs as the best it has), and requires every output bit of every golden case to be
# identical — threaded equal to fused, every kernel equal across runs and levels. With more
# binaries (a release and a debug build) it then requires every implementation's digest (a full
# verify each, its cases cut into one shard per core run at once) to be the same from all of them,
# shard by shard (NaN is canonical, SPEC §6.3).
#   tools/determinism.sh [BNSPEC_BINARY ...]
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then swift build >&2; bins=("$(swift build --show-bin-path)/bnspec"); fi
bin="${bins[0]}"
kernels=(--implementation fused --implementation threaded --implementation fused-float16 --implementation fused-bfloat16)
digests() {  # BNSPEC_CPU, binary, then verify arguments → "name digest" lines; fails when verify fails
  local cpu="$1" b="$2"; shift 2
  local out; out="$(BNSPEC_CPU="$cpu" "$b" verify --digest "$@")" || { echo "determinism: BNSPEC_CPU=$cpu $b verify $* failed" >&2; return 1; }
  awk '/^Output digests/{on=1; next} on && NF==0 {on=0} on {print $1, $2}' <<< "$out"
}
declare -A seen
status=0
for run in native:1:reference native:2:reference native:2:reference native:3:reference baseline:2 avx2:2 avx512:2; do
  IFS=: read -r cpu threads ref <<< "$run"
  extra=(); [ "$ref" = reference ] && extra=(--implementation reference)
  lines="$(digests "$cpu" "$bin" "${extra[@]}" "${kernels[@]}" --threads "$threads")" || exit 1
  while read -r name digest; do
    key="$name"; [ "$name" = threaded ] && key=fused   # threaded must equal fused bit for bit
    if [ -z "${seen[$key]:-}" ]; then seen[$key]="$digest"
    elif [ "${seen[$key]}" != "$digest" ]; then
      echo "determinism: $name with BNSPEC_CPU=$cpu --threads $threads gives $digest, earlier ${seen[$key]}" >&2
      echo "  repro: BNSPEC_CPU=$cpu $bin verify --implementation $name --threads $threads --digest" >&2
      status=1
    fi
  done <<< "$lines"
done
[ ${#seen[@]} -eq 4 ] || { echo "determinism: expected digests for reference, fused, fused-float16, fused-bfloat16; got ${!seen[*]}" >&2; exit 1; }
# Every implementation's digests from binary $1, the cases cut into one shard per core run at once
# (a debug build's verify is single-threaded): "K/N name digest" lines, shard by shard.
all_digests() {
  local b="$1" n dir k ok=1; n="$(nproc)"; dir="$(mktemp -d)"; local pids=()
  for k in $(seq 1 "$n"); do digests native "$b" --shard "$k/$n" > "$dir/$k" & pids+=($!); done
  for k in $(seq 1 "$n"); do wait "${pids[$((k - 1))]}" || ok=0; done
  [ $ok = 1 ] && for k in $(seq 1 "$n"); do sed "s|^|$k/$n |" "$dir/$k"; done
  rm -rf "$dir"; [ $ok = 1 ]
}
if [ ${#bins[@]} -gt 1 ]; then  # every implementation, every build
  first="$(all_digests "${bins[0]}")" || exit 1
  for b in "${bins[@]:1}"; do
    other="$(all_digests "$b")" || exit 1
    if [ "$first" != "$other" ]; then
      echo "determinism: digests differ between ${bins[0]} and $b:" >&2
      diff <(echo "$first") <(echo "$other") >&2 || true
      status=1
    fi
  done
fi
if [ $status -eq 0 ]; then
  echo "determinism: reference ${seen[reference]:0:16}…, fused = threaded ${seen[fused]:0:16}…, fused-float16 ${seen[fused-float16]:0:16}…, fused-bfloat16 ${seen[fused-bfloat16]:0:16}… on 1/2/2/3 threads and the baseline/avx2/avx512 levels (7 runs, identical)"
  [ ${#bins[@]} -gt 1 ] && echo "determinism: all $(awk '{print $2}' <<< "$first" | sort -u | wc -l) implementations' digests ($(wc -l <<< "$first") shard digests) identical across the ${#bins[@]} builds"
fi
exit $status
