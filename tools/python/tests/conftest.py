import importlib.metadata
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's bnspec, installed or not
# ... and for the pytest and Python subprocesses the tests start
os.environ["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
pytest_plugins = ["pytester"]

from bnspec.runner import AuditError, find_binary, find_checkout  # noqa: E402

ROOT = find_checkout(HERE)


def plugin_installed():
    return any(ep.name == "bnspec" for ep in importlib.metadata.entry_points().select(group="pytest11")) \
        if hasattr(importlib.metadata.entry_points(), "select") \
        else any(ep.name == "bnspec" for ep in importlib.metadata.entry_points().get("pytest11", []))


@pytest.fixture(scope="session")
def bnspec_binary():
    """The real bnspec binary; its absence is a failure, not a skip (build it with swift build)."""
    try:
        return find_binary(cwd=ROOT or os.getcwd())[0]
    except AuditError as e:
        pytest.fail(f"{e} — these tests drive the real binary")


@pytest.fixture(scope="session")
def golden():
    assert ROOT, "these tests run from a BNSpec checkout (golden/ beside tools/python)"
    return os.path.join(ROOT, "golden")
