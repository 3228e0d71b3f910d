#!/usr/bin/env python3
"""Deliberately buggy BN adapters (test fixtures for the audit's mutation score):
the NumPy adapter with exactly one classic bug.

    python3 tools/adapters/numpy_mutant.py BUG

BUG is one of the names in BUGS below. The audit must fail each, naming the cause.
"""
import sys

import numpy as np
from numpy_bn import F, NumpyBN  # puts the checkout's bnspec package on sys.path

from bnspec import param_shape, reduce_axes, round_to, serve

BUGS = ["one-pass-variance", "eps-outside-sqrt", "unbiased-normalization", "wrong-running-estimator", "momentum-swapped",
        "running-not-updated", "per-sample-statistics", "gamma-beta-swapped", "nhwc-off-by-one", "backward-missing-mean-term",
        "backward-missing-xhat-term", "inference-uses-batch-statistics", "fp16-accumulation", "nan-to-zero",
        # Bugs no model of the audit names: it must catch them and name no cause (a red team's).
        "variance-about-f16-mean", "gamma-beta-swapped-from-c8",
        # γ and β swapped and y 0.6 % too large: where the scaling alone fails, the swap's model must
        # not absorb it into a 16-bit output's rounding allowance (a red team's; MutationScoreTests).
        "gamma-beta-swapped-y-scaled",
        # Real vector-loop tails: their cause must survive the audit-wide check, with the width
        # the cases can tell (4 wide from C = 8 on; 8 wide from C = 8 on; 16 wide from C = 16 on,
        # which the suite's C = 17 and 33 cannot tell from 4 or 8 wide: a red team's, named
        # "4-wide" before).
        "nhwc-vector-tail", "nhwc-vector-tail-8", "nhwc-vector-tail-16",
        # The right y of a channels-last case written in NCHW element order (a red team's: the
        # model had predicted the inverse permutation).
        "nhwc-written-in-nchw-order",
        # Running-update bugs that a model fits on some cases only (a red team's): the update's
        # loop skips the last channel ("never updated" on one-channel cases); the running variance
        # takes v·n/(n − 2) (within tolerance of "Bessel-corrected twice" at large n) or the Bessel
        # factor of the whole tensor's count N·C·H·W (of "the other estimator" at large n). The
        # audit's other cases contradict those models: no cause may be named.
        "running-skips-last-channel", "running-variance-over-n-minus-2", "running-variance-total-count",
        # batch_var returned Bessel-corrected, as TensorFlow's fused op returns its batch_variance
        # (a red team's honest pass-through was unexplained): everything else right.
        "batch-var-unbiased",
        # Bugs confined to long float32 channels (n > 32768: a path a kernel takes for large
        # tensors), which iid data with zero-mean dy could not show above the roundoff bound (a
        # red team's): statistics of the first half of the rows (a dropped block of a split
        # reduction); dx = γ·r·dy with both correction terms dropped, and dβ returned as 0.
        "long-channel-half-statistics", "long-channel-backward-uncorrected",
        # A non-finite x makes every output NaN (the poisoning the audit names), and an inference
        # whose last channel takes the statistics of the channel before it: on the non-finite
        # cases it too gives NaN in a channel whose own data are finite, and it was named
        # poisoning there (a red team's); its failures on finite data contradict that.
        "nan-poisons-every-channel", "infer-last-channel-neighbour-statistics",
        # For the fingerprint (a red team's): rsqrt(max(var, eps)), no one eps inside or outside the
        # root (read as eps 0 inside it); the framework's momentum parameter ignored (its
        # convention read from the default weight).
        "eps-clamped", "momentum-parameter-ignored",
        # Bugs a red team hid where the suite had no case (each passed every earlier case): a float32
        # reduction over 4096-value blocks that drops the last partial block (caught by n = 40411);
        # float32 NC inference with the running mean and variance swapped; a channels-last backward
        # reading γ[c mod 32]; the last C mod 64 channels of a 64-wide channels-last forward loop (used
        # from C = 64 on) scaled by 1.5, whose width the cases C = 80 and 100 tell apart from 32.
        "blocked-reduction-drops-tail", "nc-infer-swaps-running-statistics", "channels-last-backward-gamma-mod-32",
        "channels-last-tail-64",
        # For the fingerprint (a red team's): the running variance updated with the inverted weight
        # 1 − w, the running mean right (its batch variance reads −3.5: neither estimator).
        "running-variance-momentum-inverted",
        # Models that fit one case by accident (a red team's): y·1/(σ + √ε) read as the unbiased
        # variance on a bfloat16 case; γ and β of channel c + 1 (statistics right) in channels-last
        # and NC, read as the statistics and parameters of channel c ± 1 where two channels agree.
        "sqrt-eps-outside-root", "nhwc-parameters-off-by-one",
        # Bugs a red team hid where only float32 had cases (round F, each passed every earlier case):
        # float32 sums over 512-value blocks dropping the last partial one when C ≥ 8 (every long
        # channel had C ≤ 2); the 16-bit path ignoring eps, momentum and the cumulative flag (every
        # 16-bit case had eps 1e-5 and weight 0.1); a 16-bit channels-last training loop over 32
        # channels normalising with the unbiased variance (16-bit C was 3 and 17); 16-bit storage
        # turning NaN and ±∞ into 0 (no 16-bit case had them).
        "many-channel-blocked-sums", "half-ignores-eps-and-momentum", "half-channels-last-unbiased-32", "half-nan-to-zero",
        # Round G: γ and β swapped in the last channel of an inference only. On the non-finite cases,
        # whose other channels show nothing, it was named "γ and β swapped"; its finite cases
        # contradict that whole-tensor model (ModelConsistency): no cause may be named.
        "infer-last-channel-gamma-beta-swapped",
        # Round G's late findings, each of which passed the 715-case suite (no case had a non-finite
        # x with finite inference statistics, a non-finite dy, a channels-last float32 backward with
        # a non-finite x, an EMA trajectory past 12 steps or a cumulative one past 40): NaN and ±Inf
        # in x taken as 0 in inference and its backward; a channels-last float32 backward doing the
        # same; a backward zeroing non-finite dy; the moving-average weight inverted from step 13;
        # the cumulative weight 1/(k + 1) after step 40; the running variance's Bessel factor taken
        # over the batch dimension N alone (for the fingerprint: N = n on a 2×C×1×1 probe).
        "nonfinite-x-as-zero-in-inference", "channels-last-backward-nonfinite-x-to-zero", "backward-nonfinite-dy-to-zero",
        "ema-inverted-after-step-12", "cumulative-wrong-after-step-40", "running-variance-bessel-over-batch",
        # Round I's bugs of the per-channel inputs, which no case could express before the params-edge
        # and stats-nonfinite families: an inference (and its backward) masking non-finite statistics
        # (NaN → 0, ±Inf → 0 for the mean, NaN → 0 for the variance: fmax); an in-place training
        # backward that recovers x̂ = (y − β)/γ from its forward's y (NaN at γ = 0, 0 at γ = 2⁻¹⁰⁰).
        "infer-masks-nonfinite-statistics", "backward-xhat-from-y",
        # A running update that restarts from the initial values (mean 0, variance 1) where the
        # running statistics it is given are NaN or ±Inf (a "repair" of a poisoned state): it passed
        # every case until stats-nonfinite gave training non-finite running statistics.
        "running-restarts-from-nonfinite",
        # A 16-bit training that keeps the batch mean in a buffer of its storage format and
        # normalises with that rounded mean, the variance and the returned statistics right (an
        # outside red team's mean16: caught on 63 cases, unexplained, before its model).
        "mean-rounded-to-storage",
        # Running updates that assume one batch size (an epoch's last batch is smaller; every
        # trajectory before the epoch cases had batches of one size, so both passed the suite):
        # the Bessel factor n/(n − 1) kept from the first batch (a kernel that computes it once at
        # setup); a cumulative average weighting each batch by its samples, n_k / Σ n, not 1/k.
        "bessel-of-first-batch", "cumulative-by-samples",
        # The Bessel factor of the previous step's count (a cached count refreshed after the update),
        # or of the largest count so far (a workspace that grows): "the first batch's" on the epochs
        # where those coincide, until an epoch of 1 + 4 + 4 contradicted it (an outside red team's).
        "bessel-of-previous-batch", "bessel-of-largest-batch",
        # Σx accumulated sequentially in bfloat16 (an outside red team's: named "accumulated in
        # float16" on the one case where only a 34-value channel is finite, while the float16 model
        # missed hundreds of its other failing cases far).
        "bf16-accumulation",
        # Round J (an outside red team's): y normalised with the variance Bessel-corrected over the batch
        # dimension N, N/(N − 1) (named "the unbiased variance" on the NC cases, where N is the count).
        "bessel-over-batch-dimension"]

