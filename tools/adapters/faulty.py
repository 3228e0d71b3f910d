#!/usr/bin/env python3
"""Faulty adapters (test fixtures for the audit's robustness): the NumPy adapter with one
way of misbehaving. `python3 tools/adapters/faulty.py MODE`, MODE one of FAULTS."""
import json
import os
import signal
import shutil
import sys
import time

import numpy as np
from numpy_bn import NumpyBN  # puts the checkout's bnspec package on sys.path

from bnspec import serve

FAULTS = ["crash-at-start", "crash-mid-run", "hang", "garbage", "wrong-shape", "wrong-dtype", "nan-output", "missing-output",
          "extra-output", "slow-start", "bad-hello", "stderr-noise", "hang-always", "flood",
          # issue 14: processes, protocol strictness, hostile output paths, control characters
          "fork-exit", "fork-ignore-term", "stderr-flood", "no-id", "wrong-id", "reply-twice", "close-stdin",
          "golden-output", "symlink-output", "control-chars",
          # a red team's: no hello ever; an id that is a number
          "hang-at-start", "numeric-id",
          # a red team's: a grandchild that leaves the adapter's process group (setsid) and outlives it
          "setsid-daemon",
          # a red team's (round I): every output cut to one value (the fingerprint trapped on an index)
          "scalar-outputs",
          # a red team's: hard links in output_dir to the golden folder's expected outputs
          "hardlink-output",
          # for the fingerprint: a float16/bfloat16 y 5 % too large (an error of the 16-bit path that
          # is no float16 sum: its fp16_statistics reading is "other", not "fp16")
          "half-y-scaled",
          # a red team's (round J): output_dir replaced by a symlink to the golden case folder, the
          # outputs named by their plain names there (expected_y.npy …): passed before
          "swap-output-dir"]


def record_pids(*pids):
    """Appends 'pgid pid' lines to $BNSPEC_FAULTY_PIDS (the tests check that they are gone)."""
    path = os.environ.get("BNSPEC_FAULTY_PIDS")
    if path:
        with open(path, "a") as f:
            for pid in pids:
                f.write(f"{os.getpgid(pid)} {pid}\n")


def fork_sleeper():
    """A child that ignores SIGTERM, keeps stdout and stderr open and sleeps for an hour."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        time.sleep(3600)
        os._exit(0)
    return pid


class Faulty(NumpyBN):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.cases = 0
        self.name = f"faulty:{mode}"

    def train(self, req, x, gamma, beta, running_mean, running_var):
        self.cases += 1
        self.request = req
        if self.mode == "setsid-daemon" and self.cases == 1:
            pid = os.fork()
            if pid == 0:  # a new session: no longer in the group bnspec ends
                os.setsid()
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                time.sleep(3600)
                os._exit(0)
            time.sleep(0.2)  # until it has left the group
            record_pids(pid)
        if self.mode == "fork-exit" and self.cases == 2:
            record_pids(os.getpid(), fork_sleeper())
            os._exit(7)
        if self.mode == "fork-ignore-term" and self.cases == 2:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            record_pids(os.getpid(), fork_sleeper())
            time.sleep(3600)
        if self.mode == "stderr-flood" and self.cases == 2:
            chunk = b"e" * (1 << 20)
            for _ in range(2000):  # 2000 MiB
                os.write(2, chunk)
        if self.mode == "close-stdin" and self.cases == 2:
            # Closes the request pipe but stays alive: reading goes on from a pipe nobody writes.
            self.keep = os.pipe()
            os.dup2(self.keep[0], 0)
            record_pids(os.getpid())
        if self.mode == "control-chars" and self.cases == 2:
            sys.stderr.write("noise \x1b[31mred\x1b[0m \x07\n")
            sys.stderr.flush()
            raise ValueError("refused \x1b[2J\x1b]0;title\x07 nul \x00 del \x7f c1 \x9b vt \ufffe\uffff bidi \u202e")
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
        elif self.mode == "scalar-outputs":
            out = {k: np.asarray(v).reshape(-1)[:1] for k, v in out.items()}
        elif self.mode == "extra-output":
            out["surprise"] = np.zeros(3, np.float32)
        elif self.mode == "half-y-scaled" and req["dtype"] in ("float16", "bfloat16"):
            out["y"] = out["y"] * np.float32(1.05)
        elif self.mode == "stderr-noise":
            print("a framework warning on stderr", file=sys.stderr)
        elif self.mode in ("symlink-output", "hardlink-output"):
            # Links in output_dir to the golden folder's expected outputs.
            golden = os.path.dirname(req["inputs"]["x"])
            os.makedirs(req["output_dir"], exist_ok=True)
            make = os.symlink if self.mode == "symlink-output" else os.link
            for k in list(out):
                link = os.path.join(req["output_dir"], f"link_{k}.npy")
                if not os.path.lexists(link):
                    make(os.path.join(golden, f"expected_{k}.npy"), link)
            self.links = {k: os.path.join(req["output_dir"], f"link_{k}.npy") for k in out}
            self.links_case = req["id"]
        return out

    def save_output(self, path, array, dtype):
        # wrong-dtype: saving would cast back to the storage dtype; write the int32 y as it is.
        if self.mode == "wrong-dtype" and np.asarray(array).dtype == np.int32:
            np.save(path, array)
        else:
            super().save_output(path, array, dtype)


class Replies:
    """stdout as serve() sees it: rewrites reply lines for the protocol faults."""

    def __init__(self, adapter, out):
        self.adapter, self.out = adapter, out

    def write(self, text):
        a = self.adapter
        reply = json.loads(text)
        if reply.get("type") == "result" and a.cases == 2:
            if a.mode == "no-id":
                del reply["id"]
            elif a.mode == "numeric-id":
                reply["id"] = 42
            elif a.mode == "wrong-id":
                reply["id"] = "a-case-never-asked"
        if reply.get("type") == "result" and a.mode == "golden-output":
            # A cheating adapter: answers with the golden folder's own expected outputs.
            golden = os.path.dirname(a.request["inputs"]["x"])
            reply["outputs"] = {k: os.path.join(golden, f"expected_{k}.npy") for k in reply["outputs"]}
        request = getattr(a, "request", None)
        if reply.get("type") == "result" and a.mode == "swap-output-dir" and request and request.get("id") == reply.get("id"):
            golden, od = os.path.dirname(request["inputs"]["x"]), request["output_dir"]
            if not os.path.islink(od):
                shutil.rmtree(od)
                os.symlink(golden, od)
            reply["outputs"] = {k: f"expected_{k}.npy" for k in reply["outputs"]}
        if reply.get("type") == "result" and a.mode in ("symlink-output", "hardlink-output") \
                and getattr(a, "links_case", None) == reply.get("id"):
            reply["outputs"] = a.links
        line = json.dumps(reply) + "\n"
        self.out.write(line)
        if reply.get("type") == "result" and a.mode == "reply-twice" and a.cases == 1:
            self.out.write(line)

    def flush(self):
        self.out.flush()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in FAULTS:
        sys.exit(f"faulty: error: give one mode: {', '.join(FAULTS)}")
    if mode == "crash-at-start":
        sys.exit("faulty: crashing at start on purpose")
    if mode == "slow-start":
        time.sleep(3)
    if mode == "hang-at-start":
        while True:
            time.sleep(60)
    adapter = Faulty(mode)
    if mode == "bad-hello":
        adapter.protocol = "bnspec-adapter/99"
    serve(adapter, stdout=Replies(adapter, sys.stdout))


if __name__ == "__main__":
    main()
