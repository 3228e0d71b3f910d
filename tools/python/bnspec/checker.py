"""Checking outputs against golden vectors with NumPy alone (no Swift): the rule of
golden/README.md.

For every output `<out>` of a case, golden/<case>/ holds `expected_<out>.npy` (float64) and
`tolerance_<out>.npy` (float64, per element, for the case's own profile and dtype). An element
passes iff |got − expected| ≤ tolerance; an expected NaN is matched by a NaN, an expected ±Inf by
the same infinity (or a value `allowed_<out>.json` lists for that element); a tolerance of +Inf
marks an element the format cannot resolve (spec/SPEC.md §5.4): not judged. Outputs stored in the
case's dtype (y, dx, y_eval) are first rounded to it, as `bnspec` does (CaseJudge.worst): a bfloat16
output given as uint16 is read as bit patterns; an infinite answer there passes when expected ±
tolerance rounds to that infinity (a reference within tolerance of the format's overflow).

    python -m bnspec.check GOLDEN RESULTS     # RESULTS/<case id>/<out>.npy, as `bnspec export` lays out
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import io
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from . import arrays
from .adapter import DATA_ARRAYS


class GoldenError(Exception):
    """A golden folder or case that cannot be read (missing, malformed, no tolerance files), or a
    results folder that cannot be judged against it (an entry that names no golden case, results
    of an export for another profile): one line, no verdicts."""


@dataclass
class OutputCheck:
    name: str
    passed: bool
    worst_ratio: float          # max |got − expected| ÷ tolerance over judged elements (∞: mismatch of a non-finite value)
    worst_index: int            # flat index of that element (-1 when nothing differs or sizes differ)
    beyond: int                 # elements beyond tolerance
    judged: int                 # elements judged (finite tolerance)
    detail: str = ""


@dataclass
class CheckResult:
    case: str
    passed: bool
    outputs: Dict[str, OutputCheck] = field(default_factory=dict)
    detail: str = ""


def read_allowed(path: str, data: Optional[bytes] = None) -> Dict[int, List[float]]:
    """`allowed_<out>.json` (or its bytes `data`, already read): {flat index: [values accepted there
    besides the expected one]}; "nan", "inf", "-inf" are the non-finite values."""
    try:
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
        d = json.loads(data.decode("utf-8"))
        return {int(e["index"]): [float(v) for v in e["values"]] for e in d["elements"]}
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise GoldenError(f"{path}: not an allowed-values file ({e})") from None


def check_output(name: str, got, expected, tolerance, storage: Optional[str] = None,
                 allowed: Optional[Dict[int, List[float]]] = None) -> OutputCheck:
    """Judges one output array (the core rule; `storage`: the dtype it is stored in, or None;
    `allowed`: values also accepted at some elements, from `allowed_<out>.json`)."""
    e = np.asarray(expected, np.float64).ravel()
    t = np.asarray(tolerance, np.float64).ravel()
    g = np.asarray(got)
    if storage == "bfloat16" and g.dtype == np.uint16:
        g = arrays.from_bfloat16_bits(g)
    g = np.asarray(g, np.float64).ravel()
    if g.size != e.size or t.size != e.size:
        return OutputCheck(name, False, math.inf, -1, max(g.size, e.size), e.size,
                           f"{name}: {g.size} values, expected {e.size}" + (f" ({t.size} tolerances)" if t.size != e.size else ""))
    if np.isnan(t).any() or (t < 0).any():
        raise GoldenError(f"tolerance of {name} holds a NaN or a negative bound")
    if storage is not None:
        g = arrays.round_to(g, storage)
    judged = np.isfinite(t)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        err = np.abs(g - e)
        ok = np.where(np.isnan(e), np.isnan(g), np.where(np.isinf(e), g == e, err <= t)) | ~judged
        if storage is not None:
            # An infinite answer to a finite reference within τ of the format's overflow (spec §5.3):
            # e ± τ rounds to that infinity in the storage dtype.
            edge = arrays.round_to(e + np.where(g > 0, t, -t), storage)
            ok |= judged & np.isfinite(e) & np.isinf(g) & (edge == g)
        ratio = np.where(t > 0, err / t, np.where(err == 0, 0.0, math.inf))
    for i, values in (allowed or {}).items():
        if 0 <= i < g.size and any(g[i] == v or (math.isnan(v) and math.isnan(g[i])) for v in values):
            ok[i] = True
    ratio = np.where(ok, np.where(judged & np.isfinite(ratio), ratio, 0.0), np.where(np.isfinite(ratio), ratio, math.inf))
    i = int(np.argmax(ratio)) if ratio.size else -1
    worst = float(ratio[i]) if ratio.size else 0.0
    detail = f"{name}[{i}] = {float(g[i])!r}, expected {float(e[i])!r}, tolerance {float(t[i])!r}" if ratio.size else ""
    return OutputCheck(name, bool(ok.all()), worst, i if worst > 0 else -1, int((~ok).sum()), int(judged.sum()), detail)


_MANIFESTS: Dict[str, tuple] = {}


def _manifest_files(golden_dir: str) -> Dict[str, str]:
    """The SHA-256 of every file of a golden folder, from its manifest.json (read once per folder,
    again when the manifest changes)."""
    path = os.path.join(golden_dir, "manifest.json")
    try:
        st = os.stat(path)
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = _MANIFESTS.get(os.path.abspath(path))
        if cached and cached[0] == key:
            return cached[1]
        with open(path, encoding="utf-8") as f:
            files = json.load(f)["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
    except OSError as e:
        raise GoldenError(f"{path}: cannot read ({e.strerror})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise GoldenError(f"{golden_dir}: not a golden folder (manifest.json: {e})") from None
    _MANIFESTS[os.path.abspath(path)] = (key, files)
    return files


def golden_bytes(golden_dir: str, relative: str) -> bytes:
    """A golden file's bytes, verified against the SHA-256 that manifest.json lists for it, as
    `bnspec` verifies them: a file the manifest does not list, or whose digest differs (tampered,
    truncated, replaced), is a GoldenError — never judged with (an outside red team's, round F: a
    tolerance file overwritten with 1e300 let all-zero outputs pass this checker, while bnspec
    reported the folder corrupt; a truncated expected file ended it with a traceback)."""
    want = _manifest_files(golden_dir).get(relative)
    path = os.path.join(golden_dir, relative)
    if want is None:
        raise GoldenError(f"{path}: not listed in manifest.json (not a file of this golden folder)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GoldenError(f"{path}: cannot read ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != want:
        raise GoldenError(f"{path}: corrupt: its SHA-256 differs from manifest.json's (regenerate the folder with bnspec generate)")
    return data


def golden_array(golden_dir: str, relative: str) -> np.ndarray:
    """A verified golden NPY file as an array."""
    try:
        return np.load(io.BytesIO(golden_bytes(golden_dir, relative)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GoldenError(f"{os.path.join(golden_dir, relative)}: not a readable NPY file ({e})") from None


def read_case(golden_dir: str, case_id: str) -> dict:
    path = os.path.join(golden_dir, case_id, "case.json")
    try:
        return json.loads(golden_bytes(golden_dir, f"{case_id}/case.json").decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GoldenError(f"{path}: not JSON ({e})") from None


def check(golden_dir: str, case_id: str, outputs: Optional[Dict[str, object]]) -> CheckResult:
    """Judges an implementation's `outputs` ({name: array}; None for a refusal) for one golden
    case against its expected values and stored tolerances."""
    case = read_case(golden_dir, case_id)
    folder = os.path.join(golden_dir, case_id)
    if case.get("expect_error"):
        ok = outputs is None
        return CheckResult(case_id, ok, detail="refused as the profile requires" if ok
                           else f"expected a refusal ({case['expect_error']}), got outputs")
    if outputs is None:
        return CheckResult(case_id, False, detail="refused a case the profile defines")
    names = sorted(case.get("outputs", {}))
    unknown = sorted(set(outputs) - set(names))
    if unknown:
        return CheckResult(case_id, False, detail=f"unexpected output {', '.join(unknown)} (this case has {', '.join(names)})")
    result = CheckResult(case_id, True)
    for name in names:
        if name not in outputs:
            continue  # optional outputs (batch statistics) are judged when present; see `required`
        tol_path = os.path.join(folder, f"tolerance_{name}.npy")
        if not os.path.isfile(tol_path):
            raise GoldenError(f"{tol_path}: no such file (this golden folder carries no tolerances; regenerate it with a "
                              "bnspec that writes tolerance_<out>.npy)")
        storage = case["dtype"] if name in DATA_ARRAYS else None  # parameter-dtype outputs are compared unrounded
        allowed_path = os.path.join(folder, f"allowed_{name}.json")
        allowed = None
        if os.path.isfile(allowed_path):
            allowed = read_allowed(allowed_path, golden_bytes(golden_dir, f"{case_id}/allowed_{name}.json"))
        tol = golden_array(golden_dir, f"{case_id}/tolerance_{name}.npy")
        if not np.all(tol >= 0):  # NaN compares false; +Inf (an element not judged) is allowed
            # A tolerance that is NaN or negative would pass or fail every element unread (an
            # outside red team's tampered golden folder): the folder is corrupt.
            raise GoldenError(f"{tol_path}: corrupt: a tolerance is NaN or negative")
        oc = check_output(name, outputs[name], golden_array(golden_dir, f"{case_id}/{case['outputs'][name]}"), tol, storage, allowed)
        result.outputs[name] = oc
        if not oc.passed:
            result.passed = False
    missing = [n for n in required(case) if n not in outputs]
    if missing:
        result.passed = False
        result.detail = f"missing output {', '.join(missing)}"
    elif not result.passed:
        worst = max((o for o in result.outputs.values() if not o.passed), key=lambda o: o.worst_ratio)
        result.detail = f"{worst.detail} ({worst.beyond} of {worst.judged} beyond tolerance, worst {worst.worst_ratio:.3g}× tolerance)"
    return result


def required(case: dict) -> List[str]:
    """Outputs an implementation must return (spec/AUDIT.md §2); batch_mean/batch_var are optional."""
    return [n for n in case.get("outputs", {}) if n not in ("batch_mean", "batch_var")]


#: NPY dtypes an output may have (spec/AUDIT.md §2): little-endian floats, and uint16 bit patterns
#: where the output is stored as bfloat16.
OUTPUT_DESCRS = ("<f8", "<f4", "<f2")


class OutputError(Exception):
    """An output file that is not an NPY array of the form the audit reads (one line)."""


#: The longest NPY header read, as bnspec's (NPY.maxHeaderBytes); NumPy writes under 1 KiB.
MAX_HEADER_BYTES = 1 << 20


def _npy_header(f):
    """(shape, fortran_order, dtype) of an NPY file opened at its start: format version 1.0, 2.0
    or 3.0 (a UTF-8 header), as bnspec reads them, the header parsed by NumPy's own reader (which
    refuses any key besides descr, fortran_order and shape)."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise OutputError("not an NPY array (no NPY magic)")
    major, minor = magic[6], magic[7]
    if major not in (1, 2, 3):
        raise OutputError(f"NPY version {major}.{minor} (1.0, 2.0 and 3.0 are read)")
    size = f.read(2 if major == 1 else 4)
    if len(size) != (2 if major == 1 else 4):
        raise OutputError("truncated NPY header")
    n = int.from_bytes(size, "little")
    if n > MAX_HEADER_BYTES:
        raise OutputError(f"NPY header of {n} bytes (more than the {MAX_HEADER_BYTES >> 20} MiB bnspec reads)")
    raw = f.read(n)
    if len(raw) != n:
        raise OutputError(f"truncated NPY header ({n} bytes declared, {len(raw)} in the file)")
    text = raw.decode("utf-8" if major == 3 else "latin1").encode("latin1")  # a non-Latin-1 header holds no float dtype
    v2 = io.BytesIO(len(text).to_bytes(4, "little") + text)  # as a 2.0 header, after the magic
    reader = np.lib.format.read_array_header_2_0
    if "max_header_size" in inspect.signature(reader).parameters:  # NumPy >= 1.24 caps it at 10000 bytes
        return reader(v2, max_header_size=MAX_HEADER_BYTES)
    return reader(v2)


