"""Naming an adapter so another process can build it: "package.module:Attr" or
"path/to/file.py:Attr"; Attr is an Adapter subclass (built with the extra arguments, as
strings), a factory, or an instance. `python -m bnspec.serve TARGET [ARGS…]` serves it."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pickle
import sys
import traceback

from .adapter import Adapter


class TargetError(Exception):
    pass


def load_module(spec: str):
    """The module a target names: a file path (its folder goes on sys.path, so its siblings
    import) or a dotted module name."""
    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(spec)
        if not os.path.isfile(path):
            raise TargetError(f"no such file {spec}")
        name = os.path.splitext(os.path.basename(path))[0]
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        existing = sys.modules.get(name)
        if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") == path:
            return existing
        mspec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mspec)
        sys.modules[name] = module  # so pickled instances of its classes resolve
        mspec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def build(target: str, args=()) -> Adapter:
    """The adapter a target names, built with `args`."""
    mod, sep, attr = target.rpartition(":")
    if not sep or not mod or not attr:
        raise TargetError(f"target '{target}' is not MODULE:CLASS or FILE.py:CLASS")
    module = load_module(mod)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"{mod} has no attribute '{attr}'")
        obj = getattr(obj, part)
    if isinstance(obj, Adapter):
        if args:
            raise TargetError(f"{target} is an instance; it takes no arguments")
        return obj
    adapter = obj(*args) if callable(obj) else obj
    if not isinstance(adapter, Adapter):
        raise TargetError(f"{target} is not a bnspec.Adapter (got {type(adapter).__name__})")
    return adapter


def describe(adapter) -> str:
    """The target naming an Adapter subclass (or instance's class) so that a fresh process can
    import it: the dotted module name when that resolves to the same file, else the file."""
    cls = adapter if isinstance(adapter, type) else type(adapter)
    module = sys.modules.get(cls.__module__)
    path = os.path.abspath(getattr(module, "__file__", "") or "")
    if cls.__module__ != "__main__" and module is not None:
        try:
            spec = importlib.util.find_spec(cls.__module__)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.abspath(spec.origin) == path and "." in cls.__module__:
            return f"{cls.__module__}:{cls.__qualname__}"  # in a package: imported by name (see import_root)
    if not path:
        raise TargetError(f"cannot name {cls.__qualname__} for another process (defined in no file); pass 'module:Class'")
    return f"{path}:{cls.__qualname__}"


def import_root(target: str):
    """The sys.path folder a dotted target's top-level package lives in (None for a file target)."""
    mod = target.rpartition(":")[0]
    if mod.endswith(".py") or os.sep in mod:
        return None
    module = sys.modules.get(mod)
    path = getattr(module, "__file__", None)
    if not path:
        return None
    depth = mod.count(".") + 1 + (os.path.basename(path) == "__init__.py")
    root = os.path.abspath(path)
    for _ in range(depth):
        root = os.path.dirname(root)
    return root


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bnspec.serve",
                                 description="Serve a bnspec.Adapter over the bnspec-adapter/1 protocol on stdin/stdout.")
    ap.add_argument("target", nargs="?", help="MODULE:CLASS or FILE.py:CLASS (a class, factory or instance)")
    ap.add_argument("args", nargs="*", help="arguments for the class or factory (strings)")
    ap.add_argument("--pickle", help="serve the adapter instance pickled in this file (its module is imported from TARGET's MODULE)")
    a = ap.parse_args(argv)
    try:
        if a.pickle:
            if a.target:
                load_module(a.target.rpartition(":")[0] or a.target)
            with open(a.pickle, "rb") as f:
                adapter = pickle.load(f)
        elif a.target:
            adapter = build(a.target, a.args)
        else:
            ap.error("give a target MODULE:CLASS")
    except TargetError as e:
        sys.exit(f"bnspec.serve: error: {e}")
    except Exception as e:  # the user's module failed to import or the class to build: show where, then one line
        traceback.print_exc()
        sys.exit(f"bnspec.serve: error: cannot build {a.target or a.pickle}: {type(e).__name__}: {e}".splitlines()[0])
    adapter.serve()
