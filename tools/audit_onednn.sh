#!/usr/bin/env bash
# Audits and fingerprints oneDNN's batch normalization (Debian's libdnnl-dev, oneDNN 2.6) through
# the C kernel ABI (examples/onednn, spec/AUDIT.md §7) and writes docs/audits/onednn/:
#   audit.txt, audit.json, audit.html, audit.junit.xml (profile onnx), fingerprint.json,
#   threads.txt (the same audit at OMP_NUM_THREADS=1 and 4: verdicts and worst errors compared),
#   implementations.txt (which oneDNN implementation ran, from ONEDNN_VERBOSE, for ten cases),
# then regenerates docs/audits/README.md.
#
#   tools/audit_onednn.sh
#
# Installs libdnnl-dev, cmake and g++ when missing (with sudo when not root). The committed report
# runs oneDNN on one OpenMP thread (OMP_NUM_THREADS=1): its results depend on the thread count
# (threads.txt), so one thread makes the figures reproducible on any machine; the CPU ISA oneDNN
# dispatched to is part of the version string in the report.
#
# Profile: oneDNN keeps no running statistics (a framework does), so only y, the batch statistics
# and the gradients are judged, and training on one value per channel is well defined (y = β). The
# onnx profile (y = β there) is used; under pytorch the 14 single-value cases fail only because
# PyTorch refuses them for its unbiased running variance, which oneDNN does not keep.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
missing=()
dpkg -s libdnnl-dev >/dev/null 2>&1 || missing+=(libdnnl-dev)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if ((${#missing[@]})); then
  echo "audit_onednn: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
swift build -c release --product bnspec >&2
bnspec="$here/.build/release/bnspec"
cmake -S examples/onednn -B .build-onednn -DCMAKE_BUILD_TYPE=Release >&2
cmake --build .build-onednn >&2
lib="$here/.build-onednn/libbnspec_onednn.so"
out="docs/audits/onednn"; mkdir -p "$out"
export OMP_NUM_THREADS=1
"$bnspec" audit --library "$lib" --profile onnx \
  --json "$out/audit.json" --html "$out/audit.html" --junit "$out/audit.junit.xml" > "$out/audit.txt" || true
"$bnspec" fingerprint --library "$lib" --json > "$out/fingerprint.json.tmp" && mv "$out/fingerprint.json.tmp" "$out/fingerprint.json"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
export TMPDIR_ONEDNN="$tmp"
OMP_NUM_THREADS=4 "$bnspec" audit --library "$lib" --profile onnx --json "$tmp/threads4.json" > /dev/null || true
python3 - "$out/audit.json" "$tmp/threads4.json" > "$out/threads.txt" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ra, rb = {r["case"]: r for r in a["results"]}, {r["case"]: r for r in b["results"]}
verdicts = [c for c in ra if ra[c]["status"] != rb[c]["status"]]
moved = sorted((c for c in ra if ra[c]["worst_ratio"] != rb[c]["worst_ratio"]), key=lambda c: -abs(ra[c]["worst_ratio"] - rb[c]["worst_ratio"]))
print(f"oneDNN at OMP_NUM_THREADS=1 ({a['version']}) and 4 ({b['version']}), profile {a['profile']}:")
print(f"verdicts that differ: {len(verdicts)} of {len(ra)}" + (": " + ", ".join(verdicts) if verdicts else ""))
print(f"cases whose worst error ÷ tolerance differs (the outputs differ): {len(moved)} of {len(ra)}")
for c in moved[:10]:
    print(f"  {c}: {ra[c]['worst_ratio']:.4g} (1 thread) vs {rb[c]['worst_ratio']:.4g} (4 threads)")
PY
# Which oneDNN implementation ran (ONEDNN_VERBOSE), for a few cases of each op, dtype and layout.
python3 - "$bnspec" "$lib" > "$out/implementations.txt" <<'PY'
import json, os, subprocess, sys
bnspec, lib = sys.argv[1:3]
ids = ["train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1", "train.normal.4x3x5x5.NHWC.f32.pytorch.eps1e-05.m0.1",
       "train.normal.2x64x14x14.NCHW.f32.pytorch.eps1e-05.m0.1", "train.normal.2x64x14x14.NHWC.f32.pytorch.eps1e-05.m0.1",
       "train.normal.4x3x5x5.NCHW.bf16.pytorch.eps1e-05.m0.1", "train.normal.4x3x5x5.NHWC.bf16.pytorch.eps1e-05.m0.1",
       "train.normal.16x10.NC.f32.pytorch.eps1e-05.m0.1", "infer.normal.2x64x14x14.NHWC.f32.pytorch.eps1e-05.m0.1",
       "backward-train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1", "backward-infer.normal.4x3x5x5.NHWC.f32.pytorch.eps1e-05.m0.1"]
print("oneDNN implementation per primitive (ONEDNN_VERBOSE=1, OMP_NUM_THREADS=1), through bnspec library-host:")
for cid in ids:
    d = os.path.join("golden", cid)
    c = json.load(open(os.path.join(d, "case.json")))
    req = {"type": "case", "id": cid, "op": c["op"], "shape": c["shape"], "layout": c["layout"], "dtype": c["dtype"],
           "eps": c["eps"], "inputs": {k: os.path.abspath(os.path.join(d, f)) for k, f in c["inputs"].items()},
           "output_dir": os.path.abspath(os.path.join(os.environ["TMPDIR_ONEDNN"], cid))}
    p = subprocess.run([bnspec, "library-host", lib], input=json.dumps(req) + "\n", capture_output=True, text=True,
                       env=dict(os.environ, ONEDNN_VERBOSE="1"))
    impls = [",".join(l.split(",")[3:6]) for l in p.stderr.splitlines() if l.startswith("onednn_verbose,exec,")]
    print(f"  {cid}: " + "; ".join(impls))
PY
bash tools/audit_screenshot.sh "$out"
python3 tools/audit_summary.py > docs/audits/README.md
echo "wrote $out/" >&2
