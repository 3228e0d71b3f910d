import BNCore

/// Higher-order derivatives of BN (spec/SPEC.md §12): the Hessian-vector product of
/// L = ⟨dy, y⟩ and the second and third directional derivatives of y, per channel in O(n).
///
/// Numerical contract (spec §7): for finite inputs every output element is the correctly
/// rounded Double (nearest, ties to even) of the exact real value of §12's closed forms on the
/// inputs' exact values — the same guarantee as the first-order outputs. Every output is
/// R/√V with V = σ² + ε (σ²_R + ε in inference) and R an exact rational that is affine in the
/// element's inputs: R = K_d·(x − μ) + Σₖ Kₖ·(zₖ − mean zₖ) for the tensors zₖ ∈ {dy, vₓ, wₓ}
/// with per-channel rational coefficients K (§12.7 lists them). The channel sums that the K
/// are made of (Σz, Σx·z, Σzⱼ·zₖ) are accumulated exactly (``LongAccumulator``) and combined
/// in ``Rational``; per element R/√V is evaluated with a certified radius (``Enclosure``) and the
/// rare element whose rounding that cannot decide is re-evaluated exactly
/// (``Rational/roundedSurd(_:plus:over:)``; counted by ``Reference/exactFallbacks``).
///
/// Edge semantics follow §4: a channel holding NaN or ±Inf in x, dy or a direction, or with a
/// non-finite γ or direction component, gives NaN in that channel's outputs (H·v's β part stays
/// 0); V = 0 (σ² = 0 with ε = 0) gives NaN. A channel with one value (n = 1) has x − μ = 0 and
/// centred directions 0, so its derivatives are 0 (for ε > 0).
extension Reference {
    /// H·v of L = ⟨dy, y⟩ in training mode (μ and σ² functions of x), along `direction`
    /// (spec §12.3):
    ///
    ///     (Hv)ₓ = g·r·(ē − q·x̂) + γ·r²·((3qα − κ)·x̂ − q·a − α·ē)
    ///     (Hv)_γ = n·r·(κ − q·α),   (Hv)_β = 0
    ///
    /// with a = v − mean(v), ē = dy − mean(dy), α = ⟨x̂, a⟩/n, q = ⟨ē, x̂⟩/n, κ = ⟨ē, a⟩/n,
    /// g = the direction's γ component.
    public static func trainingHessianVectorProduct(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                                    gamma: [Double]?, eps: Double,
                                                    direction v: DerivativeDirection) throws -> HessianVectorProduct {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [v])
        try check(dy.count, shape, layout, what: "dy")
        var hx = [Double](repeating: 0, count: x.count), hg = [Double](repeating: 0, count: shape.channels)
        for c in 0..<shape.channels {
            let g = gamma?[c] ?? 1
            guard let ch = ExactDerivativeChannel(x, channel: c, shape: shape, layout: layout, eps: eps,
                                                  tangents: [dy, v.x], parameters: [g, v.gamma[c]]) else {
                fill(&hx, layout.segments(channel: c, shape: shape), .nan); hg[c] = .nan; continue
            }
            let G = Rational(g), Gv = Rational(v.gamma[c]), W = ch.w
            let q = ch.alpha[0], av = ch.alpha[1], kappa = ch.c[0][1]
            let kd = -(Gv * q * W) + G * W * (Rational(3) * q * av * W - kappa)
            ch.evaluate([(.data, kd), (.tangent(0), Gv - G * av * W), (.tangent(1), -(G * q * W))], into: &hx)
            hg[c] = ch.scalar(Rational(ch.n) * (kappa - q * av * W))
        }
        return HessianVectorProduct(x: hx, gamma: hg, beta: [Double](repeating: 0, count: shape.channels))
    }

    /// H·v of L = ⟨dy, y⟩ in inference mode (μ_R, σ²_R constants, r_R = 1/√(σ²_R + ε)):
    /// (Hv)ₓ = g·r_R·dy, (Hv)_γ = r_R·⟨dy, vₓ⟩, (Hv)_β = 0 (spec §12.5). A channel whose μ_R or
    /// σ²_R is not finite, or whose σ²_R + ε ≤ 0, follows §4 in IEEE arithmetic.
    public static func inferenceHessianVectorProduct(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                                     gamma: [Double]?, mean: [Double], variance: [Double], eps: Double,
                                                     direction v: DerivativeDirection) throws -> HessianVectorProduct {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [v])
        try check(dy.count, shape, layout, what: "dy")
        try checkParameter(mean, "running mean", shape); try checkParameter(variance, "running variance", shape)
        var hx = [Double](repeating: 0, count: x.count), hg = [Double](repeating: 0, count: shape.channels)
        for c in 0..<shape.channels {
            let segs = layout.segments(channel: c, shape: shape), gv = v.gamma[c]
            if let root = ExactRoot(mean: mean[c], variance: variance[c], eps: eps), gv.isFinite,
               let s = ExactGradientSums(v.x, dy, segs) {       // s.dyx = Σdy·vₓ, exactly
                let terms = [SurdTerm(Rational(gv), dy)]
                forEachIndex(segs) { i in hx[i] = root.element(terms, i) }
                hg[c] = root.scalar(s.dyx)
            } else {
                let r = mean[c].isFinite ? inverseStd(variance: variance[c], eps: eps) : .nan
                var s = CompensatedSum()
                forEachIndex(segs) { i in hx[i] = gv * r * dy[i]; s.addProduct(dy[i], v.x[i]) }
                hg[c] = r * s.value
            }
        }
        return HessianVectorProduct(x: hx, gamma: hg, beta: [Double](repeating: 0, count: shape.channels))
    }

    /// D²y[v, w] in training mode (spec §12.2):
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
            let g = gamma?[c] ?? 1
            guard let ch = ExactDerivativeChannel(x, channel: c, shape: shape, layout: layout, eps: eps,
                                                  tangents: [v.x, w.x], parameters: [g, v.gamma[c], w.gamma[c]]) else {
                fill(&out, layout.segments(channel: c, shape: shape), .nan); continue
            }
            let G = Rational(g), gv = Rational(v.gamma[c]), gw = Rational(w.gamma[c]), W = ch.w
            let av = ch.alpha[0], aw = ch.alpha[1]
            let kd = -(gv * aw * W) - gw * av * W + G * W * (Rational(3) * av * aw * W - ch.c[0][1])
            ch.evaluate([(.data, kd), (.tangent(0), gw - G * aw * W), (.tangent(1), gv - G * av * W)], into: &out)
        }
        return out
    }

    /// D³y[u, v, w] in training mode (spec §12.2):
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
            let g = gamma?[c] ?? 1
            guard let ch = ExactDerivativeChannel(x, channel: c, shape: shape, layout: layout, eps: eps, tangents: [u.x, v.x, w.x],
                                                  parameters: [g, u.gamma[c], v.gamma[c], w.gamma[c]]) else {
                fill(&out, layout.segments(channel: c, shape: shape), .nan); continue
            }
            let G = Rational(g), gs = [u.gamma[c], v.gamma[c], w.gamma[c]].map { Rational($0) }, W = ch.w
            let al = ch.alpha, cc = ch.c, three = Rational(3)
            // The coefficient of a_k in x̂″[l, m]·r⁻¹ is −α_m·W (of a_l) — so D³y's a_k
            // coefficient collects −g_l·α_m − g_m·α_l from the g-terms and γ·(3α_lα_mW − c_lm).
            let splits = [(0, 1, 2), (1, 0, 2), (2, 0, 1)]
            var terms: [(ExactDerivativeChannel.Source, Rational)] = []
            var kd = Rational.zero
            for (k, l, m) in splits {
                let inner = three * al[l] * al[m] * W - cc[l][m]
                kd = kd + gs[k] * inner
                terms.append((.tangent(k), W * (-(gs[l] * al[m]) - gs[m] * al[l] + G * inner)))
            }
            let sumC = cc[0][1] * al[2] + cc[0][2] * al[1] + cc[1][2] * al[0]
            kd = W * (kd + G * (three * sumC * W - Rational(15) * al[0] * al[1] * al[2] * W * W))
            ch.evaluate([(.data, kd)] + terms, into: &out)
        }
        return out
    }

    /// D²y[v, w] in inference mode: y = γ·(x − μ_R)·r_R + β is bilinear in (γ, x), so
    /// D²y = r_R·(g_v·wₓ + g_w·vₓ) (spec §12.5).
    public static func inferenceSecondDerivative(_ x: [Double], shape: Shape, layout: Layout, gamma: [Double]?,
                                                 mean: [Double], variance: [Double], eps: Double,
                                                 _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double] {
        try checkHigherOrder(x, shape, layout, gamma: gamma, eps: eps, directions: [v, w])
        try checkParameter(mean, "running mean", shape); try checkParameter(variance, "running variance", shape)
        var out = [Double](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let segs = layout.segments(channel: c, shape: shape), gv = v.gamma[c], gw = w.gamma[c]
            var finite = gv.isFinite && gw.isFinite
            forEachIndex(segs) { i in finite = finite && v.x[i].isFinite && w.x[i].isFinite }
            if finite, let root = ExactRoot(mean: mean[c], variance: variance[c], eps: eps) {
                let terms = [SurdTerm(Rational(gv), w.x), SurdTerm(Rational(gw), v.x)]
                forEachIndex(segs) { i in out[i] = root.element(terms, i) }
            } else {
                let r = mean[c].isFinite ? inverseStd(variance: variance[c], eps: eps) : .nan
                forEachIndex(segs) { i in out[i] = r * (gv * w.x[i] + gw * v.x[i]) }
            }
        }
        return out
    }

    /// D³y in inference mode is identically 0 (y is bilinear in (γ, x); spec §12.5).
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

    static func fill(_ out: inout [Double], _ segs: [ChannelSegment], _ value: Double) {
        forEachIndex(segs) { out[$0] = value }
    }
}

