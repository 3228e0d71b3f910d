#!/usr/bin/env python3
"""Drives higher-order BN adapters (spec §12) standalone — without the catalog — over a fixed
set of generated cases and judges them with the error bound of spec §12.6.

    .venv-frameworks/bin/python tools/higher_order_check.py                 # every adapter below
    .venv-frameworks/bin/python tools/higher_order_check.py --adapter "python3 tools/adapters/numpy_higher_order.py"
    .venv-frameworks/bin/python tools/higher_order_check.py --json out.json --list

It is the phase-1 stand-in for `bnspec audit` on the higher-order ops (issue #19): each
adapter is started once, speaks protocol bnspec-adapter/1 (spec/AUDIT.md §3) and answers
hvp-train, hvp-infer, d2-train and d3-train requests on float32 and float64 cases. The
expected values are the §12 closed forms evaluated in x87 extended precision
(np.longdouble, u = 2⁻⁶⁴, 11 bits beyond float64), independent of the adapter's algorithm;
τ is spec §12.6 with the case's u (K = 2). Prints, per adapter and op, cases passed/judged,
the worst error ÷ τ, and one repro line per failing case. Exit status 0 always: this is a
measurement, not a gate (phase 2 turns it into golden cases and `bnspec audit`).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "adapters"))
from numpy_higher_order import ClosedForm, from_cn, to_cn  # noqa: E402

ROOT = os.path.dirname(HERE)
# The interpreter as a path relative to the repository root when it lives there (repro lines
# stay short and machine independent); adapters run with the root as working directory.
PY = os.path.relpath(sys.executable, ROOT) if os.path.abspath(sys.executable).startswith(ROOT + os.sep) else sys.executable
ADAPTERS = [f"{PY} tools/adapters/numpy_higher_order.py"] + \
    [f"{PY} tools/adapters/numpy_higher_order.py {b}" for b in ["constant-statistics", "missing-gamma-x-cross", "r-prime-sign"]] + \
    [f"{PY} tools/adapters/torch_higher_order.py --bn {bn} --ad {ad}" for bn in ["fused", "primitives"]
     for ad in ["autograd", "func-rev", "fwd", "fwd-rev", "rev-fwd", "hessian"]] + \
    [f"{PY} tools/adapters/jax_higher_order.py --bn {bn} --ad {ad}" for bn in ["flax", "functional"]
     for ad in ["rev", "fwd", "fwd-rev", "rev-fwd", "hessian"]] + \
    [f"{PY} tools/adapters/jax_higher_order.py --bn flax-two-pass --ad {ad}" for ad in ["rev", "fwd"]]
OPS = ["hvp-train", "hvp-infer", "d2-train", "d3-train"]
U = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}
LD = np.longdouble

# (name, logical shape [N, C, spatial…], layout, data family, eps)
SHAPES = [((4, 3, 2, 2), "NCHW"), ((8, 2), "NC"), ((2, 3, 3, 2), "NHWC"), ((2, 2, 1, 1), "NCHW"), ((3, 2), "NC")]
FAMILIES = [("normal", 1e-5), ("offset:1e2", 1e-3), ("offset:1e4", 1e-5), ("eps-dominated", 0.25), ("near-constant", 1e-3)]


def storage_shape(shape, layout):
    N, C, *sp = shape
    return (N, C, *sp) if layout != "NHWC" else (N, *sp, C)


def make_case(k, shape, layout, family, eps, dtype):
    """Inputs as the implementation receives them (rounded to dtype)."""
    rng = np.random.default_rng(1000 + k)
    st = storage_shape(shape, layout)
    C = shape[1]
    cs = [1] * len(st)
    cs[1 if layout != "NHWC" else -1] = C
    loc, scale = rng.normal(size=cs), 0.5 + rng.uniform(size=cs)
    z = rng.normal(size=st)
    if family == "normal":
        x = loc + scale * z
    elif family.startswith("offset:"):
        K = float(family.split(":")[1])
        x = np.sign(loc) * K * (1 + rng.uniform(size=cs) / 2) + z
    elif family == "eps-dominated":
        x = loc + 1e-3 * scale * z          # σ² ≈ 1e-6 ≪ ε = 0.25
    else:                                   # near-constant: v·(1 + 2⁻²⁰·j)
        x = 4 * loc * (1 + 2.0 ** -20 * rng.integers(-2, 3, size=st))
    t = np.float32 if dtype == "float32" else np.float64
    arr = lambda a: np.asarray(a, t)  # noqa: E731
    return {
        "x": arr(x), "dy": arr(rng.normal(size=st)),
        "gamma": arr((0.5 + rng.uniform(size=C)) * np.sign(rng.normal(size=C))), "beta": arr(rng.normal(size=C)),
        "mean": arr(rng.normal(size=C)), "var": arr(0.5 + rng.uniform(size=C)),
        "v_x": arr(rng.normal(size=st)), "v_gamma": arr(rng.normal(size=C)), "v_beta": arr(rng.normal(size=C)),
        "w_x": arr(rng.normal(size=st)), "w_gamma": arr(rng.normal(size=C)), "w_beta": arr(rng.normal(size=C)),
    }


# --- expected values: the closed forms in extended precision -------------------------------

def expected(op, inp, layout, eps):
    L = layout
    g = inp["gamma"].astype(LD)[:, None]
    if op == "hvp-infer":
        r = LD(1) / np.sqrt(inp["var"].astype(LD)[:, None] + LD(eps))
        E, V = to_cn(inp["dy"], L).astype(LD), to_cn(inp["v_x"], L).astype(LD)
        hx = inp["v_gamma"].astype(LD)[:, None] * r * E
        hg = r[:, 0] * (E * V).sum(axis=1)
        return {"hv_x": from_cn(hx, L, inp["x"]), "hv_gamma": hg, "hv_beta": np.zeros_like(hg)}
    cf = ClosedForm(to_cn(inp["x"], L), eps, LD)
    vx, vg = to_cn(inp["v_x"], L), inp["v_gamma"].astype(LD)[:, None]
    wx, wg = to_cn(inp["w_x"], L), inp["w_gamma"].astype(LD)[:, None]
    if op == "hvp-train":
        hx, hg = cf.hvp(g, to_cn(inp["dy"], L), vx, vg)
        return {"hv_x": from_cn(hx, L, inp["x"]), "hv_gamma": hg[:, 0], "hv_beta": np.zeros_like(hg[:, 0])}
    if op == "d2-train":
        return {"d2y": from_cn(cf.d2(g, vx, vg, wx, wg), L, inp["x"])}
    return {"d3y": from_cn(cf.d3(g, vx, vg, vx, vg, wx, wg), L, inp["x"])}


# --- spec §12.6: the error bound -------------------------------------------------------------

class Bound:
    """τ of spec §12.6 for one case (per channel, on channel-major data)."""
    K = 2.0

    def __init__(self, X, eps, u):
        X = X.astype(np.float64)
        self.u, self.n = u, X.shape[1]
        Xl = X.astype(LD)
        mu = Xl.mean(axis=1, keepdims=True)
        d = Xl - mu
        v = (d * d).mean(axis=1, keepdims=True)
        self.r = np.asarray(LD(1) / np.sqrt(v + LD(eps)), np.float64)
        mu, v = np.asarray(mu, np.float64), np.asarray(v, np.float64)
        n = self.n
        dmu = n * u * np.abs(X).max(axis=1, keepdims=True)                          # §5.1 (1)
        dv = (n + 2) * u * v + dmu * dmu                                              # §5.1 (2)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.rho = np.where(dv >= v + eps, np.inf, dv / (2 * (v + eps)) + 3 * u)  # §5.1 (3), §5.4
        self.X = np.abs(np.asarray(d, np.float64)) * self.r
        self.e = self.r * (dmu + u * (np.abs(X) + np.abs(mu))) + self.X * self.rho + u * self.X   # §5.2

    def centred(self, z):
        z = z.astype(np.float64)
        m = np.abs(z.mean(axis=1, keepdims=True))
        Z = np.abs(z) + m
        return Z, self.n * self.u * np.abs(z).max(axis=1, keepdims=True) + self.u * Z

    def mean(self, p, q):
        (P, dP), (Q, dQ) = p, q
        F = (P * Q).mean(axis=1, keepdims=True)
        return F, (dP * Q + P * dQ).mean(axis=1, keepdims=True) + (self.n + 1) * self.u * F

    def combine(self, terms):
        """terms: [(coef, [(F, err), …])] with broadcastable arrays → τ (§12.6)."""
        err, mag = 0.0, 0.0
        for coef, fs in terms:
            prod = abs(coef)
            for F, _ in fs:
                prod = prod * F
            mag = mag + prod
            e = len(fs) * self.u * prod
            for j, (_, dj) in enumerate(fs):
                other = abs(coef)
                for l, (F, _) in enumerate(fs):
                    if l != j:
                        other = other * F
                e = e + dj * other
            err = err + e
        return self.K * (err + (len(terms) - 1) * self.u * mag)

    def xhat(self):
        return self.X, self.e

    def rf(self):
        return self.r, self.rho * self.r

    def hvp(self, g, dy, vx, vg):
        E, A = self.centred(dy), self.centred(vx)
        al, q, bv = self.mean(self.xhat(), A), self.mean(self.xhat(), E), self.mean(E, A)
        G, gm, r, xh = (np.abs(vg), 0), (np.abs(g), 0), self.rf(), self.xhat()
        tx = self.combine([(1, [G, r, E]), (1, [G, r, q, xh]), (3, [gm, r, r, q, al, xh]), (1, [gm, r, r, bv, xh]),
                           (1, [gm, r, r, q, A]), (1, [gm, r, r, al, E])])
        tg = self.combine([(self.n, [r, bv]), (self.n, [r, q, al])])
        return tx, tg[:, 0]

    def d2(self, g, vx, vg, wx, wg):
        A, B = self.centred(vx), self.centred(wx)
        av, aw, c = self.mean(self.xhat(), A), self.mean(self.xhat(), B), self.mean(A, B)
        gv, gw, gm, r, xh = (np.abs(vg), 0), (np.abs(wg), 0), (np.abs(g), 0), self.rf(), self.xhat()
        return self.combine([(1, [gv, r, B]), (1, [gv, r, xh, aw]), (1, [gw, r, A]), (1, [gw, r, xh, av]),
                             (3, [gm, r, r, xh, av, aw]), (1, [gm, r, r, xh, c]), (1, [gm, r, r, A, aw]), (1, [gm, r, r, B, av])])

    def d3(self, g, dirs):
        cen = [self.centred(x) for x, _ in dirs]
        al = [self.mean(self.xhat(), a) for a in cen]
        cc = [[self.mean(cen[j], cen[k]) for k in range(3)] for j in range(3)]
        gm, r, xh = (np.abs(g), 0), self.rf(), self.xhat()
        gs = [(np.abs(gg), 0) for _, gg in dirs]
        terms = []
        for k, l, m in [(0, 1, 2), (1, 0, 2), (2, 0, 1)]:
            terms += [(3, [gs[k], r, r, xh, al[l], al[m]]), (1, [gs[k], r, r, xh, cc[l][m]]),
                      (1, [gs[k], r, r, cen[l], al[m]]), (1, [gs[k], r, r, cen[m], al[l]])]
            terms += [(3, [gm, r, r, r, cen[k], al[l], al[m]]), (1, [gm, r, r, r, cen[k], cc[l][m]]),
                      (3, [gm, r, r, r, xh, cc[l][m], al[k]])]
        terms.append((15, [gm, r, r, r, xh, al[0], al[1], al[2]]))
        return self.combine(terms)


def tolerance(op, inp, layout, eps, dtype):
    u, L = U[dtype], layout
    if op == "hvp-infer":
        var = inp["var"].astype(np.float64)[:, None]
        r, rho = 1 / np.sqrt(var + eps), 4 * u           # 1/√(var + ε): 3 roundings + ε's own rounding
        E, V = np.abs(to_cn(inp["dy"], L).astype(np.float64)), np.abs(to_cn(inp["v_x"], L).astype(np.float64))
        G = np.abs(inp["v_gamma"].astype(np.float64))[:, None]
        n = E.shape[1]
        tx = 2 * G * r * E * (rho + 3 * u)
        S = (E * V).sum(axis=1, keepdims=True)
        tg = 2 * r * S * (rho + (n + 2) * u)
        return {"hv_x": from_cn(tx, L, inp["x"]), "hv_gamma": tg[:, 0], "hv_beta": np.zeros(tg.shape[0])}
    b = Bound(to_cn(inp["x"], L), eps, u)
    g = inp["gamma"].astype(np.float64)[:, None]
    vx, vg = to_cn(inp["v_x"], L), inp["v_gamma"].astype(np.float64)[:, None]
    wx, wg = to_cn(inp["w_x"], L), inp["w_gamma"].astype(np.float64)[:, None]
    if op == "hvp-train":
        tx, tg = b.hvp(g, to_cn(inp["dy"], L), vx, vg)
        return {"hv_x": from_cn(tx, L, inp["x"]), "hv_gamma": tg, "hv_beta": np.zeros_like(tg)}
    if op == "d2-train":
        return {"d2y": from_cn(b.d2(g, vx, vg, wx, wg), L, inp["x"])}
    return {"d3y": from_cn(b.d3(g, [(vx, vg), (vx, vg), (wx, wg)]), L, inp["x"])}


# --- the protocol ----------------------------------------------------------------------------

class Session:
    """One adapter process (spec/AUDIT.md §3); always terminated on exit."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        self.hello = self.ask({"type": "hello", "protocol": "bnspec-adapter/1"})

    def ask(self, msg):
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("adapter exited")
        return json.loads(line)

    def close(self):
        try:
            self.p.stdin.write(json.dumps({"type": "bye"}) + "\n")
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except Exception:
            self.p.kill()
            self.p.wait()


