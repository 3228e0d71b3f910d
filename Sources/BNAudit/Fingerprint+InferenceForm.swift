import Foundation

extension Fingerprint {
    /// Whether an inference's error on the probe x = 1e4 + N(0, 1), μ = 1e4 + 0.3 has the shape
    /// of folding, y = x·s + (β − μ·s) in float32 (≤ 64 ulps: ``accurateInferenceForm``).
    ///
    /// Folding loses the leading digits of x·s against μ·s: each y errs by rounding noise of
    /// size ≈ |μ·s|·u (u = 2⁻²⁴) — at most 4·|μ·s|·u with s itself a few roundings off —
    /// and that error does not grow with x − μ (the same s multiplies x and μ, so s's own
    /// error only scales y − β by 1 + O(u)). An error above 64 ulps of max |y| is called
    /// `folded` only with that shape: within the bound, and the slope a of the error against
    /// z = (x − μ)·s (least squares, an intercept per channel) within 4 standard errors plus
    /// 8u of 0. A scale error — an approximate rsqrt, the unbiased variance in the
    /// normalisation — grows with z; noise beyond the bound is some other loss; an error constant
    /// within each channel (a wrong mean or shift) lacks folding's rounding noise: all
    /// `undetermined`, with the figures (an outside red team's: a 12-bit rsqrt and an unbiased
    /// normalisation had been read as folded, 2026-12-05).
    ///
    /// `y`, `reference`, `z`: per element (NCHW, N × C with 1×1 spatial); `muS` = |μ·s|.
    /// The finding of an inference as accurate as the direct form (which a fold evaluated in a
    /// wider precision also is: the probe cannot tell them apart).
    public static let accurateInferenceForm = "direct or folded in wider precision"

    /// The inference probe's inputs (every channel alike), for the folds evaluated with a fused
    /// multiply-add (``fusedFold(_:y:)``).
    package struct FoldProbe: Sendable {
        package var x: [Double], mean: Double, gamma: Double, beta: Double, variance: Double, eps: Double
        package init(x: [Double], mean: Double, gamma: Double, beta: Double, variance: Double, eps: Double) {
            self.x = x; self.mean = mean; self.gamma = gamma; self.beta = beta; self.variance = variance; self.eps = eps
        }
    }

    /// How y is a fold evaluated with one FMA per element, y = fma(x, s, c) with c = β − μ·s in
    /// float32 — s = γ/√(σ² + ε) rounded once from wider precision or made of float32 operations,
    /// c with one rounding or two — when one of these reproduces every element within an ulp;
    /// nil otherwise. Its error is constant within a channel, as a wrong mean's or shift's is,
    /// but it is reproduced element by element (PyTorch's CPU inference is such a fold).
    static func fusedFold(_ p: FoldProbe, y: [Double]) -> String? {
        let g = Float(p.gamma), b = Float(p.beta), m = Float(p.mean), v = Float(p.variance), e = Float(p.eps)
        let exact = p.gamma / (p.variance + p.eps).squareRoot()
        let scales: [(String, Float)] = [("s = γ/√(σ² + ε) rounded once", Float(exact)),
                                         ("s = γ·(1/√(σ² + ε)) in float32", g * (1 / (v + e).squareRoot())),
                                         ("s = γ/√(σ² + ε) in float32", g / (v + e).squareRoot()),
                                         ("s = γ·(1/√(σ² + ε) rounded once)", g * Float(1 / (p.variance + p.eps).squareRoot()))]
        guard y.count == p.x.count, !y.isEmpty else { return nil }
        for (scale, s) in scales {
            for (bias, c) in [("c = β − μ·s rounded twice", b - m * s), ("c = β − μ·s rounded once", b.addingProduct(-m, s))] {
                let reproduced = zip(p.x, y).allSatisfy { x, y in
                    let yp = c.addingProduct(Float(x), s)
                    return abs(Double(yp) - y) <= Double(yp.ulp)
                }
                if reproduced { return "\(scale), \(bias)" }
            }
        }
        return nil
    }

