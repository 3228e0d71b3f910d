import CBNKernels
import Testing
import BNKernels

/// The NCHW statistics pass (CBNKernels `nchw_forward_step` / `nchw_backward_step`)
/// against the lane order CBNKernels.h fixes for it, written out as scalar Swift: the
/// order in which every level and storage format adds a channel's values, so that the
/// sums are bit-identical whatever loop (16 at a time, even/odd lanes, 8, tail) adds them.
@Suite struct NCHWSumsTests {
    /// The NCHW statistics (`nchw_backward_step` with no output channels) against the lane
    /// order CBNKernels.h fixes: each run adds u[i], i < 16·⌊HW/16⌋, into lane i mod 16, then
    /// 8 more into lanes 0–7, then the rest one by one into a tail, the lanes persisting
    /// across the channel's runs; the sum is tree(lanes 0–7 + lanes 8–15) + tail. Run
    /// lengths cover every path (16s only, 16s + 8, 16s + 8 + tail, 8 + tail, tail only,
    /// one value), for every storage format; the data's spread makes the Double sums round,
    /// so a lane that adds its elements in another order, or another lane's, changes bits.
    @Test(arguments: KernelISA.available)
    func nchwSumsFollowTheDocumentedLaneOrder(isa: KernelISA) {
        Self.nchwSumsFollowTheLaneOrder(Float.self, isa: isa)
        Self.nchwSumsFollowTheLaneOrder(Float16.self, isa: isa)
        Self.nchwSumsFollowTheLaneOrder(BFloat16Bits.self, isa: isa)
    }

    /// n values ±(1 + j/256)·2^e of storage S, e uniform over a range that S holds as
    /// normal numbers (±12 for float16, ±40 otherwise): their Double sums and sums of
    /// squares round at nearly every step, so the order of the additions shows.
    static func spread<S: StorageElement>(_ n: Int, seed: UInt64, _: S.Type) -> [S] {
        let range: UInt64 = S.self == Float16.self ? 12 : 40
        var z = seed
        return (0..<n).map { _ in
            z = z &* 6364136223846793005 &+ 1442695040888963407
            let e = Int((z >> 20) % (2 * range + 1)) - Int(range), j = Float((z >> 40) & 255)
            let v = Float(sign: (z >> 60) & 1 == 0 ? .plus : .minus, exponent: e, significand: 1 + j / 256)
            return S.narrow(v)
        }
    }

