#!/usr/bin/env bash
# Audits the higher-order derivatives (spec/SPEC.md §12) of NumPy (closed form, the honest
# model), PyTorch (F.batch_norm and BN from primitives) and JAX/Flax in every AD formulation
# their adapters offer, over the golden cases hvp-train, hvp-infer, d2-train, d3-train (float32
# and float64), and writes
#   docs/audits/higher-order-<group>/<variant>.json   the audit report (bnspec audit --json)
#   docs/audits/higher-order-<group>/<variant>.txt    the terminal report, a repro line per failure
#   docs/audits/higher-order/summary.md               every variant per operation and dtype
#
#   tools/audit_higher_order.sh [--python PY] [--bnspec BIN] [--only numpy,torch-fused,torch-primitives,jax,flax]
#
# PY defaults to .venv-frameworks/bin/python (tools/setup_frameworks.sh); BIN to a release build.
# Variants (one adapter process each; 72 cases, about 20 s per variant on one core):
#   numpy              honest (tools/adapters/numpy_higher_order.py; its three bugs are tests, not reports)
#   torch-fused        torch.nn.functional.batch_norm: autograd, func-rev, fwd, fwd-rev, rev-fwd, hessian
#   torch-primitives   the same BN from mean/sub/sqrt/div: the same six formulations
#   jax                BN in jax.numpy (two-pass variance): rev, fwd, fwd-rev, rev-fwd, hessian
#   flax               flax.linen.BatchNorm with its defaults: rev, fwd, fwd-rev, rev-fwd;
#                      and use_fast_variance=False (flax-two-pass): rev, fwd
# (--ad hessian answers hvp ops only: its d2/d3 cases are skipped.)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
py=".venv-frameworks/bin/python"
bnspec=""
only="numpy,torch-fused,torch-primitives,jax,flax"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py="$2"; shift 2 ;;
    --bnspec) bnspec="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "audit_higher_order: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$py" ] || { echo "audit_higher_order: error: no Python at $py (run tools/setup_frameworks.sh or pass --python)" >&2; exit 2; }
if [ -z "$bnspec" ]; then
  swift build -c release --product bnspec >&2
  bnspec="$here/.build/release/bnspec"
fi
torch_ads="autograd func-rev fwd fwd-rev rev-fwd hessian"
declare -A variants=(
  [numpy]="honest=tools/adapters/numpy_higher_order.py"
  [torch-fused]="$(for a in $torch_ads; do printf '%s ' "$a=tools/adapters/torch_higher_order.py --bn fused --ad $a"; done)"
  [torch-primitives]="$(for a in $torch_ads; do printf '%s ' "$a=tools/adapters/torch_higher_order.py --bn primitives --ad $a"; done)"
  [jax]="$(for a in rev fwd fwd-rev rev-fwd hessian; do printf '%s ' "$a=tools/adapters/jax_higher_order.py --bn functional --ad $a"; done)"
  [flax]="$(for a in rev fwd fwd-rev rev-fwd; do printf '%s ' "$a=tools/adapters/jax_higher_order.py --bn flax --ad $a"; done
            for a in rev fwd; do printf '%s ' "two-pass-$a=tools/adapters/jax_higher_order.py --bn flax-two-pass --ad $a"; done)"
)
declare -A profile=([numpy]=pytorch [torch-fused]=pytorch [torch-primitives]=pytorch [jax]=flax [flax]=flax)
IFS=',' read -ra groups <<< "$only"
for g in "${groups[@]}"; do
  [ -n "${variants[$g]:-}" ] || { echo "audit_higher_order: error: unknown group '$g'" >&2; exit 2; }
  out="docs/audits/higher-order-$g"; mkdir -p "$out"
  # Variants are "name=command …" words joined by spaces; split on the names.
  echo "${variants[$g]}" | "$py" -c 'import re,sys; [print(m.group(1) + "\t" + m.group(2).strip()) for m in re.finditer(r"(\S+)=(.*?)(?=\s\S+=|$)", sys.stdin.read().strip())]' |
  while IFS=$'\t' read -r name cmd; do
    echo "== higher-order-$g/$name: $cmd (profile ${profile[$g]})" >&2
    "$bnspec" audit --adapter "$py $cmd" --profile "${profile[$g]}" --match 'hvp-*' --match 'd2-*' --match 'd3-*' \
      --json "$out/$name.json.tmp" > "$out/$name.txt" || true
    mv "$out/$name.json.tmp" "$out/$name.json"
  done
done
"$py" tools/audit_higher_order_summary.py > docs/audits/higher-order/summary.md
echo "wrote docs/audits/higher-order-*/ and docs/audits/higher-order/summary.md" >&2
