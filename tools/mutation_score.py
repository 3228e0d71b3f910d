#!/usr/bin/env python3
"""Mutation score of the audit: runs `bnspec audit` on the honest NumPy adapter and on
each deliberately buggy one (tools/adapters/numpy_mutant.py) and checks that every
mutant fails with its own cause named most often, and the honest adapter passes; then the
same for synchronized BN on the golden sync cases (tools/adapters/numpy_sync_bn.py and its
mutants).

    python3 tools/mutation_score.py [--python PY] [--bnspec CMD] [--markdown]

PY is the interpreter with NumPy (default: .venv-frameworks/bin/python, else python3).
Exit status 1 when any mutant escapes or is misnamed, or the honest adapter fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "adapters"))
# The start of the cause the diagnosis must name for each mutant (CalibrationKernel.Mutation.expectedCause).
EXPECTED = {
    "one-pass-variance": "variance computed in one pass",
    "eps-outside-sqrt": "eps added outside the square root",
    "unbiased-normalization": "normalises with the unbiased variance",
    "wrong-running-estimator": "running variance uses the other estimator",
    "momentum-swapped": "momentum convention inverted",
    "running-not-updated": "running statistics not updated",
    "per-sample-statistics": "statistics per sample",
    "gamma-beta-swapped": "γ and β swapped",
    "nhwc-off-by-one": "channel c normalised with the statistics and parameters of channel c + 1",
    "backward-missing-mean-term": "backward misses the −mean(dy) term",
    "backward-missing-xhat-term": "backward misses the −x̂·mean(dy·x̂) term",
    "inference-uses-batch-statistics": "inference normalises with the batch's own statistics",
    "fp16-accumulation": "Σx accumulated in float16",
    "nan-to-zero": "NaN turned into 0",
    "nhwc-vector-tail": "the tail of a 4-wide vector loop over channels",
    "nhwc-vector-tail-8": "the tail of an 8-wide vector loop over channels",
    # C = 40 (its last 8 channels wrong) rules out the 2-, 4- and 8-wide tails that C = 17 and 33
    # alone could not tell from it, and C = 80 (right) the 32-wide one.
    "nhwc-vector-tail-16": "the tail of a 16-wide vector loop over channels",
    # C = 80 and 100 (their last 16 and 36 channels wrong): a 64-wide tail, not a 32-wide one.
    "channels-last-tail-64": "the tail of a 64-wide vector loop over channels",
    "nhwc-written-in-nchw-order": "the output is written in the other layout's element order",
    # As TensorFlow's fused op returns its batch_variance (a red team's pass-through adapter).
    "batch-var-unbiased": "batch_var returned Bessel-corrected",
    "nan-poisons-every-channel": "a NaN or infinity in one channel poisons every channel",
    # Round F (an outside red team's bugs of the 16-bit path, which only float32 cases had tested):
    # NaN and ±∞ turned into 0; eps, momentum and the cumulative flag ignored (named on the
    # cumulative cases, whose weight 1 became 0.1; its other failures are unexplained).
    "half-nan-to-zero": "NaN turned into 0",
    "half-ignores-eps-and-momentum": "running statistics updated with batch weight 0.1 instead of 1",
    # Round G (late): named on the inference cases, where the model fits; the backward's dγ is unexplained.
    "nonfinite-x-as-zero-in-inference": "NaN and ±Inf in x taken as 0",
    # An outside red team's mean16: a 16-bit training normalising with the batch mean rounded to its storage format.
    "mean-rounded-to-storage": "normalises with the batch mean rounded to the 16-bit storage format",
    # Running updates assuming one batch size, caught by the epochs (spec §2).
    "bessel-of-first-batch": "the running variance's Bessel factor n/(n − 1) is the first batch's at every step",
    "cumulative-by-samples": "the cumulative average weights each batch by its samples (n_k / Σ n) instead of 1/k per step",
}
# Mutants no model names (an outside red team's): caught, with no cause named ("unexplained"):
# a variance about the mean rounded to float16 grows like κ², as a one-pass variance does, but
# is too large in every channel; γ and β swapped from channel 8 on is, for C = 9, the tail of a
# 4-wide loop, which the audit's other channel counts contradict; three running-update bugs that a
# model fits only on some cases (RunningConsistency: the other cases withdraw it); two bugs of long
# float32 channels only (half-batch statistics; dx uncorrected and dβ = 0), caught by the trend cases;
# an inference whose last channel takes its neighbour's statistics (poisoning withdrawn on the
# non-finite cases by the finite ones).
UNEXPLAINED = ["variance-about-f16-mean", "gamma-beta-swapped-from-c8", "running-skips-last-channel",
               "running-variance-over-n-minus-2", "running-variance-total-count",
               "long-channel-half-statistics", "long-channel-backward-uncorrected",
               "infer-last-channel-neighbour-statistics",
               # Bugs a red team hid where the suite had no case: a blocked reduction dropping its
               # last partial block (caught by the odd n = 40411 trend cases), float32 NC inference
               # with the running mean and variance swapped, γ[c mod 32] in a channels-last backward.
               "blocked-reduction-drops-tail", "nc-infer-swaps-running-statistics",
               "channels-last-backward-gamma-mod-32",
               # Round F: float32 sums over 512-value blocks dropping the last when C ≥ 8 (caught by
               # C = 9 with n = 2173); a 16-bit channels-last loop over 32 channels normalising with
               # the unbiased variance (caught by C = 100 in 16-bit storage).
               "many-channel-blocked-sums", "half-channels-last-unbiased-32",
               # Round G (late), each caught by the cases added for it: a channels-last float32
               # backward zeroing non-finite x; a backward zeroing non-finite dy; the moving-average
               # weight inverted from step 13; the cumulative weight wrong after step 40; the running
               # variance's Bessel factor over the batch dimension only.
               "channels-last-backward-nonfinite-x-to-zero", "backward-nonfinite-dy-to-zero",
               "ema-inverted-after-step-12", "cumulative-wrong-after-step-40", "running-variance-bessel-over-batch",
               # Round I, caught by the params-edge and stats-nonfinite cases: non-finite given
               # statistics masked in inference; an in-place backward recovering x̂ = (y − β)/γ.
               "infer-masks-nonfinite-statistics", "backward-xhat-from-y",
               # Caught since stats-nonfinite gave training non-finite running statistics: a running
               # update restarting from 0 and 1 where its state is NaN or ±Inf.
               "running-restarts-from-nonfinite",
               # 2026-12-06 (an outside red team's): the Bessel factor of the previous step's count or
               # of the largest count so far ("the first batch's" had been named on the epochs where
               # they coincide); Σx accumulated in bfloat16 ("in float16" had been named on one case).
               "bessel-of-previous-batch", "bessel-of-largest-batch", "bf16-accumulation",
               # Round J: the variance Bessel-corrected over the batch dimension N ("the unbiased
               # variance" had been named on the NC cases, where N is the count).
               "bessel-over-batch-dimension"]
# Causes that are true of a mutant beside its own: with the biased running estimator the NumPy BN
# no longer refuses one value per channel (PyTorch's refusal follows from its unbiased estimator),
# so the cases that require that refusal are rightly named "no refusal …".
# The 16-bit path that ignores eps and momentum uses eps = 1e-5 where a case asks for eps = 0
# (round I's eps = 0 training in every storage type): "normalises with eps ≈ 1e-05 instead of 0"
# (the fitted figure, e.g. 9.999e-06) is its bug as much as the weight 0.1.
ALSO_RIGHT = {
    "wrong-running-estimator": ("no refusal of a training step with one value per channel",),
    "half-ignores-eps-and-momentum": ("normalises with eps = 9.99", "normalises with eps = 1.00"),
}
# Synchronized BN (tools/adapters/numpy_sync_bn.py BUG, audited on the sync- cases): the calibration
# mutants' causes (CalibrationKernel.Mutation.sync*.expectedCause).
EXPECTED_SYNC = {
    "unweighted-mean": "the ranks' statistics are averaged with equal weights",
    "local-bessel": "running variance Bessel-corrected with a rank's own count",
    "unsync-dx": "backward's Σdy and Σdy·x̂ are not all-reduced",
    "no-between-term": "the variance misses the between-rank term",
    # Round F: y from each rank's own statistics, the running statistics synchronized.
    "local-y": "statistics not synchronized in y",
}
# Synchronized mutants no model names (round F): caught, no cause named — an all-reduce over the
# largest power of two ≤ K, a merge from an empty rank 0's NaN, dx ÷ K'·n_k, a dx with only Σdy
# local, running statistics from one rank's own batch (ModelConsistency withdraws the causes that
# fitted some of their cases by accident).
UNEXPLAINED_SYNC = ["pow2-allreduce", "first-empty-nan", "dx-kn", "dx-local-dy", "running-rank0"]


def audit(bnspec, adapter, tmp, match=None):
    # One report file per audit: an audit that writes none must not be read as the previous one's.
    out = os.path.join(tmp, f"r{len(os.listdir(tmp))}.json")
    p = subprocess.run(bnspec + ["audit", "--adapter", adapter, "--profile", "pytorch", "--json", out]
                       + (["--match", match] if match else []),
                       cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not os.path.exists(out):
        last = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        sys.exit(f"mutation_score: error: the audit of '{adapter}' wrote no report ({last})")
    with open(out) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    venv = os.path.join(ROOT, ".venv-frameworks", "bin", "python")
    ap.add_argument("--python", default=venv if os.path.exists(venv) else "python3")
    ap.add_argument("--bnspec", default=os.path.join(ROOT, ".build", "debug", "bnspec"))
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    bnspec = a.bnspec.split()
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for variance in ("two-pass", "welford", "pairwise"):
            honest = audit(bnspec, f"{a.python} tools/adapters/numpy_bn.py --variance {variance}", tmp)
            rows.append((f"(honest numpy {variance})", honest["failed"], honest["passed"], "—", honest["failed"] == 0))
            ok &= honest["failed"] == 0
        honest = audit(bnspec, f"{a.python} tools/adapters/numpy_sync_bn.py", tmp, match="sync-")
        rows.append(("(honest numpy-sync)", honest["failed"], honest["passed"], "—", honest["failed"] == 0))
        ok &= honest["failed"] == 0
        mutants = [(bug, want, f"tools/adapters/numpy_mutant.py {bug}", None) for bug, want in EXPECTED.items()] + \
                  [(f"sync {bug}", want, f"tools/adapters/numpy_sync_bn.py {bug}", "sync-") for bug, want in EXPECTED_SYNC.items()] + \
                  [(bug, None, f"tools/adapters/numpy_mutant.py {bug}", None) for bug in UNEXPLAINED] + \
                  [(f"sync {bug}", None, f"tools/adapters/numpy_sync_bn.py {bug}", "sync-") for bug in UNEXPLAINED_SYNC]
        for bug, want, adapter, match in mutants:
            r = audit(bnspec, f"{a.python} {adapter}", tmp, match)
            # The most frequent named cause must be the bug's (or one also true of it); no named cause may be another bug's
            # ("unexplained" is allowed; "either A, or B" counts when one of them is the bug).
            causes = sorted(((k, v) for k, v in r["causes"].items() if k != "unexplained"), key=lambda kv: -kv[1])
            named = causes[0][0] if causes else "unexplained"
            wrong = [k for k, _ in causes if want is None or (want not in k and not any(t in k for t in ALSO_RIGHT.get(bug, ())))]
            good = r["failed"] > 0 and (want is None or any(t in named for t in (want,) + ALSO_RIGHT.get(bug, ()))) and not wrong
            ok &= good
            rows.append((bug, r["failed"], r["passed"], named + (f" (WRONG: {wrong})" if wrong else ""), good))
    honest_rows = 4
    caught = sum(1 for r in rows[honest_rows:] if r[4])
    if a.markdown:
        print("| adapter | failed cases | passed | cause named most often | verdict |\n|---|---|---|---|---|")
        for bug, f, p, named, good in rows:
            print(f"| {bug} | {f} | {p} | {named} | {'✔' if good else '✘'} |")
    else:
        for bug, f, p, named, good in rows:
            print(f"{'ok ' if good else 'BAD'} {bug:<34} failed {f:>4}  passed {p:>4}  cause: {named}")
    print(f"\nmutation score: {caught}/{len(EXPECTED) + len(EXPECTED_SYNC) + len(UNEXPLAINED) + len(UNEXPLAINED_SYNC)} mutants caught "
          f"with the right cause (none for the last {len(UNEXPLAINED) + len(UNEXPLAINED_SYNC)}) and no wrong one; honest adapters "
          f"{'pass' if all(r[4] for r in rows[:honest_rows]) else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
