"""The audit report as typed values, read from `bnspec audit --json` (the keys are those of
Sources/BNAudit/Audit.swift; keys this version does not know are kept in `extra`)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

#: JSON numbers at or beyond this stand for +∞ (bnspec before report schema 1 wrote ∞ as 1e308).
INFINITY_CODE = 1e308


def number(v) -> float:
    """A JSON number as bnspec writes it: non-finite values are the strings "inf", "-inf" and
    "nan" (spec/AUDIT.md §6); older reports' 1e308 (or beyond), "Infinity" and null decode too."""
    if v is None:
        return math.nan
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("inf", "+inf", "infinity", "+infinity"):
            return math.inf
        if s in ("-inf", "-infinity"):
            return -math.inf
        return float(s)  # "nan" and numbers written as strings
    v = float(v)
    return math.inf if v >= INFINITY_CODE else (-math.inf if v <= -INFINITY_CODE else v)


@dataclass
class CaseResult:
    """The verdict on one golden case: "passed", "failed" or "skipped"."""
    id: str
    status: str
    family: str = ""
    worst_ratio: float = 0.0          # max |got − expected| ÷ tolerance (∞ for a refusal, crash or missing output)
    detail: str = ""                  # the worst element: "y[17] = …, expected …, tolerance …", or the reason
    likely_cause: Optional[str] = None
    repro: str = ""                   # the bnspec command that reruns just this case
    condition: float = 0.0            # max over channels of |μ|/σ of the input
    worst_ulps: Optional[float] = None
    dtype: str = ""
    seconds: float = 0.0
    fault: Optional[str] = None       # why it failed without a numeric comparison: refused, crashed, timeout, protocol, missing-output, … (or not-run)
    worst_at: Optional[str] = None    # the worst element, "y[n=1, c=2, h=0, w=3]"
    beyond: Optional[int] = None      # elements of that output beyond tolerance …
    judged: Optional[int] = None      # … of this many judged
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    @property
    def error(self) -> bool:
        """Failed without a numeric comparison (a JUnit <error>): a refusal, crash, timeout,
        protocol fault or missing output."""
        return self.failed and self.fault not in (None, "not-refused", "not-run")

    @classmethod
    def from_json(cls, d: dict) -> "CaseResult":
        known = {"case", "status", "family", "worst_ratio", "detail", "likely_cause", "repro", "condition", "worst_ulps",
                 "dtype", "seconds", "fault", "worst_at", "beyond", "judged"}
        return cls(id=d["case"], status=d["status"], family=d.get("family", ""), worst_ratio=number(d.get("worst_ratio", 0)),
                   detail=d.get("detail", ""), likely_cause=d.get("likely_cause"), repro=d.get("repro", ""),
                   condition=number(d.get("condition", 0)),
                   worst_ulps=None if d.get("worst_ulps") is None else number(d["worst_ulps"]),
                   dtype=d.get("dtype", ""), seconds=number(d.get("seconds", 0)), fault=d.get("fault"), worst_at=d.get("worst_at"),
                   beyond=d.get("beyond"), judged=d.get("judged"),
                   extra={k: v for k, v in d.items() if k not in known})


@dataclass
class AuditReport:
    """A whole audit: who was audited, against which profile, and the per-case verdicts."""
    implementation: str
    version: str
    profile: str
    tolerance: str
    passed: int
    failed: int
    skipped: int
    causes: Dict[str, int]
    results: List[CaseResult]
    extra: Dict[str, object] = field(default_factory=dict)
    log: str = field(default="", repr=False)  # bnspec's terminal output
    schema: str = ""                  # "bnspec-audit-report/1"
    bnspec_version: str = ""
    golden_sha256: Optional[str] = None
    shard: Optional[str] = None       # "K/N" for one shard of a sharded run

    @property
    def ok(self) -> bool:
        """No failure and at least one case checked (an audit that skipped everything is no pass)."""
        return self.failed == 0 and self.passed > 0

    @property
    def failures(self) -> List[CaseResult]:
        return [r for r in self.results if r.failed]

    def __getitem__(self, case_id: str) -> CaseResult:
        for r in self.results:
            if r.id == case_id:
                return r
        raise KeyError(case_id)

    def by_id(self) -> Dict[str, CaseResult]:
        return {r.id: r for r in self.results}

    @classmethod
    def from_json(cls, d: dict) -> "AuditReport":
        known = {"implementation", "version", "profile", "tolerance", "passed", "failed", "skipped", "causes", "results",
                 "schema", "bnspec_version", "golden_sha256", "shard"}
        return cls(implementation=d.get("implementation", ""), version=str(d.get("version", "")), profile=d.get("profile", ""),
                   tolerance=d.get("tolerance", ""), passed=int(d["passed"]), failed=int(d["failed"]), skipped=int(d["skipped"]),
                   causes={k: int(v) for k, v in d.get("causes", {}).items()},
                   results=[CaseResult.from_json(r) for r in d["results"]],
                   extra={k: v for k, v in d.items() if k not in known},
                   schema=str(d.get("schema", "")), bnspec_version=str(d.get("bnspec_version", "")),
                   golden_sha256=d.get("golden_sha256"), shard=d.get("shard"))

    @classmethod
    def load(cls, path: str) -> "AuditReport":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(json.load(f))

    def select(self, ids) -> "AuditReport":
        """The report restricted to the given case ids (counts recomputed)."""
        keep = set(ids)
        rs = [r for r in self.results if r.id in keep]
        causes: Dict[str, int] = {}
        for r in rs:
            if r.failed:
                causes[r.likely_cause or "unexplained"] = causes.get(r.likely_cause or "unexplained", 0) + 1
        return AuditReport(self.implementation, self.version, self.profile, self.tolerance,
                           sum(r.passed for r in rs), sum(r.failed for r in rs), sum(r.skipped for r in rs), causes, rs, dict(self.extra), self.log,
                           self.schema, self.bnspec_version, self.golden_sha256, self.shard)
