"""The pure-NumPy checker on a small golden-like folder made here: expected values, per-element
tolerances, an honest output (within tolerance) and wrong ones, with the verdicts worked out
independently of the checker."""
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from bnspec import GoldenError, check, check_output, check_results

TOL = 1e-3


def make_golden(root, dtype="float32", expect_error=None, cases=None):
    """golden/<id>/: case.json, request.json, an input x, expected_y (4×3 values incl. NaN and ±Inf),
    expected_running_mean, their tolerances (one element +Inf: not judged); golden/README.md and
    manifest.json (listing `cases`, default this one)."""
    cid = f"train.fixture.4x3.NC.{dtype}"
    d = os.path.join(root, cid)
    os.makedirs(d)
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write("# golden fixture\n\nAn element passes iff |got - expected| <= tolerance.\n")
    np.save(os.path.join(d, "x.npy"), np.arange(12.0).reshape(4, 3))
    with open(os.path.join(d, "request.json"), "w") as f:
        json.dump({"op": "train", "dtype": dtype, "eps": 1e-05, "inputs": {"x": "x.npy"}}, f)
    y = np.linspace(-2, 2, 12).reshape(4, 3)
    y[0, 0], y[0, 1], y[0, 2] = np.nan, np.inf, -np.inf
    tol = np.full(12, TOL)
    tol[11] = np.inf
    np.save(os.path.join(d, "expected_y.npy"), y)
    np.save(os.path.join(d, "tolerance_y.npy"), tol.reshape(4, 3))
    np.save(os.path.join(d, "expected_running_mean.npy"), np.array([0.1, 0.2, 0.3]))
    np.save(os.path.join(d, "tolerance_running_mean.npy"), np.full(3, 1e-6))
    case = {"id": cid, "op": "train", "dtype": dtype, "layout": "NC", "shape": [4, 3], "inputs": {"x": "x.npy"},
            "outputs": {"y": "expected_y.npy", "running_mean": "expected_running_mean.npy"}}
    if expect_error:
        case["expect_error"] = expect_error
        case["outputs"] = {}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f)
    seal(root, (cases or []) + [cid])
    return cid, y


def seal(root, cases=None):
    """manifest.json with the SHA-256 of every file under root, as bnspec generate writes it (again
    after a test changes a file on purpose: the checker verifies each file it reads)."""
    path = os.path.join(root, "manifest.json")
    if cases is None:
        with open(path) as f:
            cases = json.load(f)["cases"]
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            rel = os.path.relpath(os.path.join(d, n), root)
            if rel != "manifest.json":
                with open(os.path.join(d, n), "rb") as f:
                    files[rel] = hashlib.sha256(f.read()).hexdigest()
    with open(path, "w") as f:
        json.dump({"format": 1, "suite": "fixture", "generator": "tests", "cases": cases, "files": files}, f)


def honest(y):
    rng = np.random.default_rng(1)
    return {"y": y + rng.uniform(-0.9, 0.9, y.shape) * TOL, "running_mean": np.array([0.1, 0.2, 0.3]) + 5e-7}


def test_honest_output_passes(tmp_path):
    cid, y = make_golden(str(tmp_path))
    r = check(str(tmp_path), cid, honest(y))
    assert r.passed, r.detail
    assert r.outputs["y"].judged == 11 and r.outputs["y"].beyond == 0
    assert 0 < r.outputs["y"].worst_ratio <= 0.9


def test_wrong_element_fails_with_its_index_and_ratio(tmp_path):
    cid, y = make_golden(str(tmp_path))
    out = honest(y)
    out["y"] = y.copy()
    out["y"][2, 1] += 3 * TOL  # flat index 7, three tolerances off
    r = check(str(tmp_path), cid, out)
    assert not r.passed
    o = r.outputs["y"]
    assert (o.worst_index, o.beyond) == (7, 1) and o.worst_ratio == pytest.approx(3.0, rel=1e-4)  # y is rounded to float32 first
    assert r.detail.startswith("y[7] = ") and "1 of 11 beyond tolerance" in r.detail
    assert r.outputs["running_mean"].passed


@pytest.mark.parametrize("index,value", [(0, 0.0), (1, 1e30), (2, np.inf), (1, np.nan), (5, np.nan), (5, np.inf)])
def test_non_finite_values_must_match_exactly(tmp_path, index, value):
    cid, y = make_golden(str(tmp_path))
    out = honest(y)
    out["y"].flat[index] = value
    r = check(str(tmp_path), cid, out)
    assert not r.passed and r.outputs["y"].worst_index == index and r.outputs["y"].worst_ratio == np.inf


