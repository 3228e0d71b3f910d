import BNCore

/// Fitted figures: what the returned outputs imply about the quantities BN computes
/// (eps, batch weights, variance factors, backward coefficients), shown as evidence.
package enum Fits {
    package static func fmt(_ v: Double) -> String {
        v.isFinite ? String(format: "%.4g", v) : (v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf"))
    }

    /// A list of per-channel figures: all of them when few, else min … median … max.
    package static func list(_ v: [Double]) -> String {
        let f = v.filter { !$0.isNaN }
        if f.count <= 6 { return "[" + v.map(fmt).joined(separator: ", ") + "]" }
        let s = f.sorted()
        return "[min \(fmt(s.first!)), median \(fmt(s[s.count / 2])), max \(fmt(s.last!)) over \(v.count) channels]"
    }

    /// The median of finite values when they agree to `relative`, else nil.
    package static func consistent(_ v: [Double], relative: Double = 0.02) -> Double? {
        let f = v.filter(\.isFinite).sorted()
        guard f.count >= max(1, v.count / 2) else { return nil }
        let m = f[f.count / 2]
        return f.allSatisfy { abs($0 - m) <= relative * max(abs(m), 1e-300) } ? m : nil
    }

    /// Least squares y ≈ a·x + b over the finite pairs; nil with fewer than two distinct x.
    package static func affine(_ x: [Double], _ y: [Double]) -> (a: Double, b: Double)? {
        let pts = zip(x, y).filter { $0.0.isFinite && $0.1.isFinite }
        guard pts.count >= 2 else { return nil }
        let n = Double(pts.count)
        let mx = pts.reduce(0) { $0 + $1.0 } / n, my = pts.reduce(0) { $0 + $1.1 } / n
        let sxx = pts.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
        guard sxx > 0 else { return nil }
        let a = pts.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / sxx
        return (a, my - a * mx)
    }

    // MARK: forward

    package struct ChannelFit { var a: Double, b: Double, residual: Double }

    /// y ≈ a·x + b per channel, with the worst residual in units of the tolerance. A 16-bit
    /// stored y is owed its rounding about the fitted line where that is larger than the
    /// reference (as a model's prediction is, ``DiagnosisProblem/misfit(_:)``), its own rounding
    /// u_s·|y|, and the line's error from fitting rounded values (bounded through the hat matrix
    /// below; with 12 values per channel one rounding alone had read 1.012 × the allowance).
    /// γ and β swapped make |y| larger, and its bfloat16 rounding alone had read as "not
    /// affine" beside the named swap (a red team's; up to 52 × τ on the 4x3x5x5 cases).
    package static func yFits(_ p: DiagnosisProblem, output: String = "y", x xName: String = "x") -> [ChannelFit?] {
        guard let y = p.got[output], let tol = p.tolerance[output] else { return [] }
        let x = p.input(xName)
        guard x.count == y.count else { return [] }
        let ref = p.expected[output] ?? []
        let us = p.storageOutputs.contains(output) && (p.spec.dtype == .f16 || p.spec.dtype == .bf16) && ref.count == y.count
            ? p.spec.dtype.storageRoundoff : 0
        return (0..<p.channels).map { c in
            let idx = p.indices(c)
            guard let (a, b) = affine(idx.map { x[$0] }, idx.map { y[$0] }) else { return nil }
            // The line fitted to rounded values is off by Σ_j h_ij·e_j (h the hat matrix, |e_j| ≤
            // u_s·|y_j|): at most e_max·(1 + |x_i − x̄|·Σ_j|x_j − x̄| / Sxx).
            let pts = idx.filter { x[$0].isFinite && y[$0].isFinite }
            let xbar = pts.reduce(0.0) { $0 + x[$1] } / Double(max(pts.count, 1))
            let sxx = pts.reduce(0.0) { $0 + (x[$1] - xbar) * (x[$1] - xbar) }, s1 = pts.reduce(0.0) { $0 + abs(x[$1] - xbar) }
            let emax = us * (pts.map { abs(y[$0]) }.max() ?? 0)
            var r = 0.0
            for i in pts {
                let line = a * x[i] + b
                var allowance = tol[i]
                if us > 0 {
                    let grow = ref[i].isFinite ? max(0, abs(line) - abs(ref[i])) : 0
                    allowance += us * (grow + abs(y[i])) + emax * (1 + (sxx > 0 ? abs(x[i] - xbar) * s1 / sxx : 0))
                }
                r = max(r, abs(y[i] - line) / max(allowance, 1e-300))
            }
            return ChannelFit(a: a, b: b, residual: r)
        }
    }

    /// The statistics the case normalises with: batch statistics in training, the given
    /// ones in inference.
    package static func statistics(_ p: DiagnosisProblem) -> (mean: [Double], variance: [Double]) {
        p.spec.op == .infer ? (p.input("mean"), p.input("var")) : p.trainingStatistics
    }

    /// The eps inside the square root that the returned y implies, per channel:
    /// (γ/a)² − σ² for y ≈ a·x + b.
    package static func epsInside(_ p: DiagnosisProblem) -> [Double] {
        let fits = yFits(p), (_, v) = statistics(p)
        guard fits.count == p.channels, v.count == p.channels else { return [] }
        return (0..<p.channels).map { c in
            guard let f = fits[c], f.residual <= 1, f.a != 0 else { return .nan }
            let s = p.gamma[c] / f.a
            return s * s - v[c]
        }
    }

    /// A consistent eps the outputs imply (for the wrong-eps model).
    package static func fittedEps(_ p: DiagnosisProblem) -> Double? {
        guard let e = consistent(epsInside(p), relative: 0.05), e >= 0 else { return nil }
        return e
    }

    /// A fitted eps means something only when it is the same across channels of different
    /// variance (a scale error — γ missing, an approximate 1/√ — gives an "eps" that varies with
    /// σ²): at least three channels whose variances span a factor of 2.
    package static func variancesSpan(_ v: [Double]) -> Bool {
        let f = v.filter { $0.isFinite && $0 > 0 }
        guard f.count >= 3, let lo = f.min(), let hi = f.max() else { return false }
        return hi >= 2 * lo
    }

    package static func epsCause(_ p: DiagnosisProblem) -> String {
        "normalises with eps = \(fmt(fittedEps(p) ?? .nan)) instead of \(fmt(p.eps))"
    }

    package static func forwardEvidence(_ p: DiagnosisProblem) -> [String] {
        let fits = yFits(p)
        guard !fits.isEmpty else { return [] }
        let (m, v) = statistics(p)
        // A channel with fewer than two distinct finite points has no line to test (one value per
        // channel: N = 1 after a linear layer): it is no evidence of anything (it had been read as
        // "not affine", every channel).
        guard fits.contains(where: { $0 != nil }) else { return [] }
        let worst = fits.compactMap { $0?.residual }.max() ?? .nan
        if !(worst <= 1) {
            let bad = fits.indices.filter { fits[$0].map { !($0.residual <= 1) } ?? false }
            return ["y is not an affine function of x within channels \(list(bad.map(Double.init))) (worst residual \(fmt(worst)) × tolerance): the statistics are not one per channel (other axes, a wrong element order, or corrupted elements)"]
        }
        let eps = epsInside(p)
        let centre = (0..<p.channels).map { c -> Double in
            guard let f = fits[c], f.a != 0, v.count == p.channels, v[c] > 0 else { return .nan }
            return ((p.beta[c] - f.b) / f.a - m[c]) / v[c].squareRoot()
        }
        let scale = (0..<p.channels).map { c -> Double in
            guard let f = fits[c], v.count == p.channels else { return .nan }
            return (f.a / p.gamma[c]) * (v[c] + p.eps).squareRoot()
        }
        return ["y ≈ a·x + b per channel (worst residual \(fmt(worst)) × tolerance): scale ÷ 1/√(σ² + ε) = \(list(scale)); eps inside √ implied = \(list(eps)) (case eps \(fmt(p.eps))); centre − μ = \(list(centre))·σ"]
    }

    // MARK: running statistics

    /// The batch weight per channel that the returned running mean implies:
    /// (R′ − R)/(μ − R), where μ − R is large enough to tell.
    package static func weights(_ p: DiagnosisProblem) -> [Double] {
        guard let got = p.got["running_mean"], let tol = p.tolerance["running_mean"] else { return [] }
        let r = p.input("running_mean"), m = p.trainingStatistics.mean
        guard got.count == p.channels, r.count == p.channels, m.count == p.channels else { return [] }
        return (0..<p.channels).map { c in
            let d = m[c] - r[c]
            return abs(d) > 8 * tol[c] ? (got[c] - r[c]) / d : .nan
        }
    }

    package static func fittedWeight(_ p: DiagnosisProblem) -> Double? { consistent(weights(p), relative: 0.01) }

    package static func weightCause(_ p: DiagnosisProblem) -> String {
        let w = fittedWeight(p) ?? .nan, w0 = p.weight(step: 1) ?? .nan
        if abs(w - (1 - w0)) <= 1e-3 * max(1 - w0, 1e-3) {
            return "momentum convention inverted: the running statistics take weight 1 − w for the batch (fitted batch weight \(fmt(w)), case w = \(fmt(w0)))"
        }
        return "running statistics updated with batch weight \(fmt(w)) instead of \(fmt(w0))"
    }

    package static func runningEvidence(_ p: DiagnosisProblem) -> [String] {
        var out: [String] = []
        let w = weights(p)
        if !w.isEmpty { out.append("running mean: implied batch weight \(list(w)) (case w = \(fmt(p.weight(step: 1) ?? .nan)))") }
        // The running variance's batch term under the weight the running mean shows (when it
        // fits one), not the case's: with an inverted momentum the case's w gave a meaningless f.
        let asked = p.weight(step: 1)
        let fitted = fittedWeight(p).flatMap { f in asked.map { abs(f - $0) > 1e-3 * max($0, 1e-3) } ?? true ? f : nil }
        if let got = p.got["running_var"], let w0 = fitted ?? asked, w0 > 0 {
            let rv = p.input("running_var"), v = p.trainingStatistics.variance
            if rv.count == p.channels, v.count == p.channels, got.count == p.channels {
                let f = (0..<p.channels).map { c in v[c] > 0 ? (got[c] - (1 - w0) * rv[c]) / (w0 * v[c]) : .nan }
                let under = fitted != nil ? ", under the batch weight \(fmt(w0)) the running mean implies" : ""
                out.append("running variance: batch term implied = f·σ² with f = \(list(f)) (biased 1, unbiased n/(n − 1) = \(fmt(p.bessel))\(under))")
            }
        }
        return out
    }

    /// Trajectories: the weight of each step implied by the returned running means.
    package static func stepWeights(_ p: DiagnosisProblem) -> [Double] {
        guard let got = p.got["running_mean"] else { return [] }
        let C = p.channels, K = p.spec.steps
        guard got.count == C * K, let batches = try? p.spec.trainingBatches(p.input("x")), batches.count == K else { return [] }
        var prev = p.input("running_mean")
        var out: [Double] = []
        for k in 0..<K {
            let m = p.batchStatistics(batches[k].values, shape: batches[k].shape).mean
            let cur = Array(got[(k * C)..<((k + 1) * C)])
            let ws = (0..<C).map { c -> Double in
                let d: Double = m[c] - prev[c]
                let floor: Double = 1e-6 * Swift.max(abs(m[c]), 1)
                return abs(d) > floor ? (cur[c] - prev[c]) / d : Double.nan
            }
            out.append(consistent(ws, relative: 0.01) ?? .nan)
            prev = cur
        }
        return out
    }

    /// The period P of a cumulative average whose counter resets (weights 1/(((k − 1) mod P) + 1)).
    package static func cumulativePeriod(_ p: DiagnosisProblem) -> Int? {
        let w = stepWeights(p)
        guard w.count >= 3 else { return nil }
        for period in 1..<w.count {
            let fits = w.indices.allSatisfy { k in
                w[k].isNaN || abs(w[k] - 1 / Double(k % period + 1)) <= 1e-3 * w[k]
            }
            if fits { return period }
        }
        return nil
    }

    package static func periodCause(_ p: DiagnosisProblem) -> String {
        "the cumulative average's counter resets every \(cumulativePeriod(p).map(String.init) ?? "?") steps (weights 1/k restart)"
    }

    // MARK: backward

    /// dx ≈ a·dy + b + k·x̂ per channel (least squares), relative to the reference's
    /// a₀ = γr, b₀ = −γr·Σdy/n, k₀ = −γr·Σdy·x̂/n (a training backward; an inference backward's b
    /// and k as they are, 0 expected); NaN where the fit is singular. Empty when dx is missing.
    package static func backwardRatios(_ p: DiagnosisProblem) -> (a: [Double], b: [Double], k: [Double]) {
        guard let dx = p.got["dx"] else { return ([], [], []) }
        let x = p.input("x"), dy = p.input("dy"), n = Double(p.n)
        let training = p.spec.op == .backwardTrain || p.spec.op == .syncBackward
        let (m, v) = training ? p.trainingStatistics : (p.input("mean"), p.input("var"))
        guard dx.count == x.count, m.count == p.channels else { return ([], [], []) }
        var ra: [Double] = [], rb: [Double] = [], rk: [Double] = []
        for c in 0..<p.channels {
            let idx = p.indices(c), r = p.invStd(v[c])
            let xh = idx.map { (x[$0] - m[c]) * r }, d = idx.map { dy[$0] }, t = idx.map { dx[$0] }
            let sdy = d.reduce(0, +), sdyx = zip(d, xh).reduce(0) { $0 + $1.0 * $1.1 }
            let a0 = p.gamma[c] * r
            guard let (a, b, k) = solve3(d, xh, t) else { ra.append(.nan); rb.append(.nan); rk.append(.nan); continue }
            ra.append(a / a0)
            rb.append(training ? b / (-a0 * sdy / n) : b)
            rk.append(training ? k / (-a0 * sdyx / n) : k)
        }
        return (ra, rb, rk)
    }

    package static func backwardEvidence(_ p: DiagnosisProblem) -> [String] {
        guard p.got["dx"] != nil else { return [] }
        // Three coefficients from n values: with n < 4 the fit has no residual to judge it by (an
        // outside red team's: at n = 2 it printed lists of NaN).
        if p.n < 4 { return ["dx not fitted to a·dy + b + k·x̂ per channel: \(p.n) values per channel (three coefficients need at least 4)"] }
        let (ra, rb, rk) = backwardRatios(p)
        guard !ra.isEmpty else { return [] }
        if ra.allSatisfy(\.isNaN) { return ["dx not fitted to a·dy + b + k·x̂ per channel: the fit is singular in every channel (dy, x̂ and 1 are not independent)"] }
        let training = p.spec.op == .backwardTrain || p.spec.op == .syncBackward
        let what = training ? "b ÷ (−γr·Σdy/n) = \(list(rb)), k ÷ (−γr·Σdy·x̂/n) = \(list(rk))" : "b = \(list(rb)), k = \(list(rk)) (0 expected)"
        return ["dx ≈ a·dy + b + k·x̂ per channel: a ÷ γr = \(list(ra)), " + what]
    }

    /// Least squares t ≈ a·d + b + k·h (normal equations, 3×3).
    package static func solve3(_ d: [Double], _ h: [Double], _ t: [Double]) -> (Double, Double, Double)? {
        var A = [[Double]](repeating: [0, 0, 0], count: 3), rhs = [0.0, 0, 0]
        for i in d.indices where d[i].isFinite && h[i].isFinite && t[i].isFinite {
            let row = [d[i], 1, h[i]]
            for r in 0..<3 { for c in 0..<3 { A[r][c] += row[r] * row[c] }; rhs[r] += row[r] * t[i] }
        }
        // Gaussian elimination with partial pivoting; nil when singular (e.g. n ≤ 2).
        var M = A, y = rhs
        for col in 0..<3 {
            guard let piv = (col..<3).max(by: { abs(M[$0][col]) < abs(M[$1][col]) }), abs(M[piv][col]) > 1e-12 * (abs(M[0][0]) + 1) else { return nil }
            M.swapAt(col, piv); y.swapAt(col, piv)
            for r in (col + 1)..<3 {
                let f = M[r][col] / M[col][col]
                for c in col..<3 { M[r][c] -= f * M[col][c] }
                y[r] -= f * y[col]
            }
        }
        var sol = [0.0, 0, 0]
        for r in (0..<3).reversed() {
            var s = y[r]
            for c in (r + 1)..<3 { s -= M[r][c] * sol[c] }
            sol[r] = s / M[r][r]
        }
        return (sol[0], sol[1], sol[2])
    }

    // MARK: all

    package static func evidence(_ p: DiagnosisProblem) -> [String] {
        var out: [String] = []
        switch p.spec.op {
        case .train: out += forwardEvidence(p) + runningEvidence(p)
        case .syncTrain: out += forwardEvidence(p) + runningEvidence(p) + synchronizedEvidence(p)
        case .syncBackward: out += backwardEvidence(p) + synchronizedEvidence(p)
        case .infer: out += forwardEvidence(p)
        case .backwardTrain, .backwardInfer: out += backwardEvidence(p)
        case .trajectory, .epoch:
            let w = stepWeights(p)
            if !w.isEmpty { out.append("implied batch weight per step: \(list(w)) (case: \(p.spec.momentum == nil ? "1/k" : fmt(p.weight(step: 1) ?? .nan)))") }
        case .hvpTrain, .hvpInfer, .d2Train, .d3Train: out += HigherOrderModels.evidence(p)
        }
        let given = [.infer, .backwardInfer, .hvpInfer].contains(p.spec.op)
        let (m, v) = given ? (p.input("mean"), p.input("var")) : p.trainingStatistics
        if !p.spec.op.hasSteps, m.count == p.channels {
            let kappa = (0..<p.channels).map { c in v[c] > 0 ? abs(m[c]) / v[c].squareRoot() : (m[c] == 0 ? 0 : .infinity) }
            out.append("condition |μ|/σ per channel: \(list(kappa))")
        }
        return out
    }
}

extension Fits {
    /// Per channel of a training case: the condition κ = |μ|/σ and the relative error of
    /// the variance the implementation used — its batch_var when returned, else the one its
    /// y implies, (γ/a)² − ε for y ≈ a·x + b.
    /// Float32 cases only: the audit-wide fit reads the growth above float32's roundoff, and the
    /// 16-bit and float64 cases' errors sit on other floors (with round G's many 16-bit cases,
    /// Flax's one-pass variance, κ^1.88 before, fitted as κ^1.10 "updating").
    package static func variancePoints(_ p: DiagnosisProblem) -> [VarianceGrowth.Point] {
        guard p.spec.dtype == .f32, let (implied, resolved) = impliedVariance(p) else { return [] }
        let (m, v) = p.trainingStatistics
        return (0..<p.channels).compactMap { c in
            guard v[c] > 0, resolved[c], implied[c].isFinite else { return nil }
            let d = implied[c] - v[c]
            return VarianceGrowth.Point(kappa: abs(m[c]) / v[c].squareRoot(), error: abs(d) / v[c], sign: d > 0 ? 1 : d < 0 ? -1 : 0)
        }
    }
}

extension Fits {
    /// A training case's variance as the implementation used it, per channel: its returned
    /// batch_var, else the variance y's fitted scale implies; with whether each channel
    /// resolves it. Nil for other ops, n = 1, or when y cannot be fitted.
    package static func impliedVariance(_ p: DiagnosisProblem) -> (variance: [Double], resolved: [Bool])? {
        guard p.spec.op == .train || p.spec.op == .syncTrain, p.n > 1 else { return nil }
        let (m, v) = p.trainingStatistics
        guard m.count == p.channels else { return nil }
        // Read from y, the variance is resolved only to about u·(σ² + ε)/σ² relative: a channel
        // with σ² < ε (near-constant data) measures ε's rounding, not the algorithm, and would
        // flatten the growth fit; such channels give no point.
        if let bv = p.got["batch_var"], bv.count == p.channels { return (bv, [Bool](repeating: true, count: p.channels)) }
        // epsInside = (γ/a)² − σ², so the variance y implies is (γ/a)² − ε = epsInside + σ² − ε.
        let e = epsInside(p)
        guard e.count == p.channels else { return nil }
        return ((0..<p.channels).map { c in e[c] + v[c] - p.eps }, v.map { $0 >= p.eps })
    }

    /// Whether a BN that is right but for its variance — the one it used, ``impliedVariance`` —
    /// reproduces every output a training case returned (y, batch_var, the running update with
    /// the case's weight; the rest as the reference): the one-pass attribution's model check.
    package static func varianceAloneExplains(_ p: DiagnosisProblem) -> Bool {
        // A variance that came out negative (one pass's cancellation) gives NaN outputs: so does the model.
        guard let (used, _) = impliedVariance(p), used.allSatisfy(\.isFinite) else { return false }
        // About the returned batch mean, else the centre y implies (x where y = β; the caller
        // requires either within tolerance): a variance near 0 magnifies the mean's own rounding in y.
        let returned = p.got["batch_mean"].flatMap { $0.count == p.channels ? $0 : nil }
        let fits = yFits(p)
        let centres = fits.count == p.channels ? (0..<p.channels).compactMap { c in fits[c].flatMap { $0.a != 0 ? (p.beta[c] - $0.b) / $0.a : nil } } : []
        let m = returned ?? (centres.count == p.channels ? centres : p.trainingStatistics.mean)
        var predicted = ["y": p.normalized(p.input("x"), mean: m, scale: { p.invStd(used[$0]) })]
        if p.got["batch_var"] != nil { predicted["batch_var"] = used }
        if returned != nil { predicted["batch_mean"] = m }
        if let w = p.weight(step: 1), p.input("running_var").count == p.channels {
            predicted["running_mean"] = p.blend(p.input("running_mean"), m, w)
            predicted["running_var"] = p.blend(p.input("running_var"), p.runningVarianceTerm(used), w)
        }
        return p.explains(predicted)
    }

    /// Whether the running update with the batch weight the case's running mean implies
    /// (``fittedWeight``) reproduces every output the case returned, the rest as the reference:
    /// the check before an audit-wide weight rule names a failure.
    package static func runningWeightAloneExplains(_ p: DiagnosisProblem) -> Bool {
        guard let w = fittedWeight(p), let predicted = RunningModels.update(p, w: w, varianceTerm: p.runningVarianceTerm) else { return false }
        return p.explains(predicted)
    }
}

extension Fits {
    /// A training backward (backward-train, sync-backward) that is the right formula about the
    /// batch mean but normalised with another variance v′: per channel the v′ that dx's fitted
    /// scale implies (a ÷ γr = ρ, so v′ = (v + ε)/ρ² − ε), as points (κ = |μ|/σ, |v′ − v|/v) — only
    /// when the gradients with (μ, v′) reproduce every returned output within tolerance, else none.
    /// For the audit's one-pass attribution of an unexplained backward failure; not part of the
    /// variance-growth fit (y measures the variance used; dx only through its scale).
    package static func backwardVariancePoints(_ p: DiagnosisProblem) -> [VarianceGrowth.Point] {
        guard p.spec.op == .backwardTrain || p.spec.op == .syncBackward, p.n > 1 else { return [] }
        let (m, v) = p.trainingStatistics, rho = backwardRatios(p).a
        guard m.count == p.channels, rho.count == p.channels, rho.allSatisfy({ $0.isFinite && $0 > 0 }) else { return [] }
        let used = (0..<p.channels).map { c in (v[c] + p.eps) / (rho[c] * rho[c]) - p.eps }
        guard used.allSatisfy({ $0 + p.eps > 0 }),
              p.explains(BackwardModels.gradients(p, mean: m, scale: used.map(p.invStd))) else { return [] }
        return (0..<p.channels).compactMap { c in
            v[c] > 0 ? VarianceGrowth.Point(kappa: abs(m[c]) / v[c].squareRoot(), error: abs(used[c] - v[c]) / v[c]) : nil
        }
    }
}

extension Fits {
    /// Without a returned batch mean: whether the centre y implies (x where y = β) is within
    /// the batch mean's tolerance in every channel.
    package static func centreWithinTolerance(_ p: DiagnosisProblem) -> Bool {
        let fits = yFits(p), m = p.trainingStatistics.mean
        guard fits.count == p.channels, m.count == p.channels, let tm = p.tolerance["batch_mean"] ?? p.tolerance["running_mean"] else { return false }
        return (0..<p.channels).allSatisfy { c in
            guard let f = fits[c], f.a != 0 else { return false }
            return abs((p.beta[c] - f.b) / f.a - m[c]) <= tm[c]
        }
    }
}
