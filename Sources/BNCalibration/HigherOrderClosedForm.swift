import BNCore

/// The higher-order derivatives of one channel from the closed forms of spec/SPEC.md §12.2–12.3,
/// computed in T as an implementation would (every operation rounded to T): the honest form that
/// ``HonestKernel`` computes with each of its statistics algorithms, and three classic mistakes
/// (``Variation``) that ``HigherOrderCalibrationKernel`` makes and the audit's diagnosis models.
///
/// Notation as in the spec: d = x − μ, r = (σ² + ε)^(−1/2), x̂ = d·r; a direction's centred
/// x-part a = v − mean(v); α_a = mean(x̂·a); c_ab = mean(a·b); r′[a] = −r²α_a;
/// r″[a, b] = r³(3α_aα_b − c_ab); r‴ = r⁴(3Σc·α − 15α_aα_bα_c); x̂′[a] = r·a + d·r′[a],
/// x̂″[a, b] = a·r′[b] + b·r′[a] + d·r″[a, b], x̂‴ likewise (Leibniz, D²d = 0).
///
/// Error: within spec §12.6's bound (``BNGolden/HigherOrderBound``) for T's unit roundoff, given
/// μ and r of an honest statistics algorithm (§5.1).
public struct HigherOrderClosedForm<T: BinaryFloatingPoint> {
    /// What the closed forms compute.
    public enum Variation: Sendable {
        case honest
        /// μ and 1/√(σ² + ε) treated as constants in every differentiation after the first (the
        /// double-backward / nested-jvp shortcut: a saved mean and inverse std without a
        /// tangent): x̂ then moves as r·v, not r·(v − x̂·α_v).
        case constantStatistics
        /// The mixed γ–x terms dropped (g·x̂′ in D²y and D³y, g·r·(ē − q·x̂) in (Hv)ₓ, (Hv)_γ = 0;
        /// in inference, where H·v is all cross terms, H·v = 0).
        case missingGammaXCross
        /// r′[v] = +r²·α_v (the derivative of (σ² + ε)^(−1/2) with the wrong sign) wherever it
        /// enters: x̂′, the r′ parts of x̂″ and H·v.
        case rPrimeSign
    }

    let n: T, d: [T], r: T, xh: [T], s: T
    let variation: Variation
    let sum: ([T]) -> T

    /// One channel: its values in T, the statistics μ and r = 1/√(σ² + ε) the implementation
    /// computed, and its summation (recursive unless given).
    public init(_ xs: [T], mean m: T, invStd r: T, variation: Variation = .honest, sum: @escaping ([T]) -> T = { $0.reduce(0, +) }) {
        n = T(xs.count); d = xs.map { $0 - m }; self.r = r; xh = d.map { $0 * r }
        s = variation == .rPrimeSign ? 1 : -1
        self.variation = variation; self.sum = sum
    }

    func mean(_ p: [T]) -> T { sum(p) / n }
    func centre(_ a: [T]) -> [T] { let m = mean(a); return a.map { $0 - m } }
    func alpha(_ a: [T]) -> T { mean(mul(xh, a)) }
    func mul(_ a: [T], _ b: [T]) -> [T] { zip(a, b).map { $0 * $1 } }
    func rp(_ a: [T]) -> T { s * r * r * alpha(a) }
    func rpp(_ a: [T], _ b: [T]) -> T { r * r * r * (3 * alpha(a) * alpha(b) - mean(mul(a, b))) }
    func rppp(_ a: [T], _ b: [T], _ c: [T]) -> T {
        let (aa, ab, ac) = (alpha(a), alpha(b), alpha(c))
        return r * r * r * r * (3 * (mean(mul(a, b)) * ac + mean(mul(a, c)) * ab + mean(mul(b, c)) * aa) - 15 * aa * ab * ac)
    }
    func xh1(_ a: [T]) -> [T] { let k = rp(a); return a.indices.map { r * a[$0] + d[$0] * k } }
    func xh2(_ a: [T], _ b: [T]) -> [T] {
        let (ka, kb, k2) = (rp(a), rp(b), rpp(a, b))
        return a.indices.map { a[$0] * kb + b[$0] * ka + d[$0] * k2 }
    }
    func xh3(_ a: [T], _ b: [T], _ c: [T]) -> [T] {
        let (kbc, kac, kab, k3) = (rpp(b, c), rpp(a, c), rpp(a, b), rppp(a, b, c))
        return a.indices.map { a[$0] * kbc + b[$0] * kac + c[$0] * kab + d[$0] * k3 }
    }

