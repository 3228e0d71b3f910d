import BNCalibration
import BNCore

/// Bug models of the higher-order derivatives (spec/SPEC.md §12, spec/AUDIT.md §5): the closed
/// forms with one classic mistake each (``BNCalibration/HigherOrderClosedForm/Variation``),
/// evaluated in Double with two-pass statistics — an honest computation of the buggy formula,
/// within the case's tolerance of any float32 or float64 implementation of the same bug.
enum HigherOrderModels {
    typealias Variation = HigherOrderClosedForm<Double>.Variation

    /// Each model: the variation, its short name in the evidence, and the cause it names.
    static let variations: [(Variation, String, String)] = [
        (.constantStatistics, "constant statistics",
         "higher derivatives treat the batch mean and inverse std as constants (the double-backward shortcut: saved statistics without a tangent)"),
        (.missingGammaXCross, "no γ–x cross terms",
         "higher derivatives miss the γ–x cross terms (the γ-direction's g·x̂′ terms; in H·v also (Hv)_γ)"),
        (.rPrimeSign, "r′ sign", "derivative of 1/√(σ² + ε) has the wrong sign (r′[v] = +r²·α_v)"),
    ]

    static func direction(_ p: DiagnosisProblem, _ d: String) -> DerivativeDirection {
        DerivativeDirection(x: p.input("\(d)_x"), gamma: p.input("\(d)_gamma"), beta: p.input("\(d)_beta"))
    }

    /// The outputs a case's operation gives under `variation`; nil when the inputs are incomplete.
    static func predict(_ p: DiagnosisProblem, _ variation: Variation) -> [String: [Double]]? {
        let x = p.input("x"), v = direction(p, "v")
        guard x.count == p.shape.elementCount, v.x.count == x.count, v.gamma.count == p.channels, p.gamma.count == p.channels else {
            return nil
        }
        let loops = HigherOrderLoops<Double>(shape: p.shape, layout: p.spec.layout, eps: p.eps, variation: variation,
                                             statistics: HonestKernel(.twoPass).moments)
        switch p.spec.op {
        case .hvpTrain, .hvpInfer:
            let dy = p.input("dy")
            guard dy.count == x.count else { return nil }
            let h: HessianVectorProduct
            if p.spec.op == .hvpTrain { h = loops.hvpTrain(x, dy: dy, gamma: p.gamma, v) } else {
                guard p.input("var").count == p.channels else { return nil }
                h = loops.hvpInfer(dy: dy, variance: p.input("var"), v)
            }
            return ["hv_x": h.x, "hv_gamma": h.gamma, "hv_beta": h.beta]
        case .d2Train, .d3Train:
            let w = direction(p, "w")
            guard w.x.count == x.count, w.gamma.count == p.channels else { return nil }
            return [p.spec.op == .d2Train ? "d2y" : "d3y": loops.directional(x, gamma: p.gamma, v, w, third: p.spec.op == .d3Train)]
        default: return nil
        }
    }

    static let all: [BugModel] = variations.map { variation, _, cause in
        BugModel(cause: cause) { p in predict(p, variation) }
    }

    /// Evidence: how far the returned outputs lie from each model (worst |got − model| ÷ τ; the
    /// reference is the honest model), and the ratio ⟨got, ref⟩/⟨ref, ref⟩ of the primary output.
    static func evidence(_ p: DiagnosisProblem) -> [String] {
        var fits = ["honest (reference) \(Fits.fmt(p.misfit([:])))"]
        for (variation, label, _) in variations {
            guard let predicted = predict(p, variation) else { continue }
            fits.append("\(label) \(Fits.fmt(p.misfit(predicted)))")
        }
        var out = ["worst |returned − model| ÷ tolerance per model: " + fits.joined(separator: "; ")]
        if let name = p.spec.op.primaryOutput?.name, let g = p.got[name], let e = p.expected[name], g.count == e.count {
            let ratios = (0..<p.channels).map { c -> Double in
                var ge = 0.0, ee = 0.0
                for i in p.indices(c) where g[i].isFinite && e[i].isFinite { ge += g[i] * e[i]; ee += e[i] * e[i] }
                return ee > 0 ? ge / ee : .nan
            }
            out.append("\(name) ≈ s·reference per channel (least squares): s = \(Fits.list(ratios))")
        }
        return out
    }
}
