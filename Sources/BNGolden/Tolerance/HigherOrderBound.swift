import BNCore
import BNReference

/// The error bound of spec §12.6 for the higher-order derivatives of an honest implementation
/// with unit roundoff u (``ToleranceModel``): each output is a sum of monomials c·∏ⱼfⱼ of
/// bounded factors (|fⱼ| ≤ Fⱼ) computed with errors δⱼ; to first order its error is at most
///
///     τ = K·( Σₖ |cₖ|·( Σⱼ δₖⱼ·∏_{l≠j} Fₖₗ + mₖ·u·∏ⱼ Fₖⱼ ) + (T − 1)·u·S ),   S = Σₖ |cₖ|·∏ⱼ Fₖⱼ,
///
/// mₖ the monomial's multiplications, T the number of monomials, K = ``ToleranceModel/safety``.
/// The factors and their errors come from §5.1–5.2 (``ToleranceModel``): r with relative error ρ,
/// x̂ with ``ToleranceModel/xhatError(x:mean:r:xhat:bounds:rho:)``, centred inputs and channel
/// reductions as in §12.6. `S` — the sum of the moduli of the closed form's monomials — is each
/// element's natural scale (the resolution of spec §5.4).
///
/// One implementation: ``ToleranceBudget`` composes the judge's tolerances of `hvp-train`,
/// `hvp-infer`, `d2-train` and `d3-train` from it, and the higher-order laws (24–27) use it as
/// the tolerance of their honest Double formulations.
public struct HigherOrderBound: Sendable {
    /// A factor of a monomial: its modulus bound F and the bound of its computed error.
    public struct Factor: Sendable {
        public var F: Double
        public var err: Double
        public init(F: Double, err: Double) { self.F = F; self.err = err }
        /// An input taken exactly (γ and the directions' γ parts).
        public static func exact(_ v: Double) -> Factor { Factor(F: abs(v), err: 0) }
    }

    /// τ and S per element of an output.
    public struct Output: Sendable {
        public var tau: [Double]
        public var magnitude: [Double]
    }

    public let model: ToleranceModel
    var u: Double { model.u }
    let n: Double
    /// Each channel's element indices (storage order).
    let members: [[Int]]
    /// r = 1/√(σ² + ε) per channel and its relative error bound ρ (+∞: unresolvable, §5.4).
    let r: [Double], rho: [Double]
    /// |x̂ᵢ| and the bound of its computed error, per element.
    let X: [Double], e: [Double]

    /// The bound for data x whose batch statistics the implementation computes (training mode),
    /// from the exact analysis of x (``CaseAnalysis/Batch``).
    public init(x: [Double], batch: CaseAnalysis.Batch, shape: Shape, layout: Layout, eps: Double, model: ToleranceModel) {
        self.model = model
        n = Double(shape.perChannelCount)
        var members: [[Int]] = [], rr: [Double] = [], rho: [Double] = []
        var X = [Double](repeating: 0, count: x.count), e = X
        for c in 0..<shape.channels {
            var idx: [Int] = []
            for seg in layout.segments(channel: c, shape: shape) { for k in 0..<seg.count { idx.append(seg.offset + k * seg.stride) } }
            members.append(idx)
            let mu = batch.mean[c], v = batch.biasedVariance[c], rc = 1 / (v + eps).squareRoot()
            let bounds = model.statBounds(batch.data[c], variance: v)
            let rh = model.rho(bounds, variance: v, eps: eps)
            rr.append(rc); rho.append(rh)
            for i in idx {
                X[i] = abs(x[i] - mu) * rc
                e[i] = model.xhatError(x: x[i], mean: mu, r: rc, xhat: X[i], bounds: bounds, rho: rh)
            }
        }
        self.members = members; r = rr; self.rho = rho; self.X = X; self.e = e
    }

    /// The same from x alone (analysed here).
    public init(x: [Double], shape: Shape, layout: Layout, eps: Double, model: ToleranceModel) throws {
        self.init(x: x, batch: try CaseAnalysis.Batch(x, shape: shape, layout: layout), shape: shape, layout: layout,
                  eps: eps, model: model)
    }

    // MARK: factors

