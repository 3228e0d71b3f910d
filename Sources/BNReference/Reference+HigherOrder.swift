import BNCore
import RealModule

/// A direction (tangent) in BN's input space: a perturbation of x (in x's layout) and of
/// the per-channel γ and β. y is linear in β, so β's component drops out of every second
/// and third derivative; it is carried for the first-order term and for adapters' inputs.
public struct DerivativeDirection: Sendable {
    public var x: [Double]
    public var gamma: [Double]
    public var beta: [Double]

    public init(x: [Double], gamma: [Double], beta: [Double]) {
        self.x = x; self.gamma = gamma; self.beta = beta
    }

    /// A direction in x only (γ and β components 0).
    public init(x: [Double], channels: Int) {
        self.init(x: x, gamma: [Double](repeating: 0, count: channels), beta: [Double](repeating: 0, count: channels))
    }
}

/// H·v for the loss L = ⟨dy, y⟩, split like the variables (x, γ, β).
public struct HessianVectorProduct: Sendable {
    public var x: [Double]
    public var gamma: [Double]
    /// Always 0: L is linear in β, and ∂L/∂β = Σdy depends on nothing (spec §11.3).
    public var beta: [Double]
}

/// Higher-order derivatives of BN (spec/SPEC.md §11): the Hessian-vector product of
/// L = ⟨dy, y⟩ and the second and third directional derivatives of y, per channel in O(n),
/// from the closed forms derived in §11.
///
/// Numerical contract (finite data, no under- or overflow): the statistics are exact before
/// rounding — the deviations x − μ are taken against the exact mean (the rounded mean of
/// ``ChannelMoments`` plus the exactly summed correction Σ(x − μ̂)/n), 1/√(σ² + ε) comes from
/// the double-word M2 with one Newton step — and every channel reduction and every
/// per-element combination is evaluated in double-word arithmetic
/// (``DoubleDouble`` +Arithmetic, relative error ≤ 4u² per operation, u = 2⁻⁵³). Each output
/// is rounded once at the end, so |computed − exact| ≤ ½ulp(exact) + c·u²·S with S the sum of
/// the absolute values of the closed form's terms and c a small constant (≲ 100); checked
/// against an exact rational evaluation in `HigherOrderExactTests`.
///
/// Edge semantics follow §4: a channel holding NaN or ±Inf gives NaN in that channel's
/// outputs (H·v's β part stays 0); σ² = 0 with ε = 0 gives NaN (x̂ = 0·∞). A channel with one
/// value (n = 1) has x̂ = 0 and centred directions 0, so its derivatives are 0.
extension Reference {
    /// H·v of L = ⟨dy, y⟩ in training mode (μ and σ² functions of x), along `direction`:
    ///
    ///     (Hv)ₓ = g·r·(ē − q·x̂) + γ·r²·((3qα − β_v)·x̂ − q·a − α·ē)
    ///     (Hv)_γ = n·r·(β_v − q·α),   (Hv)_β = 0
    ///
    /// with a = v − mean(v), ē = dy − mean(dy), α = ⟨x̂, a⟩/n, q = ⟨ē, x̂⟩/n, β_v = ⟨ē, a⟩/n,
    /// g = the direction's γ component (spec §11.3).
    public static func trainingHessianVectorProduct(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                                    gamma: [Double]?, eps: Double,
                                                    direction v: DerivativeDirection) throws -> HessianVectorProduct {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [v])
        try check(dy.count, shape, layout, what: "dy")
        var hx = [Double](repeating: 0, count: x.count)
        var hg = [Double](repeating: 0, count: shape.channels)
        for c in 0..<shape.channels {
            let ch = HigherOrderChannel(x, channel: c, shape: shape, layout: layout, eps: eps)
            guard ch.isFinite else { ch.fill(&hx, .nan); hg[c] = .nan; continue }
            let g = DoubleDouble(gamma?[c] ?? 1), gv = DoubleDouble(v.gamma[c])
            let a = ch.centered(v.x), e = ch.centered(dy)
            let alpha = ch.mean(ch.xhat, a), q = ch.mean(e, ch.xhat), bv = ch.mean(e, a)
            let r = ch.r, r2 = r * r
            let k1 = gv * r, k2 = g * r2
            let cx = DoubleDouble(3) * q * alpha + -bv
            for (j, i) in ch.indices.enumerated() {
                let first = k1 * (e[j] + -(q * ch.xhat[j]))
                let second = k2 * (cx * ch.xhat[j] + -(q * a[j]) + -(alpha * e[j]))
                hx[i] = (first + second).value
            }
            hg[c] = (r * (bv + -(q * alpha)) * ch.n).value
        }
        return HessianVectorProduct(x: hx, gamma: hg, beta: [Double](repeating: 0, count: shape.channels))
    }

    /// H·v of L = ⟨dy, y⟩ in inference mode (μ_R, σ²_R constants, r_R = 1/√(σ²_R + ε)):
    /// (Hv)ₓ = g·r_R·dy, (Hv)_γ = r_R·⟨dy, vₓ⟩, (Hv)_β = 0 (spec §11.5).
    public static func inferenceHessianVectorProduct(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                                     gamma: [Double]?, mean: [Double], variance: [Double], eps: Double,
                                                     direction v: DerivativeDirection) throws -> HessianVectorProduct {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [v])
        try check(dy.count, shape, layout, what: "dy")
        try checkParameter(mean, "running mean", shape); try checkParameter(variance, "running variance", shape)
        var hx = [Double](repeating: 0, count: x.count)
        var hg = [Double](repeating: 0, count: shape.channels)
        for c in 0..<shape.channels {
            let r = (DoubleDouble(variance[c]) + eps).reciprocalSquareRoot
            let k = r * v.gamma[c]
            var s = DoubleDouble(0)
            forEachIndex(layout.segments(channel: c, shape: shape)) { i in
                hx[i] = (k * dy[i]).value
                s = s + DoubleDouble.product(dy[i], v.x[i])
            }
            hg[c] = (r * s).value
        }
        return HessianVectorProduct(x: hx, gamma: hg, beta: [Double](repeating: 0, count: shape.channels))
    }

    /// D²y[v, w] in training mode (spec §11.2):
    ///
    ///     D²y = g_v·x̂′[w] + g_w·x̂′[v] + γ·x̂″[v, w]
    ///     x̂′[v] = r·(a − x̂·α_v),   x̂″[v, w] = r²·(x̂·(3α_vα_w − c_vw) − a·α_w − b·α_v)
    ///
    /// with a, b the centred x-components of v, w, α_v = ⟨x̂, a⟩/n, c_vw = ⟨a, b⟩/n.
    public static func trainingSecondDerivative(_ x: [Double], shape: Shape, layout: Layout, gamma: [Double]?, eps: Double,
                                                _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double] {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [v, w])
        var out = [Double](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let ch = HigherOrderChannel(x, channel: c, shape: shape, layout: layout, eps: eps)
            guard ch.isFinite else { ch.fill(&out, .nan); continue }
            let t = ch.tangents([v, w])
            let g = DoubleDouble(gamma?[c] ?? 1), gv = DoubleDouble(v.gamma[c]), gw = DoubleDouble(w.gamma[c])
            for j in ch.indices.indices {
                let d2 = gv * t.first(j, 1) + gw * t.first(j, 0) + g * t.second(j, 0, 1)
                out[ch.indices[j]] = d2.value
            }
        }
        return out
    }

    /// D³y[u, v, w] in training mode (spec §11.2):
    ///
    ///     D³y = g_u·x̂″[v, w] + g_v·x̂″[u, w] + g_w·x̂″[u, v] + γ·x̂‴[u, v, w]
    ///     x̂‴ = r³·(a_u(3α_vα_w − c_vw) + a_v(3α_uα_w − c_uw) + a_w(3α_uα_v − c_uv)
    ///              + x̂·(3(c_uvα_w + c_uwα_v + c_vwα_u) − 15α_uα_vα_w))
    public static func trainingThirdDerivative(_ x: [Double], shape: Shape, layout: Layout, gamma: [Double]?, eps: Double,
                                               _ u: DerivativeDirection, _ v: DerivativeDirection,
                                               _ w: DerivativeDirection) throws -> [Double] {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [u, v, w])
        var out = [Double](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let ch = HigherOrderChannel(x, channel: c, shape: shape, layout: layout, eps: eps)
            guard ch.isFinite else { ch.fill(&out, .nan); continue }
            let t = ch.tangents([u, v, w])
            let g = DoubleDouble(gamma?[c] ?? 1)
            let gu = DoubleDouble(u.gamma[c]), gv = DoubleDouble(v.gamma[c]), gw = DoubleDouble(w.gamma[c])
            for j in ch.indices.indices {
                let d3 = gu * t.second(j, 1, 2) + gv * t.second(j, 0, 2) + gw * t.second(j, 0, 1) + g * t.third(j)
                out[ch.indices[j]] = d3.value
            }
        }
        return out
    }

    /// D²y[v, w] in inference mode: y = γ·(x − μ_R)·r_R + β is bilinear in (γ, x), so
    /// D²y = r_R·(g_v·wₓ + g_w·vₓ) (spec §11.5).
    public static func inferenceSecondDerivative(_ x: [Double], shape: Shape, layout: Layout, gamma: [Double]?,
                                                 mean: [Double], variance: [Double], eps: Double,
                                                 _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double] {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [v, w])
        try checkParameter(mean, "running mean", shape); try checkParameter(variance, "running variance", shape)
        var out = [Double](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let r = (DoubleDouble(variance[c]) + eps).reciprocalSquareRoot
            forEachIndex(layout.segments(channel: c, shape: shape)) { i in
                out[i] = (r * (DoubleDouble.product(v.gamma[c], w.x[i]) + DoubleDouble.product(w.gamma[c], v.x[i]))).value
            }
        }
        return out
    }

    /// D³y in inference mode is identically 0 (y is bilinear in (γ, x); spec §11.5).
    public static func inferenceThirdDerivative(_ x: [Double], shape: Shape, layout: Layout, gamma: [Double]?,
                                                mean: [Double], variance: [Double], eps: Double,
                                                _ u: DerivativeDirection, _ v: DerivativeDirection,
                                                _ w: DerivativeDirection) throws -> [Double] {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [u, v, w])
        try checkParameter(mean, "running mean", shape); try checkParameter(variance, "running variance", shape)
        return [Double](repeating: 0, count: x.count)
    }

    static func checkHigherOrder(_ x: [Double], _ shape: Shape, _ layout: Layout, gamma: [Double]?, eps: Double,
                                 directions: [DerivativeDirection]) throws {
        try check(x.count, shape, layout)
        try checkEps(eps)
        try checkParameter(gamma, "gamma", shape)
        for (k, d) in directions.enumerated() {
            try check(d.x.count, shape, layout, what: "direction \(k + 1)'s x")
            try checkParameter(d.gamma, "direction \(k + 1)'s gamma", shape)
            try checkParameter(d.beta, "direction \(k + 1)'s beta", shape)
        }
    }
}

