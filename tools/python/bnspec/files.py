"""Running an adapter over request files, without the bnspec binary: every case folder of a golden
folder (golden/<case>/request.json, the request under the case's own profile) or of a `bnspec
export` (<out>/<case>/request.json, under the exported profile) is computed in this process and
its outputs written as `bnspec audit --results` and `python -m bnspec.check` read them:
RESULTS/<case id>/<out>.npy, or RESULTS/<case id>/error.txt when the implementation refuses the case.

    results = bnspec.run_requests(MyBN(), "golden", "/tmp/results")
    failures = [r for r in bnspec.check_results("golden", "/tmp/results") if not r.passed]
"""
from __future__ import annotations

import json
import os
from typing import Dict, Iterable, Optional

from .adapter import Adapter, Unsupported, handle


def case_ids(folder: str):
    """The case ids of a golden folder (manifest.json) or an export (export.json), in their order."""
    for name in ("manifest.json", "export.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return list(json.load(f)["cases"])
    raise FileNotFoundError(f"{folder}: not a golden or export folder (neither manifest.json nor export.json in it)")


def run_requests(adapter: Adapter, folder: str, results: str, cases: Optional[Iterable[str]] = None) -> Dict[str, str]:
    """Computes each case of `folder` (all, or the ids in `cases`) with `adapter` and writes its
    outputs under `results`. Returns {case id: "outputs" | "refused" | "unsupported"}; a case the
    adapter does not support (``Unsupported``) gets no results folder, as in an audit it is skipped."""
    wanted = None if cases is None else set(cases)
    done: Dict[str, str] = {}
    for cid in case_ids(folder):
        if wanted is not None and cid not in wanted:
            continue
        case_dir = os.path.join(folder, cid)
        with open(os.path.join(case_dir, "request.json"), encoding="utf-8") as f:
            req = json.load(f)
        req["inputs"] = {k: os.path.join(case_dir, v) for k, v in req["inputs"].items()}
        out = os.path.join(results, cid)
        req["output_dir"] = out
        try:
            handle(adapter, req)
            done[cid] = "outputs"
        except Unsupported:
            done[cid] = "unsupported"
        except Exception as e:  # any other exception is the implementation refusing the case
            os.makedirs(out, exist_ok=True)
            for f in os.listdir(out):  # a refusal has no outputs
                os.remove(os.path.join(out, f))
            with open(os.path.join(out, "error.txt"), "w", encoding="utf-8") as f:
                f.write(f"{type(e).__name__}: {e}\n")
            done[cid] = "refused"
    return done
