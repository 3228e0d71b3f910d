import BigInt
import BNCore
import BNGolden
import BNReference
import BNReferenceChecks

// Support for the higher-order derivative tests (spec §12): dyadic test data and the magnitude
// bounds the tolerances use. The exact evaluator (``ExactBN``: hyper-dual numbers over
// Q(1/√s₀)) is BNReferenceChecks', which the golden oracle shares.

/// Dyadic test data: every value k·2⁻¹⁰ with |value| < 2⁶ (at most 16 significant bits), so
/// that x + t·v is exact in Double for t = ±2⁻ᵖ, p ≤ 30 (finite differences without input rounding).
func dyadicTensor(_ count: Int, seed: String, offset: Double = 0, spread: Double = 1) -> [Double] {
    var r = SpecRandom(seed)
    return (0..<count).map { _ in ((offset + spread * r.normal()) * 1024).rounded() / 1024 }
}

func randomDirection(_ s: Shape, seed: String, gammaScale: Double = 1) -> DerivativeDirection {
    DerivativeDirection(x: dyadicTensor(s.elementCount, seed: seed + "/x"),
                        gamma: dyadicTensor(s.channels, seed: seed + "/g").map { $0 * gammaScale },
                        beta: dyadicTensor(s.channels, seed: seed + "/b"))
}

/// Per-channel magnitude bounds of the closed forms (spec §12.2–12.3) with every signed
/// quantity replaced by an upper bound of its modulus, at a point t of the complex disk
/// |t| ≤ ρ around the data along direction `along`: on that disk |r(t)| ≤ κ·r₀ (κ = 2 when
/// ρ is half the distance to the nearest singularity of (σ²(t) + ε)^(−1/2), κ = 1 for ρ = 0),
/// |x̂ᵢ(t)| ≤ Xᵢ = κ·r₀·(|dᵢ| + ρ|aᵢ|), |γ(t)| ≤ |γ| + ρ|g|. With ρ = 0 they are the sums S of
/// the absolute values of the closed forms' terms.
struct MagnitudeBounds {
    /// κ·r₀ per channel.
    let rPerChannel: [Double]
    let X: [Double]
    /// Γ per element (its channel's).
    let Gamma: [Double]
    let n: Double
    let channelOf: [Int]
    let members: [[Int]]

    init(_ x: [Double], shape: Shape, layout: Layout, gamma: [Double], eps: Double,
         along: DerivativeDirection?, rho: Double, kappa: Double) throws {
        let f = try Reference.trainingForward(x, shape: shape, layout: layout, eps: eps)
        let count = Double(shape.perChannelCount)
        var X = [Double](repeating: 0, count: x.count), G = X, ch = [Int](repeating: 0, count: x.count)
        var members: [[Int]] = []
        for c in 0..<shape.channels {
            let idx = layout.segments(channel: c, shape: shape).flatMap { s in (0..<s.count).map { s.offset + $0 * s.stride } }
            members.append(idx)
            let r0 = kappa * f.invStd[c] * (1 + 1e-12)
            var mv = 0.0
            if let d = along { for i in idx { mv += d.x[i] / count } }
            for i in idx {
                let a = along.map { abs($0.x[i] - mv) } ?? 0
                X[i] = r0 * (abs(x[i] - f.mean[c]) + rho * a) * (1 + 1e-12)
                G[i] = abs(gamma[c]) + rho * abs(along?.gamma[c] ?? 0)
                ch[i] = c
            }
        }
        n = count
        self.X = X; Gamma = G; channelOf = ch; self.members = members
        rPerChannel = f.invStd.map { kappa * $0 * (1 + 1e-12) }
    }