/// One channel prepared for the higher-order closed forms: its element indices (storage
/// order), n, r = 1/√(σ² + ε) and x̂ = (x − μ)·r, both in double-word arithmetic against the
/// exact mean (see ``Reference`` +HigherOrder for the contract).
struct HigherOrderChannel {
    let indices: [Int]
    let n: Double
    let r: DoubleDouble
    let xhat: [DoubleDouble]
    let isFinite: Bool

    init(_ x: [Double], channel c: Int, shape: Shape, layout: Layout, eps: Double) {
        let segs = layout.segments(channel: c, shape: shape)
        var idx: [Int] = []; idx.reserveCapacity(shape.perChannelCount)
        Reference.forEachIndex(segs) { idx.append($0) }
        indices = idx
        n = Double(idx.count)
        let m = x.withUnsafeBufferPointer { ChannelMoments.compute($0, segments: segs) }
        guard m.mean.isFinite, m.scaledM2.head.isFinite else {
            r = DoubleDouble(.nan); xhat = []; isFinite = false; return
        }
        // Deviations from the rounded mean, exactly (TwoSum), and their exact sum n·(μ − μ̂).
        var residual = ExactSum()
        var dev: [DoubleDouble] = []; dev.reserveCapacity(idx.count)
        for i in idx {
            let (h, l) = Augmented.sum(x[i], -m.mean)
            residual.add(h); residual.add(l)
            dev.append(DoubleDouble(h, l))
        }
        let shift = -residual.doubleDouble.divided(by: n)      // μ̂ − μ
        let variance = m.scaledM2.divided(by: n).scaled(byPowerOfTwo: m.m2Exponent)
        let rr = (variance + eps).reciprocalSquareRoot
        r = rr
        xhat = dev.map { ($0 + shift) * rr }
        isFinite = true
    }