    package static func inferenceForm(y: [Double], reference: [Double], z: [Double], channels C: Int, muS: Double,
                                      probe: FoldProbe? = nil) -> Finding {
        let u = 0x1p-24
        let yMax = reference.map(abs).max() ?? 1
        let ulp = Double(Float(yMax).ulp)
        guard y.count == reference.count, y.count == z.count, !y.isEmpty, y.allSatisfy(\.isFinite) else {
            return Finding(value: "undetermined", evidence: "the adapter returned \(y.count) values (\(reference.count) asked for)\(y.contains { !$0.isFinite } ? ", some not finite" : "")")
        }
        let e = zip(y, reference).map { $0 - $1 }
        let maxError = e.map(abs).max()!
        let ulps = maxError / ulp
        let head = "x = 1e4 + N(0,1), μ = 1e4 + 0.3: normwise error \(Self.fmt(ulps)) float32 ulps of max |y|"
        guard ulps > 64 else {
            // The probe reads accuracy, not the formula: a fold computed wider than float32 and
            // rounded once is as accurate as the direct form (an outside red team's float64 fold,
            // round G, 2026-12-05, had been named `direct`).
            return Finding(value: Self.accurateInferenceForm,
                           evidence: head + " (≤ 64: (x − μ)·s + β gives a few, as does x·s + (β − μ·s) computed wider than float32 and rounded once; in float32 the fold loses ≈ |μ·s|·2⁻²⁴, thousands)")
        }
        // Pooled slope of e against z with an intercept per channel.
        let n = y.count / C
        var szz = 0.0, sze = 0.0
        var centred: [(z: Double, e: Double)] = []
        for c in 0..<C {
            let idx = (0..<n).map { $0 * C + c }
            let mz = idx.reduce(0) { $0 + z[$1] } / Double(n), me = idx.reduce(0) { $0 + e[$1] } / Double(n)
            for i in idx { centred.append((z[i] - mz, e[i] - me)); szz += (z[i] - mz) * (z[i] - mz); sze += (z[i] - mz) * (e[i] - me) }
        }
        let a = sze / szz
        let rss = centred.reduce(0) { $0 + ($1.e - a * $1.z) * ($1.e - a * $1.z) }
        let se = (rss / Double(max(centred.count - C - 1, 1))).squareRoot() / szz.squareRoot()
        let bound = 4 * muS * u
        // Folding's error is rounding noise: x·s rounds to ≈ |μ·s|·2⁻²⁴ with a different error at
        // each element (an rms of about 0.3·|μ·s|·u about the channel's mean error). An error
        // the same at every element of a channel — a wrong mean or shift — has none (only y's own
        // rounding, ≈ ulp(y)): not folding, however small (an outside red team's constant mean
        // error had been read as folded).
        let spread = (rss / Double(centred.count)).squareRoot(), noise = 0.05 * muS * u
        let flat = abs(a) <= 4 * se + 8 * u, within = maxError <= bound, noisy = spread >= noise
        let figures = "; error against z = (x − μ)·s: slope \(Self.fmt(a)) ± \(Self.fmt(se)), max |error| \(Self.fmt(maxError)), rms about each channel's mean error \(Self.fmt(spread)) (folding: slope 0 within 4 standard errors + 8u, |error| ≤ 4·|μ·s|·2⁻²⁴ = \(Self.fmt(bound)), rms ≥ 0.05·|μ·s|·2⁻²⁴ = \(Self.fmt(noise)))"
        if flat && within && noisy { return Finding(value: "folded", evidence: head + figures + ": x·s + (β − μ·s)") }
        if flat && within, let probe, let how = fusedFold(probe, y: y) {
            return Finding(value: "folded", evidence: head + figures + ": fma(x, s, c), every element within an ulp with \(how)")
        }
        let why = !flat ? "the error grows with x − μ (a scale error: an approximate rsqrt, another variance), not folding's"
            : !within ? "the error exceeds folding's rounding"
            : "the error is the same at every element of a channel (a wrong mean or shift), neither folding's rounding noise nor a fold with an FMA"
        return Finding(value: "undetermined", evidence: head + figures + ": " + why)
    }
}