    /// The four sums of channels `channels` (4 per channel: Σu, Σu², Σd, Σd·u) in the lane
    /// order CBNKernels.h fixes, written out as scalar Swift; d = 0 without dy.
    static func laneOrderSums<S: StorageElement>(_ x: [S], dy: [S]?, mask: [S]?, N: Int, C: Int, HW: Int, channels: Range<Int>,
                                                 pivot: [Double]) -> [Double] {
        func tree(_ v: [Double]) -> Double { ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])) }
        var expected = [Double]()
        for c in channels {
            var lanes = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 4), tail = [Double](repeating: 0, count: 4)
            for b in 0..<N {
                let whole = HW / 16 * 16
                for i in 0..<HW {
                    let e = (b * C + c) * HW + i, u = Double(S.widen(x[e])) - pivot[c]
                    let d = dy.map { dy in mask.map { S.widen($0[e]) <= 0 } == true ? 0 : Double(S.widen(dy[e])) } ?? 0
                    if i < whole + (HW - whole >= 8 ? 8 : 0) {
                        let l = i < whole ? i % 16 : i - whole
                        lanes[0][l] += u; lanes[1][l] = lanes[1][l].addingProduct(u, u)
                        lanes[2][l] += d; lanes[3][l] = lanes[3][l].addingProduct(d, u)
                    } else {
                        tail[0] += u; tail[1] = tail[1].addingProduct(u, u)
                        tail[2] += d; tail[3] = tail[3].addingProduct(d, u)
                    }
                }
            }
            for k in 0..<4 { expected.append(tree((0..<8).map { lanes[k][$0] + lanes[k][$0 + 8] }) + tail[k]) }
        }
        return expected
    }

    static func nchwSumsFollowTheLaneOrder<S: StorageElement>(_: S.Type, isa: KernelISA) {
        let p = Passes(S.self, isa: isa)
        for HW in [32, 40, 45, 5, 16, 12, 1] {
            let N = 3, C = 3, n = N * C * HW
            let maskf = RowPassesTests.inputs(n, seed: UInt64(HW) + 900).mask
            let x = Self.spread(n, seed: UInt64(HW) + 901, S.self), dy = Self.spread(n, seed: UInt64(HW) + 902, S.self)
            let mask = maskf.map(S.narrow)
            let pivot = (0..<C).map { Double(S.widen(x[$0 * HW])) }
            for masked in [false, true] {
                let expected = Self.laneOrderSums(x, dy: dy, mask: masked ? mask : nil, N: N, C: C, HW: HW, channels: 0..<C, pivot: pivot)
                var acc = [Double](repeating: .nan, count: C * 4 * Int(BN_ACC_DOUBLES)), out = [Double](repeating: .nan, count: 4 * C)
                x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in mask.withUnsafeBufferPointer { mp in
                    p.table.nchw_backward_step(xp.baseAddress!, dp.baseAddress!, masked ? mp.baseAddress! : nil, nil, N, C, HW, 0, 0, nil,
                                               nil, nil, nil, 0, nil, 0, C, pivot, &acc, &out)
                }}}
                let bad = (0..<(4 * C)).first { out[$0].bitPattern != expected[$0].bitPattern }
                #expect(bad == nil, "\(S.self) HW \(HW) mask \(masked) at \(isa): channel \((bad ?? 0) / 4) sum \((bad ?? 0) % 4): \(out[bad ?? 0]) against \(expected[bad ?? 0])")
            }
        }
    }

    /// The streamed training step (out of cache: each output run and the next group's
    /// statistics run in one loop, `run_apply_sums`) against the two passes it merges: its
    /// sums follow the documented lane order (as above), and its outputs are the plain
    /// step's, bit for bit, at every alignment of the output. Groups of equal and unequal
    /// size cover the paired runs and the runs left over on either side; run lengths cover
    /// every loop (16s, 16s + 8, tails, shorter than the alignment head).
    @Test(arguments: KernelISA.available)
    func streamedTrainingStepIsTheTwoPasses(isa: KernelISA) {
        Self.streamedTrainingStepIsTheTwoPasses(Float.self, isa: isa)
        Self.streamedTrainingStepIsTheTwoPasses(Float16.self, isa: isa)
        Self.streamedTrainingStepIsTheTwoPasses(BFloat16Bits.self, isa: isa)
    }

    static func streamedTrainingStepIsTheTwoPasses<S: StorageElement>(_: S.Type, isa: KernelISA) {
        let p = Passes(S.self, isa: isa)
        let N = 3, C = 6
        let cuts: [(a: Range<Int>, s: Range<Int>)] = [(0..<2, 2..<4), (0..<2, 2..<5), (0..<3, 3..<4), (1..<2, 2..<6), (0..<0, 0..<3), (3..<6, 6..<6)]
        for HW in [61, 32, 40, 45, 5, 3, 16] {
            let n = N * C * HW
            let x = Self.spread(n, seed: UInt64(HW) + 911, S.self)
            let pivot = (0..<C).map { Double(S.widen(x[$0 * HW])) }
            let mean = RowPassesTests.coefficients(C, seed: 31).map { $0 * 100 }, scale = RowPassesTests.coefficients(C, seed: 32),
                shift = RowPassesTests.coefficients(C, seed: 33)
            for (a, s) in cuts {
                let expected = Self.laneOrderSums(x, dy: nil, mask: nil, N: N, C: C, HW: HW, channels: s, pivot: pivot)
                for relu: Int32 in [0, 1] {
                    for nanFree in [false, true] {
                        for offset in [0, 1, 3, 7] {
                            let sentinel = S.narrow(42)
                            var y = [[S]](repeating: [S](repeating: sentinel, count: n + 8), count: 2)
                            var out = [[Double]](repeating: [Double](repeating: .nan, count: 4 * C), count: 2)
                            let flags = [UInt8](repeating: 1, count: C)
                            for stream: Int32 in [0, 1] {
                                var acc = [Double](repeating: .nan, count: C * 4 * Int(BN_ACC_DOUBLES))
                                x.withUnsafeBufferPointer { xp in y[Int(stream)].withUnsafeMutableBufferPointer { yp in
                                    p.table.nchw_forward_step(xp.baseAddress!, yp.baseAddress! + offset, N, C, HW, a.lowerBound, a.upperBound, mean, scale, shift,
                                                              relu, stream, nanFree ? flags : nil, s.lowerBound, s.upperBound, pivot, &acc,
                                                              &out[Int(stream)])
                                }}
                            }
                            let what = "\(S.self) HW \(HW) groups \(a)/\(s) relu \(relu) nan-free \(nanFree) offset \(offset) at \(isa)"
                            let badSum = (0..<(4 * s.count)).first { k in out.contains { $0[k].bitPattern != expected[k].bitPattern } }
                            #expect(badSum == nil, "\(what): channel \(s.lowerBound + (badSum ?? 0) / 4) sum \((badSum ?? 0) % 4): \(out[1][badSum ?? 0]) streamed, \(out[0][badSum ?? 0]) plain, against \(expected[badSum ?? 0])")
                            let w = MemoryLayout<S>.stride, plain = y[0].withUnsafeBytes { Array($0) }, streamed = y[1].withUnsafeBytes { Array($0) }
                            let badOut = (0..<(n + 8)).first { plain[($0 * w)..<($0 * w + w)] != streamed[($0 * w)..<($0 * w + w)] }
                            #expect(badOut == nil, "\(what): element \((badOut ?? 0) - offset) streamed \(S.widen(y[1][badOut ?? 0])), plain \(S.widen(y[0][badOut ?? 0]))")
                            let written = (0..<n).filter { S.widen(y[1][offset + $0]) != 42 }.map { ($0 / HW) % C }
                            #expect(Set(written) == Set(a), "\(what): the channels written are \(Set(written).sorted()), not \(a)")
                        }
                    }
                }
            }
        }
    }
}
