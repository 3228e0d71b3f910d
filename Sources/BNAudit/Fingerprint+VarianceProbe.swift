import BNCore
import BNGolden
import BNReference
import Foundation

/// The variance-algorithm probe (single-device and synchronized; spec/AUDIT.md §4): channels of
/// n = 1024 float32 values κ + N(0, 1) at κ ∈ ``varianceProbeKappaLevels``, the variance each was
/// normalised with read off y, and how its error grows with κ (``VarianceGrowth``).
extension Fingerprint {
    /// The κ levels of the probe, 16 channels each. Up to κ = 4096 (until 2026-12-06 {4, …, 256}):
    /// in float32 at n = 1024 an updating algorithm's error (Welford's, a pairwise tree of merges)
    /// is near the two-pass floor (~3·10⁻⁷) up to κ ≈ 64 and a few times above it at 256, so
    /// over {4, …, 256} NumPy's honest Welford and pairwise adapters read "two_pass"; at κ = 1024
    /// they stand tens of times above the floor while a two-pass variance stays within a few
    /// times (its squared mean error, n·κ²·u², shows only at 4096:
    /// ``VarianceGrowth/requiringGrowthBelowTop``). 16 channels per κ (eight until 2026-12-06, two
    /// before): a variance too large in every channel whose error rises above rounding is a bias,
    /// not an algorithm, and the check needs at least ``VarianceGrowth/biasChannels`` channels
    /// that tell their sign (with two per κ a variance about the mean rounded to float16 read
    /// "updating"); and each level's median steadies the level rule.
    static let varianceProbeKappaLevels: [Double] = [4, 16, 64, 256, 1024, 4096]
    package static let varianceProbeKappas: [Double] = varianceProbeKappaLevels.flatMap { Array(repeating: $0, count: 16) }
    package static let varianceProbeValues = 1024
    /// "κ ∈ {4, 16, …}" as the evidence states it.
    static var varianceProbeKappaSet: String { "κ ∈ {" + varianceProbeKappaLevels.map { String(Int($0)) }.joined(separator: ", ") + "}" }

    /// The probe's x: [n, C, 1, 1] (NCHW), channel c of float32 values κ_c + N(0, 1).
    package static func varianceProbeInput() -> [Double] {
        var r = SpecRandom("fingerprint/var")
        let kappas = varianceProbeKappas, n = varianceProbeValues, C = kappas.count
        var x = [Double](repeating: 0, count: n * C)
        for b in 0..<n { for c in 0..<C { x[b * C + c] = Double(Float(kappas[c] + r.normal())) } }
        return x
    }

    /// The float32 scale s of a folded y = x·s + c — the product and the sum rounded to float32
    /// one after the other, or one FMA — that reproduces every element of a channel exactly, the
    /// float32 c found from the first element (and its neighbours); nil when no s within `span`
    /// ulps of `a` does. A folded y carries a rounding of u·|x·s| per element, as large as u·κ, so
    /// its least-squares slope is known only to about u·κ/√n; the s it was computed with is
    /// known exactly.
    package static func foldedScale(x: [Double], y: [Double], near a: Double, span: Int) -> Float? {
        guard let x0 = x.first, let y0 = y.first, a.isFinite, a > 0 else { return nil }
        let xf = x.map { Float($0) }, yf = y.map { Float($0) }
        guard zip(xf, x).allSatisfy({ Double($0) == $1 }), zip(yf, y).allSatisfy({ Double($0) == $1 }) else { return nil }
        func reproduces(_ s: Float, _ c: Float, fma: Bool) -> Bool {
            for i in xf.indices where (fma ? c.addingProduct(xf[i], s) : xf[i] * s + c) != yf[i] { return false }
            return true
        }
        var s = Float(a)
        for _ in 0..<span { s = s.nextDown }
        for _ in 0...(2 * span) {
            for fma in [false, true] {
                var c = Float(y0 - (fma ? x0 * Double(s) : Double(Float(x0) * s)))
                for _ in 0..<2 { c = c.nextDown }
                for _ in 0..<5 {
                    if reproduces(s, c, fma: fma) { return s }
                    c = c.nextUp
                }
            }
            s = s.nextUp
        }
        return nil
    }

