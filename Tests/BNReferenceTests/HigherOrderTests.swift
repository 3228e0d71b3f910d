import BNCore
import BNGolden
import BNReference
import BNReferenceChecks
import Foundation
import Testing

/// The higher-order reference (spec §12, `Reference+HigherOrder.swift`) checked two ways:
/// against Richardson-extrapolated central differences of the already-checked first-order
/// reference, with a derived error bound (Cauchy estimates on a complex disk free of
/// singularities, plus the evaluations' rounding), and against an exact rational evaluation
/// by forward-mode hyper-dual numbers over Q(1/√s₀) (``ExactBN``), which does not use the
/// closed forms at all — every output must be its correctly rounded value.
@Suite struct HigherOrderTests {
    static let shapes: [(Shape, Layout)] = [
        (shape(2, 3, 1, 1), .nchw), (shape(2, 2, 3), .nchw), (shape(3, 2, 2, 2), .nhwc),
        (shape(4, 3), .nc), (shape(2, 1, 2, 3), .nhwc), (shape(2, 2), .nc), (shape(3, 1), .nc),
    ]
    static let u = 0x1p-53

    struct Case {
        var s: Shape, layout: Layout, x: [Double], gamma: [Double], dy: [Double], eps: Double
        var v: DerivativeDirection, w: DerivativeDirection, z: DerivativeDirection
    }

    static func makeCase(_ k: Int, offset: Double = 0.5, eps: Double = 1e-3) -> Case {
        let (s, layout) = shapes[k]
        let gamma = dyadicTensor(s.channels, seed: "ho/g/\(k)").map { $0 == 0 ? 0.5 : $0 }
        return Case(s: s, layout: layout, x: dyadicTensor(s.elementCount, seed: "ho/x/\(k)", offset: offset, spread: 2),
                    gamma: gamma, dy: dyadicTensor(s.elementCount, seed: "ho/dy/\(k)"), eps: eps,
                    v: randomDirection(s, seed: "ho/v/\(k)"), w: randomDirection(s, seed: "ho/w/\(k)"),
                    z: randomDirection(s, seed: "ho/z/\(k)"))
    }

    /// Finite-difference step: a power of two near ρ·2⁻⁹ (balances the h⁴ truncation and the
    /// δ/h rounding terms of ``Richardson`` for δ ≈ 16u·M).
    static func step(_ rho: Double) -> Double { powerOfTwoBelow(rho * 0x1p-9) }

    // MARK: - (a) finite differences of the first-order reference

