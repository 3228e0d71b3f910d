#!/usr/bin/env python3
"""BNSpec adapter: higher-order derivatives of BN in JAX (spec §12).

    python3 tools/adapters/jax_higher_order.py --bn {flax,flax-two-pass,functional} --ad {rev,fwd,fwd-rev,rev-fwd,hessian}

--bn flax        flax.linen.BatchNorm with its defaults (use_fast_variance: E[x²] − E[x]²)
--bn flax-two-pass  flax.linen.BatchNorm(use_fast_variance=False): mean((x − mean x)²)
--bn functional  BN in jax.numpy, two-pass variance mean((x − mean x)²)
--ad rev         reverse over reverse (nested jax.grad / jax.vjp)
--ad fwd         forward over forward (nested jax.jvp)
--ad fwd-rev     jax.jvp of jax.grad;  --ad rev-fwd  jax.grad of jax.jvp
--ad hessian     jax.hessian of L = <dy, y> times v (hvp ops only; ≤ 4096 variables)

float32 and float64 (jax_enable_x64 is switched on; float32 cases stay in float32). The
quantities are those of tools/adapters/torch_higher_order.py (D²y and D³y read off by ∂/∂u of
<u, ·> in the modes with a reverse step).
"""
import argparse
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bnspec_adapter import HIGHER_ORDER_OPS, Adapter, Unsupported, channel_axis, serve  # noqa: E402

DT = {"float32": jnp.float32, "float64": jnp.float64}
AD = ["rev", "fwd", "fwd-rev", "rev-fwd", "hessian"]


def dot(a, b):
    return sum(jnp.sum(p * q) for p, q in zip(a, b))


