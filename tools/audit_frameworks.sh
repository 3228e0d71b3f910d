#!/usr/bin/env bash
# Audits and fingerprints every shipped framework adapter and writes docs/audits/:
#   <framework>/audit.json, audit.html, audit.junit.xml, fingerprint.json, and
#   docs/audits/README.md (the summary the top-level README quotes).
#
#   tools/audit_frameworks.sh [--python PY] [--only numpy,onnxruntime,...]
#
# PY defaults to the virtualenv of tools/setup_frameworks.sh (created when missing).
# Optionally renders each HTML report to PNG with headless Chromium (when installed).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
py=""
only="numpy,onnxruntime,torch,keras,tf-fused,flax,mlx"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "audit_frameworks: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$py" ] || py="$(tools/setup_frameworks.sh)"
swift build -c release --product bnspec >&2
bnspec="$here/.build/release/bnspec"
declare -A adapter=(
  [numpy]="tools/adapters/numpy_bn.py" [onnxruntime]="tools/adapters/onnxruntime_bn.py" [torch]="tools/adapters/torch_bn.py"
  [keras]="tools/adapters/tensorflow_bn.py keras" [tf-fused]="tools/adapters/tensorflow_bn.py fused"
  [flax]="tools/adapters/flax_bn.py" [mlx]="tools/adapters/mlx_bn.py")
declare -A profile=([numpy]=pytorch [onnxruntime]=onnx [torch]=pytorch [keras]=keras [tf-fused]=tf-fused [flax]=flax [mlx]=mlx)
IFS=',' read -ra names <<< "$only"
for n in "${names[@]}"; do
  [ -n "${adapter[$n]:-}" ] || { echo "audit_frameworks: error: unknown framework '$n'" >&2; exit 2; }
  out="docs/audits/$n"; mkdir -p "$out"
  echo "== $n (profile ${profile[$n]})" >&2
  "$bnspec" audit --adapter "$py ${adapter[$n]}" --profile "${profile[$n]}" \
    --json "$out/audit.json" --html "$out/audit.html" --junit "$out/audit.junit.xml" > "$out/audit.txt" || true
  "$bnspec" fingerprint --adapter "$py ${adapter[$n]}" --json > "$out/fingerprint.json.tmp" && mv "$out/fingerprint.json.tmp" "$out/fingerprint.json"
  bash tools/audit_screenshot.sh "$out"
done
python3 tools/audit_summary.py > docs/audits/README.md
echo "wrote docs/audits/" >&2
