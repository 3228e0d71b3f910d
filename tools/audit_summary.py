#!/usr/bin/env python3
"""Summarises docs/audits/*/audit.json and fingerprint.json as Markdown (docs/audits/README.md)."""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "audits")
rows, fps, sync_rows, sync_fps = [], [], [], []
models = set()
for name in sorted(os.listdir(ROOT)):
    d = os.path.join(ROOT, name)
    if not os.path.isdir(d) or not os.path.exists(os.path.join(d, "audit.json")):
        continue
    a = json.load(open(os.path.join(d, "audit.json")))
    models.add(a.get("tolerance", "?"))
    causes = "; ".join(f"{k} ({v})" for k, v in sorted(a["causes"].items(), key=lambda kv: -kv[1])) or "—"
    synchronized = name.startswith("sync-")  # tools/audit_sync.sh: the sync- cases only
    growth = (a.get("variance_growth") or {}).get("algorithm", "—")
    (sync_rows if synchronized else rows).append(
        f"| {name} | {a['version']} | {a['profile']} | {a['passed']} | {a['failed']} | {a['skipped']} | "
        + (f"{growth} | " if synchronized else "") + f"{causes} |")
    fp = os.path.join(d, "fingerprint.json")
    if os.path.exists(fp) and synchronized:
        s = json.load(open(fp)).get("synchronized")
        if s:
            sync_fps.append(f"| {name} | " + " | ".join(str(s[k]["value"]) for k in ("count_weighting", "variance_algorithm", "bessel_n",
                                                                              "gradient_reduction", "eps", "variance_exchange")) + " |")
    elif os.path.exists(fp):
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
print(f"## Audits (golden suite re-targeted at the framework's own profile; tolerance model {', '.join(sorted(models))})\n")
print("| framework | version | profile | passed | failed | skipped | likely causes of failures (cases) |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
print("\n## Fingerprints (black-box, framework defaults)\n")
print("| framework | momentum weights | momentum | eps | running variance | eps placement | one value per channel | fp16 statistics | "
      "inference form | variance algorithm | closest profile |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(fps))
if sync_rows:
    print("\n## Synchronized BN (tools/audit_sync.sh: the golden sync- cases, spec/SPEC.md §11; engines on CPU with their real "
          "collectives: JAX pmap over host devices, MirroredStrategy over logical CPUs, torch over gloo)\n")
    print("| engine | version | profile | passed | failed | skipped | variance growth (audit-wide κ fit) | likely causes of failures (cases) |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(sync_rows))
    print("\n| engine | count weighting | variance algorithm | Bessel n | dγ/dβ reduction | eps | variance exchange |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(sync_fps))
