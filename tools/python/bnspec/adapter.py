"""The adapter side of `bnspec audit` (spec/AUDIT.md §3): a base class for a batch
normalization under test, the request it receives, and the table that maps each protocol
operation to a method and its inputs.

A subclass implements the operations its BN supports on NumPy arrays (in the case's layout):

    class MyBN(bnspec.Adapter):
        def train(self, req, x, gamma, beta, running_mean, running_var): ...   # -> {"y", "running_mean", "running_var"}
        def infer(self, req, x, gamma, beta, mean, var): ...                   # -> {"y"}

Loading the inputs (bfloat16 bit patterns widened), saving the outputs in their storage dtype,
skipping what the adapter does not support and reporting a refusal are done by `handle`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Tuple

import numpy as np

from . import arrays

PROTOCOL = "bnspec-adapter/1"
OPS = ["train", "infer", "backward-train", "backward-infer", "trajectory", "hvp-train", "hvp-infer", "d2-train", "d3-train"]
#: The higher-order operations (spec/SPEC.md §12): H·v of L = <dy, y> along v (outputs hv_x,
#: hv_gamma, hv_beta), D²y[v, w] (d2y) and D³y[v, v, w] (d3y).
HIGHER_ORDER_OPS = ["hvp-train", "hvp-infer", "d2-train", "d3-train"]
LAYOUTS = ["NCHW", "NHWC", "NC"]
#: Arrays stored in the case's dtype; every other array is in its parameter dtype.
DATA_ARRAYS = frozenset({"x", "dy", "x_eval", "y", "dx", "y_eval", "v_x", "w_x", "hv_x", "d2y", "d3y"})


class Unsupported(Exception):
    """The request asks for something the implementation cannot do: reported as skipped."""


class Refused(Exception):
    """The implementation refuses the case (as a framework raises on one value per channel):
    a pass when the case expects a refusal, else a failure. Any other exception an operation
    raises is reported the same way."""


@dataclass(frozen=True)
class Op:
    """How a protocol operation reaches an adapter: `method(req, *inputs)` with the request's
    inputs in this order. Inputs named in `steps` are split along their first axis into a list
    (trajectory's x holds one batch per step). Arrays named in `data` are in the case's dtype,
    the others in its parameter dtype."""
    method: str
    inputs: Tuple[str, ...]
    steps: FrozenSet[str] = frozenset()
    data: FrozenSet[str] = DATA_ARRAYS


#: Protocol operation → adapter method and inputs. A new operation is one entry here and one
#: method on the adapters that support it.
OP_TABLE: Dict[str, Op] = {
    "train": Op("train", ("x", "gamma", "beta", "running_mean", "running_var")),
    "infer": Op("infer", ("x", "gamma", "beta", "mean", "var")),
    "backward-train": Op("backward_train", ("x", "dy", "gamma", "beta")),
    "backward-infer": Op("backward_infer", ("x", "dy", "gamma", "beta", "mean", "var")),
    "trajectory": Op("trajectory", ("x", "x_eval", "gamma", "beta", "running_mean", "running_var"), steps=frozenset({"x"})),
    # Higher-order derivatives (spec §12): a direction is three inputs, <d>_x (like x), <d>_gamma, <d>_beta.
    "hvp-train": Op("hvp_train", ("x", "dy", "gamma", "beta", "v_x", "v_gamma", "v_beta")),
    "hvp-infer": Op("hvp_infer", ("x", "dy", "gamma", "beta", "mean", "var", "v_x", "v_gamma", "v_beta")),
    "d2-train": Op("d2_train", ("x", "gamma", "beta", "v_x", "v_gamma", "v_beta", "w_x", "w_gamma", "w_beta")),
    "d3-train": Op("d3_train", ("x", "gamma", "beta", "v_x", "v_gamma", "v_beta", "w_x", "w_gamma", "w_beta")),
}


def channel_axis(layout: str) -> int:
    return 1 if layout == "NCHW" else -1


def reduce_axes(ndim: int, layout: str) -> Tuple[int, ...]:
    ax = channel_axis(layout) % ndim
    return tuple(i for i in range(ndim) if i != ax)


def param_shape(ndim: int, layout: str, C: int) -> list:
    s = [1] * ndim
    s[channel_axis(layout) % ndim] = C
    return s


class Request(dict):
    """One case request (the protocol's JSON object, spec/AUDIT.md §3) with the conventions
    resolved: a field the request leaves null (the framework's default is wanted) takes the
    adapter's `defaults`."""

    def __init__(self, fields=(), defaults=None, **kw):
        super().__init__(fields, **kw)
        self.defaults = dict(Adapter.defaults if defaults is None else defaults)

    def with_step(self, step: int) -> "Request":
        """The request for step `step` (1-based) of a trajectory."""
        return Request(self, defaults=self.defaults, step=step)

    def _opt(self, key):
        v = self.get(key)
        return self.defaults.get(key) if v is None else v

    @property
    def layout(self) -> str:
        return self["layout"]

    @property
    def dtype(self) -> str:
        return self["dtype"]

    @property
    def eps(self) -> float:
        return self._opt("eps")

    @property
    def batch_weight(self) -> float:
        """w in r' = (1 − w)·r + w·b: 1/step for a cumulative average; a fingerprint probe's
        raw_momentum taken as the batch weight (override when your momentum weights the running
        value); else the request's batch_weight or the default."""
        if self.get("cumulative"):
            return 1.0 / self.get("step", 1)
        if self.get("raw_momentum") is not None:
            return float(self["raw_momentum"])
        return self._opt("batch_weight")

    @property
    def unbiased(self) -> bool:
        """The running variance takes the unbiased (n − 1) estimator."""
        return self._opt("variance_estimator") == "unbiased"

    @property
    def single_value(self) -> str:
        """What a training step with one value per channel must do: "error", "beta" or "nan"."""
        return self._opt("single_value")

    @property
    def axes(self) -> Tuple[int, ...]:
        """The axes statistics reduce over (all but the channel axis)."""
        return reduce_axes(len(self["shape"]), self["layout"])

    @property
    def n(self) -> int:
        """Values per channel in one batch."""
        s = self["shape"]
        return math.prod(s) // s[1]

    def per_channel(self, a) -> np.ndarray:
        """A per-channel vector reshaped to broadcast against x."""
        a = np.asarray(a)
        return a.reshape(param_shape(len(self["shape"]), self["layout"], a.size))


class Adapter:
    """Base class of an implementation under audit. Declare what it supports with the class
    attributes `dtypes`, `layouts`, `cumulative` (and `ops`, by default every operation whose
    method the subclass defines; trajectory comes with train + infer), or with a complete
    `supports` dict as in the protocol's hello."""
    name = None          # default: the class name
    version = "0"
    protocol = PROTOCOL
    ops = None
    dtypes = ["float32"]
    layouts = LAYOUTS
    cumulative = False
    supports = None
    #: The conventions used when a request leaves a field null (PyTorch's).
    defaults = {"eps": 1e-5, "batch_weight": 0.1, "variance_estimator": "unbiased", "single_value": "error"}

    # Each operation gets the request and the inputs as arrays in the case's layout (float32
    # for bfloat16) and returns {output name: array}; outputs are saved in their storage dtype.
    def train(self, req, x, gamma, beta, running_mean, running_var):
        raise Unsupported("train")

    def infer(self, req, x, gamma, beta, mean, var):
        raise Unsupported("infer")

    def backward_train(self, req, x, dy, gamma, beta):
        raise Unsupported("backward-train")

    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        raise Unsupported("backward-infer")

    # Higher-order derivatives (spec §12): -> {"hv_x", "hv_gamma", "hv_beta"}, {"d2y"}, {"d3y"}.
    def hvp_train(self, req, x, dy, gamma, beta, v_x, v_gamma, v_beta):
        raise Unsupported("hvp-train")

    def hvp_infer(self, req, x, dy, gamma, beta, mean, var, v_x, v_gamma, v_beta):
        raise Unsupported("hvp-infer")

    def d2_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        raise Unsupported("d2-train")

    def d3_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        raise Unsupported("d3-train")

    def trajectory(self, req, xs, x_eval, gamma, beta, running_mean, running_var):
        """Default: `steps` training steps, then inference on x_eval with the running statistics.
        Returns the running statistics after every step, stacked ([steps, C])."""
        rm, rv, ms, vs = running_mean, running_var, [], []
        for k, x in enumerate(xs):
            step = req.with_step(k + 1) if isinstance(req, Request) else dict(req, step=k + 1)
            out = self.train(step, x, gamma, beta, rm, rv)
            rm, rv = np.asarray(out["running_mean"], np.float32), np.asarray(out["running_var"], np.float32)
            ms.append(rm); vs.append(rv)
        y = self.infer(req, x_eval, gamma, beta, rm, rv)["y"]
        return {"running_mean": np.stack(ms), "running_var": np.stack(vs), "y_eval": y}

    def capabilities(self) -> dict:
        """The hello's `supports`: the `supports` attribute when set, else built from the
        declarations and the methods this class defines."""
        if self.supports is not None:
            return dict(self.supports)
        if self.ops is not None:
            ops = list(self.ops)
        else:
            ops = [op for op, spec in OP_TABLE.items() if self._defines(spec.method)
                   or (op == "trajectory" and self._defines("train") and self._defines("infer"))]
        return {"ops": ops, "dtypes": list(self.dtypes), "layouts": list(self.layouts), "cumulative": bool(self.cumulative)}

    def _defines(self, method: str) -> bool:
        impl = getattr(type(self), method, None)
        return impl is not None and impl is not getattr(Adapter, method, None)

    def display_name(self) -> str:
        return self.name or type(self).__name__

    def save_output(self, path: str, array, dtype: str) -> None:
        """Writes one output in its storage dtype (a hook for test fixtures)."""
        arrays.save(path, array, dtype)

    def serve(self) -> None:
        """Runs the protocol loop on stdin/stdout until bnspec says bye."""
        from .protocol import serve
        serve(self)


def handle(adapter: Adapter, req: dict) -> Dict[str, str]:
    """Runs one case request: checks support, loads the inputs, calls the operation's method,
    saves the outputs under req["output_dir"]; returns {output name: path}. Raises Unsupported
    for a case outside what the adapter supports."""
    op, dtype = req["op"], req["dtype"]
    sup = adapter.capabilities()
    spec = OP_TABLE.get(op)
    if op not in sup["ops"] or spec is None:
        raise Unsupported(f"op {op}")
    if dtype not in sup["dtypes"]:
        raise Unsupported(f"dtype {dtype}")
    if req["layout"] not in sup["layouts"]:
        raise Unsupported(f"layout {req['layout']}")
    if req.get("cumulative") and op in ("train", "trajectory") and not sup.get("cumulative"):
        raise Unsupported("cumulative running average")
    pdt = req.get("parameter_dtype") or "float32"
    inp = {k: arrays.load(v, dtype if k in spec.data else pdt) for k, v in req["inputs"].items()}
    missing = [k for k in spec.inputs if k not in inp]
    if missing:
        raise Refused(f"request for {op} lacks input{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    args = [list(inp[k]) if k in spec.steps else inp[k] for k in spec.inputs]
    request = req if isinstance(req, Request) else Request(req, defaults=adapter.defaults)
    out = getattr(adapter, spec.method)(request, *args)
    paths = {}
    os.makedirs(req["output_dir"], exist_ok=True)
    for k, v in out.items():
        p = os.path.join(req["output_dir"], f"{k}.npy")
        adapter.save_output(p, v, dtype if k in spec.data else pdt)
        paths[k] = p
    return paths
