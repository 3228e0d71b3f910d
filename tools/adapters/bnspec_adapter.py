"""The BNSpec adapter protocol, version 1 (spec/AUDIT.md): a long-running process that
reads JSON lines on stdin and answers one JSON line per request on stdout.

An adapter module subclasses `Adapter`, fills `name`, `version`, `supports`, and
implements the ops it supports; `serve(adapter)` runs the loop. Anything the framework
prints must go to stderr: stdout carries only protocol lines.
"""
import json
import os
import sys
import traceback

import numpy as np

PROTOCOL = "bnspec-adapter/1"
OPS = ["train", "infer", "backward-train", "backward-infer", "trajectory"]
# Synchronized BN (spec/SPEC.md §10): the request adds "partition" (samples per rank along N) and,
# for sync-backward, "grad_reduction" ("local": dgamma/dbeta [K, C]; "global": [C]).
SYNC_OPS = ["sync-train", "sync-backward"]
GRAD_REDUCTIONS = ["local", "global"]


class Unsupported(Exception):
    """The request asks for something the framework cannot do (reported as skipped)."""


class Adapter:
    name = "adapter"
    version = "0"
    # What the adapter can run; cases outside it are skipped, not failed.
    supports = {"ops": OPS, "dtypes": ["float32"], "layouts": ["NCHW", "NHWC", "NC"], "cumulative": False}

    # Each op gets the request dict and the inputs as float arrays in the case's layout;
    # returns {output name: numpy array}.
    def train(self, req, x, gamma, beta, running_mean, running_var):
        raise Unsupported("train")

    def infer(self, req, x, gamma, beta, mean, var):
        raise Unsupported("infer")

    def backward_train(self, req, x, dy, gamma, beta):
        raise Unsupported("backward-train")

    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        raise Unsupported("backward-infer")

    # Synchronized BN: x (and dy) are the whole batch in the case layout, the ranks' tensors
    # concatenated along N; req["partition"] (checked by handle()) says how many samples each
    # of the K ranks holds. Return y / dx of the whole batch (ranks concatenated), running_mean
    # and running_var [C] (every rank's copy is the same), dgamma / dbeta [C] for
    # req["grad_reduction"] == "global" and [K, C] (rank order) for "local".
    def sync_train(self, req, x, gamma, beta, running_mean, running_var):
        raise Unsupported("sync-train")

    def sync_backward(self, req, x, dy, gamma, beta):
        raise Unsupported("sync-backward")

    def trajectory(self, req, xs, x_eval, gamma, beta, running_mean, running_var):
        """Default: `steps` training steps, then inference on x_eval with the running statistics.
        Returns the running statistics after every step, stacked ([steps, C])."""
        rm, rv, ms, vs = running_mean, running_var, [], []
        for k, x in enumerate(xs):
            out = self.train(dict(req, step=k + 1), x, gamma, beta, rm, rv)
            rm, rv = np.asarray(out["running_mean"], np.float32), np.asarray(out["running_var"], np.float32)
            ms.append(rm); vs.append(rv)
        y = self.infer(req, x_eval, gamma, beta, rm, rv)["y"]
        return {"running_mean": np.stack(ms), "running_var": np.stack(vs), "y_eval": y}


def channel_axis(layout):
    return 1 if layout == "NCHW" else -1


def reduce_axes(ndim, layout):
    ax = channel_axis(layout) % ndim
    return tuple(i for i in range(ndim) if i != ax)


def param_shape(ndim, layout, C):
    s = [1] * ndim
    s[channel_axis(layout) % ndim] = C
    return s


def split_ranks(a, partition):
    """The ranks' tensors: consecutive blocks of partition[k] samples along N (axis 0)."""
    offsets = np.concatenate([[0], np.cumsum(partition)]).astype(int)
    return [a[offsets[k]:offsets[k + 1]] for k in range(len(partition))]


def check_sync(adapter, req, x):
    """Validates a synchronized request against the batch and the adapter's "sync" capabilities
    (supports["sync"]: max_ranks, uneven, empty_ranks, grad_reductions). A malformed partition is
    an error; one the engine cannot run is Unsupported (skipped)."""
    part = req.get("partition")
    if not isinstance(part, list) or not part or any(type(c) is not int or c < 0 for c in part):
        raise ValueError(f"partition must be a non-empty list of sample counts ≥ 0, got {part!r}")
    if sum(part) != x.shape[0]:
        raise ValueError(f"partition {part} holds {sum(part)} samples but x has {x.shape[0]}")
    cap = adapter.supports.get("sync", {})
    if len(part) > cap.get("max_ranks", 0):
        raise Unsupported(f"{len(part)} ranks (this adapter runs at most {cap.get('max_ranks', 0)})")
    if len(set(part)) > 1 and not cap.get("uneven", False):
        raise Unsupported(f"uneven partition {part}")
    if 0 in part and not cap.get("empty_ranks", False):
        raise Unsupported(f"empty rank in partition {part}")
    if req["op"] == "sync-backward":
        red = req.get("grad_reduction")
        if red not in GRAD_REDUCTIONS:
            raise ValueError(f"grad_reduction must be one of {GRAD_REDUCTIONS}, got {red!r}")
        if red not in cap.get("grad_reductions", GRAD_REDUCTIONS):
            raise Unsupported(f"grad_reduction {red}")


