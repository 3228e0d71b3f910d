import BigInt

/// The exact oracle over BN's *outputs* (spec §2), written from the spec alone: exact
/// rationals from the inputs' Double values, one square root kept symbolic, and a
/// proof-level decision of which Double is nearest.
///
/// Independence from the reference: no floating-point operation and no code of the
/// reference (no ``ChannelMoments``, ``LongAccumulator``, ``Rational``, ``Enclosure``,
/// and not ``ExactOracle/round(_:_:exponent:)`` either). M2 is Σ(x − μ)² term by term
/// (the reference forms Σx² − (Σx)²/n); the rounding is checked by comparing the exact
/// value with the two midpoints around a candidate Double (the reference encloses 1/√V
/// with integer square roots).
extension ExactOracle {
    /// A rational `num / den · 2^exponent` (den > 0): the exponent keeps powers of two out
    /// of the integers, so Doubles and their sums stay small.
    public struct Fraction: Sendable, CustomStringConvertible {
        public var num: BigInt
        public var den: BigInt
        public var exponent: Int

        public init(_ num: BigInt, den: BigInt = 1, exponent: Int = 0) {
            precondition(!den.isZero && den.sign == .plus)  // den > 0, without making a BigInt 0 to compare with
            self.num = num; self.den = den; self.exponent = exponent
        }
        /// The exact value of a finite Double.
        public init(_ x: Double) {
            let (m, e) = ExactOracle.decompose(x)
            self.init(BigInt(m), exponent: e)
        }
        public init(_ n: Int) { self.init(BigInt(n)) }

        public static let zero = Fraction(0), one = Fraction(1)
        public var sign: Int { num.isZero ? 0 : (num.sign == .minus ? -1 : 1) }
        public var description: String { "\(num)/\(den)·2^\(exponent)" }

        public static func * (a: Fraction, b: Fraction) -> Fraction {
            Fraction(a.num * b.num, den: a.den * b.den, exponent: a.exponent + b.exponent)
        }
        public static func / (a: Fraction, b: Fraction) -> Fraction {
            precondition(b.sign != 0)
            return Fraction(a.num * b.den * BigInt(b.sign), den: a.den * b.num.magnitude.asBigInt,
                            exponent: a.exponent - b.exponent)
        }
        public static prefix func - (a: Fraction) -> Fraction { Fraction(-a.num, den: a.den, exponent: a.exponent) }
        public static func + (a: Fraction, b: Fraction) -> Fraction {
            if a.sign == 0 { return b }
            if b.sign == 0 { return a }
            let e = Swift.min(a.exponent, b.exponent)
            let an = a.num << (a.exponent - e), bn = b.num << (b.exponent - e)
            if a.den == b.den { return Fraction(an + bn, den: a.den, exponent: e) }
            return Fraction(an * b.den + bn * a.den, den: a.den * b.den, exponent: e)
        }
        public static func - (a: Fraction, b: Fraction) -> Fraction { a + (-b) }

        /// sign(a·2^ea − b·2^eb) for integers a, b ≥ 0.
        static func compare(_ a: BigInt, _ ea: Int, _ b: BigInt, _ eb: Int) -> Int {
            if a.isZero || b.isZero { return a.isZero ? (b.isZero ? 0 : -1) : 1 }
            // Bit lengths decide unless the leading bits are at the same place.
            let la = a.magnitude.bitWidth + ea, lb = b.magnitude.bitWidth + eb
            if la != lb { return la > lb ? 1 : -1 }
            let e = Swift.min(ea, eb)
            let x = a << (ea - e), y = b << (eb - e)
            return x == y ? 0 : (x > y ? 1 : -1)
        }
    }

    /// The real number β + c/√v with rationals β, c and v > 0 (c = 0 for a rational).
    public struct Real: Sendable, CustomStringConvertible {
        public var rational: Fraction
        public var coefficient: Fraction
        public var radicand: Fraction

        public init(_ beta: Fraction, plus c: Fraction = .zero, overSquareRootOf v: Fraction = .one) {
            precondition(v.sign > 0)
            rational = beta; coefficient = c; radicand = v
        }
        public var description: String { "\(rational) + (\(coefficient))/√(\(radicand))" }

        /// sign(self − m), exactly.
        public func compare(to m: Fraction) -> Int { Comparison(self).sign(minus: m) }
    }

