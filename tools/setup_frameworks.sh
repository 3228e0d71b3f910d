#!/usr/bin/env bash
# Creates (or reuses) the virtualenv with the pinned third-party frameworks that the
# adapters in tools/adapters/ and tools/bench_frameworks.py use, and prints its python.
#
#   tools/setup_frameworks.sh [--venv DIR] [--only numpy,onnxruntime]
#
# DIR defaults to .venv-frameworks in the checkout (git-ignored). --only installs the
# named frameworks (numpy, onnxruntime, torch, tensorflow, jax, mlx) and their pins.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv-frameworks"
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "setup_frameworks: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
req="$here/tools/requirements-frameworks.txt"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --upgrade pip >&2
fi
if [ -z "$only" ]; then
  "$venv/bin/pip" install -q -r "$req" >&2
else
  pkgs=()
  IFS=',' read -ra names <<< "$only"
  for n in "${names[@]}"; do
    case "$n" in
      numpy) pkgs+=(numpy) ;;
      onnxruntime) pkgs+=(numpy onnx onnxruntime) ;;
      torch) pkgs+=(numpy torch) ;;
      tensorflow) pkgs+=(numpy tensorflow-cpu keras) ;;
      jax) pkgs+=(numpy "jax\[cpu\]" jaxlib flax) ;;
      mlx) pkgs+=(numpy "mlx\[cpu\]") ;;
      *) echo "setup_frameworks: error: unknown framework '$n'" >&2; exit 2 ;;
    esac
  done
  specs=()
  for p in "${pkgs[@]}"; do specs+=("$(grep -E "^${p}==" "$req")"); done
  "$venv/bin/pip" install -q "${specs[@]}" >&2
fi
echo "$venv/bin/python"
