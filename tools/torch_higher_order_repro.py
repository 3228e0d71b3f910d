#!/usr/bin/env python3
"""Minimal reproducer for issue #19's probe (= pytorch/pytorch#196699): higher-order
derivatives of training-mode batch normalization in PyTorch (and, for comparison, JAX/Flax),
next to BNSpec's value.

    .venv-frameworks/bin/python tools/torch_higher_order_repro.py

Probe (float64, CPU): a 2×2×2 input (N = 2, C = 2, L = 2) depending on a scalar t,
xᵢ(t) = (i + 1)·t + (i mod 3 − 1)·t² + i, γ = (1.5, −0.5), β = (0.25, 1), eps = 0.25,
f(t) = Σᵢ Wᵢ·BN(x(t))ᵢ with Wᵢ = i + 1, at t = −6. By the chain rule (x‴ = 0)

    f″ = ⟨W, D²y[x′, x′]⟩ + ⟨W, Dy[x″]⟩,   f‴ = ⟨W, D³y[x′, x′, x′]⟩ + 3·⟨W, D²y[x′, x″]⟩,

which BNSpec evaluates from the closed forms of spec §12 (here in NumPy float64 via
tools/adapters/numpy_higher_order.py; the Swift reference prints the same digits in
`swift test --filter HigherOrderTests.torchProbeValues`, where it is also checked against an
exact rational evaluation).

The diagnosis lines evaluate the same derivatives under the hypothesis "the saved batch
statistics (mean, 1/std) are constants when PyTorch's hand-written derivative formulas are
differentiated again": for forward-over-forward, the closed form with the statistics frozen
after the first differentiation (the `constant-statistics` model); for the third derivative
by reverse mode, PyTorch's own double-backward formula (batchnorm_double_backward's grad_input,
pytorch/pytorch torch/csrc/autograd/FunctionsManual.cpp) written in primitives with the saved
statistics detached; for forward³, batch_norm_jvp's formula with the saved statistics detached.
"""
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "adapters"))
from numpy_higher_order import ClosedForm  # noqa: E402

T0, EPS = -6.0, 0.25
GAMMA, BETA = [1.5, -0.5], [0.25, 1.0]
IDX = np.arange(8)


def x_of_t(t):
    return (IDX + 1) * t + (IDX % 3 - 1) * t * t + IDX


def cn(a):
    """(2, 2, 2) NCL → channel-major (C, n)."""
    return np.moveaxis(np.asarray(a, np.float64).reshape(2, 2, 2), 1, 0).reshape(2, 4)


def bnspec_values(bug=None):
    """f″(−6), f‴(−6) from the §12 closed forms (float64). With bug="constant-statistics",
    the forward-over-forward model of frozen statistics (f″ only is meaningful for it)."""
    x, x1, x2 = cn(x_of_t(T0)), cn((IDX + 1) + 2 * (IDX % 3 - 1) * T0), cn(2.0 * (IDX % 3 - 1))
    W, g = cn(IDX + 1.0), np.array(GAMMA)[:, None]
    cf = ClosedForm(x, EPS, np.float64, bug)
    honest = ClosedForm(x, EPS, np.float64)
    zero = np.zeros((2, 1))
    first = honest.xh1(honest.centre(x2)) * g                      # Dy[x″] (first order: always correct)
    f2 = np.sum(W * cf.d2(g, x1, zero, x1, zero)) + np.sum(W * first)
    f3 = np.sum(W * cf.d3(g, x1, zero, x1, zero, x1, zero)) + 3 * np.sum(W * cf.d2(g, x1, zero, x2, zero))
    return f2, f3


