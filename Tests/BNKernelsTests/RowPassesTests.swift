import CBNKernels
import Testing
import BNKernels

/// The NHWC/NC memory passes (CBNKernels `rows_sums`, `rows_apply`, `rows_gradient`)
/// against their contract in CBNKernels.h, written out as scalar Swift: every channel
/// adds its rows in row order, every output is one fused multiply-add chain in Double
/// rounded once to Float (canonical NaN). The passes cut the rows into tiles and
/// column chunks (in cache) or walk them as one flat run aligned to the output
/// (streaming); per-channel coefficients are all different here, so a chunk or phase
/// error in either walk changes a value. Channel counts cover the remainder paths (C mod 8),
/// chunks of 1–8 vectors, several tiles, the flat walk's period for C < 8 and the wide
/// rows (C > 512); output offsets cover every alignment.
@Suite struct RowPassesTests {
    static let channelCounts = [1, 3, 7, 8, 13, 24, 59, 64, 100, 520, 600]

    /// Rows enough for two tiles and a part, for tiles of `tile` values (the output
    /// passes' BN_TILE_ELEMENTS; the statistics take BN_SUMS_TILE_ELEMENTS).
    static func rows(_ C: Int, tile: Int = Int(BN_TILE_ELEMENTS)) -> Int { max(3, 2 * tile / C + 3) }

    /// x, dy and a ReLU mask (about half ≤ 0) of n values, seeded from `seed`.
    static func inputs(_ n: Int, seed: UInt64) -> (x: [Float], dy: [Float], mask: [Float]) {
        (ThreadDeterminismTests.data(n, seed: seed), ThreadDeterminismTests.data(n, seed: seed + 100),
         ThreadDeterminismTests.data(n, seed: seed + 200).map { $0 - 3.5 })
    }

    static func coefficients(_ C: Int, seed: UInt64) -> [Double] {
        ThreadDeterminismTests.data(C, seed: seed).map { Double($0) * 0.01 - 0.05 }
    }

    /// The output rounding of the passes: nearest Float, NaN canonical.
    static func output(_ v: Double) -> Float { v.isNaN ? .nan : Float(v) }

    static func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    /// Runs `pass` with plain and with streaming stores, writing `n` values at each offset
    /// (< 16) of a buffer of 42s (n + 16 long); the first element that is not `expected(i)` (42
    /// where the pass must not write), described, or nil.
    static func mismatch<T: ExpressibleByIntegerLiteral>(_ n: Int, offsets: [Int], same: (T, T) -> Bool, expected: (Int) -> T,
                                                         _ pass: (UnsafeMutablePointer<T>, Int32) -> Void) -> String? {
        for stream: Int32 in [0, 1] {
            for offset in offsets {
                var out = [T](repeating: 42, count: n + 16)
                out.withUnsafeMutableBufferPointer { pass($0.baseAddress! + offset, stream) }
                if let i = (0..<n).first(where: { !same(out[offset + $0], expected($0)) }) {
                    return "stream \(stream) offset \(offset): element \(i)"
                }
            }
        }
        return nil
    }

    @Test(arguments: KernelISA.available)
    func applyIsTheAffineOfEveryElement(isa: KernelISA) {
        let p = Passes(Float.self, isa: isa)
        // nanFree 1 (the caller's proof that no output is NaN: finite data) must change nothing.
        for C in Self.channelCounts { for nanFree: Int32 in [0, 1] {
            let R = Self.rows(C), n = R * C
            var x = ThreadDeterminismTests.data(n, seed: UInt64(C))
            if nanFree == 0 { x[n / 2] = .nan; x[1] = -.infinity }
            let m = Self.coefficients(C, seed: 1).map { $0 + 3 }, k = Self.coefficients(C, seed: 2)
            let b = Self.coefficients(C, seed: 3)
            for relu: Int32 in [0, 1] {
                let expected = (0..<n).map { i -> Float in
                    let c = i % C, v = b[c].addingProduct(Double(x[i]) - m[c], k[c])
                    return Self.output(relu == 1 && v < 0 ? 0 : v)
                }
                // Rows [1, R − 1): the walk starts and ends inside the buffer. Offsets up to 15
                // put the start at every 64-byte phase (the streaming walk's heads: up to 15 values).
                let bad = Self.mismatch(n, offsets: [0, 1, 3, 4, 7, 9, 12, 15], same: Self.same,
                                        expected: { i in i >= C && i < (R - 1) * C ? expected[i] : 42 }) { y, stream in
                    p.table.rows_apply(x, y, 1, Int(R - 1), C, m, k, b, relu, stream, nanFree)
                }
                #expect(bad == nil, "C \(C) relu \(relu) nanFree \(nanFree): \(bad ?? "")")
            }
        }}
    }

