import BigInt

/// An exact rational number `num / den` (den > 0) over arbitrary-precision integers.
///
/// The reference's exact arithmetic: the batch statistics, the running statistics and
/// the per-channel constants are computed with it, and any output element that the
/// certified double-double path (``Enclosure``) cannot round with certainty is
/// re-evaluated with it (``roundedSurd(_:plus:over:)``). No floating-point operation
/// touches a value; only the final rounding produces a Double.
package struct Rational: Sendable, Equatable {
    package var num: BigInt
    package var den: BigInt

    package init(_ num: BigInt, _ den: BigInt = 1) {
        precondition(den > 0)
        self.num = num; self.den = den
    }

    /// integer·2^exponent.
    package init(integer: BigInt, exponent: Int) {
        if exponent >= 0 { self.init(integer << exponent) } else { self.init(integer, BigInt(1) << -exponent) }
    }

    /// The exact value of a finite Double.
    package init(_ x: Double) {
        precondition(x.isFinite)
        if x == 0 { self.init(0); return }
        let biased = Int(x.exponentBitPattern)
        let frac = x.significandBitPattern
        let m = BigInt(biased == 0 ? frac : frac | (1 << 52))
        self.init(integer: x.sign == .minus ? -m : m, exponent: (biased == 0 ? 1 : biased) - 1075)
    }

    package init(_ n: Int) { self.init(BigInt(n)) }

    package static let zero = Rational(BigInt(0)), one = Rational(BigInt(1))

    package var isZero: Bool { num.isZero }
    package var signum: Int { num.isZero ? 0 : (num.sign == .minus ? -1 : 1) }

    package static func + (a: Rational, b: Rational) -> Rational {
        a.den == b.den ? Rational(a.num + b.num, a.den).reduced2 : Rational(a.num * b.den + b.num * a.den, a.den * b.den).reduced2
    }
    package static prefix func - (a: Rational) -> Rational { Rational(-a.num, a.den) }
    package static func - (a: Rational, b: Rational) -> Rational { a + (-b) }
    package static func * (a: Rational, b: Rational) -> Rational { Rational(a.num * b.num, a.den * b.den).reduced2 }
    package static func / (a: Rational, b: Rational) -> Rational {
        precondition(!b.isZero)
        let s: BigInt = b.num.sign == .minus ? -1 : 1
        return Rational(a.num * b.den * s, a.den * b.num * s).reduced2
    }

    /// Removes the common powers of two (cheap; keeps dyadic operands small).
    package var reduced2: Rational {
        if num.isZero { return Rational(0) }
        let z = Swift.min(num.magnitude.trailingZeroBitCount, den.magnitude.trailingZeroBitCount)
        return z == 0 ? self : Rational(num >> z, den >> z)
    }

    /// The nearest Double, ties to even (subnormals and overflow to ±Inf included).
    package func rounded() -> Double { ExactOracle.round(num, den, exponent: 0) }

    /// |self| truncated to its leading `bits` bits: (n, e, exact) with n < 2^bits,
    /// n·2^e ≤ |self| < (n + 1)·2^e, and `exact` when n·2^e = |self|. Precondition: self ≠ 0.
    package func leadingBits(_ bits: Int) -> (BigUInt, Int, exact: Bool) {
        let a = num.magnitude, b = den.magnitude
        let k = bits - (a.bitWidth - b.bitWidth)            // ⌊a·2^k / b⌋ has bits or bits + 1 bits
        var (n, rest) = k >= 0 ? (a << k).quotientAndRemainder(dividingBy: b) : a.quotientAndRemainder(dividingBy: b << -k)
        var e = -k
        if n.bitWidth > bits { if n[bitAt: 0] { rest = 1 }; n >>= 1; e += 1 }
        return (n, e, rest.isZero)
    }

    /// The nearest Double to β + c/√v (v > 0), ties to even.
    ///
    /// 1/√v is enclosed as ⌊2^k·√(q/p)⌋ = isqrt(⌊2^2k·q/p⌋) (v = p/q), so β + c/√v lies in
    /// a closed interval whose two ends are rationals; when both ends round to the same
    /// Double, rounding is monotonic and that Double is the answer. Otherwise k doubles.
    /// The loop ends: if 1/√v is irrational, β + c/√v is not a rounding boundary (those
    /// are rational) and the interval shrinks onto it; if it is rational (p and q perfect
    /// squares after reduction) the value is rounded exactly instead.
    package static func roundedSurd(_ c: Rational, plus beta: Rational, over v: Rational) -> Double {
        precondition(v.signum > 0)
        if c.isZero { return beta.rounded() }
        let g = v.num.magnitude.greatestCommonDivisor(with: v.den.magnitude)
        let p = v.num.magnitude / g, q = v.den.magnitude / g
        let sp = p.squareRoot(), sq = q.squareRoot()
        if sp * sp == p && sq * sq == q {
            return (beta + c * Rational(BigInt(sq), BigInt(sp))).rounded()
        }
        var bits = 128
        while true {
            let (root, k) = inverseSquareRootFloor(p: p, q: q, bits: bits)
            let lo = Rational(integer: BigInt(root), exponent: -k), hi = Rational(integer: BigInt(root + 1), exponent: -k)
            let a = (beta + c * lo).rounded(), b = (beta + c * hi).rounded()
            if a.bitPattern == b.bitPattern { return a }
            bits *= 2
        }
    }

    /// (R, k) with R = ⌊2^k·√(q/p)⌋ holding about `bits` bits.
    package static func inverseSquareRootFloor(p: BigUInt, q: BigUInt, bits: Int) -> (BigUInt, Int) {
        // √(q/p) ≈ 2^((bw(q) − bw(p))/2); choose k so that R ≈ 2^bits.
        let k = bits - (q.bitWidth - p.bitWidth) / 2
        let t = k >= 0 ? (q << (2 * k)) / p : q / (p << (-2 * k))
        return (t.squareRoot(), k)
    }
}