def torch_rows():
    import torch
    torch.set_default_dtype(torch.float64)
    W = torch.arange(1, 9, dtype=torch.float64).reshape(2, 2, 2)
    gam, bet = torch.tensor(GAMMA), torch.tensor(BETA)

    def xt(t):
        return torch.stack([(i + 1) * t + (i % 3 - 1) * t * t + i for i in range(8)]).reshape(2, 2, 2)

    def fused(x):
        return torch.nn.functional.batch_norm(x, None, None, weight=gam, bias=bet, training=True, momentum=0.1, eps=EPS)

    def stats(x):
        m = x.mean(dim=(0, 2), keepdim=True)
        return m, 1 / torch.sqrt(((x - m) ** 2).mean(dim=(0, 2), keepdim=True) + EPS)

    def primitives(x):
        m, r = stats(x)
        return (x - m) * r * gam.view(1, 2, 1) + bet.view(1, 2, 1)

    one, t0 = torch.ones(()), torch.tensor(T0)
    rows = []

    def attempt(fn):
        try:
            return f"{fn():.15g}"
        except Exception as e:  # noqa: BLE001 — the framework's refusal is a result
            return f"{type(e).__name__}: {str(e).splitlines()[0]}"

    for name, bn in [("F.batch_norm", fused), ("primitives", primitives)]:
        def f(t, bn=bn):
            return (bn(xt(t)) * W).sum()

        def autograd(k, f=f):
            t = t0.clone().requires_grad_(True)
            g = f(t)
            for j in range(k):
                (g,) = torch.autograd.grad(g, t, create_graph=j < k - 1)
            return g.item()

        def jv(k, f=f):
            g = f
            for _ in range(k):
                g = (lambda h: (lambda s: torch.func.jvp(h, (s,), (one,))[1]))(g)
            return g(t0).item()

        def fg(k, f=f):
            g = f
            for _ in range(k):
                g = torch.func.grad(g)
            return g(t0).item()
        rows.append((name, {
            "f'' reverse-over-reverse (torch.autograd.grad, create_graph)": attempt(lambda: autograd(2)),
            "f'' reverse-over-reverse (torch.func.grad∘grad)": attempt(lambda: fg(2)),
            "f'' forward-over-forward (torch.func.jvp∘jvp)": attempt(lambda: jv(2)),
            "f'' forward-over-reverse (torch.func.jvp∘grad)": attempt(lambda: torch.func.jvp(torch.func.grad(f), (t0,), (one,))[1].item()),
            "f'' reverse-over-forward (torch.func.grad∘jvp)":
                attempt(lambda: torch.func.grad(lambda s: torch.func.jvp(f, (s,), (one,))[1])(t0).item()),
            "f'' torch.func.hessian (jacfwd∘jacrev)": attempt(lambda: torch.func.hessian(f)(t0).item()),
            "f''' reverse³ (torch.autograd.grad, create_graph)": attempt(lambda: autograd(3)),
            "f''' reverse³ (torch.func.grad∘grad∘grad)": attempt(lambda: fg(3)),
            "f''' forward³ (torch.func.jvp∘jvp∘jvp)": attempt(lambda: jv(3)),
        }))

    # Diagnosis: PyTorch's derivative formulas with the saved statistics as constants.
    def norm_jvp_frozen(t):
        # batch_norm_jvp (training): (x_t − mean x_t)·invstd + (x − mean)·invstd_t,
        # invstd_t = −invstd³·mean((x_t − mean x_t)(x − mean)); saved mean/invstd carry no tangent.
        x, xdot = torch.func.jvp(xt, (t,), (one,))
        m, r = stats(x)
        m, r = m.detach(), r.detach()
        xc = xdot - xdot.mean(dim=(0, 2), keepdim=True)
        rt = -(r ** 3) * (xc * (x - m)).mean(dim=(0, 2), keepdim=True)
        return ((xc * r + (x - m) * rt) * gam.view(1, 2, 1) * W).sum()

    def double_backward_frozen(t):
        # f″ as PyTorch's reverse mode computes it: <gI, x′> + <dx, x″> with gI from
        # batchnorm_double_backward (training, ggI = x′, gO = W, saved mean/invstd detached)
        # and dx = the first backward (differentiated correctly afterwards).
        x = xt(t)
        x1 = torch.func.jvp(xt, (t,), (one,))[1]
        x2 = torch.func.jvp(lambda s: torch.func.jvp(xt, (s,), (one,))[1], (t,), (one,))[1]
        m, r = stats(x)
        m, r = m.detach(), r.detach()
        M, s = 4.0, (lambda z: z.sum(dim=(0, 2), keepdim=True))
        d, r3 = x - m, r ** 3
        gO_sum, gOd, g1, g1d = s(W), s(W * d), s(x1), s(x1 * d)
        all_sub = g1 * gO_sum / M - s(W * x1) + 3.0 / M * r * r * gOd * g1d
        gI = gam.view(1, 2, 1) * (d * r3 * all_sub / M + g1d * r3 / M * (gO_sum / M - W) + gOd * r3 / M * (g1 / M - x1))
        dx = torch.func.vjp(primitives, x)[1](W)[0]
        return (gI * x1).sum() + (dx * x2).sum()

    diag = {
        "f'' forward-over-forward, batch_norm_jvp with frozen saved statistics (torch primitives)":
            attempt(lambda: torch.func.jvp(norm_jvp_frozen, (t0,), (one,))[1].item()),
        "f''' reverse³, batchnorm_double_backward with frozen saved statistics (torch primitives)":
            attempt(lambda: torch.func.grad(double_backward_frozen)(t0).item()),
        "f''' forward³, batch_norm_jvp with frozen saved statistics (torch primitives)":
            attempt(lambda: torch.func.jvp(lambda s: torch.func.jvp(norm_jvp_frozen, (s,), (one,))[1], (t0,), (one,))[1].item()),
    }
    return torch.__version__, rows, diag


