import BNCore
import RealModule

extension Reference {
    /// Training-mode backward (batch statistics are functions of x), spec §2:
    ///
    ///     dβ = Σ dy,  dγ = Σ dy·x̂,
    ///     dx = γ·r·(dy − dβ/n − x̂·dγ/n),   x̂ = (x − μ)·r,  r = 1/√(σ² + ε)
    ///
    /// with the exact batch statistics μ, σ² of `x`. Every output is correctly rounded
    /// from the exact value: with D = Σdy and G = Σdy·(x − μ) exact rationals,
    /// dγ = G/√V and dx = γ·(dy − D/n − (x − μ)·G/(n·V))/√V, V = σ² + ε.
    /// A channel with a non-finite x, dy or γ, or with V = 0, follows §4 (IEEE).
    public static func trainingBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                        gamma: [Double]?, eps: Double) throws -> BackwardResult {
        try checkEps(eps)
        let ms = try moments(x, shape: shape, layout: layout)
        return try trainingBackward(x, dy: dy, shape: shape, layout: layout, gamma: gamma, statistics: ms.map { m in
            guard let e = m.exact else { return nil }
            let v = e.m2 / Rational(e.count) + Rational(eps)
            return v.signum > 0 ? (e.mean, e.meanEnclosure, v) : nil
        }, ieee: ms.map { m in (m.mean, inverseStd(variance: m.biasedVariance, eps: eps)) })
    }

    /// Training-mode backward from saved statistics: as above with μ = `mean` and
    /// r = `invStd` taken as exact (V = 1/r²), each output correctly rounded from them.
    public static func trainingBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                        gamma: [Double]?, mean: [Double], invStd: [Double]) throws -> BackwardResult {
        try checkParameter(mean, "mean", shape); try checkParameter(invStd, "invStd", shape)
        let statistics = zip(mean, invStd).map { m, r -> (Rational, Enclosure, Rational)? in
            guard m.isFinite, r.isFinite, r > 0 else { return nil }
            let rr = Rational(r)
            return (Rational(m), Enclosure(m), .one / (rr * rr))
        }
        return try trainingBackward(x, dy: dy, shape: shape, layout: layout, gamma: gamma, statistics: statistics,
                                    ieee: Array(zip(mean, invStd)))
    }

    /// `statistics[c]`: μ, its enclosure and V > 0 for the exact path, nil for §4's IEEE
    /// path, which uses `ieee[c]` = (μ, r) as Doubles.
    static func trainingBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, gamma: [Double]?,
                                 statistics: [(Rational, Enclosure, Rational)?], ieee: [(Double, Double)]) throws -> BackwardResult {
        try check(x.count, shape, layout); try check(dy.count, shape, layout, what: "dy")
        try checkParameter(gamma, "gamma", shape)
        let n = shape.perChannelCount
        var out = BackwardResult(dx: [Double](repeating: 0, count: x.count),
                                 dGamma: [Double](repeating: 0, count: shape.channels),
                                 dBeta: [Double](repeating: 0, count: shape.channels))
        for c in 0..<shape.channels {
            let segs = layout.segments(channel: c, shape: shape), g = gamma?[c] ?? 1
            if let (mu, muE, v) = statistics[c], g.isFinite, let sums = ExactGradientSums(x, dy, segs) {
                let gsum = sums.dyx - mu * sums.dy          // G = Σdy·(x − μ)
                out.dBeta[c] = sums.dy.rounded()
                out.dGamma[c] = Rational.roundedSurd(gsum, plus: .zero, over: v)
                let a = sums.dy / Rational(n), b = gsum / (Rational(n) * v)
                let aE = Enclosure(a), bE = Enclosure(b), k = Enclosure(g) * Enclosure.inverseSquareRoot(v)
                forEachIndex(segs) { i in
                    let q = (Enclosure(dy[i]) - aE) - (Enclosure(x[i]) - muE) * bE
                    if let r = (k * q).correctlyRounded { out.dx[i] = r; return }
                    exactFallbacks?.increment()
                    let exact = Rational(dy[i]) - a - (Rational(x[i]) - mu) * b
                    out.dx[i] = Rational.roundedSurd(Rational(g) * exact, plus: .zero, over: v)
                }
            } else {
                ieeeBackward(x, dy, segs, n: Double(n), gamma: g, mean: ieee[c].0, invStd: ieee[c].1, training: true,
                             into: &out, channel: c)
            }
        }
        return out
    }

    /// Inference-mode backward (statistics are constants), spec §2:
    /// dx = γ·dy/√V, dγ = Σdy·(x − μ_R)/√V, dβ = Σdy with V = σ²_R + ε, each correctly
    /// rounded from the given values. A channel with a non-finite γ, μ_R or σ²_R, or with
    /// V ≤ 0, follows §4 (IEEE). With those finite, a non-finite x or dy is §4's only where it
    /// enters (spec §4): dx = γ·dy/√V does not involve x, so it stays correctly rounded at every
    /// finite dy; dγ and dβ are IEEE sums where their terms are not all finite (dβ exact when
    /// every dy is finite).
    public static func inferenceBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                         gamma: [Double]?, mean: [Double], variance: [Double],
                                         eps: Double) throws -> BackwardResult {
        try check(x.count, shape, layout); try check(dy.count, shape, layout, what: "dy")
        try checkParameter(gamma, "gamma", shape)
        try checkParameter(mean, "mean", shape); try checkParameter(variance, "variance", shape)
        var out = BackwardResult(dx: [Double](repeating: 0, count: x.count),
                                 dGamma: [Double](repeating: 0, count: shape.channels),
                                 dBeta: [Double](repeating: 0, count: shape.channels))
        for c in 0..<shape.channels {
            let segs = layout.segments(channel: c, shape: shape), g = gamma?[c] ?? 1
            let affine = exactAffine(mean: mean[c], variance: variance[c], eps: eps, gamma: g, beta: 0)
            if let a = affine, let sums = ExactGradientSums(x, dy, segs) {
                out.dBeta[c] = sums.dy.rounded()
                out.dGamma[c] = Rational.roundedSurd(sums.dyx - a.mean * sums.dy, plus: .zero, over: a.radicand)
                inferenceDx(a, gamma: g, dy, segs, into: &out.dx)
            } else if let a = affine {
                // A non-finite x or dy with finite statistics: dβ and dγ by §4's IEEE sums (dβ exact
                // when dy is finite), dx = γ·dy/√V correctly rounded wherever dy is finite.
                let inv = inverseStd(variance: variance[c], eps: eps)
                ieeeBackward(x, dy, segs, n: Double(shape.perChannelCount), gamma: g, mean: mean[c], invStd: inv,
                             training: false, into: &out, channel: c)
                inferenceDx(a, gamma: g, dy, segs, into: &out.dx)
            } else {
                let inv = inverseStd(variance: variance[c], eps: eps)
                ieeeBackward(x, dy, segs, n: Double(shape.perChannelCount), gamma: g, mean: mean[c], invStd: inv,
                             training: false, into: &out, channel: c)
                // dx = γ·dy/√V involves no μ_R: with a non-finite μ_R alone it stays correctly rounded
                // wherever dy is finite (the constants of a zero mean have the same k = γ/√V).
                if let a = exactAffine(mean: 0, variance: variance[c], eps: eps, gamma: g, beta: 0) {
                    inferenceDx(a, gamma: g, dy, segs, into: &out.dx)
                }
            }
        }
        return out
    }

    /// The inference backward's dx = γ·dy/√V (a.k = γ/√V), correctly rounded at every finite dy
    /// (the others are left as they are).
    static func inferenceDx(_ a: ExactAffine, gamma g: Double, _ dy: [Double], _ segs: [ChannelSegment], into dx: inout [Double]) {
        forEachIndex(segs) { i in
            guard dy[i].isFinite else { return }
            if let r = (a.k * Enclosure(dy[i])).correctlyRounded { dx[i] = r; return }
            exactFallbacks?.increment()
            dx[i] = Rational.roundedSurd(Rational(g) * Rational(dy[i]), plus: .zero, over: a.radicand)
        }
    }

    /// §4's path for a channel with non-finite data or statistics: the formulas in IEEE
    /// arithmetic (compensated sums, x − μ exact), so NaN and ±Inf propagate as IEEE does. dβ = Σdy
    /// does not involve x or the statistics: where every dy is finite it is the exact sum, correctly
    /// rounded (a channel poisoned by its x keeps the dβ its dy define).
    static func ieeeBackward(_ x: [Double], _ dy: [Double], _ segs: [ChannelSegment], n: Double, gamma g: Double,
                             mean m: Double, invStd inv: Double, training: Bool,
                             into out: inout BackwardResult, channel c: Int) {
        var sdy = CompensatedSum(), sdyx = CompensatedSum()
        let exact = LongAccumulator(.sums)
        var dyFinite = true
        forEachIndex(segs) { i in
            sdy.add(dy[i]); sdyx.addProduct(dy[i], xhat(x[i], m, inv))
            if dy[i].isFinite { exact.add(dy[i]) } else { dyFinite = false }
        }
        let db = sdy.value, dg = sdyx.value
        out.dBeta[c] = dyFinite ? exact.rational.rounded() : db; out.dGamma[c] = dg
        let k = g * inv, mb = db / n, mg = dg / n
        forEachIndex(segs) { i in
            out.dx[i] = training ? k * (dy[i] - mb - xhat(x[i], m, inv) * mg) : k * dy[i]
        }
    }

    /// x̂ = (x − μ)·s with x − μ taken exactly.
    @inlinable static func xhat(_ x: Double, _ m: Double, _ s: Double) -> Double {
        let (dh, dl) = Augmented.sum(x, -m)
        // With s = +Inf (variance 0 and eps 0) the low part must not contribute 0·Inf = NaN:
        // (x − μ)·Inf is ±Inf for x ≠ μ and NaN only for x = μ (found by law 15).
        return dh.isFinite && s.isFinite ? (dh * s).addingProduct(dl, s) : dh * s
    }

    @inlinable static func forEachIndex(_ segs: [ChannelSegment], _ body: (Int) -> Void) {
        for seg in segs {
            var i = seg.offset
            for _ in 0..<seg.count { body(i); i += seg.stride }
        }
    }
}

/// A channel's exact gradient sums Σdy and Σdy·x (``LongAccumulator``); nil when a
/// value is not finite.
struct ExactGradientSums {
    var dy: Rational
    var dyx: Rational

    init?(_ x: [Double], _ dy: [Double], _ segs: [ChannelSegment]) {
        let s = LongAccumulator(.sums), p = LongAccumulator(.products)
        var finite = true
        Reference.forEachIndex(segs) { i in
            if x[i].isFinite && dy[i].isFinite { s.add(dy[i]); p.addProduct(dy[i], x[i]) } else { finite = false }
        }
        guard finite else { return nil }
        self.dy = s.rational
        dyx = p.rational
    }
}
