import BNCore
import BNGolden
import BNReference
import PropertyBased
import Testing

/// Laws 24–27: the higher-order derivatives of BN (spec §12, issue #19) — symmetry of the
/// Hessian, linearity in the direction, agreement of independent AD formulations, and
/// invariance to shifting x. Each compares values computed independently, within bounds
/// derived from the reference's contract (correctly rounded: ½ulp, spec §7) and from spec §12.6's bound (``BNGolden/HigherOrderBound``)
/// for the honest Double formulations.
@Suite struct LawsOfHigherOrder {
    static let u = 0x1p-53

    /// Inputs small enough for the recorded (reverse-over-reverse) formulation: at most 3
    /// channels and 2×2 spatial; all layouts and the well-conditioned float families.
    static func gen() -> PropertyBased.Generator<LawInput, some SendableSequenceType> {
        LawInput.gen().map { input in
            var s = input
            s.channels = min(s.channels, 3)
            if !s.spatial.isEmpty { s.spatial = [min(s.spatial[0], 2), min(s.spatial[1], 2)] }
            return s
        }
    }

    /// The reference's own error for an output of value v: it is correctly rounded (spec §7), so
    /// at most half an ulp of v.
    static func referenceError(_ v: Double) -> Double { v.magnitude.ulp / 2 }

    struct Setup {
        var input: LawInput, x: [Double], dy: [Double], gamma: [Double], beta: [Double]
        var v: DerivativeDirection, w: DerivativeDirection, z: DerivativeDirection, bound: HigherOrderBound
        var n: Double { Double(input.shape.perChannelCount) }
        init(_ input: LawInput) throws {
            self.input = input
            x = input.x(); dy = input.dy()
            (gamma, beta) = input.parameters()
            v = lawDirection(input, "v"); w = lawDirection(input, "w"); z = lawDirection(input, "z")
            bound = try HigherOrderBound(x: x, shape: input.shape, layout: input.layout, eps: input.eps,
                                         model: ToleranceModel(computeRoundoff: LawsOfHigherOrder.u, storage: .f64))
        }
        func hvp(_ d: DerivativeDirection, at xx: [Double]? = nil) throws -> [Double] {
            let h = try Reference.trainingHessianVectorProduct(xx ?? x, dy: dy, shape: input.shape, layout: input.layout,
                                                               gamma: gamma, eps: input.eps, direction: d)
            return h.x + h.gamma + h.beta
        }
        /// τ and S of H·d, padded with zeros for the β part.
        func hvpBound(_ d: DerivativeDirection) -> (tau: [Double], magnitude: [Double]) {
            let b = bound.hvp(dy: dy, v: d, gamma: gamma)
            let zeros = [Double](repeating: 0, count: input.shape.channels)
            return (b.x.tau + b.gamma.tau + zeros, b.x.magnitude + b.gamma.magnitude + zeros)
        }
    }

    static func flat(_ d: DerivativeDirection) -> [Double] { d.x + d.gamma + d.beta }

    /// Law 24 — the Hessian of L = ⟨dy, y⟩ in (x, γ, β) is symmetric: ⟨Hv, w⟩ = ⟨v, Hw⟩.
    /// Tolerance: each side's reference error weighted by the other vector, plus the Double
    /// dot products' own rounding (N·u·Σ|terms|).
    @Test func hessianIsSymmetric() async {
        await propertyCheck(count: Laws.count(200), input: Self.gen()) { input in
            let s = try Setup(input)
            let hv = try s.hvp(s.v), hw = try s.hvp(s.w)
            let vf = Self.flat(s.v), wf = Self.flat(s.w)
            let N = Double(vf.count)
            var lhs = 0.0, rhs = 0.0, tol = 0.0
            for i in vf.indices {
                lhs += hv[i] * wf[i]; rhs += vf[i] * hw[i]
                tol += abs(wf[i]) * Self.referenceError(hv[i]) + abs(vf[i]) * Self.referenceError(hw[i])
                tol += 2 * N * Self.u * (abs(hv[i] * wf[i]) + abs(vf[i] * hw[i]))
            }
            #expect(abs(lhs - rhs) <= tol, "law 24 ⟨Hv,w⟩ = \(lhs) vs ⟨v,Hw⟩ = \(rhs) (tolerance \(tol)): \(input)")
        }
    }