/// One term K·(zᵢ − m) of an output's rational part R (spec §12.7): a per-channel coefficient K,
/// a tensor z and the centre m (the channel's exact mean of z, or 0), with their enclosures.
struct SurdTerm {
    let k: Rational, kE: Enclosure
    let z: [Double]
    let centre: Rational, centreE: Enclosure

    init(_ k: Rational, _ z: [Double], centre: Rational = .zero, centreEnclosure: Enclosure = Enclosure(0)) {
        self.k = k; kE = Enclosure(k); self.z = z; self.centre = centre; centreE = centreEnclosure
    }
}

/// 1/√V of one channel, exactly (V > 0 rational), for outputs R/√V.
struct ExactRoot {
    let radicand: Rational
    let root: Enclosure

    init(radicand v: Rational) {
        radicand = v; root = Enclosure.inverseSquareRoot(v)
    }

    /// σ²_R + ε of given statistics, or nil when §4's IEEE path applies (a non-finite μ_R or
    /// σ²_R, or σ²_R + ε ≤ 0).
    init?(mean m: Double, variance v: Double, eps: Double) {
        guard m.isFinite, v.isFinite else { return nil }
        let radicand = Rational(v) + Rational(eps)
        guard radicand.signum > 0 else { return nil }
        self.init(radicand: radicand)
    }