def cases():
    k = 0
    for shape, layout in SHAPES:
        for family, eps in FAMILIES:
            for dtype in ["float32", "float64"]:
                for op in OPS:
                    k += 1
                    yield (f"{op}.{family}.{'x'.join(map(str, shape))}.{layout}.{dtype[:1]}{dtype[5:]}.eps{eps:g}",
                           op, shape, layout, family, eps, dtype, k)


def judge(op, out, inp, layout, eps, dtype):
    exp, tau = expected(op, inp, layout, eps), tolerance(op, inp, layout, eps, dtype)
    worst = 0.0
    for name in exp:
        if name not in out:
            return False, float("inf"), f"missing output {name}"
        o = np.asarray(out[name], np.float64).reshape(np.shape(exp[name]))
        e, t = np.asarray(exp[name], np.float64), np.asarray(tau[name], np.float64)
        if not np.all(np.isfinite(o) == np.isfinite(e)):
            return False, float("inf"), f"{name}: non-finite where the reference is finite"
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.abs(o - e)
            ratio = np.where(diff == 0, 0.0, diff / t)
        worst = max(worst, float(np.nanmax(ratio)) if ratio.size else 0.0)
    return worst <= 1, worst, ""


def run(cmd, selected, tmp):
    s = Session(cmd)
    results = []
    try:
        name = s.hello.get("name", cmd)
        for cid, op, shape, layout, family, eps, dtype, k in selected:
            inp = make_case(k, shape, layout, family, eps, dtype)
            d = os.path.join(tmp, cid)
            os.makedirs(d, exist_ok=True)
            paths = {}
            for key, a in inp.items():
                if op == "hvp-train" and key in ("mean", "var", "w_x", "w_gamma", "w_beta"):
                    continue
                if op == "hvp-infer" and key in ("w_x", "w_gamma", "w_beta"):
                    continue
                if op in ("d2-train", "d3-train") and key in ("dy", "mean", "var"):
                    continue
                paths[key] = os.path.join(d, key + ".npy")
                np.save(paths[key], a)
            req = {"type": "case", "id": cid, "op": op, "shape": list(shape), "layout": layout, "dtype": dtype,
                   "parameter_dtype": dtype, "eps": eps, "inputs": paths, "output_dir": os.path.join(d, "out"),
                   "outputs": {"hvp-train": ["hv_x", "hv_gamma", "hv_beta"], "hvp-infer": ["hv_x", "hv_gamma", "hv_beta"],
                               "d2-train": ["d2y"], "d3-train": ["d3y"]}[op]}
            ans = s.ask(req)
            if ans["type"] == "unsupported":
                results.append((cid, op, "skipped", None, ans.get("message", ""), dtype))
                continue
            if ans["type"] != "result":
                results.append((cid, op, "error", None, ans.get("message", ""), dtype))
                continue
            out = {k2: np.load(v) for k2, v in ans["outputs"].items()}
            ok, worst, why = judge(op, out, inp, layout, eps, dtype)
            results.append((cid, op, "pass" if ok else "fail", worst, why, dtype))
    finally:
        s.close()
    return name, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", action="append", help="adapter command (repeatable); default: all known")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--case", help="run exactly this case id")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--list", action="store_true", help="print every failing case, not only the first 3 per op")
    a = ap.parse_args()
    ops, dts = a.ops.split(","), a.dtypes.split(",")
    selected = [c for c in cases() if c[1] in ops and c[6] in dts and (a.case is None or c[0] == a.case)]
    if not selected:
        sys.exit(f"higher_order_check: error: no case selected ({a.case or a.ops})")
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cmd in a.adapter or ADAPTERS:
            try:
                name, res = run(cmd, selected, tmp)
            except Exception as e:  # noqa: BLE001 — an adapter that cannot start is reported, not fatal
                print(f"{cmd}: could not run ({e})")
                continue
            report[name] = [dict(zip(["case", "op", "verdict", "worst", "message", "dtype"], r)) for r in res]
            print(f"\n{name}   ({cmd})")
            for op in ops:
                for dt in dts:
                    rs = [r for r in res if r[1] == op and r[5] == dt]
                    judged = [r for r in rs if r[2] in ("pass", "fail")]
                    errs = [r for r in rs if r[2] == "error"]
                    skipped = [r for r in rs if r[2] == "skipped"]
                    worst = max([r[3] for r in judged], default=0.0)
                    npass = sum(r[2] == "pass" for r in judged)
                    line = f"  {op:10s} {dt:8s} passed {npass:2d}/{len(judged):2d}"
                    line += f"  worst err/τ {worst:9.3g}" if judged else " " * 24
                    if errs:
                        line += f"  errors {len(errs)} ({errs[0][4][:90]})"
                    if skipped:
                        line += f"  skipped {len(skipped)}"
                    print(line)
                    fails = [r for r in judged if r[2] == "fail"]
                    for r in fails if a.list else fails[:3]:
                        print(f"      FAIL {r[0]}  err/τ {r[3]:.3g} {r[4]}  repro: tools/higher_order_check.py "
                              f"--adapter {shlex.quote(cmd)} --case {r[0]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1, default=float)


if __name__ == "__main__":
    main()