def test_an_unresolvable_element_is_not_judged(tmp_path):
    cid, y = make_golden(str(tmp_path))
    out = honest(y)
    out["y"].flat[11] = -1e30  # tolerance +Inf there
    assert check(str(tmp_path), cid, out).passed


def test_bound_is_inclusive(tmp_path):
    cid, y = make_golden(str(tmp_path), dtype="float64")
    out = honest(y)
    out["y"] = y.copy()
    out["y"].flat[4] = y.flat[4] + TOL  # exactly representable offset? compare the checker to the rule itself
    err = abs(out["y"].flat[4] - y.flat[4])
    assert check(str(tmp_path), cid, out).passed == (err <= TOL)


def test_16_bit_outputs_are_rounded_to_storage_first():
    # float16 values near 1 are 2⁻¹⁰ apart. e = 1 + 2⁻¹¹ lies halfway: an output 0.5e-4 above it is within
    # the tolerance 1e-4 as given, but is stored as 1 + 2⁻¹⁰, 4.9e-4 away → fails; an output 2e-4 above
    # e = 1 is beyond the tolerance as given, but is stored as 1.0 → passes.
    tol = np.array([1e-4])
    e1, g1 = np.array([1 + 2**-11]), np.array([1 + 2**-11 + 0.5e-4])
    e2, g2 = np.array([1.0]), np.array([1.0 + 2e-4])
    assert check_output("y", g1, e1, tol).passed and not check_output("y", g1, e1, tol, storage="float16").passed
    assert not check_output("y", g2, e2, tol).passed and check_output("y", g2, e2, tol, storage="float16").passed
    # An expected value beyond float16's range is its infinity once stored: an output of +Inf matches it.
    assert check_output("y", np.array([np.inf]), np.array([70000.0]), np.array([1.0]), storage="float16").passed
    assert not check_output("y", np.array([np.inf]), np.array([70000.0]), np.array([1.0])).passed


def test_bfloat16_outputs_may_be_bit_patterns(tmp_path):
    cid, y = make_golden(str(tmp_path), dtype="bfloat16")
    exp = np.where(np.isfinite(y), y, 0)
    tol = np.full(12, 2.0**-7 * 2)  # two bfloat16 ulps at 2: wide enough for the rounding of every value here
    got = exp.astype(np.float32).view(np.uint32)
    bits = ((got + 0x7FFF + ((got >> 16) & 1)) >> 16).astype(np.uint16)
    assert check_output("y", bits, exp, tol, storage="bfloat16").passed
    wrong = bits.copy()
    wrong.flat[4] ^= 0x0040  # flip a high significand bit of one value
    o = check_output("y", wrong, exp, tol, storage="bfloat16")
    assert not o.passed and o.worst_index == 4


def test_refusals_missing_and_unexpected_outputs(tmp_path):
    cid, y = make_golden(str(tmp_path / "a"))
    assert not check(str(tmp_path / "a"), cid, None).passed
    r = check(str(tmp_path / "a"), cid, {"y": honest(y)["y"]})
    assert not r.passed and r.detail == "missing output running_mean"
    r = check(str(tmp_path / "a"), cid, dict(honest(y), surprise=np.zeros(1)))
    assert not r.passed and r.detail.startswith("unexpected output surprise")
    r = check(str(tmp_path / "a"), cid, dict(honest(y), y=np.zeros(11)))
    assert not r.passed and "11 values, expected 12" in r.outputs["y"].detail
    cid2, _ = make_golden(str(tmp_path / "b"), expect_error="single_value_per_channel")
    assert check(str(tmp_path / "b"), cid2, None).passed
    assert not check(str(tmp_path / "b"), cid2, {"y": np.zeros(12)}).passed


def write_results(root, cid, outputs):
    d = os.path.join(root, cid)
    os.makedirs(d)
    for k, v in outputs.items():
        np.save(os.path.join(d, f"{k}.npy"), v)


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([sys.executable, "-m", "bnspec.check", *args], capture_output=True, text=True, env=env)