    /// Law 25 — linear in the direction: H(a·v + w) = a·Hv + Hw, and D²y[a·v + w, z] =
    /// a·D²y[v, z] + D²y[w, z]. a is a power of two (a·v exact); a·v + w rounds once per
    /// component, an input perturbation of ≤ u·|a·v + w| whose effect is bounded by §12.6's
    /// magnitude S along that perturbation.
    @Test func linearInTheDirection() async {
        await propertyCheck(count: Laws.count(200), input: Self.gen(), pick([-2.0, 0.5, 4.0, -0.25])) { input, a in
            let s = try Setup(input)
            let mix = DerivativeDirection(x: zip(s.v.x, s.w.x).map { a * $0 + $1 }, gamma: zip(s.v.gamma, s.w.gamma).map { a * $0 + $1 },
                                          beta: zip(s.v.beta, s.w.beta).map { a * $0 + $1 })
            let pert = DerivativeDirection(x: mix.x.map { Self.u * abs($0) }, gamma: mix.gamma.map { Self.u * abs($0) },
                                           beta: mix.beta.map { Self.u * abs($0) })
            let hm = try s.hvp(mix), hv = try s.hvp(s.v), hw = try s.hvp(s.w)
            let sp = s.hvpBound(pert).magnitude
            for i in hm.indices {
                let lin = a * hv[i] + hw[i]
                let tol = Self.referenceError(hm[i]) + abs(a) * Self.referenceError(hv[i])
                    + Self.referenceError(hw[i]) + sp[i] + 2 * Self.u * (abs(a * hv[i]) + abs(hw[i]))
                #expect(abs(hm[i] - lin) <= tol, "law 25 H(a·v + w)[\(i)] = \(hm[i]) vs \(lin) (tol \(tol)), a = \(a): \(input)")
            }
            let sh = input.shape, l = input.layout
            let dm = try Reference.trainingSecondDerivative(s.x, shape: sh, layout: l, gamma: s.gamma, eps: input.eps, mix, s.z)
            let dv = try Reference.trainingSecondDerivative(s.x, shape: sh, layout: l, gamma: s.gamma, eps: input.eps, s.v, s.z)
            let dw = try Reference.trainingSecondDerivative(s.x, shape: sh, layout: l, gamma: s.gamma, eps: input.eps, s.w, s.z)
            let bp = s.bound.d2(v: pert, w: s.z, gamma: s.gamma).magnitude
            for i in dm.indices {
                let lin = a * dv[i] + dw[i]
                let tol = Self.referenceError(dm[i]) + abs(a) * Self.referenceError(dv[i])
                    + Self.referenceError(dw[i]) + bp[i] + 2 * Self.u * (abs(a * dv[i]) + abs(dw[i]))
                #expect(abs(dm[i] - lin) <= tol, "law 25 D²y[a·v + w, z][\(i)] = \(dm[i]) vs \(lin), a = \(a): \(input)")
            }
        }
    }

