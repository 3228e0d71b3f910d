import BNCore
import CBNKernels
import Testing
import BNKernels

/// Backward with the statistics given, NHWC/NC: `rows_sums_gradient` writes each tile's
/// gradient right after adding its sums, so that x and dy are read from memory once. It
/// must give the bits of the two passes it replaces — `rows_sums` (its Σd and Σd·u) and
/// then `rows_gradient` with nan_free 0 — which `RowPassesTests` checks against their
/// scalar contract. Channel counts, rows (several statistics tiles and a part), every
/// storage format and level, masks, NaN and ∞ inputs, streaming and plain stores and
/// output offsets that put the tiles' heads at every alignment.
@Suite struct SumsAndGradientTests {
    @Test(arguments: KernelISA.available)
    func oneWalkIsTheTwoPasses(isa: KernelISA) {
        Self.oneWalkIsTheTwoPasses(Float.self, isa: isa)
        Self.oneWalkIsTheTwoPasses(Float16.self, isa: isa)
        Self.oneWalkIsTheTwoPasses(BFloat16Bits.self, isa: isa)
    }

    static func oneWalkIsTheTwoPasses<S: StorageElement>(_: S.Type, isa: KernelISA) {
        let p = Passes(StorageFormat(S.self), isa: isa)
        for C in RowPassesTests.channelCounts {
            let R = RowPassesTests.rows(C, tile: Int(BN_SUMS_TILE_ELEMENTS)), n = R * C
            var x = NCHWSumsTests.spread(n, seed: UInt64(C) + 900, S.self), dy = NCHWSumsTests.spread(n, seed: UInt64(C) + 901, S.self)
            let mask = RowPassesTests.inputs(n, seed: UInt64(C) + 902).mask.map(S.narrow)
            // A NaN input and an infinite one (outputs NaN, tested and made canonical), in the last tile.
            x[n - C - 1] = S.narrow(.nan); dy[n - 2 * C] = S.narrow(-.infinity)
            let pivot = (0..<C).map { Double(S.widen(x[$0])) }
            let m = RowPassesTests.coefficients(C, seed: 11).map { $0 + 3 }, a = RowPassesTests.coefficients(C, seed: 12)
            let b = RowPassesTests.coefficients(C, seed: 13), k = RowPassesTests.coefficients(C, seed: 14)
            let sentinel = S.narrow(42)  // 42 in every format
            for masked in [false, true] { for stream: Int32 in [0, 1] { for offset in [0, 3, 9] {
                // From sums already holding a value (a later row block adds on); rows [1, R − 1).
                var s = (0..<C).map { Double($0) * 0.5 }, q = s.map { $0 + 1 }, g = s.map { $0 - 1 }, h = s.map { $0 + 2 }
                var g1 = g, h1 = h
                var dx = [S](repeating: sentinel, count: n + 16), dx1 = dx
                x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in mask.withUnsafeBufferPointer { mp in
                    let mk = masked ? UnsafeRawPointer(mp.baseAddress!) : nil
                    p.table.rows_sums(xp.baseAddress!, dp.baseAddress!, mk, 1, R - 1, C, pivot, &s, &q, &g, &h)
                    dx.withUnsafeMutableBufferPointer {
                        p.table.rows_gradient(xp.baseAddress!, dp.baseAddress!, mk, $0.baseAddress! + offset, 1, R - 1, C, m, a, b, k, stream, 0)
                    }
                    dx1.withUnsafeMutableBufferPointer {
                        p.table.rows_sums_gradient(xp.baseAddress!, dp.baseAddress!, mk, $0.baseAddress! + offset, 1, R - 1, C, pivot, &g1, &h1,
                                                   m, a, b, k, stream)
                    }
                }}}
                if stream != 0 { bn_stream_fence() }
                let what = "\(S.self) C \(C) mask \(masked) stream \(stream) offset \(offset) at \(isa)"
                #expect(g.map(\.bitPattern) == g1.map(\.bitPattern) && h.map(\.bitPattern) == h1.map(\.bitPattern), "\(what): Σd, Σd·u")
                let bits = { (v: [S]) in v.map { S.widen($0).bitPattern } }
                let bad = zip(bits(dx), bits(dx1)).enumerated().first { $0.element.0 != $0.element.1 }
                #expect(bad == nil, "\(what): dx[\((bad?.offset ?? 0) - offset)]")
                // It wrote exactly the rows asked (the sentinel elsewhere) and NaNs canonically.
                #expect(S.widen(dx1[offset + C - 1]) == 42 && S.widen(dx1[offset + n - C]) == 42, "\(what): wrote outside its rows")
                #expect(S.widen(dx1[offset + n - C - 1]).bitPattern == 0x7FC0_0000, "\(what): the NaN output is not canonical")
            }}}
        }
    }

    /// End to end: the NHWC kernel with the statistics given (one walk) against the NCHW
    /// kernel (per channel group) on the same values: dx is element-wise, so the same bits.
    /// dγ = r·Σd·(x − μ) and dβ = Σd add the same Double terms in another order: two
    /// recursive sums of n terms each err by at most (n − 1)·2⁻⁵³·Σ|t| (Higham, Accuracy and
    /// Stability, §4.2), and each is then rounded to Float (½ ulp): so they differ by at
    /// most 2n·2⁻⁵³·Σ|t| (times |r| for dγ) plus one ulp.
    @Test(arguments: KernelISA.available)
    func nhwcWithStatisticsGivesTheNCHWGradients(isa: KernelISA) throws {
        let (N, C, H, W) = (3, 37, 29, 23)  // 2001 rows: 9 statistics tiles of 221 rows, 64 row blocks
        let nchw = try Shape(batch: N, channels: C, spatial: [H, W]), HW = H * W, n = N * C * HW
        let x = ThreadDeterminismTests.data(n, seed: 31), dy = ThreadDeterminismTests.data(n, seed: 32).map { $0 - 3.5 }
        func nhwc(_ v: [Float]) -> [Float] {
            var t = v
            for b in 0..<N { for c in 0..<C { for i in 0..<HW { t[(b * HW + i) * C + c] = v[(b * C + c) * HW + i] } } }
            return t
        }
        let gamma = ThreadDeterminismTests.data(C, seed: 33).map { $0 - 4 }
        let mean = ThreadDeterminismTests.data(C, seed: 34), variance = ThreadDeterminismTests.data(C, seed: 35).map { abs($0) + 0.5 }
        var dx = [Float](repeating: 0, count: n), dxh = dx, dg = [Float](repeating: 0, count: C), db = dg, dgh = dg, dbh = dg
        try mean.withUnsafeBufferPointer { mp in try variance.withUnsafeBufferPointer { vp in
            try FusedBatchNorm.backward(x: x, dy: dy, dx: &dx, shape: nchw, layout: .nchw, gamma: gamma, eps: 1e-5,
                                        statistics: (mp.baseAddress!, vp.baseAddress!), dGamma: &dg, dBeta: &db, isa: isa)
            try FusedBatchNorm.backward(x: nhwc(x), dy: nhwc(dy), dx: &dxh, shape: nchw, layout: .nhwc, gamma: gamma, eps: 1e-5,
                                        statistics: (mp.baseAddress!, vp.baseAddress!), dGamma: &dgh, dBeta: &dbh, isa: isa)
        }}
        #expect(nhwc(dx).map(\.bitPattern) == dxh.map(\.bitPattern), "dx at \(isa)")
        for c in 0..<C {
            var absD = 0.0, absT = 0.0
            for b in 0..<N { for i in 0..<HW {
                let j = (b * C + c) * HW + i, d = Double(dy[j])
                absD += abs(d); absT += abs(d * (Double(x[j]) - Double(mean[c])))
            }}
            let r = 1 / (Double(variance[c]) + 1e-5).squareRoot(), e = 2 * Double(N * HW) * 0x1p-53
            let boundG = Double(max(dg[c].ulp, dgh[c].ulp)) + e * r * absT, boundB = Double(max(db[c].ulp, dbh[c].ulp)) + e * absD
            #expect(abs(Double(dg[c]) - Double(dgh[c])) <= boundG && abs(Double(db[c]) - Double(dbh[c])) <= boundB,
                    "channel \(c) at \(isa): dγ \(dg[c]) against \(dgh[c]), dβ \(db[c]) against \(dbh[c])")
        }
    }
}
