#!/usr/bin/env python3
"""Synchronized batch normalization (spec/SPEC.md §11): evidence about real distributed engines,
measured through their BNSpec adapters (the sync protocol of spec/AUDIT.md §3, additive fields
"partition" and "grad_reduction"), against float64 NumPy.

    python3 tools/sync_findings.py                 every probe, every engine (docs/audits/sync/findings.md)
    python3 tools/sync_findings.py --check ENGINE  the adapter's outputs on a battery of partitions,
                                                   layouts and data against float64 (standalone check)
    python3 tools/sync_findings.py --engines numpy,torch --probes weights,kappa

Engines (adapter commands in ENGINES): numpy (honest float32 Chan merge), numpy:BUG (its mutants),
flax (pmap + axis_name), keras (MirroredStrategy, synchronized=True), torch (torch's SyncBatchNorm
algorithm over gloo), torch-allreduce (honest shifted sums over gloo).

Probes:
  weights    count weighting: per-rank constant data with random per-rank means; the global mean
             is fitted as Σ w_k·mean_k by least squares over 16 channels; w = n_k/n (weighted) or 1/K
  kappa      variance algorithm: data κ + N(0, 1) (σ = 1), n = 1024 over K = 4 ranks; relative error of
             the batch variance (from the running variance with batch weight 1) for κ = 1 … 3000 and the
             fitted exponent p of err ∝ κ^p (p ≈ 2: one-pass E[x²] − E[x]²; p ≤ 1: shifted or two-pass);
             the engine's non-synchronized path (op "train") beside it
  roundtrip  var ≪ eps: data N(0, σ²) with σ² = 1e-4 … 1e-11, eps = 1e-5, K = 4: relative error of the
             running variance (unbiased, batch weight 1); prediction of the invstd round trip
             ≈ u·eps/var (bound 8u·(var + eps)/var + u, spec §11.4)
  edges      one value per channel globally (partition [1, 0], N = 1), a one-sample rank, an empty rank,
             Bessel's n (global or local), dγ/dβ reduction
Each case takes well under a second of CPU; most of the command's time is starting TensorFlow, JAX and
the gloo processes. Every engine gets the same seeded inputs, so reruns give the same numbers.
"""
import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADAPTERS = os.path.join(ROOT, "tools", "adapters")
PY = sys.executable
U32 = 2.0 ** -24

ENGINES = {
    "numpy": [PY, os.path.join(ADAPTERS, "numpy_sync_bn.py")],
    "flax": [PY, os.path.join(ADAPTERS, "flax_sync_bn.py")],
    "keras": [PY, os.path.join(ADAPTERS, "keras_sync_bn.py")],
    "torch": [PY, os.path.join(ADAPTERS, "torch_gloo_bn.py"), "torch"],
    "torch-allreduce": [PY, os.path.join(ADAPTERS, "torch_gloo_bn.py"), "allreduce"],
}


def engine_command(name):
    if name.startswith("numpy:"):
        return ENGINES["numpy"] + [name.split(":", 1)[1]]
    if name not in ENGINES:
        sys.exit(f"sync_findings: error: unknown engine {name!r} (known: {', '.join(ENGINES)}, numpy:BUG)")
    return ENGINES[name]


# ------------------------------------------------------------------ a minimal protocol client

class AdapterError(Exception):
    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message


