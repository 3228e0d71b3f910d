import BNCore
import BNGolden
import BNKernels
import BNReference
import PropertyBased
import Testing

/// Laws 1, 5, 9 and 16: what training forward produces, per channel.
@Suite struct LawsOfForward {
    /// Law 1 — training output per channel has mean exactly β and variance exactly
    /// γ²·σ²/(σ² + ε) (σ² the biased batch variance), up to the roundings of y:
    /// reference (Double) and the fused kernel (Float, ½ ulp per output).
    @Test func outputMomentsAreBetaAndScaledVariance() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen()) { input in
            let s = input.shape, x = input.x(), (g, b) = input.parameters()
            let ref = try Reference.trainingForward(x, shape: s, layout: input.layout, gamma: g, beta: b, eps: input.eps)
            let k = OptimizedKernel(.fused)
            let fused = try k.train(x, shape: s, layout: input.layout, dtype: .f32, gamma: g, beta: b, eps: input.eps,
                                    runningMean: b, runningVariance: g.map(abs), step: 1,
                                    rule: try RunningUpdateRule(profile: .paper)).y
            let yMoments = try Reference.moments(ref.y, shape: s, layout: input.layout)
            let fMoments = try Reference.moments(fused, shape: s, layout: input.layout)
            for c in 0..<s.channels {
                let v = ref.variance[c], r = ref.invStd[c]
                let expectedVar = g[c] * g[c] * v / (v + input.eps)
                let xhatMax = input.indices(c).map { abs(x[$0] - ref.mean[c]) * r }.max() ?? 0
                let scale = abs(g[c]) * xhatMax + abs(b[c])
                // Reference: each y has ≤ 4 Double roundings; the mean's own rounding shifts Σ(x − μ) by n·½ulp(μ).
                let tolMean = 4 * 0x1p-53 * scale + abs(g[c]) * r * ref.mean[c].ulp
                #expect(abs(yMoments[c].mean - b[c]) <= tolMean, "law 1 mean, channel \(c): \(input)")
                #expect(abs(yMoments[c].biasedVariance - expectedVar) <= 16 * 0x1p-53 * expectedVar + 2 * tolMean * scale,
                        "law 1 variance, channel \(c): \(input)")
                // Fused kernel: each y within ½ ulp_f + n·2⁻⁵³ of the reference's.
                let tolF = ulpF(scale)
                #expect(abs(fMoments[c].mean - b[c]) <= tolF + tolMean, "law 1 fused mean, channel \(c): \(input)")
                #expect(abs(fMoments[c].biasedVariance - expectedVar) <= 2 * tolF * scale + tolF * tolF + 16 * 0x1p-53 * expectedVar,
                        "law 1 fused variance, channel \(c): \(input)")
            }
        }
    }

    /// Law 5 — layout invariance: NCHW and NHWC give the same result, bit for bit for the
    /// reference (training y and statistics, both backward modes), within ½ ulp for the
    /// fused kernel (its NHWC and NCHW sums run in different orders).
    @Test func layoutInvariance() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen()) { input0 in
            var input = input0
            if input.shape.spatial.isEmpty { input.spatial = [2, 3] }
            input.layout = .nchw
            let s = input.shape, x = input.x(), dy = input.dy(), (g, b) = input.parameters()
            let xh = x.relayout(s, from: .nchw, to: .nhwc), dyh = dy.relayout(s, from: .nchw, to: .nhwc)
            let a = try Reference.trainingForward(x, shape: s, layout: .nchw, gamma: g, beta: b, eps: input.eps)
            let h = try Reference.trainingForward(xh, shape: s, layout: .nhwc, gamma: g, beta: b, eps: input.eps)
            #expect(a.y.relayout(s, from: .nchw, to: .nhwc) == h.y && a.mean == h.mean && a.variance == h.variance, "law 5: \(input)")
            let ba = try Reference.trainingBackward(x, dy: dy, shape: s, layout: .nchw, gamma: g, mean: a.mean, invStd: a.invStd)
            let bh = try Reference.trainingBackward(xh, dy: dyh, shape: s, layout: .nhwc, gamma: g, mean: h.mean, invStd: h.invStd)
            #expect(ba.dx.relayout(s, from: .nchw, to: .nhwc) == bh.dx && ba.dGamma == bh.dGamma && ba.dBeta == bh.dBeta,
                    "law 5 backward: \(input)")
            let k = OptimizedKernel(.fused), rule = try RunningUpdateRule(profile: .paper)
            let fa = try k.train(x, shape: s, layout: .nchw, dtype: .f32, gamma: g, beta: b, eps: input.eps, runningMean: b,
                                 runningVariance: g.map(abs), step: 1, rule: rule).y.relayout(s, from: .nchw, to: .nhwc)
            let fh = try k.train(xh, shape: s, layout: .nhwc, dtype: .f32, gamma: g, beta: b, eps: input.eps, runningMean: b,
                                 runningVariance: g.map(abs), step: 1, rule: rule).y
            let top = h.y.map(abs).max() ?? 0
            #expect(zip(fa, fh).allSatisfy { abs($0 - $1) <= ulpF(top) }, "law 5 fused: \(input)")
        }
    }

    /// Law 9 — epsilon: |x̂| never grows as ε grows; ε = 0 with σ² > 0 is the no-ε formula
    /// (x − μ)/σ (within 4 Double roundings).
    @Test func epsilonShrinksNormalisedValues() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen(families: ["normal", "uniform", "offset:1e4", "near-constant", "exact"]),
                            pick([0.0, 1e-8, 1e-5, 1e-3]), pick([1e-4, 1e-2, 1.0, 10.0])) { input, e1, d in
            let s = input.shape, x = input.x()
            let small = try Reference.trainingForward(x, shape: s, layout: input.layout, eps: e1)
            let large = try Reference.trainingForward(x, shape: s, layout: input.layout, eps: e1 + d)
            // (σ² = 0 with ε = 0 is 0/0 = NaN by definition, spec §4: nothing to compare.)
            #expect(zip(small.y, large.y).allSatisfy { $0.isNaN || abs($1) <= abs($0) }, "law 9 monotone: \(input) eps \(e1) → \(e1 + d)")
            let zero = try Reference.trainingForward(x, shape: s, layout: input.layout, eps: 0)
            for c in 0..<s.channels where zero.variance[c] > 0 {
                let sd = zero.variance[c].squareRoot()
                for i in input.indices(c) {
                    let plain = (x[i] - zero.mean[c]) / sd
                    #expect(abs(zero.y[i] - plain) <= 4 * abs(plain).ulp + (zero.mean[c].ulp / sd), "law 9 eps = 0: \(input)")
                }
            }
        }
    }

    /// Law 16 — non-finite values: a NaN or ±Inf in one channel makes that channel's y NaN and
    /// its statistics non-finite as SPEC §4/§5.3 define them — NaN: mean and variance NaN; ±Inf:
    /// mean the same infinity (NaN also allowed for an implementation), variance NaN (+Inf also
    /// allowed), the running statistics following — and leaves every other channel's y, batch
    /// and running statistics bit-identical (reference and fused).
    @Test func nonFiniteValuesStayInTheirChannel() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen(families: ["normal", "offset:1e4"]),
                            pick([Double.nan, .infinity, -.infinity]), Gen.int(in: 0...1000)) { input, bad, pick in
            let s = input.shape, x = input.x(), (g, b) = input.parameters()
            let c = pick % s.channels, idx = input.indices(c)
            var poisoned = x
            poisoned[idx[pick % idx.count]] = bad
            let clean = try Reference.trainingForward(x, shape: s, layout: input.layout, gamma: g, beta: b, eps: input.eps)
            let dirty = try Reference.trainingForward(poisoned, shape: s, layout: input.layout, gamma: g, beta: b, eps: input.eps)
            let k = OptimizedKernel(.fused), rule = try RunningUpdateRule(profile: .paper)
            func fused(_ v: [Double]) throws -> TrainingOutput {
                try k.train(v, shape: s, layout: input.layout, dtype: .f32, gamma: g, beta: b, eps: input.eps, runningMean: b,
                            runningVariance: g.map(abs), step: 1, rule: rule)
            }
            let fc = try fused(x), fd = try fused(poisoned)
            func same(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
            for ch in 0..<s.channels {
                for i in input.indices(ch) {
                    if ch == c {
                        #expect(dirty.y[i].isNaN && fd.y[i].isNaN, "law 16 poisoned channel not NaN: \(input) value \(bad)")
                    } else {
                        #expect(dirty.y[i] == clean.y[i] && fd.y[i] == fc.y[i], "law 16 other channel changed: \(input) value \(bad)")
                    }
                }
                if ch == c {
                    // The reference: exactly SPEC §4. The fused kernel: one of the values §5.3 accepts.
                    #expect(bad.isNaN ? dirty.mean[c].isNaN : dirty.mean[c] == bad, "law 16 reference mean: \(input) value \(bad)")
                    #expect(dirty.variance[c].isNaN, "law 16 reference variance: \(input) value \(bad)")
                    for m in [fd.batchMean[c], fd.runningMean[c]] {
                        #expect(m.isNaN || (!bad.isNaN && m == bad), "law 16 fused mean \(m): \(input) value \(bad)")
                    }
                    for v in [fd.batchVariance[c], fd.runningVariance[c]] {
                        #expect(v.isNaN || (!bad.isNaN && v == .infinity), "law 16 fused variance \(v): \(input) value \(bad)")
                    }
                } else {
                    #expect(same(dirty.mean[ch], clean.mean[ch]) && same(dirty.variance[ch], clean.variance[ch]),
                            "law 16 other channel's reference statistics changed: \(input) value \(bad)")
                    #expect(same(fd.batchMean[ch], fc.batchMean[ch]) && same(fd.batchVariance[ch], fc.batchVariance[ch])
                            && same(fd.runningMean[ch], fc.runningMean[ch]) && same(fd.runningVariance[ch], fc.runningVariance[ch]),
                            "law 16 other channel's fused statistics changed: \(input) value \(bad)")
                }
            }
        }
    }
}