    /// sign(β + c/√v − m) for one real and many m: the factors of the squared comparison that
    /// do not depend on m are multiplied once.
    struct Comparison {
        let real: Real
        let sc: Int
        /// c²·v.den and v.num·c.den² (integers; their powers of two are in the exponents).
        let c2v: BigInt, vc2: BigInt

        init(_ r: Real) {
            real = r; sc = r.coefficient.sign
            let c = r.coefficient, v = r.radicand
            c2v = sc == 0 ? 0 : c.num * c.num * v.den
            vc2 = sc == 0 ? 0 : v.num * c.den * c.den
        }

        func sign(minus m: Fraction) -> Int {
            let k = m - real.rational           // self − m = c/√v − k
            let sk = k.sign
            if sc >= 0 && sk <= 0 { return sc == 0 && sk == 0 ? 0 : 1 }
            if sc <= 0 && sk >= 0 { return -1 }
            // Same signs: |c|/√v vs |k|  ⟺  c²·v.den·k.den² vs k²·v.num·c.den² (with the powers of two).
            let kd2 = k.den * k.den
            let lhs = c2v * kd2
            let rhs = k.num * k.num * vc2
            let s = Fraction.compare(lhs, 2 * real.coefficient.exponent, rhs, 2 * k.exponent + real.radicand.exponent)
            return sc > 0 ? s : -s
        }
    }

    // MARK: Which Double is nearest

    static let overflowThreshold = Fraction(BigInt(1) << 1024) - Fraction(BigInt(1) << 970)

    /// Whether `d` is the nearest Double to `v` (ties to even; ±Inf beyond the overflow
    /// threshold 2^1024 − 2^970; an exact zero is +0, a tiny negative value −0).
    public static func isNearest(_ d: Double, to v: Real) -> Bool {
        if d.isNaN { return false }
        if d.isInfinite {
            let s = v.compare(to: d > 0 ? overflowThreshold : -overflowThreshold)
            return d > 0 ? s >= 0 : s <= 0
        }
        if d == 0 {
            let half = Fraction(1, exponent: -1075)
            if d.sign == .plus { return v.compare(to: .zero) >= 0 && v.compare(to: half) <= 0 }
            return v.compare(to: .zero) < 0 && v.compare(to: -half) >= 0
        }
        let even = d.significandBitPattern & 1 == 0
        let below = midpoint(d, d.nextDown), above = midpoint(d, d.nextUp)
        let cmp = Comparison(v)
        let a = cmp.sign(minus: above), b = cmp.sign(minus: below)
        return (a < 0 || (a == 0 && even)) && (b > 0 || (b == 0 && even))
    }

    /// (a + b)/2 exactly, with ±Inf standing for ±2^1024.
    static func midpoint(_ a: Double, _ b: Double) -> Fraction {
        func exact(_ x: Double) -> Fraction {
            x.isInfinite ? Fraction(x > 0 ? BigInt(1) << 1024 : -(BigInt(1) << 1024)) : Fraction(x)
        }
        var m = exact(a) + exact(b)
        m.exponent -= 1
        return m
    }

    /// The nearest Double to `v`, found by bisection over the ordered Doubles with exact
    /// comparisons (for reports; ``isNearest(_:to:)`` is the check).
    public static func nearest(_ v: Real) -> Double {
        if v.compare(to: overflowThreshold) >= 0 { return .infinity }
        if v.compare(to: -overflowThreshold) <= 0 { return -.infinity }
        // Order key: Doubles in increasing order ↔ Int64 keys in increasing order (±0 share 0).
        func double(_ key: Int64) -> Double {
            key >= 0 ? Double(bitPattern: UInt64(key)) : -Double(bitPattern: UInt64(-key))
        }
        var lo = -Int64(Double.greatestFiniteMagnitude.bitPattern), hi = Int64(Double.greatestFiniteMagnitude.bitPattern)
        // Largest key whose Double is ≤ v (v ≥ −max here, up to a rounding to −max).
        if v.compare(to: Fraction(double(lo))) < 0 { return -.greatestFiniteMagnitude }
        while lo < hi {
            let mid = lo &+ Int64(bitPattern: (UInt64(bitPattern: hi &- lo) + 1) / 2)  // no Int64 overflow
            if v.compare(to: Fraction(double(mid))) >= 0 { lo = mid } else { hi = mid - 1 }
        }
        for d in [double(lo), double(lo).nextUp, double(lo).nextDown, -double(lo)] where isNearest(d, to: v) { return d }
        return double(lo) == 0 ? -0.0 : double(lo)
    }
}

