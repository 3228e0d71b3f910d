"""How audit() and the pytest plugin select cases and read the report, against a stand-in for
the bnspec binary (tests/fake_bnspec.py) that logs each call: one audit per module, the exact
ids after -k, the old one-substring form handled by filtering."""
import json
import math
import os
import re
import stat
import sys

import pytest

from bnspec import AuditError, audit
from bnspec.runner import _help_cache

from conftest import plugin_installed

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_bnspec.py")
IDS = ["pass.a.NCHW", "pass.b.NHWC", "fail.c.NCHW", "skip.d.NC", "pass.c.NCHW.x"]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    golden = tmp_path / "golden"
    golden.mkdir()
    (golden / "manifest.json").write_text(json.dumps({"cases": IDS}))
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_BNSPEC_LOG", str(log))
    monkeypatch.setenv("BNSPEC", f"{sys.executable} {FAKE}")
    _help_cache.clear()

    def calls():
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    return str(golden), calls


def cases_of(argv):
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--case"]


@pytest.mark.parametrize("new", ["1", "0"])
def test_audit_selects_exact_ids_in_either_form(fake, monkeypatch, new):
    golden, calls = fake
    monkeypatch.setenv("FAKE_BNSPEC_NEW", new)
    r = audit(command="true", golden=golden, cases=["pass.c.NCHW.x", "fail.c.NCHW"])
    assert [c.id for c in r.results] == ["fail.c.NCHW", "pass.c.NCHW.x"]  # report order, exact ids only
    assert (r.passed, r.failed, r.skipped) == (1, 1, 0) and not r.ok
    assert r["fail.c.NCHW"].worst_ratio == math.inf and r["fail.c.NCHW"].likely_cause.startswith("eps")
    argv = calls()[0]
    assert cases_of(argv) == (["pass.c.NCHW.x", "fail.c.NCHW"] if new == "1" else [])
    # one id in the old form: narrowed by the substring (which also matches pass.c.NCHW.x), then filtered
    r = audit(command="true", golden=golden, cases="fail.c.NCHW")
    assert [c.id for c in r.results] == ["fail.c.NCHW"] and cases_of(calls()[1]) == ["fail.c.NCHW"]
    assert r.extra == {"future_key": "kept in extra"}


@pytest.mark.parametrize("new", ["1", "0"])
def test_unknown_case_is_an_audit_error(fake, monkeypatch, new):
    golden, _ = fake
    monkeypatch.setenv("FAKE_BNSPEC_NEW", new)
    with pytest.raises(AuditError, match="no golden case named nope"):
        audit(command="true", golden=golden, cases=["pass.a.NCHW", "nope"])


def test_bad_binary_is_one_line(monkeypatch):
    monkeypatch.setenv("BNSPEC", "/nonexistent/bnspec")
    with pytest.raises(AuditError, match=r"^bnspec: error: BNSPEC=/nonexistent/bnspec is not an executable"):
        audit(command="true")


TEST_FILE = """
import bnspec

class MyBN(bnspec.Adapter):
    def infer(self, req, x, gamma, beta, mean, var):
        return {"y": x}

bnspec_adapter = MyBN
"""