    /// Σ K·(zᵢ − m) / √V at element i, correctly rounded (every zᵢ finite).
    @inline(__always) func element(_ terms: [SurdTerm], _ i: Int) -> Double {
        var r = Enclosure(0)
        for t in terms { r = r + t.kE * (Enclosure(t.z[i]) - t.centreE) }
        if let d = (r * root).correctlyRounded { return d }
        Reference.exactFallbacks?.increment()
        var exact = Rational.zero
        for t in terms { exact = exact + t.k * (Rational(t.z[i]) - t.centre) }
        return Rational.roundedSurd(exact, plus: .zero, over: radicand)
    }

    /// R/√V for a per-channel rational R, correctly rounded.
    func scalar(_ r: Rational) -> Double {
        if let d = (Enclosure(r) * root).correctlyRounded { return d }
        Reference.exactFallbacks?.increment()
        return Rational.roundedSurd(r, plus: .zero, over: radicand)
    }
}

/// One channel prepared for the training-mode closed forms, exactly: μ, V = σ² + ε and
/// W = 1/V as rationals, and for each tangent tensor zₖ (dy or a direction's x-part) its mean
/// mₖ, αₖ·√V = Aₖ = ⟨x − μ, zₖ⟩/n and cⱼₖ = ⟨zⱼ − mⱼ, zₖ − mₖ⟩/n — the quantities of spec §12.1
/// with the powers of r taken out (α = r·A, x̂ = r·(x − μ)), so that every closed form is r times
/// a rational. Nil when the channel holds a non-finite value or V = 0 (§4).
struct ExactDerivativeChannel {
    enum Source { case data, tangent(Int) }