    func fill(_ out: inout [Double], _ value: Double) { for i in indices { out[i] = value } }

    /// v − mean(v) over the channel, with the mean summed exactly.
    func centered(_ v: [Double]) -> [DoubleDouble] {
        var s = ExactSum()
        for i in indices { s.add(v[i]) }
        let m = -s.doubleDouble.divided(by: n)
        return indices.map { DoubleDouble(v[$0]) + m }
    }

    /// ⟨a, b⟩/n in double-word arithmetic.
    func mean(_ a: [DoubleDouble], _ b: [DoubleDouble]) -> DoubleDouble {
        var s = DoubleDouble(0)
        for j in a.indices { s = s + a[j] * b[j] }
        return s.divided(by: n)
    }

    /// The channel's data for directional derivatives along `dirs`: centred x-components
    /// and the scalars α_k = ⟨x̂, a_k⟩/n and c_jk = ⟨a_j, a_k⟩/n.
    func tangents(_ dirs: [DerivativeDirection]) -> Tangents {
        let a = dirs.map { centered($0.x) }
        let alpha = a.map { mean(xhat, $0) }
        var cc = [[DoubleDouble]](repeating: [DoubleDouble](repeating: DoubleDouble(0), count: dirs.count), count: dirs.count)
        for j in dirs.indices { for k in j..<dirs.count { cc[j][k] = mean(a[j], a[k]); cc[k][j] = cc[j][k] } }
        return Tangents(xhat: xhat, r: r, a: a, alpha: alpha, c: cc)
    }
}

