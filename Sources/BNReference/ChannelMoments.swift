import BigInt
import BNCore
import RealModule

/// The first two moments of one channel: count n, mean μ and the sum of squared
/// deviations M2 = Σ(x − μ)², from which every variance BN needs follows.
///
/// Numerical contract (``compute(_:segments:)``), for finite inputs:
/// - Σx and Σx² are accumulated *exactly* (``LongAccumulator``: no rounding at any
///   magnitude, subnormal to near overflow), so μ = Σx/n and M2 = Σx² − (Σx)²/n are exact
///   rationals (``exact``).
/// - `mean`, `biasedVariance` = M2/n and `unbiasedVariance` = M2/(n − 1) are each the
///   correctly rounded Double (nearest, ties to even; ±Inf beyond the largest finite
///   Double; the subnormal grid below 2⁻¹⁰²²) of that exact value.
/// - `scaledM2`·2^`m2Exponent` holds M2's leading 106 bits (truncated).
///
/// Moments built with ``init(count:mean:scaledM2:m2Exponent:)`` (e.g. by ``merge(_:)``)
/// carry no exact values; their variances are rounded from the double-double M2
/// (within 1 ulp).
///
/// Edge cases:
/// - n = 0 is not representable here: the caller reports ``BNError/emptyChannel(channel:)``.
/// - n = 1: mean = x, M2 = 0, biased variance 0, unbiased variance NaN (0/0); the
///   profile decides what to do with it (``SingleValuePolicy``).
/// - Any NaN input gives NaN mean and variances. Any ±Inf input gives the IEEE sum's
///   mean (±Inf, or NaN for mixed signs) and NaN variances (Inf − Inf).
public struct ChannelMoments: Sendable, Equatable {
    public var count: Int
    public var mean: Double
    /// Σ(x − mean)² = `scaledM2` × 2^`m2Exponent`, kept scaled so that it neither
    /// under- nor overflows.
    public var scaledM2: DoubleDouble
    public var m2Exponent: Int
    /// The exact statistics, when computed from the data (nil after `merge`).
    var exact: ExactMoments?

    /// Σ(x − mean)², rounded to Double.
    public var m2: Double { exact?.m2.rounded() ?? Self.scale(scaledM2, m2Exponent) }
    /// M2 / n — the variance BN normalises with.
    public var biasedVariance: Double {
        exact?.biasedVariance ?? Self.scale(scaledM2.divided(by: Double(count)), m2Exponent)
    }
    /// M2 / (n − 1); NaN for n = 1.
    public var unbiasedVariance: Double {
        if let e = exact { return e.unbiasedVariance }
        return count > 1 ? Self.scale(scaledM2.divided(by: Double(count - 1)), m2Exponent) : .nan
    }
    public func variance(_ e: VarianceEstimator) -> Double {
        e == .biased ? biasedVariance : unbiasedVariance
    }

    public init(count: Int, mean: Double, scaledM2: DoubleDouble, m2Exponent: Int = 0) {
        self.count = count; self.mean = mean; self.scaledM2 = scaledM2; self.m2Exponent = m2Exponent
    }

    init(exact e: ExactMoments) {
        self.init(count: e.count, mean: e.mean.rounded(), scaledM2: DoubleDouble(0, 0))
        (scaledM2, m2Exponent) = e.leadingBitsOfM2
        exact = e
    }

    /// (head + tail)·2^k rounded once (scalbn of the renormalised head): exact when the
    /// result is normal, ±Inf on overflow, and within 1 ulp in the subnormal range.
    static func scale(_ v: DoubleDouble, _ k: Int) -> Double {
        if k == 0 || !v.head.isFinite || v.head == 0 { return v.value }
        return Double(sign: .plus, exponent: k, significand: v.head)
    }

    /// Moments of the values of `data` in `segments` (GSL-style strided runs).
    /// Precondition: the segments hold at least one value and lie inside `data`.
    public static func compute(_ data: UnsafeBufferPointer<Double>, segments: [ChannelSegment]) -> ChannelMoments {
        let n = segments.reduce(0) { $0 + $1.count }
        precondition(n > 0, "ChannelMoments.compute needs at least one value")
        let sums = LongAccumulator(.sums), squares = LongAccumulator(.products)
        var allFinite = true
        for seg in segments {
            var i = seg.offset
            for _ in 0..<seg.count {
                let x = data[i]
                if x.isFinite { sums.add(x); squares.addProduct(x, x) } else { allFinite = false }
                i += seg.stride
            }
        }
        guard allFinite else {
            // NaN/Inf propagate the way IEEE arithmetic does.
            var naive = 0.0
            for seg in segments {
                var i = seg.offset
                for _ in 0..<seg.count { naive += data[i]; i += seg.stride }
            }
            return ChannelMoments(count: n, mean: naive / Double(n), scaledM2: DoubleDouble(.nan, 0))
        }
        return ChannelMoments(exact: ExactMoments(count: n, sum: sums.rational, sumOfSquares: squares.rational))
    }
}

