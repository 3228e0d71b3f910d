#!/usr/bin/env python3
"""BNSpec adapter: the higher-order derivatives of BN (spec/SPEC.md §12) from their closed
forms, in NumPy, computed in the case's dtype (float32 or float64) — the honest model of an
implementation, and, with a BUG argument, three classic mistakes:

    python3 tools/adapters/numpy_higher_order.py [BUG]

BUG (each changes only the second- and third-order terms it names):
  constant-statistics   μ and 1/√(σ² + ε) treated as constants in every differentiation after
                        the first (the double-backward / nested-jvp shortcut: a saved mean and
                        inverse std without a tangent). x̂ then moves as r·v, not r·(v − x̂α_v).
  missing-gamma-x-cross the mixed γ–x terms dropped (g·x̂′ in D²y, g·r·(ē − q·x̂) in (Hv)ₓ,
                        (Hv)_γ = 0).
  r-prime-sign          the first derivative of r = (σ² + ε)^(−1/2) taken with the wrong sign,
                        r′[v] = +r²·α_v, wherever it enters (x̂′ and the r′ parts of x̂″, H·v).

Ops: hvp-train, hvp-infer, d2-train (D²y[v, w]), d3-train (D³y[v, v, w]).
Run: bnspec audit --adapter "python3 tools/adapters/numpy_higher_order.py [BUG]" --profile pytorch --match hvp- …
(tools/audit_higher_order.sh audits it with the frameworks).
The functions below are also imported by tools/torch_higher_order_repro.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from bnspec_adapter import HIGHER_ORDER_OPS, Adapter, channel_axis, serve  # noqa: E402

BUGS = ["constant-statistics", "missing-gamma-x-cross", "r-prime-sign"]
DT = {"float32": np.float32, "float64": np.float64}


def to_cn(a, layout):
    """Channel-major view (C, n): channel c's values in a row."""
    ax = channel_axis(layout) % a.ndim
    return np.moveaxis(a, ax, 0).reshape(a.shape[ax], -1)


def from_cn(m, layout, like):
    ax = channel_axis(layout) % like.ndim
    rest = tuple(s for i, s in enumerate(like.shape) if i != ax)
    return np.moveaxis(m.reshape((like.shape[ax],) + rest), 0, ax)


class ClosedForm:
    """Per-channel closed forms of §12.2–12.3 on channel-major data X (C, n) in dtype `t`.

    Notation as in the spec: d = x − μ, r = (σ² + ε)^(−1/2), x̂ = d·r; a direction's centred
    x-part a = v − mean(v); α_a = mean(x̂·a); c_ab = mean(a·b); r′[a] = −r²α_a;
    r″[a, b] = r³(3α_aα_b − c_ab); r‴ = r⁴(3Σc·α − 15α_aα_bα_c).
    """

    def __init__(self, X, eps, t, bug=None):
        self.t, self.bug = t, bug
        X = X.astype(t)
        self.n = X.shape[1]
        mu = X.mean(axis=1, keepdims=True, dtype=t)
        self.d = X - mu
        var = (self.d * self.d).mean(axis=1, keepdims=True, dtype=t)
        self.r = t(1) / np.sqrt(var + t(eps))
        self.xh = self.d * self.r
        self.s = t(1) if bug == "r-prime-sign" else t(-1)   # sign of r′

    def mean(self, p):
        return p.mean(axis=1, keepdims=True, dtype=self.t)

    def centre(self, a):
        a = a.astype(self.t)
        return a - self.mean(a)

    def alpha(self, a):
        return self.mean(self.xh * a)

    def rp(self, a):
        return self.s * self.r * self.r * self.alpha(a)

    def rpp(self, a, b):
        r = self.r
        return r * r * r * (self.t(3) * self.alpha(a) * self.alpha(b) - self.mean(a * b))

    def rppp(self, a, b, c):
        r, al = self.r, self.alpha
        return r ** 4 * (self.t(3) * (self.mean(a * b) * al(c) + self.mean(a * c) * al(b) + self.mean(b * c) * al(a))
                         - self.t(15) * al(a) * al(b) * al(c))

    def xh1(self, a):
        return self.r * a + self.d * self.rp(a)

    def xh2(self, a, b):
        return a * self.rp(b) + b * self.rp(a) + self.d * self.rpp(a, b)

    def xh3(self, a, b, c):
        return a * self.rpp(b, c) + b * self.rpp(a, c) + c * self.rpp(a, b) + self.d * self.rppp(a, b, c)

    # --- the ops (γ (C, 1); directions: x-part (C, n), γ-part (C, 1)) ---

    def d2(self, g, vx, vg, wx, wg):
        a, b = self.centre(vx), self.centre(wx)
        if self.bug == "constant-statistics":
            # second differentiation with μ, r frozen: x̂ moves as r·w (uncentred w)
            w = wx.astype(self.t)
            return vg * self.r * w + wg * self.xh1(a) - g * self.r * self.r * (w * self.alpha(a) + self.xh * self.mean(w * a))
        cross = vg * self.xh1(b) + wg * self.xh1(a)
        if self.bug == "missing-gamma-x-cross":
            cross = 0
        return cross + g * self.xh2(a, b)

    def d3(self, g, ux, ug, vx, vg, wx, wg):
        """D³y[u, v, w]."""
        a, b, c = self.centre(ux), self.centre(vx), self.centre(wx)
        if self.bug == "constant-statistics":
            u, w, r = ux.astype(self.t), wx.astype(self.t), self.r
            m = self.mean
            # D_u of the frozen D²y[v, w] with μ, r still frozen (x̂ → r·u, α_v → r·mean(u·b))
            return (-r * r * (wg * (u * self.alpha(b) + self.xh * m(u * b)) + ug * (w * self.alpha(b) + self.xh * m(w * b)))
                    - g * r ** 3 * (w * m(u * b) + u * m(w * b)))
        cross = ug * self.xh2(b, c) + vg * self.xh2(a, c) + wg * self.xh2(a, b)
        if self.bug == "missing-gamma-x-cross":
            cross = 0
        return cross + g * self.xh3(a, b, c)

    def hvp(self, g, E, vx, vg):
        """(Hv)ₓ (C, n), (Hv)_γ (C, 1) for L = ⟨dy, y⟩ (§12.3), from the gradients in w of
        ⟨dy, x̂′[w]⟩ and ⟨dy, x̂″[v, w]⟩."""
        t, r = self.t, self.r
        n = t(self.n)
        E = E.astype(t)
        eb = self.centre(E)
        a = self.centre(vx)
        if self.bug == "constant-statistics":
            v = vx.astype(t)
            q = self.mean(E * self.xh)
            first = r * (eb - q * self.xh)
            return vg * first - g * r * r * (q * v + self.xh * self.mean(E * v)), r * self.mean(E * v) * n
        sed = (E * self.d).sum(axis=1, keepdims=True, dtype=t)         # Σ dy·d
        sea = (E * a).sum(axis=1, keepdims=True, dtype=t)              # Σ dy·a
        grad_rp = self.s * r * r * self.xh / n                          # ∇_w r′[w]
        first = r * eb + sed * grad_rp                                  # ∇_w ⟨dy, x̂′[w]⟩
        second = sea * grad_rp + eb * self.rp(a) + sed * r ** 3 * (t(3) * self.alpha(a) * self.xh - a) / n
        hg = r * sea + sed * self.rp(a)                                 # ⟨dy, x̂′[v]⟩
        if self.bug == "missing-gamma-x-cross":
            return g * second, np.zeros_like(hg)
        return vg * first + g * second, hg


