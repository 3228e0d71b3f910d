#!/usr/bin/env python3
"""Summarises docs/audits/higher-order-*/<variant>.json (tools/audit_higher_order.sh) as Markdown:
per variant and operation, cases passed of those judged in float32 and float64, the causes the
diagnosis named, and the repro line of the first failure of each operation."""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "audits")
OPS = ["hvp-train", "hvp-infer", "d2-train", "d3-train"]
GROUPS = ["numpy", "torch-fused", "torch-primitives", "jax", "flax"]


def cell(results, op, dt):
    rs = [r for r in results if r["case"].startswith(op + ".") and f".{dt}." in r["case"]]
    judged = [r for r in rs if r["status"] != "skipped"]
    if not judged:
        return "skipped" if rs else "—"
    return f"{sum(r['status'] == 'passed' for r in judged)}/{len(judged)}"


print("# Higher-order derivatives: audits\n")
print("Produced by `tools/audit_higher_order.sh` (spec/SPEC.md §12; adapters `tools/adapters/*_higher_order.py`): "
      "each variant is one AD formulation of one BN, audited with `bnspec audit` over the 72 golden cases "
      "of `hvp-train`, `hvp-infer`, `d2-train` and `d3-train`. Cells: cases passed / judged (float32, float64). "
      "The reports beside this file's folders hold every case and a repro line per failure; findings.md explains them.\n")
print("| variant | " + " | ".join(f"{op} f32 | {op} f64" for op in OPS) + " | likely causes named (failures) |")
print("|---|" + "---|" * (2 * len(OPS) + 1))
repros = []
for g in GROUPS:
    d = os.path.join(ROOT, f"higher-order-{g}")
    if not os.path.isdir(d):
        continue
    for f in sorted(x for x in os.listdir(d) if x.endswith(".json")):
        a = json.load(open(os.path.join(d, f)))
        name = f"{g}/{f[:-5]}"
        causes = "; ".join(f"{k} ({v})" for k, v in sorted(a["causes"].items(), key=lambda kv: -kv[1])) or "—"
        cells = " | ".join(f"{cell(a['results'], op, 'f32')} | {cell(a['results'], op, 'f64')}" for op in OPS)
        print(f"| {name} | {cells} | {causes} |")
        for op in OPS:
            first = next((r for r in a["results"] if r["case"].startswith(op + ".") and r["status"] == "failed"), None)
            if first:
                repros.append(f"- {name}, {op}: `{first['repro']}` — {first['detail'][:140]}")
print("\n## First failure per variant and operation\n")
print("\n".join(repros) if repros else "none")
