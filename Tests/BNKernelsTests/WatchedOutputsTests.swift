import CBNKernels
import Testing
import BNKernels

/// The affine passes not proven NaN-free (inference; `runs_apply`, `rows_apply` with
/// nan_free = 0) skip the per-vector NaN test and watch their outputs instead: a NaN or
/// ±∞ output sends the pass around again with the test (passes_template.h, `WATCH`).
/// Their outputs must be the contract's bit for bit — every NaN the canonical quiet NaN,
/// whatever payload and sign the input NaN carried (x86 would otherwise carry them
/// through) — on finite data (one pass), on data with payload NaNs, and on ±∞ inputs
/// (finite coefficients: ±∞ outputs; k = 0: 0·∞ = NaN from a non-NaN input), at every
/// level, storage format, walk and alignment, plain and streaming.
@Suite struct WatchedOutputsTests {
    /// tinyOutputs: finite data, k scaled by 2⁻¹³⁴ and β = 0, so that the outputs are float
    /// subnormals (which bfloat16's vcvtne2ps2bf16 would flush: its stores must take the
    /// integer form).
    enum Poison: CaseIterable { case none, payloadNaNs, infinities, tinyOutputs }

    /// Storage bits of v (16-bit formats: their 16 bits).
    static func bits<S: StorageElement>(_ v: S) -> UInt32 {
        withUnsafeBytes(of: v) { $0.count == 4 ? $0.load(as: UInt32.self) : UInt32($0.load(as: UInt16.self)) }
    }

    /// n inputs of storage S (magnitudes below 2¹¹, so float16 holds them and their
    /// outputs): finite, or with NaNs of odd payloads and signs (quiet and signalling) or
    /// ±∞ at scattered positions, some of them in channel 1.
    static func inputs<S: StorageElement>(_ n: Int, seed: UInt64, poison: Poison, channel: (Int) -> Int, _: S.Type) -> [S] {
        ThreadDeterminismTests.data(n, seed: seed).enumerated().map { i, v in
            let scattered = i % 29 == 5 || (channel(i) == 1 && i % 13 == 4)
            switch poison {
            case .payloadNaNs where scattered:
                // float32: quiet and signalling NaNs with payloads, either sign; 16-bit
                // formats keep the top of the payload (float16) and the sign.
                return S.narrow(Float(bitPattern: i % 2 == 0 ? 0xFFC1_2345 : 0x7FA1_2345 ^ UInt32(i & 0x7FFF) << 8))
            case .infinities where scattered: return S.narrow(i % 2 == 0 ? .infinity : -.infinity)
            default: return S.narrow((v - 3.5) * 0x1p-6)
            }
        }
    }

    /// The contract: y = fma(x − m, k, b) in Double, ReLU'd when asked, rounded once to
    /// Float (a NaN: 0x7FC00000), then to the storage format.
    static func expected<S: StorageElement>(_ x: [S], channel: (Int) -> Int, m: [Double], k: [Double], b: [Double], relu: Bool) -> [UInt32] {
        x.indices.map { i in
            let c = channel(i), v = b[c].addingProduct(Double(S.widen(x[i])) - m[c], k[c])
            let r = relu && v < 0 ? 0 : v
            return bits(S.narrow(r.isNaN ? Float(bitPattern: 0x7FC0_0000) : Float(r)))
        }
    }

    /// Coefficients of C channels, all different, |k| ≤ 2.5 (outputs within float16); channel
    /// 1 gets k = 0 (0·∞ = NaN from an ∞ input).
    static func coefficients(_ C: Int, _ poison: Poison) -> (m: [Double], k: [Double], b: [Double]) {
        let tiny = poison == .tinyOutputs
        let m = (0..<C).map { 0.3 + 0.01 * Double($0 % 97) }, b = (0..<C).map { tiny ? 0 : -0.7 + 0.013 * Double($0 % 89) }
        let k = (0..<C).map { c -> Double in
            let size = (0.5 + 0.0193 * Double(c % 101)) * (tiny ? 0x1p-134 : 1)
            return c == 1 ? 0 : c % 2 == 0 ? size : -size
        }
        return (m, k, b)
    }