    /// Law 26 — the formulations agree on the same derivative: H·v from the reference, from
    /// forward-over-reverse (dual numbers through the §2 backward) and from reverse-over-reverse
    /// (a recorded gradient differentiated again); D²y from the reference and from
    /// forward-over-forward (nested duals through the forward pass), with ⟨dy, D²y[v, w]⟩ =
    /// ⟨Hv, w⟩ linking the two readings; D³y from the reference and forward³. The AD versions
    /// are honest Double implementations, so each is within spec §12.6's τ (u = 2⁻⁵³) of the
    /// exact value, and the reference within its contract.
    @Test func formulationsAgree() async {
        await propertyCheck(count: Laws.count(100), input: Self.gen()) { input in
            let s = try Setup(input)
            let sh = input.shape, l = input.layout
            let ref = try s.hvp(s.v)
            let tau = s.hvpBound(s.v).tau
            let fr = Formulations.forwardOverReverse(s.x, dy: s.dy, gamma: s.gamma, eps: input.eps, shape: sh, layout: l, v: s.v)
            let rr = Formulations.reverseOverReverse(s.x, dy: s.dy, gamma: s.gamma, beta: s.beta, eps: input.eps, shape: sh,
                                                     layout: l, v: s.v)
            for i in ref.indices {
                let tol = tau[i] + Self.referenceError(ref[i])
                #expect(abs(fr[i] - ref[i]) <= tol, "law 26 forward-over-reverse H·v[\(i)] \(fr[i]) vs reference \(ref[i]) (τ \(tol)): \(input)")
                #expect(abs(rr[i] - ref[i]) <= tol, "law 26 reverse-over-reverse H·v[\(i)] \(rr[i]) vs reference \(ref[i]) (τ \(tol)): \(input)")
            }
            let d2 = try Reference.trainingSecondDerivative(s.x, shape: sh, layout: l, gamma: s.gamma, eps: input.eps, s.v, s.w)
            let ff = Formulations.forwardOverForward(s.x, gamma: s.gamma, beta: s.beta, eps: input.eps, shape: sh, layout: l, v: s.v, w: s.w)
            let b2 = s.bound.d2(v: s.v, w: s.w, gamma: s.gamma)
            for i in d2.indices {
                let tol = b2.tau[i] + Self.referenceError(d2[i])
                #expect(abs(ff[i] - d2[i]) <= tol, "law 26 forward-over-forward D²y[\(i)] \(ff[i]) vs reference \(d2[i]) (τ \(tol)): \(input)")
            }
            // ⟨dy, D²y[v, w]⟩ (forward reading) = ⟨Hv, w⟩ (reverse reading), both from the reference.
            let wf = Self.flat(s.w)
            var lhs = 0.0, rhs = 0.0, tol = 0.0
            for i in d2.indices {
                lhs += s.dy[i] * d2[i]
                tol += abs(s.dy[i]) * Self.referenceError(d2[i]) + 2 * Double(d2.count) * Self.u * abs(s.dy[i] * d2[i])
            }
            for i in wf.indices {
                rhs += ref[i] * wf[i]
                tol += abs(wf[i]) * Self.referenceError(ref[i]) + 2 * Double(wf.count) * Self.u * abs(ref[i] * wf[i])
            }
            #expect(abs(lhs - rhs) <= tol, "law 26 ⟨dy, D²y[v,w]⟩ = \(lhs) vs ⟨Hv, w⟩ = \(rhs) (tol \(tol)): \(input)")
            let d3 = try Reference.trainingThirdDerivative(s.x, shape: sh, layout: l, gamma: s.gamma, eps: input.eps, s.z, s.v, s.w)
            let fff = Formulations.forwardCubed(s.x, gamma: s.gamma, beta: s.beta, eps: input.eps, shape: sh, layout: l,
                                                u: s.z, v: s.v, w: s.w)
            let b3 = s.bound.d3(u: s.z, v: s.v, w: s.w, gamma: s.gamma)
            for i in d3.indices {
                let tol = b3.tau[i] + Self.referenceError(d3[i])
                #expect(abs(fff[i] - d3[i]) <= tol, "law 26 forward³ D³y[\(i)] \(fff[i]) vs reference \(d3[i]) (τ \(tol)): \(input)")
            }
        }
    }

    /// Law 27 — BN is invariant to shifting x by a constant per channel, so is its x-Hessian:
    /// H(x + c)·v = H(x)·v and D²y(x + c) = D²y(x), with c a power of two 16× above max|x| so
    /// that x + c is exact (float32-valued x: 28 bits span at most); and shifting is in the
    /// Hessian's kernel: H·(c, 0, 0) = 0 exactly.
    @Test func shiftInvariance() async {
        await propertyCheck(count: Laws.count(200), input: Self.gen()) { input in
            let s = try Setup(input)
            let c = Double(sign: .plus, exponent: (s.x.map(abs).max() ?? 1).exponent + 4, significand: 1)
            let shifted = s.x.map { $0 + c }
            #expect(zip(shifted, s.x).allSatisfy { $0 - c == $1 }, "law 27 prerequisite: x + \(c) exact: \(input)")
            let a = try s.hvp(s.v), b = try s.hvp(s.v, at: shifted)
            for i in a.indices {
                let tol = Self.referenceError(a[i]) + Self.referenceError(b[i])
                #expect(abs(a[i] - b[i]) <= tol, "law 27 H(x + \(c))·v[\(i)] \(b[i]) vs H(x)·v \(a[i]): \(input)")
            }
            let sh = input.shape, l = input.layout
            let d2a = try Reference.trainingSecondDerivative(s.x, shape: sh, layout: l, gamma: s.gamma, eps: input.eps, s.v, s.w)
            let d2b = try Reference.trainingSecondDerivative(shifted, shape: sh, layout: l, gamma: s.gamma, eps: input.eps, s.v, s.w)
            for i in d2a.indices {
                let tol = Self.referenceError(d2a[i]) + Self.referenceError(d2b[i])
                #expect(abs(d2a[i] - d2b[i]) <= tol, "law 27 D²y(x + \(c))[\(i)] \(d2b[i]) vs D²y(x) \(d2a[i]): \(input)")
            }
            // Direction = a constant per channel in x: exactly in the kernel.
            var r = SpecRandom("law27/\(input.seed)")
            let consts = (0..<sh.channels).map { _ in r.normal() }
            var cx = s.x
            for ch in 0..<sh.channels { for i in input.indices(ch) { cx[i] = consts[ch] } }
            let k = try s.hvp(DerivativeDirection(x: cx, channels: sh.channels))
            #expect(k.allSatisfy { $0 == 0 }, "law 27 H·(constant shift) ≠ 0: \(input)")
        }
    }
}
