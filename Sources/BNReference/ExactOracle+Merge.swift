import BigInt

extension ExactOracle {
    /// One rank's statistics as exchanged in synchronized BN: count, mean and M2 (Doubles,
    /// taken as exact dyadic rationals).
    public struct Part: Sendable {
        public var count: Int
        public var mean: Double
        public var m2: Double
        public init(count: Int, mean: Double, m2: Double) { self.count = count; self.mean = mean; self.m2 = m2 }
    }

    /// The exact merge of K parts, rounded once (spec/SPEC.md §11.2):
    ///
    ///     n = Σ nᵢ,  μ = Σ nᵢμᵢ / n,  M2 = Σ M2ᵢ + Σ nᵢ(μᵢ − μ)²
    ///
    /// evaluated in rational arithmetic on the given Doubles — the value ``ChannelMoments/merge(_:)``
    /// promises to reach within 1 ulp. With μᵢ = aᵢ·2^L (aᵢ integers), S = Σ nᵢaᵢ:
    /// μ = S/n·2^L and Σ nᵢ(μᵢ − μ)² = Σ nᵢ(n·aᵢ − S)²/n²·2^(2L), so only integers are formed.
    /// - Precondition: at least one part, every count ≥ 1, all values finite.
    public static func merged(_ parts: [Part]) -> Statistics {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.count >= 1 && $0.mean.isFinite && $0.m2.isFinite })
        let means = parts.map { decompose($0.mean) }, m2s = parts.map { decompose($0.m2) }
        let lm = means.filter { $0.0 != 0 }.map(\.1).min() ?? 0
        let l2 = m2s.filter { $0.0 != 0 }.map(\.1).min() ?? 0
        let n = BigInt(parts.reduce(0) { $0 + $1.count })
        let a = means.map { $0.0 == 0 ? BigInt(0) : BigInt($0.0) << ($0.1 - lm) }
        var s = BigInt(0)
        for (p, ai) in zip(parts, a) { s += BigInt(p.count) * ai }
        var between = BigInt(0)                     // Σ nᵢ(n·aᵢ − S)², scaled by 2^(2·lm)/n²
        for (p, ai) in zip(parts, a) { let d = n * ai - s; between += BigInt(p.count) * d * d }
        var within = BigInt(0)                      // Σ M2ᵢ, scaled by 2^l2
        for (m, e) in m2s where m != 0 { within += BigInt(m) << (e - l2) }
        // M2 = (n²·within·2^(l2 − E) + between·2^(2lm − E)) / n² · 2^E with E = min(l2, 2lm).
        let e = min(l2, 2 * lm)
        let num = n * n * (within << (l2 - e)) + (between << (2 * lm - e))
        let mean = round(s, n, exponent: lm)
        let biased = round(num, n * n * n, exponent: e)
        let unbiased = n > 1 ? round(num, n * n * (n - 1), exponent: e) : .nan
        return Statistics(mean: mean, biasedVariance: biased, unbiasedVariance: unbiased)
    }
}