    /// Bounds of |aᵢ| for a direction's centred x-component (|v − mean v| ≤ |v| + |mean v|).
    func centredAbs(_ v: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: v.count)
        for idx in members {
            let m = abs(idx.reduce(0.0) { $0 + v[$1] } / n)
            for i in idx { out[i] = abs(v[i]) + m }
        }
        return out
    }

    /// (1/n)·Σ over element i's channel of f(j).
    func channelMean(_ i: Int, _ f: (Int) -> Double) -> Double { members[channelOf[i]].reduce(0.0) { $0 + f($1) } / n }

    /// Bound of |x̂′ᵢ[v]|: r·(|aᵢ| + Xᵢ·A_v), A_v = mean(X·|a|).
    func first(_ i: Int, _ a: [Double]) -> Double {
        rPerChannel[channelOf[i]] * (a[i] + X[i] * channelMean(i) { X[$0] * a[$0] })
    }

    /// Bound of |x̂″ᵢ[v, w]|: r²·(Xᵢ(3A_vA_w + C_vw) + |aᵢ|A_w + |bᵢ|A_v).
    func second(_ i: Int, _ a: [Double], _ b: [Double]) -> Double {
        let r = rPerChannel[channelOf[i]]
        let Av = channelMean(i) { X[$0] * a[$0] }, Aw = channelMean(i) { X[$0] * b[$0] }
        let C = channelMean(i) { a[$0] * b[$0] }
        return r * r * (X[i] * (3 * Av * Aw + C) + a[i] * Aw + b[i] * Av)
    }

    /// Bound of |x̂‴ᵢ[u, v, w]|.
    func third(_ i: Int, _ a: [Double], _ b: [Double], _ c: [Double]) -> Double {
        let r = rPerChannel[channelOf[i]]
        let A = [a, b, c].map { v in channelMean(i) { X[$0] * v[$0] } }
        func C(_ p: [Double], _ q: [Double]) -> Double { channelMean(i) { p[$0] * q[$0] } }
        let t = a[i] * (3 * A[1] * A[2] + C(b, c)) + b[i] * (3 * A[0] * A[2] + C(a, c)) + c[i] * (3 * A[0] * A[1] + C(a, b))
            + X[i] * (3 * (C(a, b) * A[2] + C(a, c) * A[1] + C(b, c) * A[0]) + 15 * A[0] * A[1] * A[2])
        return r * r * r * t
    }

    /// Bound of |D²yᵢ[v, w]| (|γ| replaced by Γ, the direction γ-components by their moduli).
    func d2(_ i: Int, _ v: DerivativeDirection, _ w: DerivativeDirection) -> Double {
        let a = centredAbs(v.x), b = centredAbs(w.x), c = channelOf[i]
        return abs(v.gamma[c]) * first(i, b) + abs(w.gamma[c]) * first(i, a) + Gamma[i] * second(i, a, b)
    }

    func d3(_ i: Int, _ u: DerivativeDirection, _ v: DerivativeDirection, _ w: DerivativeDirection) -> Double {
        let a = centredAbs(u.x), b = centredAbs(v.x), cc = centredAbs(w.x), c = channelOf[i]
        return abs(u.gamma[c]) * second(i, b, cc) + abs(v.gamma[c]) * second(i, a, cc) + abs(w.gamma[c]) * second(i, a, b)
            + Gamma[i] * third(i, a, b, cc)
    }
}

/// ρ for finite differences along `v`: half the distance from t = 0 to the nearest complex
/// zero of σ²(x + t·vₓ) + ε over all channels. Per channel σ²(t) + ε = s₀ + 2pt + c·t² with
/// c = mean(a²), whose complex-conjugate roots have modulus √(s₀/c) (p² < s₀c by
/// Cauchy–Schwarz when s₀ > σ² or the deviations are not parallel to a). 1 when no channel moves.
func finiteDifferenceRadius(_ x: [Double], shape: Shape, layout: Layout, eps: Double, along v: [Double]) throws -> Double {
    let f = try Reference.trainingForward(x, shape: shape, layout: layout, eps: eps)
    var rho = Double.infinity
    let n = Double(shape.perChannelCount)
    for c in 0..<shape.channels {
        let idx = layout.segments(channel: c, shape: shape).flatMap { s in (0..<s.count).map { s.offset + $0 * s.stride } }
        let m = idx.reduce(0.0) { $0 + v[$1] } / n
        let cc = idx.reduce(0.0) { $0 + (v[$1] - m) * (v[$1] - m) } / n
        if cc > 0 { rho = min(rho, (f.variance[c] + eps).squareRoot() / cc.squareRoot() / 2) }
    }
    return rho.isFinite ? rho * 0.999 : 1
}

/// Richardson-extrapolated central difference R(h) = (4·D(h/2) − D(h))/3 of a vector function,
/// D(h) = (φ(h) − φ(−h))/(2h), and its error bound for φ analytic on |t| ≤ ρ with |φᵢ| ≤ Mᵢ
/// there and each evaluation within δᵢ of φᵢ: by Cauchy's estimate |φ⁽ᵏ⁾(0)| ≤ k!·M/ρᵏ,
///
///     |R(h) − φ′(0)| ≤ (M/(2ρ))·(h/ρ)⁴/(1 − (h/ρ)²) + 3δ/h + 2u·(4|D(h/2)| + |D(h)|)/3,
///
/// (R − φ′ = Σ_{j≥2} (4^(1−j) − 1)/3 · h^(2j)·φ^(2j+1)(0)/(2j+1)!, coefficients below ½ in
/// modulus; each φ value's error δ enters D(h) as δ/h and D(h/2) as 2δ/h; the last term is the
/// difference quotient's own rounding, u = 2⁻⁵³.)
struct Richardson {
    var value: [Double]
    var bound: [Double]

    init(h: Double, rho: Double, M: [Double], delta: [Double], _ phi: (Double) throws -> [Double]) rethrows {
        let p1 = try phi(h), m1 = try phi(-h), p2 = try phi(h / 2), m2 = try phi(-h / 2)
        let u = 0x1p-53, q = h / rho
        precondition(q < 0.5)
        value = []; bound = []
        for i in p1.indices {
            let d1 = (p1[i] - m1[i]) / (2 * h), d2 = (p2[i] - m2[i]) / h
            value.append((4 * d2 - d1) / 3)
            let trunc = M[i] / (2 * rho) * q * q * q * q / (1 - q * q)
            bound.append(trunc + 3 * delta[i] / h + 2 * u * (4 * abs(d2) + abs(d1)) / 3)
        }
    }
}

/// The largest power of two ≤ x.
func powerOfTwoBelow(_ x: Double) -> Double { Double(sign: .plus, exponent: x.exponent, significand: 1) }