    /// H·v (training) = d/dt of the backward at (x + t·vₓ, γ + t·v_γ); the β part is 0.
    @Test(arguments: shapes.indices)
    func trainingHVPMatchesDifferencesOfBackward(_ k: Int) throws {
        let c = Self.makeCase(k)
        let hv = try Reference.trainingHessianVectorProduct(c.x, dy: c.dy, shape: c.s, layout: c.layout, gamma: c.gamma,
                                                            eps: c.eps, direction: c.v)
        let rho = try finiteDifferenceRadius(c.x, shape: c.s, layout: c.layout, eps: c.eps, along: c.v.x)
        let h = Self.step(rho)
        func backward(_ t: Double) throws -> [Double] {
            let xt = zip(c.x, c.v.x).map { $0 + t * $1 }, gt = zip(c.gamma, c.v.gamma).map { $0 + t * $1 }
            let f = try Reference.trainingForward(xt, shape: c.s, layout: c.layout, eps: c.eps)
            let b = try Reference.trainingBackward(xt, dy: c.dy, shape: c.s, layout: c.layout, gamma: gt,
                                                   mean: f.mean, invStd: f.invStd)
            return b.dx + b.dGamma + b.dBeta
        }
        let (M, delta) = try Self.backwardBounds(c, rho: rho)
        let fd = try Richardson(h: h, rho: rho, M: M, delta: delta, backward)
        let got = hv.x + hv.gamma + hv.beta
        for i in got.indices {
            #expect(abs(got[i] - fd.value[i]) <= fd.bound[i],
                    "H·v[\(i)] \(got[i]) vs Richardson \(fd.value[i]) (bound \(fd.bound[i])), shape \(c.s) \(c.layout)")
        }
        #expect(hv.beta.allSatisfy { $0 == 0 })
    }

    /// D²y[v, w]ᵢ = ⟨eᵢ, D²y[v, w]⟩ = d/dt ⟨backward_{dy = eᵢ}(x + t·v), w⟩ (spec §12.4: the
    /// reverse-mode reading of the second derivative), for every element i.
    @Test(arguments: shapes.indices)
    func secondDerivativeMatchesDifferencesOfBackward(_ k: Int) throws {
        let c = Self.makeCase(k)
        let d2 = try Reference.trainingSecondDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, eps: c.eps, c.v, c.w)
        let rho = try finiteDifferenceRadius(c.x, shape: c.s, layout: c.layout, eps: c.eps, along: c.v.x)
        let h = Self.step(rho)
        // ψᵢ(t) = Σⱼ wⱼ·dxⱼ + Σ_c w_γ·dγ for dy = eᵢ: bounds from the backward's, weighted by |w|.
        var basis = c; var values: [Double] = [], bounds: [Double] = []
        for i in c.x.indices {
            basis.dy = [Double](repeating: 0, count: c.x.count); basis.dy[i] = 1
            let (M, delta) = try Self.backwardBounds(basis, rho: rho)
            let weights = c.w.x.map(abs) + c.w.gamma.map(abs) + c.w.beta.map { _ in 0 }
            let Mi = zip(weights, M).reduce(0) { $0 + $1.0 * $1.1 }
            let di = zip(weights, delta).reduce(0) { $0 + $1.0 * $1.1 } + 4 * Self.u * Mi * Double(weights.count)
            let dy = basis.dy
            let fd = try Richardson(h: h, rho: rho, M: [Mi], delta: [di]) { t in
                let xt = zip(c.x, c.v.x).map { $0 + t * $1 }, gt = zip(c.gamma, c.v.gamma).map { $0 + t * $1 }
                let f = try Reference.trainingForward(xt, shape: c.s, layout: c.layout, eps: c.eps)
                let b = try Reference.trainingBackward(xt, dy: dy, shape: c.s, layout: c.layout, gamma: gt,
                                                       mean: f.mean, invStd: f.invStd)
                return [zip(b.dx, c.w.x).reduce(0) { $0 + $1.0 * $1.1 } + zip(b.dGamma, c.w.gamma).reduce(0) { $0 + $1.0 * $1.1 }]
            }
            values.append(fd.value[0]); bounds.append(fd.bound[0])
        }
        for i in d2.indices {
            #expect(abs(d2[i] - values[i]) <= bounds[i],
                    "D²y[\(i)] \(d2[i]) vs Richardson \(values[i]) (bound \(bounds[i])), shape \(c.s) \(c.layout)")
        }
    }

    /// D³y[z, v, w] = d/dt D²y(x + t·z)[v, w] — differences of the (just checked) second derivative.
    @Test(arguments: shapes.indices)
    func thirdDerivativeMatchesDifferencesOfSecond(_ k: Int) throws {
        let c = Self.makeCase(k)
        let d3 = try Reference.trainingThirdDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, eps: c.eps, c.z, c.v, c.w)
        let rho = try finiteDifferenceRadius(c.x, shape: c.s, layout: c.layout, eps: c.eps, along: c.z.x)
        let h = Self.step(rho)
        let mb = try MagnitudeBounds(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, eps: c.eps, along: c.z, rho: rho, kappa: 2)
        let M = c.x.indices.map { mb.d2($0, c.v, c.w) }
        // The reference's own error at each point: ½ulp (correctly rounded, spec §7) ≤ 2u·M.
        let fd = try Richardson(h: h, rho: rho, M: M, delta: M.map { 2 * Self.u * $0 }) { t in
            let xt = zip(c.x, c.z.x).map { $0 + t * $1 }, gt = zip(c.gamma, c.z.gamma).map { $0 + t * $1 }
            return try Reference.trainingSecondDerivative(xt, shape: c.s, layout: c.layout, gamma: gt, eps: c.eps, c.v, c.w)
        }
        for i in d3.indices {
            #expect(abs(d3[i] - fd.value[i]) <= fd.bound[i],
                    "D³y[\(i)] \(d3[i]) vs Richardson \(fd.value[i]) (bound \(fd.bound[i])), shape \(c.s) \(c.layout)")
        }
    }

    /// Inference mode: the backward is affine in t along (vₓ, v_γ), so a central difference with
    /// h = 1 is exact up to rounding (dyadic data keep x ± v exact).
    @Test(arguments: shapes.indices)
    func inferenceDerivativesMatchDifferencesOfBackward(_ k: Int) throws {
        let c = Self.makeCase(k)
        var r = SpecRandom("ho/infer/\(k)")
        let mean = (0..<c.s.channels).map { _ in r.normal() }, variance = (0..<c.s.channels).map { _ in 0.2 + r.uniform() }
        let hv = try Reference.inferenceHessianVectorProduct(c.x, dy: c.dy, shape: c.s, layout: c.layout, gamma: c.gamma,
                                                             mean: mean, variance: variance, eps: c.eps, direction: c.v)
        func backward(_ t: Double, _ dy: [Double]) throws -> BackwardResult {
            try Reference.inferenceBackward(zip(c.x, c.v.x).map { $0 + t * $1 }, dy: dy, shape: c.s, layout: c.layout,
                                            gamma: zip(c.gamma, c.v.gamma).map { $0 + t * $1 }, mean: mean,
                                            variance: variance, eps: c.eps)
        }
        let p = try backward(1, c.dy), m = try backward(-1, c.dy)
        let fd = zip(p.dx + p.dGamma, m.dx + m.dGamma).map { ($0 - $1) / 2 }
        let mag = zip(p.dx + p.dGamma, m.dx + m.dGamma).map { abs($0) + abs($1) }
        let n = Double(c.s.perChannelCount)
        for (i, got) in (hv.x + hv.gamma).enumerated() {
            #expect(abs(got - fd[i]) <= 8 * n * Self.u * mag[i] + 1e-300, "inference H·v[\(i)]: \(got) vs \(fd[i])")
        }
        let d2 = try Reference.inferenceSecondDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, mean: mean,
                                                         variance: variance, eps: c.eps, c.v, c.w)
        // D²y[v, w]ᵢ by the reverse reading with dy = eᵢ, as for training.
        for i in c.x.indices {
            var e = [Double](repeating: 0, count: c.x.count); e[i] = 1
            let bp = try backward(1, e), bm = try backward(-1, e)
            let dot = { (b: BackwardResult) in zip(b.dx, c.w.x).reduce(0) { $0 + $1.0 * $1.1 } + zip(b.dGamma, c.w.gamma).reduce(0) { $0 + $1.0 * $1.1 } }
            let mg = zip(bp.dx + bp.dGamma, c.w.x + c.w.gamma).reduce(0) { $0 + abs($1.0 * $1.1) } * 2
            #expect(abs(d2[i] - (dot(bp) - dot(bm)) / 2) <= 8 * n * Self.u * mg + 1e-300, "inference D²y[\(i)]")
        }
        let d3 = try Reference.inferenceThirdDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, mean: mean,
                                                        variance: variance, eps: c.eps, c.z, c.v, c.w)
        #expect(d3.allSatisfy { $0 == 0 })
    }

    /// Bounds on the disk |t| ≤ ρ of the training backward's components along c.v (M) and of
    /// the Double reference backward's rounding at points of the real segment (δ), per
    /// element of dx + dγ + dβ. With Xᵢ, Γ of ``MagnitudeBounds`` (κ = 2) and e = dy:
    ///   |dxᵢ| ≤ Γ·2r₀·(|eᵢ − mean e| + Xᵢ·Q), Q = mean(|e|·X);  |dγ| ≤ n·Q;  dβ constant.
    /// Rounding of `Reference.trainingBackward` (its mean within 1 ulp, invstd within 4u, x̂
    /// within eₓ = 6u·X + 2u·r|μ|, compensated sums): δ_dx ≤ Γ·2r₀·(16u·(|e| + |mean e| + X·Q)
    /// + eₓ·Q + X·mean(|e|·eₓ)), δ_dγ ≤ 4u·n·Q + Σ|e|·eₓ.
    static func backwardBounds(_ c: Case, rho: Double) throws -> (M: [Double], delta: [Double]) {
        let mb = try MagnitudeBounds(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, eps: c.eps, along: c.v, rho: rho, kappa: 2)
        let f = try Reference.trainingForward(c.x, shape: c.s, layout: c.layout, eps: c.eps)
        var M = [Double](repeating: 0, count: c.x.count + 2 * c.s.channels), delta = M
        for ch in 0..<c.s.channels {
            let idx = mb.members[ch], r = mb.rPerChannel[ch], n = mb.n
            let absMu = abs(f.mean[ch]) + rho * abs(idx.reduce(0.0) { $0 + c.v.x[$1] } / n)
            let me = idx.reduce(0.0) { $0 + c.dy[$1] } / n
            let Q = idx.reduce(0.0) { $0 + abs(c.dy[$1]) * mb.X[$1] } / n
            let ex = { (i: Int) in 6 * u * mb.X[i] + 2 * u * r * absMu }
            let Qe = idx.reduce(0.0) { $0 + abs(c.dy[$1]) * ex($1) } / n
            let G = mb.Gamma[idx[0]]
            for i in idx {
                M[i] = G * r * (abs(c.dy[i] - me) + mb.X[i] * Q)
                delta[i] = G * r * (16 * u * (abs(c.dy[i]) + abs(me) + mb.X[i] * Q) + ex(i) * Q + mb.X[i] * Qe)
            }
            M[c.x.count + ch] = n * Q
            delta[c.x.count + ch] = 4 * u * n * Q + n * Qe
        }
        return (M, delta)
    }

    // MARK: - (b) exact rational evaluation

    /// Every output is the correctly rounded exact value (spec §7, Reference+HigherOrder's
    /// contract), decided by the exact oracle (``ExactOracle/isNearest(_:to:)``) against the
    /// exact value from hyper-dual numbers (3 units: D²y from the ε₁ε₂ component, D³y from
    /// ε₁ε₂ε₃; H·v from the §2 backward formula on 1-unit jets along v, i.e. exact
    /// forward-over-reverse) — on data with offset (condition up to ~10³) and eps from 0 to 1.
    @Test(arguments: shapes.indices)
    func derivativesAreCorrectlyRounded(_ k: Int) throws {
        let combos: [(Double, Double)] = [(0.5, 1e-3), (300.0, 0.0), (-2.0, 0.25), (40.0, 0x1p-10)]
        let (offset, eps) = combos[k % 4]
        let c = Self.makeCase(k, offset: offset, eps: eps)
        let beta = [Double](repeating: 0, count: c.s.channels)
        let jets = ExactBN.training(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, beta: beta, eps: eps,
                                    directions: [c.z, c.v, c.w])
        let d2 = try Reference.trainingSecondDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, eps: eps, c.v, c.w)
        let d3 = try Reference.trainingThirdDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, eps: eps, c.z, c.v, c.w)
        func check(_ what: String, _ got: Double, _ exact: ExactOracle.Real) {
            #expect(ExactOracle.isNearest(got, to: exact),
                    "\(what) = \(got), nearest to the exact value \(ExactOracle.nearest(exact)); offset \(offset) eps \(eps) \(c.s) \(c.layout)")
        }
        for i in c.x.indices {
            let (jet, s0) = jets[i]
            check("D²y[\(i)]", d2[i], ExactBN.real(jet.c[0b110], s0: s0))
            check("D³y[\(i)]", d3[i], ExactBN.real(jet.c[0b111], s0: s0))
        }
        // H·v exactly: the §2 backward evaluated on 1-unit jets along v (forward-over-reverse).
        let hv = try Reference.trainingHessianVectorProduct(c.x, dy: c.dy, shape: c.s, layout: c.layout, gamma: c.gamma,
                                                            eps: eps, direction: c.v)
        for ch in 0..<c.s.channels {
            let idx = c.layout.segments(channel: ch, shape: c.s).flatMap { sg in (0..<sg.count).map { sg.offset + $0 * sg.stride } }
            let xj = idx.map { i -> Jet in Jet([Surd(BigRational(c.x[i])), Surd(BigRational(c.v.x[i]))]) }
            let gj = Jet([Surd(BigRational(c.gamma[ch])), Surd(BigRational(c.v.gamma[ch]))])
            let (dx, dg, s0) = ExactBN.trainingBackwardChannel(x: xj, gamma: gj, dy: idx.map { BigRational(c.dy[$0]) },
                                                              eps: BigRational(eps))
            for (j, i) in idx.enumerated() { check("H·v x[\(i)]", hv.x[i], ExactBN.real(dx[j].c[1], s0: s0)) }
            check("H·v γ[\(ch)]", hv.gamma[ch], ExactBN.real(dg.c[1], s0: s0))
        }
        #expect(hv.beta.allSatisfy { $0 == 0 })
        // Inference mode, against §12.5 exactly (γ² + 1/4 as σ²_R).
        let variance = c.gamma.map { $0 * $0 + 0.25 }, mean = c.gamma
        let hi = try Reference.inferenceHessianVectorProduct(c.x, dy: c.dy, shape: c.s, layout: c.layout, gamma: c.gamma,
                                                             mean: mean, variance: variance, eps: eps, direction: c.v)
        let d2i = try Reference.inferenceSecondDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, mean: mean,
                                                          variance: variance, eps: eps, c.v, c.w)
        typealias F = ExactOracle.Fraction
        for ch in 0..<c.s.channels {
            let V = F(variance[ch]) + F(eps)
            var s = F.zero
            for sg in c.layout.segments(channel: ch, shape: c.s) {
                for m in 0..<sg.count {
                    let i = sg.offset + m * sg.stride
                    check("inference H·v x[\(i)]", hi.x[i], ExactOracle.Real(.zero, plus: F(c.v.gamma[ch]) * F(c.dy[i]), overSquareRootOf: V))
                    check("inference D²y[\(i)]", d2i[i], ExactOracle.Real(.zero, plus: F(c.v.gamma[ch]) * F(c.w.x[i]) + F(c.w.gamma[ch]) * F(c.v.x[i]),
                                                                          overSquareRootOf: V))
                    s = s + F(c.dy[i]) * F(c.v.x[i])
                }
            }
            check("inference H·v γ[\(ch)]", hi.gamma[ch], ExactOracle.Real(.zero, plus: s, overSquareRootOf: V))
        }
    }

    /// Edge semantics (Reference+HigherOrder's contract, spec §4): results are bit-identical
    /// across layouts; NaN in a channel makes that channel's outputs NaN and leaves the others
    /// as computed without it; σ² = 0 with ε = 0 gives NaN; n = 1 (ε > 0) gives 0; a
    /// wrong-sized direction is refused.
    @Test func edgeSemantics() throws {
        let s = shape(3, 2, 2, 2), c = Self.makeCase(0)
        let x = dyadicTensor(s.elementCount, seed: "ho/edge/x", offset: 1, spread: 2)
        let v = randomDirection(s, seed: "ho/edge/v"), w = randomDirection(s, seed: "ho/edge/w")
        let dy = dyadicTensor(s.elementCount, seed: "ho/edge/dy"), g = [0.75, -1.5]
        func all(_ x: [Double], _ l: Layout, _ v: DerivativeDirection, _ w: DerivativeDirection, _ dy: [Double], eps: Double = 1e-3)
            throws -> [[Double]] {
            let h = try Reference.trainingHessianVectorProduct(x, dy: dy, shape: s, layout: l, gamma: g, eps: eps, direction: v)
            return [h.x, h.gamma, try Reference.trainingSecondDerivative(x, shape: s, layout: l, gamma: g, eps: eps, v, w),
                    try Reference.trainingThirdDerivative(x, shape: s, layout: l, gamma: g, eps: eps, v, w, v)]
        }
        // Layouts: the same logical data in NHWC gives the same bits, relaid.
        let nchw = try all(x, .nchw, v, w, dy)
        let re = { (a: [Double]) in a.relayout(s, from: .nchw, to: .nhwc) }
        let nhwc = try all(re(x), .nhwc, DerivativeDirection(x: re(v.x), gamma: v.gamma, beta: v.beta),
                           DerivativeDirection(x: re(w.x), gamma: w.gamma, beta: w.beta), re(dy))
        for k in [0, 2, 3] { #expect(nhwc[k].map(\.bitPattern) == re(nchw[k]).map(\.bitPattern), "layout: output \(k)") }
        #expect(nhwc[1].map(\.bitPattern) == nchw[1].map(\.bitPattern))
        // NaN in channel 0: channel 0 NaN, channel 1 unchanged.
        var xn = x; xn[Layout.nchw.segments(channel: 0, shape: s)[0].offset] = .nan
        let withNaN = try all(xn, .nchw, v, w, dy)
        for k in [0, 2, 3] {
            for c in 0..<2 {
                let idx = Layout.nchw.segments(channel: c, shape: s).flatMap { sg in (0..<sg.count).map { sg.offset + $0 } }
                #expect(idx.allSatisfy { c == 0 ? withNaN[k][$0].isNaN : withNaN[k][$0].bitPattern == nchw[k][$0].bitPattern },
                        "NaN channel \(c), output \(k)")
            }
        }
        #expect(withNaN[1][0].isNaN && withNaN[1][1] == nchw[1][1])
        // Constant channel with ε = 0: x̂ = 0·∞.
        let constant = try all([Double](repeating: 2.5, count: s.elementCount), .nchw, v, w, dy, eps: 0)
        #expect(constant.allSatisfy { $0.allSatisfy(\.isNaN) })
        // n = 1: centred directions and x̂ vanish.
        let one = shape(1, 2)
        let h1 = try Reference.trainingHessianVectorProduct([3, -1], dy: [0.5, 2], shape: one, layout: .nc, gamma: g, eps: 1e-3,
                                                            direction: DerivativeDirection(x: [1, 2], gamma: [3, 4], beta: [5, 6]))
        #expect(h1.x == [0, 0] && h1.gamma == [0, 0] && h1.beta == [0, 0])
        let d1 = DerivativeDirection(x: [1, 2], gamma: [3, 4], beta: [0, 0])
        #expect(try Reference.trainingSecondDerivative([3, -1], shape: one, layout: .nc, gamma: g, eps: 1e-3, d1, d1) == [0, 0])
        // A direction of the wrong size is refused.
        #expect(throws: BNError.self) {
            try Reference.trainingSecondDerivative(c.x, shape: c.s, layout: c.layout, gamma: c.gamma, eps: c.eps,
                                                   DerivativeDirection(x: [1], channels: c.s.channels), c.w)
        }
    }

    /// Issue #19's probe (pytorch/pytorch#196699): 2×2×2 NCL input xᵢ(t) = (i + 1)t + (i mod 3 − 1)t² + i,
    /// γ = (1.5, −0.5), β = (0.25, 1), eps = 0.25, f(t) = Σ Wᵢ·BN(x(t))ᵢ with Wᵢ = i + 1, at t = −6.
    /// By the chain rule, with x′ and x″ the t-derivatives of x (x‴ = 0):
    ///   f″ = ⟨W, D²y[x′, x′]⟩ + ⟨W, Dy[x″]⟩ and f‴ = ⟨W, D³y[x′, x′, x′]⟩ + 3⟨W, D²y[x′, x″]⟩,
    /// where ⟨W, Dy[x″]⟩ = ⟨backward(W).dx, x″⟩. Both against the exact value of the
    /// hyper-dual evaluation of f at t = −6 + ε₁ + ε₂ + ε₃. `tools/torch_higher_order_repro.py`
    /// prints PyTorch's numbers next to these; run with `swift test --filter HigherOrderTests`
    /// to see them printed.
    @Test func torchProbeValues() throws {
        let s = shape(2, 2, 2), t = -6.0
        let lin: [Double] = (0..<8).map { Double($0 + 1) }, quad: [Double] = (0..<8).map { Double($0 % 3 - 1) }
        let x: [Double] = (0..<8).map { (i: Int) -> Double in lin[i] * t + quad[i] * (t * t) + Double(i) }
        let x1: [Double] = (0..<8).map { (i: Int) -> Double in lin[i] + 2 * quad[i] * t }
        let x2: [Double] = quad.map { 2 * $0 }
        let gamma = [1.5, -0.5], beta = [0.25, 1.0], W = (0..<8).map { Double($0 + 1) }, eps = 0.25
        let d1 = DerivativeDirection(x: x1, channels: 2), d2 = DerivativeDirection(x: x2, channels: 2)
        let f = try Reference.trainingForward(x, shape: s, layout: .nchw, gamma: gamma, beta: beta, eps: eps)
        let bw = try Reference.trainingBackward(x, dy: W, shape: s, layout: .nchw, gamma: gamma, mean: f.mean, invStd: f.invStd)
        let dot = { (a: [Double], b: [Double]) in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let f2 = dot(W, try Reference.trainingSecondDerivative(x, shape: s, layout: .nchw, gamma: gamma, eps: eps, d1, d1))
            + dot(bw.dx, x2)
        let f3 = dot(W, try Reference.trainingThirdDerivative(x, shape: s, layout: .nchw, gamma: gamma, eps: eps, d1, d1, d1))
            + 3 * dot(W, try Reference.trainingSecondDerivative(x, shape: s, layout: .nchw, gamma: gamma, eps: eps, d1, d2))
        // Exact: x(t) as a hyper-dual polynomial in t = −6 + ε₁ + ε₂ + ε₃; f″ is the ε₁ε₂
        // component of f, f‴ the ε₁ε₂ε₃ one. Each channel has its own s₀, so each channel's
        // sum is rounded separately and the two added (≤ 1 ulp of the parts).
        var e2 = 0.0, e3 = 0.0, parts = 0.0
        for c in 0..<2 {
            let idx = Layout.nchw.segments(channel: c, shape: s).flatMap { sg in (0..<sg.count).map { sg.offset + $0 } }
            let xj = idx.map { i -> Jet in
                // x(t₀ + Σε) = x + x′·Σεₖ + (x″/2)(Σεₖ)², (Σεₖ)² = 2(ε₁ε₂ + ε₁ε₃ + ε₂ε₃)
                var j = Jet(constant: Surd(BigRational(x[i])), units: 3)
                for m in [1, 2, 4] { j.c[m] = Surd(BigRational(x1[i])) }
                for m in [3, 5, 6] { j.c[m] = Surd(BigRational(x2[i])) }
                return j
            }
            let (y, s0) = ExactBN.trainingChannel(x: xj, gamma: Jet(constant: Surd(BigRational(gamma[c])), units: 3),
                                                  beta: BigRational(beta[c]), eps: BigRational(eps))
            var a2 = Surd.zero, a3 = Surd.zero
            for (j, i) in idx.enumerated() { a2 = a2 + y[j].c[3] * BigRational(W[i]); a3 = a3 + y[j].c[7] * BigRational(W[i]) }
            let p2 = a2.double(s0: s0), p3 = a3.double(s0: s0)
            e2 += p2; e3 += p3; parts += abs(p2) + abs(p3)
        }
        print("torch probe (issue #19 / pytorch#196699), BNSpec reference: f''(-6) = \(f2), f'''(-6) = \(f3)")
        print("torch probe, exact hyper-dual evaluation:                  f''(-6) = \(e2), f'''(-6) = \(e3)")
        // Tolerance: the Double dot products (n = 8 terms: 8u·Σ|terms|), the reference's
        // derivatives (≤ 2 ulp each, inside the same Σ) and the backward's rounding on the
        // x″ term (16u·|γ|r·(|W| + |mean W| + |x̂·mean(W x̂)|) per element, §5.2's form).
        let d2a = try Reference.trainingSecondDerivative(x, shape: s, layout: .nchw, gamma: gamma, eps: eps, d1, d1)
        let d3a = try Reference.trainingThirdDerivative(x, shape: s, layout: .nchw, gamma: gamma, eps: eps, d1, d1, d1)
        let d2b = try Reference.trainingSecondDerivative(x, shape: s, layout: .nchw, gamma: gamma, eps: eps, d1, d2)
        var back = 0.0
        for c in 0..<2 {
            let idx = Layout.nchw.segments(channel: c, shape: s).flatMap { sg in (0..<sg.count).map { sg.offset + $0 } }
            let xh = idx.map { (x[$0] - f.mean[c]) * f.invStd[c] }
            var mw = 0.0, q = 0.0
            for (j, i) in idx.enumerated() { mw += W[i] / 4; q += W[i] * xh[j] / 4 }
            let k: Double = 16 * Self.u * abs(gamma[c]) * f.invStd[c]
            for (j, i) in idx.enumerated() {
                let term: Double = abs(W[i]) + abs(mw) + abs(xh[j] * q)
                back += k * term * abs(x2[i])
            }
        }
        let absDot = { (a: [Double], b: [Double]) in zip(a, b).reduce(0) { $0 + abs($1.0 * $1.1) } }
        let t2 = absDot(W, d2a) + absDot(bw.dx, x2), t3 = absDot(W, d3a) + 3 * absDot(W, d2b)
        #expect(abs(f2 - e2) <= 16 * Self.u * (t2 + parts) + back, "f'' \(f2) vs exact \(e2)")
        #expect(abs(f3 - e3) <= 16 * Self.u * (t3 + parts), "f''' \(f3) vs exact \(e3)")
    }
}
