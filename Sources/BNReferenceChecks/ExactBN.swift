import BigInt
import BNCore
import BNGolden
import BNReference

// An exact evaluator of BN and its derivatives (spec §12): forward-mode hyper-dual numbers over
// the field Q(1/√s₀), with BigInt rationals — independent of the reference's closed forms. The
// golden oracle (``GoldenOracle``) evaluates the higher-order golden cases with it; the
// higher-order tests check the reference's closed forms against it.

/// An exact rational num/den, den > 0. Reduced to lowest terms only when a part grows past
/// 192 bits (gcd dominates the cost of small rationals; the value never changes).
package struct BigRational {
    package var num: BigInt
    package var den: BigInt

    package init(_ num: BigInt, _ den: BigInt = 1) {
        precondition(den != 0)
        if num == 0 { self.num = 0; self.den = 1; return }
        var (p, q) = den < 0 ? (-num, -den) : (num, den)
        if p.bitWidth > 192 || q.bitWidth > 192 {
            let g = BigInt(p.magnitude.greatestCommonDivisor(with: q.magnitude))
            p /= g; q /= g
        }
        self.num = p; self.den = q
    }

    package var isZero: Bool { num == 0 }

    /// The exact value of a finite Double.
    package init(_ x: Double) {
        precondition(x.isFinite)
        if x == 0 { self.init(BigInt(0)); return }
        let bits = Int64(bitPattern: x.significandBitPattern)
        let biased = Int(x.exponentBitPattern)
        let m = BigInt(biased == 0 ? bits : bits | (1 << 52)) * (x.sign == .minus ? -1 : 1)
        let e = (biased == 0 ? 1 : biased) - 1075
        self = e >= 0 ? BigRational(m << e) : BigRational(m, BigInt(1) << -e)
    }

    package static let zero = BigRational(BigInt(0)), one = BigRational(BigInt(1))
    package static func + (a: BigRational, b: BigRational) -> BigRational { BigRational(a.num * b.den + b.num * a.den, a.den * b.den) }
    package static func - (a: BigRational, b: BigRational) -> BigRational { BigRational(a.num * b.den - b.num * a.den, a.den * b.den) }
    package static func * (a: BigRational, b: BigRational) -> BigRational { BigRational(a.num * b.num, a.den * b.den) }
    package static func / (a: BigRational, b: BigRational) -> BigRational { BigRational(a.num * b.den, a.den * b.num) }
    package static prefix func - (a: BigRational) -> BigRational { BigRational(-a.num, a.den) }
    package var double: Double { ExactOracle.round(num, den, exponent: 0) }
}

/// p + q·ρ in Q(ρ) with ρ = 1/√s₀ > 0 for a fixed positive rational s₀ (ρ² = 1/s₀).
package struct Surd {
    package var p: BigRational
    package var q: BigRational
    package static let zero = Surd(p: .zero, q: .zero)
    package init(p: BigRational, q: BigRational = .zero) { self.p = p; self.q = q }
    package init(_ r: BigRational) { self.init(p: r) }

    package static func + (a: Surd, b: Surd) -> Surd { Surd(p: a.p + b.p, q: a.q + b.q) }
    package static func - (a: Surd, b: Surd) -> Surd { Surd(p: a.p - b.p, q: a.q - b.q) }
    package static func * (a: Surd, b: BigRational) -> Surd { Surd(p: a.p * b, q: a.q * b) }
    /// (p₁ + q₁ρ)(p₂ + q₂ρ) = p₁p₂ + q₁q₂/s₀ + (p₁q₂ + q₁p₂)ρ.
    package static func mul(_ a: Surd, _ b: Surd, rhoSquared: BigRational) -> Surd {
        Surd(p: a.p * b.p + a.q * b.q * rhoSquared, q: a.p * b.q + a.q * b.p)
    }

    /// The nearest Double to p + q/√s₀ (from a 320-bit integer square root; round-to-nearest
    /// of that approximation, which is within 2⁻³⁰⁰ relative of q/√s₀).
    package func double(s0: BigRational) -> Double {
        if q.isZero { return p.double }
        let (n, d) = (s0.num, s0.den)          // 1/√s₀ = √(n·d)/n
        let k = 320
        let root = BigInt((n * d << (2 * k)).magnitude.squareRoot())
        let den = p.den * q.den * n << k
        let num = p.num * q.den * n << k + q.num * p.den * root
        return ExactOracle.round(num, den, exponent: 0)
    }
}

