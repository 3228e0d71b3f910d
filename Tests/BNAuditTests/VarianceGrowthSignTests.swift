@testable import BNAudit
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
