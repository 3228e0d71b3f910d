#!/usr/bin/env python3
"""BNSpec adapter: higher-order derivatives of PyTorch's batch normalization (spec §12).

    python3 tools/adapters/torch_higher_order.py --bn {fused,primitives} --ad {autograd,func-rev,fwd,fwd-rev,rev-fwd,hessian}

--bn fused       torch.nn.functional.batch_norm (what nn.BatchNorm*d calls; its own jvp and
                 double-backward formulas)
--bn primitives  the same BN written with mean, subtraction, sqrt and division, so that every
                 derivative comes from the elementary ops' rules

--ad autograd    reverse over reverse with torch.autograd.grad(create_graph=True) (double backward)
--ad func-rev    reverse over reverse with torch.func.grad / torch.func.vjp
--ad fwd         forward over forward: nested torch.func.jvp
--ad fwd-rev     forward over reverse: torch.func.jvp of torch.func.grad
--ad rev-fwd     reverse over forward: torch.func.grad of torch.func.jvp
--ad hessian     torch.func.hessian of L = <dy, y> times v (hvp ops only; ≤ 4096 variables)

Quantities (all formulations compute the same mathematical object, spec §12.4):
  hvp-*    H·v of L = <dy, y> in (x, γ, β)
  d2-train D²y[v, w]; with a reverse inner/outer mode the tensor is read off as ∂/∂u of
           <u, ·> (the reverse reading <dy, D²y[v, w]> = <H_dy v, w> with dy = u)
  d3-train D³y[v, v, w]
Float32 and float64; NHWC is permuted to NCHW. Failures (e.g. torch's "batch_norm does not
support 3rd+ order derivatives") are reported as errors, which the audit counts as failures.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bnspec_adapter import HIGHER_ORDER_OPS, Adapter, Unsupported, serve  # noqa: E402

torch.set_num_threads(1)
DT = {"float32": torch.float32, "float64": torch.float64}
AD = ["autograd", "func-rev", "fwd", "fwd-rev", "rev-fwd", "hessian"]
jvp, fgrad = torch.func.jvp, torch.func.grad


def to_nc(a, layout, dt):
    t = torch.from_numpy(np.ascontiguousarray(a)).to(dt)
    return t.movedim(-1, 1) if layout == "NHWC" else t


def from_nc(t, layout):
    t = t.movedim(1, -1) if layout == "NHWC" else t
    return t.detach().double().numpy()


def batch_norm(kind, training, eps, mean=None, var=None):
    """y(x, γ, β) in NC… layout."""
    def fused(x, g, b):
        return torch.nn.functional.batch_norm(x, mean, var, g, b, training, 0.1, eps)

    def primitives(x, g, b):
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        if training:
            dims = [0] + list(range(2, x.dim()))
            m = x.mean(dim=dims, keepdim=True)
            v = ((x - m) * (x - m)).mean(dim=dims, keepdim=True)
        else:
            m, v = mean.view(shape), var.view(shape)
        return (x - m) / torch.sqrt(v + eps) * g.view(shape) + b.view(shape)
    return fused if kind == "fused" else primitives


def dot(a, b):
    return sum((p * q).sum() for p, q in zip(a, b))


class TorchHigherOrder(Adapter):
    version = torch.__version__
    supports = {"ops": HIGHER_ORDER_OPS, "dtypes": ["float32", "float64"], "layouts": ["NCHW", "NHWC", "NC"],
                "cumulative": False}

    def __init__(self, bn, ad):
        self.bn, self.ad = bn, ad
        self.name = f"torch-higher-order[{bn},{ad}]"

    def tensors(self, req, x, gamma, beta, *dirs):
        dt, L = DT[req["dtype"]], req["layout"]
        theta = (to_nc(x, L, dt), torch.from_numpy(np.array(gamma)).to(dt), torch.from_numpy(np.array(beta)).to(dt))
        tangents = [(to_nc(d[0], L, dt), torch.from_numpy(np.array(d[1])).to(dt),
                     torch.from_numpy(np.array(d[2])).to(dt)) for d in dirs]
        return theta, tangents

    def eps(self, req):
        return req.eps

    # --- H·v of L = <dy, y> ---
    def hvp(self, req, y, theta, v, dy):
        def L(*th):
            return (y(*th) * dy).sum()
        if self.ad == "autograd":
            th = [t.clone().requires_grad_(True) for t in theta]
            g = torch.autograd.grad(L(*th), th, create_graph=True)
            h = torch.autograd.grad(dot(g, v), th, allow_unused=True)
            return [torch.zeros_like(t) if hi is None else hi for t, hi in zip(theta, h)]
        if self.ad == "func-rev":
            return fgrad(lambda *th: dot(fgrad(L, argnums=(0, 1, 2))(*th), v), argnums=(0, 1, 2))(*theta)
        if self.ad == "fwd-rev":
            return jvp(fgrad(L, argnums=(0, 1, 2)), theta, v)[1]
        if self.ad == "rev-fwd":
            return fgrad(lambda *th: jvp(L, th, v)[1], argnums=(0, 1, 2))(*theta)
        sizes = [t.numel() for t in theta]
        if sum(sizes) > 4096:
            raise Unsupported(f"--ad {self.ad} builds the dense Hessian; {sum(sizes)} variables > 4096")
        flat = torch.cat([t.reshape(-1) for t in theta]), torch.cat([t.reshape(-1) for t in v])

        def Lflat(z):
            parts = torch.split(z, sizes)
            return L(*[p.reshape(t.shape) for p, t in zip(parts, theta)])
        if self.ad == "hessian":
            hv = torch.func.hessian(Lflat)(flat[0]) @ flat[1]
        else:  # fwd: columns D²L[v, e_j] by nested jvp, vmapped over the basis
            basis = torch.eye(flat[0].numel(), dtype=flat[0].dtype)
            hv = torch.func.vmap(lambda e: jvp(lambda z: jvp(Lflat, (z,), (flat[1],))[1], (flat[0],), (e,))[1])(basis)
        return [p.reshape(t.shape) for p, t in zip(torch.split(hv, sizes), theta)]

    # --- D²y[v, w] and D³y[v, v, w] ---
    def d2(self, y, theta, v, w):
        if self.ad == "fwd":
            return jvp(lambda *th: jvp(y, th, v)[1], theta, w)[1]
        return self.reverse_reading(y, theta, [v, w])

    def d3(self, y, theta, v, w):
        if self.ad == "fwd":
            return jvp(lambda *t2: jvp(lambda *th: jvp(y, th, v)[1], t2, v)[1], theta, w)[1]
        return self.reverse_reading(y, theta, [v, v, w])

    def reverse_reading(self, y, theta, dirs):
        """Dᵏy[d₁, …, d_k] = ∂/∂u <u, Dᵏy[…]> with the θ-derivatives taken in this adapter's mode."""
        u0 = torch.zeros_like(y(*theta))
        if self.ad == "autograd":
            u = u0.clone().requires_grad_(True)
            th = [t.clone().requires_grad_(True) for t in theta]
            s = (y(*th) * u).sum()
            for d in dirs:
                g = torch.autograd.grad(s, th, create_graph=True, allow_unused=True)
                s = dot([torch.zeros_like(t) if gi is None else gi for t, gi in zip(th, g)], d)
            return torch.autograd.grad(s, u, allow_unused=True)[0]
        if self.ad not in ("func-rev", "fwd-rev", "rev-fwd"):
            raise Unsupported(f"--ad {self.ad} for a derivative tensor")

        def phi(u, *th):
            return (y(*th) * u).sum()

        def nested(f, d, k):
            # one more θ-derivative along d, by reverse (func-rev; rev-fwd outermost) or forward
            forward = self.ad == "fwd-rev" and k > 0 or self.ad == "rev-fwd" and k == 0
            if forward:
                return lambda u, *th: jvp(lambda *t: f(u, *t), th, d)[1]
            return lambda u, *th: dot(fgrad(lambda *t: f(u, *t), argnums=tuple(range(len(th))))(*th), d)
        f = phi
        for k, d in enumerate(dirs):
            f = nested(f, d, k)
        return fgrad(lambda u: f(u, *theta))(u0)

    # --- protocol ---
    def hvp_train(self, req, x, dy, gamma, beta, v_x, v_gamma, v_beta):
        theta, (vv,) = self.tensors(req, x, gamma, beta, (v_x, v_gamma, v_beta))
        y = batch_norm(self.bn, True, self.eps(req))
        h = self.hvp(req, y, theta, vv, to_nc(dy, req["layout"], DT[req["dtype"]]))
        return {"hv_x": from_nc(h[0], req["layout"]), "hv_gamma": h[1].detach().double().numpy(),
                "hv_beta": h[2].detach().double().numpy()}

    def hvp_infer(self, req, x, dy, gamma, beta, mean, var, v_x, v_gamma, v_beta):
        theta, (vv,) = self.tensors(req, x, gamma, beta, (v_x, v_gamma, v_beta))
        dt = DT[req["dtype"]]
        y = batch_norm(self.bn, False, self.eps(req), torch.from_numpy(np.array(mean)).to(dt),
                       torch.from_numpy(np.array(var)).to(dt))
        h = self.hvp(req, y, theta, vv, to_nc(dy, req["layout"], dt))
        return {"hv_x": from_nc(h[0], req["layout"]), "hv_gamma": h[1].detach().double().numpy(),
                "hv_beta": h[2].detach().double().numpy()}

    def d2_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        if self.ad == "hessian":
            raise Unsupported("--ad hessian answers hvp ops only")
        theta, (vv, ww) = self.tensors(req, x, gamma, beta, (v_x, v_gamma, v_beta), (w_x, w_gamma, w_beta))
        return {"d2y": from_nc(self.d2(batch_norm(self.bn, True, self.eps(req)), theta, vv, ww), req["layout"])}

    def d3_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        if self.ad == "hessian":
            raise Unsupported("--ad hessian answers hvp ops only")
        theta, (vv, ww) = self.tensors(req, x, gamma, beta, (v_x, v_gamma, v_beta), (w_x, w_gamma, w_beta))
        return {"d3y": from_nc(self.d3(batch_norm(self.bn, True, self.eps(req)), theta, vv, ww), req["layout"])}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bn", choices=["fused", "primitives"], required=True)
    p.add_argument("--ad", choices=AD, required=True)
    a = p.parse_args()
    serve(TorchHigherOrder(a.bn, a.ad))
