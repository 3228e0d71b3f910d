import Foundation

/// How an implementation's batch-variance error grows with the channel's condition
/// κ = |μ|/σ, fitted over many channels: the signature of its variance algorithm
/// (Chan, Golub & LeVeque 1983). Relative error ∝ κ⁰ for two-pass-class algorithms
/// (two-pass, pivot-shifted, compensated, wider accumulation), ∝ κ¹ for updating ones
/// (Welford/West, merges of running means), ∝ κ² for the textbook one-pass E[x²] − E[x]².
public struct VarianceGrowth: Codable, Sendable, Equatable {
    /// The fitted exponent p of error ≈ c·κ^p (least squares in log–log).
    public var exponent: Double
    /// Channels the fit used, and the decades of κ they span.
    public var points: Int
    public var decades: Double
    /// "two_pass", "updating", "one_pass", "biased" (errors that grow like an updating or
    /// one-pass algorithm's but nearly all of one sign, ``biasChannels``: no algorithm's
    /// rounding), or "undetermined" (too few points or too narrow a κ range to tell).
    public var algorithm: String
    public var evidence: String
    /// The fitted c of error ≈ c·κ^p at the fit's roundoff (nil when undetermined).
    public var coefficient: Double?
    public init(exponent: Double, points: Int, decades: Double, algorithm: String, evidence: String, coefficient: Double? = nil) {
        self.exponent = exponent; self.points = points; self.decades = decades; self.algorithm = algorithm
        self.evidence = evidence; self.coefficient = coefficient
    }

    /// How far above the fitted growth a channel's variance error may lie and still be this
    /// algorithm's rounding: errors scatter about the fit from channel to channel, and a case
    /// beyond the fit's κ range extrapolates it (float64 cases far above the float32 cases' κ);
    /// a variance wrong by a fixed factor is caught by its equal errors instead.
    public static let scatterAllowance = 1000.0

    /// Whether a case's variance errors can be this growth's rounding: every point with a
    /// measurable error (above 10³·`roundoff`) within ``scatterAllowance`` of c·κ^p scaled from
    /// the fit's `floor` to the case's `roundoff` (a one-pass error is proportional to the unit
    /// roundoff), and not the same relative error (to 10⁻³, below 0.3) in every channel of
    /// different data (channels whose κ differ): a fixed factor, which rounding does not give.
    public func onePassAllows(_ pts: [Point], roundoff: Double, floor: Double) -> Bool {
        guard let c = coefficient, exponent.isFinite else { return false }
        let measurable = pts.filter { $0.error > 1e3 * roundoff }
        // (Errors above 0.3 are a variance lost altogether — 1 where it came out 0 — alike in any channel.)
        let unsaturated = measurable.filter { $0.error <= 0.3 }, errors = unsaturated.map(\.error), kappas = unsaturated.map(\.kappa)
        if errors.count >= 2, let hi = errors.max(), let lo = errors.min(), hi - lo <= 1e-3 * hi,
           let kh = kappas.max(), let kl = kappas.min(), kh - kl > 1e-3 * kh { return false }
        return measurable.allSatisfy { pt in
            pt.error <= Self.scatterAllowance * c * pow(max(pt.kappa, 1), exponent) * roundoff / floor
        }
    }

