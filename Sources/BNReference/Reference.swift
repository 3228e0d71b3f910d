import BNCore
import Foundation
import RealModule

/// Results of a training-mode forward pass.
public struct TrainingForwardResult: Sendable {
    /// y = γ·(x − μ)·invstd + β, in the input's layout.
    public var y: [Double]
    /// Per-channel batch moments (mean, M2, count).
    public var moments: [ChannelMoments]
    /// Per-channel batch mean μ.
    public var mean: [Double]
    /// Per-channel biased batch variance σ² = M2/n (what BN normalises with).
    public var variance: [Double]
    /// Per-channel saved inverse standard deviation 1/sqrt(σ² + eps).
    public var invStd: [Double]
}

/// Gradients of BN with respect to its input and affine parameters.
public struct BackwardResult: Sendable {
    public var dx: [Double]
    public var dGamma: [Double]
    public var dBeta: [Double]
}

/// The double-precision reference implementation of Batch Normalization
/// (spec/SPEC.md §2). For finite data every output is the correctly rounded Double
/// (nearest, ties to even) of the exact real value of §2's formula on the inputs'
/// exact values (spec §7); non-finite data follows §4 with IEEE arithmetic.
/// Every function is deterministic: the same inputs give the same bits on any
/// IEEE-754 machine with FMA.
///
/// How: per channel the statistics are exact rationals (``ChannelMoments``); per
/// element a double-double evaluation with a certified radius (``Enclosure``) decides
/// the rounding, and the rare element it cannot decide is re-evaluated exactly
/// (``Rational/roundedSurd(_:plus:over:)``). ``exactFallbacks`` counts those.
public enum Reference {
    /// Counts the output elements that needed the exact re-evaluation, when bound
    /// (`Reference.$exactFallbacks.withValue(FallbackCounter()) { … }`).
    @TaskLocal public static var exactFallbacks: FallbackCounter?

    /// Checks that `count` matches the shape and that a channel has values.
    static func check(_ count: Int, _ shape: Shape, _ layout: Layout, what: String = "x") throws {
        try shape.validate()
        if layout == .nc && !shape.spatial.isEmpty {
            throw BNError.invalidArgument("layout NC takes no spatial dimensions (shape \(shape))")
        }
        guard count == shape.elementCount else {
            throw BNError.invalidArgument("\(what) has \(count) elements but shape \(shape) needs \(shape.elementCount)")
        }
        if shape.perChannelCount == 0 { throw BNError.emptyChannel(channel: 0) }
    }

    static func checkParameter(_ p: [Double]?, _ name: String, _ shape: Shape) throws {
        if let p, p.count != shape.channels {
            throw BNError.invalidArgument("\(name) has \(p.count) values but there are \(shape.channels) channels")
        }
    }

    /// Per-channel moments of `x` (see ``ChannelMoments`` for the accuracy contract).
    /// Throws ``BNError/emptyChannel(channel:)`` when N × spatial = 0.
    public static func moments(_ x: [Double], shape: Shape, layout: Layout) throws -> [ChannelMoments] {
        try check(x.count, shape, layout)
        var out = [ChannelMoments?](repeating: nil, count: shape.channels)
        x.withUnsafeBufferPointer { buf in out.withUnsafeMutableBufferPointer { o in
            forEachChannel(shape.channels, elements: x.count) { c in
                o[c] = ChannelMoments.compute(buf, segments: layout.segments(channel: c, shape: shape))
            }
        }}
        return out.map { $0! }
    }

    /// 1/sqrt(v + eps) in IEEE arithmetic (the non-finite path). eps = 0 with v = 0 gives +Inf.
    @inlinable public static func inverseStd(variance v: Double, eps: Double) -> Double {
        1 / (v + eps).squareRoot()
    }

    /// One channel's normalisation constants, exactly: μ and V = σ² + ε as rationals
    /// (V > 0), with the enclosures of μ and of K = γ/√V for the fast path.
    struct ExactAffine {
        var mean: Rational, meanEnclosure: Enclosure
        var radicand: Rational
        var gamma: Double, beta: Double
        var k: Enclosure

        init(mean: Rational, meanEnclosure: Enclosure, radicand v: Rational, gamma: Double, beta: Double) {
            self.mean = mean; self.meanEnclosure = meanEnclosure; radicand = v
            self.gamma = gamma; self.beta = beta
            k = Enclosure(gamma) * Enclosure.inverseSquareRoot(v)
        }

        /// γ·(x − μ)/√V + β, correctly rounded (x finite).
        @inline(__always) func y(_ x: Double) -> Double {
            if let r = (k * (Enclosure(x) - meanEnclosure) + Enclosure(beta)).correctlyRounded { return r }
            Reference.exactFallbacks?.increment()
            return Rational.roundedSurd(Rational(gamma) * (Rational(x) - mean), plus: Rational(beta), over: radicand)
        }
    }

    /// Applies y = γ·(x − μ)·s + β per channel in IEEE arithmetic, with x − μ taken
    /// exactly (TwoSum): the non-finite path of §4. s = +Inf with x = μ gives NaN (0·Inf),
    /// the defined outcome of eps = 0, var = 0.
    static func normalizeIEEE(_ x: [Double], _ segs: [ChannelSegment], mean m: Double, scale sc: Double,
                              gamma g: Double, beta b: Double, into y: inout [Double]) {
        y.withUnsafeMutableBufferPointer { normalizeIEEE(x, segs, mean: m, scale: sc, gamma: g, beta: b, into: $0) }
    }

