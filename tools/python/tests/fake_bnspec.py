#!/usr/bin/env python3
"""A stand-in for the bnspec binary (tests of case selection): `audit --help` advertises the
exact-selector form when FAKE_BNSPEC_NEW=1; `audit` appends its argv to $FAKE_BNSPEC_LOG and
writes a report for the cases of --golden's manifest it selects; a case's verdict is the first
word of its id (pass, fail, skip). FAKE_BNSPEC_FAIL and FAKE_BNSPEC_WRITE: see below."""
import json
import os
import sys

args = sys.argv[1:]
if args[:2] == ["audit", "--help"]:
    print("  --case <case>  " + ("Exact case id (repeatable).\n  --match <text>" if os.environ.get("FAKE_BNSPEC_NEW") == "1"
                                 else "Only cases whose id contains this text."))
    sys.exit(0)
with open(os.environ["FAKE_BNSPEC_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
# FAKE_BNSPEC_FAIL: an audit that cannot run, as bnspec reports it (no report written).
if os.environ.get("FAKE_BNSPEC_FAIL") == "usage":
    print("bnspec: error: unknown profile 'bogus' (paper, pytorch, keras, tf-fused, onnx, flax, mlx)", file=sys.stderr)
    sys.exit(64)
if os.environ.get("FAKE_BNSPEC_FAIL") == "start":
    print("bnspec: error: invalid argument: adapter 'x' did not start (adapter exited with status 1)", file=sys.stderr)
    sys.exit(2)
# FAKE_BNSPEC_WRITE: a path a user's file appears at while the audit runs.
if os.environ.get("FAKE_BNSPEC_WRITE"):
    with open(os.environ["FAKE_BNSPEC_WRITE"], "w") as f:
        f.write("written during the audit\n")
opt = lambda k: args[args.index(k) + 1] if k in args else None  # noqa: E731
ids = json.load(open(os.path.join(opt("--golden"), "manifest.json")))["cases"]
cases = [args[i + 1] for i, a in enumerate(args) if a == "--case"]
if os.environ.get("FAKE_BNSPEC_NEW") == "1":
    unknown = [c for c in cases if c not in ids]
    if unknown:
        sys.exit(f"bnspec: error: no golden case named {unknown[0]}")
    sel = [i for i in ids if not cases or i in cases]
else:
    sel = [i for i in ids if not cases or cases[-1] in i]
results = [{"case": c, "family": "f", "status": {"pass": "passed", "fail": "failed", "skip": "skipped"}[c.split(".")[0]],
            "worst_ratio": 1e308 if c.startswith("fail") else 0.5, "detail": f"y[3] = 1.5, expected 1.25, tolerance 0.01 ({c})",
            "likely_cause": "eps added outside the square root" if c.startswith("fail") else None,
            "repro": f"bnspec audit --case {c}", "condition": 1.0} for c in sel]
report = {"implementation": "fake", "version": "1", "profile": opt("--profile"), "tolerance": "t", "causes": {},
          "passed": sum(r["status"] == "passed" for r in results), "failed": sum(r["status"] == "failed" for r in results),
          "skipped": sum(r["status"] == "skipped" for r in results), "results": results, "future_key": "kept in extra"}
with open(opt("--json"), "w") as f:
    json.dump(report, f)
# As bnspec: 1 when a case failed; 2 when no case was checked (the report still written).
sys.exit(1 if report["failed"] else (2 if report["passed"] == 0 else 0))
