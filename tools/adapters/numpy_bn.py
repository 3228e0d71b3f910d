#!/usr/bin/env python3
"""BNSpec adapter: a plain float32 batch normalization in NumPy — the smallest complete
adapter, and the model for writing one (spec/AUDIT.md).

It implements whatever convention the request names (eps, batch weight, running-variance
estimator, single-value policy), with NumPy float32 arithmetic. The batch statistics come from
one of three honest algorithms:

    two-pass   mean, then the mean of squared deviations (NumPy's reductions; the default)
    welford    Welford's updating algorithm, one value at a time in storage order (what GPU BN
               kernels use): δ = x − m; m += δ/k; M₂ += δ·(x − m)
    pairwise   a pairwise tree of Chan–Golub–LeVeque merges of (count, mean, M₂) over the
               values in storage order (what parallel and blocked kernels do)

Run: bnspec audit --adapter "python3 tools/adapters/numpy_bn.py [--variance welford|pairwise]" --profile pytorch
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # the checkout's bnspec package
import numpy as np  # noqa: E402
from bnspec import OPS, Adapter, channel_axis, param_shape, reduce_axes, serve  # noqa: E402

F = np.float32
VARIANCE = ["two-pass", "welford", "pairwise"]
RUNNING_UPDATE = ["blend", "rearranged"]


def channel_rows(x, layout):
    """x as [n, C]: row k holds the k-th value of every channel in storage order."""
    ax = channel_axis(layout) % x.ndim
    return np.moveaxis(x, ax, -1).reshape(-1, x.shape[ax])


def welford(rows):
    """Per-channel mean and biased variance by Welford's update, float32 throughout."""
    m = np.zeros(rows.shape[1], F)
    m2 = np.zeros(rows.shape[1], F)
    for k, r in enumerate(rows, 1):
        d = r - m
        m = m + d / F(k)
        m2 = m2 + d * (r - m)
    return m, m2 / F(len(rows))


def pairwise(rows):
    """Per-channel mean and biased variance by a pairwise tree of Chan et al.'s merge
    (n = na + nb, δ = mb − ma, m = ma + δ·nb/n, M₂ = M₂a + M₂b + δ²·na·nb/n), float32."""
    cnt = np.ones(len(rows), F)
    m, m2 = rows.astype(F), np.zeros_like(rows, F)
    while len(m) > 1:
        odd = len(m) % 2
        tail = (cnt[-1:], m[-1:], m2[-1:]) if odd else None
        end = len(m) - odd
        na, nb = cnt[0:end:2], cnt[1:end:2]
        n = na + nb
        d = m[1:end:2] - m[0:end:2]
        m, m2 = m[0:end:2] + d * (nb / n)[:, None], m2[0:end:2] + m2[1:end:2] + d * d * (na * nb / n)[:, None]
        cnt = n
        if tail:
            cnt, m, m2 = np.concatenate([cnt, tail[0]]), np.concatenate([m, tail[1]]), np.concatenate([m2, tail[2]])
    return m[0], m2[0] / cnt[0]