    /// Runs `pass` into a buffer of sentinels at `offset` (plain and streaming stores) and
    /// returns the first element that differs from `want` (sentinels where it must not write).
    static func mismatch<S: StorageElement>(_ want: [UInt32], offset: Int, _: S.Type,
                                            _ pass: (UnsafeMutablePointer<S>, Int32) -> Void) -> String? {
        for stream: Int32 in [0, 1] {
            let n = want.count, sentinel = S.narrow(42)
            let out = UnsafeMutablePointer<S>.allocate(capacity: n + 32)
            defer { out.deallocate() }
            out.initialize(repeating: sentinel, count: n + 32)
            pass(out + offset, stream)
            for i in 0..<(n + 32) {
                let got = bits(out[i]), need = i >= offset && i < offset + n ? want[i - offset] : bits(sentinel)
                if got != need {
                    return "stream \(stream) offset \(offset): element \(i - offset): " + String(got, radix: 16) + ", want " + String(need, radix: 16)
                }
            }
        }
        return nil
    }

    static func check<S: StorageElement>(_: S.Type, isa: KernelISA) {
        let p = Passes(S.self, isa: isa)
        for poison in Poison.allCases { for relu: Int32 in [0, 1] {
            // NCHW runs: HW covers 16s, 16s + 8 and a tail, and a run of fewer than 8 values.
            for (N, C, HW) in [(3, 5, 37), (2, 4, 16), (4, 3, 5)] {
                let channel = { (i: Int) in (i / HW) % C }
                let x = inputs(N * C * HW, seed: UInt64(C * HW), poison: poison, channel: channel, S.self), (m, k, b) = coefficients(C, poison)
                let want = expected(x, channel: channel, m: m, k: k, b: b, relu: relu == 1)
                Self.reaches(want, poison, S.self, "\(S.self) NCHW \(N)x\(C)x\(HW)")
                for offset in [0, 3] {
                    let bad = mismatch(want, offset: offset, S.self) { y, stream in
                        p.table.runs_apply(x, y, C, HW, 0, N * C, m, k, b, relu, stream)
                    }
                    #expect(bad == nil, "\(S.self) at \(isa) NCHW \(N)x\(C)x\(HW) \(poison) relu \(relu): \(bad ?? "")")
                }
            }
            // NHWC rows: the flat walk (C < 16 in cache; every C streaming up to 512), the
            // tile walk's whole chunks and its C mod 8 tail, and wide rows.
            for C in [3, 8, 13, 24, 64, 600] {
                let R = RowPassesTests.rows(C), channel = { (i: Int) in i % C }
                let x = inputs(R * C, seed: UInt64(C) + 7, poison: poison, channel: channel, S.self), (m, k, b) = coefficients(C, poison)
                let want = expected(x, channel: channel, m: m, k: k, b: b, relu: relu == 1)
                Self.reaches(want, poison, S.self, "\(S.self) NHWC C \(C)")
                for offset in [0, 5] {
                    let bad = mismatch(want, offset: offset, S.self) { y, stream in
                        p.table.rows_apply(x, y, 0, R, C, m, k, b, relu, stream, 0)
                    }
                    #expect(bad == nil, "\(S.self) at \(isa) NHWC C \(C) \(poison) relu \(relu): \(bad ?? "")")
                }
            }
        }}
    }

    /// The data reach what they are meant to: no NaN output on finite data, NaN outputs
    /// from payload NaNs, and from ∞ both ±∞ outputs and 0·∞ NaNs.
    static func reaches<S: StorageElement>(_ want: [UInt32], _ poison: Poison, _: S.Type, _ what: String) {
        let values = want.map { w in S.widen(MemoryLayout<S>.size == 4 ? unsafeBitCast(w, to: S.self) : unsafeBitCast(UInt16(w), to: S.self)) }
        switch poison {
        case .none: #expect(!values.contains { !$0.isFinite }, "\(what): finite data, finite outputs")
        case .payloadNaNs: #expect(values.contains { $0.isNaN }, "\(what): NaN outputs")
        case .infinities: #expect(values.contains { $0.isInfinite } && values.contains { $0.isNaN }, "\(what): ±∞ and 0·∞ outputs")
        case .tinyOutputs:  // float16 has no such values: they round to ±0 there
            #expect(S.self == Float16.self || values.filter { $0.isSubnormal }.count > values.count / 16, "\(what): subnormal outputs")
        }
    }

    @Test(arguments: KernelISA.available)
    func watchedOutputsAreTheContractsBits(isa: KernelISA) {
        Self.check(Float.self, isa: isa)
        Self.check(Float16.self, isa: isa)
        Self.check(BFloat16Bits.self, isa: isa)
    }
}
