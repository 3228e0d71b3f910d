import CBNKernels
import Testing
import BNKernels

/// The NCHW gradient pass (`nchw_backward_step` with output channels only) against its
/// contract, dx = fma(k, x − m, fma(a, d, b)) in Double rounded once, bit for bit, in every
/// storage format, with plain and with streaming stores (whose two-vector stores —
/// `STREAM16`, bfloat16 at AVX512_BF16: one conversion of both — must give the same
/// bits), on outputs that are ordinary, float subnormals (which that conversion would
/// flush) and NaNs from payload NaN inputs (canonical), at every level and two alignments.
@Suite struct StreamedGradientTests {
    static func check<S: StorageElement>(_: S.Type, isa: KernelISA) {
        let p = Passes(S.self, isa: isa)
        for tiny in [false, true] {
            for (N, C, HW) in [(2, 3, 37), (3, 2, 64), (2, 2, 5)] {
                let channel = { (i: Int) in (i / HW) % C }, n = N * C * HW
                let x = WatchedOutputsTests.inputs(n, seed: UInt64(HW) + 50, poison: .payloadNaNs, channel: channel, S.self)
                let dy = WatchedOutputsTests.inputs(n, seed: UInt64(HW) + 51, poison: .none, channel: channel, S.self)
                let scale = tiny ? 0x1p-134 : 1.0
                let m = (0..<C).map { 0.25 + 0.125 * Double($0) }, a = (0..<C).map { (0.75 - 0.0625 * Double($0)) * scale }
                let b = (0..<C).map { tiny ? 0 : 0.5 - 0.25 * Double($0) }, k = (0..<C).map { (-0.375 + 0.5 * Double($0)) * scale }
                let want = (0..<n).map { i -> UInt32 in
                    let c = channel(i)
                    let v = b[c].addingProduct(a[c], Double(S.widen(dy[i]))).addingProduct(k[c], Double(S.widen(x[i])) - m[c])
                    return WatchedOutputsTests.bits(S.narrow(v.isNaN ? Float(bitPattern: 0x7FC0_0000) : Float(v)))
                }
                let values = want.map { Float(bitPattern: MemoryLayout<S>.size == 4 ? $0 : $0 << 16) }
                if tiny && S.self == BFloat16Bits.self {
                    #expect(values.filter { $0.isSubnormal }.count > n / 16, "\(N)x\(C)x\(HW): subnormal outputs")
                }
                for offset in [0, 3] {
                    let bad = WatchedOutputsTests.mismatch(want, offset: offset, S.self) { dx, stream in
                        p.table.nchw_backward_step(x, dy, nil, dx, N, C, HW, 0, C, m, a, b, k, stream, nil, 0, 0, nil, nil, nil)
                    }
                    #expect(bad == nil, "\(S.self) at \(isa) \(N)x\(C)x\(HW) tiny \(tiny): \(bad ?? "")")
                }
            }
        }
    }

    @Test(arguments: KernelISA.available)
    func streamedGradientsAreTheContractsBits(isa: KernelISA) {
        Self.check(Float.self, isa: isa)
        Self.check(Float16.self, isa: isa)
        Self.check(BFloat16Bits.self, isa: isa)
    }
}
