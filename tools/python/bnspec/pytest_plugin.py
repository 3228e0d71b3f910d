"""pytest plugin (entry point `pytest11`): a test module that names its batch normalization,

    bnspec_adapter = MyBN          # a bnspec.Adapter subclass, an instance, or "module:Class"
    bnspec_profile = "pytorch"     # optional; --bnspec-profile overrides it

is collected as one test per golden case, named by the case id (`pytest -k "train and NHWC"`).
The selected cases run in ONE `bnspec audit` (the adapter served in a subprocess); each test then
passes, fails with the worst element, the tolerance, the likely cause and the repro line, or is
skipped with the reason (a case the adapter does not support).

Exit statuses, as pytest's: 0 every selected case passed or was skipped, with at least one case
checked; 1 a case failed; 2 the audit could not run (no bnspec, no golden folder, an adapter that
does not start, an unknown --bnspec-profile: one line, not a failure of every case, which CI could
not tell from a failing BN), or it ran but judged no case (the adapter supports none of the
selected cases: every test skipped, which is not a pass, as `bnspec audit` exits 2 then); 4 a
usage error bnspec reports (its exit 64); 5 no case selected (`-k` matching nothing: pytest's own
"no tests ran").

With pytest-xdist, each worker that runs a test of the module runs the module's audit (for every
selected case: the verdicts are right, the work repeated); `--dist loadfile` keeps it to one. An
audit that cannot run ends the workers there (exit 2, shown by xdist as crashed workers)."""
from __future__ import annotations

import json
import os
import time

import pytest

from .report import CaseResult
from .runner import AuditError, audit, find_binary, find_checkout

DEFAULT_PROFILE = "pytorch"


def pytest_configure(config):
    config.addinivalue_line("markers", "bnspec_case: a golden case of a BNSpec audit (set by the bnspec plugin)")
    if not hasattr(config, "workerinput"):  # pytest-xdist's workers report to the controller, which tallies
        config.pluginmanager.register(JudgedTally(), "bnspec-judged-tally")


def pytest_addoption(parser):
    g = parser.getgroup("bnspec", "BNSpec audit of a batch normalization")
    g.addoption("--bnspec-profile", default=None, help="convention profile to judge against (default: the module's "
                "bnspec_profile, the bnspec_profile ini value, else pytorch)")
    g.addoption("--bnspec-golden", default=None, help="golden folder (default: golden/ of the BNSpec checkout around the "
                "working directory or the bnspec binary)")
    g.addoption("--bnspec-binary", default=None, help="the bnspec binary (default: $BNSPEC, PATH, a checkout's .build)")
    g.addoption("--bnspec-timeout", type=float, default=None, help="seconds for the whole audit of a module")
    g.addoption("--bnspec-case-timeout", type=float, default=None, help="seconds the adapter may take for one case")
    parser.addini("bnspec_profile", "convention profile to judge against", default=None)
    parser.addini("bnspec_golden", "golden folder", default=None)
    parser.addini("bnspec_binary", "the bnspec binary", default=None)


def _option(config, name):
    v = config.getoption(f"--bnspec-{name}")
    return v if v is not None else (config.getini(f"bnspec_{name}") or None)


def pytest_pycollect_makeitem(collector, name, obj):
    if name == "bnspec_adapter" and isinstance(collector, pytest.Module):
        label = obj if isinstance(obj, str) else (obj.__name__ if isinstance(obj, type) else type(obj).__name__)
        return BNSpecSuite.from_parent(collector, name=label.rpartition(":")[2] or "bnspec_adapter", adapter=obj)
    return None


class BNSpecError(Exception):
    """A one-line reason the golden cases cannot be collected or audited."""


