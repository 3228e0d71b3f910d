import Foundation

extension VarianceGrowth {
    /// The fingerprint's κ-growth fit over a few probe channels, guarded against an error
    /// that is not the variance's: the probe reads each channel's variance off y, so an error
    /// of the normalisation itself (an approximate rsqrt, a 12-bit reciprocal square root is
    /// off by up to 2⁻¹¹ in the implied variance) adds to every channel alike, whatever its κ,
    /// and bends the fitted exponent: a one-pass variance under such a floor had been read as
    /// updating, a Welford one as two-pass (an outside red team's, 2026-12-05).
    ///
    /// The floor F is the smallest error in the lower half of κ. An honest float32
    /// accumulation over n values errs by at most about n·u in the relative variance
    /// (sequential sums, Higham 2002 §4.2; Welford and one-pass at the probe's lowest κ alike);
    /// while F ≤ 4·n·u the fit is the usual one (``fit(_:floor:binned:)`` with
    /// ``requiringRise(_:floor:minimumRise:)``). Above it only the errors ≥ 10·F speak for the
    /// variance, fitted alone; when they are too few or span too little κ, the algorithm is
    /// "undetermined", with the floor in the evidence, rather than a misread exponent.
    public static func fitAboveFloor(_ pts: [Point], values n: Int, roundoff u: Double) -> VarianceGrowth {
        let sorted = pts.filter { $0.kappa.isFinite }.sorted { $0.kappa < $1.kappa }
        let limit = 4 * Double(n) * u
        guard let floor = sorted.prefix(max(1, sorted.count / 2)).map(\.error).min(), floor > limit else {
            return oneSigned(fit(pts, floor: 1e-17).requiringRise(pts, floor: 1e-17), pts)
        }
        var g = fit(pts, floor: floor)
        if g.algorithm != "undetermined" { g = g.requiringRise(pts, floor: floor) }
        let note = String(format: "a κ-independent error of at least %.2g in every channel of the lower half of κ (above %.2g = 4·n·u, an honest float32 accumulation's bound over n = %d: the normalisation's own error, e.g. an approximate rsqrt) leaves only the errors above %.2g to the variance", floor, limit, n, 10 * floor)
        g.evidence = note + ": " + g.evidence
        return oneSigned(g, pts)
    }

    /// A growth read from few probe channels (fewer than ``biasChannels``) whose errors are all of
    /// one sign, every one of at least 8 channels: rounding would put them on either side (all
    /// alike by chance once in 128), a formula's bias does — e.g. the variance about a mean off
    /// by μ/(n − 1), too large by its square, which grows like κ² (an outside red team's mean
    /// Σx/(n − 1) had been read "one_pass"). "biased", as the audit's own sign check names it.
    static func oneSigned(_ g: VarianceGrowth, _ pts: [Point]) -> VarianceGrowth {
        guard g.algorithm == "updating" || g.algorithm == "one_pass" else { return g }
        let signed = pts.filter { $0.kappa.isFinite && $0.sign != 0 }
        guard signed.count >= 8, signed.count == pts.count, Set(signed.map(\.sign)).count == 1 else { return g }
        var b = g
        b.algorithm = "biased"
        if let from = b.evidence.range(of: "; the variance too large in"), let to = b.evidence.range(of: "(rounding: either side)", range: from.upperBound..<b.evidence.endIndex) {
            b.evidence.removeSubrange(from.lowerBound..<to.upperBound)
        }
        b.evidence += "; but the variance is too \(signed[0].sign > 0 ? "large" : "small") in all \(signed.count) channels: a bias, not rounding"
        return b
    }

    /// Each level's channels (the level nearest each point's κ, in log scale) and their median error.
    static func levelMedians(_ pts: [Point], levels: [Double]) -> [(level: Double, median: Double, points: [Point])] {
        guard !levels.isEmpty else { return [] }
        let groups = Dictionary(grouping: pts.filter { $0.kappa.isFinite && $0.kappa > 0 }) { pt in
            levels.indices.min { abs(log(pt.kappa / levels[$0])) < abs(log(pt.kappa / levels[$1])) }!
        }
        return levels.indices.compactMap { i in
            guard let g = groups[i], !g.isEmpty else { return nil }
            let e = g.map(\.error).sorted()
            return (levels[i], e.count % 2 == 1 ? e[e.count / 2] : (e[e.count / 2 - 1] + e[e.count / 2]) / 2, g)
        }
    }

    /// An `updating` reading over a probe of κ levels (the fingerprint's 4, 16, …, 4096) needs its
    /// growth below the highest level too: the median error of the second-highest level at least
    /// `minimumRise` times the floor (the smaller median of the two lowest levels). A two-pass
    /// variance is taken about a mean with a rounding error δ, too large by δ² ∝ n·κ²·u²; in
    /// float32 at n = 1024 that reaches above the floor only at κ = 4096 (12–43× it, 2026-12-06:
    /// NumPy, PyTorch, Keras, TensorFlow's fused op, MLX, oneDNN and ONNX Runtime, whose level 1024
    /// stays within 0.85–4.4× the floor) — a fitted κ^0.27–0.49 — while an updating algorithm's κ¹
    /// growth stands 58–109× above it at 1024 (NumPy's Welford and pairwise tree of merges,
    /// PyTorch's SyncBatchNorm merge). Otherwise "two_pass", with the levels in the evidence.
    public func requiringGrowthBelowTop(_ pts: [Point], levels: [Double], minimumRise: Double = 10) -> VarianceGrowth {
        guard algorithm == "updating" else { return self }
        let m = Self.levelMedians(pts, levels: levels)
        guard m.count >= 4 else { return self }
        let floor = min(m[0].median, m[1].median), below = m[m.count - 2]
        guard floor > 0, below.median < minimumRise * floor else { return self }
        var g = self
        g.algorithm = "two_pass"
        g.evidence += String(format: "; but only the highest κ level rises above %g× the floor (κ = %g: median %.2g, %.3g× the floor %.2g): a two-pass variance about a mean with rounding error δ, too large by δ² ∝ n·κ²·u², which reaches the floor only there; an updating algorithm's κ¹ growth stands out a level lower",
                             minimumRise, below.level, below.median, below.median / floor, floor)
        return g
    }

    /// The probe's errors level by level: each channel goes to the level nearest its κ (in log
    /// scale), and each level shows its median error and how many of its channels have a variance
    /// too large — "by κ: 4: 2.1e-07 (4 of 8 too large), 16: …" (evidence, not a verdict).
    public static func byLevel(_ pts: [Point], levels: [Double]) -> String {
        "median error by κ: " + levelMedians(pts, levels: levels).map {
            String(format: "%g: %.2g (%d of %d too large)", $0.level, $0.median, $0.points.filter { $0.sign > 0 }.count, $0.points.count)
        }.joined(separator: ", ")
    }
}
