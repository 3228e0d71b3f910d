import Foundation

extension VarianceGrowth {
    /// How many times (u·κ)² a two-pass-class variance may be too large from the rounding of its
    /// mean alone (``beyondMeanRounding(_:roundoff:)``): a mean off by 100 ulps of |μ|.
    public static let meanRoundingAllowance = 1e4

    /// The audit-wide fit's points less those the mean's own rounding explains. A variance taken
    /// about a mean off by δ is too large by (δ/σ)² (Σ(x − μ̂)² = M2 + n·δ², Chan, Golub & LeVeque
    /// 1983), and an honest float32 mean is off by up to about 100 ulps of |μ| (a sequential sum
    /// of 10⁴ values: √n·u typical), so a two-pass-class variance may err by up to
    /// ``meanRoundingAllowance``·(u·κ)²: an error that grows like κ² and is always of one sign. At
    /// the suite's near-constant channels (κ ≈ 7·10⁵) it is 10⁻³–10⁻², and on those channels alone
    /// honest two-pass variants (blocks of 1000 merged; pairwise with the mean Σx·(1/n); np.var)
    /// had read "biased", "updating" or κ^1.84 (an outside red team's, 2026-12-06). A one-pass
    /// error, about u·κ², is 1/(10⁴·u) ≈ 1700 times above that bound at every κ; an updating one,
    /// about u·κ, falls below it only beyond κ ≈ 10³–10⁴, where the fit has the lower κ to read.
    public static func beyondMeanRounding(_ pts: [Point], roundoff u: Double) -> [Point] {
        pts.filter { $0.error > meanRoundingAllowance * (u * $0.kappa) * (u * $0.kappa) }
    }

    /// The audit's float32 growth (binned ``fit(_:floor:binned:)`` at u = 2⁻²⁴): a two-pass reading
    /// as fitted; a growth (updating, one-pass, biased) only when the channels beyond the mean's
    /// rounding (``beyondMeanRounding(_:roundoff:)``) show one too, read from them alone;
    /// otherwise "undetermined": the growth was the mean's rounding, or the suite's channels below
    /// κ ≈ 10⁴ cannot tell (an honest Welford is then not read, rather than misread).
    public static func auditWide(_ pts: [Point]) -> VarianceGrowth {
        let u = 0x1p-24
        let all = fit(pts, floor: u, binned: true)
        guard all.algorithm != "two_pass" && all.algorithm != "undetermined" else { return all }
        let beyond = fit(beyondMeanRounding(pts, roundoff: u), floor: u, binned: true)
        if beyond.algorithm != "two_pass" && beyond.algorithm != "undetermined" { return beyond }
        return VarianceGrowth(exponent: .nan, points: all.points, decades: all.decades, algorithm: "undetermined",
                              evidence: all.evidence + "; but below \(Int(meanRoundingAllowance))·(u·κ)², the error the mean's own rounding gives a two-pass variance, "
                                  + (beyond.algorithm == "two_pass" ? "the errors do not grow (" + beyond.evidence + ")" : beyond.evidence))
    }

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

    /// Each level's channels (the level nearest each point's κ, in log scale) and their median
    /// error (nil: no channel at that level).
    static func levelMedians(_ pts: [Point], levels: [Double]) -> [(level: Double, median: Double?, points: [Point])] {
        guard !levels.isEmpty else { return [] }
        let groups = Dictionary(grouping: pts.filter { $0.kappa.isFinite && $0.kappa > 0 }) { pt in
            levels.indices.min { abs(log(pt.kappa / levels[$0])) < abs(log(pt.kappa / levels[$1])) }!
        }
        return levels.indices.map { i in
            let g = groups[i] ?? []
            return (levels[i], g.isEmpty ? nil : median(g.map(\.error)), g)
        }
    }

    /// An `updating` reading over a probe of κ levels (the fingerprint's 4, 16, …, 4096) needs its
    /// growth below the highest level too: the median error of the second-highest level at least
    /// `updatingRise` times the floor (the smaller median of the two lowest levels). A two-pass
    /// variance is taken about a mean with a rounding error δ, too large by δ² ∝ n·κ²·u²; in
    /// float32 at n = 1024 that reaches above the floor only at κ = 4096, and at 1024 the error
    /// stays within a few times the floor, while an updating algorithm's κ¹ growth stands tens
    /// of times above it there (figures: spec/AUDIT.md §4). Below `twoPassRise` times the floor
    /// the reading is "two_pass"; between the two, "undetermined" (neither class fits); the
    /// levels are in the evidence either way.
    public func requiringGrowthBelowTop(_ pts: [Point], levels: [Double], updatingRise: Double = 10, twoPassRise: Double = 5) -> VarianceGrowth {
        guard algorithm == "updating", levels.count >= 4 else { return self }
        let m = Self.levelMedians(pts, levels: levels)
        guard let f0 = m[0].median, let f1 = m[1].median, min(f0, f1) > 0 else { return self }
        let floor = min(f0, f1), below = m[m.count - 2]
        var g = self
        guard let median = below.median else {
            g.algorithm = "undetermined"
            g.evidence += String(format: "; but no channel's error at κ = %g, the level below the highest, could be measured: the growth there is unknown", below.level)
            return g
        }
        let rise = median / floor
        guard rise < updatingRise else { return self }
        g.algorithm = rise < twoPassRise ? "two_pass" : "undetermined"
        g.evidence += String(format: "; but at κ = %g, the level below the highest, the median error %.2g is only %.3g× the floor %.2g (updating: ≥ %g×; ", below.level, median, rise, floor, updatingRise)
            + (rise < twoPassRise
               ? String(format: "two-pass class: < %g×): the rise at the highest level alone is a two-pass variance about a mean with rounding error δ, too large by δ² ∝ n·κ²·u², which reaches the floor only there", twoPassRise)
               : String(format: "two-pass class: < %g×): between the two classes", twoPassRise))
        return g
    }

    /// The probe's errors level by level: each channel goes to the level nearest its κ (in log
    /// scale), and each level shows its median error and how many of its channels have a variance
    /// too large — "by κ: 4: 2.1e-07 (4 of 8 too large), 16: …" (evidence, not a verdict).
    public static func byLevel(_ pts: [Point], levels: [Double]) -> String {
        "median error by κ: " + levelMedians(pts, levels: levels).map {
            guard let median = $0.median else { return String(format: "%g: none measured", $0.level) }
            return String(format: "%g: %.2g (%d of %d too large)", $0.level, median, $0.points.filter { $0.sign > 0 }.count, $0.points.count)
        }.joined(separator: ", ")
    }
}