extension BigUInt {
    var asBigInt: BigInt { BigInt(sign: .plus, magnitude: self) }
}

// MARK: Spec §2, exactly

extension ExactOracle {
    /// One channel's exact statistics: μ = Σx/n and M2 = Σ(x − μ)² (term by term).
    public struct ChannelStatistics: Sendable {
        public var count: Int
        public var mean: Fraction
        public var m2: Fraction

        /// Precondition: all values finite, at least one.
        public init(_ values: [Double]) {
            precondition(!values.isEmpty && values.allSatisfy(\.isFinite))
            count = values.count
            let xs = values.map(Fraction.init)
            let sum = xs.reduce(Fraction.zero, +)
            mean = sum / Fraction(count)
            // Σ(x − μ)² = Σ(n·x − Σx)² / n²: integers until the one division.
            var acc = Fraction.zero
            let nf = Fraction(count)
            for x in xs { let d = nf * x - sum; acc = acc + d * d }
            m2 = acc / (nf * nf)
        }
        /// σ² = M2/n.
        public var biasedVariance: Fraction { m2 / Fraction(count) }
        /// s² = M2/(n − 1); nil for n = 1.
        public var unbiasedVariance: Fraction? { count > 1 ? m2 / Fraction(count - 1) : nil }
    }

    /// yᵢ = γ·(xᵢ − μ)/√v + β with v = σ² + ε (training) or σ²_R + ε (inference).
    public static func normalized(_ x: Double, mean: Fraction, radicand v: Fraction, gamma: Double, beta: Double) -> Real {
        Real(Fraction(beta), plus: Fraction(gamma) * (Fraction(x) - mean), overSquareRootOf: v)
    }

    /// R' = (1 − w)·R + w·b.
    public static func runningUpdate(_ r: Double, batch b: Fraction, weight w: Fraction) -> Real {
        Real((Fraction.one - w) * Fraction(r) + w * b)
    }

    /// The training backward of one channel (spec §2): dβ = Σdy, dγ = Σdy·x̂,
    /// dxᵢ = γ·r·(dyᵢ − dβ/n − x̂ᵢ·dγ/n) with x̂ = (x − μ)·r, r = 1/√v, exact μ.
    /// With G = Σdy·(x − μ): dγ = G/√v and x̂ᵢ·dγ/n = (xᵢ − μ)·G/(n·v).
    public static func trainingBackward(x: [Double], dy: [Double], mean: Fraction, radicand v: Fraction,
                                        gamma: Double) -> (dx: [Real], dGamma: Real, dBeta: Real) {
        let (sdy, g) = gradientSums(x: x, dy: dy, mean: mean)
        let n = Fraction(x.count), gf = Fraction(gamma)
        let a = sdy / n, b = g / (n * v)
        let dx = zip(x, dy).map { xi, di in
            Real(.zero, plus: gf * (Fraction(di) - a - (Fraction(xi) - mean) * b), overSquareRootOf: v)
        }
        return (dx, Real(.zero, plus: g, overSquareRootOf: v), Real(sdy))
    }

    /// The inference backward of one channel: dx = γ·dy/√v, dγ = Σdy·(x − μ)/√v, dβ = Σdy.
    public static func inferenceBackward(x: [Double], dy: [Double], mean: Fraction, radicand v: Fraction,
                                         gamma: Double) -> (dx: [Real], dGamma: Real, dBeta: Real) {
        let (sdy, g) = gradientSums(x: x, dy: dy, mean: mean)
        let dx = dy.map { Real(.zero, plus: Fraction(gamma) * Fraction($0), overSquareRootOf: v) }
        return (dx, Real(.zero, plus: g, overSquareRootOf: v), Real(sdy))
    }

    /// Σvalues, exactly.
    public static func sum(_ values: [Double]) -> Fraction { values.map(Fraction.init).reduce(.zero, +) }

    /// (Σdy, Σdy·(x − μ)).
    static func gradientSums(x: [Double], dy: [Double], mean: Fraction) -> (Fraction, Fraction) {
        var sdy = Fraction.zero, sdyx = Fraction.zero
        for (xi, di) in zip(x, dy) {
            let d = Fraction(di)
            sdy = sdy + d
            sdyx = sdyx + d * Fraction(xi)
        }
        return (sdy, sdyx - mean * sdy)
    }
}