class NumpyHigherOrder(Adapter):
    name = "numpy-higher-order"
    version = np.__version__
    supports = {"ops": HIGHER_ORDER_OPS, "dtypes": ["float32", "float64"], "layouts": ["NCHW", "NHWC", "NC"],
                "cumulative": False}

    def __init__(self, bug=None):
        self.bug = bug
        if bug:
            self.name = f"numpy-higher-order-mutant:{bug}"

    def setup(self, req, x, gamma):
        t = DT[req["dtype"]]
        return t, ClosedForm(to_cn(x, req["layout"]), req.eps, t, self.bug), gamma.astype(t)[:, None]

    def hvp_train(self, req, x, dy, gamma, beta, v_x, v_gamma, v_beta):
        t, cf, g = self.setup(req, x, gamma)
        L = req["layout"]
        hx, hg = cf.hvp(g, to_cn(dy, L), to_cn(v_x, L), v_gamma.astype(t)[:, None])
        return {"hv_x": from_cn(hx, L, x), "hv_gamma": hg[:, 0], "hv_beta": np.zeros_like(hg[:, 0])}

    def hvp_infer(self, req, x, dy, gamma, beta, mean, var, v_x, v_gamma, v_beta):
        t = DT[req["dtype"]]
        L = req["layout"]
        r = t(1) / np.sqrt(var.astype(t)[:, None] + t(req.eps))
        E, V = to_cn(dy, L).astype(t), to_cn(v_x, L).astype(t)
        hx = v_gamma.astype(t)[:, None] * r * E
        hg = r[:, 0] * (E * V).sum(axis=1, dtype=t)
        if self.bug == "missing-gamma-x-cross":
            hx, hg = np.zeros_like(hx), np.zeros_like(hg)
        return {"hv_x": from_cn(hx, L, x), "hv_gamma": hg, "hv_beta": np.zeros_like(hg)}

    def d2_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        t, cf, g = self.setup(req, x, gamma)
        L = req["layout"]
        out = cf.d2(g, to_cn(v_x, L), v_gamma.astype(t)[:, None], to_cn(w_x, L), w_gamma.astype(t)[:, None])
        return {"d2y": from_cn(out, L, x)}

    def d3_train(self, req, x, gamma, beta, v_x, v_gamma, v_beta, w_x, w_gamma, w_beta):
        t, cf, g = self.setup(req, x, gamma)
        L = req["layout"]
        vx, vg = to_cn(v_x, L), v_gamma.astype(t)[:, None]
        out = cf.d3(g, vx, vg, vx, vg, to_cn(w_x, L), w_gamma.astype(t)[:, None])
        return {"d3y": from_cn(out, L, x)}


if __name__ == "__main__":
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1] not in BUGS):
        sys.exit(f"numpy_higher_order: error: optional bug: {', '.join(BUGS)}")
    serve(NumpyHigherOrder(sys.argv[1] if len(sys.argv) == 2 else None))
