import BNCore
import BNGolden
import BNReference
import PropertyBased
import Testing

/// Law 17: the reference's outputs are correctly rounded (spec §7).
@Suite struct LawsOfCorrectRounding {
    typealias F = ExactOracle.Fraction

    /// Law 17 — every output of the reference (training y, batch statistics and 1/√(σ² + ε),
    /// running statistics under every weighting, inference y, training and inference
    /// backward, backward from saved statistics) is the nearest Double to the exact real
    /// value of spec §2 on the inputs' Double values, as decided by the exact oracle
    /// (``ExactOracle/isNearest(_:to:)``, independent of the reference's code) — on every
    /// family including subnormal, huge, offset 1e8 and float64 data, eps = 0 included.
    @Test func everyOutputIsTheNearestDoubleToTheExactValue() async {
        let families = ["normal", "uniform", "offset:1e4", "offset:1e8", "near-constant", "constant", "subnormal",
                        "huge:1e20", "exact"]
        await propertyCheck(count: Laws.count(40), input: LawInput.gen(families: families, eps: [0, 1e-5, 1e-3, 0.1], minBatchValues: 1),
                            pick([DType.f32, .f64]), pick(["pytorch", "keras", "paper", "tf-fused"]),
                            pick([0.0, 0.1, 0.9, 0.99, 1.0]), Gen.int(in: 1...7)) { (input: LawInput, dtype: DType, profileName: String, m: Double, step: Int) in
            let s = input.shape, C = s.channels, layout = input.layout
            let x = input.x(dtype), dy = input.dy(dtype), (g, b) = input.parameters(dtype == .f64 ? .f64 : .f32)
            let eps = F(input.eps)
            var bad: [String] = []
            func check(_ what: String, _ got: Double, _ v: ExactOracle.Real) {
                if !ExactOracle.isNearest(got, to: v) { bad.append("\(what) = \(got), nearest \(ExactOracle.nearest(v))") }
            }
            // Training forward and the running update.
            let profile = try ConventionProfile.named(profileName)
            let rule = try RunningUpdateRule(profile: profile, momentum: .some(profile.name == "paper" ? nil : m))
            guard !(s.perChannelCount == 1 && rule.singleValue == .error) else { return }
            let r0 = RunningStatistics(mean: b, variance: g.map { $0 * $0 }, steps: step - 1)
            let t = try Reference.trainingForward(x, shape: s, layout: layout, gamma: g, beta: b, eps: input.eps)
            let next = try Reference.updateRunning(r0, batch: t.moments, rule: rule, profileName: profile.name)
            let w: F = rule.momentum.map { rule.weighting == .batch ? F($0) : .one - F($0) } ?? .one / F(step)
            // And the cumulative average 1/k at the same step, whatever the profile.
            let cumulative = try RunningUpdateRule(weighting: .batch, momentum: nil, estimator: rule.estimator, singleValue: rule.singleValue)
            let average = try Reference.updateRunning(r0, batch: t.moments, rule: cumulative, profileName: profile.name)
            let bi = try Reference.inferenceBackward(x, dy: dy, shape: s, layout: layout, gamma: g, mean: b, variance: g.map { $0 * $0 },
                                                    eps: input.eps)
            let bt = try Reference.trainingBackward(x, dy: dy, shape: s, layout: layout, gamma: g, eps: input.eps)
            let saved = try Reference.trainingBackward(x, dy: dy, shape: s, layout: layout, gamma: g, mean: t.mean, invStd: t.invStd)
            let yi = try Reference.inferenceForward(x, shape: s, layout: layout, mean: b, variance: g.map { $0 * $0 }, gamma: g,
                                                    beta: b, eps: input.eps)
            for c in 0..<C {
                let idx = input.indices(c), xs = idx.map { x[$0] }, dys = idx.map { dy[$0] }
                let st = ExactOracle.ChannelStatistics(xs)
                let v = st.biasedVariance + eps
                check("mean[\(c)]", t.mean[c], ExactOracle.Real(st.mean))
                check("variance[\(c)]", t.variance[c], ExactOracle.Real(st.biasedVariance))
                check("running mean[\(c)]", next.mean[c], ExactOracle.runningUpdate(r0.mean[c], batch: st.mean, weight: w))
                check("cumulative mean[\(c)]", average.mean[c], ExactOracle.runningUpdate(r0.mean[c], batch: st.mean, weight: .one / F(step)))
                let rb = rule.estimator == .biased ? st.biasedVariance : (st.unbiasedVariance ?? (rule.singleValue == .beta ? .zero : nil))
                if let rb {
                    check("running var[\(c)]", next.variance[c], ExactOracle.runningUpdate(r0.variance[c], batch: rb, weight: w))
                    check("cumulative var[\(c)]", average.variance[c], ExactOracle.runningUpdate(r0.variance[c], batch: rb, weight: .one / F(step)))
                } else {
                    #expect(next.variance[c].isNaN, "law 17 single value NaN policy: \(input)")
                }
                // Inference with given statistics (β as μ_R, γ² as σ²_R), and its backward.
                let vi = F(g[c] * g[c]) + eps
                if vi.sign > 0 {
                    for i in idx {
                        check("inference y[\(i)]", yi[i], ExactOracle.normalized(x[i], mean: F(b[c]), radicand: vi, gamma: g[c], beta: b[c]))
                    }
                    let ib = ExactOracle.inferenceBackward(x: xs, dy: dys, mean: F(b[c]), radicand: vi, gamma: g[c])
                    check("inference dγ[\(c)]", bi.dGamma[c], ib.dGamma); check("inference dβ[\(c)]", bi.dBeta[c], ib.dBeta)
                    for (k, i) in idx.enumerated() { check("inference dx[\(i)]", bi.dx[i], ib.dx[k]) }
                }
                guard v.sign > 0 else {     // σ² = 0 with ε = 0: §4's NaN
                    #expect(idx.allSatisfy { t.y[$0].isNaN }, "law 17 zero variance, eps 0: \(input)")
                    continue
                }
                check("invStd[\(c)]", t.invStd[c], ExactOracle.Real(.zero, plus: .one, overSquareRootOf: v))
                for i in idx {
                    check("y[\(i)]", t.y[i], ExactOracle.normalized(x[i], mean: st.mean, radicand: v, gamma: g[c], beta: b[c]))
                }
                let tb = ExactOracle.trainingBackward(x: xs, dy: dys, mean: st.mean, radicand: v, gamma: g[c])
                check("dγ[\(c)]", bt.dGamma[c], tb.dGamma); check("dβ[\(c)]", bt.dBeta[c], tb.dBeta)
                for (k, i) in idx.enumerated() { check("dx[\(i)]", bt.dx[i], tb.dx[k]) }
                // From saved statistics: μ = mean, r = invStd taken exactly (V = 1/r²).
                let r = F(t.invStd[c]), sb = ExactOracle.trainingBackward(x: xs, dy: dys, mean: F(t.mean[c]),
                                                                          radicand: .one / (r * r), gamma: g[c])
                check("saved dγ[\(c)]", saved.dGamma[c], sb.dGamma)
                for (k, i) in idx.enumerated() { check("saved dx[\(i)]", saved.dx[i], sb.dx[k]) }
            }
            #expect(bad.isEmpty, "law 17: \(bad.count) outputs not correctly rounded, e.g. \(bad.prefix(3)) — \(input) \(dtype) \(profileName) m=\(m) step \(step)")
        }
    }
}
