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
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from . import arrays

PROTOCOL = "bnspec-adapter/1"
OPS = ["train", "infer", "backward-train", "backward-infer", "trajectory", "epoch", "hvp-train", "hvp-infer", "d2-train", "d3-train"]
#: The operations of training steps with running statistics: a trajectory (batches of one size,
#: stacked) and an epoch (batches of the request's "partition" sizes, concatenated along N).
STEP_OPS = ("trajectory", "epoch")
#: The higher-order operations (spec/SPEC.md §12): H·v of L = <dy, y> along v (outputs hv_x,
#: hv_gamma, hv_beta), D²y[v, w] (d2y) and D³y[v, v, w] (d3y).
HIGHER_ORDER_OPS = ["hvp-train", "hvp-infer", "d2-train", "d3-train"]
#: Synchronized BN over K ranks (spec/SPEC.md §11, spec/AUDIT.md §3.1): the request adds "partition"
#: (samples per rank along N) and, for sync-backward, "grad_reduction".
SYNC_OPS = ["sync-train", "sync-backward"]
GRAD_REDUCTIONS = ("local", "global")
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
    (trajectory's x holds one batch per step); inputs named in `batches` are cut along N by the
    request's partition into a list (an epoch's batches). Arrays named in `data` are in the case's dtype,
    the others in its parameter dtype. `check(adapter, req, inputs)` runs before the method (it
    raises ValueError for a malformed request, Unsupported for one the adapter cannot run);
    `check_outputs(req, outputs)` after it (ValueError for outputs of the wrong extent)."""
    method: str
    inputs: Tuple[str, ...]
    steps: FrozenSet[str] = frozenset()
    batches: FrozenSet[str] = frozenset()
    data: FrozenSet[str] = DATA_ARRAYS
    check: Optional[Callable[["Adapter", "Request", Dict[str, np.ndarray]], None]] = None
    check_outputs: Optional[Callable[["Request", Dict[str, object]], None]] = None


def split_ranks(a, partition) -> List[np.ndarray]:
    """The ranks' tensors of a synchronized case: consecutive blocks of partition[k] samples along
    N (axis 0, the outermost dimension of every layout); an empty rank gets an empty block."""
    offsets = np.concatenate([[0], np.cumsum(partition)]).astype(int)
    return [a[offsets[k]:offsets[k + 1]] for k in range(len(partition))]


def check_partition(adapter: "Adapter", req: "Request", inputs: Dict[str, np.ndarray]) -> None:
    """A synchronized request against its batch and the adapter's `sync` capabilities (max_ranks,
    uneven, empty_ranks, grad_reductions): a malformed partition or grad_reduction is a ValueError
    (answered `error`), one the engine cannot run is Unsupported (skipped)."""
    part = req.get("partition")
    if not isinstance(part, list) or not part or any(type(c) is not int or c < 0 for c in part):
        raise ValueError(f"partition must be a non-empty list of sample counts ≥ 0, got {part!r}")
    n = inputs["x"].shape[0]
    if sum(part) != n:
        raise ValueError(f"partition {part} holds {sum(part)} samples but x has {n}")
    cap = adapter.capabilities().get("sync", {})
    if len(part) > cap.get("max_ranks", 0):
        raise Unsupported(f"{len(part)} ranks (this adapter runs at most {cap.get('max_ranks', 0)})")
    if len(set(part)) > 1 and not cap.get("uneven", False):
        raise Unsupported(f"uneven partition {part}")
    if 0 in part and not cap.get("empty_ranks", False):
        raise Unsupported(f"empty rank in partition {part}")
    if req["op"] == "sync-backward":
        red = req.get("grad_reduction")
        if red not in GRAD_REDUCTIONS:
            raise ValueError(f"grad_reduction must be one of {', '.join(GRAD_REDUCTIONS)}, got {red!r}")
        if red not in cap.get("grad_reductions", GRAD_REDUCTIONS):
            raise Unsupported(f"grad_reduction {red}")


def check_batches(adapter: "Adapter", req: "Request", inputs: Dict[str, np.ndarray]) -> None:
    """An epoch's batches (the request's partition) against x: a ValueError unless they are
    `steps` counts ≥ 1 adding up to N."""
    part = req.get("partition")
    if not isinstance(part, list) or not part or any(type(c) is not int or c < 1 for c in part):
        raise ValueError(f"an epoch's partition must be a non-empty list of batch sizes ≥ 1, got {part!r}")
    if sum(part) != inputs["x"].shape[0] or len(part) != req.get("steps"):
        raise ValueError(f"partition {part} does not cut x ({inputs['x'].shape[0]} samples) into {req.get('steps')} batches")


def check_gradient_rows(req: "Request", out: Dict[str, object]) -> None:
    """dgamma/dbeta of a synchronized backward: [K, C] (rank order) under "local", [C] under "global"."""
    C = req["shape"][1]
    want = (C,) if req.get("grad_reduction") == "global" else (len(req["partition"]), C)
    for k in ("dgamma", "dbeta"):
        if k in out and np.shape(out[k]) != want:
            raise ValueError(f"the adapter returned {k} of shape {np.shape(out[k])}, expected {want} ({req.get('grad_reduction')})")


#: Protocol operation → adapter method and inputs. A new operation is one entry here and one
#: method on the adapters that support it.
OP_TABLE: Dict[str, Op] = {
    "train": Op("train", ("x", "gamma", "beta", "running_mean", "running_var")),
    "infer": Op("infer", ("x", "gamma", "beta", "mean", "var")),
    "backward-train": Op("backward_train", ("x", "dy", "gamma", "beta")),
    "backward-infer": Op("backward_infer", ("x", "dy", "gamma", "beta", "mean", "var")),
    "trajectory": Op("trajectory", ("x", "x_eval", "gamma", "beta", "running_mean", "running_var"), steps=frozenset({"x"})),
    # An epoch reaches the same method: its batches (of different sizes) as the list of steps.
    "epoch": Op("trajectory", ("x", "x_eval", "gamma", "beta", "running_mean", "running_var"), batches=frozenset({"x"}),
                check=check_batches),
    "sync-train": Op("sync_train", ("x", "gamma", "beta", "running_mean", "running_var"), check=check_partition),
    "sync-backward": Op("sync_backward", ("x", "dy", "gamma", "beta"), check=check_partition, check_outputs=check_gradient_rows),
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

    def with_step(self, step: int, batch: Optional[int] = None) -> "Request":
        """The request for step `step` (1-based) of a trajectory or epoch; `batch`: that step's
        samples (an epoch's batches differ), which its shape then holds."""
        extra = {"shape": [batch] + list(self["shape"][1:])} if batch is not None else {}
        return Request(self, defaults=self.defaults, step=step, **extra)

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

    @property
    def partition(self) -> List[int]:
        """Synchronized ops: samples per rank along N (rank order; 0 = an empty rank)."""
        return list(self["partition"])

    @property
    def ranks(self) -> int:
        """Synchronized ops: K, the number of ranks (empty ones included)."""
        return len(self["partition"])

    @property
    def grad_reduction(self) -> str:
        """sync-backward: "local" (dgamma/dbeta [K, C], each rank's own sums) or "global" ([C])."""
        return self["grad_reduction"]

    def split(self, a) -> List[np.ndarray]:
        """Synchronized ops: `a` (x or dy, the whole batch) cut into the ranks' tensors."""
        return split_ranks(a, self.partition)

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
    #: Synchronized BN (sync-train, sync-backward): what the engine runs, the hello's
    #: supports["sync"] — {"max_ranks": K, "uneven": bool, "empty_ranks": bool,
    #: "grad_reductions": ["local", "global"]}; a partition outside it is skipped.
    sync = None
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

    # Synchronized BN (spec/SPEC.md §11): x and dy are the whole batch, the ranks' tensors
    # concatenated along N (req.split(x) cuts them; req.partition, req.grad_reduction). Return y / dx
    # of the whole batch, running_mean and running_var [C] (every rank's copy), dgamma / dbeta [K, C]
    # in rank order ("local") or [C] ("global").
    def sync_train(self, req, x, gamma, beta, running_mean, running_var):
        raise Unsupported("sync-train")

    def sync_backward(self, req, x, dy, gamma, beta):
        raise Unsupported("sync-backward")

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
        """Default: `steps` training steps, one per batch of xs, then inference on x_eval with the
        running statistics. Returns the running statistics after every step, stacked ([steps, C]).
        An epoch comes here too, its batches (of the request's partition sizes) as xs: an
        override must not assume one batch size."""
        rm, rv, ms, vs = running_mean, running_var, [], []
        # The running statistics are carried in the case's parameter dtype: float64 for float64
        # cases (they were cast to float32 between steps, so an honest float64 BN failed every
        # float64 trajectory from its first step: ONNX Runtime, 2026-12-05).
        pdt = np.float64 if req.get("parameter_dtype", req.get("dtype")) == "float64" else np.float32
        for k, x in enumerate(xs):
            step = req.with_step(k + 1, len(x)) if isinstance(req, Request) else dict(req, step=k + 1)
            out = self.train(step, x, gamma, beta, rm, rv)
            rm, rv = np.asarray(out["running_mean"], pdt), np.asarray(out["running_var"], pdt)
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
                   or (op in STEP_OPS and self._defines("train") and self._defines("infer"))]
        caps = {"ops": ops, "dtypes": list(self.dtypes), "layouts": list(self.layouts), "cumulative": bool(self.cumulative)}
        if any(op in SYNC_OPS for op in ops):
            caps["sync"] = dict(self.sync or {})
        return caps

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
    if req.get("cumulative") and op in ("train", "sync-train") + STEP_OPS and not sup.get("cumulative"):
        raise Unsupported("cumulative running average")
    pdt = req.get("parameter_dtype") or "float32"
    inp = {k: arrays.load(v, dtype if k in spec.data else pdt) for k, v in req["inputs"].items()}
    missing = [k for k in spec.inputs if k not in inp]
    if missing:
        raise Refused(f"request for {op} lacks input{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    request = req if isinstance(req, Request) else Request(req, defaults=adapter.defaults)
    if spec.check is not None:
        spec.check(adapter, request, inp)
    args = [list(inp[k]) if k in spec.steps else (request.split(inp[k]) if k in spec.batches else inp[k]) for k in spec.inputs]
    out = getattr(adapter, spec.method)(request, *args)
    if spec.check_outputs is not None:
        spec.check_outputs(request, out)
    paths = {}
    os.makedirs(req["output_dir"], exist_ok=True)
    for k, v in out.items():
        p = os.path.join(req["output_dir"], f"{k}.npy")
        adapter.save_output(p, v, dtype if k in spec.data else pdt)
        paths[k] = p
    return paths
