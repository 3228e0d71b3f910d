#!/usr/bin/env python3
"""Faulty adapters (test fixtures for the audit's robustness): the NumPy adapter with one
way of misbehaving. `python3 tools/adapters/faulty.py MODE`, MODE one of FAULTS."""
import os
import sys
import time

import numpy as np
from numpy_bn import NumpyBN  # puts the checkout's bnspec package on sys.path

from bnspec import serve

FAULTS = ["crash-at-start", "crash-mid-run", "hang", "garbage", "wrong-shape", "wrong-dtype", "nan-output", "missing-output",
          "extra-output", "slow-start", "bad-hello", "stderr-noise", "hang-always", "flood"]


class Faulty(NumpyBN):
    def __init__(self, mode):
        super().__init__()
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

    def save_output(self, path, array, dtype):
        # wrong-dtype: saving would cast back to the storage dtype; write the int32 y as it is.
        if self.mode == "wrong-dtype" and np.asarray(array).dtype == np.int32:
            np.save(path, array)
        else:
            super().save_output(path, array, dtype)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in FAULTS:
        sys.exit(f"faulty: error: give one mode: {', '.join(FAULTS)}")
    if mode == "crash-at-start":
        sys.exit("faulty: crashing at start on purpose")
    if mode == "slow-start":
        time.sleep(3)
    adapter = Faulty(mode)
    if mode == "bad-hello":
        adapter.protocol = "bnspec-adapter/99"
    serve(adapter)


if __name__ == "__main__":
    main()