    @Test(arguments: KernelISA.available)
    func gradientIsTheFusedChainOfEveryElement(isa: KernelISA) {
        let p = Passes(Float.self, isa: isa)
        for C in Self.channelCounts {
            let R = Self.rows(C), n = R * C
            let (x, dy, mask) = Self.inputs(n, seed: UInt64(C) + 100)
            let m = Self.coefficients(C, seed: 4).map { $0 + 3 }, a = Self.coefficients(C, seed: 5)
            let b = Self.coefficients(C, seed: 6), k = Self.coefficients(C, seed: 7)
            for masked in [false, true] { for nanFree: Int32 in [0, 1] {
                let expected = (0..<n).map { i -> Float in
                    let c = i % C, d = masked && mask[i] <= 0 ? 0 : Double(dy[i])
                    return Self.output(b[c].addingProduct(a[c], d).addingProduct(k[c], Double(x[i]) - m[c]))
                }
                let bad = Self.mismatch(n, offsets: [0, 2, 5, 11, 14], same: Self.same, expected: { expected[$0] }) { dx, stream in
                    mask.withUnsafeBufferPointer { mp in
                        p.table.rows_gradient(x, dy, masked ? mp.baseAddress! : nil, dx, 0, R, C, m, a, b, k, stream, nanFree)
                    }
                }
                #expect(bad == nil, "C \(C) mask \(masked) nanFree \(nanFree): \(bad ?? "")")
            }}
        }
    }

    @Test(arguments: KernelISA.available)
    func sumsAddEveryRowInRowOrder(isa: KernelISA) {
        Self.sumsAddEveryRowInRowOrder(Float.self, isa: isa)
        Self.sumsAddEveryRowInRowOrder(Float16.self, isa: isa)
        Self.sumsAddEveryRowInRowOrder(BFloat16Bits.self, isa: isa)
    }

    /// For one storage format (16-bit: the same data rounded to it; bfloat16 walks its
    /// in-cache chunks in even/odd lanes at AVX512_BF16, which must not reorder a sum).
    static func sumsAddEveryRowInRowOrder<S: StorageElement>(_: S.Type, isa: KernelISA) {
        let p = Passes(S.self, isa: isa)
        for C in Self.channelCounts {
            let R = Self.rows(C, tile: Int(BN_SUMS_TILE_ELEMENTS)), n = R * C
            // Values spread over many binades, so that the Double sums round at nearly every
            // step and a row added out of order changes bits.
            let maskf = Self.inputs(n, seed: UInt64(C) + 400).mask
            let x = NCHWSumsTests.spread(n, seed: UInt64(C) + 401, S.self), dy = NCHWSumsTests.spread(n, seed: UInt64(C) + 402, S.self)
            let mask = maskf.map(S.narrow)
            let pivot = (0..<C).map { Double(S.widen(x[$0])) }
            for withDy in [false, true] {
                for masked in withDy ? [false, true] : [false] {
                    // The contract, scalar: from sums already holding a value (a later block adds on).
                    var s = (0..<C).map { Double($0) * 0.25 }, q = s.map { $0 + 1 }, g = s.map { $0 - 1 }, h = s.map { $0 + 2 }
                    var es = s, eq = q, eg = g, eh = h
                    for r in 1..<R {  // rows [1, R)
                        for c in 0..<C {
                            let i = r * C + c, u = Double(S.widen(x[i])) - pivot[c]
                            es[c] += u; eq[c] = eq[c].addingProduct(u, u)
                            if withDy {
                                let d = masked && S.widen(mask[i]) <= 0 ? 0 : Double(S.widen(dy[i]))
                                eg[c] += d; eh[c] = eh[c].addingProduct(d, u)
                            }
                        }
                    }
                    x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in mask.withUnsafeBufferPointer { mp in
                        p.table.rows_sums(xp.baseAddress!, withDy ? dp.baseAddress! : nil, masked ? mp.baseAddress! : nil, 1, R, C, pivot,
                                          &s, &q, &g, &h)
                    }}}
                    #expect(s == es && q == eq, "\(S.self) C \(C) dy \(withDy) mask \(masked) at \(isa): Σu, Σu²")
                    if withDy { #expect(g == eg && h == eh, "\(S.self) C \(C) mask \(masked) at \(isa): Σd, Σd·u") }
                }
            }
        }
    }

    /// The same walks over 16-bit storage (vectors of 16 bytes, so other alignments and
    /// line starts): outputs rounded to Float, then to Float16.
    @Test(arguments: KernelISA.available)
    func float16ApplyIsTheAffineOfEveryElement(isa: KernelISA) {
        let p = Passes(Float16.self, isa: isa)
        for C in Self.channelCounts {
            let R = Self.rows(C), n = R * C
            let x = ThreadDeterminismTests.data(n, seed: UInt64(C) + 700).map { Float16($0) }
            let m = Self.coefficients(C, seed: 8).map { $0 + 3 }, k = Self.coefficients(C, seed: 9), b = Self.coefficients(C, seed: 10)
            let expected = (0..<n).map { i -> Float16 in
                let c = i % C
                return Float16(Self.output(b[c].addingProduct(Double(Float(x[i])) - m[c], k[c])))
            }
            let bad = Self.mismatch(n, offsets: [0, 1, 6, 13], same: { $0.bitPattern == $1.bitPattern }, expected: { expected[$0] }) { y, stream in
                p.table.rows_apply(x, y, 0, R, C, m, k, b, 0, stream, 1)
            }
            #expect(bad == nil, "C \(C): \(bad ?? "")")
        }
    }
}
