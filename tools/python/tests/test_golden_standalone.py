"""The golden vectors stand alone (issue 16, acceptance): with the golden folder and NumPy only — no
bnspec binary — the checker passes the honest NumPy adapter (tools/adapters/numpy_bn.py) on every
case it computes and fails the one-pass-variance mutant (tools/adapters/numpy_mutant.py) on the
offset cases. The outputs are computed in this process from golden/<case>/request.json
(bnspec.run_requests), as an accelerator team would from the files. A second test holds the
checker to bnspec's own judge: on the same outputs, the same verdict for every case."""
import json
import os
import subprocess
import sys

import pytest

from bnspec import check_results, run_requests

from conftest import ROOT

ADAPTERS = os.path.join(ROOT or "", "tools", "adapters")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the mutant's NaNs, on purpose


@pytest.fixture(scope="module")
def adapters():
    sys.path.insert(0, ADAPTERS)
    try:
        import numpy_bn
        import numpy_mutant
    finally:
        sys.path.remove(ADAPTERS)
    return numpy_bn.NumpyBN(), numpy_mutant.Mutant("one-pass-variance")


@pytest.fixture(scope="module")
def outputs(adapters, golden, tmp_path_factory):
    """results/<honest|mutant>/<case>/<out>.npy for every golden case, computed here."""
    root = tmp_path_factory.mktemp("standalone")
    done = {}
    for name, adapter in zip(("honest", "mutant"), adapters):
        done[name] = run_requests(adapter, golden, str(root / name))
    return root, done


def test_honest_passes_and_one_pass_mutant_fails_without_bnspec(golden, outputs, monkeypatch):
    monkeypatch.setenv("BNSPEC", "/nonexistent/bnspec")  # nothing here may reach for the binary
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    root, done = outputs
    ids = json.load(open(os.path.join(golden, "manifest.json")))["cases"]
    computed = [c for c in ids if done["honest"][c] != "unsupported"]
    assert len(computed) >= 200, f"the NumPy adapter computes only {len(computed)} of {len(ids)} cases"
    honest = check_results(golden, str(root / "honest"))
    assert [r.case for r in honest] == computed
    failed = [f"{r.case}: {r.detail}" for r in honest if not r.passed]
    assert not failed, f"{len(failed)} honest cases fail, e.g. {failed[:3]}"
    mutant = {r.case: r for r in check_results(golden, str(root / "mutant"))}
    offset = [c for c in computed if c.startswith(("train.offset-1e3.", "train.offset-1e4.")) and ".f32." in c]
    assert len(offset) >= 4
    assert all(not mutant[c].passed for c in offset), [mutant[c].detail for c in offset if mutant[c].passed]
    # …and the mutant is not failed everywhere: only its bug's cases (data with an offset, huge values).
    assert all(mutant[c].passed for c in computed if ".normal." in c and c.startswith("infer."))


def audit_verdicts(bnspec, golden, results, profile, tmp):
    """bnspec's verdicts on recorded results for the cases of one profile (their own profile: no re-targeting)."""
    report = os.path.join(tmp, f"{profile}.json")
    proc = subprocess.run([bnspec, "audit", "--results", results, "--profile", profile, "--golden", golden,
                           "--match", f"*.{profile}.*", "--json", report], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    return {r["case"]: r["status"] for r in json.load(open(report))["results"] if r["status"] != "skipped"}


def test_checker_agrees_with_bnspec_on_every_case(bnspec_binary, golden, outputs, tmp_path):
    root, _ = outputs
    for name in ("honest", "mutant"):
        mine = {r.case: ("passed" if r.passed else "failed") for r in check_results(golden, str(root / name))}
        theirs = {}
        for profile in sorted({json.load(open(os.path.join(golden, c, "case.json")))["profile"] for c in mine}):
            theirs.update(audit_verdicts(bnspec_binary, golden, str(root / name), profile, str(tmp_path)))
        assert theirs.keys() == mine.keys()
        differ = {c: (mine[c], theirs[c]) for c in mine if mine[c] != theirs[c]}
        assert not differ, f"{name}: the checker and bnspec disagree on {differ}"
    assert "failed" in mine.values()