class NumpyBN(Adapter):
    name = "numpy"
    version = np.__version__
    supports = {"ops": OPS, "dtypes": ["float32", "float16", "bfloat16"], "layouts": ["NCHW", "NHWC", "NC"], "cumulative": True}
    defaults = {"eps": 1e-5, "batch_weight": 0.1, "variance_estimator": "unbiased", "single_value": "error"}

    def __init__(self, variance="two-pass", running_update="blend"):
        if variance not in VARIANCE:
            raise ValueError(f"variance must be one of {', '.join(VARIANCE)}")
        if running_update not in RUNNING_UPDATE:
            raise ValueError(f"running update must be one of {', '.join(RUNNING_UPDATE)}")
        self.variance, self.running_update = variance, running_update
        if variance != "two-pass":
            self.name = f"numpy-{variance}"
        if running_update != "blend":
            self.name += f"-{running_update}"

    def update(self, r, b, w):
        """The running update: (1 − w)·r + w·b, or rearranged r − w·(r − b) (TensorFlow's
        assign_moving_average: ∞ − ∞ = NaN where r is infinite, which spec §5.3 accepts)."""
        r = r.astype(F)
        return r - w * (r - b) if self.running_update == "rearranged" else (F(1) - w) * r + w * b

    def opt(self, req, key):
        v = req.get(key)
        return self.defaults[key] if v is None else v

    def stats(self, req, x):
        axes = reduce_axes(x.ndim, req["layout"])
        x = x.astype(F)
        if self.variance != "two-pass":
            m, v = (welford if self.variance == "welford" else pairwise)(channel_rows(x, req["layout"]))
            return x, m, v, x.size // m.size
        m = x.mean(axis=axes, dtype=F)
        d = x - m.reshape(param_shape(x.ndim, req["layout"], m.size))
        v = (d * d).mean(axis=axes, dtype=F)
        return x, m, v, x.size // m.size

    def norm(self, req, x, g, b, m, v):
        ps = param_shape(x.ndim, req["layout"], g.size)
        eps = F(self.opt(req, "eps"))
        r = F(1) / np.sqrt(v.astype(F) + eps)
        return (x - m.astype(F).reshape(ps)) * (g.astype(F) * r).reshape(ps) + b.astype(F).reshape(ps)

    def train(self, req, x, gamma, beta, running_mean, running_var):
        x, m, v, n = self.stats(req, x)
        vr = self.running_variance_term(req, v, n)
        if req.get("cumulative"):
            w = F(1.0 / req.get("step", 1))
        elif req.get("raw_momentum") is not None:  # this adapter's own momentum is the batch weight
            w = F(req["raw_momentum"])
        else:
            w = F(self.opt(req, "batch_weight"))
        return {"y": self.norm(req, x, gamma, beta, m, v), "batch_mean": m, "batch_var": v,
                "running_mean": self.update(running_mean, m, w), "running_var": self.update(running_var, vr, w)}

    def running_variance_term(self, req, v, n):
        """The batch variance the running variance takes: the profile's estimator of v (n values)."""
        est = self.opt(req, "variance_estimator")
        if n == 1 and est == "unbiased":
            policy = self.opt(req, "single_value")
            if policy == "error":
                raise ValueError("Expected more than 1 value per channel when training")
            return v if policy == "beta" else np.full_like(v, np.nan)
        return v * F(n) / F(n - 1) if est == "unbiased" else v

    def trajectory(self, req, xs, x_eval, gamma, beta, running_mean, running_var):
        rm, rv, ms, vs = running_mean, running_var, [], []
        for k, x in enumerate(xs):
            out = self.train(dict(req, step=k + 1), x, gamma, beta, rm, rv)
            rm, rv = out["running_mean"], out["running_var"]
            ms.append(rm); vs.append(rv)
        return {"running_mean": np.stack(ms), "running_var": np.stack(vs),
                "y_eval": self.norm(req, x_eval.astype(F), gamma, beta, rm, rv)}

    def infer(self, req, x, gamma, beta, mean, var):
        return {"y": self.norm(req, x.astype(F), gamma, beta, mean, var)}

    def backward(self, req, x, dy, gamma, m, v):
        axes = reduce_axes(x.ndim, req["layout"])
        ps = param_shape(x.ndim, req["layout"], gamma.size)
        x, dy = x.astype(F), dy.astype(F)
        r = F(1) / np.sqrt(v.astype(F) + F(self.opt(req, "eps")))
        xh = (x - m.astype(F).reshape(ps)) * r.reshape(ps)
        db = dy.sum(axis=axes, dtype=F)
        dg = (dy * xh).sum(axis=axes, dtype=F)
        return xh, r, db, dg

    def backward_train(self, req, x, dy, gamma, beta):
        _, m, v, n = self.stats(req, x)
        xh, r, db, dg = self.backward(req, x, dy, gamma, m, v)
        ps = param_shape(x.ndim, req["layout"], gamma.size)
        k = (gamma.astype(F) * r).reshape(ps)
        dx = k * (dy.astype(F) - (db / F(n)).reshape(ps) - xh * (dg / F(n)).reshape(ps))
        return {"dx": dx, "dgamma": dg, "dbeta": db}

    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        xh, r, db, dg = self.backward(req, x, dy, gamma, mean, var)
        ps = param_shape(x.ndim, req["layout"], gamma.size)
        return {"dx": (gamma.astype(F) * r).reshape(ps) * dy.astype(F), "dgamma": dg, "dbeta": db}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="BNSpec adapter: float32 batch normalization in NumPy")
    ap.add_argument("--variance", choices=VARIANCE, default="two-pass", help="algorithm of the batch statistics")
    ap.add_argument("--running-update", choices=RUNNING_UPDATE, default="blend",
                    help="(1 − w)·r + w·b, or r − w·(r − b) as TensorFlow's assign_moving_average")
    a = ap.parse_args()
    serve(NumpyBN(a.variance, a.running_update))
