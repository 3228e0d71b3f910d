"""Running `bnspec audit` from Python: finding the binary, serving an adapter class in a
subprocess, and reading the JSON report back as typed values."""
from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterable, List, Optional, Sequence

from .adapter import Adapter
from .report import AuditReport
from .target import describe, import_root


class AuditError(Exception):
    """The audit could not be run as asked (no bnspec binary, bad input, unknown profile, the
    adapter did not start…): no verdicts. The message is one line, bnspec's own when it gave one.
    `status` is bnspec's exit status when it ran (64: a usage error, such as an unknown profile;
    2: it could not run as asked), else None."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


def find_checkout(start: str) -> Optional[str]:
    """The nearest folder at or above `start` holding spec/catalog.txt (a BNSpec checkout)."""
    d = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(d, "spec", "catalog.txt")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def find_binary(binary: Optional[str] = None, cwd: Optional[str] = None) -> List[str]:
    """The bnspec command: `binary` if given, else $BNSPEC (a path or a command line), else
    `bnspec` on PATH, else the newest of .build/release/bnspec and .build/debug/bnspec in the
    checkout around `cwd` (or around this package, when it is used from a checkout)."""
    given = binary or os.environ.get("BNSPEC")
    if given:
        cmd = shlex.split(given)
        exe = cmd[0] if os.sep in cmd[0] else shutil.which(cmd[0])
        if not exe or not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            source = "--bnspec-binary/binary=" if binary else "BNSPEC="
            raise AuditError(f"bnspec: error: {source}{given} is not an executable (build it with swift build, or fix the path)")
        return [os.path.abspath(exe)] + cmd[1:]
    on_path = shutil.which("bnspec")
    if on_path:
        return [on_path]
    for start in (cwd or os.getcwd(), os.path.dirname(os.path.abspath(__file__))):
        root = find_checkout(start)
        if root:
            built = [os.path.join(root, ".build", c, "bnspec") for c in ("release", "debug")]
            built = [b for b in built if os.access(b, os.X_OK)]
            if built:
                return [max(built, key=os.path.getmtime)]
    raise AuditError("bnspec: error: no bnspec binary (set BNSPEC=/path/to/bnspec, put bnspec on PATH, "
                     "or run swift build in a BNSpec checkout)")


_help_cache = {}


def exact_case_selection(bnspec: Sequence[str]) -> bool:
    """True when this bnspec's audit takes `--case ID` as an exact, repeatable selector (the
    form that also has --match/--exclude/--list); older ones take one substring."""
    key = tuple(bnspec)
    if key not in _help_cache:
        try:
            out = subprocess.run(list(bnspec) + ["audit", "--help"], capture_output=True, text=True, timeout=60)
            _help_cache[key] = "--match" in out.stdout + out.stderr
        except (OSError, subprocess.TimeoutExpired):
            _help_cache[key] = False
    return _help_cache[key]


def adapter_command(adapter=None, args: Sequence[str] = (), python: Optional[str] = None, scratch: Optional[str] = None) -> str:
    """The shell command that serves `adapter` (an Adapter subclass, an instance — pickled into
    `scratch` — or a "module:Class" / "file.py:Class" target) in a fresh Python process."""
    py = python or sys.executable
    if isinstance(adapter, str):
        target, extra = adapter, []
    elif isinstance(adapter, type) and issubclass(adapter, Adapter):
        target, extra = describe(adapter), []
    elif isinstance(adapter, Adapter):
        if args:
            raise AuditError("bnspec: error: an adapter instance takes no args (pass the class and args)")
        if scratch is None:
            raise AuditError("bnspec: error: an adapter instance cannot be served (it needs a scratch folder to be pickled into)")
        path = os.path.join(scratch, "adapter.pickle")
        try:
            with open(path, "wb") as f:
                pickle.dump(adapter, f)
        except Exception as e:
            raise AuditError(f"bnspec: error: cannot pickle {type(adapter).__name__} to serve it in a subprocess ({e}; "
                             "pass the class and args instead)") from None
        target, extra = describe(adapter), ["--pickle", path]
    else:
        raise AuditError(f"bnspec: error: adapter must be a bnspec.Adapter subclass, instance or 'module:Class' "
                         f"(got {type(adapter).__name__})")
    cmd = [py, "-m", "bnspec.serve"] + extra + [target] + [str(a) for a in args]
    env = []
    paths = [p for p in (import_root(target), _package_root()) if p]
    if paths:
        env = ["env", "PYTHONPATH=" + shlex.quote(os.pathsep.join(dict.fromkeys(paths)))]  # bnspec runs `exec CMD`
    return " ".join(env + [shlex.quote(c) for c in cmd])


def _package_root() -> Optional[str]:
    """The folder this bnspec package is imported from, when the serving interpreter might not
    find it by itself (not installed: used from a checkout's tools/python)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return None if "site-packages" in root or "dist-packages" in root else root


def _session_processes(sid: int) -> List[int]:
    """Processes of session `sid` (Linux /proc; empty elsewhere)."""
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid:  # state ppid pgrp session …
                pids.append(int(e))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def _end_session(proc: subprocess.Popen) -> None:
    """Ends bnspec and everything it started (its adapter runs in a process group of its own,
    but in bnspec's session): SIGTERM, then SIGKILL after 5 s."""
    sid = proc.pid
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        pids = set(_session_processes(sid))
        if proc.poll() is None:
            pids.add(proc.pid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not _session_processes(sid) and proc.returncode is not None:
                return
            time.sleep(0.05)
    proc.poll()


def _check_report_path(path: str) -> None:
    """A report path may name a new file, an empty one or a previous BNSpec report: anything else
    (another file, a folder, a device or pipe) is refused, so a report path is never a way to lose
    a user's file (an outside red team's: json_path had overwritten any file)."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        raise AuditError(f"bnspec: error: {path}: is a folder (json_path names the report file)")
    refused = AuditError(f"bnspec: error: {path}: exists and is not a BNSpec report (left as it is; choose another json_path)")
    if not os.path.isfile(path):
        if os.path.islink(path) and not os.path.exists(path):
            return  # a link to nothing: replacing it loses nothing
        raise refused
    if os.path.getsize(path) == 0:
        return
    try:
        with open(path, "rb") as f:
            if f.read(64).lstrip()[:1] != b"{":  # not JSON: not read whole
                raise refused
            f.seek(0)
            schema = json.loads(f.read().decode("utf-8")).get("schema", "")
    except (OSError, ValueError, AttributeError):
        schema = ""
    if not str(schema).startswith("bnspec-"):
        raise refused


def _write_report(src: str, path: str) -> None:
    """Copies the report `src` to `path` atomically: into a new file of its own in the same folder
    (created exclusively, so no other file is touched; its mode as any new file's, by the umask),
    then renamed over `path`, so a reader never sees half a report. `path` is checked again just
    before (the audit may have run for an hour): a file put there meanwhile that is not a BNSpec
    report is left as it is."""
    _check_report_path(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = None
    try:
        while tmp is None:
            candidate = os.path.join(folder, f".{name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
            try:
                out = open(candidate, "xb")
            except FileExistsError:
                continue
            tmp = candidate
        with out, open(src, "rb") as f:
            shutil.copyfileobj(f, out)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise AuditError(f"bnspec: error: {path}: cannot write the report ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def _checked_nothing(path: str) -> bool:
    try:
        r = AuditReport.load(path)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return r.passed + r.failed == 0 and len(r.results) > 0


def audit(adapter=None, *, profile: str = "pytorch", golden: Optional[str] = None, cases: Optional[Iterable[str]] = None,
          timeout: Optional[float] = None, case_timeout: Optional[float] = None, start_timeout: Optional[float] = None,
          args: Sequence[str] = (), command: Optional[str] = None, binary: Optional[str] = None, python: Optional[str] = None,
          cwd: Optional[str] = None, json_path: Optional[str] = None, junit: Optional[str] = None, html: Optional[str] = None) -> AuditReport:
    """Audits `adapter` (a bnspec.Adapter subclass, built with `args`; an instance; or a
    "module:Class" target) — or the adapter `command` of any language — with `bnspec audit`
    against `profile`, and returns the report. `cases`: exact golden case ids (default all).
    `timeout`: seconds for the whole audit (bnspec's --timeout; the process is ended 60 s
    after it). `json_path`: the report is also written there, atomically; an existing file is
    replaced only when it is empty or a BNSpec report, as bnspec's own report paths are (else
    AuditError, before the audit and again before the report is renamed into place). Raises AuditError when the audit cannot run (no verdicts)."""
    if (adapter is None) == (command is None):
        raise AuditError("bnspec: error: give exactly one of adapter or command (both or neither given)")
    if json_path:
        _check_report_path(json_path)
    bnspec = find_binary(binary, cwd)
    wanted = None if cases is None else ([cases] if isinstance(cases, str) else list(dict.fromkeys(cases)))
    if wanted is not None and not wanted:
        raise AuditError("bnspec: error: no case selected (cases is empty)")
    with tempfile.TemporaryDirectory(prefix="bnspec-py-") as scratch:
        cmd = command if command is not None else adapter_command(adapter, args, python, scratch)
        report_path = os.path.join(scratch, "report.json")
        argv = list(bnspec) + ["audit", "--adapter", cmd, "--profile", profile, "--json", report_path]
        if golden is None and find_checkout(cwd or os.getcwd()) is None:
            # bnspec finds golden/ from the working directory; outside a checkout, use the
            # checkout the binary was built in, when it was.
            root = find_checkout(os.path.dirname(bnspec[0]))
            if root and os.path.isdir(os.path.join(root, "golden")):
                golden = os.path.join(root, "golden")
        if golden is not None:
            argv += ["--golden", os.path.abspath(golden)]
        filter_to = None
        if wanted is not None:
            if exact_case_selection(bnspec):
                for c in wanted:
                    argv += ["--case", c]
            else:  # one substring only: narrow by it when one case is asked for, filter afterwards
                if len(wanted) == 1:
                    argv += ["--case", wanted[0]]
                filter_to = wanted
        for flag, v in (("--timeout", timeout), ("--case-timeout", case_timeout), ("--start-timeout", start_timeout),
                        ("--junit", junit), ("--html", html)):
            if v is not None:
                argv += [flag, str(v)]
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True)
        try:
            out, err = proc.communicate(timeout=None if timeout is None else timeout + 60)
        except subprocess.TimeoutExpired:
            _end_session(proc)
            raise AuditError(f"bnspec: error: the audit was stopped (it did not end within {timeout} s + 60 s)") from None
        except BaseException:
            _end_session(proc)
            raise
        _end_session(proc)  # nothing bnspec started may outlive it
        # Exit 0/1: verdicts. 2: the audit could not run as asked — no report, or one in which no
        # case was checked (the adapter supports none of them: every case skipped, returned as such).
        checked_none = proc.returncode == 2 and os.path.exists(report_path) and _checked_nothing(report_path)
        if (proc.returncode not in (0, 1) and not checked_none) or not os.path.exists(report_path):
            lines = [l for l in (err or "").splitlines() + (out or "").splitlines() if l.strip()]
            said = next((l for l in lines if "error:" in l), lines[-1] if lines else f"bnspec exited with status {proc.returncode}")
            raise AuditError(said.strip(), proc.returncode)
        report = AuditReport.load(report_path)
        if json_path:
            _write_report(report_path, json_path)
    report.log = out or ""
    if filter_to is not None or wanted is not None:
        got = {r.id for r in report.results}
        unknown = [c for c in wanted if c not in got]
        if unknown:
            raise AuditError(f"bnspec: error: no golden case named {unknown[0]}"
                             + (f" (and {len(unknown) - 1} more are unknown)" if len(unknown) > 1 else " (not in the golden folder)"))
        if filter_to is not None:
            report = report.select(filter_to)
    return report
