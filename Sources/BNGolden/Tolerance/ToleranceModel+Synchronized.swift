import Foundation

extension ToleranceModel {
    /// One non-empty rank's part of a channel in synchronized BN: the figures of its own values
    /// (first and last in the rank's logical order) and their exact mean and biased variance.
    public struct RankPart: Sendable {
        public var data: ChannelData
        public var mean: Double
        public var variance: Double
        public init(data: ChannelData, mean: Double, variance: Double) { self.data = data; self.mean = mean; self.variance = variance }
    }

    /// Bounds on the global batch mean and biased variance of synchronized BN (spec/SPEC.md §5.2,
    /// §11.4) that hold for every honest synchronized algorithm: the larger of
    ///
    /// - the class bound of the whole batch (``statBounds(_:variance:)`` on the global channel): any
    ///   algorithm of §5.1 over the concatenation — an all-reduce of sums, of shifted sums about a
    ///   common shift (a first round's mean, rank 0's first value), merge trees whose leaves lie
    ///   inside the ranks;
    /// - the per-rank exchange: each rank computes (m_k, μ_k, M2_k) of its own values with any
    ///   algorithm of the class (bounds δμ_k, δv_k of its own figures, so a pivot per rank is
    ///   covered), and the K' non-empty ranks' parts are merged with Chan's formula or the convex
    ///   form μ = (n_a·μ_a + n_b·μ_b)/n over any tree (K' − 1 merges), optionally sending
    ///   r_k = 1/√(v_k + ε) instead of v_k (PyTorch's invstd round trip, honest but lossy):
    ///
    ///       δμ = (Σ w_k·δμ_k + E)·g,   E = 7(K' − 1)·u·M
    ///       δv = (Σ w_k·(δv_k + 2|μ_k − μ|·δμ_k + δμ_k²) + E·√(log₂K')·√v + (K' + 6)·u·v
    ///             + 9u·Σ w_k·(v_k + δv_k) + 8u·ε + 6(K' − 1)·t)·g
    ///
    ///   with w_k = m_k/m, M = max|x| of the global channel and g = 1 + m·u. The first sum is the
    ///   exact merge of perturbed parts: M̂2 − M2 = Σ δM2_k + 2Σ m_k·d_k·e_k + Σ m_k·e_k² − m·ē²
    ///   (d_k = μ_k − μ, |e_k| ≤ δμ_k). E bounds the merges' own roundings of a mean: a merge of
    ///   n_j values adds ≤ 7u·M (Chan's form u·(3|d|·n_b/n + |μ|), |d| ≤ 2M; the convex form four
    ///   roundings of terms ≤ M), carried to the result with weight n_j/m, and Σ_j n_j/m ≤ K' − 1.
    ///   Those errors reach M2 through the between-rank terms d_j²·n_a·n_b/n_j: by Cauchy–Schwarz
    ///   (1/m)·Σ 2|d_j|·E·n_a n_b/n_j ≤ (2E/m)·√(M2)·√(Σ n_a n_b/n_j), and Σ n_a n_b/n_j ≤
    ///   (m/4)·log₂K' over any tree (n·p(1 − p) ≤ n·H(p)/4 and the chain rule of entropy): E·√(log₂K')·√v.
    ///   (K' + 6)·u·v: the roundings of the between-rank terms (≤ 6 each) and of the K' − 1
    ///   additions. 9u·(v_k + δv_k) + 8u·ε: the variance rebuilt as (1/r_k)² − ε, |w − v̂_k| ≤
    ///   8u·(v̂_k + ε) + u·v̂_k (§11.4 (c)). t: subnormal products of the merges.
    ///
    /// `ranks`: the non-empty ranks' parts, in rank order. A non-finite variance gives the class
    /// bound (such channels' outputs are NaN, spec §4).
    public func synchronizedStatBounds(_ whole: ChannelData, mean: Double, variance v: Double, ranks: [RankPart],
                                       eps: Double) -> StatBounds {
        let single = statBounds(whole, variance: v)
        let m = Double(whole.n)
        guard v.isFinite, mean.isFinite, m > 0, !ranks.isEmpty else { return single }
        var dmu = 0.0, dv = 0.0, within = 0.0
        for p in ranks {
            let w = Double(p.data.n) / m
            let b = statBounds(p.data, variance: p.variance)
            dmu += w * b.mean
            dv += w * (b.variance + 2 * abs(p.mean - mean) * b.mean + b.mean * b.mean)
            within += w * (p.variance + b.variance)
        }
        let merges = Double(ranks.count - 1), grow = 1 + m * u
        let e = 7 * merges * u * whole.maxAbs
        let varianceMerge = e * log2(Swift.max(Double(ranks.count), 2)).squareRoot() * v.squareRoot() + (merges + 7) * u * v
            + 6 * merges * tiny
        let roundTrip = 9 * u * within + 8 * u * eps
        let exchanged = StatBounds(mean: (dmu + e) * grow, variance: (dv + varianceMerge + roundTrip) * grow)
        guard exchanged.mean.isFinite, exchanged.variance.isFinite else { return single }
        return StatBounds(mean: Swift.max(single.mean, exchanged.mean), variance: Swift.max(single.variance, exchanged.variance))
    }
}