class Adapter:
    """One adapter process speaking bnspec-adapter/1 (spec/AUDIT.md §3), with timeouts."""

    def __init__(self, name, workdir, start_timeout=300, case_timeout=180):
        self.name, self.workdir, self.case_timeout = name, workdir, case_timeout
        self.log = open(os.path.join(workdir, f"{name.replace(':', '_')}.stderr"), "w")
        self.proc = subprocess.Popen(engine_command(name), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, cwd=ROOT)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.n = 0
        self.hello = self._ask({"type": "hello", "protocol": "bnspec-adapter/1"}, start_timeout)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _ask(self, msg, timeout):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise AdapterError("timeout", f"{self.name} gave no answer in {timeout} s") from None
        if line is None:
            raise AdapterError("crash", f"{self.name} exited (see {self.log.name})")
        return json.loads(line)

    def case(self, op, inputs, **fields):
        """Runs one case; inputs {name: float array}; returns {output: float64 array}."""
        self.n += 1
        cdir = os.path.join(self.workdir, f"{self.name.replace(':', '_')}-{self.n}")
        os.makedirs(cdir, exist_ok=True)
        paths = {}
        for k, a in inputs.items():
            paths[k] = os.path.join(cdir, f"{k}.npy")
            np.save(paths[k], np.asarray(a, np.float32))
        req = {"type": "case", "id": f"probe-{self.n}", "op": op, "dtype": "float32", "parameter_dtype": "float32",
               "inputs": paths, "output_dir": os.path.join(cdir, "out"), "eps": None, "batch_weight": None,
               "cumulative": False, "steps": 1, "variance_estimator": None, "single_value": None}
        req.update(fields)
        if req.get("shape") is None and "x" in inputs:  # logical [N, C, spatial…] (spec/AUDIT.md §3)
            s = [int(d) for d in np.shape(inputs["x"])]
            req["shape"] = [s[0], s[-1]] + s[1:-1] if req.get("layout") == "NHWC" else s
        reply = self._ask(req, self.case_timeout)
        if reply["type"] != "result":
            raise AdapterError(reply["type"], reply.get("message", ""))
        return {k: np.load(p).astype(np.float64) for k, p in reply["outputs"].items()}

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"type": "bye"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------ float64 ground truth

def axes_of(x, layout):
    ch = 1 if layout == "NCHW" else x.ndim - 1
    return tuple(i for i in range(x.ndim) if i != ch), ch


def pshape(x, layout, C):
    _, ch = axes_of(x, layout)
    s = [1] * x.ndim
    s[ch] = C
    return s


def truth_stats(x, layout):
    ax, _ = axes_of(x, layout)
    m = x.mean(axis=ax)
    d = x - m.reshape(pshape(x, layout, m.size))
    return m, (d * d).mean(axis=ax), x.size // m.size


def truth_train(x, layout, g, b, rm, rv, eps, w, unbiased):
    m, v, n = truth_stats(x, layout)
    ps = pshape(x, layout, m.size)
    y = (x - m.reshape(ps)) / np.sqrt(v + eps).reshape(ps) * g.reshape(ps) + b.reshape(ps)
    vr = v * n / (n - 1) if unbiased and n > 1 else v
    return {"y": y, "running_mean": (1 - w) * rm + w * m, "running_var": (1 - w) * rv + w * vr, "mean": m, "var": v}


def truth_backward(x, dy, layout, partition, g, eps):
    m, v, n = truth_stats(x, layout)
    ax, _ = axes_of(x, layout)
    ps = pshape(x, layout, m.size)
    r = 1 / np.sqrt(v + eps)
    xh = (x - m.reshape(ps)) * r.reshape(ps)
    db, dg = dy.sum(axis=ax), (dy * xh).sum(axis=ax)
    dx = (g * r).reshape(ps) * (dy - (db / n).reshape(ps) - xh * (dg / n).reshape(ps))
    off = np.concatenate([[0], np.cumsum(partition)]).astype(int)
    ldg = np.stack([(dy[off[k]:off[k + 1]] * xh[off[k]:off[k + 1]]).sum(axis=ax) for k in range(len(partition))])
    ldb = np.stack([dy[off[k]:off[k + 1]].sum(axis=ax) for k in range(len(partition))])
    return {"dx": dx, "dgamma": dg, "dbeta": db, "local_dgamma": ldg, "local_dbeta": ldb}


def sync_fields(partition, **kw):
    return dict({"partition": [int(c) for c in partition], "layout": "NC", "shape": None}, **kw)


def inputs_train(x, C, rng, rm=None, rv=None):
    g = (0.5 + rng.random(C)) * rng.choice([-1, 1], C)
    b = rng.normal(size=C)
    return {"x": x, "gamma": g, "beta": b, "running_mean": np.zeros(C) if rm is None else rm,
            "running_var": np.ones(C) if rv is None else rv}


def running_unbiased(name):
    """Flax and Keras keep the biased running variance whatever is asked; the others follow the
    request ("unbiased" in the probes) or are unbiased anyway (torch)."""
    return not name.startswith(("flax", "keras"))