    /// The growth of the variance error over the probe's channels, from the y an implementation
    /// returned (γ = 1, β = 0) and the eps it adds. Per channel, y ≈ a·x + b by least squares and
    /// the variance normalised with is 1/a² − ε. Its standard error comes from the residuals
    /// about that line: y's own rounding, which a folded y = x·s + c makes as large as u·κ per
    /// element (Keras' and ONNX Runtime's y), blurring the slope by an error that grows like κ, as
    /// an updating algorithm's does; where the error is within two standard errors of 0, the
    /// scale of a fold that reproduces y exactly (``foldedScale(x:y:near:span:)``) is read instead.
    /// A channel neither way measurable — its error within two standard errors larger than u —
    /// is left out of the fit, the signs and the levels, and counted in the evidence.
    package static func varianceGrowth(x: [Double], y: [Double], eps: Double) throws -> (growth: VarianceGrowth, evidence: String) {
        let n = varianceProbeValues, C = varianceProbeKappas.count
        let ms = try Reference.moments(x, shape: try Shape(batch: n, channels: C, spatial: [1, 1]), layout: .nchw)
        var points: [VarianceGrowth.Point] = [], unmeasured = 0, folded = 0, noisiest = 0.0
        for c in 0..<C {
            let xs = (0..<n).map { x[$0 * C + c] }, ys = (0..<n).map { y[$0 * C + c] }
            guard let (a, b) = Fits.affine(xs, ys), a > 0 else { continue }
            let v = ms[c].biasedVariance, implied = 1 / (a * a) - eps, error = (implied - v) / v
            let mx = xs.reduce(0, +) / Double(n), sxx = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
            let rss = zip(xs, ys).reduce(0) { $0 + ($1.1 - a * $1.0 - b) * ($1.1 - a * $1.0 - b) }
            let seA = (rss / Double(n - 2) / sxx).squareRoot()
            var se = 2 * seA / (a * a * a) / v   // relative standard error of 1/a²
            var read = (implied: implied, error: error)
            if abs(error) <= 2 * se,
               let s = foldedScale(x: xs, y: ys, near: a, span: Int(min(4096, 4 * seA / Double(Float(a).ulp))) + 2) {
                let sv = 1 / (Double(s) * Double(s)) - eps
                read = (sv, (sv - v) / v); se = 0; folded += 1
            }
            let kappa = abs(ms[c].mean) / v.squareRoot()
            // Not measured: an error within two standard errors that are themselves above rounding
            // (u = 2⁻²⁴; a smaller one is a variance read to within rounding, its error just small).
            if abs(read.error) <= 2 * se, se > 0x1p-24 { unmeasured += 1; noisiest = max(noisiest, se); continue }
            points.append(.init(kappa: kappa, error: read.error, sign: read.implied > v ? 1 : read.implied < v ? -1 : 0))
        }
        let growth = VarianceGrowth.fitAboveFloor(points, values: n, roundoff: 0x1p-24)
            .requiringGrowthBelowTop(points, levels: varianceProbeKappaLevels)
        var evidence = growth.evidence + "; " + VarianceGrowth.byLevel(points, levels: varianceProbeKappaLevels)
        if folded > 0 {
            evidence += "; \(folded) of \(C) channels read from the float32 scale s of a folded y = x·s + c that reproduces each of their elements exactly (their least-squares slope is blurred by y's rounding, u·|x·s|)"
        }
        if unmeasured > 0 {
            evidence += String(format: "; %d of %d channels not measured: their variance error within 2 standard errors of the line y ≈ a·x + b (y's rounding about it; up to %.2g)", unmeasured, C, noisiest)
        }
        return (growth, evidence)
    }
}
