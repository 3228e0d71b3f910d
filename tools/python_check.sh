#!/usr/bin/env bash
# The bnspec Python package as a user gets it (CI step): a fresh virtualenv, `pip install
# ./tools/python` (NumPy and pytest from PyPI, pinned), the package's tests, and the pytest
# example of the README — the honest BN must pass with one test per golden case, the buggy one
# must fail, naming the one-pass variance and printing repro lines.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product bnspec >&2
export BNSPEC="${BNSPEC:-$(swift build --show-bin-path)/bnspec}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check ./tools/python numpy==2.4.6 pytest==9.0.3
rm -rf tools/python/build tools/python/bnspec.egg-info   # setuptools' in-tree leftovers
cases="$("$py" -c 'import json; print(len(json.load(open("golden/manifest.json"))["cases"]))')"

"$py" -m pytest tools/python/tests -q -p no:cacheprovider

"$py" -m pytest examples/pytest/test_my_bn.py -q -p no:cacheprovider > "$work/honest.txt" || { cat "$work/honest.txt"; exit 1; }
tail -n 2 "$work/honest.txt"
"$py" - "$work/honest.txt" "$cases" <<'PY'
import re, sys
last = open(sys.argv[1]).read().strip().splitlines()[-1]
counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", last)}
assert counts.get("failed", 0) == 0 and counts.get("passed", 0) + counts.get("skipped", 0) == int(sys.argv[2]), \
    f"python_check: error: honest example: {last!r}, expected {sys.argv[2]} items, none failed"
PY

set +e
"$py" -m pytest examples/pytest/test_buggy_bn.py -q -p no:cacheprovider > "$work/buggy.txt"
rc=$?
set -e
tail -n 1 "$work/buggy.txt"
grep -q "^  likely cause:  .*E\[x²\] − E\[x\]²" "$work/buggy.txt" && grep -q "^  repro: bnspec audit --adapter .* --case " "$work/buggy.txt" \
  && [ "$rc" -eq 1 ] || { cat "$work/buggy.txt"; echo "python_check: error: the buggy example must fail (exit 1, was $rc) naming its cause" >&2; exit 1; }
echo "python_check: package tests pass; honest example passes ($cases items); buggy example fails with its cause"