def f32(a):
    return np.asarray(a, np.float32).astype(np.float64)


# ------------------------------------------------------------------ probes

def probe_weights(ad, rng, out):
    """Fits w in mean = Σ w_k·mean_k on per-rank constant data (C = 16 channels)."""
    out(f"### {ad.name}: count weighting")
    C = 16
    for part in ([1, 3, 5, 7], [1, 15], [6, 2], [2, 2, 2, 2]):
        K = len(part)
        a = rng.normal(size=(K, C)) * 4            # per-rank, per-channel constant
        x = np.concatenate([np.repeat(a[k][None], n, 0) for k, n in enumerate(part)], 0)
        x = f32(x)
        inp = inputs_train(x, C, rng)
        res = ad.case("sync-train", inp, **sync_fields(part, batch_weight=1.0, eps=1e-5))
        mean = res["running_mean"]                  # batch weight 1: the running mean is the batch mean
        A = f32(a).T                                # [C, K]
        w, *_ = np.linalg.lstsq(A, mean, rcond=None)
        resid = np.abs(A @ w - mean).max()
        n = np.array(part, float)
        out(f"partition {part}: fitted w = [{', '.join(f'{v:.4f}' for v in w)}]  n_k/n = [{', '.join(f'{v:.4f}' for v in n / n.sum())}]"
            f"  1/K = {1 / K:.4f}  residual {resid:.1e}  → {'count-weighted' if np.allclose(w, n / n.sum(), atol=1e-4) else 'unweighted (1/K)' if np.allclose(w, 1 / K, atol=1e-4) else 'neither'}")


def fit_exponent(ks, errs, floor):
    sel = [(k, e) for k, e in zip(ks, errs) if floor < e < 0.5]
    if len(sel) < 3:
        return None, len(sel)
    lk, le = np.log10([s[0] for s in sel]), np.log10([s[1] for s in sel])
    return np.polyfit(lk, le, 1)[0], len(sel)


def probe_kappa(ad, rng, out, nonsync=True):
    out(f"### {ad.name}: variance error against κ = |μ|/σ (n = 1024, K = 4, 8 channels)")
    C, part = 8, [256, 256, 256, 256]
    kappas = [1, 3, 10, 30, 100, 300, 1000, 3000]
    rows = {"sync": [], "single": []}
    base = rng.normal(size=(1024, C))
    for kappa in kappas:
        x = f32(kappa + base)
        inp = inputs_train(x, C, rng)
        t = truth_stats(x, "NC")
        for mode in ("sync", "single"):
            if mode == "single" and not nonsync:
                continue
            if mode == "sync":
                res = ad.case("sync-train", inp, **sync_fields(part, batch_weight=1.0, eps=1e-5, variance_estimator="biased"))
            else:
                res = ad.case("train", inp, layout="NC", batch_weight=1.0, eps=1e-5, variance_estimator="biased")
            # Biased running variance with batch weight 1 is the batch variance; an unbiased one is scaled back.
            var = res["running_var"]
            # torch's running variance is always the unbiased one (F.batch_norm, and the gather kernel).
            if (mode == "single" and ad.name.startswith("torch")) or ad.name == "torch":
                var = var * (t[2] - 1) / t[2]
            rows[mode].append(np.max(np.abs(var - t[1]) / t[1]))
    for mode, errs in rows.items():
        if not errs:
            continue
        p, used = fit_exponent(kappas, errs, floor=4 * U32)
        fit = f"fitted exponent p = {p:.2f} over {used} points" if p is not None else f"no fit (only {used} points above 4u and below 0.5)"
        label = "synchronized (sync-train)" if mode == "sync" else "single device (train)"
        out(f"{label:28s} " + "  ".join(f"κ={k:g}: {e:.1e}" for k, e in zip(kappas, errs)) + f"  — {fit}")


