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
# Higher-order derivatives (spec/SPEC.md §11, issue #19). Directions arrive as v_x, v_gamma,
# v_beta (and w_x, w_gamma, w_beta); hvp-* answer hv_x, hv_gamma, hv_beta for L = <dy, y>;
# d2-train answers d2y = D²y[v, w]; d3-train answers d3y = D³y[v, v, w].
HIGHER_ORDER_OPS = ["hvp-train", "hvp-infer", "d2-train", "d3-train"]
# Arrays stored in the case's dtype (the rest — parameters, statistics, their directions and
# per-channel outputs — in the parameter dtype).
TENSOR_INPUTS = ("x", "dy", "x_eval", "v_x", "w_x")
TENSOR_OUTPUTS = ("y", "dx", "y_eval", "hv_x", "d2y", "d3y")


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

    # Higher-order ops: v and w are dicts {"x", "gamma", "beta"} of arrays (tensor, per channel).
    def hvp_train(self, req, x, dy, gamma, beta, v):
        raise Unsupported("hvp-train")

    def hvp_infer(self, req, x, dy, gamma, beta, mean, var, v):
        raise Unsupported("hvp-infer")

    def d2_train(self, req, x, gamma, beta, v, w):
        raise Unsupported("d2-train")

    def d3_train(self, req, x, gamma, beta, v, w):
        raise Unsupported("d3-train")

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
    inp = {k: load(v, dtype if k in TENSOR_INPUTS else req.get("parameter_dtype", "float32"))
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
    elif op in HIGHER_ORDER_OPS:
        def direction(p):
            return {"x": inp[f"{p}_x"], "gamma": inp[f"{p}_gamma"], "beta": inp[f"{p}_beta"]}
        if op == "hvp-train":
            out = adapter.hvp_train(req, inp["x"], inp["dy"], g, b, direction("v"))
        elif op == "hvp-infer":
            out = adapter.hvp_infer(req, inp["x"], inp["dy"], g, b, inp["mean"], inp["var"], direction("v"))
        elif op == "d2-train":
            out = adapter.d2_train(req, inp["x"], g, b, direction("v"), direction("w"))
        else:
            out = adapter.d3_train(req, inp["x"], g, b, direction("v"), direction("w"))
    else:
        out = adapter.trajectory(req, list(inp["x"]), inp["x_eval"], g, b, inp["running_mean"], inp["running_var"])
    paths = {}
    os.makedirs(req["output_dir"], exist_ok=True)
    for k, v in out.items():
        p = os.path.join(req["output_dir"], f"{k}.npy")
        storage = dtype if k in TENSOR_OUTPUTS else req.get("parameter_dtype", "float32")
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