def test_cli_exit_status_and_lines(tmp_path):
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    write_results(str(tmp_path / "good"), cid, honest(y))
    bad = honest(y)
    bad["running_mean"] = bad["running_mean"] * 1.01
    write_results(str(tmp_path / "bad"), cid, bad)
    assert [r.passed for r in check_results(g, str(tmp_path / "good"))] == [True]
    ok = run_cli(g, str(tmp_path / "good"))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("check: 1 passed, 0 failed")
    ko = run_cli(g, str(tmp_path / "bad"))
    assert ko.returncode == 1 and f"FAIL {cid}: running_mean[" in ko.stdout
    none = run_cli(g, str(tmp_path / "missing"))
    assert none.returncode == 2 and none.stderr.strip().startswith("bnspec.check: error:") and len(none.stderr.splitlines()) == 1


def test_golden_without_tolerances_is_one_line_error(tmp_path):
    """A folder generated without tolerance files (its manifest lists none) cannot be judged; one
    whose manifest lists a tolerance file that is gone is incomplete: exit 2, one line, either way."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    os.remove(os.path.join(g, cid, "tolerance_y.npy"))
    write_results(str(tmp_path / "r"), cid, honest(y))
    with pytest.raises(GoldenError, match=re.escape("tolerance_y.npy (listed in manifest.json but missing)")):
        check(g, cid, honest(y))
    r = run_cli(g, str(tmp_path / "r"))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "listed in manifest.json but missing" in r.stderr, r.stderr
    seal(g)
    with pytest.raises(GoldenError, match="tolerance_y.npy: no such file"):
        check(g, cid, honest(y))
    r = run_cli(g, str(tmp_path / "r"))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "no tolerances" in r.stderr


def test_allowed_values_are_accepted_where_listed(tmp_path):
    """allowed_<out>.json (e.g. a channel holding ±Inf: NaN accepted for its mean) accepts the listed
    values at the listed elements only."""
    cid, y = make_golden(str(tmp_path))
    d = os.path.join(str(tmp_path), cid)
    with open(os.path.join(d, "allowed_y.json"), "w") as f:
        json.dump({"format": "bnspec-allowed-1", "output": "y", "elements": [{"index": 1, "values": ["nan", "-inf"]}]}, f)
    seal(str(tmp_path))
    out = honest(y)
    for value, ok in ((np.nan, True), (-np.inf, True), (np.inf, True), (1.0, False)):  # expected +Inf at index 1
        out["y"].flat[1] = value
        assert check(str(tmp_path), cid, out).passed == ok, value
    out["y"].flat[1] = np.inf
    out["y"].flat[2] = np.nan  # expected −Inf at index 2, nothing allowed there
    assert not check(str(tmp_path), cid, out).passed
    with open(os.path.join(d, "allowed_y.json"), "w") as f:
        f.write("{not json")
    seal(str(tmp_path))
    with pytest.raises(GoldenError, match="allowed_y.json: not an allowed-values file"):
        check(str(tmp_path), cid, out)


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_nan_or_negative_tolerance_is_corrupt(tmp_path, bad):
    """A tampered tolerance (NaN: every comparison false, so nothing would fail; −1) is refused
    (an outside red team's golden folder); +Inf, an element not judged, stays allowed."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    path = os.path.join(g, cid, "tolerance_y.npy")
    tol = np.load(path)
    tol[1, 1] = bad
    np.save(path, tol)
    seal(g)
    with pytest.raises(GoldenError, match=r"tolerance_y.npy is corrupt \(a tolerance is NaN or negative\)"):
        check(g, cid, honest(y))


@pytest.mark.parametrize("variant,reason", [
    ("fortran", "Fortran-order NPY (write C order)"),
    ("big-endian", "dtype '>f8'"),
    ("int32", "dtype '<i4'"),
    ("object", "dtype '|O'"),
    ("empty", "not an NPY array"),
    ("truncated", "bytes but shape (4, 3) of <f8 needs 96"),
    ("notes", "unexpected file notes.txt in the case folder"),
    ("subfolder", "unexpected entry sub in the case folder"),
    ("symlink", "y.npy is a symbolic link"),
    ("refusal-and-outputs", "both error.txt (a refusal) and outputs"),
])
def test_results_folder_follows_the_audits_rules(tmp_path, variant, reason):
    """The checker reads a results folder as `bnspec audit --results` does (spec/AUDIT.md §2): a
    file the audit refuses fails its case with one line, never passes and never raises (an
    outside red team's: Fortran order, big-endian, extra entries passed; corrupt files raised)."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    out = honest(y)
    res = str(tmp_path / "results")
    write_results(res, cid, out)
    d = os.path.join(res, cid)
    yp = os.path.join(d, "y.npy")
    if variant == "fortran":
        np.save(yp, np.asfortranarray(out["y"]))
    elif variant == "big-endian":
        np.save(yp, out["y"].astype(">f8"))
    elif variant == "int32":
        np.save(yp, np.nan_to_num(out["y"], nan=0, posinf=0, neginf=0).astype(np.int32))
    elif variant == "object":
        np.save(yp, out["y"].astype(object), allow_pickle=True)
    elif variant == "empty":
        open(yp, "wb").close()
    elif variant == "truncated":
        data = open(yp, "rb").read()
        open(yp, "wb").write(data[:-8])
    elif variant == "notes":
        open(os.path.join(d, "notes.txt"), "w").write("kept here\n")
    elif variant == "subfolder":
        os.mkdir(os.path.join(d, "sub"))
    elif variant == "symlink":
        os.rename(yp, os.path.join(str(tmp_path), "y.npy"))
        os.symlink(os.path.join(str(tmp_path), "y.npy"), yp)
    elif variant == "refusal-and-outputs":
        open(os.path.join(d, "error.txt"), "w").write("refused\n")
    [r] = check_results(g, res)
    assert not r.passed and reason in r.detail, r.detail
    cli = run_cli(g, res)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr and f"FAIL {cid}: " in cli.stdout, cli.stderr


def write_npy(path, a, version, pad=0, shape=None):
    """An NPY file of format `version` whose header is padded with `pad` more spaces (NumPy's
    writer caps the header; bnspec reads up to 1 MiB); `shape` overrides the header's shape."""
    a = np.ascontiguousarray(a, "<f8")
    h = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {tuple(shape or a.shape)}, }}" + " " * pad + "\n"
    size = len(h).to_bytes(2 if version == 1 else 4, "little")
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY" + bytes([version, 0]) + size + h.encode() + a.tobytes())