def read_output(path: str, bfloat16: bool) -> np.ndarray:
    """An output array, read as `bnspec audit --results` reads it: NPY (format 1.0, 2.0 or 3.0,
    a header of at most 1 MiB) with exactly the keys descr, fortran_order and shape, C order, a
    little-endian float dtype (uint16 bit patterns where the output is stored as bfloat16), and
    as many bytes as its shape needs. Anything else is an OutputError (one line), never another
    exception."""
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype = _npy_header(f)
            descr = dtype.str
            if fortran:
                raise OutputError("Fortran-order NPY (write C order)")
            if descr not in OUTPUT_DESCRS and not (bfloat16 and descr == "<u2"):
                raise OutputError(f"dtype '{descr}' (expected <f8, <f4, <f2" + (", or <u2 for bfloat16)" if bfloat16 else ")")
                                  + ("; write little-endian" if descr[:1] == ">" else ""))
            count = math.prod(int(n) for n in shape)
            held = os.fstat(f.fileno()).st_size - f.tell()
            if held != count * dtype.itemsize:  # by the file's size, before reading (a huge shape is not allocated)
                raise OutputError(f"data holds {held} bytes but shape {tuple(shape)} of {descr} needs {count * dtype.itemsize}")
            data = f.read(held)
        if len(data) != held:
            raise OutputError(f"data holds {len(data)} bytes but shape {tuple(shape)} of {descr} needs {held}")
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    except OutputError:
        raise
    except (OSError, ValueError, EOFError, SyntaxError, TypeError) as e:  # a malformed header, an unreadable file
        raise OutputError(f"not an NPY array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _folder_result(golden_dir: str, cid: str, case: dict, d: str) -> CheckResult:
    """The verdict on one case folder of a results folder (`case`: its case.json), with the
    audit's rules on its entries."""
    names = set(case.get("outputs", {}))
    if not os.path.isdir(d):  # a file, or a link to nothing, where the case's folder belongs
        return CheckResult(cid, False, detail=f"{cid} in the results folder is not a folder (RESULTS/<case id>/<out>.npy)")
    entries = sorted(os.listdir(d))
    for e in entries:
        p = os.path.join(d, e)
        if os.path.islink(p):
            return CheckResult(cid, False, detail=f"{e} is a symbolic link; outputs must be files in the case folder")
        known = e == "error.txt" or (e.endswith(".npy") and (e[:-4] in names or case.get("expect_error")))
        if not os.path.isfile(p) or not known:
            return CheckResult(cid, False, detail=f"unexpected {'file' if os.path.isfile(p) else 'entry'} {e} in the case folder "
                                                  f"(allowed: {', '.join(sorted([n + '.npy' for n in names] + ['error.txt']))})")
    files = [e for e in entries if e != "error.txt"]
    if "error.txt" in entries:
        if files:
            return CheckResult(cid, False, detail=f"both error.txt (a refusal) and outputs ({', '.join(f[:-4] for f in files)}) "
                                                  "in the case folder: give one or the other")
        return check(golden_dir, cid, None)
    outputs = {}
    for f in files:
        bf16 = case.get("dtype") == "bfloat16" and f[:-4] in DATA_ARRAYS
        try:
            outputs[f[:-4]] = read_output(os.path.join(d, f), bf16)
        except OutputError as e:
            return CheckResult(cid, False, detail=f"{f}: {e}")
    return check(golden_dir, cid, outputs)


def check_results(golden_dir: str, results_dir: str) -> List[CheckResult]:
    """Judges every case folder in `results_dir` (<case id>/<out>.npy, or error.txt for a refusal)
    with the rules of `bnspec audit --results` (spec/AUDIT.md §2): only the case's outputs or
    error.txt, plain files (no links, no folders), not both; NPY outputs in C order, little-endian,
    with the three header keys. A file that breaks them fails its case with one line, and so does
    a case entry that is not a folder. An entry of `results_dir` that names no golden case (a
    typo would be skipped in silence; dot files aside) is a GoldenError before any case."""
    try:
        with open(os.path.join(golden_dir, "manifest.json"), encoding="utf-8") as f:
            ids = json.load(f)["cases"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GoldenError(f"{golden_dir}: not a golden folder (manifest.json: {e})") from None
    # Results of an export made for a profile (export.json beside results/) answer requests under
    # that profile; the stored tolerances and expected values are each case's own profile's. A
    # case of another profile cannot be judged here (an outside red team's: 15 of 77 spurious
    # failures): `bnspec audit --results` retargets it.
    export_profile = None
    marker = os.path.join(os.path.dirname(os.path.abspath(results_dir)), "export.json")
    if os.path.isfile(marker):
        try:
            with open(marker, encoding="utf-8") as f:
                export_profile = json.load(f).get("profile")
        except (OSError, ValueError, AttributeError):
            export_profile = None
    if not os.path.isdir(results_dir):
        raise GoldenError(f"{results_dir}: no such results folder")
    if os.path.isfile(os.path.join(results_dir, "export.json")):
        raise GoldenError(f"{results_dir}: is the export folder; the outputs go to (and the checker takes) "
                          f"{os.path.join(results_dir, 'results')}")
    known = set(ids) | set(os.listdir(golden_dir))  # as bnspec: the golden folder's entries
    stray = sorted(e for e in os.listdir(results_dir) if e not in known and not e.startswith("."))
    if stray:
        raise GoldenError(f"{os.path.join(results_dir, stray[0])}: names no golden case"
                          + (f" (and {len(stray) - 1} more entries of the results folder)" if len(stray) > 1 else "")
                          + ": each folder must be a case id")
    out = []
    for cid in ids:
        d = os.path.join(results_dir, cid)
        if not os.path.lexists(d):
            continue
        case = read_case(golden_dir, cid)
        if export_profile is not None and case.get("profile") != export_profile:
            raise GoldenError(f"{results_dir}: results of an export for profile {export_profile}, but case {cid} is a "
                              f"{case.get('profile')} case: this checker judges each case under its own "
                              f"profile; judge them with bnspec audit --results {results_dir} --profile {export_profile}")
        out.append(_folder_result(golden_dir, cid, case, d))
    return out


#: SHA-256 of the default suite's manifest.json this release ships (Sources/BNGolden/GoldenRelease.swift
#: holds the same; tests keep both equal to golden/): a folder whose files were edited and whose
#: manifest was re-hashed, or that was pruned, passes every per-file check, so main() says when the
#: folder is not this suite (an outside red team's, round I).
RELEASE_MANIFEST_SHA256 = "ab530dce435f2def5713cc2d8cc8414bc159a83b25773245c0a373452720d219"


def release_notice(golden_dir: str) -> Optional[str]:
    """A one-line notice when golden_dir's manifest is not this release's default suite; None when it is."""
    try:
        with open(os.path.join(golden_dir, "manifest.json"), "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None  # the checker itself reports an unreadable folder
    if sha == RELEASE_MANIFEST_SHA256:
        return None
    return (f"golden manifest SHA-256 {sha[:16]}… is not this release's default suite ({RELEASE_MANIFEST_SHA256[:16]}…): "
            "its expected values and tolerances are taken as they are; `bnspec generate --check --out <golden>` recomputes them")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bnspec.check", description="Check outputs against golden vectors (NumPy only).")
    ap.add_argument("golden", help="golden folder (manifest.json, <case>/expected_*.npy, tolerance_*.npy)")
    ap.add_argument("results", help="folder of <case id>/<output>.npy (error.txt for a refusal)")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.results):
        sys.exit(f"bnspec.check: error: {a.results}: no such folder")
    try:
        results = check_results(a.golden, a.results)
    except GoldenError as e:
        sys.exit(f"bnspec.check: error: {e}")
    for r in results:
        if not r.passed:
            print(f"FAIL {r.case}: {r.detail}")
    failed = sum(not r.passed for r in results)
    print(f"check: {len(results) - failed} passed, {failed} failed")
    notice = release_notice(a.golden) if results else None  # beside the verdict it qualifies
    if notice:
        print(f"bnspec.check: warning: {notice}", file=sys.stderr)
    if not results:
        sys.exit("bnspec.check: error: no results for any golden case in " + a.results)
    sys.exit(1 if failed else 0)