    /// D²y[v, w] (directions: x-parts vx, wx of the channel, γ-parts vg, wg; g = γ).
    public func d2(gamma g: T, _ vx: [T], _ vg: T, _ wx: [T], _ wg: T) -> [T] {
        let a = centre(vx), b = centre(wx)
        if variation == .constantStatistics {
            // The second differentiation with μ, r frozen: x̂ moves as r·w (w uncentred).
            let x1 = xh1(a), ma = alpha(a), mwa = mean(mul(wx, a))
            return wx.indices.map { vg * r * wx[$0] + wg * x1[$0] - g * r * r * (wx[$0] * ma + xh[$0] * mwa) }
        }
        let second = xh2(a, b)
        if variation == .missingGammaXCross { return second.map { g * $0 } }
        let x1b = xh1(b), x1a = xh1(a)
        return second.indices.map { vg * x1b[$0] + wg * x1a[$0] + g * second[$0] }
    }

    /// D³y[u, v, w].
    public func d3(gamma g: T, _ ux: [T], _ ug: T, _ vx: [T], _ vg: T, _ wx: [T], _ wg: T) -> [T] {
        let a = centre(ux), b = centre(vx), c = centre(wx)
        if variation == .constantStatistics {
            // D_u of the frozen D²y[v, w] with μ, r still frozen (x̂ → r·u, α_v → r·mean(u·b)).
            let ab = alpha(b), mub = mean(mul(ux, b)), mwb = mean(mul(wx, b))
            return ux.indices.map { i in
                let t1 = wg * (ux[i] * ab + xh[i] * mub) + ug * (wx[i] * ab + xh[i] * mwb)
                return -r * r * t1 - g * r * r * r * (wx[i] * mub + ux[i] * mwb)
            }
        }
        let third = xh3(a, b, c)
        if variation == .missingGammaXCross { return third.map { g * $0 } }
        let (bc, ac, abx) = (xh2(b, c), xh2(a, c), xh2(a, b))
        return third.indices.map { ug * bc[$0] + vg * ac[$0] + wg * abx[$0] + g * third[$0] }
    }

    /// (Hv)ₓ and (Hv)_γ of L = ⟨dy, y⟩ (spec §12.3), from the gradients in w of ⟨dy, x̂′[w]⟩
    /// and ⟨dy, x̂″[v, w]⟩.
    public func hvp(gamma g: T, dy e: [T], _ vx: [T], _ vg: T) -> (x: [T], gamma: T) {
        let eb = centre(e), a = centre(vx)
        if variation == .constantStatistics {
            let q = mean(mul(e, xh)), mev = mean(mul(e, vx))
            let x = e.indices.map { vg * r * (eb[$0] - q * xh[$0]) - g * r * r * (q * vx[$0] + xh[$0] * mev) }
            return (x, r * mev * n)
        }
        let sed = sum(mul(e, d)), sea = sum(mul(e, a)), ka = rp(a), aa = alpha(a)
        let x = e.indices.map { i -> T in
            let gradRp = s * r * r * xh[i] / n                       // ∇_w r′[w]
            let first = r * eb[i] + sed * gradRp                      // ∇_w ⟨dy, x̂′[w]⟩
            let second = sea * gradRp + eb[i] * ka + sed * r * r * r * (3 * aa * xh[i] - a[i]) / n
            return variation == .missingGammaXCross ? g * second : vg * first + g * second
        }
        return (x, variation == .missingGammaXCross ? 0 : r * sea + sed * ka)
    }

    /// H·v in inference mode with r = r_R: (Hv)ₓ = g_v·r·dy, (Hv)_γ = r·Σdy·vₓ (0 for the
    /// missing-cross-term variation; the statistics variations do not apply).
    public static func hvpInference(invStd r: T, dy e: [T], _ vx: [T], _ vg: T, variation: Variation,
                                    sum: ([T]) -> T = { $0.reduce(0, +) }) -> (x: [T], gamma: T) {
        if variation == .missingGammaXCross { return ([T](repeating: 0, count: e.count), 0) }
        return (e.map { vg * r * $0 }, r * sum(zip(e, vx).map { $0 * $1 }))
    }
}