    let segments: [ChannelSegment]
    let n: Int
    let x: [Double]
    let mean: Rational, meanE: Enclosure
    let root: ExactRoot
    let w: Rational
    let tangents: [[Double]]
    let means: [Rational]
    let meansE: [Enclosure]
    /// Aₖ = ⟨x − μ, zₖ⟩/n (so αₖ = r·Aₖ).
    let alpha: [Rational]
    /// cⱼₖ = ⟨zⱼ − mⱼ, zₖ − mₖ⟩/n.
    let c: [[Rational]]

    init?(_ x: [Double], channel ch: Int, shape: Shape, layout: Layout, eps: Double, tangents: [[Double]], parameters: [Double]) {
        let segs = layout.segments(channel: ch, shape: shape)
        guard parameters.allSatisfy(\.isFinite) else { return nil }
        var finite = true
        Reference.forEachIndex(segs) { i in finite = finite && x[i].isFinite && tangents.allSatisfy { $0[i].isFinite } }
        guard finite else { return nil }
        let m = x.withUnsafeBufferPointer { ChannelMoments.compute($0, segments: segs) }
        guard let e = m.exact else { return nil }
        let v = e.m2 / Rational(e.count) + Rational(eps)
        guard v.signum > 0 else { return nil }
        segments = segs; n = e.count; self.x = x; self.tangents = tangents
        mean = e.mean; meanE = e.meanEnclosure
        root = ExactRoot(radicand: v); w = .one / v
        let nn = Rational(n)
        var sums: [Rational] = [], alpha: [Rational] = []
        for z in tangents {
            let s = LongAccumulator(.sums), p = LongAccumulator(.products)
            Reference.forEachIndex(segs) { i in s.add(z[i]); p.addProduct(x[i], z[i]) }
            let sum = s.rational
            sums.append(sum)
            alpha.append((p.rational - e.mean * sum) / nn)
        }
        means = sums.map { $0 / nn }
        meansE = means.map { Enclosure($0) }
        self.alpha = alpha
        var c = [[Rational]](repeating: [Rational](repeating: .zero, count: tangents.count), count: tangents.count)
        for j in tangents.indices {
            for k in j..<tangents.count {
                let p = LongAccumulator(.products)
                Reference.forEachIndex(segs) { i in p.addProduct(tangents[j][i], tangents[k][i]) }
                c[j][k] = p.rational / nn - means[j] * means[k]
                c[k][j] = c[j][k]
            }
        }
        self.c = c
    }

    /// Writes R/√V, correctly rounded, at every element of the channel, with
    /// R = Σ K·(z − centre) over `terms` (`.data`: x − μ; `.tangent(k)`: zₖ − mₖ). Terms on the
    /// same tensor are merged first (D³y[v, v, w] passes v twice), so the enclosure is as tight
    /// as the sum allows.
    func evaluate(_ terms: [(Source, Rational)], into out: inout [Double]) {
        var merged: [(array: [Double], centre: Rational, centreE: Enclosure, k: Rational)] = []
        for (source, k) in terms {
            let (z, m, mE): ([Double], Rational, Enclosure)
            switch source {
            case .data: (z, m, mE) = (x, mean, meanE)
            case .tangent(let j): (z, m, mE) = (tangents[j], means[j], meansE[j])
            }
            if let at = merged.firstIndex(where: { $0.array == z }) { merged[at].k = merged[at].k + k } else {
                merged.append((z, m, mE, k))
            }
        }
        let st = merged.map { SurdTerm($0.k, $0.array, centre: $0.centre, centreEnclosure: $0.centreE) }
        Reference.forEachIndex(segments) { i in out[i] = root.element(st, i) }
    }

    /// R/√V for a per-channel rational R, correctly rounded.
    func scalar(_ r: Rational) -> Double { root.scalar(r) }
}