    /// A centred input z ∈ {v, w, dy} per element: Zᵢ = |zᵢ| + |mean z| (bounds |zᵢ − mean z|
    /// whether or not the implementation centres) and ηᵢ = n·u·max|z| + u·Zᵢ.
    func centred(_ z: [Double]) -> [Factor] {
        var out = [Factor](repeating: Factor(F: 0, err: 0), count: z.count)
        for idx in members {
            var s = 0.0, mx = 0.0
            for i in idx { s += z[i]; mx = max(mx, abs(z[i])) }
            let m = abs(s / n), dm = n * u * mx
            for i in idx { let Z = abs(z[i]) + m; out[i] = Factor(F: Z, err: dm + u * Z) }
        }
        return out
    }

    /// A channel reduction mean(p·q) of two per-element factors: F̄ = mean(P·Q),
    /// δ̄ = mean(δ_p·Q + P·δ_q) + (n + 1)·u·F̄ (recursive summation, §5.1) + t (the products'
    /// underflow, ``ToleranceModel/tiny``).
    func mean(_ c: Int, _ p: (Int) -> Factor, _ q: (Int) -> Factor) -> Factor {
        var F = 0.0, err = 0.0
        for i in members[c] { let a = p(i), b = q(i); F += a.F * b.F; err += a.err * b.F + a.F * b.err }
        return Factor(F: F / n, err: err / n + (n + 1) * u * F / n + model.tiny)
    }

    func xhat(_ i: Int) -> Factor { Factor(F: X[i], err: e[i]) }
    func rf(_ c: Int) -> Factor { Factor(F: r[c], err: rho[c] * r[c]) }

    /// (τ, S) of Σ coef·∏ factors.
    func combine(_ terms: [(Double, [Factor])]) -> (tau: Double, magnitude: Double) {
        var err = 0.0, mag = 0.0
        for (coef, fs) in terms {
            let prod = fs.reduce(abs(coef)) { $0 * $1.F }
            mag += prod
            var e = Double(fs.count) * u * prod
            for j in fs.indices where fs[j].err != 0 {
                e += abs(coef) * fs[j].err * fs.indices.reduce(1.0) { $1 == j ? $0 : $0 * fs[$1].F }
            }
            err += e
        }
        err += Double(max(terms.count - 1, 0)) * u * mag
        return (ToleranceModel.safety * err, mag)
    }

    // MARK: outputs (spec §12.6's table)

    /// hvp-train: (Hv)ₓ per element and (Hv)_γ per channel; (Hv)_β has τ = 0 (returned exactly).
    public func hvp(dy: [Double], v: DerivativeDirection, gamma: [Double]) -> (x: Output, gamma: Output) {
        let E = centred(dy), A = centred(v.x)
        var tx = [Double](repeating: 0, count: dy.count), sx = tx, tg = [Double](), sg = [Double]()
        for (c, idx) in members.enumerated() {
            let alpha = mean(c, xhat, { A[$0] }), q = mean(c, xhat, { E[$0] }), kappa = mean(c, { E[$0] }, { A[$0] })
            let g = Factor.exact(v.gamma[c]), gm = Factor.exact(gamma[c]), r = rf(c)
            for i in idx {
                let b = combine([(1, [g, r, E[i]]), (1, [g, r, q, xhat(i)]),
                                 (3, [gm, r, r, q, alpha, xhat(i)]), (1, [gm, r, r, kappa, xhat(i)]),
                                 (1, [gm, r, r, q, A[i]]), (1, [gm, r, r, alpha, E[i]])])
                tx[i] = b.tau; sx[i] = b.magnitude
            }
            let b = combine([(n, [r, kappa]), (n, [r, q, alpha])])
            tg.append(b.tau); sg.append(b.magnitude)
        }
        return (Output(tau: tx, magnitude: sx), Output(tau: tg, magnitude: sg))
    }

    /// d2-train: D²y[v, w] = g_v·x̂′[w] + g_w·x̂′[v] + γ·x̂″[v, w] expanded into monomials.
    public func d2(v: DerivativeDirection, w: DerivativeDirection, gamma: [Double]) -> Output {
        let A = centred(v.x), B = centred(w.x)
        var tau = [Double](repeating: 0, count: A.count), mag = tau
        for (c, idx) in members.enumerated() {
            let av = mean(c, xhat, { A[$0] }), aw = mean(c, xhat, { B[$0] }), cvw = mean(c, { A[$0] }, { B[$0] })
            let gv = Factor.exact(v.gamma[c]), gw = Factor.exact(w.gamma[c]), gm = Factor.exact(gamma[c]), r = rf(c)
            for i in idx {
                let b = combine([(1, [gv, r, B[i]]), (1, [gv, r, xhat(i), aw]), (1, [gw, r, A[i]]), (1, [gw, r, xhat(i), av]),
                                 (3, [gm, r, r, xhat(i), av, aw]), (1, [gm, r, r, xhat(i), cvw]),
                                 (1, [gm, r, r, A[i], aw]), (1, [gm, r, r, B[i], av])])
                tau[i] = b.tau; mag[i] = b.magnitude
            }
        }
        return Output(tau: tau, magnitude: mag)
    }

