#!/usr/bin/env python3
"""BNSpec adapter: synchronized batch normalization (spec/SPEC.md §11) simulated in NumPy
float32 — the honest example of the sync protocol, and its classic bugs.

    python3 tools/adapters/numpy_sync_bn.py          honest
    python3 tools/adapters/numpy_sync_bn.py BUG      one bug from SYNC_BUGS

Honest algorithm, per channel: every rank computes its own (n_k, mean_k, M2_k) in float32
(two-pass); the "all-gather" is followed by Chan, Golub & LeVeque's pairwise merge in float32,
rank by rank (n = n_a + n_b, d = mean_b − mean_a, mean += d·n_b/n, M2 += M2_b + d²·n_a·n_b/n);
empty ranks contribute nothing. The running update uses the global n. Backward: each rank's
Σdy and Σdy·x̂ (x̂ from the global statistics) are summed over the ranks in float32 (the
"all-reduce"), dx = γ·r·(dy − Σdy/n − x̂·Σdy·x̂/n) with the global n; dγ/dβ are each rank's
own sums ([K, C], "local") or their sum ([C], "global").

Bugs (each one line of difference, named as the audit should name it):
    unweighted-mean    global mean = mean of the ranks' means, and variance = mean of the ranks'
                       (var_k + (mean_k − mean)²): every rank weighted 1/K, not n_k/n
    local-bessel       unbiased running variance corrected with the rank's own n_k (rank 0's copy is returned)
    unsync-dx          backward uses each rank's own Σdy, Σdy·x̂ (the all-reduce is missing)
    no-between-term    M2 = Σ M2_k: the between-rank term Σ n_k·(mean_k − mean)² is dropped
Bugs of an outside red team's (round F, 2026-12-05), which the suite first let pass or misnamed:
    pow2-allreduce     a recursive-doubling all-reduce without its fix-up: ranks ≥ the largest
                       power of two ≤ K are left out of the statistics and of Σdy, Σdy·x̂
    first-empty-nan    the merge starts from rank 0's moments even when rank 0 is empty (NaN)
    dx-kn              backward divides the all-reduced sums by K'·n_k instead of n
    dx-local-dy        backward's Σdy is the rank's own, Σdy·x̂ all-reduced
    local-y            y normalised with each rank's own statistics; batch and running statistics global
    running-rank0      running statistics from the first non-empty rank's own batch; y global
Single-device ops are NumpyBN's (tools/adapters/numpy_bn.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from numpy_bn import F, NumpyBN  # noqa: E402  (puts the checkout's bnspec package on sys.path)
from bnspec import OPS, SYNC_OPS, param_shape, reduce_axes, serve, split_ranks  # noqa: E402

SYNC_BUGS = ["unweighted-mean", "local-bessel", "unsync-dx", "no-between-term",
             "pow2-allreduce", "first-empty-nan", "dx-kn", "dx-local-dy", "local-y", "running-rank0"]


def pow2_floor(k):
    """The largest power of two ≤ k (k ≥ 1)."""
    p = 1
    while p * 2 <= k:
        p *= 2
    return p


class NumpySyncBN(NumpyBN):
    name = "numpy-sync"
    supports = dict(NumpyBN.supports, ops=OPS + SYNC_OPS,
                    sync={"max_ranks": 64, "uneven": True, "empty_ranks": True, "grad_reductions": ["local", "global"]})

    def __init__(self, bug=None):
        super().__init__()  # two-pass single-device statistics
        self.bug = bug
        if bug:
            self.name = f"numpy-sync-mutant:{bug}"

    def rank_moments(self, req, xk):
        """(n_k, mean_k, M2_k) of one rank, float32 two-pass; None for an empty rank."""
        if xk.shape[0] == 0:
            return None
        axes = reduce_axes(xk.ndim, req["layout"])
        xk = xk.astype(F)
        C = xk.shape[1] if req["layout"] == "NCHW" else xk.shape[-1]
        m = xk.mean(axis=axes, dtype=F)
        d = xk - m.reshape(param_shape(xk.ndim, req["layout"], C))
        return xk.size // C, m, (d * d).sum(axis=axes, dtype=F)

    def merge(self, parts):
        """Global (n, mean, M2) from the ranks' (n_k, mean_k, M2_k), float32."""
        first_empty = parts[0] is None
        if self.bug == "pow2-allreduce":
            parts = parts[:pow2_floor(len(parts))]
        parts = [p for p in parts if p is not None]
        if self.bug == "unweighted-mean":
            K = F(len(parts))
            mean = sum(m for _, m, _ in parts) / K
            var = sum(M2 / F(n) + (m - mean) ** 2 for n, m, M2 in parts) / K
            n = sum(n for n, _, _ in parts)
            return n, mean, var * F(n)
        n, mean, M2 = 0, np.zeros_like(parts[0][1]), np.zeros_like(parts[0][2])
        if self.bug == "first-empty-nan" and first_empty:
            mean = np.full_like(mean, np.nan)
        for nb, mb, M2b in parts:
            nab = n + nb
            d = mb - mean
            mean = mean + d * (F(nb) / F(nab))
            between = d * d * (F(n) * F(nb) / F(nab))
            M2 = M2 + M2b + (F(0) if self.bug == "no-between-term" else between)
            n = nab
        return n, mean, M2

    def sync_stats(self, req, x):
        parts = [self.rank_moments(req, xk) for xk in split_ranks(x, req["partition"])]
        n, mean, M2 = self.merge(parts)
        return parts, n, mean, M2

    def sync_train(self, req, x, gamma, beta, running_mean, running_var):
        parts, n, m, M2 = self.sync_stats(req, x)
        v = M2 / F(n)
        est = self.opt(req, "variance_estimator")
        if n == 1 and est == "unbiased":  # one value per channel *globally*
            policy = self.opt(req, "single_value")
            if policy == "error":
                raise ValueError("Expected more than 1 value per channel when training")
            vr = v if policy == "beta" else np.full_like(v, np.nan)
        elif est == "unbiased":
            nb = next(p[0] for p in parts if p is not None) if self.bug == "local-bessel" else n
            with np.errstate(divide="ignore", invalid="ignore"):
                vr = v * F(nb) / F(nb - 1)
        else:
            vr = v
        if req.get("cumulative"):
            w = F(1.0 / req.get("step", 1))
        elif req.get("raw_momentum") is not None:
            w = F(req["raw_momentum"])
        else:
            w = F(self.opt(req, "batch_weight"))
        y = self.norm(req, x.astype(F), gamma, beta, m, v)
        if self.bug == "local-y":
            y = np.concatenate([self.norm(req, xk.astype(F), gamma, beta, p[1], p[2] / F(p[0]))
                                for xk, p in zip(split_ranks(x, req["partition"]), parts) if p is not None], axis=0)
        rm, rv = m, vr
        if self.bug == "running-rank0":
            n0, rm, M20 = next(p for p in parts if p is not None)
            rv = M20 / F(n0 - 1 if est == "unbiased" and n0 > 1 else n0)
        return {"y": y, "batch_mean": m, "batch_var": v,
                "running_mean": (F(1) - w) * running_mean.astype(F) + w * rm,
                "running_var": (F(1) - w) * running_var.astype(F) + w * rv}

    def sync_backward(self, req, x, dy, gamma, beta):
        part = req["partition"]
        _, n, m, M2 = self.sync_stats(req, x)
        v = M2 / F(n)
        ps = param_shape(x.ndim, req["layout"], gamma.size)
        C = gamma.size
        xs, dys = split_ranks(x.astype(F), part), split_ranks(dy.astype(F), part)
        r = F(1) / np.sqrt(v.astype(F) + F(self.opt(req, "eps")))
        local_db, local_dg, xhats = [], [], []
        for xk, dyk in zip(xs, dys):
            xh = (xk - m.reshape(ps)) * r.reshape(ps)
            axes = reduce_axes(xk.ndim, req["layout"])
            local_db.append(dyk.sum(axis=axes, dtype=F) if xk.shape[0] else np.zeros(C, F))
            local_dg.append((dyk * xh).sum(axis=axes, dtype=F) if xk.shape[0] else np.zeros(C, F))
            xhats.append(xh)
        db, dg = np.zeros(C, F), np.zeros(C, F)  # the all-reduce, rank by rank
        reduced = pow2_floor(len(part)) if self.bug == "pow2-allreduce" else len(part)
        for a, b in zip(local_db[:reduced], local_dg[:reduced]):
            db, dg = db + a, dg + b
        k = (gamma.astype(F) * r).reshape(ps)
        nonempty = sum(1 for c in part if c > 0)
        dx = []
        for xh, dyk, a, b in zip(xhats, dys, local_db, local_dg):
            sdy, sdyx = (a, b) if self.bug == "unsync-dx" else (a, dg) if self.bug == "dx-local-dy" else (db, dg)
            nk = F(n) if self.bug != "dx-kn" else F(nonempty * (dyk.size // C))
            dx.append(k * (dyk - (sdy / nk).reshape(ps) - xh * (sdyx / nk).reshape(ps)))
        out = {"dx": np.concatenate(dx, axis=0)}
        if req["grad_reduction"] == "global":
            out.update(dgamma=dg, dbeta=db)
        else:
            out.update(dgamma=np.stack(local_dg), dbeta=np.stack(local_db))
        return out


if __name__ == "__main__":
    bug = sys.argv[1] if len(sys.argv) > 1 else None
    if bug is not None and bug not in SYNC_BUGS:
        sys.exit(f"numpy_sync_bn: error: unknown bug {bug!r} (known: {', '.join(SYNC_BUGS)})")
    serve(NumpySyncBN(bug))
