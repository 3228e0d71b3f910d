import BNReferenceChecks
import BNCore
import BNReference
import Testing

/// The reference's per-channel statistics against GNU GSL, walking the tensor
/// the GSL way: `(data, stride, n)` with stride C for NHWC, per-sample contiguous
/// blocks for NCHW (merged with the pairwise formula of Chan, Golub & LeVeque).
@Suite struct GSLAgreementTests {
    static let u = 0x1p-53

    /// GSL's statistics plus an error bound on M2 that the block merge adds
    /// (zero for a single strided pass).
    struct Stats { var mean: Double; var biased: Double; var unbiased: Double; var mergeM2Error = 0.0 }

    /// GSL statistics of channel c, computed without BNSpec's code paths.
    static func gslStats(_ x: [Double], _ s: Shape, _ layout: Layout, _ c: Int) -> Stats {
        x.withUnsafeBufferPointer { buf in
            switch layout {
            case .nhwc, .nc:
                let base = UnsafeBufferPointer(rebasing: buf[c...])
                let n = s.perChannelCount
                let m = GSL.mean(base, stride: s.channels, count: n)
                return Stats(mean: m,
                             biased: GSL.biasedVariance(base, stride: s.channels, count: n, mean: m),
                             unbiased: n > 1 ? GSL.unbiasedVariance(base, stride: s.channels, count: n) : .nan)
            case .nchw:
                // Per-sample blocks, merged: n_ab = n_a + n_b, δ = m_b − m_a,
                // m_ab = m_a + δ·n_b/n_ab, M2_ab = M2_a + M2_b + δ²·n_a·n_b/n_ab.
                // Each block mean carries GSL's recurrence error δ ≲ 4·S·u·max|x|, so each
                // δ² term is off by ≲ 2|δ|·(2δ)·n_a·n_b/n_ab; that sum bounds the merge error.
                var n = 0.0, mean = 0.0, m2 = 0.0, err = 0.0
                let S = s.spatialSize
                for b in 0..<s.batch {
                    let blk = UnsafeBufferPointer(rebasing: buf[((b * s.channels + c) * S)...])
                    let mb = GSL.mean(blk, count: S)
                    let m2b = GSL.biasedVariance(blk, count: S, mean: mb) * Double(S)
                    let nb = Double(S), nab = n + nb, d = mb - mean
                    let delta = 4 * nb * u * blk.prefix(S).map(abs).max()!
                    err += (2 * abs(d) * 2 * delta + 4 * delta * delta) * n * nb / nab
                    mean += d * nb / nab
                    m2 += m2b + d * d * n * nb / nab
                    n = nab
                }
                return Stats(mean: mean, biased: m2 / n, unbiased: n > 1 ? m2 / (n - 1) : .nan, mergeM2Error: err)
            }
        }
    }

    static let cases: [(String, Shape, Layout, Double, Double)] = [
        ("normal NCHW", shape(4, 3, 5, 5), .nchw, 0, 1),
        ("normal NHWC", shape(4, 3, 5, 5), .nhwc, 0, 1),
        ("normal NC", shape(64, 5), .nc, 0, 1),
        ("large offset NCHW", shape(8, 2, 7, 7), .nchw, 1e6, 1),
        ("large offset NHWC", shape(8, 2, 7, 7), .nhwc, 1e6, 1e-2),
        ("N=2 spatial 1x1", shape(2, 4, 1, 1), .nchw, 3, 2),
    ]

    @Test(arguments: cases.indices)
    func agreesWithGSL(_ i: Int) throws {
        let (name, s, layout, offset, spread) = Self.cases[i]
        let x = randomTensor(s, seed: "gsl/\(name)", offset: offset, spread: spread)
        let ms = try Reference.moments(x, shape: s, layout: layout)
        for c in 0..<s.channels {
            let g = Self.gslStats(x, s, layout, c)
            let n = Double(s.perChannelCount)
            let maxAbs = channelValues(x, s, layout, c).map(abs).max()!
            // GSL's running-mean recurrence: error ≲ n·u·max|x|. Its variance about its
            // own mean carries that error squared plus ≲ n·u relative rounding.
            let meanTol = 4 * n * Self.u * maxAbs
            #expect(abs(ms[c].mean - g.mean) <= meanTol, "\(name) c=\(c) mean")
            let varTol = 8 * n * Self.u * ms[c].biasedVariance + meanTol * meanTol + g.mergeM2Error / n
            #expect(abs(ms[c].biasedVariance - g.biased) <= varTol, "\(name) c=\(c) biased variance")
            if n > 1 {
                #expect(abs(ms[c].unbiasedVariance - g.unbiased) <= varTol * n / (n - 1), "\(name) c=\(c) unbiased")
            }
        }
    }

    @Test(arguments: [Layout.nchw, .nhwc])
    func constantChannelsAreExactInBoth(_ layout: Layout) throws {
        let s = shape(3, 2, 4, 4)
        let x = (0..<s.elementCount).map { i in
            layout.index(n: 0, c: 0, s: 0, shape: s) == i ? 7.25 : 7.25 }
        let ms = try Reference.moments(x, shape: s, layout: layout)
        for c in 0..<s.channels {
            let g = Self.gslStats(x, s, layout, c)
            #expect(ms[c].mean == 7.25 && g.mean == 7.25)
            #expect(ms[c].biasedVariance == 0 && g.biased == 0)
            #expect(ms[c].unbiasedVariance == 0 && g.unbiased == 0)
        }
    }
}