def probe_roundtrip(ad, rng, out):
    out(f"### {ad.name}: running variance when var ≪ eps (centred data, n = 256 over K = 4, 8 channels)")
    C, part = 8, [64, 64, 64, 64]
    base = rng.normal(size=(256, C))
    base -= base.mean(axis=0)
    ratios, errs = [], []
    for var, eps in ((1e-4, 1e-5), (1e-6, 1e-5), (1e-8, 1e-5), (1e-9, 1e-5), (1e-10, 1e-5), (1e-11, 1e-5), (1e-10, 0.0)):
        x = f32(np.sqrt(var) * base)
        t = truth_stats(x, "NC")
        inp = inputs_train(x, C, rng)
        res = ad.case("sync-train", inp, **sync_fields(part, batch_weight=1.0, eps=eps, variance_estimator="unbiased"))
        truth = t[1] * t[2] / (t[2] - 1) if running_unbiased(ad.name) else t[1]
        err = np.max(np.abs(res["running_var"] - truth) / truth)
        out(f"var = {var:.0e}, eps = {eps:g}: max relative error of the running variance {err:.2e}   "
            f"(u·eps/var = {U32 * eps / var:.1e}; bound 8u(var + eps)/var + u = {8 * U32 * (var + eps) / var + U32:.1e})")
        if eps > 0 and eps / var >= 10:
            ratios.append(eps / var)
            errs.append(err)
    if len(ratios) >= 3 and min(errs) > 0:
        p = np.polyfit(np.log10(ratios), np.log10(errs), 1)[0]
        c = np.median(np.array(errs) / (U32 * np.array(ratios)))
        out(f"fit over eps/var = {ratios[0]:g} … {ratios[-1]:g}: error ∝ (eps/var)^{p:.2f}, median error ÷ (u·eps/var) = {c:.2f}")


def probe_edges(ad, rng, out):
    out(f"### {ad.name}: edges")
    C = 3
    # One value per channel globally: N = 1 over two ranks.
    x = f32(rng.normal(size=(1, C)))
    try:
        inp = inputs_train(x, C, rng)
        res = ad.case("sync-train", inp, **sync_fields([1, 0], batch_weight=1.0, eps=1e-5))
        out(f"global n = 1, partition [1, 0]: max|y − β| = {np.max(np.abs(res['y'][0] - f32(inp['beta']))):.1e}, "
            f"running_var = {res['running_var'].tolist()}")
    except AdapterError as e:
        out(f"global n = 1, partition [1, 0]: {e.kind}: {e.message[:160]}")
    # A one-sample rank and an empty rank.
    for part in ([1, 5], [0, 3, 0, 3], [3, 3, 0]):
        x = f32(3 + rng.normal(size=(sum(part), C)))
        inp = inputs_train(x, C, rng)
        t = truth_train(x, "NC", inp["gamma"], inp["beta"], inp["running_mean"], inp["running_var"], 1e-5, 1.0, True)
        try:
            res = ad.case("sync-train", inp, **sync_fields(part, batch_weight=1.0, eps=1e-5))
            ey = np.max(np.abs(res["y"] - t["y"]))
            em = np.max(np.abs(res["running_mean"] - t["running_mean"]))
            n = sum(part)
            ratio = res["running_var"] / t["var"]
            bessel = ("global n/(n−1)" if np.allclose(ratio, n / (n - 1), rtol=1e-3) else "biased" if np.allclose(ratio, 1, rtol=1e-3)
                      else f"neither (ratio {np.round(ratio, 4).tolist()})")
            out(f"partition {part}: max|Δy| {ey:.1e}, max|Δ running mean| {em:.1e}, running variance {bessel}")
        except AdapterError as e:
            out(f"partition {part}: {e.kind}: {e.message[:160]}")
    # dγ/dβ: local rows against each rank's own sums, global against the sum (even and uneven).
    for part in ([3, 3, 3], [2, 5, 1]):
        x = f32(rng.normal(size=(sum(part), C)))
        dy = f32(rng.normal(size=x.shape))
        inp = inputs_train(x, C, rng)
        t = truth_backward(x, dy, "NC", part, inp["gamma"], 1e-5)
        for red in ("local", "global"):
            res = ad.case("sync-backward", {"x": x, "dy": dy, "gamma": inp["gamma"], "beta": inp["beta"]},
                          **sync_fields(part, eps=1e-5, grad_reduction=red))
            want = (t["local_dgamma"], t["local_dbeta"]) if red == "local" else (t["dgamma"], t["dbeta"])
            out(f"partition {part}, grad_reduction {red}: dgamma {list(res['dgamma'].shape)} max|Δ| "
                f"{np.max(np.abs(res['dgamma'] - want[0])):.1e}, dbeta max|Δ| {np.max(np.abs(res['dbeta'] - want[1])):.1e}, "
                f"dx max|Δ| {np.max(np.abs(res['dx'] - t['dx'])):.1e}")


