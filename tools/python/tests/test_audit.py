"""bnspec.audit() and the pytest plugin against the real bnspec binary and golden/, with the
example adapters of examples/pytest (an honest float32 BN and its one-pass-variance variant)."""
import fnmatch
import json
import os
import time

import pytest

from bnspec import AuditError, audit

from conftest import ROOT, plugin_installed

EXAMPLES = os.path.join(ROOT or "", "examples", "pytest")
HONEST = os.path.join(EXAMPLES, "test_my_bn.py") + ":MyBN"
BUGGY = os.path.join(EXAMPLES, "test_buggy_bn.py") + ":OnePassBN"
OFFSET = "train.offset-1e4.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"
INFER = "infer.normal.2x64x14x14.NCHW.f32.pytorch.eps1e-05.m0.1"
BACKWARD = "backward-train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"
# The one-pass variance is named from how its error grows with κ across the audit (spec/AUDIT.md §5):
# one case cannot show it (alone it is "unexplained"), the float32 NCHW training cases can.
TRAIN_F32 = "train.*.NCHW.f32.*"


def cases_matching(golden, pattern):
    with open(os.path.join(golden, "manifest.json")) as f:
        return [c for c in json.load(f)["cases"] if fnmatch.fnmatchcase(c, pattern)]


def test_honest_adapter_passes_and_unsupported_is_skipped(bnspec_binary, golden):
    r = audit(HONEST, profile="pytorch", golden=golden, cases=[OFFSET, INFER, BACKWARD], binary=bnspec_binary)
    assert {c.id: c.status for c in r.results} == {OFFSET: "passed", INFER: "passed", BACKWARD: "skipped"}
    assert r.implementation == "MyBN" and r.ok and r[OFFSET].worst_ratio < 1
    assert "not supported by the adapter (backward-train" in r[BACKWARD].detail


def test_buggy_adapter_fails_with_cause_and_repro(bnspec_binary, golden):
    cases = cases_matching(golden, TRAIN_F32)
    assert OFFSET in cases and len(cases) > 20
    r = audit(BUGGY, golden=golden, cases=cases, binary=bnspec_binary)
    c = r[OFFSET]
    assert c.failed and c.worst_ratio > 1 and not r.ok
    assert "E[x²] − E[x]²" in c.likely_cause  # the one-pass variance (named directly or as the offset pattern)
    assert c.repro.startswith("bnspec audit --adapter ") and c.repro.endswith(f"--case {OFFSET}")
    assert c.detail.startswith(("y[", "batch_var[", "running_var["))
    # The report's envelope and the worst element's place and extent (bnspec-audit-report/1).
    assert r.schema == "bnspec-audit-report/1" and r.bnspec_version and len(r.golden_sha256) == 64
    assert c.fault is None and not c.error and c.dtype == "float32" and c.seconds > 0
    assert c.worst_at.startswith(("y[n=", "batch_var[c=", "running_var[c=")) and 1 <= c.beyond <= c.judged


def test_an_adapter_that_cannot_start_is_one_line_error(bnspec_binary, golden, tmp_path):
    bad = tmp_path / "broken_bn.py"
    bad.write_text("import bnspec\nraise RuntimeError('cannot load the framework')\n")
    with pytest.raises(AuditError) as e:
        audit(f"{bad}:BN", golden=golden, cases=[OFFSET], binary=bnspec_binary, start_timeout=30)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("bnspec: error:") and "cannot load the framework" in msg


def processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_a_hanging_adapter_leaves_no_process(bnspec_binary, golden, tmp_path):
    hang = tmp_path / "hanging_bn.py"
    hang.write_text("import time, bnspec\nclass BN(bnspec.Adapter):\n    def train(self, *a):\n        time.sleep(600)\n")
    r = audit(f"{hang}:BN", golden=golden, cases=[OFFSET], binary=bnspec_binary, case_timeout=1)
    assert r[OFFSET].failed and "did not answer within 1 s" in r[OFFSET].detail
    time.sleep(0.5)
    assert processes_mentioning(str(hang)) == []


def test_plugin_on_the_real_binary(pytester, bnspec_binary, golden):
    pytester.copy_example(os.path.join(EXAMPLES, "test_my_bn.py"))
    pytester.copy_example(os.path.join(EXAMPLES, "test_buggy_bn.py"))
    plugin = [] if plugin_installed() else ["-p", "bnspec.pytest_plugin"]
    res = pytester.runpytest_subprocess(*plugin, "--bnspec-binary", bnspec_binary, "--bnspec-golden", golden,
                                        "-p", "no:cacheprovider", "-rf", "-k", "train and not backward and NCHW and f32")
    outcomes = res.parseoutcomes()  # the honest BN passes every case it declares; the buggy one fails some
    assert outcomes.get("failed", 0) >= 1 and outcomes.get("passed", 0) >= 2 * outcomes["failed"]
    out = res.stdout.str()
    assert not any(l.startswith("FAILED test_my_bn.py") for l in res.stdout.lines)  # the honest BN: no failure
    assert any(l.startswith("  likely cause:  ") and "E[x²] − E[x]²" in l for l in res.stdout.lines)
    assert f"rerun: pytest 'test_buggy_bn.py::OnePassBN::{OFFSET}'" in out and f"--case {OFFSET}" in out


@pytest.mark.parametrize("module,args", [
    ("bnspec_adapter = 'does_not_exist.py:Nope'\n", []),
    ("import bnspec\nclass BN(bnspec.Adapter):\n    def infer(self, req, x, *a):\n        return {'y': x}\nbnspec_adapter = BN\n",
     ["--bnspec-profile", "bogus"]),
])
def test_plugin_audit_that_cannot_run_on_the_real_binary(pytester, bnspec_binary, golden, module, args):
    """The outside red team's two setups on the real bnspec: an adapter file that does not exist,
    an unknown profile (bnspec exits 2 for both). One line and pytest's 2; no case reported failed
    (they had been 435 failures, exit 1, which CI cannot tell from a failing BN)."""
    pytester.makepyfile(test_setup=module)
    plugin = [] if plugin_installed() else ["-p", "bnspec.pytest_plugin"]
    res = pytester.runpytest_subprocess(*plugin, "--bnspec-binary", bnspec_binary, "--bnspec-golden", golden,
                                        "-p", "no:cacheprovider", *args)
    out = res.stdout.str()
    assert res.ret == 2, out
    assert res.parseoutcomes().get("failed", 0) == 0 and res.parseoutcomes().get("passed", 0) == 0, out
    said = [l for l in res.stdout.lines if l.startswith("bnspec: ") and "did not run: bnspec: error: " in l]
    assert said and ("does_not_exist.py" in said[0] if not args else "unknown profile 'bogus'" in said[0]), out
