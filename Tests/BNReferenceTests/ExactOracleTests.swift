import BNReference
import BNGolden
import Testing

/// The reference's mean and variances against the exact rational statistics
/// (BigInt), on adversarial channel families: the contract is correct rounding.
@Suite struct ExactOracleTests {
    /// A family of channels: a name and a generator of one channel of n values.
    struct Family: Sendable {
        var name: String
        var sizes: [Int]
        var make: @Sendable (inout SpecRandom, Int) -> [Double]
    }

    static let families: [Family] = [
        Family(name: "normal", sizes: [1, 2, 3, 7, 64, 1000]) { r, n in (0..<n).map { _ in r.normal() } },
        Family(name: "large-offset", sizes: [2, 3, 17, 100, 1000]) { r, n in
            let offset = r.sign() * [1e2, 1e4, 1e6, 1e8][r.int(below: 4)] * (1 + r.uniform())
            let spread = [1e-8, 1e-6, 1e-3, 1][r.int(below: 4)]
            return (0..<n).map { _ in offset + spread * r.normal() }
        },
        Family(name: "mixed-magnitude", sizes: [2, 5, 31, 200]) { r, n in
            (0..<n).map { _ in
                Double(sign: r.next() & 1 == 0 ? .plus : .minus, exponent: r.int(below: 1993) - 996,
                       significand: 1 + r.uniform())
            }
        },
        Family(name: "cancelling", sizes: [4, 10, 101, 500]) { r, n in
            // Large values that cancel in pairs, plus a few small ones, shuffled.
            var v: [Double] = []
            while v.count + 2 <= n - 1 {
                let a = r.sign() * Double(sign: .plus, exponent: r.int(below: 120), significand: 1 + r.uniform())
                v.append(a); v.append(-a)
            }
            while v.count < n { v.append(r.normal() * 1e-3) }
            for i in stride(from: v.count - 1, to: 0, by: -1) { v.swapAt(i, r.int(below: i + 1)) }
            return v
        },
        Family(name: "constant", sizes: [1, 2, 9, 1000]) { r, n in
            let c = r.sign() * Double(sign: .plus, exponent: r.int(below: 200) - 100, significand: 1 + r.uniform())
            return Array(repeating: c, count: n)
        },
        Family(name: "near-ulp", sizes: [3, 50, 1001]) { r, n in
            // Values within a few ulps of a large offset: the variance is of order ulp².
            let c = 1e8 * (1 + r.uniform())
            return (0..<n).map { _ in c + Double(r.int(below: 5) - 2) * c.ulp }
        },
        Family(name: "subnormal-spread", sizes: [2, 3, 8, 100]) { r, n in
            // Every deviation from the mean below 2⁻¹⁰²² (issue 12 item 4: the old scaling
            // by 2⁻ᵉ overflowed and gave a NaN variance): a subnormal or tiny normal base
            // plus a few units of 2⁻¹⁰⁷⁴ or of the base's ulp.
            let base = [0, 5e-324, 1e-310, 0x1p-1022, 1e-300, -1e-300, 0x1p-1000][r.int(below: 7)]
            let unit = Swift.max(base.ulp, Double.leastNonzeroMagnitude)
            return (0..<n).map { _ in base + Double(r.int(below: 9) - 4) * unit }
        },
    ]