LONG = 32768
BLOCK = 4096
HALF = ("float16", "bfloat16")


def channel_values(x, layout, c):
    """Channel c's values in storage order (the order a sequential loop visits them)."""
    return (x[:, c] if layout == "NCHW" else x[..., c]).reshape(-1)


class Mutant(NumpyBN):
    def __init__(self, bug):
        super().__init__()
        self.bug = bug
        self.batch = 0
        self.first_n, self.samples, self.previous_n, self.largest_n, self.bessel_n = 0, 0, 0, 0, 0
        self.name = f"numpy-mutant:{bug}"

    def long_f32(self, req, x):
        return req["dtype"] == "float32" and x.size // (x.shape[1] if req["layout"] == "NCHW" else x.shape[-1]) > LONG

    def half_fixed(self, req):
        """half-ignores-eps-and-momentum: a 16-bit request as if it asked for eps 1e-5 and weight 0.1."""
        if self.bug != "half-ignores-eps-and-momentum" or req["dtype"] not in HALF:
            return req
        return dict(req, eps=1e-5, batch_weight=0.1, raw_momentum=None, cumulative=False)

    def stats(self, req, x):
        C = x.shape[1] if req["layout"] == "NCHW" else x.shape[-1]
        partial = {"long-channel-half-statistics": lambda n: n // 2 if n > LONG else n,
                   "blocked-reduction-drops-tail": lambda n: n - n % BLOCK if n >= BLOCK else n,
                   "many-channel-blocked-sums": lambda n: n - n % 512 if n > 512 and C >= 8 else n}
        if self.bug in partial and req["dtype"] == "float32" and partial[self.bug](x.size // C) != x.size // C:
            layout = req["layout"]
            xf = x.astype(F)
            half = [channel_values(xf, layout, c)[: partial[self.bug](xf.size // C)] for c in range(C)]
            m = np.array([h.mean(dtype=F) for h in half], F)
            v = np.array([((h - m[c]) ** 2).mean(dtype=F) for c, h in enumerate(half)], F)
            return xf, m, v, xf.size // C
        if self.bug == "variance-about-f16-mean":  # the right mean; the variance about it rounded to float16
            x, m, _, n = super().stats(req, x)
            c = m.astype(np.float16).astype(F)
            d = x - c.reshape(param_shape(x.ndim, req["layout"], c.size))
            return x, m, (d * d).mean(axis=reduce_axes(x.ndim, req["layout"]), dtype=F), n
        if self.bug not in ("one-pass-variance", "fp16-accumulation", "bf16-accumulation"):
            return super().stats(req, x)
        layout = req["layout"]
        x = x.astype(F)
        C = x.shape[1] if layout == "NCHW" else x.shape[-1]
        n = x.size // C
        m = np.empty(C, F)
        v = np.empty(C, F)
        if self.bug == "bf16-accumulation":  # every channel's running sum at once, rounded to bfloat16 at each step
            rows = np.moveaxis(x, 1 if layout == "NCHW" else x.ndim - 1, -1).reshape(-1, C)
            s = np.zeros(C, F)
            for row in rows:
                s = round_to(s + row, "bfloat16").astype(F)
            m = s / F(n)
            d = x - m.reshape(param_shape(x.ndim, layout, C))
            return x, m, (d * d).mean(axis=reduce_axes(x.ndim, layout), dtype=F), n
        for c in range(C):
            xc = channel_values(x, layout, c)
            if self.bug == "one-pass-variance":  # sequential float32 Σx, Σx²; var = E[x²] − E[x]²
                s = np.cumsum(xc, dtype=F)[-1]
                s2 = np.cumsum(xc * xc, dtype=F)[-1]
                mc = s / F(n)
                v[c] = ((s2 / F(n) - mc * mc) * F(n)) / F(n)
            else:  # the sum accumulated in float16
                s = np.cumsum(xc.astype(np.float16), dtype=np.float16)[-1].astype(F)
                mc = s / F(n)
                d = xc - mc
                v[c] = np.cumsum(d * d, dtype=F)[-1] / F(n)
            m[c] = mc
        return x, m, v, n

    def norm(self, req, x, g, b, m, v):
        layout = req["layout"]
        ps = param_shape(x.ndim, layout, g.size)
        eps = F(self.opt(req, "eps"))
        if self.bug in ("gamma-beta-swapped", "gamma-beta-swapped-y-scaled"):
            g, b = b, g
        if self.bug == "gamma-beta-swapped-from-c8":  # channels 8 on only: with C = 9, the "tail" of a 4-wide loop
            g, b = g.copy(), b.copy()
            g[8:], b[8:] = b[8:].copy(), g[8:].copy()
        if self.bug == "nhwc-off-by-one" and layout != "NCHW":
            g, b, m, v = (np.roll(a, -1) for a in (g, b, m, v))
        if self.bug == "nhwc-parameters-off-by-one" and layout != "NCHW":
            g, b = (np.roll(a, -1) for a in (g, b))
        if self.bug == "eps-outside-sqrt":
            r = F(1) / (np.sqrt(v.astype(F)) + eps)
        elif self.bug == "sqrt-eps-outside-root":
            r = F(1) / (np.sqrt(v.astype(F)) + np.sqrt(eps))
        elif self.bug == "eps-clamped":
            r = F(1) / np.sqrt(np.maximum(v.astype(F), eps))
        else:
            r = F(1) / np.sqrt(v.astype(F) + eps)
        y = (x - m.astype(F).reshape(ps)) * (g.astype(F) * r).reshape(ps) + b.astype(F).reshape(ps)
        tails = {"nhwc-vector-tail": (4, 8), "nhwc-vector-tail-8": (8, 8), "nhwc-vector-tail-16": (16, 16),
                 "channels-last-tail-64": (64, 64)}
        if self.bug in tails and layout != "NCHW":
            w, from_c = tails[self.bug]  # a w-wide loop over channels, used from C = from_c on, whose scalar tail scales by 1.5
            if g.size >= from_c and g.size % w:
                y = y.copy()
                y[..., g.size - g.size % w:] *= F(1.5)
        if self.bug == "gamma-beta-swapped-y-scaled":
            y = y * F(1.006)
        if self.bug == "nhwc-written-in-nchw-order" and layout == "NHWC" and y.ndim == 4:
            y = np.ascontiguousarray(np.moveaxis(y, -1, 1)).reshape(y.shape)
        if self.bug == "half-nan-to-zero" and req["dtype"] in HALF:
            return np.where(np.isfinite(y), y, F(0))
        return np.where(np.isnan(y), F(0), y) if self.bug == "nan-to-zero" else y

    def train(self, req, x, gamma, beta, running_mean, running_var):
        if self.bug == "bessel-over-batch-dimension" and x.shape[0] > 1:
            out = super().train(req, x, gamma, beta, running_mean, running_var)
            xf, m, v, _ = NumpyBN.stats(self, req, x)
            out["y"] = self.norm(req, xf, gamma, beta, m, v * F(x.shape[0]) / F(x.shape[0] - 1))
            return out
        req = self.half_fixed(req)
        C = gamma.size
        n = x.size // C
        if req.get("step", 1) == 1:  # a new case (or trajectory, or epoch): the first batch's n, no samples seen
            self.first_n, self.samples, self.previous_n, self.largest_n = n, 0, n, 0
        self.samples += n
        self.largest_n = max(self.largest_n, n)
        # This step's Bessel count under bessel-of-previous-batch: the previous step's (the first its own).
        self.bessel_n, self.previous_n = self.previous_n, n
        if self.bug == "cumulative-by-samples" and req.get("cumulative"):
            req = dict(req, cumulative=False, raw_momentum=n / self.samples)
        if self.bug == "half-channels-last-unbiased-32" and req["dtype"] in HALF and req["layout"] != "NCHW" and C >= 32:
            x32, m, v, n = self.stats(req, x)
            body = C - C % 32
            vn = v.copy()
            if n > 1:
                vn[:body] = v[:body] * F(n) / F(n - 1)
            out = super().train(req, x, gamma, beta, running_mean, running_var)
            out["y"] = self.norm(req, x32, gamma, beta, m, vn)
            return out
        if self.bug == "momentum-parameter-ignored":
            req = {k: v for k, v in req.items() if k != "raw_momentum"}
        if self.bug == "per-sample-statistics":
            layout = req["layout"]
            axes = tuple(i for i in reduce_axes(x.ndim, layout) if i != 0)
            x = x.astype(F)
            if not axes:  # NC: every value is its own sample statistic
                y = np.broadcast_to(beta.astype(F), x.shape).copy()
            else:
                m = x.mean(axis=axes, keepdims=True, dtype=F)
                v = ((x - m) ** 2).mean(axis=axes, keepdims=True, dtype=F)
                ps = param_shape(x.ndim, layout, gamma.size)
                y = (x - m) / np.sqrt(v + F(self.opt(req, "eps"))) * gamma.astype(F).reshape(ps) + beta.astype(F).reshape(ps)
            out = super().train(req, x, gamma, beta, running_mean, running_var)
            out["y"] = y
            return out
        r = dict(req)
        step = req.get("step", 1)
        if self.bug == "ema-inverted-after-step-12" and not req.get("cumulative") and step >= 13:
            r["batch_weight"] = 1 - self.opt(req, "batch_weight")
        if self.bug == "cumulative-wrong-after-step-40" and req.get("cumulative") and step > 40:
            r["step"] = step + 1
        self.batch = x.shape[0]
        if self.bug == "unbiased-normalization":
            x32, m, v, n = self.stats(req, x)
            vn = v * F(n) / F(n - 1) if n > 1 else v
            out = super().train(req, x, gamma, beta, running_mean, running_var)
            out["y"] = self.norm(req, x32, gamma, beta, m, vn)
            return out
        if self.bug == "wrong-running-estimator":
            r["variance_estimator"] = "biased" if self.opt(req, "variance_estimator") == "unbiased" else "unbiased"
        if self.bug == "mean-rounded-to-storage" and req["dtype"] in HALF:
            out = super().train(req, x, gamma, beta, running_mean, running_var)
            x32, m, v, _ = self.stats(req, x)
            out["y"] = self.norm(req, x32, gamma, beta, round_to(m, req["dtype"]).astype(F), v)
            return out
        if self.bug == "running-restarts-from-nonfinite":
            running_mean = np.where(np.isfinite(running_mean), running_mean, 0).astype(running_mean.dtype)
            running_var = np.where(np.isfinite(running_var), running_var, 1).astype(running_var.dtype)
        if self.bug == "momentum-swapped" and not req.get("cumulative") and req.get("batch_weight") is not None:
            r["batch_weight"] = 1 - req["batch_weight"]
        out = super().train(r, x, gamma, beta, running_mean, running_var)
        if self.bug == "running-variance-momentum-inverted" and not req.get("cumulative"):
            inv = super().train({**r, "batch_weight": 1 - self.opt(req, "batch_weight")}, x, gamma, beta, running_mean, running_var)
            out["running_var"] = inv["running_var"]
        if self.bug == "running-not-updated":
            out["running_mean"], out["running_var"] = running_mean, running_var
        if self.bug == "batch-var-unbiased":
            n = x.size // gamma.size
            if n > 1:
                out["batch_var"] = (out["batch_var"].astype(np.float64) * n / (n - 1)).astype(out["batch_var"].dtype)
        if self.bug == "running-skips-last-channel":
            for k, old in (("running_mean", running_mean), ("running_var", running_var)):
                out[k] = np.array(out[k], copy=True)
                out[k][-1] = old[-1]
        return out

    def running_variance_term(self, req, v, n):
        unbiased = self.opt(req, "variance_estimator") == "unbiased"
        if self.bug == "running-variance-over-n-minus-2" and unbiased and n > 2:
            return v * F(n) / F(n - 2)
        if self.bug == "running-variance-bessel-over-batch" and unbiased and self.batch > 1:
            return v * F(self.batch) / F(self.batch - 1)
        if self.bug == "bessel-of-first-batch" and unbiased and self.first_n > 1:
            return v * F(self.first_n) / F(self.first_n - 1)
        if self.bug == "bessel-of-previous-batch" and unbiased and n > 1 and self.bessel_n > 1:
            return v * F(self.bessel_n) / F(self.bessel_n - 1)
        if self.bug == "bessel-of-largest-batch" and unbiased and n > 1 and self.largest_n > 1:
            return v * F(self.largest_n) / F(self.largest_n - 1)
        if self.bug == "running-variance-total-count" and unbiased and n > 1:
            total = n * v.size
            return v * F(total) / F(total - 1)
        return super().running_variance_term(req, v, n)

    def infer(self, req, x, gamma, beta, mean, var):
        req = self.half_fixed(req)
        if self.bug == "nonfinite-x-as-zero-in-inference":
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if self.bug == "infer-last-channel-gamma-beta-swapped" and gamma.size >= 2:
            gamma, beta = np.array(gamma, copy=True), np.array(beta, copy=True)
            gamma[-1], beta[-1] = beta[-1], gamma[-1]
        if self.bug == "inference-uses-batch-statistics":
            _, mean, var, _ = self.stats(req, x)
        if self.bug == "infer-masks-nonfinite-statistics":
            mean, var = self.masked(mean, var)
        if self.bug == "nc-infer-swaps-running-statistics" and x.ndim == 2 and req["dtype"] == "float32":
            mean, var = var, mean
        if self.bug == "infer-last-channel-neighbour-statistics" and mean.size >= 2:
            mean, var = mean.copy(), var.copy()
            mean[-1], var[-1] = mean[-2], var[-2]
        out = super().infer(req, x, gamma, beta, mean, var)
        if self.bug == "nan-poisons-every-channel" and not np.isfinite(x).all():
            out = {k: np.full_like(v, np.nan) for k, v in out.items()}
        return out

    def backward_train(self, req, x, dy, gamma, beta):
        req = self.half_fixed(req)
        if self.bug == "channels-last-backward-gamma-mod-32" and req["layout"] != "NCHW":
            gamma = np.asarray(gamma)[np.arange(gamma.size) % 32]
        if self.bug == "channels-last-backward-nonfinite-x-to-zero" and req["layout"] != "NCHW" and req["dtype"] == "float32":
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if self.bug == "backward-nonfinite-dy-to-zero":
            dy = np.nan_to_num(dy, nan=0.0, posinf=0.0, neginf=0.0)
        out = super().backward_train(req, x, dy, gamma, beta)
        if self.bug in ("backward-missing-mean-term", "backward-missing-xhat-term"):
            _, m, v, n = self.stats(req, x)
            xh, r, db, dg = self.backward(req, x, dy, gamma, m, v)
            ps = param_shape(x.ndim, req["layout"], gamma.size)
            k = (gamma.astype(F) * r).reshape(ps)
            mean_term = F(0) if self.bug == "backward-missing-mean-term" else (db / F(n)).reshape(ps)
            xhat_term = F(0) if self.bug == "backward-missing-xhat-term" else xh * (dg / F(n)).reshape(ps)
            out["dx"] = k * (dy.astype(F) - mean_term - xhat_term)
        if self.bug == "long-channel-backward-uncorrected" and self.long_f32(req, x):
            _, m, v, n = self.stats(req, x)
            _, r, _, _ = self.backward(req, x, dy, gamma, m, v)
            out["dx"] = (gamma.astype(F) * r).reshape(param_shape(x.ndim, req["layout"], gamma.size)) * dy.astype(F)
            out["dbeta"] = np.zeros_like(out["dbeta"])
        if self.bug == "nan-to-zero":
            out["dx"] = np.where(np.isnan(out["dx"]), F(0), out["dx"])
        if self.bug == "backward-xhat-from-y":
            _, m, v, n = self.stats(req, x)
            xh, r, db, _ = self.backward(req, x, dy, gamma, m, v)
            ps = param_shape(x.ndim, req["layout"], gamma.size)
            g, b = gamma.astype(F).reshape(ps), beta.astype(F).reshape(ps)
            with np.errstate(all="ignore"):
                xh = ((g * xh + b) - b) / g  # x̂ from the forward's y, as an in-place BN keeps it
            dg = (dy.astype(F) * xh).sum(axis=reduce_axes(x.ndim, req["layout"]), dtype=F)
            out["dx"] = (gamma.astype(F) * r).reshape(ps) * (dy.astype(F) - (db / F(n)).reshape(ps) - xh * (dg / F(n)).reshape(ps))
            out["dgamma"] = dg
        return out

    @staticmethod
    def masked(mean, var):
        """Non-finite statistics masked: the mean's NaN and ±Inf → 0, the variance's NaN → 0 (fmax)."""
        return np.nan_to_num(mean, nan=0.0, posinf=0.0, neginf=0.0), np.fmax(var, 0)


    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        if self.bug == "infer-masks-nonfinite-statistics":
            mean, var = self.masked(mean, var)
        if self.bug == "nonfinite-x-as-zero-in-inference":
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if self.bug == "backward-nonfinite-dy-to-zero":
            dy = np.nan_to_num(dy, nan=0.0, posinf=0.0, neginf=0.0)
        return super().backward_infer(self.half_fixed(req), x, dy, gamma, beta, mean, var)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in BUGS:
        sys.exit(f"numpy_mutant: error: give one bug: {', '.join(BUGS)}")
    serve(Mutant(sys.argv[1]))