def torch_hessian_asymmetry():
    """torch.func.hessian of L = <dy, BN(x; γ, β)> with x and γ flattened into one variable:
    max |H − Hᵀ| and the γ-row/x-column block against the one with the statistics frozen."""
    import torch
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(0)
    x, gam, bet, dy = (torch.randn(4, 3, 2, generator=g), torch.randn(3, generator=g), torch.randn(3, generator=g),
                       torch.randn(4, 3, 2, generator=g))
    eps = 1e-3

    def make(kind):
        def L(z):
            xx, gg = z[:24].reshape(4, 3, 2), z[24:]
            if kind == "fused":
                y = torch.nn.functional.batch_norm(xx, None, None, gg, bet, True, 0.1, eps)
            else:
                m = xx.mean((0, 2), keepdim=True)
                v = ((xx - m) ** 2).mean((0, 2), keepdim=True)
                if kind == "frozen":
                    m, v = m.detach(), v.detach()
                y = (xx - m) / torch.sqrt(v + eps) * gg.view(1, 3, 1) + bet.view(1, 3, 1)
            return (y * dy).sum()
        return L
    z = torch.cat([x.reshape(-1), gam])
    H = {k: torch.func.hessian(make(k))(z) for k in ["fused", "primitives", "frozen"]}
    out = {}
    for k in ["fused", "primitives"]:
        out[f"torch.func.hessian, {k}: max |H - H^T|"] = f"{(H[k] - H[k].T).abs().max().item():.3g}"
    out["fused vs primitives: gamma-row/x-column block, max |diff|"] = f"{(H['fused'] - H['primitives'])[24:, :24].abs().max().item():.3g}"
    out["fused vs primitives: x/x block, max |diff|"] = f"{(H['fused'] - H['primitives'])[:24, :24].abs().max().item():.3g}"
    out["fused gamma-row/x-column block vs frozen-statistics Hessian's, max |diff|"] = \
        f"{(H['fused'] - H['frozen'])[24:, :24].abs().max().item():.3g}"
    return out