    /// Bit-identical to the oracle's correctly rounded statistics (Σx² − (Σx)²/n), and the
    /// nearest Double to the term-by-term M2 = Σ(x − μ)² of the output oracle.
    @Test(arguments: families.map(\.name))
    func meanAndVariancesAreCorrectlyRounded(family name: String) {
        let family = Self.families.first { $0.name == name }!
        var r = SpecRandom("oracle/\(name)")
        let channelsPerSize = 400 / family.sizes.count
        for n in family.sizes {
            for k in 0..<channelsPerSize {
                let v = family.make(&r, n)
                let exact = ExactOracle.statistics(v)
                let m = moments(of: v)
                let pairs = [(m.mean, exact.mean), (m.biasedVariance, exact.biasedVariance),
                             (m.unbiasedVariance, exact.unbiasedVariance)]
                for (ours, ref) in pairs {
                    #expect(ours.bitPattern == ref.bitPattern || (ours.isNaN && ref.isNaN),
                            "family \(name) n=\(n): \(ours) vs exact \(ref) (\(ulpDistance(ours, ref)) ulp)")
                }
                if k < 20 {   // the term-by-term oracle is slower: a sample
                    let st = ExactOracle.ChannelStatistics(v)
                    #expect(ExactOracle.isNearest(m.mean, to: ExactOracle.Real(st.mean)), "family \(name) n=\(n) mean")
                    #expect(ExactOracle.isNearest(m.biasedVariance, to: ExactOracle.Real(st.biasedVariance)), "family \(name) n=\(n) variance")
                }
            }
        }
    }

    /// Issue 12 item 4, exactly as reported: deviations below 2⁻¹⁰²² gave a NaN variance.
    @Test func subnormalDeviationsHaveTheirExactVariance() {
        for v in [[0, 5e-324], [1e-300, 1e-300 + 1e-310], [-5e-324, 5e-324, 5e-324]] {
            let m = moments(of: v), exact = ExactOracle.statistics(v)
            #expect(!m.biasedVariance.isNaN && m.biasedVariance == exact.biasedVariance, "\(v): \(m.biasedVariance) vs \(exact.biasedVariance)")
            #expect(m.mean == exact.mean && m.unbiasedVariance == exact.unbiasedVariance, "\(v)")
        }
        // The variance of [0, 2⁻¹⁰⁷⁴] is 2⁻²¹⁵⁰: it rounds to 0 (not NaN); the mean 2⁻¹⁰⁷⁵ is a tie, to even 0.
        #expect(moments(of: [0, 5e-324]).biasedVariance == 0 && moments(of: [0, 5e-324]).mean == 0)
    }

    @Test func largeChannelsUpToHundredThousand() {
        var r = SpecRandom("oracle/large-n")
        for n in [10_000, 100_000] {
            let offset = 1e6
            let v = (0..<n).map { _ in offset + 1e-3 * r.normal() }
            let exact = ExactOracle.statistics(v)
            let m = moments(of: v)
            #expect(m.mean == exact.mean && m.biasedVariance == exact.biasedVariance && m.unbiasedVariance == exact.unbiasedVariance)
        }
    }

    @Test func floatInputsWidenedToDouble() {
        var r = SpecRandom("oracle/float")
        for n in [2, 49, 784, 3136] {
            let v = (0..<n).map { _ in Double(Float(1e4 + r.normal())) }
            let exact = ExactOracle.statistics(v)
            let m = moments(of: v)
            #expect(m.mean == exact.mean && m.biasedVariance == exact.biasedVariance)
        }
    }

    /// The oracle's own rounding, on rationals whose nearest Double is known.
    @Test func oracleRoundsRationalsCorrectly() {
        #expect(ExactOracle.round(1, 3, exponent: 0) == 1.0 / 3.0)
        #expect(ExactOracle.round(2, 3, exponent: 0) == 2.0 / 3.0)
        #expect(ExactOracle.round(-7, 10, exponent: 0) == -0.7)
        #expect(ExactOracle.round(1, 1, exponent: -1074) == Double.leastNonzeroMagnitude)
        #expect(ExactOracle.round(1, 2, exponent: -1074) == 0)          // tie to even: 0
        #expect(ExactOracle.round(3, 2, exponent: -1074) == 2 * Double.leastNonzeroMagnitude)
        #expect(ExactOracle.round(1, 1, exponent: 1024) == .infinity)
        // (2^53 + 1) rounds to even 2^53; (2^53 + 3) rounds up to 2^53 + 4.
        #expect(ExactOracle.round(9007199254740993, 1, exponent: 0) == 9007199254740992)
        #expect(ExactOracle.round(9007199254740995, 1, exponent: 0) == 9007199254740996)
    }
}
