#!/usr/bin/env python3
"""Summarises docs/audits/*/audit.json and fingerprint.json as Markdown (docs/audits/README.md)."""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "audits")
rows, fps = [], []
for name in sorted(os.listdir(ROOT)):
    d = os.path.join(ROOT, name)
    if not os.path.isdir(d) or not os.path.exists(os.path.join(d, "audit.json")):
        continue
    a = json.load(open(os.path.join(d, "audit.json")))
    causes = "; ".join(f"{k} ({v})" for k, v in sorted(a["causes"].items(), key=lambda kv: -kv[1])) or "—"
    rows.append(f"| {name} | {a['version']} | {a['profile']} | {a['passed']} | {a['failed']} | {a['skipped']} | {causes} |")
    fp = os.path.join(d, "fingerprint.json")
    if os.path.exists(fp):
        f = json.load(open(fp))
        v = lambda k: f[k]["value"]  # noqa: E731
        fps.append(f"| {name} | {v('momentum_weights')} | {v('momentum')} | {v('eps')} | {v('running_variance')} | {v('eps_placement')} | "
                   f"{v('single_value_per_channel')} | {v('fp16_statistics')} | {v('inference_form')} | {v('variance_algorithm')} | "
                   f"{v('closest_profile')} |")
print("# Framework audits\n")
print("Produced by `tools/audit_frameworks.sh` (adapters in `tools/adapters/`, versions pinned in "
      "`tools/requirements-frameworks.txt`) and, for oneDNN (Debian's libdnnl-dev behind the C kernel ABI, "
      "`examples/onednn/`), `tools/audit_onednn.sh`. Each folder holds `audit.json`, `audit.html` (plots), `audit.junit.xml`, "
      "`audit.txt` (the terminal report with repro lines) and `fingerprint.json` (with the evidence of every finding).\n")
print("## Audits (golden suite re-targeted at the framework's own profile; tolerance model bnspec-tolerance-1)\n")
print("| framework | version | profile | passed | failed | skipped | likely causes of failures (cases) |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
print("\n## Fingerprints (black-box, framework defaults)\n")
print("| framework | momentum weights | momentum | eps | running variance | eps placement | one value per channel | fp16 statistics | "
      "inference form | variance algorithm | closest profile |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(fps))
