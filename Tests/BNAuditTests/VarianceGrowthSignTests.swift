import BNAudit
import Foundation
import Testing

/// `VarianceGrowth.fit` (spec/AUDIT.md §5): a κ² growth is a one-pass variance's only when its
/// errors fall on either side of the variance; nearly all of one sign is a bias ("biased").
@Suite struct VarianceGrowthSignTests {
    /// 40 channels, κ from 10 to 1000, relative error 10⁻⁸·κ² (κ² growth, all within the fitted
    /// range), signs from `sign(i)`.
    static func points(_ sign: (Int) -> Double) -> [VarianceGrowth.Point] {
        (0..<40).map { i in
            let kappa = 10 * pow(10, 2 * Double(i) / 39)
            return VarianceGrowth.Point(kappa: kappa, error: 1e-8 * kappa * kappa, sign: sign(i))
        }
    }

    @Test func mixedSignsAreOnePass() {
        let g = VarianceGrowth.fit(Self.points { $0 % 2 == 0 ? 1 : -1 }, floor: 0x1p-24)
        #expect(g.algorithm == "one_pass", "\(g.evidence)")
    }

    @Test func unknownSignsAreOnePass() {
        let g = VarianceGrowth.fit(Self.points { _ in 0 }, floor: 0x1p-24)
        #expect(g.algorithm == "one_pass", "\(g.evidence)")
    }

    /// 38 of 40 too large (the minority 5 %, under a tenth): a bias; 36 of 40 (10 %): still; 35 of
    /// 40: rounding could give it, one-pass.
    @Test func nearlyOneSignIsABias() {
        let g = VarianceGrowth.fit(Self.points { $0 < 2 ? -1 : 1 }, floor: 0x1p-24)
        #expect(g.algorithm == "biased" && g.evidence.contains("too large in 38 of 40"), "\(g.evidence)")
        #expect(VarianceGrowth.fit(Self.points { $0 < 4 ? -1 : 1 }, floor: 0x1p-24).algorithm == "biased")
        #expect(VarianceGrowth.fit(Self.points { $0 < 5 ? -1 : 1 }, floor: 0x1p-24).algorithm == "one_pass")
        #expect(VarianceGrowth.fit(Self.points { _ in -1 }, floor: 0x1p-24).evidence.contains("too small in 40 of 40"))
    }

    /// Fewer than `biasChannels` signed channels cannot tell a bias.
    @Test func fewSignedChannelsTellNothing() {
        let pts = Self.points { $0 < VarianceGrowth.biasChannels - 1 ? 1 : 0 }
        #expect(VarianceGrowth.fit(pts, floor: 0x1p-24).algorithm == "one_pass")
    }
}

/// Eight channels (κ 4, 4, 16, 16, 64, 64, 256, 256: the fingerprint's until 2026-12-04, when the
/// red team's all-reduce was read): a κ¹ or κ² fit names an algorithm only when the errors rise
/// ≥ 25× from the lowest quarter of κ to the highest.
@Suite struct VarianceGrowthRiseTests {
    static let kappas: [Double] = [4, 4, 16, 16, 64, 64, 256, 256]

    @Test func noiseAboutAFlatErrorIsTwoPass() {
        // An outside red team's pivot-shifted float32 all-reduce: 1.7e-8 … 2e-7, fitted κ^0.6.
        let errors = [1.7e-8, 9e-9, 5e-8, 2e-8, 6e-8, 9e-8, 2e-7, 1.6e-7]
        let pts = zip(Self.kappas, errors).map { VarianceGrowth.Point(kappa: $0, error: $1) }
        let fit = VarianceGrowth.fit(pts, floor: 1e-17)
        #expect(fit.algorithm == "updating", "\(fit.evidence)")
        let g = fit.requiringRise(pts, floor: 1e-17)
        #expect(g.algorithm == "two_pass" && g.evidence.contains("rise only"), "\(g.evidence)")
    }

    @Test func realGrowthKeepsItsName() {
        for (p, name) in [(1.0, "updating"), (2.0, "one_pass")] {
            let pts = Self.kappas.enumerated().map { i, k in
                VarianceGrowth.Point(kappa: k, error: 1e-9 * pow(k, p) * (i % 2 == 0 ? 1.5 : 0.7))
            }
            let g = VarianceGrowth.fit(pts, floor: 1e-17).requiringRise(pts, floor: 1e-17)
            #expect(g.algorithm == name && g.evidence.contains("the errors rise") && g.evidence.contains("at least 25×"), "\(g.evidence)")
        }
    }
}
/// Synthetic probes of eight channels per κ ∈ {4, 16, 64, 256, 1024, 4096} (the fingerprint has 16): an `updating`
/// reading needs the errors to rise below the highest level too.
@Suite struct VarianceGrowthLevelTests {
    static let levels: [Double] = [4, 16, 64, 256, 1024, 4096]
    static func points(_ error: (Double, Int) -> Double) -> [VarianceGrowth.Point] {
        levels.flatMap { k in (0..<8).map { i in VarianceGrowth.Point(kappa: k * (1 + 0.01 * Double(i)), error: error(k, i), sign: i % 2 == 0 ? 1 : -1) } }
    }

