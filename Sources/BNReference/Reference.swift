import BNCore
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
/// (spec/SPEC.md §2). Every function is deterministic: the same inputs give
/// the same bits on any IEEE-754 machine with a correctly rounded sqrt and FMA.
public enum Reference {
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
        return x.withUnsafeBufferPointer { buf in
            (0..<shape.channels).map { c in
                ChannelMoments.compute(buf, segments: layout.segments(channel: c, shape: shape))
            }
        }
    }

    /// 1/sqrt(v + eps), the saved inverse standard deviation. eps = 0 with v = 0 gives +Inf.
    @inlinable public static func inverseStd(variance v: Double, eps: Double) -> Double {
        1 / (v + eps).squareRoot()
    }

    /// Applies y = γ·(x − μ)·s + β per channel, with x − μ taken exactly (TwoSum)
    /// so that the only roundings are those of s and of the final products:
    /// |y − exact| ≲ 2 ulp(|γ·x̂|) + ulp(|y|) for finite data.
    /// s = +Inf with x = μ gives NaN (0·Inf), the defined outcome of eps = 0, var = 0.
    static func normalize(_ x: [Double], shape: Shape, layout: Layout, mean: [Double], scale s: [Double],
                          gamma: [Double]?, beta: [Double]?) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let g = gamma?[c] ?? 1, b = beta?[c] ?? 0, m = mean[c], sc = s[c]
            for seg in layout.segments(channel: c, shape: shape) {
                var i = seg.offset
                for _ in 0..<seg.count {
                    y[i] = (g * xhat(x[i], m, sc)) + b
                    i += seg.stride
                }
            }
        }
        return y
    }

    /// Training-mode forward: normalise with the batch's own mean and biased variance.
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
        let inv = variance.map { inverseStd(variance: $0, eps: eps) }
        let y = normalize(x, shape: shape, layout: layout, mean: mean, scale: inv, gamma: gamma, beta: beta)
        return TrainingForwardResult(y: y, moments: ms, mean: mean, variance: variance, invStd: inv)
    }

    /// Inference-mode forward: normalise with given (running) statistics.
    public static func inferenceForward(_ x: [Double], shape: Shape, layout: Layout,
                                        mean: [Double], variance: [Double],
                                        gamma: [Double]? = nil, beta: [Double]? = nil,
                                        eps: Double) throws -> [Double] {
        try check(x.count, shape, layout)
        try checkEps(eps)
        try checkParameter(mean, "running mean", shape); try checkParameter(variance, "running variance", shape)
        try checkParameter(gamma, "gamma", shape); try checkParameter(beta, "beta", shape)
        let inv = variance.map { inverseStd(variance: $0, eps: eps) }
        return normalize(x, shape: shape, layout: layout, mean: mean, scale: inv, gamma: gamma, beta: beta)
    }

    static func checkEps(_ eps: Double) throws {
        guard eps >= 0, eps.isFinite else { throw BNError.invalidArgument("eps \(eps) must be finite and ≥ 0") }
    }
}
