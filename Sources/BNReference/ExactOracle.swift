import BigInt

/// The exact rational statistics of a list of finite Doubles, rounded once.
///
/// Every finite Double is a dyadic rational m·2^e, so Σx, Σx² and hence the mean
/// Σx/n and M2 = Σx² − (Σx)²/n are exact rationals. This oracle computes them with
/// arbitrary-precision integers (attaswift/BigInt) — no floating-point operation
/// touches the data — and rounds each result to the nearest Double (ties to even),
/// including the subnormal range and overflow to ±Inf.
///
/// It is independent of ``ChannelMoments`` by construction (no shared code, no
/// floating-point arithmetic) and serves as its third check beside GSL and NIST.
/// Cost: O(n) multiplications of integers of (exponent spread + 53) bits.
public enum ExactOracle {
    public struct Statistics: Equatable, Sendable {
        public var mean: Double
        public var biasedVariance: Double
        /// NaN for n = 1.
        public var unbiasedVariance: Double
    }

    /// Exact statistics of `values`. Precondition: all values finite, at least one.
    public static func statistics(_ values: [Double]) -> Statistics {
        precondition(!values.isEmpty && values.allSatisfy(\.isFinite))
        let parts = values.map(decompose)
        // Common denominator 2^L with L = −(smallest exponent).
        let minExp = parts.filter { $0.0 != 0 }.map(\.1).min() ?? 0
        var s1 = BigInt(0), s2 = BigInt(0)
        for (m, e) in parts where m != 0 {
            let v = BigInt(m) << (e - minExp)
            s1 += v
            s2 += v * v
        }
        let n = BigInt(values.count)
        // mean = s1 / (n·2^L);  M2·2^(2L) = s2 − s1²/n = (n·s2 − s1²)/n
        let mean = round(s1, n, exponent: minExp)
        let num = n * s2 - s1 * s1
        let biased = round(num, n * n, exponent: 2 * minExp)
        let unbiased = values.count > 1 ? round(num, n * (n - 1), exponent: 2 * minExp) : .nan
        return Statistics(mean: mean, biasedVariance: biased, unbiasedVariance: unbiased)
    }

    /// (m, e) with x = m·2^e exactly, m an integer with |m| < 2^53.
    static func decompose(_ x: Double) -> (Int64, Int) {
        if x == 0 { return (0, 0) }
        let bits = Int64(bitPattern: x.significandBitPattern)
        let biased = Int(x.exponentBitPattern)
        let m = biased == 0 ? bits : bits | (1 << 52)
        let e = (biased == 0 ? 1 : biased) - 1075
        return (x.sign == .minus ? -m : m, e)
    }

    /// The Double nearest to (p/q)·2^exponent, ties to even; q > 0.
    public static func round(_ p: BigInt, _ q: BigInt, exponent: Int) -> Double {
        precondition(q > 0)
        if p == 0 { return 0 }
        let negative = p < 0
        let a = p.magnitude, b = q.magnitude
        // Choose s so that 2^52 ≤ a·2^s / b < 2^53 (normal case) …
        var s = 53 - (a.bitWidth - b.bitWidth)
        func quotient(_ s: Int) -> (BigUInt, BigUInt, BigUInt) {
            // returns (Q, R, D) with a·2^s = Q·D + R … expressed with D the effective divisor
            if s >= 0 { let (qq, r) = (a << s).quotientAndRemainder(dividingBy: b); return (qq, r, b) }
            let d = b << (-s)
            let (qq, r) = a.quotientAndRemainder(dividingBy: d)
            return (qq, r, d)
        }
        var (Q, R, D) = quotient(s)
        let two53 = BigUInt(1) << 53
        if Q >= two53 { s -= 1; (Q, R, D) = quotient(s) }
        // … but never finer than the subnormal grid: exponent − s ≥ −1074.
        if exponent - s < -1074 {
            s = exponent + 1074
            (Q, R, D) = quotient(s)
        }
        // Round half to even.
        let twiceR = R << 1
        if twiceR > D || (twiceR == D && Q & 1 == 1) { Q += 1 }
        if Q == 0 { return negative ? -0.0 : 0 }
        let m = Double(UInt64(Q))
        let v = Double(sign: negative ? .minus : .plus, exponent: exponent - s, significand: m)
        return v
    }
}