class JaxHigherOrder(Adapter):
    version = f"jax {jax.__version__} / flax {flax.__version__}"
    supports = {"ops": HIGHER_ORDER_OPS, "dtypes": ["float32", "float64"], "layouts": ["NCHW", "NHWC", "NC"],
                "cumulative": False}

    def __init__(self, bn, ad):
        self.bn, self.ad = bn, ad
        self.name = f"jax-higher-order[{bn},{ad}]"

    def y(self, req, training, mean=None, var=None):
        dt = DT[req["dtype"]]
        axis = channel_axis(req["layout"])
        eps = req.eps
        if self.bn in ("flax", "flax-two-pass"):
            mod = nn.BatchNorm(use_running_average=not training, axis=axis, epsilon=eps, dtype=dt, param_dtype=dt,
                               use_fast_variance=self.bn == "flax")

            def f(x, g, b):
                C = g.shape[0]
                st = {"mean": mean if mean is not None else jnp.zeros(C, dt), "var": var if var is not None else jnp.ones(C, dt)}
                vs = {"params": {"scale": g, "bias": b}, "batch_stats": st}
                return mod.apply(vs, x, mutable=["batch_stats"])[0] if training else mod.apply(vs, x)
            return f

        def functional(x, g, b):
            ax = axis % x.ndim
            red = tuple(i for i in range(x.ndim) if i != ax)
            shape = [1] * x.ndim
            shape[ax] = g.shape[0]
            if training:
                m = jnp.mean(x, axis=red, keepdims=True)
                v = jnp.mean((x - m) * (x - m), axis=red, keepdims=True)
            else:
                m, v = mean.reshape(shape), var.reshape(shape)
            return (x - m) / jnp.sqrt(v + eps) * g.reshape(shape) + b.reshape(shape)
        return functional

    def arrays(self, req, x, gamma, beta, *dirs):
        """θ = (x, γ, β) and the directions, each a triple (x-part, γ-part, β-part), in the case's dtype."""
        dt = DT[req["dtype"]]
        a = lambda z: jnp.asarray(np.asarray(z), dtype=dt)  # noqa: E731
        return (a(x), a(gamma), a(beta)), [tuple(a(p) for p in d) for d in dirs]

    def hvp(self, y, theta, v, dy):
        def L(*th):
            return jnp.sum(y(*th) * dy)
        g = jax.grad(L, argnums=(0, 1, 2))
        if self.ad == "rev":
            return jax.grad(lambda *th: dot(g(*th), v), argnums=(0, 1, 2))(*theta)
        if self.ad == "fwd-rev":
            return jax.jvp(g, theta, v)[1]
        if self.ad == "rev-fwd":
            return jax.grad(lambda *th: jax.jvp(L, th, v)[1], argnums=(0, 1, 2))(*theta)
        sizes = [t.size for t in theta]
        if sum(sizes) > 4096:
            raise Unsupported(f"--ad {self.ad} builds the dense Hessian; {sum(sizes)} variables > 4096")
        z0, vz = jnp.concatenate([t.reshape(-1) for t in theta]), jnp.concatenate([t.reshape(-1) for t in v])
        cuts = list(np.cumsum(sizes)[:-1])

        def Lflat(z):
            return L(*[p.reshape(t.shape) for p, t in zip(jnp.split(z, cuts), theta)])
        if self.ad == "hessian":
            hv = jax.hessian(Lflat)(z0) @ vz
        else:  # fwd: columns D²L[v, e_j] by nested jvp, vmapped over the basis
            basis = jnp.eye(z0.size, dtype=z0.dtype)
            hv = jax.vmap(lambda e: jax.jvp(lambda z: jax.jvp(Lflat, (z,), (vz,))[1], (z0,), (e,))[1])(basis)
        return [p.reshape(t.shape) for p, t in zip(jnp.split(hv, cuts), theta)]

    def derivative(self, y, theta, dirs):
        """Dᵏy[d₁, …, d_k]."""
        if self.ad == "fwd":
            f = y
            for d in dirs:
                f = (lambda g, d: (lambda *th: jax.jvp(g, th, d)[1]))(f, d)
            return f(*theta)
        if self.ad == "hessian":
            raise Unsupported("--ad hessian answers hvp ops only")

        def phi(u, *th):
            return jnp.sum(y(*th) * u)

        def nested(f, d, k):
            forward = self.ad == "fwd-rev" and k > 0 or self.ad == "rev-fwd" and k == 0
            if forward:
                return lambda u, *th: jax.jvp(lambda *t: f(u, *t), th, d)[1]
            return lambda u, *th: dot(jax.grad(lambda *t: f(u, *t), argnums=tuple(range(len(th))))(*th), d)
        f = phi
        for k, d in enumerate(dirs):
            f = nested(f, d, k)
        return jax.grad(lambda u: f(u, *theta))(jnp.zeros_like(y(*theta)))

    def out(self, a):
        return np.asarray(a, np.float64)

    def hvp_train(self, req, x, dy, gamma, beta, v_x, v_gamma, v_beta):
        theta, (vv,) = self.arrays(req, x, gamma, beta, (v_x, v_gamma, v_beta))
        h = self.hvp(self.y(req, True), theta, vv, jnp.asarray(dy, DT[req["dtype"]]))
        return {"hv_x": self.out(h[0]), "hv_gamma": self.out(h[1]), "hv_beta": self.out(h[2])}

    def hvp_infer(self, req, x, dy, gamma, beta, mean, var, v_x, v_gamma, v_beta):
        theta, (vv,) = self.arrays(req, x, gamma, beta, (v_x, v_gamma, v_beta))
        dt = DT[req["dtype"]]
        h = self.hvp(self.y(req, False, jnp.asarray(mean, dt), jnp.asarray(var, dt)), theta, vv, jnp.asarray(dy, dt))
        return {"hv_x": self.out(h[0]), "hv_gamma": self.out(h[1]), "hv_beta": self.out(h[2])}

    def d2_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        theta, (vv, ww) = self.arrays(req, x, gamma, beta, (v_x, v_gamma, v_beta), (w_x, w_gamma, w_beta))
        return {"d2y": self.out(self.derivative(self.y(req, True), theta, [vv, ww]))}

    def d3_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        theta, (vv, ww) = self.arrays(req, x, gamma, beta, (v_x, v_gamma, v_beta), (w_x, w_gamma, w_beta))
        return {"d3y": self.out(self.derivative(self.y(req, True), theta, [vv, vv, ww]))}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bn", choices=["flax", "flax-two-pass", "functional"], required=True)
    p.add_argument("--ad", choices=AD, required=True)
    a = p.parse_args()
    serve(JaxHigherOrder(a.bn, a.ad))
