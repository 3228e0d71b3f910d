#!/usr/bin/env bash
# Audits and fingerprints synchronized batch normalization (spec/SPEC.md §11) in the shipped
# engines, on CPU with their real collectives, and writes docs/audits/sync-<engine>/:
# audit.json, audit.html, audit.junit.xml, audit.txt (the golden sync- cases, re-targeted at the
# engine's profile) and fingerprint.json (the single-device probes and the `synchronized` ones),
# then docs/audits/README.md (tools/audit_summary.py).
#
#   tools/audit_sync.sh [--python PY] [--only numpy,flax,keras,torch,torch-allreduce]
#
# Engines (adapters in tools/adapters/, spec/AUDIT.md §3.1):
#   numpy            numpy_sync_bn.py: the honest float32 Chan merge (the example; CI audits it)
#   flax             flax_sync_bn.py: flax.linen.BatchNorm(axis_name=…) under jax.pmap, 8 host CPU devices
#   keras            keras_sync_bn.py: BatchNormalization(synchronized=True) under MirroredStrategy, 8 logical CPUs
#   torch            torch_gloo_bn.py torch: PyTorch's SyncBatchNorm algorithm over gloo (K processes on 127.0.0.1)
#   torch-allreduce  torch_gloo_bn.py allreduce: an honest two-round all-reduce of shifted sums over gloo
# PY defaults to the virtualenv of tools/setup_frameworks.sh (versions pinned in
# tools/requirements-frameworks.txt; created when missing). Runs on CPU only.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
py=""
only="numpy,flax,keras,torch,torch-allreduce"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "audit_sync: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$py" ] || py="$(tools/setup_frameworks.sh)"
swift build -c release --product bnspec >&2
bnspec="$here/.build/release/bnspec"
declare -A adapter=(
  [numpy]="tools/adapters/numpy_sync_bn.py" [flax]="tools/adapters/flax_sync_bn.py" [keras]="tools/adapters/keras_sync_bn.py"
  [torch]="tools/adapters/torch_gloo_bn.py torch" [torch-allreduce]="tools/adapters/torch_gloo_bn.py allreduce")
declare -A profile=([numpy]=pytorch [flax]=flax [keras]=keras [torch]=pytorch [torch-allreduce]=pytorch)
IFS=',' read -ra names <<< "$only"
for n in "${names[@]}"; do
  [ -n "${adapter[$n]:-}" ] || { echo "audit_sync: error: unknown engine '$n'" >&2; exit 2; }
done
export JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES=""
for n in "${names[@]}"; do
  out="docs/audits/sync-$n"; mkdir -p "$out"
  echo "== sync-$n (profile ${profile[$n]})" >&2
  "$bnspec" audit --adapter "$py ${adapter[$n]}" --profile "${profile[$n]}" --match sync- --case-timeout 300 \
    --json "$out/audit.json" --html "$out/audit.html" --junit "$out/audit.junit.xml" > "$out/audit.txt" || true
  "$bnspec" fingerprint --adapter "$py ${adapter[$n]}" --case-timeout 300 --json > "$out/fingerprint.json.tmp" \
    && mv "$out/fingerprint.json.tmp" "$out/fingerprint.json"
  bash tools/audit_screenshot.sh "$out"
done
python3 tools/audit_summary.py > docs/audits/README.md
echo "wrote docs/audits/sync-*" >&2
