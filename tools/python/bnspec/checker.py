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

    python -m bnspec.check GOLDEN RESULTS [--case ID]...   # RESULTS/<case id>/<out>.npy, as `bnspec export` lays out

Golden files are trusted only as bnspec trusts them: manifest.json read by GoldenStore.decodeManifest's
rules, and every file of a judged case folder (and the folder's README.md) a regular file with the
SHA-256 the manifest lists (verify_case). Exit status 0 pass, 1 a failed case (with a repro line), 2
nothing judged (one line `bnspec.check: error: <what> (<why>)`).
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import io
import json
import math
import os
import shlex
import stat
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
            data = _read_regular(path, TEXT_LIMIT)[0]
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
        raise GoldenError(f"the tolerance of {name} is corrupt (it holds a NaN or a negative bound)")
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


#: Largest golden NPY file read: bnspec's FileRead.npyLimit (a 64 KiB header and 2²⁸ float64 values).
NPY_LIMIT = (1 << 16) + (1 << 28) * 8
#: Largest other golden file read (manifest.json, case.json, request.json, README.md): FileRead.textLimit.
TEXT_LIMIT = 64 << 20
#: The manifest format bnspec writes and reads (Manifest.formatVersion).
MANIFEST_FORMAT = 1
#: Longest file or folder name, in bytes of UTF-8 (GoldenStore.maxNameBytes).
MAX_NAME_BYTES = 255

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(path: str, mode: int) -> GoldenError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return GoldenError(f"{path} is not a regular file (it is {kind}; refused before reading)")


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _stat(path: str, missing: str) -> os.stat_result:
    """os.stat of `path` (symlinks resolved); a GoldenError `PATH (missing)` when it does not exist."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise GoldenError(f"{path} ({missing})") from None
    except OSError as e:
        raise GoldenError(f"{path}: cannot read ({e.strerror})") from None


def _regular_stat(path: str) -> os.stat_result:
    """os.stat of `path` (symlinks resolved), which must be a regular file: a GoldenError otherwise."""
    st = _stat(path, "no such file")
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    return st


def _read_regular(path: str, limit: int):
    """(bytes, stat) of `path`, as bnspec's FileRead reads a golden file: a regular file after
    following symlinks, of at most `limit` bytes, else a GoldenError before anything is read (a FIFO
    would hang the read, /dev/zero never end it). Stat'ed, then opened non-blocking (a FIFO cannot
    hang the open) and checked again on the descriptor; exactly the size fstat gives is read."""
    _regular_stat(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise GoldenError(f"{path} (no such file)") from None
    except OSError as e:
        raise GoldenError(f"{path}: cannot read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped since the stat
            raise _not_regular(path, st.st_mode)
        if st.st_size > limit:
            raise GoldenError(f"{path} is too large ({st.st_size} bytes, over the limit of {limit})")
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        chunks, left = [], st.st_size
        while left > 0:
            b = os.read(fd, min(left, 1 << 26))
            if not b:
                raise GoldenError(f"{path} changed while read (it ends after {st.st_size - left} of its {st.st_size} bytes)")
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks), st
    except OSError as e:
        raise GoldenError(f"{path}: cannot read ({e.strerror})") from None
    finally:
        os.close(fd)


def _limit(relative: str) -> int:
    return NPY_LIMIT if relative.endswith(".npy") else TEXT_LIMIT


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise _DuplicateKey(k)
        d[k] = v
    return d


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _strict_json(data: bytes):
    """JSON as bnspec's decoder reads it: UTF-8, no NaN/Infinity tokens; a key that appears twice in
    one object raises _DuplicateKey (JSONKeys.firstDuplicate: Python's json keeps the last silently)."""
    return json.loads(data.decode("utf-8"), object_pairs_hook=_unique_pairs, parse_constant=_no_constant)


def _plain_name(s: str) -> bool:
    """GoldenStore.isPlainName: one non-empty path component, not . or .., at most 255 bytes."""
    return bool(s) and s not in (".", "..") and "/" not in s and "\0" not in s and len(s.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES


@dataclass(frozen=True)
class _Manifest:
    cases: tuple                # case ids, in manifest order
    files: Dict[str, str]       # relative path -> SHA-256
    by_case: Dict[str, tuple]   # case id -> its listed files (relative paths)
    top: tuple                  # listed files outside the case folders (README.md)
    sha256: str                 # of manifest.json's bytes


_MANIFESTS: Dict[str, tuple] = {}


def _decode_manifest(data: bytes, path: str) -> dict:
    """Decodes and checks manifest.json's bytes as GoldenStore.decodeManifest: valid JSON with
    format, suite, generator, cases and files; no key twice in one object; format 1; no case twice;
    case ids plain folder names; file paths relative, inside the folder; every file of a listed case."""
    def corrupt(why):
        return GoldenError(f"{path} is corrupt ({why})")
    try:
        m = _strict_json(data)
    except _DuplicateKey as e:
        raise corrupt(f"key '{str(e.args[0])[:80]}' appears twice in one object: a file listed twice?") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise corrupt(f"manifest is not valid: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(m, dict):
        raise corrupt("manifest is not valid: not a JSON object")
    for key, test, kind in (("format", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
                            ("suite", lambda v: isinstance(v, str), "a string"),
                            ("generator", lambda v: isinstance(v, str), "a string"),
                            ("cases", lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v), "a list of strings"),
                            ("files", lambda v: isinstance(v, dict) and all(isinstance(h, str) for h in v.values()),
                             "an object of SHA-256 strings")):
        if key not in m:
            raise corrupt(f"manifest is not valid: no key '{key}'")
        if not test(m[key]):
            raise corrupt(f"manifest is not valid: '{key}' is not {kind}")
    if m["format"] != MANIFEST_FORMAT:
        raise corrupt(f"manifest format {m['format']}; this checker reads format {MANIFEST_FORMAT}, the one bnspec writes")
    seen = set()
    for cid in m["cases"]:
        if cid in seen:
            raise corrupt(f"case '{cid[:80]}' is listed twice")
        seen.add(cid)
    for cid in m["cases"]:
        if not _plain_name(cid):
            raise corrupt(f"case id '{cid[:80]}' is not a plain folder name: at most {MAX_NAME_BYTES} bytes, no '/'")
    for rel in m["files"]:
        if rel.startswith("/") or not all(_plain_name(p) for p in rel.split("/")):
            raise corrupt(f"file path '{rel[:80]}' leaves the golden folder or is not relative")
    for rel in sorted(m["files"]):
        parts = rel.split("/", 1)
        if len(parts) == 2 and parts[0] not in seen:
            raise corrupt(f"file '{rel[:120]}' belongs to no listed case: an edited manifest?")
    return m


def _manifest(golden_dir: str) -> _Manifest:
    """golden_dir's manifest.json, read as bnspec reads it (a regular file; _decode_manifest's
    rules; no case folder it does not list), once per folder and again when the file changes."""
    path = os.path.join(golden_dir, "manifest.json")
    if not os.path.isdir(golden_dir):
        raise GoldenError(f"{golden_dir} (no such golden folder)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise GoldenError(f"{golden_dir}: not a golden folder (no manifest.json in it; run bnspec generate)") from None
    except OSError as e:
        raise GoldenError(f"{path}: cannot read ({e.strerror})") from None
    cached = _MANIFESTS.get(os.path.abspath(path))
    if cached and cached[0] == _stat_key(st):
        return cached[1]
    data, st = _read_regular(path, TEXT_LIMIT)
    m = _decode_manifest(data, path)
    listed = set(m["cases"])
    try:
        entries = sorted(os.listdir(golden_dir))
    except OSError as e:
        raise GoldenError(f"{golden_dir}: cannot list the folder ({e.strerror})") from None
    for entry in entries:  # a case dropped from `cases` shrinks the suite in silence
        if not entry.startswith(".") and entry not in listed and os.path.isdir(os.path.join(golden_dir, entry)):
            raise GoldenError(f"{path} is corrupt (the folder holds case folder '{entry[:80]}', which the manifest "
                              "does not list: an edited manifest?)")
    by_case: Dict[str, list] = {c: [] for c in m["cases"]}
    top = []
    for rel in sorted(m["files"]):
        parts = rel.split("/", 1)
        (by_case[parts[0]] if len(parts) == 2 else top).append(rel)
    manifest = _Manifest(tuple(m["cases"]), dict(m["files"]), {c: tuple(v) for c, v in by_case.items()}, tuple(top),
                         hashlib.sha256(data).hexdigest())
    _MANIFESTS[os.path.abspath(path)] = (_stat_key(st), manifest)
    return manifest


def _manifest_files(golden_dir: str) -> Dict[str, str]:
    """The SHA-256 of every file of a golden folder, from its manifest.json."""
    return _manifest(golden_dir).files


#: Files verified against a manifest without being used: absolute path -> (manifest SHA-256, listed
#: SHA-256, the file's stat key when it was hashed). A file is hashed again once it changes.
_VERIFIED: Dict[str, tuple] = {}


def _verified(golden_dir: str, relative: str, m: _Manifest):
    """(bytes, stat) of a golden file whose SHA-256 equals the one manifest.json lists for it."""
    want = m.files.get(relative)
    path = os.path.join(golden_dir, relative)
    if want is None:
        raise GoldenError(f"{path}: not listed in manifest.json (not a file of this golden folder)")
    if not os.path.lexists(path):
        raise GoldenError(f"{path} (listed in manifest.json but missing)")
    data, st = _read_regular(path, _limit(relative))
    if hashlib.sha256(data).hexdigest() != want:
        raise GoldenError(f"{path} is corrupt (its SHA-256 differs from manifest.json's: regenerate the folder with bnspec generate)")
    _VERIFIED[os.path.abspath(path)] = (m.sha256, want, _stat_key(st))
    return data, st


def _verify_file(golden_dir: str, relative: str, m: _Manifest) -> None:
    """Checks one listed file against the manifest, hashing it only when it changed since it was last
    hashed (by its stat: device, inode, mode, size, mtime and ctime)."""
    path = os.path.join(golden_dir, relative)
    if os.path.lexists(path):
        cached = _VERIFIED.get(os.path.abspath(path))
        if cached and cached[:2] == (m.sha256, m.files.get(relative)) and cached[2] == _stat_key(_regular_stat(path)):
            return
    _verified(golden_dir, relative, m)


def verify_case(golden_dir: str, case_id: str) -> None:
    """Checks every file of a golden case folder against manifest.json, as bnspec does before a run
    (GoldenStore.checkFiles): each file the manifest lists for the case (case.json, request.json,
    inputs, expected values, tolerances, allowed values) must be a regular file with the listed
    SHA-256, and the folder may hold no other file (dot files aside); the folder's own listed files
    (README.md) are checked too where present. A GoldenError (one line) otherwise. Each file is
    hashed once, again only when it changes."""
    m = _manifest(golden_dir)
    if case_id not in m.by_case:
        raise GoldenError(f"{case_id}: not a case of {golden_dir} (manifest.json does not list it)")
    for rel in m.top:  # as bnspec: verified where present
        if os.path.lexists(os.path.join(golden_dir, rel)):
            _verify_file(golden_dir, rel, m)
    folder = os.path.join(golden_dir, case_id)
    st = _stat(folder, "a case manifest.json lists, but no such folder")
    if not stat.S_ISDIR(st.st_mode):
        raise GoldenError(f"{folder} is not a folder (a case manifest.json lists)")
    listed = m.by_case[case_id]
    names = {rel.split("/")[1] for rel in listed}
    try:
        entries = sorted(os.listdir(folder))
    except OSError as e:
        raise GoldenError(f"{folder}: cannot list the folder ({e.strerror})") from None
    for e in entries:
        if e not in names and not e.startswith("."):
            raise GoldenError(f"{os.path.join(folder, e)}: not listed in manifest.json (not a file of this golden folder)")
    for rel in listed:
        _verify_file(golden_dir, rel, m)


def golden_bytes(golden_dir: str, relative: str) -> bytes:
    """A golden file's bytes, verified against the SHA-256 that manifest.json lists for it, as
    `bnspec` verifies them: a file the manifest does not list, or whose digest differs (tampered,
    truncated, replaced), or that is not a regular file (a FIFO, a link to /dev/zero) is a
    GoldenError — never judged with (an outside red team's, round F: a tolerance file overwritten
    with 1e300 let all-zero outputs pass this checker, while bnspec reported the folder corrupt; a
    truncated expected file ended it with a traceback)."""
    return _verified(golden_dir, relative, _manifest(golden_dir))[0]


def _npy_from_bytes(data: bytes, path: str) -> np.ndarray:
    """An NPY file's bytes as an array, its header read as bnspec's (_npy_header) and its data the
    exact size its shape needs (a huge declared shape is refused, not allocated)."""
    try:
        f = io.BytesIO(data)
        shape, fortran, dtype = _npy_header(f)
        if dtype.hasobject:
            raise OutputError(f"dtype '{dtype.str}' holds Python objects")
        count = math.prod(int(n) for n in shape)
        held = len(data) - f.tell()
        if held != count * dtype.itemsize:
            raise OutputError(f"data holds {held} bytes but shape {tuple(shape)} of {dtype.str} needs {count * dtype.itemsize}")
        return np.frombuffer(data, dtype=dtype, count=count, offset=f.tell()).reshape(shape, order="F" if fortran else "C").copy()
    except OutputError as e:
        raise GoldenError(f"{path}: not a readable NPY file ({e})") from None
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
        raise GoldenError(f"{path}: not a readable NPY file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def golden_array(golden_dir: str, relative: str) -> np.ndarray:
    """A verified golden NPY file as an array."""
    return _npy_from_bytes(golden_bytes(golden_dir, relative), os.path.join(golden_dir, relative))


def read_case(golden_dir: str, case_id: str) -> dict:
    path = os.path.join(golden_dir, case_id, "case.json")
    try:
        case = _strict_json(golden_bytes(golden_dir, f"{case_id}/case.json"))
    except _DuplicateKey as e:
        raise GoldenError(f"{path} is corrupt (case JSON is not valid: key '{str(e.args[0])[:80]}' appears twice in one object)") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise GoldenError(f"{path}: not JSON ({e})") from None
    if not isinstance(case, dict):
        raise GoldenError(f"{path} is corrupt (case JSON is not valid: not a JSON object)")
    return case


def check(golden_dir: str, case_id: str, outputs: Optional[Dict[str, object]]) -> CheckResult:
    """Judges an implementation's `outputs` ({name: array}; None for a refusal) for one golden
    case against its expected values and stored tolerances. Every file of the case folder is
    verified against manifest.json first (verify_case)."""
    verify_case(golden_dir, case_id)
    listed = _manifest(golden_dir).files
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
        if f"{case_id}/tolerance_{name}.npy" not in listed:  # verify_case: listed files are there, others are not
            raise GoldenError(f"{tol_path}: no such file (this golden folder carries no tolerances; regenerate it with a "
                              "bnspec that writes tolerance_<out>.npy)")
        storage = case["dtype"] if name in DATA_ARRAYS else None  # parameter-dtype outputs are compared unrounded
        allowed_path = os.path.join(folder, f"allowed_{name}.json")
        allowed = None
        if f"{case_id}/allowed_{name}.json" in listed:
            allowed = read_allowed(allowed_path, golden_bytes(golden_dir, f"{case_id}/allowed_{name}.json"))
        tol = golden_array(golden_dir, f"{case_id}/tolerance_{name}.npy")
        if not np.all(tol >= 0):  # NaN compares false; +Inf (an element not judged) is allowed
            # A tolerance that is NaN or negative would pass or fail every element unread (an
            # outside red team's tampered golden folder): the folder is corrupt.
            raise GoldenError(f"{tol_path} is corrupt (a tolerance is NaN or negative)")
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
        # Opened non-blocking and checked on the descriptor: a FIFO or a device put in place of an
        # output (after the folder's entries were checked) is refused, not read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OutputError("not a regular file")
            if getattr(os, "O_NONBLOCK", 0):
                os.set_blocking(fd, True)
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


def check_results(golden_dir: str, results_dir: str, cases: Optional[List[str]] = None) -> List[CheckResult]:
    """Judges every case folder in `results_dir` (<case id>/<out>.npy, or error.txt for a refusal),
    or only the cases `cases` names (exact ids; each must be a golden case with results), with the
    rules of `bnspec audit --results` (spec/AUDIT.md §2): only the case's outputs or error.txt,
    plain files (no links, no folders), not both; NPY outputs in C order, little-endian, with the
    three header keys. A file that breaks them fails its case with one line, and so does a case
    entry that is not a folder. An entry of `results_dir` that names no golden case (a typo would
    be skipped in silence; dot files aside) is a GoldenError before any case. Each judged case's
    golden files are verified against manifest.json first (verify_case)."""
    m = _manifest(golden_dir)
    ids = m.cases
    selected = None
    if cases is not None:
        selected = set(cases)
        unknown = sorted(selected - set(ids))
        if unknown:
            raise GoldenError(f"{unknown[0]}: not a case of {golden_dir} (manifest.json does not list it; a case is named by its exact id)")
        ids = [c for c in ids if c in selected]
    # Results of an export made for a profile (export.json beside results/) answer requests under
    # that profile; the stored tolerances and expected values are each case's own profile's. A
    # case of another profile cannot be judged here (an outside red team's: 15 of 77 spurious
    # failures): `bnspec audit --results` retargets it.
    export_profile = None
    marker = os.path.join(os.path.dirname(os.path.abspath(results_dir)), "export.json")
    if os.path.isfile(marker):
        try:
            export_profile = json.loads(_read_regular(marker, TEXT_LIMIT)[0].decode("utf-8")).get("profile")
        except (GoldenError, ValueError, UnicodeDecodeError, AttributeError):
            export_profile = None
    if not os.path.isdir(results_dir):
        raise GoldenError(f"{results_dir} (no such results folder)")
    if os.path.isfile(os.path.join(results_dir, "export.json")):
        raise GoldenError(f"{results_dir}: is the export folder (the outputs go to, and the checker takes, "
                          f"{os.path.join(results_dir, 'results')})")
    known = set(m.cases) | set(os.listdir(golden_dir))  # as bnspec: the golden folder's entries
    stray = sorted(e for e in os.listdir(results_dir) if e not in known and not e.startswith("."))
    if stray:
        raise GoldenError(f"{os.path.join(results_dir, stray[0])}: names no golden case (each folder must be a case id"
                          + (f"; and {len(stray) - 1} more entries of the results folder" if len(stray) > 1 else "") + ")")
    out = []
    for cid in ids:
        d = os.path.join(results_dir, cid)
        if not os.path.lexists(d):
            if selected is not None:
                raise GoldenError(f"{d} (no such folder: the results hold nothing for case {cid}, which was asked for)")
            continue
        verify_case(golden_dir, cid)  # before any verdict on the case, whatever its results hold
        case = read_case(golden_dir, cid)
        if export_profile is not None and case.get("profile") != export_profile:
            raise GoldenError(f"{results_dir}: results of an export for profile {export_profile}, but case {cid} is a "
                              f"{case.get('profile')} case (this checker judges each case under its own "
                              f"profile; judge them with bnspec audit --results {results_dir} --profile {export_profile})")
        out.append(_folder_result(golden_dir, cid, case, d))
    return out


#: SHA-256 of the default suite's manifest.json this release ships (Sources/BNGolden/GoldenRelease.swift
#: holds the same; tests keep both equal to golden/): a folder whose files were edited and whose
#: manifest was re-hashed, or that was pruned, passes every per-file check, so main() says when the
#: folder is not this suite (an outside red team's, round I).
RELEASE_MANIFEST_SHA256 = "d3570ba0e6d5a2b1ef516c2af31d2dbdcc12ee5f54d6b4b7cec546a01c412246"


def release_notice(golden_dir: str) -> Optional[str]:
    """A one-line notice when golden_dir's manifest is not this release's default suite; None when it is."""
    try:
        sha = hashlib.sha256(_read_regular(os.path.join(golden_dir, "manifest.json"), TEXT_LIMIT)[0]).hexdigest()
    except GoldenError:
        return None  # the checker itself reports an unreadable folder
    if sha == RELEASE_MANIFEST_SHA256:
        return None
    return (f"golden manifest SHA-256 {sha[:16]}… is not this release's default suite ({RELEASE_MANIFEST_SHA256[:16]}…): "
            "its expected values and tolerances are taken as they are; `bnspec generate --check --out <golden>` recomputes them")


def repro_command(golden_dir: str, results_dir: str, case_id: str) -> str:
    """The command line that judges `case_id` alone again (absolute paths, shell-quoted)."""
    return "python -m bnspec.check " + " ".join(shlex.quote(a) for a in (os.path.abspath(golden_dir), os.path.abspath(results_dir),
                                                                          "--case", case_id))


def _fail(message: str) -> None:
    """The one line of an error (`bnspec.check: error: <what> (<why>)`), exit status 2: nothing was judged."""
    line = " ".join(str(message).replace("\r", "\n").split("\n"))
    print(f"bnspec.check: error: {line}", file=sys.stderr)
    sys.exit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every error of the checker, not argparse's usage block
        _fail(f"{message} (usage: python -m bnspec.check GOLDEN RESULTS [--case ID]...)")


def main(argv=None) -> None:
    """`python -m bnspec.check GOLDEN RESULTS [--case ID]...`. Exit status: 0 every judged case
    passed, 1 a case failed (each FAIL line followed by the command that judges that case alone
    again), 2 nothing could be judged (a golden or results folder that cannot be read or is
    corrupt, an unknown case, no results; one line `bnspec.check: error: <what> (<why>)`)."""
    ap = _Parser(prog="python -m bnspec.check", description="Check outputs against golden vectors (NumPy only).",
                 epilog="Exit status: 0 every judged case passed, 1 a case failed, 2 nothing could be judged.")
    ap.add_argument("golden", help="golden folder (manifest.json, <case>/expected_*.npy, tolerance_*.npy)")
    ap.add_argument("results", help="folder of <case id>/<output>.npy (error.txt for a refusal)")
    ap.add_argument("--case", action="append", metavar="ID", dest="cases",
                    help="judge only this case (its exact id; repeatable)")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.results):
        _fail(f"{a.results} (no such folder)")
    try:
        results = check_results(a.golden, a.results, a.cases)
    except GoldenError as e:
        _fail(str(e))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, MemoryError, RecursionError) as e:
        # A golden file bnspec would refuse in a way this checker does not name (a malformed case.json
        # behind a re-hashed manifest): still one line, not a traceback.
        _fail(f"{a.golden}: cannot be judged ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})")
    for r in results:
        if not r.passed:
            print(f"FAIL {r.case}: {r.detail}")
            print(f"  repro: {repro_command(a.golden, a.results, r.case)}")
    failed = sum(not r.passed for r in results)
    print(f"check: {len(results) - failed} passed, {failed} failed")
    notice = release_notice(a.golden) if results else None  # beside the verdict it qualifies
    if notice:
        print(f"bnspec.check: warning: {notice}", file=sys.stderr)
    if not results:
        _fail(f"no results for any golden case (none in {a.results})")
    sys.exit(1 if failed else 0)
