#!/usr/bin/env python3
"""BNSpec adapter: JAX/Flax, flax.linen.BatchNorm with its defaults (momentum 0.99 on the
running value, epsilon 1e-5) unless the request sets them; gradients with jax.vjp."""
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # the checkout's bnspec package
import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bnspec import Adapter, serve  # noqa: E402

DT = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}


class FlaxBN(Adapter):
    name = "flax"
    version = f"flax {flax.__version__} / jax {jax.__version__}"
    supports = {"ops": ["train", "infer", "backward-train", "backward-infer", "trajectory", "epoch"],
                "dtypes": ["float32", "float16", "bfloat16"], "layouts": ["NCHW", "NHWC", "NC"], "cumulative": False}

    def module(self, req, training):
        kw = {"use_running_average": not training, "axis": 1 if req["layout"] == "NCHW" else -1}
        if req.get("eps") is not None:
            kw["epsilon"] = req["eps"]
        if req.get("raw_momentum") is not None:
            kw["momentum"] = req["raw_momentum"]
        elif req.get("batch_weight") is not None:
            kw["momentum"] = 1.0 - req["batch_weight"]  # Flax's momentum weights the running value
        return nn.BatchNorm(**kw)

    @staticmethod
    def variables(g, b, m, v):
        f = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
        return {"params": {"scale": f(g), "bias": f(b)}, "batch_stats": {"mean": f(m), "var": f(v)}}

    def x(self, req, x):
        return jnp.asarray(np.asarray(x, np.float32), dtype=DT[req["dtype"]])

    def train(self, req, x, gamma, beta, running_mean, running_var):
        y, st = self.module(req, True).apply(self.variables(gamma, beta, running_mean, running_var), self.x(req, x),
                                             mutable=["batch_stats"])
        return {"y": np.asarray(y, np.float64), "running_mean": np.asarray(st["batch_stats"]["mean"]),
                "running_var": np.asarray(st["batch_stats"]["var"])}

    def infer(self, req, x, gamma, beta, mean, var):
        y = self.module(req, False).apply(self.variables(gamma, beta, mean, var), self.x(req, x))
        return {"y": np.asarray(y, np.float64)}

    def grads(self, req, x, dy, gamma, beta, training, mean=None, var=None):
        C = gamma.size
        v0 = self.variables(gamma, beta, mean if mean is not None else np.zeros(C), var if var is not None else np.ones(C))
        mod = self.module(req, training)

        def f(xx, scale, bias):
            vs = {"params": {"scale": scale, "bias": bias}, "batch_stats": v0["batch_stats"]}
            return mod.apply(vs, xx, mutable=["batch_stats"])[0] if training else mod.apply(vs, xx)

        xx = self.x(req, x)
        y, vjp = jax.vjp(f, xx, v0["params"]["scale"], v0["params"]["bias"])
        dx, dg, db = vjp(jnp.asarray(dy, y.dtype))
        return {"dx": np.asarray(dx, np.float64), "dgamma": np.asarray(dg, np.float64), "dbeta": np.asarray(db, np.float64)}

    def backward_train(self, req, x, dy, gamma, beta):
        return self.grads(req, x, dy, gamma, beta, True)

    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        return self.grads(req, x, dy, gamma, beta, False, mean, var)


if __name__ == "__main__":
    serve(FlaxBN())
