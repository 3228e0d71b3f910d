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
    /// "two_pass", "updating", "one_pass", or "undetermined" (too few points or too narrow a
    /// κ range to tell).
    public var algorithm: String
    public var evidence: String

    /// One observation: a channel's condition and the relative error of the variance an
    /// implementation normalised with.
    public struct Point: Sendable, Equatable { public var kappa: Double; public var error: Double
        public init(kappa: Double, error: Double) { self.kappa = kappa; self.error = error } }

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
        let algo = p >= 1.5 ? "one_pass" : (p >= 0.5 ? "updating" : "two_pass")
        let lo = use.min { $0.kappa < $1.kappa }!, hi = use.max { $0.kappa < $1.kappa }!
        let ev = String(format: "relative variance error ≈ c·κ^%.2f over %d channels%@, κ from %.3g (error %.2g) to %.3g (error %.2g); κ⁰ two-pass class, κ¹ updating, κ² one-pass",
                        p, channels, binned ? " (medians of \(use.count) decades)" : "", lo.kappa, lo.error, hi.kappa, hi.error)
        return VarianceGrowth(exponent: p, points: channels, decades: decades, algorithm: algo, evidence: ev)
    }
}
