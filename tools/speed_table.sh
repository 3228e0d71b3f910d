#!/usr/bin/env bash
# The README's speed tables, from one session on a quiet machine: the machine's bounds
# (tools/bounds.sh), other frameworks (tools/bench_frameworks.py, 1 thread) and
# `bnspec bench --rounds 3` (with both, so its goals carry the ONNX Runtime comparison and the
# bounds), then the markdown (tools/speed_table.py). The JSON files stay in DIR.
#   tools/speed_table.sh [DIR]        (default .build/speed)
# Ratios taken with a load average above ~1.5 on a 2-core machine are disturbed by other
# work; the script prints the load and bnspec bench records it.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build/speed}"
py=.venv-frameworks/bin/python
[ -x "$py" ] || { echo "speed_table: error: $py missing (run tools/setup_frameworks.sh)" >&2; exit 1; }
mkdir -p "$out"
echo "speed_table: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
swift build -c release >&2
tools/bounds.sh --json > "$out/bounds.json"
OMP_NUM_THREADS=1 "$py" tools/bench_frameworks.py --json > "$out/peers.json"
"$(swift build -c release --show-bin-path)/bnspec" bench --json --rounds 3 --peers "$out/peers.json" --bounds "$out/bounds.json" > "$out/bench.json"
echo "speed_table: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 tools/speed_table.py "$out"