/// Directional derivatives of x̂ for one channel (spec §11.2), element j of the channel.
struct Tangents {
    let xhat: [DoubleDouble]
    let r: DoubleDouble
    let a: [[DoubleDouble]]
    let alpha: [DoubleDouble]
    let c: [[DoubleDouble]]

    /// x̂′[k] = r·(a_k − x̂·α_k).
    func first(_ j: Int, _ k: Int) -> DoubleDouble {
        r * (a[k][j] + -(xhat[j] * alpha[k]))
    }

    /// x̂″[k, l] = r²·(x̂·(3α_kα_l − c_kl) − a_k·α_l − a_l·α_k).
    func second(_ j: Int, _ k: Int, _ l: Int) -> DoubleDouble {
        let s = xhat[j] * (DoubleDouble(3) * alpha[k] * alpha[l] + -c[k][l]) + -(a[k][j] * alpha[l]) + -(a[l][j] * alpha[k])
        return r * r * s
    }

    /// x̂‴[0, 1, 2] = r³·(Σ_cyc a_k(3α_lα_m − c_lm) + x̂·(3Σ_cyc c_klα_m − 15α_0α_1α_2)).
    func third(_ j: Int) -> DoubleDouble {
        let (a0, a1, a2) = (alpha[0], alpha[1], alpha[2])
        let three = DoubleDouble(3)
        var s = a[0][j] * (three * a1 * a2 + -c[1][2])
        s = s + a[1][j] * (three * a0 * a2 + -c[0][2])
        s = s + a[2][j] * (three * a0 * a1 + -c[0][1])
        let cx = three * (c[0][1] * a2 + c[0][2] * a1 + c[1][2] * a0) + -(DoubleDouble(15) * a0 * a1 * a2)
        s = s + xhat[j] * cx
        return r * r * r * s
    }
}
