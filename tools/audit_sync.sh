#!/usr/bin/env bash
# Audits and fingerprints synchronized batch normalization (spec/SPEC.md §11) in the shipped
# engines, on CPU with their real collectives, and writes docs/audits/sync-<engine>/:
# audit.json, audit.html, audit.junit.xml, audit.txt (the golden sync- cases, re-targeted at the
# engine's profile) and fingerprint.json (the single-device probes and the `synchronized` ones),
# then docs/audits/README.md (tools/audit_summary.py). The loop is tools/audit_lib.sh's.
#
#   tools/audit_sync.sh [--python PY] [--only numpy,flax,keras,torch,torch-allreduce]
#
# Engines (adapters in tools/adapters/, spec/AUDIT.md §3.1):
#   numpy            numpy_sync_bn.py: the honest float32 Chan merge (the example)
#   flax             flax_sync_bn.py: flax.linen.BatchNorm(axis_name=…) under jax.pmap, 8 host CPU devices
#   keras            keras_sync_bn.py: BatchNormalization(synchronized=True) under MirroredStrategy, 8 logical CPUs
#   torch            torch_gloo_bn.py torch: PyTorch's SyncBatchNorm algorithm over gloo (K processes on 127.0.0.1)
#   torch-allreduce  torch_gloo_bn.py allreduce: an honest two-round all-reduce of shifted sums over gloo
# PY defaults to the virtualenv of tools/setup_frameworks.sh (versions pinned in
# tools/requirements-frameworks.txt; created when missing). Runs on CPU only; not part of CI
# (the NumPy sync adapter and its mutants are checked by Tests/BNAuditTests/MutationScoreTests).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
. tools/audit_lib.sh
tool=audit_sync prefix=sync-
only="numpy,flax,keras,torch,torch-allreduce"
declare -A adapter=(
  [numpy]="tools/adapters/numpy_sync_bn.py" [flax]="tools/adapters/flax_sync_bn.py" [keras]="tools/adapters/keras_sync_bn.py"
  [torch]="tools/adapters/torch_gloo_bn.py torch" [torch-allreduce]="tools/adapters/torch_gloo_bn.py allreduce")
declare -A profile=([numpy]=pytorch [flax]=flax [keras]=keras [torch]=pytorch [torch-allreduce]=pytorch)
export JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES=""
audit_args=(--match sync- --case-timeout 300) fingerprint_args=(--case-timeout 300)
audit_engines "$@"