/// A hyper-dual number with k nilpotent units ε₁…ε_k (εᵢ² = 0): 2^k components indexed by
/// subsets (bit masks); component S of f(x + Σεᵢvᵢ) is the mixed derivative ∂^|S| f along {vᵢ : i ∈ S}.
package struct Jet {
    package var c: [Surd]
    package init(_ c: [Surd]) { self.c = c }
    package init(constant: Surd, units k: Int) { c = [constant] + Array(repeating: .zero, count: (1 << k) - 1) }

    package static func + (a: Jet, b: Jet) -> Jet { Jet(zip(a.c, b.c).map { $0 + $1 }) }
    package static func - (a: Jet, b: Jet) -> Jet { Jet(zip(a.c, b.c).map { $0 - $1 }) }
    package static func * (a: Jet, b: BigRational) -> Jet { Jet(a.c.map { $0 * b }) }
    package static func mul(_ a: Jet, _ b: Jet, rhoSquared: BigRational) -> Jet {
        var out = [Surd](repeating: .zero, count: a.c.count)
        for s in a.c.indices {
            var t = s
            while true {               // all subsets t of s
                out[s] = out[s] + Surd.mul(a.c[t], b.c[s ^ t], rhoSquared: rhoSquared)
                if t == 0 { break }
                t = (t - 1) & s
            }
        }
        return Jet(out)
    }
}

/// BN's training forward evaluated exactly on hyper-dual inputs, per channel: μ, σ² and
/// r = (σ² + ε)^(−1/2) as jets (r by its Taylor series about s₀ = σ² + ε, which terminates
/// because the nilpotent part δ satisfies δ^(k+1) = 0), then y = γ·(x − μ)·r + β.
package enum ExactBN {
    /// The channel's statistics as jets: deviations d = x − μ, r = (σ² + ε)^(−1/2), and s₀.
    package static func statistics(x: [Jet], eps: BigRational) -> (d: [Jet], r: Jet, s0: BigRational) {
        let n = BigRational(BigInt(x.count)), k = x[0].c.count
        let units = k.trailingZeroBitCount
        let one = BigRational.one
        func mulQ(_ a: Jet, _ b: Jet) -> Jet { Jet.mul(a, b, rhoSquared: .zero) }   // rational jets: q = 0
        var sum = Jet(constant: .zero, units: units)
        for xi in x { sum = sum + xi }
        let mu = sum * (one / n)
        let d = x.map { $0 - mu }
        var ss = Jet(constant: .zero, units: units)
        for di in d { ss = ss + mulQ(di, di) }
        var s = ss * (one / n)
        s.c[0] = s.c[0] + Surd(eps)
        let s0 = s.c[0].p
        precondition(s0.num > 0, "s₀ = σ² + ε must be positive for the exact evaluation")
        let rho2 = one / s0
        // r = ρ·(1 + Σ_m binom(−1/2, m)·(δ/s₀)^m), δ = s − s₀.
        var delta = s; delta.c[0] = .zero
        let z = delta * rho2
        var term = Jet(constant: Surd(.one), units: units), series = term
        var coef = BigRational.one
        for m in 0..<units {
            coef = coef * (BigRational(BigInt(-1), BigInt(2)) - BigRational(BigInt(m))) / BigRational(BigInt(m + 1))
            term = mulQ(term, z)
            series = series + term * coef
        }
        let rhoJet = Jet(constant: Surd(p: .zero, q: .one), units: units)
        return (d, Jet.mul(rhoJet, series, rhoSquared: rho2), s0)
    }

    /// Returns (y jets of the channel's elements, s₀) for jets x (rational components) and γ.
    package static func trainingChannel(x: [Jet], gamma: Jet, beta: BigRational, eps: BigRational) -> (y: [Jet], s0: BigRational) {
        let (d, r, s0) = statistics(x: x, eps: eps)
        let rho2 = BigRational.one / s0
        let y = d.map { di -> Jet in
            var yi = Jet.mul(Jet.mul(gamma, di, rhoSquared: rho2), r, rhoSquared: rho2)
            yi.c[0] = yi.c[0] + Surd(beta)
            return yi
        }
        return (y, s0)
    }

    /// The training backward of spec §2 (dγ = Σdy·x̂, dx = γ·r·(dy − mean dy − x̂·mean(dy·x̂)))
    /// evaluated on jets: its ε-components are the exact directional derivatives of the
    /// gradient, i.e. H·v (forward-over-reverse, exactly). Returns (dx jets, dγ jet, s₀).
    package static func trainingBackwardChannel(x: [Jet], gamma: Jet, dy: [BigRational], eps: BigRational) -> (dx: [Jet], dGamma: Jet, s0: BigRational) {
        let (d, r, s0) = statistics(x: x, eps: eps)
        let rho2 = BigRational.one / s0, n = BigRational(BigInt(x.count)), units = x[0].c.count.trailingZeroBitCount
        let xh = d.map { Jet.mul($0, r, rhoSquared: rho2) }
        var dg = Jet(constant: .zero, units: units)
        var mdy = BigRational.zero
        for (j, e) in dy.enumerated() { dg = dg + xh[j] * e; mdy = mdy + e / n }
        let mg = dg * (BigRational.one / n)
        let k = Jet.mul(gamma, r, rhoSquared: rho2)
        let dx = dy.indices.map { j -> Jet in
            var inner = Jet(constant: Surd(dy[j] - mdy), units: units) - Jet.mul(xh[j], mg, rhoSquared: rho2)
            inner = Jet.mul(k, inner, rhoSquared: rho2)
            return inner
        }
        return (dx, dg, s0)
    }

    /// y's jets over a whole tensor: x + Σ εₖ·dirₖ.x and γ + Σ εₖ·dirₖ.γ, all layouts.
    /// Returns per element (jet, s₀ of its channel).
    package static func training(_ x: [Double], shape: Shape, layout: Layout, gamma: [Double], beta: [Double], eps: Double,
                         directions: [DerivativeDirection]) -> [(Jet, BigRational)] {
        let k = directions.count
        var out = [(Jet, BigRational)](repeating: (Jet(constant: .zero, units: k), .one), count: x.count)
        for c in 0..<shape.channels {
            let idx = layout.segments(channel: c, shape: shape).flatMap { s in (0..<s.count).map { s.offset + $0 * s.stride } }
            let xj = idx.map { i -> Jet in
                var j = Jet(constant: Surd(BigRational(x[i])), units: k)
                for (m, d) in directions.enumerated() { j.c[1 << m] = Surd(BigRational(d.x[i])) }
                return j
            }
            var gj = Jet(constant: Surd(BigRational(gamma[c])), units: k)
            for (m, d) in directions.enumerated() { gj.c[1 << m] = Surd(BigRational(d.gamma[c])) }
            let (y, s0) = trainingChannel(x: xj, gamma: gj, beta: BigRational(beta[c]), eps: BigRational(eps))
            for (j, i) in idx.enumerated() { out[i] = (y[j], s0) }
        }
        return out
    }
}