def run_plugin(pytester, golden, *args):
    pytester.makepyfile(test_user_bn=TEST_FILE)
    plugin = [] if plugin_installed() else ["-p", "bnspec.pytest_plugin"]
    return pytester.runpytest_subprocess(*plugin, "--bnspec-golden", golden, "-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("new", ["1", "0"])
def test_plugin_one_item_per_case_one_audit_for_the_selection(fake, pytester, monkeypatch, new):
    golden, calls = fake
    monkeypatch.setenv("FAKE_BNSPEC_NEW", new)
    res = run_plugin(pytester, golden, "-k", "NCHW and not pass.a", "-rs")
    res.assert_outcomes(passed=1, failed=1)  # fail.c.NCHW and pass.c.NCHW.x; the others deselected
    assert len(calls()) == 1
    assert sorted(cases_of(calls()[0])) == (["fail.c.NCHW", "pass.c.NCHW.x"] if new == "1" else [])
    out = res.stdout.str()
    assert "worst error ∞× the tolerance" in out and "likely cause:  eps added outside the square root" in out
    assert "repro: bnspec audit --case fail.c.NCHW" in out and "rerun: pytest 'test_user_bn.py::MyBN::fail.c.NCHW'" in out
    assert res.ret == 1


def test_plugin_reports_skips_and_collects_every_case(fake, pytester, monkeypatch):
    golden, calls = fake
    res = run_plugin(pytester, golden, "-rs", "-k", "not fail")
    res.assert_outcomes(passed=3, skipped=1)
    assert "skip.d.NC" in res.stdout.str() and "tolerance 0.01 (skip.d.NC)" in res.stdout.str()
    assert cases_of(calls()[0]) in ([], ["pass.a.NCHW", "pass.b.NHWC", "skip.d.NC", "pass.c.NCHW.x"])
    res = run_plugin(pytester, golden, "--collect-only", "-q")
    assert res.ret == 0 and sum("::MyBN::" in l for l in res.stdout.lines) == len(IDS) and len(calls()) == 1  # no audit
    res = run_plugin(pytester, golden, "-k", "nothing_matches")
    assert res.ret == 5  # pytest's "no tests ran"


def test_plugin_without_a_binary_is_one_collection_error(fake, pytester, monkeypatch):
    # Not a failure of every case (exit 1, which CI could not tell from a failing BN): one
    # collection error, pytest's exit 2, with bnspec's one line. Listing the cases needs no binary.
    golden, _ = fake
    monkeypatch.setenv("BNSPEC", "/nonexistent/bnspec")
    res = run_plugin(pytester, golden)
    assert res.ret == 2
    res.assert_outcomes(errors=1)
    assert res.stdout.str().count("bnspec: error: BNSPEC=/nonexistent/bnspec is not an executable") >= 1
    res = run_plugin(pytester, golden, "--collect-only", "-q")
    assert res.ret == 0 and sum("::MyBN::" in l for l in res.stdout.lines) == len(IDS)


def test_plugin_finds_an_installs_golden_folder(fake, pytester, monkeypatch, tmp_path):
    # <prefix>/bin/bnspec with <prefix>/share/bnspec/golden, as the binary itself looks, when no
    # checkout is around: the plugin collects that folder's cases.
    golden, _ = fake
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "bnspec").mkdir(parents=True)
    os.symlink(golden, prefix / "share" / "bnspec" / "golden")
    exe = prefix / "bin" / "bnspec"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    exe.chmod(0o755)
    monkeypatch.setenv("BNSPEC", str(exe))
    monkeypatch.delenv("BNSPEC_GOLDEN", raising=False)
    monkeypatch.delenv("BNSPEC_HOME", raising=False)
    pytester.makepyfile(test_user_bn=TEST_FILE)
    plugin = [] if plugin_installed() else ["-p", "bnspec.pytest_plugin"]
    res = pytester.runpytest_subprocess(*plugin, "--collect-only", "-q", "-p", "no:cacheprovider")
    assert res.ret == 0 and sum("::MyBN::" in l for l in res.stdout.lines) == len(IDS), res.stdout.str()


def test_an_audit_that_checked_nothing_returns_its_skips(fake, pytester, monkeypatch):
    """bnspec exits 2 when no case was checked (every selected case skipped) but writes the report:
    audit() returns it (not an AuditError) and the plugin reports the skips."""
    golden, _ = fake
    monkeypatch.setenv("FAKE_BNSPEC_NEW", "1")
    r = audit(command="true", golden=golden, cases=["skip.d.NC"])
    assert (r.passed, r.failed, r.skipped) == (0, 0, 1) and not r.ok
    res = run_plugin(pytester, golden, "-k", "NC and not NCHW and not NHWC")  # skip.d.NC alone
    res.assert_outcomes(skipped=1)
    # Not a pass (bnspec exits 2): the session exits 2 with one line, not 0 (an outside red team's:
    # 435 skipped, exit 0) nor pytest's 5, "nothing to run", which CI setups often let pass.
    lines = [l for l in res.stdout.lines if "was judged" in l]
    assert res.ret == 2 and len(lines) == 1, res.stdout.str()
    assert re.fullmatch(r"bnspec: error: no case of \S*test_user_bn\.py::MyBN was judged, not a pass, as for bnspec audit \(exit 2\) "
                        r"\(the adapter supports none of the 1 selected cases: every one skipped\)", lines[0]), lines[0]
    res = run_plugin(pytester, golden, "-k", "not fail")  # checks and a skip: a pass
    res.assert_outcomes(passed=3, skipped=1)
    assert res.ret == 0 and "was judged" not in res.stdout.str()
    res = run_plugin(pytester, golden, "-k", "nothing_matches")  # no case selected: pytest's own 5
    assert res.ret == 5 and "was judged" not in res.stdout.str()


