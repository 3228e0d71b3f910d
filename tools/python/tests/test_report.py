"""The typed report read from bnspec's JSON."""
import json
import math
import os

from bnspec import AuditReport
from bnspec.report import number

from conftest import ROOT


def test_numbers_decode_bnspec_infinity_and_strings():
    assert number(1e308) == math.inf and number(-1e308) == -math.inf and number(0.5) == 0.5
    assert number("inf") == math.inf and number("-Infinity") == -math.inf and math.isnan(number("nan"))
    assert math.isnan(number(None)) and number("0.1") == 0.1


def test_committed_report_reads_with_consistent_counts():
    path = os.path.join(ROOT, "docs", "audits", "onnxruntime", "audit.json")
    raw = json.load(open(path))
    r = AuditReport.load(path)
    assert (r.passed, r.failed, r.skipped) == (raw["passed"], raw["failed"], raw["skipped"])
    assert r.passed == sum(c.passed for c in r.results) and r.failed == len(r.failures)
    refused = [c for c in r.failures if "refused" in c.detail]
    assert refused and all(c.worst_ratio == math.inf for c in refused)  # "inf" (1e308 before report schema 1)
    sub = r.select([c.id for c in r.failures[:2]])
    assert (sub.passed, sub.failed, sub.skipped) == (0, 2, 0) and sum(sub.causes.values()) == 2
