import BNCore
import RealModule

extension Reference {
    /// Training-mode backward (batch statistics are functions of x):
    ///
    ///     dβ = Σ dy,  dγ = Σ dy·x̂,
    ///     dx = γ·invstd·(dy − dβ/n − x̂·dγ/n)
    ///
    /// with x̂ = (x − μ)·invstd recomputed from the saved μ and invstd. The sums are
    /// compensated (``CompensatedSum``); dx carries the cancellation inherent to the
    /// formula, at Double precision.
    public static func trainingBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                        gamma: [Double]?, mean: [Double], invStd: [Double]) throws -> BackwardResult {
        try check(x.count, shape, layout); try check(dy.count, shape, layout, what: "dy")
        try checkParameter(gamma, "gamma", shape)
        let n = Double(shape.perChannelCount)
        var dx = [Double](repeating: 0, count: x.count)
        let (dg, db) = gradientSums(x, dy: dy, shape: shape, layout: layout, mean: mean, invStd: invStd)
        for c in 0..<shape.channels {
            let segs = layout.segments(channel: c, shape: shape)
            let g = gamma?[c] ?? 1
            let k = g * invStd[c], mb = db[c] / n, mg = dg[c] / n
            forEachIndex(segs) { i in
                dx[i] = k * (dy[i] - mb - xhat(x[i], mean[c], invStd[c]) * mg)
            }
        }
        return BackwardResult(dx: dx, dGamma: dg, dBeta: db)
    }

    /// dγ = Σ dy·x̂ and dβ = Σ dy per channel, with x̂ = (x − μ)·invstd for the given μ and
    /// invstd (compensated sums, ``CompensatedSum``). Shared by the training backward and the
    /// synchronized backward's per-rank sums (spec §11.3), so both round identically.
    static func gradientSums(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                             mean: [Double], invStd: [Double]) -> (dGamma: [Double], dBeta: [Double]) {
        var dg = [Double](repeating: 0, count: shape.channels), db = dg
        for c in 0..<shape.channels {
            var sdy = CompensatedSum(), sdyx = CompensatedSum()
            forEachIndex(layout.segments(channel: c, shape: shape)) { i in
                sdy.add(dy[i]); sdyx.addProduct(dy[i], xhat(x[i], mean[c], invStd[c]))
            }
            db[c] = sdy.value; dg[c] = sdyx.value
        }
        return (dg, db)
    }

    /// Inference-mode backward (statistics are constants):
    /// dx = γ·invstd·dy, dγ = Σ dy·x̂, dβ = Σ dy, with invstd = 1/sqrt(var + eps).
    public static func inferenceBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                         gamma: [Double]?, mean: [Double], variance: [Double],
                                         eps: Double) throws -> BackwardResult {
        try check(x.count, shape, layout); try check(dy.count, shape, layout, what: "dy")
        try checkParameter(gamma, "gamma", shape)
        var dx = [Double](repeating: 0, count: x.count)
        var dg = [Double](repeating: 0, count: shape.channels), db = dg
        for c in 0..<shape.channels {
            let inv = inverseStd(variance: variance[c], eps: eps)
            let k = (gamma?[c] ?? 1) * inv
            var sdy = CompensatedSum(), sdyx = CompensatedSum()
            forEachIndex(layout.segments(channel: c, shape: shape)) { i in
                sdy.add(dy[i]); sdyx.addProduct(dy[i], xhat(x[i], mean[c], inv))
                dx[i] = k * dy[i]
            }
            db[c] = sdy.value; dg[c] = sdyx.value
        }
        return BackwardResult(dx: dx, dGamma: dg, dBeta: db)
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