class BNSpecSuite(pytest.Collector):
    """The golden suite for one adapter; runs one audit for the selected cases on first use."""

    def __init__(self, *, adapter, **kw):
        super().__init__(**kw)
        self.adapter = adapter
        self.selected = []
        self.outcome = None  # the AuditReport, or the exception that stopped the audit
        self.verdicts = {}
        self.seconds = 0.0

    def _settings(self):
        config, module = self.config, self.parent.obj
        profile = config.getoption("--bnspec-profile") or getattr(module, "bnspec_profile", None) \
            or config.getini("bnspec_profile") or DEFAULT_PROFILE
        golden = _option(config, "golden")
        if golden is None:  # as the binary looks (Sources/bnspec/Paths.swift): BNSPEC_GOLDEN, BNSPEC_HOME/golden, …
            golden = os.environ.get("BNSPEC_GOLDEN") or (os.path.join(os.environ["BNSPEC_HOME"], "golden")
                                                         if os.environ.get("BNSPEC_HOME") else None)
        if golden is None:
            root = find_checkout(str(config.rootpath)) or find_checkout(os.getcwd())
            if root is None:
                try:
                    root = find_checkout(os.path.dirname(find_binary(_option(config, "binary"))[0]))
                except AuditError:
                    root = None
            golden = os.path.join(root, "golden") if root is not None else None
            if golden is None:  # an install: <prefix>/share/bnspec/golden for <prefix>/bin/bnspec
                try:
                    exe = os.path.realpath(find_binary(_option(config, "binary"))[0])
                    share = os.path.join(os.path.dirname(os.path.dirname(exe)), "share", "bnspec", "golden")
                    golden = share if os.path.isdir(share) else None
                except AuditError:
                    golden = None
            if golden is None:
                raise BNSpecError("bnspec: error: no golden folder (pass --bnspec-golden DIR, set BNSPEC_GOLDEN, "
                                  "or run inside a BNSpec checkout or with an installed bnspec)")
        return profile, os.path.abspath(golden)

    def collect(self):
        # No bnspec to run is one collection error (pytest exits 2), not a failure of every case,
        # which CI could not tell from a failing BN.
        if not self.config.getoption("collectonly"):
            try:
                find_binary(_option(self.config, "binary"), cwd=str(self.config.rootpath))
            except AuditError as e:
                raise BNSpecError(str(e)) from None
        profile, golden = self._settings()
        self.profile, self.golden = profile, golden
        manifest = os.path.join(golden, "manifest.json")
        try:
            with open(manifest, encoding="utf-8") as f:
                ids = json.load(f)["cases"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BNSpecError(f"bnspec: error: {manifest}: not a golden manifest ({e})") from None
        self.all_ids = list(ids)
        return [BNSpecCase.from_parent(self, name=cid, case_id=cid) for cid in ids]

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, (BNSpecError, AuditError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def result(self, case_id) -> CaseResult:
        """The verdict on one case: the first call audits every selected case at once."""
        if self.outcome is None:
            self.outcome = self._audit(self.selected or [case_id])
        if isinstance(self.outcome, AuditError):
            # The whole session ends with one line: every case "failing" on the same setup error
            # would read as a failing BN (an outside red team's: 444 failed, exit 1).
            usage = self.outcome.status == 64
            pytest.exit(f"bnspec: the audit of {self.name} did not run: {self.outcome}",
                        returncode=pytest.ExitCode.USAGE_ERROR if usage else pytest.ExitCode.INTERRUPTED)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if case_id not in self.verdicts:  # an item run outside the selection seen at collection
            extra = self._audit([case_id])
            if isinstance(extra, Exception):
                raise extra
        if case_id not in self.verdicts:
            raise BNSpecError(f"bnspec: error: the audit's report has no verdict for {case_id} (the case was not judged)")
        return self.verdicts[case_id]

    def _audit(self, ids):
        config = self.config
        started = time.monotonic()
        try:
            report = audit(self.adapter, profile=self.profile, golden=self.golden,
                           cases=None if len(ids) == len(self.all_ids) else ids,
                           binary=_option(config, "binary"), timeout=config.getoption("--bnspec-timeout"),
                           case_timeout=config.getoption("--bnspec-case-timeout"), cwd=str(config.rootpath))
        except AuditError as e:
            return e
        finally:
            self.seconds += time.monotonic() - started
        self.verdicts.update(report.by_id())
        return report


class CaseFailed(Exception):
    def __init__(self, result: CaseResult):
        super().__init__(result.detail)
        self.result = result


class BNSpecCase(pytest.Item):
    """One golden case of the suite."""

    def __init__(self, *, case_id, **kw):
        super().__init__(**kw)
        self.case_id = case_id
        self.add_marker("bnspec_case")  # in its reports' keywords, which pytest-xdist carries back

    def runtest(self):
        r = self.parent.result(self.case_id)
        if r.skipped:
            pytest.skip(r.detail or "skipped by the audit")
        if r.failed:
            raise CaseFailed(r)

    def repr_failure(self, excinfo, style=None):
        e = excinfo.value
        if isinstance(e, CaseFailed):
            r = e.result
            ratio = "∞" if r.worst_ratio == float("inf") else f"{r.worst_ratio:.4g}"
            head = (f"bnspec case {r.id} could not be judged against profile {self.parent.profile}: {r.fault}" if r.error
                    else f"bnspec case {r.id} failed against profile {self.parent.profile}: worst error {ratio}× the tolerance")
            lines = [head, f"  {'detail:       ' if r.error else 'worst element:'} {r.detail}",
                     f"  likely cause:  {r.likely_cause or 'unexplained'}",
                     f"  repro: {r.repro}",
                     f"  rerun: pytest '{self.rerun_id()}'"]
            return "\n".join(lines)
        if isinstance(e, (BNSpecError, AuditError)):
            return str(e)
        return super().repr_failure(excinfo)

    def rerun_id(self) -> str:
        """The node id relative to where pytest was started (nodeid is relative to rootdir)."""
        rel = os.path.relpath(str(self.path), str(self.config.invocation_params.dir))
        return "::".join([rel] + self.nodeid.split("::")[1:])

    def reportinfo(self):
        return self.path, None, f"bnspec case {self.case_id}"


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """After -k, -m, --deselect and --lf: the cases each suite will audit, in one run."""
    suites = {}
    for item in session.items:
        if isinstance(item, BNSpecCase):
            item.parent.selected.append(item.case_id)
            suites[id(item.parent)] = item.parent
    session.config._bnspec_suites = list(suites.values())


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for s in getattr(config, "_bnspec_suites", []):
        if s.outcome is None:
            continue
        if isinstance(s.outcome, Exception):
            terminalreporter.write_line(f"bnspec: {s.name}: the audit did not run: {s.outcome}")
            continue
        r = s.outcome
        terminalreporter.write_line(
            f"bnspec: {r.implementation}{'' if r.version in ('', '0') else ' ' + r.version} against profile {r.profile}: {r.passed} passed, {r.failed} failed, "
            f"{r.skipped} skipped in one audit of {len(r.results)} cases ({s.seconds:.1f} s)")
        if r.causes:
            causes = ", ".join(f"{c} ({n})" for c, n in sorted(r.causes.items(), key=lambda kv: -kv[1]))
            terminalreporter.write_line(f"bnspec: likely causes: {causes}")


class JudgedTally:
    """Which suites had a case judged, from the test reports (so also in pytest-xdist's
    controller, where the audits ran in the workers). An audit that judged no case — the adapter
    supports none of the selected ones: every test skipped — is not a pass, as for `bnspec audit`
    (exit 2 there): one line, and the session exits 2, as for an audit that cannot run; not 5,
    which CI setups often accept as "nothing to run" (an outside red team's: 435 skipped, exit 0).
    A selection that leaves no case (`-k` matching nothing) keeps pytest's 5, and some cases
    judged with others skipped stays a pass."""

    def __init__(self):
        self.suites = {}  # suite node id -> [judged, skipped]

    def pytest_runtest_logreport(self, report):
        if "bnspec_case" not in report.keywords or report.when != "call":
            return
        tally = self.suites.setdefault(report.nodeid.rpartition("::")[0], [0, 0])
        tally[1 if report.skipped else 0] += 1

    def unjudged(self):
        return [(suite, skipped) for suite, (judged, skipped) in self.suites.items() if judged == 0]

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        for suite, skipped in self.unjudged():
            terminalreporter.write_line(
                f"bnspec: error: no case of {suite} was judged, not a pass, as for bnspec audit (exit 2) "
                f"(the adapter supports none of the {skipped} selected cases: every one skipped)", red=True)

    def pytest_sessionfinish(self, session, exitstatus):
        if exitstatus == pytest.ExitCode.OK and self.unjudged():
            session.exitstatus = pytest.ExitCode.INTERRUPTED