# ------------------------------------------------------------------ --check

def check(ad, rng, out):
    """Every output against float64 on partitions × layouts × data; error in float32 units of the
    output's scale (normwise: max|Δ| / (u·max|ref|))."""
    out(f"### {ad.name}: outputs against float64 (normwise error in float32 ulps of max|ref|)")
    shapes = {"NCHW": (None, 3, 2, 3), "NHWC": (None, 2, 3, 3), "NC": (None, 5)}
    for layout, shp in shapes.items():
        for part in ([4, 4], [1, 3, 5, 7], [0, 3, 0, 5], [2] * 8, [1, 1]):
            for data in ("normal", "offset:1e3"):
                N = sum(part)
                x = rng.normal(size=(N,) + shp[1:])
                if data != "normal":
                    x = x + 1e3
                x = f32(x)
                C = shp[1] if layout == "NCHW" else shp[-1]
                inp = inputs_train(x, C, rng, rm=rng.normal(size=C), rv=0.5 + rng.random(C))
                t = truth_train(x, layout, inp["gamma"], inp["beta"], inp["running_mean"], inp["running_var"], 1e-3, 0.1,
                                running_unbiased(ad.name))
                dy = f32(rng.normal(size=x.shape))
                tb = truth_backward(x, dy, layout, part, inp["gamma"], 1e-3)
                fields = sync_fields(part, layout=layout, eps=1e-3, batch_weight=0.1, variance_estimator="unbiased")
                msgs = []
                try:
                    r = ad.case("sync-train", inp, **fields)
                    for k in ("y", "running_mean", "running_var"):
                        msgs.append(f"{k} {np.max(np.abs(r[k] - t[k])) / (U32 * np.max(np.abs(t[k]))):.1f}")
                    b = ad.case("sync-backward", {"x": x, "dy": dy, "gamma": inp["gamma"], "beta": inp["beta"]},
                                **dict(fields, grad_reduction="local"))
                    for k, tk in (("dx", "dx"), ("dgamma", "local_dgamma"), ("dbeta", "local_dbeta")):
                        msgs.append(f"{k} {np.max(np.abs(b[k] - tb[tk])) / (U32 * np.max(np.abs(tb[tk]))):.1f}")
                except AdapterError as e:
                    msgs.append(f"{e.kind}: {e.message[:100]}")
                out(f"{layout:4s} {str(part):16s} {data:10s} " + ", ".join(msgs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="ENGINE", help="check one adapter's outputs against float64")
    ap.add_argument("--engines", default="numpy,numpy:unweighted-mean,flax,keras,torch,torch-allreduce")
    ap.add_argument("--probes", default="weights,kappa,roundtrip,edges")
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    def out(line):
        print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="bnspec-sync-") as tmp:
        if args.check:
            ad = Adapter(args.check, tmp)
            try:
                out(f"{ad.name}: {ad.hello.get('name')} {ad.hello.get('version')}")
                check(ad, rng, out)
            finally:
                ad.close()
            return
        probes = args.probes.split(",")
        for name in args.engines.split(","):
            ad = Adapter(name, tmp)
            # Every engine gets the same inputs: one generator per probe, seeded with (seed, probe).
            rngs = {p: np.random.default_rng([args.seed, i]) for i, p in enumerate(["weights", "kappa", "roundtrip", "edges"])}
            try:
                out(f"\n## {name} — {ad.hello.get('name')} {ad.hello.get('version')}")
                if "weights" in probes:
                    probe_weights(ad, rngs["weights"], out)
                if "kappa" in probes:
                    probe_kappa(ad, rngs["kappa"], out, nonsync=not name.startswith("numpy:"))
                if "roundtrip" in probes:
                    probe_roundtrip(ad, rngs["roundtrip"], out)
                if "edges" in probes:
                    probe_edges(ad, rngs["edges"], out)
            except AdapterError as e:
                out(f"{name}: {e}")
            finally:
                ad.close()


if __name__ == "__main__":
    main()
