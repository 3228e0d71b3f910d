import BNCore
import BNGolden
import BNReference

/// What spec §2–§4 say one golden output element must be: the nearest Double to an exact
/// real (finite data), or a non-finite value by §4's IEEE rules.
public enum Expectation: Sendable {
    case exact(ExactOracle.Real)
    /// NaN, +Inf or −Inf (compared by class).
    case nonFinite(Double)

    public func holds(for d: Double) -> Bool {
        switch self {
        case .exact(let v): return ExactOracle.isNearest(d, to: v)
        case .nonFinite(let e): return e.isNaN ? d.isNaN : d == e
        }
    }
}

/// Builds every expected element of a golden case from its inputs with ``ExactOracle``
/// alone — written from the spec: §2's formulas, §3's weights (m, 1 − m or 1/k of the
/// momentum's Double value), §4's non-finite rules, and for the higher-order operations §12's
/// definitions evaluated by exact hyper-dual numbers (``ExactBN``, not the closed forms the
/// reference uses). No reference code is used.
public enum GoldenOracle {
    public static func expectations(_ c: GoldenStore.LoadedCase) throws -> [String: [Expectation]] {
        let spec = c.spec
        if spec.expectError != nil { return [:] }
        let s = try spec.shapeValue(), layout = spec.layout, C = s.channels, per = s.elementCount
        func input(_ k: String) -> [Double] { c.inputs[k]!.values }
        let gamma = input("gamma"), beta = input("beta"), eps = ExactOracle.Fraction(spec.eps)
        let rule = try spec.rule()
        func indices(_ ch: Int, offset: Int = 0, shape: Shape? = nil) -> [Int] {
            layout.segments(channel: ch, shape: shape ?? s).flatMap { seg in (0..<seg.count).map { offset + seg.offset + $0 * seg.stride } }
        }
        func weight(step k: Int) -> ExactOracle.Fraction {
            guard let m = rule.momentum else { return .one / ExactOracle.Fraction(k) }
            return rule.weighting == .batch ? ExactOracle.Fraction(m) : .one - ExactOracle.Fraction(m)
        }
        /// §4: the IEEE mean of a channel with a non-finite value (NaN, or ±Inf for one-signed infinities).
        func ieeeMean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }
        /// §4: the running update (1 − w)·r + w·b where r or b is not finite, by IEEE's rules: NaN
        /// where either is NaN, where a weight of 0 meets an infinity (0·∞), or where infinities of
        /// opposite signs meet; else the infinity. (A finite r or b is passed as 0: it adds nothing.)
        func nonFiniteUpdate(_ r: Double, _ b: Double, weight w: ExactOracle.Fraction) -> Double {
            if r.isNaN || b.isNaN { return .nan }
            var infinity: Double? = nil
            for (v, weight) in [(r, .one - w), (b, w)] where v.isInfinite {
                if weight.sign == 0 { return .nan }
                let signed = weight.sign < 0 ? -v : v
                if let i = infinity, i != signed { return .nan }
                infinity = signed
            }
            return infinity ?? .nan
        }