/// Runs the closed forms over every channel of a case: channels gathered in storage order,
/// converted to T (exactly: they hold values of the storage dtype), results widened back.
/// `statistics(xs)` gives (μ, M2) of a channel's values. The kernels of this module run it, and
/// the audit's diagnosis runs it in Double as the model of each ``HigherOrderClosedForm/Variation``.
public struct HigherOrderLoops<T: BinaryFloatingPoint> {
    let shape: Shape, layout: Layout, eps: T
    let variation: HigherOrderClosedForm<T>.Variation
    let statistics: ([T]) -> (T, T)
    let sum: ([T]) -> T

    public init(shape: Shape, layout: Layout, eps: T, variation: HigherOrderClosedForm<T>.Variation,
                statistics: @escaping ([T]) -> (T, T), sum: @escaping ([T]) -> T = { $0.reduce(0, +) }) {
        self.shape = shape; self.layout = layout; self.eps = eps; self.variation = variation
        self.statistics = statistics; self.sum = sum
    }

    func indices(_ c: Int) -> [Int] {
        layout.segments(channel: c, shape: shape).flatMap { s in (0..<s.count).map { s.offset + $0 * s.stride } }
    }

    func channel(_ x: [Double], _ idx: [Int]) -> HigherOrderClosedForm<T> {
        let xs = idx.map { T(x[$0]) }
        let (m, q) = statistics(xs)
        return HigherOrderClosedForm(xs, mean: m, invStd: 1 / (q / T(xs.count) + eps).squareRoot(), variation: variation, sum: sum)
    }

    public func hvpTrain(_ x: [Double], dy: [Double], gamma: [Double], _ v: DerivativeDirection) -> HessianVectorProduct {
        var hx = [Double](repeating: 0, count: x.count), hg: [Double] = []
        for c in 0..<shape.channels {
            let idx = indices(c)
            let h = channel(x, idx).hvp(gamma: T(gamma[c]), dy: idx.map { T(dy[$0]) }, idx.map { T(v.x[$0]) }, T(v.gamma[c]))
            for (j, i) in idx.enumerated() { hx[i] = Double(h.x[j]) }
            hg.append(Double(h.gamma))
        }
        return HessianVectorProduct(x: hx, gamma: hg, beta: [Double](repeating: 0, count: shape.channels))
    }

    public func hvpInfer(dy: [Double], variance: [Double], _ v: DerivativeDirection) -> HessianVectorProduct {
        var hx = [Double](repeating: 0, count: dy.count), hg: [Double] = []
        for c in 0..<shape.channels {
            let idx = indices(c)
            let h = HigherOrderClosedForm<T>.hvpInference(invStd: 1 / (T(variance[c]) + eps).squareRoot(), dy: idx.map { T(dy[$0]) },
                                                          idx.map { T(v.x[$0]) }, T(v.gamma[c]), variation: variation, sum: sum)
            for (j, i) in idx.enumerated() { hx[i] = Double(h.x[j]) }
            hg.append(Double(h.gamma))
        }
        return HessianVectorProduct(x: hx, gamma: hg, beta: [Double](repeating: 0, count: shape.channels))
    }

    /// D²y[v, w] (`third`: false) or D³y[v, v, w].
    public func directional(_ x: [Double], gamma: [Double], _ v: DerivativeDirection, _ w: DerivativeDirection, third: Bool) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let idx = indices(c), cf = channel(x, idx)
            let vx = idx.map { T(v.x[$0]) }, wx = idx.map { T(w.x[$0]) }, vg = T(v.gamma[c]), wg = T(w.gamma[c])
            let y = third ? cf.d3(gamma: T(gamma[c]), vx, vg, vx, vg, wx, wg) : cf.d2(gamma: T(gamma[c]), vx, vg, wx, wg)
            for (j, i) in idx.enumerated() { out[i] = Double(y[j]) }
        }
        return out
    }
}
