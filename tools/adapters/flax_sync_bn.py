#!/usr/bin/env python3
"""BNSpec adapter: synchronized BN in JAX/Flax — `flax.linen.BatchNorm(axis_name="ranks")` under
`jax.pmap` over K host CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=8, set here
before jax is imported). Single-device ops are FlaxBN's (tools/adapters/flax_bn.py).

pmap needs the same shape on every device, so an uneven partition is run the way Flax offers:
each rank's samples padded with zeros to the largest rank's count and `mask` marking the real
ones (BatchNorm.__call__(x, mask=...), passed to `_compute_stats`). An even partition is run
without a mask. What Flax then computes (flax/linen/normalization.py, `_compute_stats`):
per device x.mean(axes, where=mask) and mean of x² (use_fast_variance=True by default), then
`lax.pmean` of both over the axis — each device weighted 1/K whatever its count — and
var = max(0, E[x²] − E[x]²). An empty rank (mask all false) gives 0/0 = NaN.

Gradients: `jax.vjp` inside pmap gives each device the gradient of its own outputs (dx through
the pmean), so dscale/dbias are per device ("local", [K, C]); "global" sums them with
`lax.psum` over the axis.
"""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax_bn import DT, FlaxBN  # noqa: E402  (puts the checkout's bnspec package on sys.path)
from bnspec import SYNC_OPS, serve, split_ranks  # noqa: E402

AXIS = "ranks"


class FlaxSyncBN(FlaxBN):
    name = "flax-sync"
    supports = dict(FlaxBN.supports, ops=FlaxBN.supports["ops"] + SYNC_OPS,
                    sync={"max_ranks": 8, "uneven": True, "empty_ranks": True, "grad_reductions": ["local", "global"]})

    def sync_module(self, req):
        mod = self.module(req, True)
        return mod.clone(axis_name=AXIS)

    def stacked(self, req, a):
        """[K, L, …]: the ranks' tensors padded to L = the largest count, and the mask (None if even)."""
        part = req["partition"]
        L = max(part)
        blocks = split_ranks(np.asarray(a, np.float32), part)
        out = np.zeros((len(part), L) + a.shape[1:], np.float32)
        mask = np.zeros((len(part), L) + a.shape[1:], bool)
        for k, blk in enumerate(blocks):
            out[k, :blk.shape[0]] = blk
            mask[k, :blk.shape[0]] = True
        return jnp.asarray(out, dtype=DT[req["dtype"]]), (None if len(set(part)) == 1 else jnp.asarray(mask))

    @staticmethod
    def unstack(req, a):
        return np.concatenate([np.asarray(a[k, :n], np.float64) for k, n in enumerate(req["partition"])], axis=0)

    def sync_train(self, req, x, gamma, beta, running_mean, running_var):
        K = len(req["partition"])
        mod = self.sync_module(req)
        v = self.variables(gamma, beta, running_mean, running_var)
        xs, mask = self.stacked(req, x)

        def f(xx, m):
            y, st = mod.apply(v, xx, mask=m, mutable=["batch_stats"])
            return y, st["batch_stats"]["mean"], st["batch_stats"]["var"]

        if mask is None:
            y, rm, rv = jax.pmap(lambda xx: f(xx, None), axis_name=AXIS, devices=jax.devices()[:K])(xs)
        else:
            y, rm, rv = jax.pmap(f, axis_name=AXIS, devices=jax.devices()[:K])(xs, mask)
        rm, rv = np.asarray(rm), np.asarray(rv)
        if not (np.array_equal(rm, rm[:1].repeat(K, 0), equal_nan=True) and np.array_equal(rv, rv[:1].repeat(K, 0), equal_nan=True)):
            print("flax-sync: devices disagree on the running statistics", file=sys.stderr)
        return {"y": self.unstack(req, y), "running_mean": rm[0], "running_var": rv[0]}

    def sync_backward(self, req, x, dy, gamma, beta):
        K, C = len(req["partition"]), gamma.size
        mod = self.sync_module(req)
        v0 = self.variables(gamma, beta, np.zeros(C), np.ones(C))
        xs, mask = self.stacked(req, x)
        dys, _ = self.stacked(req, dy)
        red = req["grad_reduction"]

        def f(xx, dyy, m):
            def fwd(xx, scale, bias):
                vs = {"params": {"scale": scale, "bias": bias}, "batch_stats": v0["batch_stats"]}
                return mod.apply(vs, xx, mask=m, mutable=["batch_stats"])[0]
            y, vjp = jax.vjp(fwd, xx, v0["params"]["scale"], v0["params"]["bias"])
            dx, dg, db = vjp(dyy.astype(y.dtype))
            if red == "global":
                dg, db = jax.lax.psum(dg, AXIS), jax.lax.psum(db, AXIS)
            return dx, dg, db

        if mask is None:
            dx, dg, db = jax.pmap(lambda a, b: f(a, b, None), axis_name=AXIS, devices=jax.devices()[:K])(xs, dys)
        else:
            dx, dg, db = jax.pmap(f, axis_name=AXIS, devices=jax.devices()[:K])(xs, dys, mask)
        dg, db = np.asarray(dg, np.float64), np.asarray(db, np.float64)
        return {"dx": self.unstack(req, dx), "dgamma": dg[0] if red == "global" else dg, "dbeta": db[0] if red == "global" else db}


if __name__ == "__main__":
    serve(FlaxSyncBN())