        /// Training forward + running update for one batch; returns per-channel expectations.
        func train(_ x: [Double], offset: Int, shape: Shape? = nil, running: (mean: [Double], variance: [Double]), step: Int,
                   y: inout [Expectation], out: inout [String: [Expectation]]) {
            for ch in 0..<C {
                let idx = indices(ch, offset: offset, shape: shape), xs = idx.map { x[$0] }
                let w = weight(step: step)
                let r0 = running.mean[ch], v0 = running.variance[ch]
                guard xs.allSatisfy(\.isFinite) else {
                    let m = ieeeMean(xs)
                    for i in idx { y[i - offset] = .nonFinite(.nan) }
                    out["batch_mean", default: []].append(.nonFinite(m))
                    out["batch_var", default: []].append(.nonFinite(.nan))
                    out["running_mean", default: []].append(.nonFinite(nonFiniteUpdate(r0, m, weight: w)))
                    out["running_var", default: []].append(.nonFinite(.nan))
                    continue
                }
                let st = ExactOracle.ChannelStatistics(xs)
                let v = st.biasedVariance + eps
                for i in idx {
                    y[i - offset] = v.sign > 0
                        ? .exact(ExactOracle.normalized(x[i], mean: st.mean, radicand: v, gamma: gamma[ch], beta: beta[ch]))
                        : .nonFinite(.nan)                          // §4: σ² = 0, ε = 0 → 0·Inf
                }
                out["batch_mean", default: []].append(.exact(ExactOracle.Real(st.mean)))
                out["batch_var", default: []].append(.exact(ExactOracle.Real(st.biasedVariance)))
                // A non-finite initial running statistic (stats-nonfinite): §4's IEEE update.
                out["running_mean", default: []].append(r0.isFinite ? .exact(ExactOracle.runningUpdate(r0, batch: st.mean, weight: w))
                                                                     : .nonFinite(nonFiniteUpdate(r0, 0, weight: w)))
                var b: ExactOracle.Fraction? = rule.estimator == .biased ? st.biasedVariance : st.unbiasedVariance
                if b == nil && rule.singleValue == .beta { b = .zero }  // n = 1: the biased value 0
                out["running_var", default: []].append(b.map { v0.isFinite ? .exact(ExactOracle.runningUpdate(v0, batch: $0, weight: w))
                                                                           : .nonFinite(nonFiniteUpdate(v0, 0, weight: w)) }
                                                       ?? .nonFinite(.nan))
            }
        }

        /// Inference forward with given statistics.
        func infer(_ x: [Double], mean: [Double], variance: [Double]) -> [Expectation] {
            var y = [Expectation](repeating: .nonFinite(.nan), count: x.count)
            for ch in 0..<C {
                let m = mean[ch], v = variance[ch]
                for i in indices(ch) {
                    if x[i].isFinite && m.isFinite && v.isFinite, (ExactOracle.Fraction(v) + eps).sign > 0 {
                        y[i] = .exact(ExactOracle.normalized(x[i], mean: ExactOracle.Fraction(m), radicand: ExactOracle.Fraction(v) + eps,
                                                             gamma: gamma[ch], beta: beta[ch]))
                    } else {
                        // §4 in IEEE arithmetic: the class (NaN, ±Inf) of γ·(x − μ)/√(v + ε) + β.
                        y[i] = .nonFinite(gamma[ch] * (x[i] - m) / (v + spec.eps).squareRoot() + beta[ch])
                    }
                }
            }
            return y
        }