extension ExactBN {
    /// The exact value p + q/√s₀ of `s` as the exact oracle's real (``ExactOracle/Real``), whose
    /// nearest Double ``ExactOracle/isNearest(_:to:)`` decides by exact comparisons.
    package static func real(_ s: Surd, s0: BigRational) -> ExactOracle.Real {
        func f(_ r: BigRational) -> ExactOracle.Fraction { ExactOracle.Fraction(r.num, den: r.den) }
        return ExactOracle.Real(f(s.p), plus: f(s.q), overSquareRootOf: f(s0))
    }

    /// The exact higher-order outputs of one channel of a golden case (spec §12), from jets —
    /// never from the closed forms: H·v by the §2 backward on 1-unit jets along v (exact
    /// forward-over-reverse), D²y[v, w] and D³y[v, v, w] from the forward on 2- and 3-unit jets.
    /// nil when the channel's σ² + ε is 0 (§4: NaN).
    package static func channel(op: BNGolden.Operation, x: [Double], dy: [Double], gamma: Double, beta: Double, eps: Double,
                        v: (x: [Double], gamma: Double), w: (x: [Double], gamma: Double))
        -> (tensor: [ExactOracle.Real], gamma: ExactOracle.Real?)? {
        let dirs: [(x: [Double], gamma: Double)] = op == .hvpTrain ? [v] : (op == .d2Train ? [v, w] : [v, v, w])
        let k = dirs.count
        let xj = x.indices.map { i -> Jet in
            var j = Jet(constant: Surd(BigRational(x[i])), units: k)
            for (m, d) in dirs.enumerated() { j.c[1 << m] = Surd(BigRational(d.x[i])) }
            return j
        }
        var gj = Jet(constant: Surd(BigRational(gamma)), units: k)
        for (m, d) in dirs.enumerated() { gj.c[1 << m] = Surd(BigRational(d.gamma)) }
        let eps = BigRational(eps)
        var ss = BigRational.zero, mean = BigRational.zero
        for xi in x { mean = mean + BigRational(xi) }
        mean = mean / BigRational(BigInt(x.count))
        for xi in x { let d = BigRational(xi) - mean; ss = ss + d * d }
        guard !(ss / BigRational(BigInt(x.count)) + eps).isZero else { return nil }
        if op == .hvpTrain {
            let (dx, dg, s0) = trainingBackwardChannel(x: xj, gamma: gj, dy: dy.map { BigRational($0) }, eps: eps)
            return (dx.map { real($0.c[1], s0: s0) }, real(dg.c[1], s0: s0))
        }
        let (y, s0) = trainingChannel(x: xj, gamma: gj, beta: BigRational(beta), eps: eps)
        return (y.map { real($0.c[(1 << k) - 1], s0: s0) }, nil)
    }
}
