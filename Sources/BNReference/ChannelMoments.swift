import BNCore
import RealModule

/// The first two moments of one channel: count n, mean μ and the sum of squared
/// deviations M2 = Σ(x − μ)², from which every variance BN needs follows.
///
/// Numerical contract (``compute(_:segments:)``), for finite inputs:
/// - `mean` is Σx / n with the sum accumulated *exactly* (``ExactSum``) and one
///   double-double division: |mean − exact| ≤ 0.5 ulp + 2⁻¹⁰⁴·|mean| — correctly
///   rounded except in near-tie cases, never more than 1 ulp away.
/// - `m2` is Σ(x − μ_exact)²: each x − μ is taken exactly (TwoSum), squared exactly
///   (TwoProduct), summed in double-double, and corrected by (Σ(x − μ))²/n for the
///   difference between the rounded and the exact mean. Relative error ≤ 2⁻⁵³ + n·2⁻¹⁰⁴.
/// - `biasedVariance` = M2/n and `unbiasedVariance` = M2/(n − 1) are each rounded once
///   from the double-double M2: within 1 ulp of the exact rational value.
/// - Deviations are rescaled by a power of two before squaring, so squares that
///   would overflow or underflow do not: a variance is Inf only when the exact
///   variance exceeds Double.greatestFiniteMagnitude, and a subnormal variance may
///   carry one extra rounding (still within 1 ulp).
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
    /// Σ(x − mean)² = `scaledM2` × 2^`m2Exponent`, kept scaled so that variances
    /// are rounded once, after the division, even when M2 itself would under- or overflow.
    public var scaledM2: DoubleDouble
    public var m2Exponent: Int

    /// Σ(x − mean)², rounded to Double.
    public var m2: Double { Self.scale(scaledM2, m2Exponent) }
    /// M2 / n — the variance BN normalises with.
    public var biasedVariance: Double { Self.scale(scaledM2.divided(by: Double(count)), m2Exponent) }
    /// M2 / (n − 1); NaN for n = 1.
    public var unbiasedVariance: Double {
        count > 1 ? Self.scale(scaledM2.divided(by: Double(count - 1)), m2Exponent) : .nan
    }
    public func variance(_ e: VarianceEstimator) -> Double {
        e == .biased ? biasedVariance : unbiasedVariance
    }

    public init(count: Int, mean: Double, scaledM2: DoubleDouble, m2Exponent: Int = 0) {
        self.count = count; self.mean = mean; self.scaledM2 = scaledM2; self.m2Exponent = m2Exponent
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
        func each(_ body: (Double) -> Void) {
            for seg in segments {
                var i = seg.offset
                for _ in 0..<seg.count { body(data[i]); i += seg.stride }
            }
        }
        let n = segments.reduce(0) { $0 + $1.count }
        precondition(n > 0, "ChannelMoments.compute needs at least one value")

        // Pass 1: exact sum, extremes, and a check for non-finite values.
        var sum = ExactSum()
        var lo = Double.infinity, hi = -Double.infinity, naive = 0.0
        var allFinite = true
        each { x in
            if x.isFinite { sum.add(x) } else { allFinite = false }
            naive += x
            lo = Swift.min(lo, x); hi = Swift.max(hi, x)
        }
        guard allFinite else {
            // NaN/Inf propagate the way IEEE arithmetic does.
            return ChannelMoments(count: n, mean: naive / Double(n), scaledM2: DoubleDouble(.nan, 0))
        }
        let maxAbs = Swift.max(-lo, hi)
        // Guard against overflow of partial sums or of x − μ: scale by a power of two.
        let headroom = 1020 - (Double(n).exponent + 2)
        if maxAbs.exponent > headroom || !sum.isFinite {
            let shift = Int(maxAbs.exponent) - Int(headroom)
            let down = Double(sign: .plus, exponent: -shift, significand: 1)
            var values: [Double] = []; values.reserveCapacity(n)
            each { values.append($0 * down) }
            let m = values.withUnsafeBufferPointer {
                compute($0, segments: [ChannelSegment(offset: 0, stride: 1, count: n)])
            }
            let up = Double(sign: .plus, exponent: shift, significand: 1)
            return ChannelMoments(count: n, mean: m.mean * up, scaledM2: m.scaledM2, m2Exponent: m.m2Exponent + 2 * shift)
        }
        let mean = sum.doubleDouble.divided(by: Double(n)).value

        // Pass 2: exact deviations d = x − mean = dh + dl, scaled by 2^-e so the
        // largest |d| lies in [1, 2); squares summed in double-double.
        let maxDev = Swift.max(hi - mean, mean - lo)
        guard maxDev > 0 else { return ChannelMoments(count: n, mean: mean, scaledM2: DoubleDouble(0, 0)) }
        let e = Int(maxDev.exponent)
        let s = Double(sign: .plus, exponent: -e, significand: 1)
        var residual = ExactSum()      // Σ(x − mean), exactly (unscaled)
        var sq = 0.0, sqErr = 0.0
        each { x in
            let (dh, dl) = Augmented.sum(x, -mean)
            residual.add(dh); residual.add(dl)
            let a = dh * s, b = dl * s
            let (p, pe) = Augmented.product(a, a)
            let (t, te) = Augmented.sum(sq, p)
            sq = t
            sqErr += te + pe + (2 * a * b + b * b)
        }
        // Correction for the rounded mean: Σ(x − μ*)² = Σ(x − mean)² − (Σ(x − mean))²/n.
        let r = residual.doubleDouble.scaled(by: s)
        let (rr, rre) = Augmented.product(r.head, r.head)
        let corr = DoubleDouble(rr, rre + 2 * r.head * r.tail).divided(by: Double(n))
        let m2s = DoubleDouble(sq, sqErr) - corr
        return ChannelMoments(count: n, mean: mean, scaledM2: m2s, m2Exponent: 2 * e)
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