@pytest.mark.parametrize("fail,status", [("start", 2), ("usage", 4)])
def test_plugin_audit_that_cannot_run_is_one_line(fake, pytester, monkeypatch, fail, status):
    """An audit that cannot run (the adapter does not start; an unknown profile) ends the session
    with bnspec's one line and pytest's 2 (4 for a usage error), not with every case failed and
    exit 1, which CI could not tell from a failing BN (an outside red team's: 444 failed)."""
    golden, _ = fake
    monkeypatch.setenv("FAKE_BNSPEC_FAIL", fail)
    res = run_plugin(pytester, golden)
    assert res.ret == status, res.stdout.str()
    out = res.stdout.str()
    assert res.parseoutcomes().get("failed", 0) == 0 and out.count("bnspec: the audit of MyBN did not run: bnspec: error: ") == 1, out


def test_json_path_never_replaces_a_users_file(fake, tmp_path):
    """json_path replaces a previous report or an empty file, never another file, and refuses
    before the audit runs (an outside red team's: any file was overwritten)."""
    golden, calls = fake
    precious = tmp_path / "precious.txt"
    precious.write_text("my notes\n")
    with pytest.raises(AuditError, match="exists and is not a BNSpec report"):
        audit(command="true", golden=golden, cases=["pass.a.NCHW"], json_path=str(precious))
    assert precious.read_text() == "my notes\n" and calls() == []
    report = tmp_path / "r.json"
    audit(command="true", golden=golden, cases=["pass.a.NCHW"], json_path=str(report))
    first = json.loads(report.read_text())
    assert first["passed"] == 1
    # the fake writes no schema: a BNSpec report has one
    first["schema"] = "bnspec-audit-report/1"
    report.write_text(json.dumps(first))
    audit(command="true", golden=golden, cases=["pass.b.NHWC"], json_path=str(report))
    assert [r["case"] for r in json.loads(report.read_text())["results"]] == ["pass.b.NHWC"]
    assert sorted(os.listdir(tmp_path)) == sorted(["calls.log", "golden", "precious.txt", "r.json"])


def test_json_path_is_written_atomically_and_touches_no_other_file(fake, tmp_path, monkeypatch):
    """The report goes to a new file of its own beside json_path, renamed over it: a file of the
    name the package's earlier temporary had (json_path + ".tmp-PID") is left as it is; a file
    that appears at json_path while the audit runs, a pipe or a device there is refused, never
    replaced."""
    golden, _ = fake
    report = tmp_path / "r.json"
    bystander = tmp_path / f"r.json.tmp-{os.getpid()}"
    bystander.write_text("my notes\n")
    audit(command="true", golden=golden, cases=["pass.a.NCHW"], json_path=str(report))
    assert json.loads(report.read_text())["passed"] == 1 and bystander.read_text() == "my notes\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["calls.log", "golden", "r.json", bystander.name])
    late = tmp_path / "late.json"
    monkeypatch.setenv("FAKE_BNSPEC_WRITE", str(late))
    with pytest.raises(AuditError, match="late.json: exists and is not a BNSpec report"):
        audit(command="true", golden=golden, cases=["pass.a.NCHW"], json_path=str(late))
    assert late.read_text() == "written during the audit\n"
    monkeypatch.delenv("FAKE_BNSPEC_WRITE")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(AuditError, match="pipe: exists and is not a BNSpec report"):
        audit(command="true", golden=golden, cases=["pass.a.NCHW"], json_path=str(fifo))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