    /// The median of some errors (the mean of the middle two for an even count; NaN for none).
    static func median(_ e: [Double]) -> Double {
        guard !e.isEmpty else { return .nan }
        let s = e.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// A κ¹ or κ² fit over few channels (the fingerprint's 96, κ from 4 to 4096; 32 from 4 to
    /// 256 until 2026-12-06) names an algorithm only when the errors rise across the κ range: the
    /// median error of the highest quarter of κ at least `minimumRise` times the lowest quarter's
    /// (an outside red team's pivot-shifted float32 all-reduce — two-pass class — had been called
    /// updating by its fitted exponent alone, 2026-12-04). Otherwise the growth is noise about a
    /// flat error: "two_pass". The rise is in the evidence either way. `pts` and `floor` as given
    /// to ``fit``.
    public func requiringRise(_ pts: [Point], floor: Double, minimumRise: Double = 25) -> VarianceGrowth {
        guard algorithm == "updating" || algorithm == "one_pass" else { return self }
        let use = pts.filter { $0.kappa >= 1 && $0.kappa.isFinite && $0.error > 10 * floor && $0.error <= 0.3 }.sorted { $0.kappa < $1.kappa }
        let q = max(1, use.count / 4)
        let low = Self.median(use.prefix(q).map(\.error)), high = Self.median(use.suffix(q).map(\.error))
        var g = self
        guard high < minimumRise * low else {
            g.evidence += String(format: "; the errors rise %.3g× from the lowest to the highest quarter of κ (medians %.2g, %.2g; at least %g×)",
                                 high / low, low, high, minimumRise)
            return g
        }
        g.algorithm = "two_pass"
        g.evidence += String(format: "; but the errors rise only %.3g× from the lowest to the highest quarter of κ (medians %.2g, %.2g; below %g×: rounding scattered about a flat error, two-pass class)",
                             high / low, low, high, minimumRise)
        return g
    }

    /// A growth is "biased" when at least this many channels tell the sign of their error and
    /// at most a tenth of them have the minority sign: rounding errors fall on either side
    /// alike (12 channels with at most one of the other sign: 13 in 2¹¹ by chance; a one-pass
    /// NumPy mutant's audit has 380 of 759 too large, a variance taken about the mean rounded
    /// to float16 380 of 382).
    public static let biasChannels = 12

    /// One observation: a channel's condition and the relative error of the variance an
    /// implementation normalised with: its size, and its sign (+1 too large, −1 too small)
    /// where the observation tells it (0: unknown).
    public struct Point: Sendable, Equatable { public var kappa: Double; public var error: Double; public var sign: Double
        public init(kappa: Double, error: Double, sign: Double = 0) { self.kappa = kappa; self.error = abs(error); self.sign = sign } }

    /// Fits error ≈ c·κ^p over points with κ ≥ 1 whose error lies between 10·`floor` (below
    /// is rounding noise of the compute format) and 0.3 (above, the variance is lost and the
    /// error saturates). `binned`: fit the median error of each decade of κ instead of every
    /// point (audits: thousands of channels, most of them at small κ). Needs ≥ 3 bins (or 4
    /// points) over ≥ 1.5 decades.
    public static func fit(_ pts: [Point], floor: Double, binned: Bool = false) -> VarianceGrowth {
        var use = pts.filter { $0.kappa >= 1 && $0.kappa.isFinite && $0.error > 10 * floor && $0.error <= 0.3 }
        let channels = use.count
        if binned {
            let bins = Dictionary(grouping: use, by: { Int(log10($0.kappa).rounded(.down)) })
            use = bins.keys.sorted().map { k in
                let e = bins[k]!.map(\.error).sorted(), kk = bins[k]!.map(\.kappa).sorted()
                return Point(kappa: kk[kk.count / 2], error: e[e.count / 2])
            }
        }
        let xs = use.map { log10($0.kappa) }, ys = use.map { log10($0.error) }
        let decades = (xs.max() ?? 0) - (xs.min() ?? 0)
        guard use.count >= (binned ? 3 : 4), decades >= 1.5 else {
            return VarianceGrowth(exponent: .nan, points: channels, decades: decades, algorithm: "undetermined",
                                  evidence: "\(channels) channels with a measurable variance error over \(String(format: "%.1f", decades)) decades of κ: too few to fit its growth")
        }
        let n = Double(use.count)
        let mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
        let sxx = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        let p = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / sxx
        var algo = p >= 1.5 ? "one_pass" : (p >= 0.5 ? "updating" : "two_pass")
        let lo = use.min { $0.kappa < $1.kappa }!, hi = use.max { $0.kappa < $1.kappa }!
        var ev = String(format: "relative variance error ≈ c·κ^%.2f over %d channels%@, κ from %.3g (error %.2g) to %.3g (error %.2g); κ⁰ two-pass class, κ¹ updating, κ² one-pass",
                        p, channels, binned ? " (medians of \(use.count) decades)" : "", lo.kappa, lo.error, hi.kappa, hi.error)
        // Rounding errors (of a one-pass or an updating algorithm) fall on either side of the
        // variance from channel to channel; a variance that is too large (or too small) in every
        // channel is a bias of the formula — e.g. taken about a centre c ≠ μ, which adds
        // (μ − c)², as much as κ² — and is named by no algorithm (spec/AUDIT.md §5).
        let signed = pts.filter { $0.kappa >= 1 && $0.kappa.isFinite && $0.error > 10 * floor && $0.error <= 0.3 && $0.sign != 0 }
        let up = signed.filter { $0.sign > 0 }.count
        let fewer = min(up, signed.count - up)
        if algo != "two_pass", signed.count >= Self.biasChannels, Double(fewer) <= 0.1 * Double(signed.count) {
            algo = "biased"
            ev += "; but the variance is too \(2 * up > signed.count ? "large" : "small") in \(signed.count - fewer) of \(signed.count) channels: a bias, not rounding"
        } else if algo != "two_pass", !signed.isEmpty {
            ev += "; the variance too large in \(up) of \(signed.count) channels (rounding: either side)"
        }
        return VarianceGrowth(exponent: p, points: channels, decades: decades, algorithm: algo, evidence: ev,
                              coefficient: pow(10, my - p * mx))
    }
}
