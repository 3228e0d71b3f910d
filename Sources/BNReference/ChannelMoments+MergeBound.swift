extension ChannelMoments {
    /// How far ``merge(_:)`` of rounded per-rank moments may lie from the exact statistics
    /// of the union of the ranks' values (spec/SPEC.md §11.2, the honest (n, μ, M2) exchange
    /// in Double).
    ///
    /// Each part's mean μᵢ and M2ᵢ are within 1 ulp of their exact values (``compute(_:segments:)``'s
    /// contract): μᵢ = μᵢ* + eᵢ, |eᵢ| ≤ ulp(μᵢ). With dᵢ = μᵢ* − μ* and ē = Σ nᵢeᵢ/n, the merge
    /// formula evaluated exactly on the rounded parts gives
    ///
    ///     mean: μ* + ē                                  |ē| ≤ max ulp(μᵢ)
    ///     M2:   Σ M2ᵢ + Σ nᵢ(dᵢ + eᵢ − ē)² = M2* + Σ δM2ᵢ + 2Σ nᵢdᵢeᵢ + Σ nᵢeᵢ² − n·ē²
    ///
    /// (Σ nᵢdᵢ = 0 removes the cross term in ē), and the merge itself rounds once more (1 ulp
    /// of each result). Hence
    ///
    ///     |mean − μ*| ≤ ulp(mean) + max ulp(μᵢ)
    ///     |M2 − M2*|  ≤ ulp(M2) + Σ [ulp(M2ᵢ) + nᵢ·(2·|dᵢ|·ulp(μᵢ) + ulp(μᵢ)²)]
    ///
    /// with |dᵢ| ≤ |μᵢ − mean| + ulp(μᵢ) + ulp(mean) from the computed values. The
    /// between-rank term is linear in |dᵢ|·ulp(μᵢ) ≈ u·|μ|·σ/√nᵢ: on data with a large offset
    /// the exchange of rounded means, not the merge, limits the accuracy.
    /// - Precondition: `parts` are the non-empty parts that were merged into `merged`, all finite.
    public static func mergeBound(_ parts: [ChannelMoments], merged: ChannelMoments) -> (mean: Double, m2: Double) {
        let mean = merged.mean.ulp + parts.map { $0.mean.ulp }.max()!
        var m2 = merged.m2.ulp
        for p in parts {
            let e = p.mean.ulp
            let d = abs(p.mean - merged.mean) + e + merged.mean.ulp
            m2 += p.m2.ulp + Double(p.count) * (2 * d * e + e * e)
        }
        return (mean, m2)
    }
}