    static func normalizeIEEE(_ x: [Double], _ segs: [ChannelSegment], mean m: Double, scale sc: Double,
                              gamma g: Double, beta b: Double, into y: UnsafeMutableBufferPointer<Double>) {
        forEachIndex(segs) { i in y[i] = (g * xhat(x[i], m, sc)) + b }
    }

    /// Training-mode forward: normalise with the batch's own mean and biased variance.
    ///
    /// Every output is correctly rounded from the exact values: y = γ·(x − μ)/√(σ² + ε) + β
    /// with μ and σ² the exact batch statistics (not their rounded values); `mean`,
    /// `variance` and `invStd` = 1/√(σ² + ε) are the correctly rounded statistics.
    /// A channel with a non-finite value, γ or β, or with σ² + ε = 0, follows §4 (IEEE).
    ///
    /// - Parameters: `gamma`/`beta` are optional (nil = 1 and 0: no affine transform).
    /// - Throws: on a shape mismatch, n = 0, or negative/NaN eps.
    public static func trainingForward(_ x: [Double], shape: Shape, layout: Layout,
                                       gamma: [Double]? = nil, beta: [Double]? = nil,
                                       eps: Double) throws -> TrainingForwardResult {
        try checkEps(eps)
        try checkParameter(gamma, "gamma", shape); try checkParameter(beta, "beta", shape)
        let ms = try moments(x, shape: shape, layout: layout)
        let mean = ms.map(\.mean), variance = ms.map(\.biasedVariance)
        var inv = [Double](repeating: 0, count: shape.channels)
        var y = [Double](repeating: 0, count: x.count)
        // Channels are independent: each writes its own elements of y and its own inv[c].
        inv.withUnsafeMutableBufferPointer { inv in y.withUnsafeMutableBufferPointer { y in
            forEachChannel(shape.channels, elements: x.count) { c in
                let g = gamma?[c] ?? 1, b = beta?[c] ?? 0, segs = layout.segments(channel: c, shape: shape)
                if let e = ms[c].exact, g.isFinite, b.isFinite {
                    let v = e.m2 / Rational(e.count) + Rational(eps)
                    if v.signum > 0 {
                        inv[c] = Rational.roundedSurd(.one, plus: .zero, over: v)
                        let a = ExactAffine(mean: e.mean, meanEnclosure: e.meanEnclosure, radicand: v, gamma: g, beta: b)
                        forEachIndex(segs) { i in y[i] = a.y(x[i]) }
                        return
                    }
                }
                inv[c] = inverseStd(variance: variance[c], eps: eps)
                normalizeIEEE(x, segs, mean: mean[c], scale: inv[c], gamma: g, beta: b, into: y)
            }
        }}
        return TrainingForwardResult(y: y, moments: ms, mean: mean, variance: variance, invStd: inv)
    }

    /// Inference-mode forward: normalise with given (running) statistics,
    /// y = γ·(x − μ_R)/√(σ²_R + ε) + β correctly rounded from the given values.
    /// A channel whose μ_R, σ²_R, γ or β is not finite, or whose σ²_R + ε ≤ 0, and any
    /// non-finite x, follow §4 (IEEE).
    public static func inferenceForward(_ x: [Double], shape: Shape, layout: Layout,
                                        mean: [Double], variance: [Double],
                                        gamma: [Double]? = nil, beta: [Double]? = nil,
                                        eps: Double) throws -> [Double] {
        try check(x.count, shape, layout)
        try checkEps(eps)
        try checkParameter(mean, "running mean", shape); try checkParameter(variance, "running variance", shape)
        try checkParameter(gamma, "gamma", shape); try checkParameter(beta, "beta", shape)
        var y = [Double](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let g = gamma?[c] ?? 1, b = beta?[c] ?? 0, segs = layout.segments(channel: c, shape: shape)
            let inv = inverseStd(variance: variance[c], eps: eps)
            if let a = exactAffine(mean: mean[c], variance: variance[c], eps: eps, gamma: g, beta: b) {
                forEachIndex(segs) { i in
                    y[i] = x[i].isFinite ? a.y(x[i]) : (g * xhat(x[i], mean[c], inv)) + b
                }
            } else {
                normalizeIEEE(x, segs, mean: mean[c], scale: inv, gamma: g, beta: b, into: &y)
            }
        }
        return y
    }

    /// The exact constants of given statistics, or nil when §4's IEEE path applies.
    static func exactAffine(mean m: Double, variance v: Double, eps: Double, gamma g: Double, beta b: Double) -> ExactAffine? {
        guard m.isFinite, v.isFinite, g.isFinite, b.isFinite else { return nil }
        let radicand = Rational(v) + Rational(eps)
        guard radicand.signum > 0 else { return nil }
        return ExactAffine(mean: Rational(m), meanEnclosure: Enclosure(m), radicand: radicand, gamma: g, beta: b)
    }

    static func checkEps(_ eps: Double) throws {
        guard eps >= 0, eps.isFinite else { throw BNError.invalidArgument("eps \(eps) must be finite and ≥ 0") }
    }
}

/// Counts exact re-evaluations (see ``Reference/exactFallbacks``); safe to share
/// between the tasks that inherit the binding.
public final class FallbackCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    public init() {}
    public var count: Int { lock.withLock { value } }
    package func increment() { lock.withLock { value += 1 } }
}