def check_sync_outputs(req, out, C):
    """dgamma/dbeta must have the extent the reduction names (an adapter bug otherwise)."""
    K = len(req["partition"])
    want = (C,) if req.get("grad_reduction") == "global" else (K, C)
    for k in ("dgamma", "dbeta"):
        if k in out and np.shape(out[k]) != want:
            raise ValueError(f"adapter returned {k} of shape {np.shape(out[k])}, expected {want}")


def load(path, dtype):
    a = np.load(path)
    if dtype == "bfloat16":  # stored as uint16 bit patterns: widen exactly
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a


def save(path, a, dtype):
    a = np.asarray(a)
    if dtype == "float16":
        a = a.astype(np.float16)
    elif dtype == "bfloat16":
        f = a.astype(np.float32)
        b = f.view(np.uint32)
        rounded = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
        a = np.where(np.isnan(f), np.uint16(0x7FC0), rounded)
    elif dtype == "float64":
        a = a.astype(np.float64)
    else:
        a = a.astype(np.float32)
    tmp = path + ".tmp.npy"
    np.save(tmp, np.ascontiguousarray(a))
    os.replace(tmp, path)


def handle(adapter, req):
    op, dtype = req["op"], req["dtype"]
    if op not in adapter.supports["ops"]:
        raise Unsupported(f"op {op}")
    if dtype not in adapter.supports["dtypes"]:
        raise Unsupported(f"dtype {dtype}")
    if req["layout"] not in adapter.supports["layouts"]:
        raise Unsupported(f"layout {req['layout']}")
    if req.get("cumulative") and op in ("train", "trajectory") and not adapter.supports.get("cumulative"):
        raise Unsupported("cumulative running average")
    inp = {k: load(v, dtype if k in ("x", "dy", "x_eval") else req.get("parameter_dtype", "float32"))
           for k, v in req["inputs"].items()}
    g, b = inp["gamma"], inp["beta"]
    if op == "train":
        out = adapter.train(req, inp["x"], g, b, inp["running_mean"], inp["running_var"])
    elif op == "infer":
        out = adapter.infer(req, inp["x"], g, b, inp["mean"], inp["var"])
    elif op == "backward-train":
        out = adapter.backward_train(req, inp["x"], inp["dy"], g, b)
    elif op == "backward-infer":
        out = adapter.backward_infer(req, inp["x"], inp["dy"], g, b, inp["mean"], inp["var"])
    elif op in SYNC_OPS:
        check_sync(adapter, req, inp["x"])
        if op == "sync-train":
            out = adapter.sync_train(req, inp["x"], g, b, inp["running_mean"], inp["running_var"])
        else:
            out = adapter.sync_backward(req, inp["x"], inp["dy"], g, b)
        check_sync_outputs(req, out, g.size)
    else:
        out = adapter.trajectory(req, list(inp["x"]), inp["x_eval"], g, b, inp["running_mean"], inp["running_var"])
    paths = {}
    os.makedirs(req["output_dir"], exist_ok=True)
    for k, v in out.items():
        p = os.path.join(req["output_dir"], f"{k}.npy")
        storage = dtype if k in ("y", "dx", "y_eval") else req.get("parameter_dtype", "float32")
        save(p, v, storage)
        paths[k] = p
    return paths


def serve(adapter):
    out = sys.stdout
    sys.stdout = sys.stderr  # framework chatter must not reach the protocol stream
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            out.write(json.dumps({"type": "error", "id": None, "message": f"bad request: {e}"}) + "\n"); out.flush()
            continue
        kind = req.get("type")
        if kind == "hello":
            reply = {"type": "hello", "protocol": PROTOCOL, "name": adapter.name, "version": adapter.version,
                     "supports": adapter.supports}
        elif kind == "bye":
            break
        elif kind == "case":
            try:
                reply = {"type": "result", "id": req["id"], "outputs": handle(adapter, req)}
            except Unsupported as e:
                reply = {"type": "unsupported", "id": req["id"], "message": str(e)}
            except Exception as e:  # the framework refused or crashed on this case
                reply = {"type": "error", "id": req["id"], "message": f"{type(e).__name__}: {e}".splitlines()[0][:500],
                         "trace": traceback.format_exc()[-2000:]}
        else:
            reply = {"type": "error", "id": req.get("id"), "message": f"unknown request type {kind!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
