import BNCore
import Foundation
import BNGolden
import BNKernels
import BNReference
import PropertyBased
import Testing

/// Laws 6, 7 and 8: running statistics, train/inference consistency, tiny batches.
@Suite struct LawsOfRunningStatistics {
    /// Law 6 — after K steps the running statistics equal the closed-form exponentially
    /// weighted average r_K = (1 − w)^K·r₀ + Σₖ w·(1 − w)^(K−k)·b_k, w the batch weight of
    /// the profile's convention (batch-weighted `pytorch`, running-weighted `keras`), for
    /// the reference and the fused kernel; w = 0 keeps and w = 1 replaces, bit for bit;
    /// the cumulative average is the plain mean of the batch statistics.
    @Test func runningStatisticsFollowTheClosedForm() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen(families: ["normal", "uniform", "offset:1e2"]),
                            pick(["pytorch", "keras", "flax", "paper"]), pick([0.0, 0.1, 0.5, 0.99, 1.0]),
                            Gen.int(in: 1...6)) { input, profileName, m, K in
            let profile = try ConventionProfile.named(profileName)
            let momentum: Double? = profile.name == "paper" ? nil : m  // paper: the cumulative average
            let rule = try RunningUpdateRule(profile: profile, momentum: .some(momentum))
            let s = input.shape, C = s.channels, (g, b) = input.parameters()
            var running = RunningStatistics(mean: b, variance: g.map { $0 * $0 })
            var fusedMean = running.mean, fusedVar = running.variance
            var batches = [[ChannelMoments]]()
            for k in 1...K {
                let x = input.x(stream: "x\(k)")
                let (fwd, next) = try Reference.trainingStep(x, shape: s, layout: input.layout, gamma: g, beta: b, eps: input.eps,
                                                             running: running, rule: rule, profileName: profile.name)
                batches.append(fwd.moments); running = next
                let out = try OptimizedKernel(.fused).train(x, shape: s, layout: input.layout, dtype: .f32, gamma: g, beta: b,
                                                            eps: input.eps, runningMean: fusedMean, runningVariance: fusedVar,
                                                            step: k, rule: rule)
                fusedMean = out.runningMean; fusedVar = out.runningVariance
            }
            for c in 0..<C {
                let bm = batches.map { $0[c].mean }, bv = batches.map { $0[c].variance(rule.estimator) }
                let r0m = b[c], r0v = g[c] * g[c]
                var cm = 0.0, cv = 0.0, scaleM = abs(r0m), scaleV = abs(r0v)
                if momentum == nil {
                    cm = bm.reduce(0, +) / Double(K); cv = bv.reduce(0, +) / Double(K)
                    scaleM = bm.map(abs).max()!; scaleV = bv.map(abs).max()!
                } else {
                    let w = rule.batchWeight(step: 1)
                    cm = pow(1 - w, Double(K)) * r0m; cv = pow(1 - w, Double(K)) * r0v
                    for k in 0..<K {
                        let f = w * pow(1 - w, Double(K - 1 - k))
                        cm += f * bm[k]; cv += f * bv[k]
                        scaleM = max(scaleM, abs(bm[k])); scaleV = max(scaleV, abs(bv[k]))
                    }
                    if w == 0 { #expect(running.mean[c] == r0m && running.variance[c] == r0v, "law 6 keep: \(input)") }
                    if w == 1 { #expect(running.mean[c] == bm[K - 1] && running.variance[c] == bv[K - 1], "law 6 replace: \(input)") }
                }
                let tolD = Double(4 * K + 4) * 0x1p-53
                #expect(abs(running.mean[c] - cm) <= tolD * scaleM, "law 6 mean, \(profileName) m=\(m) K=\(K) channel \(c): \(input)")
                #expect(abs(running.variance[c] - cv) <= tolD * scaleV, "law 6 var, \(profileName) m=\(m) K=\(K) channel \(c): \(input)")
                // The fused kernel: Float storage of the running values, one rounding per step.
                let tolF = Double(2 * K + 2) * 0x1p-24
                #expect(abs(fusedMean[c] - cm) <= tolF * scaleM + 1e-30, "law 6 fused mean: \(input)")
                #expect(abs(fusedVar[c] - cv) <= tolF * scaleV + 1e-30, "law 6 fused var: \(input)")
            }
        }
    }

    /// Law 7a — train/inference consistency: inference with running statistics equal to
    /// the batch's reproduces training up to the rounding of those statistics. Training
    /// normalises with the exact μ and σ², inference with their stored (correctly rounded)
    /// values μ̃, σ̃² (|μ̃ − μ| ≤ ½ulp(μ), |σ̃² − σ²| ≤ ½ulp(σ²)), so with r = 1/√(σ̃² + ε)
    ///
    ///     |y_inf − y_train| ≤ |γ|·r·½ulp(μ) + |γ x̂|·½ulp(σ²)/(2(σ̃² + ε)) + ½ulp(y_inf) + ½ulp(y_train)
    ///
    /// (first order; checked with a factor 2) — bit for bit when μ and σ² are Doubles. With
    /// the unbiased estimator (PyTorch's running variance) x̂ differs by the factor
    /// √((σ² + ε)/(σ²·n/(n − 1) + ε)), within the same terms.
    @Test func inferenceWithBatchStatisticsIsTraining() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen()) { input in
            let s = input.shape, x = input.x(), (g, b) = input.parameters()
            let t = try Reference.trainingForward(x, shape: s, layout: input.layout, gamma: g, beta: b, eps: input.eps)
            let i = try Reference.inferenceForward(x, shape: s, layout: input.layout, mean: t.mean, variance: t.variance,
                                                   gamma: g, beta: b, eps: input.eps)
            let unbiased = t.moments.map(\.unbiasedVariance)
            let iu = try Reference.inferenceForward(x, shape: s, layout: input.layout, mean: t.mean, variance: unbiased,
                                                    gamma: g, beta: b, eps: input.eps)
            let u = 0x1p-53
            for c in 0..<s.channels {
                let st = ExactOracle.ChannelStatistics(input.indices(c).map { x[$0] })
                let representable = (st.mean - ExactOracle.Fraction(t.mean[c])).sign == 0
                    && (st.biasedVariance - ExactOracle.Fraction(t.variance[c])).sign == 0
                let f = ((t.variance[c] + input.eps) / (unbiased[c] + input.eps)).squareRoot()
                let r = 1 / (Swift.min(t.variance[c], unbiased[c]) + input.eps).squareRoot()
                for k in input.indices(c) {
                    let gx = abs(t.y[k] - b[c])
                    let statistics = abs(g[c]) * r * t.mean[c].ulp / 2 + gx * r * r * t.variance[c].ulp / 4
                    if representable { #expect(i[k] == t.y[k], "law 7a biased, exact statistics: \(input)") }
                    #expect(abs(i[k] - t.y[k]) <= 2 * statistics + 2 * u * (gx + abs(b[c])), "law 7a biased: \(input)")
                    let expected = (t.y[k] - b[c]) * f + b[c]
                    #expect(abs(iu[k] - expected) <= 2 * statistics + 8 * u * (gx + abs(b[c])), "law 7a unbiased: \(input)")
                }
            }
        }
    }

    /// Law 7b — for i.i.d. N(0, 1) data the train/inference mismatch shrinks like
    /// 1/√n: RMS(y_train − y_inference(0, 1))·√n → √(3/2) (Var of the mean 1/n plus
    /// E[x²]·Var of the standard deviation 1/(2n)). Checked over 64 channels × 8 trials per
    /// batch size: √n·RMS must lie in [1.0, 1.45] for n = 16 … 1024 (spec §10 derives the band).
    @Test func trainInferenceMismatchShrinksLikeInverseSqrtN() async {
        await propertyCheck(count: Laws.count(10), input: Gen.int(in: 0...1_000_000)) { seed in
            for n in [16, 64, 256, 1024] {
                var sum = 0.0, count = 0
                for trial in 0..<8 {
                    let s = try Shape(batch: n, channels: 64)
                    var r = SpecRandom("law7b/\(seed)/\(n)/\(trial)")
                    let x = (0..<s.elementCount).map { _ in r.normal() }  // N(0, 1): population statistics (0, 1)
                    let t = try Reference.trainingForward(x, shape: s, layout: .nc, eps: 0)
                    for (a, v) in zip(t.y, x) { sum += (a - v) * (a - v); count += 1 }
                }
                let scaled = (sum / Double(count)).squareRoot() * Double(n).squareRoot()
                #expect(scaled >= 1.0 && scaled <= 1.45, "law 7b: n = \(n), √n·RMS = \(scaled), seed \(seed)")
            }
        }
    }

    /// Law 8a — one value per channel in training follows the profile: `error` profiles
    /// refuse, the others give y = β exactly and running variance per policy (never NaN
    /// for `beta`) — reference and every Float kernel.
    @Test func singleValuePerChannelFollowsTheProfile() async {
        await propertyCheck(count: Laws.count(200), input: pick(ConventionProfile.all.map(\.name)), Gen.int(in: 1...9),
                            Gen.int(in: 0...1_000_000)) { name, C, seed in
            let profile = try ConventionProfile.named(name)
            let rule = try RunningUpdateRule(profile: profile)
            let s = try Shape(batch: 1, channels: C, spatial: [1, 1])
            let x = try DataFamily.fill("normal", shape: s, layout: .nchw, dtype: .f32, seed: "law8/\(seed)")
            let (g, b) = DataFamily.parameters(channels: C, seed: "law8/\(seed)/p", dtype: .f32)
            let run0 = RunningStatistics(channels: C)
            let kernels: [any BatchNormKernel] = [ScalarKernel(), OptimizedKernel(.simd), OptimizedKernel(.fused),
                                                  OptimizedKernel(.threaded(2))]
            if profile.singleValue == .error && profile.runningVariance == .unbiased {
                #expect(throws: BNError.self) {
                    try Reference.trainingStep(x, shape: s, layout: .nchw, gamma: g, beta: b, eps: 1e-5, running: run0, rule: rule,
                                               profileName: name)
                }
                for k in kernels {
                    #expect(throws: BNError.self, "law 8a \(k.name) must refuse for \(name)") {
                        try k.train(x, shape: s, layout: .nchw, dtype: .f32, gamma: g, beta: b, eps: 1e-5, runningMean: run0.mean,
                                    runningVariance: run0.variance, step: 1, rule: rule)
                    }
                }
                return
            }
            let (fwd, next) = try Reference.trainingStep(x, shape: s, layout: .nchw, gamma: g, beta: b, eps: 1e-5, running: run0,
                                                         rule: rule, profileName: name)
            #expect(fwd.y == b, "law 8a y = β, \(name)")
            if profile.singleValue == .beta || profile.runningVariance == .biased {
                #expect(next.variance.allSatisfy { !$0.isNaN }, "law 8a running variance NaN, \(name)")
            }
            for k in kernels {
                let out = try k.train(x, shape: s, layout: .nchw, dtype: .f32, gamma: g, beta: b, eps: 1e-5, runningMean: run0.mean,
                                      runningVariance: run0.variance, step: 1, rule: rule)
                #expect(out.y == b, "law 8a \(k.name) y = β, \(name)")
                #expect(zip(out.runningVariance, next.variance).allSatisfy { $0.isNaN == $1.isNaN }, "law 8a \(k.name) policy, \(name)")
            }
        }
    }

    /// Law 8b — N = 2 statistics are exact: the mean and biased variance of two values
    /// are the correctly rounded exact rationals (BigInt oracle).
    @Test func twoValueStatisticsAreCorrectlyRounded() async {
        await propertyCheck(count: Laws.count(300), input: Gen.int(in: 0...1_000_000), Gen.int(in: -30...30)) { seed, e in
            var r = SpecRandom(seed: UInt64(seed))
            let scale = Double(sign: .plus, exponent: e, significand: 1)
            let a = scale * r.normal(), b = r.uniform() < 0.3 ? a.nextUp : scale * (1 + r.normal())
            let m = try Reference.moments([a, b], shape: Shape(batch: 2, channels: 1), layout: .nc)[0]
            let exact = ExactOracle.statistics([a, b])
            #expect(m.mean == exact.mean && m.biasedVariance == exact.biasedVariance, "law 8b: \(a), \(b)")
        }
    }
}