    /// A flat floor and a jump at κ = 4096 alone (a two-pass variance's squared mean error) is
    /// two-pass even where the fit and the quartile rise say updating; a κ¹ growth stays updating.
    @Test func aRiseAtTheTopLevelAloneIsTwoPass() {
        let scatter = { (i: Int) in i % 3 == 0 ? 1.5 : 0.8 }
        let top = Self.points { k, i in (k > 2000 ? 5e-5 : 1e-7) * scatter(i) }
        let fit = VarianceGrowth.fit(top, floor: 1e-17).requiringRise(top, floor: 1e-17)
        #expect(fit.algorithm == "updating", "\(fit.evidence)")
        let g = fit.requiringGrowthBelowTop(top, levels: Self.levels)
        #expect(g.algorithm == "two_pass" && g.evidence.contains("the rise at the highest level alone"), "\(g.evidence)")
        // Between a few times and ten times the floor at κ = 1024: neither class.
        let between = Self.points { k, i in (k > 2000 ? 5e-5 : k > 500 ? 7e-7 : 1e-7) * scatter(i) }
        let g2 = VarianceGrowth.fit(between, floor: 1e-17).requiringRise(between, floor: 1e-17).requiringGrowthBelowTop(between, levels: Self.levels)
        #expect(g2.algorithm == "undetermined" && g2.evidence.contains("between the two classes"), "\(g2.evidence)")
        let linear = Self.points { k, i in 1e-7 * max(1, k / 16) * scatter(i) }
        let kept = VarianceGrowth.fit(linear, floor: 1e-17).requiringRise(linear, floor: 1e-17).requiringGrowthBelowTop(linear, levels: Self.levels)
        #expect(kept.algorithm == "updating" && !kept.evidence.contains("the level below the highest"), "\(kept.evidence)")
        #expect(VarianceGrowth.byLevel(linear, levels: Self.levels).hasPrefix("median error by κ: 4: 8e-08 (4 of 8 too large), 16: 8e-08"),
                "\(VarianceGrowth.byLevel(linear, levels: Self.levels))")
    }
}

/// `VarianceGrowth.auditWide`: a growth seen only where a two-pass variance's own mean rounding,
/// up to 10⁴·(u·κ)², explains the error is no algorithm's (an outside red team's honest two-pass
/// variants had read "biased", "updating" or κ^1.84 from the suite's near-constant channels).
@Suite struct VarianceGrowthMeanRoundingTests {
    static let u = 0x1p-24

    /// `perDecade` channels in each decade of κ from 1 to 10³ with error f(κ) (alternating signs),
    /// plus near-constant channels at κ ≈ 7.4·10⁵ too large by `top`.
    static func points(perDecade: Int = 8, top: Double?, _ f: (Double) -> Double) -> [VarianceGrowth.Point] {
        var pts: [VarianceGrowth.Point] = []
        for i in 0..<(3 * perDecade) {
            let kappa = pow(10, Double(i) / Double(perDecade))
            pts.append(VarianceGrowth.Point(kappa: kappa, error: f(kappa), sign: i % 2 == 0 ? 1 : -1))
        }
        if let top { for k in 0..<16 { pts.append(VarianceGrowth.Point(kappa: 7.4e5 * (1 + Double(k) / 100), error: top, sign: 1)) } }
        return pts
    }

    @Test func theMeanRoundingBoundIsBelowOnePassAndAboveTwoPass() {
        // At κ = 7.4·10⁵: (u·κ)² ≈ 0.0019, an honest mean a few ulps off gives 10⁻³–10⁻²; one-pass u·κ² ≈ 3·10⁴.
        let atTop = VarianceGrowth.beyondMeanRounding([VarianceGrowth.Point(kappa: 7.4e5, error: 0.0075)], roundoff: Self.u)
        #expect(atTop.isEmpty)
        let onePass = VarianceGrowth.beyondMeanRounding([VarianceGrowth.Point(kappa: 100, error: Self.u * 100 * 100)], roundoff: Self.u)
        #expect(onePass.count == 1)
    }

    /// Flat errors of a few u below κ = 10³, and the near-constant channels 0.0075 too large:
    /// the plain binned fit reads a growth; the audit-wide reading does not.
    @Test func aTwoPassWithNearConstantChannelsIsNotAGrowth() {
        let pts = Self.points(top: 0.0075) { _ in 20 * Self.u }
        let plain = VarianceGrowth.fit(pts, floor: Self.u, binned: true)
        #expect(plain.algorithm != "two_pass" && plain.algorithm != "undetermined", "\(plain.evidence)")
        let g = VarianceGrowth.auditWide(pts)
        #expect(g.algorithm == "undetermined" || g.algorithm == "two_pass", "\(g.evidence)")
    }

    /// A one-pass error u·κ² and an updating one 20·u·κ keep their names below κ = 10³, with or
    /// without the near-constant channels.
    @Test func realGrowthBelowTheBoundKeepsItsName() {
        for top in [nil, 0.0075] as [Double?] {
            #expect(VarianceGrowth.auditWide(Self.points(top: top) { Self.u * $0 * $0 }).algorithm == "one_pass")
            #expect(VarianceGrowth.auditWide(Self.points(top: top) { 20 * Self.u * $0 }).algorithm == "updating")
        }
    }
}