    /// d3-train: D³y[u, v, w] expanded into monomials.
    public func d3(u d0: DerivativeDirection, v d1: DerivativeDirection, w d2: DerivativeDirection, gamma: [Double]) -> Output {
        let dirs = [d0, d1, d2], cen = dirs.map { centred($0.x) }
        var tau = [Double](repeating: 0, count: d0.x.count), mag = tau
        for (c, idx) in members.enumerated() {
            let al = (0..<3).map { k in mean(c, xhat, { cen[k][$0] }) }
            let cc = (0..<3).map { j in (0..<3).map { k in mean(c, { cen[j][$0] }, { cen[k][$0] }) } }
            let gm = Factor.exact(gamma[c]), r = rf(c), g = dirs.map { Factor.exact($0.gamma[c]) }
            for i in idx {
                var terms: [(Double, [Factor])] = []
                for (k, l, m) in [(0, 1, 2), (1, 0, 2), (2, 0, 1)] {
                    // g_k·x̂″[l, m]
                    terms += [(3, [g[k], r, r, xhat(i), al[l], al[m]]), (1, [g[k], r, r, xhat(i), cc[l][m]]),
                              (1, [g[k], r, r, cen[l][i], al[m]]), (1, [g[k], r, r, cen[m][i], al[l]])]
                    // γ·x̂‴'s terms in a_k and x̂·c_lm·α_k
                    terms += [(3, [gm, r, r, r, cen[k][i], al[l], al[m]]), (1, [gm, r, r, r, cen[k][i], cc[l][m]]),
                              (3, [gm, r, r, r, xhat(i), cc[l][m], al[k]])]
                }
                terms.append((15, [gm, r, r, r, xhat(i), al[0], al[1], al[2]]))
                let b = combine(terms)
                tau[i] = b.tau; mag[i] = b.magnitude
            }
        }
        return Output(tau: tau, magnitude: mag)
    }

    /// hvp-infer with given statistics (r_R = 1/√(σ²_R + ε) of relative error ρ_R, §5.1 with
    /// δμ = δv = 0): (Hv)ₓ = g·r_R·dy, τ = K·|g|·r_R·|dy|·(ρ_R + 3u) (as the inference backward's
    /// dx); (Hv)_γ = r_R·⟨dy, vₓ⟩, τ = K·r_R·(Σ|dy·vₓ|·(ρ_R + (n + 2)u) + n·t).
    public static func hvpInference(dy: [Double], v: DerivativeDirection, variance: [Double], shape: Shape, layout: Layout,
                                    eps: Double, model: ToleranceModel) -> (x: Output, gamma: Output) {
        let K = ToleranceModel.safety, u = model.u, nn = Double(shape.perChannelCount)
        var tx = [Double](repeating: 0, count: dy.count), sx = tx, tg = [Double](), sg = [Double]()
        for c in 0..<shape.channels {
            let r = 1 / (variance[c] + eps).squareRoot()
            let rho = model.rho(ToleranceModel.StatBounds(mean: 0, variance: 0), variance: variance[c], eps: eps)
            let g = abs(v.gamma[c])
            var s = 0.0
            for seg in layout.segments(channel: c, shape: shape) {
                for k in 0..<seg.count {
                    let i = seg.offset + k * seg.stride
                    sx[i] = g * r * abs(dy[i]); tx[i] = K * sx[i] * (rho + 3 * u)
                    s += abs(dy[i] * v.x[i])
                }
            }
            sg.append(r * s); tg.append(K * r * (s * (rho + (nn + 2) * u) + nn * model.tiny))
        }
        return (Output(tau: tx, magnitude: sx), Output(tau: tg, magnitude: sg))
    }
}