/// A channel's exact statistics: μ = Σx/n and M2 = Σx² − (Σx)²/n as rationals, the
/// correctly rounded variances, and μ's enclosure for the certified fast path.
struct ExactMoments: Sendable, Equatable {
    var count: Int
    var mean: Rational
    var m2: Rational
    var meanEnclosure: Enclosure
    var biasedVariance: Double
    var unbiasedVariance: Double

    /// Equal when the exact statistics are (the rest follows from them).
    static func == (a: ExactMoments, b: ExactMoments) -> Bool {
        a.count == b.count && a.mean == b.mean && a.m2 == b.m2
    }

    init(count n: Int, sum: Rational, sumOfSquares: Rational) {
        count = n
        mean = sum / Rational(n)
        m2 = sumOfSquares - sum * mean
        meanEnclosure = Enclosure(mean)
        biasedVariance = (m2 / Rational(n)).rounded()
        unbiasedVariance = n > 1 ? (m2 / Rational(n - 1)).rounded() : .nan
    }

    /// M2's leading 106 bits as an exact double-double, and the scale: M2 ≈ dd·2^k.
    var leadingBitsOfM2: (DoubleDouble, Int) {
        if m2.isZero { return (DoubleDouble(0, 0), 0) }
        let (n, e, _) = m2.leadingBits(106)
        let hi = Double(UInt64(n >> 53)) * 0x1p53, lo = Double(UInt64(n & ((BigUInt(1) << 53) - 1)))
        return (DoubleDouble(hi, lo), e)
    }
}

extension ChannelMoments {
    /// Merges the moments of K disjoint parts of a channel (synchronized BN across
    /// devices) with the pairwise formula of Chan, Golub & LeVeque, generalised to K
    /// parts:
    ///
    ///     n  = Σ nᵢ,   μ = Σ nᵢ·μᵢ / n,   M2 = Σ M2ᵢ + Σ nᵢ·(μᵢ − μ)²
    ///
    /// evaluated without rounding error before the final roundings: nᵢ·μᵢ, the
    /// deviations μᵢ − μ and their squares are error-free transforms summed exactly
    /// (``ExactSum``), and the rounding of μ is corrected for (− n·(μ* − μ)²).
    ///
    /// Contract: given the parts' (nᵢ, μᵢ, M2ᵢ) exactly, the result's mean and M2 are
    /// within 1 ulp of the exact merge. Relative to the statistics of the whole batch,
    /// the parts' own rounding adds |δμ| ≤ ½ ulp(max μᵢ) and
    /// |δM2| ≤ Σ ½ ulp(M2ᵢ) + Σ 2·nᵢ·|μᵢ − μ|·½ ulp(μᵢ) — negligible for centred data,
    /// and the limit of any (n, μ, M2) exchange for data with a large offset (spec §11.4).
    /// Merging raw Σx and Σx² instead loses ≈ (μ/σ)²·n·2⁻⁵³ relative in the variance.
    /// - Precondition: `parts` is not empty; every part has count ≥ 1 and finite values.
    public static func merge(_ parts: [ChannelMoments]) -> ChannelMoments {
        let n = parts.reduce(0) { $0 + $1.count }
        let nd = Double(n)
        var total = ExactSum()
        for p in parts { addProduct(&total, Double(p.count), p.mean) }
        let mean = total.doubleDouble.divided(by: nd).value
        var residual = total              // Σ nᵢμᵢ − n·μ = n·(μ* − μ), exactly
        addProduct(&residual, -nd, mean)
        let r = residual.doubleDouble.value
        var m2 = ExactSum()
        for p in parts {
            m2.add(p.m2)
            // d = μᵢ − μ as hi + lo (TwoSum), nᵢ·d² ≈ nᵢ·(hi² + 2·hi·lo) with exact products.
            let hi = p.mean - mean
            let bb = hi - p.mean
            let lo = (p.mean - (hi - bb)) + (-mean - bb)
            let c = Double(p.count)
            let sq = hi * hi, sqErr = (-sq).addingProduct(hi, hi)
            addProduct(&m2, c, sq)
            addProduct(&m2, c, sqErr)
            addProduct(&m2, c, 2 * hi * lo)
        }
        m2.add(-(r * r) / nd)
        return ChannelMoments(count: n, mean: mean, scaledM2: m2.doubleDouble)
    }

    /// Adds a·b exactly (TwoProduct with FMA).
    static func addProduct(_ s: inout ExactSum, _ a: Double, _ b: Double) {
        let p = a * b
        s.add(p)
        s.add((-p).addingProduct(a, b))
    }
}