@pytest.mark.parametrize("version,pad,shape,reason", [
    (1, 0, None, None),
    (3, 0, None, None),                      # UTF-8 header: bnspec reads it
    (2, 20000, None, None),                  # over NumPy's 10000-byte cap, under bnspec's 1 MiB
    (2, (1 << 20) + 1, None, "NPY header of 1048637 bytes (more than the 1 MiB bnspec reads)"),
    (4, 0, None, "NPY version 4.0 (1.0, 2.0 and 3.0 are read)"),
    (1, 0, (10**12,), "data holds 96 bytes but shape (1000000000000,) of <f8 needs 8000000000000"),
])
def test_npy_outputs_are_read_as_bnspec_reads_them(tmp_path, version, pad, shape, reason):
    """NPY 1.0, 2.0 and 3.0 with a header up to 1 MiB are outputs, as for `bnspec audit --results`
    (the checker had failed 3.0 and a 20 kB header, which the audit passes); anything else fails
    its case with one line, and a header declaring a huge shape is judged by the file's size, not
    allocated (it had raised MemoryError)."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    res = str(tmp_path / "results")
    out = honest(y)
    write_results(res, cid, out)
    write_npy(os.path.join(res, cid, "y.npy"), out["y"], version, pad, shape)
    [r] = check_results(g, res)
    assert r.passed == (reason is None) and (reason is None or reason in r.detail), r.detail
    cli = run_cli(g, res)
    assert cli.returncode == (0 if reason is None else 1) and "Traceback" not in cli.stderr, cli.stderr


def test_results_entries_that_name_no_case(tmp_path):
    """As `bnspec audit --results`: an entry of the results folder that names no golden case (a
    typo'd case folder, notes, an export folder given for its results/) is one line before any
    case, not skipped in silence; dot files are let be; a case entry that is a file, not a folder,
    fails its case (it had been skipped: "no results")."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    res = tmp_path / "results"
    write_results(str(res), cid, honest(y))
    (res / ".DS_Store").write_text("")
    assert [r.passed for r in check_results(g, str(res))] == [True]
    write_results(str(res), cid + "x", honest(y))
    (res / "notes.txt").write_text("kept here\n")
    with pytest.raises(GoldenError, match=r"notes.txt: names no golden case \(each folder must be a case id; and 1 more entries of the results folder\)"):
        check_results(g, str(res))
    cli = run_cli(g, str(res))
    assert cli.returncode == 2 and cli.stdout == "" and len(cli.stderr.splitlines()) == 1, cli.stderr
    assert cli.stderr.startswith("bnspec.check: error: ") and "names no golden case" in cli.stderr
    (res / "export.json").write_text("{}")
    with pytest.raises(GoldenError, match="is the export folder"):
        check_results(g, str(res))
    other = tmp_path / "other"
    other.mkdir()
    (other / cid).write_text("not a folder\n")
    [r] = check_results(g, str(other))
    assert not r.passed and "is not a folder" in r.detail
    cli = run_cli(g, str(other))
    assert cli.returncode == 1 and f"FAIL {cid}: " in cli.stdout, cli.stdout + cli.stderr


def test_results_of_an_export_for_another_profile_are_refused(tmp_path):
    """Results beside an export.json made for another profile than a case's own are refused in
    one line (the stored tolerances are the case's own profile's); for its own profile they are
    judged."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    with open(os.path.join(g, cid, "case.json")) as f:
        case = json.load(f)
    case["profile"] = "pytorch"
    with open(os.path.join(g, cid, "case.json"), "w") as f:
        json.dump(case, f)
    seal(g)
    res = str(tmp_path / "export" / "results")
    write_results(res, cid, honest(y))
    for profile, ok in (("keras", False), ("pytorch", True)):
        with open(str(tmp_path / "export" / "export.json"), "w") as f:
            json.dump({"format": "bnspec-export-1", "profile": profile, "cases": [cid]}, f)
        cli = run_cli(g, res)
        if ok:
            assert cli.returncode == 0, cli.stdout + cli.stderr
        else:
            assert cli.returncode == 2 and len(cli.stderr.splitlines()) == 1 and "export for profile keras" in cli.stderr, cli.stderr


@pytest.mark.parametrize("tamper", ["huge-tolerance", "truncated-expected", "case-json", "unlisted-allowed"])
def test_golden_files_are_verified_against_the_manifest(tmp_path, tamper):
    """Every golden file the checker reads must match the SHA-256 manifest.json lists for it, as
    bnspec verifies them (an outside red team's, round F: tolerances overwritten with 1e300 let
    all-zero outputs pass; a truncated expected file ended the checker with a traceback). The
    check and the CLI refuse the folder in one line; untouched, all-zero outputs fail."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    zeros = {"y": np.zeros_like(y), "running_mean": np.zeros(3)}
    assert not check(g, cid, zeros).passed
    d = os.path.join(g, cid)
    if tamper == "huge-tolerance":
        np.save(os.path.join(d, "tolerance_y.npy"), np.full((4, 3), 1e300))
    elif tamper == "truncated-expected":
        with open(os.path.join(d, "expected_y.npy"), "r+b") as f:
            f.truncate(100)
    elif tamper == "case-json":
        with open(os.path.join(d, "case.json")) as f:
            case = json.load(f)
        case["outputs"] = {"running_mean": "expected_running_mean.npy"}  # y no longer judged
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(case, f)
    else:
        with open(os.path.join(d, "allowed_y.json"), "w") as f:
            json.dump({"format": "bnspec-allowed-1", "output": "y", "elements": [{"index": i, "values": [0.0]} for i in range(12)]}, f)
    why = "not listed in manifest.json" if tamper == "unlisted-allowed" else "is corrupt (its SHA-256 differs"
    with pytest.raises(GoldenError, match=re.escape(why)):
        check(g, cid, zeros)
    write_results(str(tmp_path / "r"), cid, zeros)
    cli = run_cli(g, str(tmp_path / "r"))
    assert cli.returncode == 2 and len(cli.stderr.splitlines()) == 1 and why in cli.stderr and "Traceback" not in cli.stderr, cli.stderr


def test_release_manifest_is_the_committed_golden_and_others_get_a_notice(golden, tmp_path):
    """The pinned digest is golden/'s (paste the new one after bnspec generate); any other folder,
    e.g. one re-hashed after an edit or pruned, gets the notice (an outside red team's, round I)."""
    from bnspec.checker import RELEASE_MANIFEST_SHA256, release_notice
    import hashlib
    with open(os.path.join(golden, "manifest.json"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == RELEASE_MANIFEST_SHA256
    assert release_notice(golden) is None
    (tmp_path / "manifest.json").write_text('{"cases": [], "files": {}}')
    assert "is not this release's default suite" in release_notice(str(tmp_path))


def one_line_error(cli, why):
    """A CLI run that judged nothing: exit 2, no verdict, one line `bnspec.check: error: <what> (<why>)`."""
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert cli.stdout == "" and len(cli.stderr.splitlines()) == 1 and "Traceback" not in cli.stderr, cli.stderr
    line = cli.stderr.strip()
    assert line.startswith("bnspec.check: error: ") and line.endswith(")") and why in line, line


@pytest.mark.parametrize("tamper,why", [
    ("input-flip", "x.npy is corrupt (its SHA-256 differs from manifest.json's"),
    ("request-edit", "request.json is corrupt (its SHA-256 differs from manifest.json's"),
    ("readme-edit", "README.md is corrupt (its SHA-256 differs from manifest.json's"),
    ("unlisted-file", "expected_zzz.npy: not listed in manifest.json (not a file of this golden folder)"),
    ("missing-input", "x.npy (listed in manifest.json but missing)"),
], ids=["input-flip", "request-edit", "readme-edit", "unlisted-file", "missing-input"])
def test_every_file_of_a_judged_case_is_verified(tmp_path, tamper, why):
    """V5: every file of a judged case folder the manifest lists (inputs and request.json too, which
    the checker does not read) and the folder's own README.md must match manifest.json, as bnspec
    verifies them; the case folder holds no other file (an outside reviewer's: a flipped byte in x.npy,
    an edited request.json or README.md passed, `check: 1 passed`). Verified once, again when changed."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    res = str(tmp_path / "r")
    write_results(res, cid, honest(y))
    assert check(g, cid, honest(y)).passed  # verified and cached...
    d = os.path.join(g, cid)
    if tamper == "input-flip":
        with open(os.path.join(d, "x.npy"), "r+b") as f:  # same size: the cache must notice by the file's stat
            f.seek(-3, os.SEEK_END)
            b = f.read(1)
            f.seek(-3, os.SEEK_END)
            f.write(bytes([b[0] ^ 1]))
    elif tamper == "request-edit":
        text = open(os.path.join(d, "request.json")).read()
        open(os.path.join(d, "request.json"), "w").write(text.replace("1e-05", "1e-03"))
    elif tamper == "readme-edit":
        with open(os.path.join(g, "README.md"), "a") as f:
            f.write("x")
    elif tamper == "unlisted-file":
        open(os.path.join(d, "expected_zzz.npy"), "wb").write(b"junk")
    else:
        os.remove(os.path.join(d, "x.npy"))
    with pytest.raises(GoldenError, match=re.escape(why)):  # ...and checked again once changed
        check(g, cid, honest(y))
    with pytest.raises(GoldenError, match=re.escape(why)):
        check_results(g, res)
    one_line_error(run_cli(g, res), why)


@pytest.mark.parametrize("kind,name", [
    ("fifo", "x.npy"), ("fifo", "expected_y.npy"), ("fifo", "README.md"), ("fifo", "manifest.json"),
    ("zero", "tolerance_y.npy"), ("zero", "request.json"),
])
def test_a_golden_file_that_is_not_a_regular_file_is_refused_before_reading(tmp_path, kind, name):
    """V6: a golden file replaced by a FIFO (it had hung the checker) or by a link to /dev/zero (a
    MemoryError traceback) is refused before it is read: one line, exit 2. A timeout guards the run."""
    if kind == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    if kind == "zero" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    res = str(tmp_path / "r")
    write_results(res, cid, honest(y))
    path = os.path.join(g, name) if name in ("README.md", "manifest.json") else os.path.join(g, cid, name)
    os.remove(path)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cli = subprocess.run([sys.executable, "-m", "bnspec.check", g, res], capture_output=True, text=True, env=env, timeout=60)
    one_line_error(cli, f"{name} is not a regular file (it is {'a FIFO' if kind == 'fifo' else 'a character device'}; refused before reading)")


def edit_manifest(g, edit):
    path = os.path.join(g, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    text = edit(m)
    with open(path, "w") as f:
        f.write(text if isinstance(text, str) else json.dumps(m))


@pytest.mark.parametrize("edit,why", [
    ("duplicate-case", "manifest.json is corrupt (case 'CID' is listed twice)"),
    ("format-2", "manifest.json is corrupt (manifest format 2; this checker reads format 1, the one bnspec writes)"),
    ("no-format", "manifest.json is corrupt (manifest is not valid: no key 'format')"),
    ("duplicate-key", "manifest.json is corrupt (key 'CID/x.npy' appears twice in one object: a file listed twice?)"),
    ("leaves-folder", "manifest.json is corrupt (file path '../secret' leaves the golden folder or is not relative)"),
    ("unlisted-case-folder", "manifest.json is corrupt (the folder holds case folder 'other', which the manifest does not list"),
], ids=["duplicate-case", "format-2", "no-format", "duplicate-key", "leaves-folder", "unlisted-case-folder"])
def test_a_manifest_bnspec_refuses_is_refused(tmp_path, edit, why):
    """V7: a manifest.json that bnspec's GoldenStore.decodeManifest refuses is refused here too (an
    outside reviewer's: a case listed twice, and format 2, were accepted): one line, exit 2."""
    g = str(tmp_path / "golden")
    cid, y = make_golden(g)
    res = str(tmp_path / "r")
    write_results(res, cid, honest(y))
    if edit == "duplicate-case":
        edit_manifest(g, lambda m: m["cases"].append(cid))
    elif edit == "format-2":
        edit_manifest(g, lambda m: m.update(format=2))
    elif edit == "no-format":
        edit_manifest(g, lambda m: m.pop("format"))
    elif edit == "duplicate-key":  # the same file twice, the second with another digest: json keeps the last
        edit_manifest(g, lambda m: json.dumps(m)[:-2] + f', "{cid}/x.npy": "{"0" * 64}"}}}}')
    elif edit == "leaves-folder":
        edit_manifest(g, lambda m: m["files"].update({"../secret": "0" * 64}))
    else:
        os.mkdir(os.path.join(g, "other"))
    why = why.replace("CID", cid)
    with pytest.raises(GoldenError, match=re.escape(why)):
        check(g, cid, honest(y))
    one_line_error(run_cli(g, res), why)


def test_a_failed_case_prints_a_repro_that_judges_it_alone(tmp_path):
    """V11: each FAIL line is followed by `  repro: python -m bnspec.check GOLDEN RESULTS --case ID`
    (absolute, shell-quoted paths); run, it judges exactly that case and fails again. --case is
    repeatable; an id that is no golden case, or a selected case without results, is one line, exit 2."""
    g = str(tmp_path / "golden")
    a, y = make_golden(g, "float32")
    b, _ = make_golden(g, "float16", cases=[a])
    c, _ = make_golden(g, "float64", cases=[a, b])
    res = str(tmp_path / "res ults 'quoted'")  # the repro must survive the shell
    bad = honest(y)
    bad["running_mean"] = bad["running_mean"] * 1.01
    write_results(res, a, bad)
    write_results(res, b, bad)
    write_results(res, c, honest(y))
    cli = run_cli(g, res)
    assert cli.returncode == 1 and cli.stdout.strip().endswith("check: 1 passed, 2 failed"), cli.stdout + cli.stderr
    lines = cli.stdout.splitlines()
    for cid in (a, b):
        i = next(i for i, line in enumerate(lines) if line.startswith(f"FAIL {cid}: "))
        assert lines[i + 1].startswith("  repro: python -m bnspec.check "), lines
        argv = shlex.split(lines[i + 1][len("  repro: "):])
        assert argv[:3] == ["python", "-m", "bnspec.check"] and argv[3:] == [os.path.abspath(g), os.path.abspath(res), "--case", cid]
        again = run_cli(*argv[3:])
        assert again.returncode == 1, again.stdout + again.stderr
        out = again.stdout.splitlines()
        assert [line for line in out if line.startswith("FAIL ")] == [lines[i]] and out[-1] == "check: 0 passed, 1 failed", out
        assert not any(other in again.stdout for other in {a, b, c} - {cid})
    both = run_cli(g, res, "--case", a, "--case", c)
    assert both.returncode == 1 and both.stdout.strip().endswith("check: 1 passed, 1 failed") and b not in both.stdout
    assert run_cli(g, res, "--case", c).returncode == 0
    one_line_error(run_cli(g, res, "--case", "no.such.case"), "no.such.case: not a case of")
    os.rename(os.path.join(res, c), str(tmp_path / "aside"))
    one_line_error(run_cli(g, res, "--case", c), "the results hold nothing for case")
    one_line_error(run_cli(g), "the following arguments are required: results (usage: ")  # usage: one line too