def jax_rows():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    jax.config.update("jax_enable_x64", True)
    import flax
    import flax.linen as nn
    import jax.numpy as jnp
    W = jnp.arange(1, 9, dtype=jnp.float64).reshape(2, 2, 2)
    gam, bet = jnp.array(GAMMA), jnp.array(BETA)

    def xt(t):
        return jnp.stack([(i + 1) * t + (i % 3 - 1) * t * t + i for i in range(8)]).reshape(2, 2, 2)
    mod = nn.BatchNorm(use_running_average=False, axis=1, epsilon=EPS, dtype=jnp.float64, param_dtype=jnp.float64)
    vs = {"params": {"scale": gam, "bias": bet}, "batch_stats": {"mean": jnp.zeros(2), "var": jnp.ones(2)}}

    def flax_bn(x):
        return mod.apply(vs, x, mutable=["batch_stats"])[0]

    def functional(x):
        m = x.mean(axis=(0, 2), keepdims=True)
        v = ((x - m) ** 2).mean(axis=(0, 2), keepdims=True)
        return (x - m) / jnp.sqrt(v + EPS) * gam.reshape(1, 2, 1) + bet.reshape(1, 2, 1)
    rows = []
    for name, bn in [("flax.linen.BatchNorm", flax_bn), ("jax.numpy BN", functional)]:
        def f(t, bn=bn):
            return jnp.sum(bn(xt(t)) * W)

        def jv(k, f=f):
            g = f
            for _ in range(k):
                g = (lambda h: (lambda s: jax.jvp(h, (s,), (1.0,))[1]))(g)
            return float(g(T0))
        rows.append((name, {
            "f'' reverse-over-reverse (jax.grad∘grad)": f"{float(jax.grad(jax.grad(f))(T0)):.15g}",
            "f'' forward-over-forward (jax.jvp∘jvp)": f"{jv(2):.15g}",
            "f'' forward-over-reverse (jax.jvp∘grad)": f"{float(jax.jvp(jax.grad(f), (T0,), (1.0,))[1]):.15g}",
            "f'' jax.hessian": f"{float(jax.hessian(f)(T0)):.15g}",
            "f''' reverse³ (jax.grad∘grad∘grad)": f"{float(jax.grad(jax.grad(jax.grad(f)))(T0)):.15g}",
            "f''' forward³ (jax.jvp∘jvp∘jvp)": f"{jv(3):.15g}",
        }))
    return f"jax {jax.__version__} / flax {flax.__version__}", rows


def table(title, rows):
    keys = list(rows[0][1].keys())
    w = max(len(k) for k in keys)
    notes = []
    print(f"\n{title}")
    print(f"  {'':{w}s}  " + "  ".join(f"{n:>22s}" for n, _ in rows))
    for k in keys:
        cells = []
        for n, r in rows:
            if len(r[k]) > 22:          # an error message: footnote it
                notes.append(f"[{len(notes) + 1}] {n}, {k}: {r[k]}")
                cells.append(f"error [{len(notes)}]")
            else:
                cells.append(r[k])
        print(f"  {k:{w}s}  " + "  ".join(f"{c:>22s}" for c in cells))
    for note in notes:
        print(f"  {note}")


def main():
    f2, f3 = bnspec_values()
    print("Probe: float64, x_i(t) = (i+1)t + (i mod 3 - 1)t^2 + i (2x2x2, NCL), gamma = (1.5, -0.5), beta = (0.25, 1),")
    print("       eps = 0.25, f(t) = sum_i W_i BN(x(t))_i with W_i = i + 1, at t = -6 (pytorch/pytorch#196699, issue #19)")
    print(f"\nBNSpec (spec §12 closed forms, NumPy float64):  f''(-6) = {f2:.15g}   f'''(-6) = {f3:.15g}")
    version, rows, diag = torch_rows()
    table(f"PyTorch {version}", rows)
    print("\n  Diagnosis — the same derivatives with PyTorch's formulas and the saved mean/invstd held constant:")
    f2c, _ = bnspec_values("constant-statistics")
    print(f"    f'' forward-over-forward, BNSpec closed form with frozen statistics (constant-statistics model): {f2c:.15g}")
    for k, v in diag.items():
        print(f"    {k}: {v}")
    print("\n  Also: torch.func.hessian of L = <dy, BN(x; gamma, beta)> over (x, gamma) flattened (4x3x2, eps = 1e-3, seed 0):")
    for k, v in torch_hessian_asymmetry().items():
        print(f"    {k}: {v}")
    try:
        jversion, jrows = jax_rows()
        table(jversion, jrows)
    except ImportError as e:
        print(f"\nJAX not available ({e})")


if __name__ == "__main__":
    main()
