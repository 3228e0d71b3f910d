import BNReferenceChecks
import BNCore
import BNGolden
import BNReference
import Testing

/// Synchronized BN's merged statistics (spec §11.2) checked three ways: ``ChannelMoments/merge(_:)``
/// against the exact merge of the same rounded parts (BigInt, its 1-ulp contract), against the
/// exact statistics of the whole batch (within ``ChannelMoments/mergeBound(_:merged:)``), and
/// against GNU GSL on the whole batch.
@Suite struct MergedStatisticsTests {
    /// Splits `v` into K parts at random cut points (empty parts allowed, then dropped:
    /// an empty rank contributes nothing to a merge).
    static func randomParts(_ v: [Double], _ r: inout SpecRandom) -> [[Double]] {
        let K = 1 + r.int(below: 8)
        var cuts = (0..<(K - 1)).map { _ in r.int(below: v.count + 1) }
        cuts.sort()
        let bounds = [0] + cuts + [v.count]
        return (0..<K).map { Array(v[bounds[$0]..<bounds[$0 + 1]]) }.filter { !$0.isEmpty }
    }

    /// Families of ``ExactOracleTests`` whose squares stay finite (`mixed-magnitude` reaches
    /// 2^996: nᵢ(μᵢ − μ)² overflows, outside the merge's domain of finite M2).
    static let families = ExactOracleTests.families.filter { $0.name != "mixed-magnitude" }

    @Test(arguments: families.map(\.name))
    func mergeIsWithinOneUlpOfTheExactMergeOfItsParts(family name: String) {
        let family = Self.families.first { $0.name == name }!
        var r = SpecRandom("merge-oracle/\(name)")
        var checked = 0, correctlyRounded = 0
        for n in family.sizes {
            for _ in 0..<(300 / family.sizes.count) {
                let parts = Self.randomParts(family.make(&r, n), &r).map(moments(of:))
                let merged = ChannelMoments.merge(parts)
                let exact = ExactOracle.merged(parts.map { ExactOracle.Part(count: $0.count, mean: $0.mean, m2: $0.m2) })
                for (ours, ref, what) in [(merged.mean, exact.mean, "mean"), (merged.biasedVariance, exact.biasedVariance, "biased"),
                                          (merged.unbiasedVariance, exact.unbiasedVariance, "unbiased")] {
                    let d = ulpDistance(ours, ref)
                    #expect(d <= 1, "\(name) n=\(n) K=\(parts.count) \(what): \(ours) vs exact merge \(ref) (\(d) ulp)")
                    if d == 0 { correctlyRounded += 1 }
                    checked += 1
                }
            }
        }
        #expect(Double(correctlyRounded) >= 0.95 * Double(checked), "\(name): \(correctlyRounded) of \(checked) correctly rounded")
    }

    @Test(arguments: families.map(\.name))
    func mergeIsWithinItsBoundOfTheWholeBatch(family name: String) {
        let family = Self.families.first { $0.name == name }!
        var r = SpecRandom("merge-whole/\(name)")
        for n in family.sizes {
            for _ in 0..<(300 / family.sizes.count) {
                let v = family.make(&r, n)
                let parts = Self.randomParts(v, &r).map(moments(of:))
                let merged = ChannelMoments.merge(parts)
                let exact = ExactOracle.statistics(v)
                let bound = ChannelMoments.mergeBound(parts, merged: merged)
                let nd = Double(n)
                #expect(abs(merged.mean - exact.mean) <= bound.mean, "\(name) n=\(n) K=\(parts.count) mean")
                #expect(abs(merged.biasedVariance - exact.biasedVariance) <= bound.m2 / nd + exact.biasedVariance.ulp,
                        "\(name) n=\(n) K=\(parts.count) biased variance \(merged.biasedVariance) vs \(exact.biasedVariance)")
                if n > 1 {
                    #expect(abs(merged.unbiasedVariance - exact.unbiasedVariance) <= bound.m2 / (nd - 1) + exact.unbiasedVariance.ulp,
                            "\(name) n=\(n) K=\(parts.count) unbiased variance")
                }
            }
        }
    }

    /// A hand-checkable merge: parts {1, 2, 3} and {10} (n = 4): μ = 4, M2 = 2 + 3·(2 − 4)² + (10 − 4)² = 50 = Σ(x − 4)² = 9 + 4 + 1 + 36.
    @Test func exactMergeOfAKnownCase() {
        let exact = ExactOracle.merged([.init(count: 3, mean: 2, m2: 2), .init(count: 1, mean: 10, m2: 0)])
        #expect(exact.mean == 4 && exact.biasedVariance == 12.5 && exact.unbiasedVariance == 50.0 / 3)
        let merged = ChannelMoments.merge([moments(of: [1, 2, 3]), moments(of: [10])])
        #expect(merged.mean == 4 && merged.m2 == 50)
    }

    /// GSL on the whole channel (one strided pass, its own algorithm) against the merge of
    /// the ranks' moments: within GSL's recurrence error (as in ``GSLAgreementTests``) plus
    /// the merge bound.
    @Test(arguments: [("normal", 0.0, 1.0), ("offset 1e6", 1e6, 1.0), ("offset 1e4 narrow", 1e4, 1e-3)])
    func mergedStatisticsAgreeWithGSL(_ name: String, _ offset: Double, _ spread: Double) throws {
        var r = SpecRandom("merge-gsl/\(name)")
        for partition in ["4+4", "1+6+1", "0+3+0+5", "2+2+2+2+0+1+1+1"] {
            let p = try BatchPartition(parsing: partition)
            let s = try Shape(batch: p.batch, channels: 3, spatial: [5, 5])
            let x = (0..<s.elementCount).map { _ in offset + spread * r.normal() }
            let sync = try Reference.synchronizedTrainingForward(x, shape: s, layout: .nhwc, partition: p, eps: 1e-5)
            for c in 0..<s.channels {
                let (gm, gv) = x.withUnsafeBufferPointer { buf in
                    let base = UnsafeBufferPointer(rebasing: buf[c...])
                    let m = GSL.mean(base, stride: s.channels, count: s.perChannelCount)
                    return (m, GSL.biasedVariance(base, stride: s.channels, count: s.perChannelCount, mean: m))
                }
                let n = Double(s.perChannelCount), u = 0x1p-53
                let maxAbs = channelValues(x, s, .nhwc, c).map(abs).max()!
                let merged = sync.mergedMoments[c]
                let bound = ChannelMoments.mergeBound(sync.rankMoments.compactMap { $0?[c] }, merged: merged)
                let meanTol = 4 * n * u * maxAbs
                #expect(abs(merged.mean - gm) <= meanTol + bound.mean, "\(name) \(partition) c=\(c) mean")
                let varTol = 8 * n * u * merged.biasedVariance + meanTol * meanTol + bound.m2 / n
                #expect(abs(merged.biasedVariance - gv) <= varTol, "\(name) \(partition) c=\(c) variance")
            }
        }
    }
}