        var out: [String: [Expectation]] = [:]
        switch spec.op {
        case .train, .syncTrain:  // synchronized: BN of the concatenated batch (§11.2), whatever the partition
            var y = [Expectation](repeating: .nonFinite(.nan), count: per)
            train(input("x"), offset: 0, running: (input("running_mean"), input("running_var")), step: 1, y: &y, out: &out)
            out["y"] = y
        case .infer:
            out["y"] = infer(input("x"), mean: input("mean"), variance: input("var"))
        case .backwardTrain, .backwardInfer:
            // §4: dβ = Σdy involves dy alone (exact wherever dy is finite); in inference mode
            // dx = γ·dy/√V involves no x, so a non-finite x leaves it exact, and dγ is the IEEE sum.
            let x = input("x"), dy = input("dy")
            var dx = [Expectation](repeating: .nonFinite(.nan), count: per)
            for ch in 0..<C {
                let idx = indices(ch), xs = idx.map { x[$0] }, dys = idx.map { dy[$0] }
                let dyFinite = dys.allSatisfy(\.isFinite), xFinite = xs.allSatisfy(\.isFinite)
                out["dbeta", default: []].append(dyFinite ? .exact(ExactOracle.Real(ExactOracle.sum(dys))) : .nonFinite(dys.reduce(0, +)))
                let mean: ExactOracle.Fraction, v: ExactOracle.Fraction
                if spec.op == .backwardTrain {
                    // μ or Σdy non-finite: every dx and dγ is NaN.
                    guard xFinite, dyFinite else { out["dgamma", default: []].append(.nonFinite(.nan)); continue }
                    let st = ExactOracle.ChannelStatistics(xs)
                    mean = st.mean; v = st.biasedVariance + eps
                } else {
                    let m = input("mean")[ch], vr = input("var")[ch]
                    guard m.isFinite, vr.isFinite else {
                        // §4 with non-finite given statistics, in IEEE arithmetic: r = 1/√(σ²_R + ε) and
                        // dγ = Σdy·(x − μ_R)·r; dx = γ·dy·r involves no μ_R, so with σ²_R finite it is
                        // the exact real (r = 0 for σ²_R = +Inf: dx = ±0, dγ = 0 with μ_R finite).
                        let r = 1 / (vr + spec.eps).squareRoot()
                        out["dgamma", default: []].append(.nonFinite(zip(dys, xs).reduce(0.0) { $0 + $1.0 * ($1.1 - m) * r }))
                        let radicand = vr.isFinite ? ExactOracle.Fraction(vr) + eps : .zero
                        for (k, i) in idx.enumerated() {
                            dx[i] = radicand.sign > 0 && dys[k].isFinite
                                ? .exact(ExactOracle.Real(.zero, plus: ExactOracle.Fraction(gamma[ch]) * ExactOracle.Fraction(dys[k]), overSquareRootOf: radicand))
                                : .nonFinite(gamma[ch] * dys[k] * r)
                        }
                        continue
                    }
                    mean = ExactOracle.Fraction(m); v = ExactOracle.Fraction(vr) + eps
                    if v.sign > 0, !(xFinite && dyFinite) {
                        let r = 1 / (vr + spec.eps).squareRoot()
                        out["dgamma", default: []].append(.nonFinite(zip(dys, xs).reduce(0.0) { $0 + $1.0 * ($1.1 - m) * r }))
                        for (k, i) in idx.enumerated() {
                            dx[i] = dys[k].isFinite
                                ? .exact(ExactOracle.Real(.zero, plus: ExactOracle.Fraction(gamma[ch]) * ExactOracle.Fraction(dys[k]), overSquareRootOf: v))
                                : .nonFinite(gamma[ch] * dys[k] * r)
                        }
                        continue
                    }
                }
                guard v.sign > 0 else { out["dgamma", default: []].append(.nonFinite(.nan)); continue }  // §4: r = +Inf
                let g = spec.op == .backwardTrain
                    ? ExactOracle.trainingBackward(x: xs, dy: dys, mean: mean, radicand: v, gamma: gamma[ch])
                    : ExactOracle.inferenceBackward(x: xs, dy: dys, mean: mean, radicand: v, gamma: gamma[ch])
                out["dgamma", default: []].append(.exact(g.dGamma))
                for (k, i) in idx.enumerated() { dx[i] = .exact(g.dx[k]) }
            }
            out["dx"] = dx
        case .syncBackward:
            // §11.3: dx of the global batch and dγ, dβ summed per rank (local) or globally, with x̂ from
            // the saved global statistics — the correctly rounded μ and r = 1/√(σ² + ε), taken as exact
            // (V = 1/r²), as the ranks hold them after the forward exchange.
            guard let counts = spec.partition, let reduction = spec.gradReduction else { return [:] }
            let x = input("x"), dy = input("dy"), perSample = per / s.batch
            var starts = [0]; for n in counts { starts.append(starts.last! + n) }
            var dx = [Expectation](repeating: .nonFinite(.nan), count: per)
            let rows = reduction == .local ? counts.count : 1
            var dg = [Expectation](repeating: .exact(ExactOracle.Real(.zero)), count: rows * C), db = dg
            for ch in 0..<C {
                let idx = indices(ch), xs = idx.map { x[$0] }, dys = idx.map { dy[$0] }
                guard xs.allSatisfy(\.isFinite), dys.allSatisfy(\.isFinite) else {
                    // §4 with a non-finite x or dy: every dx NaN (μ or the all-reduced Σdy); each row's
                    // dβ its own Σdy (exact where finite), dγ the IEEE sum (NaN where μ is).
                    // A row whose own x and dy are finite, with μ finite, keeps its exact dγ and dβ.
                    let xFinite = xs.allSatisfy(\.isFinite)
                    let st = xFinite ? ExactOracle.ChannelStatistics(xs) : nil
                    let mean = st.map { ExactOracle.Fraction(ExactOracle.nearest(ExactOracle.Real($0.mean))) }
                    let v = st.map { s -> ExactOracle.Fraction in
                        let r = ExactOracle.Fraction(ExactOracle.nearest(ExactOracle.Real(.zero, plus: .one, overSquareRootOf: s.biasedVariance + eps)))
                        return .one / (r * r)
                    }
                    let m = st.map { ExactOracle.nearest(ExactOracle.Real($0.mean)) } ?? .nan
                    for k in 0..<rows {
                        let mine = rows == 1 ? Array(idx.indices) : idx.indices.filter { (starts[k]..<starts[k + 1]).contains(idx[$0] / perSample) }
                        guard !mine.isEmpty else { continue }  // an empty rank's rows are 0
                        let d = mine.map { dys[$0] }
                        if let mean, let v, d.allSatisfy(\.isFinite) {
                            let g = ExactOracle.trainingBackward(x: mine.map { xs[$0] }, dy: d, mean: mean, radicand: v, gamma: gamma[ch])
                            dg[k * C + ch] = .exact(g.dGamma); db[k * C + ch] = .exact(g.dBeta)
                            continue
                        }
                        db[k * C + ch] = d.allSatisfy(\.isFinite) ? .exact(ExactOracle.Real(ExactOracle.sum(d))) : .nonFinite(d.reduce(0, +))
                        dg[k * C + ch] = .nonFinite(mine.reduce(0.0) { $0 + dys[$1] * (xs[$1] - m) })
                    }
                    continue
                }
                let st = ExactOracle.ChannelStatistics(xs)
                let mean = ExactOracle.Fraction(ExactOracle.nearest(ExactOracle.Real(st.mean)))
                let r = ExactOracle.Fraction(ExactOracle.nearest(ExactOracle.Real(.zero, plus: .one, overSquareRootOf: st.biasedVariance + eps)))
                let v = .one / (r * r)
                let whole = ExactOracle.trainingBackward(x: xs, dy: dys, mean: mean, radicand: v, gamma: gamma[ch])
                for (k, i) in idx.enumerated() { dx[i] = .exact(whole.dx[k]) }
                for k in 0..<rows {
                    let mine = rows == 1 ? Array(idx.indices) : idx.indices.filter { (starts[k]..<starts[k + 1]).contains(idx[$0] / perSample) }
                    guard !mine.isEmpty else { continue }  // an empty rank's rows are 0
                    let g = ExactOracle.trainingBackward(x: mine.map { xs[$0] }, dy: mine.map { dys[$0] }, mean: mean, radicand: v, gamma: gamma[ch])
                    dg[k * C + ch] = .exact(g.dGamma); db[k * C + ch] = .exact(g.dBeta)
                }
            }
            out["dx"] = dx; out["dgamma"] = dg; out["dbeta"] = db
        case .trajectory, .epoch:
            // Batch k: where it starts in x and its shape — a trajectory's stacked batches of the case's
            // shape, or an epoch's k-th block of samples along N (the outermost dimension) of its own N.
            let batches: [(offset: Int, shape: Shape)]
            if spec.op == .epoch {
                guard let p = try spec.partitionValue() else { throw BNError.corrupt(path: spec.id, reason: "an epoch case needs its batches") }
                batches = (0..<p.ranks).map { (p.elementRange(rank: $0, of: s).lowerBound, p.shape(rank: $0, of: s)) }
            } else {
                batches = (0..<spec.steps).map { ($0 * per, s) }
            }
            let x = input("x"), rm = c.expected["running_mean"]!.values, rv = c.expected["running_var"]!.values
            var perStep: [String: [Expectation]] = [:]
            for (k, batch) in batches.enumerated() {
                // Step k + 1 starts from the running statistics golden stores for step k.
                let running = k == 0 ? (input("running_mean"), input("running_var"))
                                     : (Array(rm[((k - 1) * C)..<(k * C)]), Array(rv[((k - 1) * C)..<(k * C)]))
                var y = [Expectation](repeating: .nonFinite(.nan), count: batch.shape.elementCount), step: [String: [Expectation]] = [:]
                train(x, offset: batch.offset, shape: batch.shape, running: running, step: k + 1, y: &y, out: &step)
                perStep["running_mean", default: []] += step["running_mean"]!
                perStep["running_var", default: []] += step["running_var"]!
            }
            out["running_mean"] = perStep["running_mean"]
            out["running_var"] = perStep["running_var"]
            let last = (batches.count - 1) * C
            out["y_eval"] = infer(input("x_eval"), mean: Array(rm[last..<(last + C)]), variance: Array(rv[last..<(last + C)]))
        case .hvpTrain, .d2Train, .d3Train:
            // Spec §12 exactly, by hyper-dual numbers over Q(1/√s₀) (``ExactBN``), not the closed forms.
            let x = input("x"), name = spec.op == .hvpTrain ? "hv_x" : (spec.op == .d2Train ? "d2y" : "d3y")
            var t = [Expectation](repeating: .nonFinite(.nan), count: per)
            let dy = spec.op == .hvpTrain ? input("dy") : x, vx = input("v_x"), vg = input("v_gamma")
            let wx = spec.op == .hvpTrain ? vx : input("w_x"), wg = spec.op == .hvpTrain ? vg : input("w_gamma")
            for ch in 0..<C {
                let idx = indices(ch)
                guard idx.allSatisfy({ x[$0].isFinite && dy[$0].isFinite && vx[$0].isFinite && wx[$0].isFinite }),
                      let e = ExactBN.channel(op: spec.op, x: idx.map { x[$0] }, dy: idx.map { dy[$0] }, gamma: gamma[ch],
                                              beta: beta[ch], eps: spec.eps, v: (idx.map { vx[$0] }, vg[ch]),
                                              w: (idx.map { wx[$0] }, wg[ch])) else {
                    if spec.op == .hvpTrain { out["hv_gamma", default: []].append(.nonFinite(.nan)) }
                    continue                                                 // §4: NaN
                }
                for (k, i) in idx.enumerated() { t[i] = .exact(e.tensor[k]) }
                if let g = e.gamma { out["hv_gamma", default: []].append(.exact(g)) }
            }
            out[name] = t
            if spec.op == .hvpTrain { out["hv_beta"] = (0..<C).map { _ in .exact(ExactOracle.Real(.zero)) } }
        case .hvpInfer:
            // §12.5: (Hv)ₓ = g·dy/√V, (Hv)_γ = Σdy·vₓ/√V, (Hv)_β = 0 with V = σ²_R + ε.
            let dy = input("dy"), vx = input("v_x"), vg = input("v_gamma")
            var t = [Expectation](repeating: .nonFinite(.nan), count: per)
            for ch in 0..<C {
                let m = input("mean")[ch], vr = input("var")[ch], idx = indices(ch)
                let v = ExactOracle.Fraction(vr) + eps
                guard m.isFinite, vr.isFinite, v.sign > 0, idx.allSatisfy({ dy[$0].isFinite && vx[$0].isFinite }) else {
                    out["hv_gamma", default: []].append(.nonFinite(.nan)); continue
                }
                var s = ExactOracle.Fraction.zero
                for i in idx {
                    t[i] = .exact(ExactOracle.Real(.zero, plus: ExactOracle.Fraction(vg[ch]) * ExactOracle.Fraction(dy[i]), overSquareRootOf: v))
                    s = s + ExactOracle.Fraction(dy[i]) * ExactOracle.Fraction(vx[i])
                }
                out["hv_gamma", default: []].append(.exact(ExactOracle.Real(.zero, plus: s, overSquareRootOf: v)))
            }
            out["hv_x"] = t
            out["hv_beta"] = (0..<C).map { _ in .exact(ExactOracle.Real(.zero)) }
        }
        return out
    }
}
