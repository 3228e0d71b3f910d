#!/usr/bin/env bash
# Audits and fingerprints every shipped framework adapter and writes docs/audits/:
#   <framework>/audit.json, audit.html, audit.junit.xml, fingerprint.json, and
#   docs/audits/README.md (the summary the top-level README quotes).
#
#   tools/audit_frameworks.sh [--python PY] [--only numpy,onnxruntime,...]
#
# PY defaults to the virtualenv of tools/setup_frameworks.sh (created when missing).
# Optionally renders each HTML report to PNG with headless Chromium (when installed).
# The loop is tools/audit_lib.sh's (shared with tools/audit_sync.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
. tools/audit_lib.sh
tool=audit_frameworks prefix=""
only="numpy,onnxruntime,torch,keras,tf-fused,flax,mlx"
declare -A adapter=(
  [numpy]="tools/adapters/numpy_bn.py" [onnxruntime]="tools/adapters/onnxruntime_bn.py" [torch]="tools/adapters/torch_bn.py"
  [keras]="tools/adapters/tensorflow_bn.py keras" [tf-fused]="tools/adapters/tensorflow_bn.py fused"
  [flax]="tools/adapters/flax_bn.py" [mlx]="tools/adapters/mlx_bn.py")
declare -A profile=([numpy]=pytorch [onnxruntime]=onnx [torch]=pytorch [keras]=keras [tf-fused]=tf-fused [flax]=flax [mlx]=mlx)
audit_args=() fingerprint_args=()
audit_engines "$@"
