#!/usr/bin/env python3
"""Faulty adapters (test fixtures for the audit's robustness): the NumPy adapter with one
way of misbehaving. `python3 tools/adapters/faulty.py MODE`, MODE one of FAULTS."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import bnspec_adapter  # noqa: E402
from numpy_bn import NumpyBN  # noqa: E402

FAULTS = ["crash-at-start", "crash-mid-run", "hang", "garbage", "wrong-shape", "wrong-dtype", "nan-output", "missing-output",
          "extra-output", "slow-start", "bad-hello", "stderr-noise", "hang-always", "flood"]


class Faulty(NumpyBN):
    def __init__(self, mode):
        self.mode = mode
        self.cases = 0
        self.name = f"faulty:{mode}"

    def train(self, req, x, gamma, beta, running_mean, running_var):
        self.cases += 1
        if self.mode == "crash-mid-run" and self.cases == 2:
            os._exit(3)
        if (self.mode == "hang" and self.cases == 2) or self.mode == "hang-always":
            time.sleep(3600)
        if self.mode == "flood" and self.cases == 2:
            sys.__stdout__.write("x" * (3 << 20) + "\n")
            sys.__stdout__.flush()
        if self.mode == "garbage" and self.cases == 2:
            sys.__stdout__.write("this is not JSON\n")
            sys.__stdout__.flush()
        out = super().train(req, x, gamma, beta, running_mean, running_var)
        if self.mode == "wrong-shape":
            out["y"] = out["y"].reshape(-1)[:-1]
        elif self.mode == "wrong-dtype":
            out["y"] = out["y"].astype(np.int32)
        elif self.mode == "nan-output":
            out["y"] = np.full_like(out["y"], np.nan)
        elif self.mode == "missing-output":
            del out["running_var"]
        elif self.mode == "extra-output":
            out["surprise"] = np.zeros(3, np.float32)
        elif self.mode == "stderr-noise":
            print("a framework warning on stderr", file=sys.stderr)
        return out


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in FAULTS:
        sys.exit(f"faulty: error: give one mode: {', '.join(FAULTS)}")
    if mode == "crash-at-start":
        sys.exit("faulty: crashing at start on purpose")
    if mode == "slow-start":
        time.sleep(3)
    if mode == "bad-hello":
        bnspec_adapter.PROTOCOL = "bnspec-adapter/99"
    # wrong-dtype: save() would cast back to float32; bypass it for the y output.
    if mode == "wrong-dtype":
        original = bnspec_adapter.save
        bnspec_adapter.save = lambda p, a, d: np.save(p, a) if np.asarray(a).dtype == np.int32 else original(p, a, d)
    bnspec_adapter.serve(Faulty(mode))


if __name__ == "__main__":
    main()
