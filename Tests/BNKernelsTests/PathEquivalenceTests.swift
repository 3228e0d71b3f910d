import BNCore
import Foundation
import Testing
import BNKernels

/// The instruction-set levels of the fused kernels (``KernelISA``: baseline, AVX2,
/// AVX-512 — each compiled from the same C source) give the same bits: every output of
/// every mode, layout and storage format, on data with NaN, ±∞, subnormals, constant
/// channels and cancellation, and the storage conversions over their whole domain.
/// Levels this CPU lacks are not run (the list is printed by `bnspec bench`).
@Suite struct PathEquivalenceTests {
    /// Values that exercise every branch of the arithmetic: per channel, ordinary data,
    /// a constant, a NaN, an infinity, subnormals, huge values whose squares overflow,
    /// data on a large offset (cancellation), and magnitudes so spread that the order of
    /// the additions shows in the sums.
    static func adversarial(_ shape: Shape, _ layout: Layout, seed: UInt64) -> [Float] {
        let plain = ThreadDeterminismTests.data(shape.elementCount, seed: seed)
        let C = shape.channels, HW = shape.spatialSize
        return plain.indices.map { i in
            let c = layout == .nchw ? (i / HW) % C : i % C
            let v = plain[i]
            switch c % 8 {
            case 1: return 2.5  // constant channel
            case 2: return i % 5 == 3 ? .nan : v
            case 3: return i % 7 == 2 ? (i % 2 == 0 ? .infinity : -.infinity) : v
            case 4: return v * 0x1p-140  // subnormal
            case 5: return v * 1e37  // squares overflow
            case 6: return 1e4 + v * 1e-3  // offset
            // Magnitudes over 2^±40: sums of u and u² are inexact in double, so a lane
            // that adds its elements in another order (or another lane's) changes bits.
            case 7: return (i % 3 == 0 ? -v : v) * Float(sign: .plus, exponent: (i * 37) % 81 - 40, significand: 1)
            default: return i % 11 == 0 ? -v : v
            }
        }
    }

    struct Outputs: Equatable {
        var y: [UInt16], stats: [UInt32], yi: [UInt16], dx: [UInt16], dxi: [UInt16], grads: [UInt32]
    }

    /// Every kernel entry point at level `isa`, outputs as bit patterns (16-bit storage
    /// outputs as their storage bits, Float32 as two 16-bit halves). `everyOutput`: training
    /// and backward test every output for NaN, NaN-free channels too (``NaNFree``).
    static func run<S: StorageElement>(_: S.Type, _ shape: Shape, _ layout: Layout, relu: Bool, isa: KernelISA, eps: Double = 1e-5,
                                       everyOutput: Bool = false, tinyOutputs: Bool = false) throws -> Outputs {
        let n = shape.elementCount, C = shape.channels
        let x = adversarial(shape, layout, seed: 21).map(S.narrow), dy = adversarial(shape, layout, seed: 22).map(S.narrow)
        // tinyOutputs: γ = ±2⁻¹³⁰ and β = 0: the outputs of the channels with finite statistics are float subnormals.
        let g = ThreadDeterminismTests.data(C, seed: 23).map { tinyOutputs ? ($0 < 3 ? -0x1p-130 : 0x1p-130) : $0 - 4 }
        let b = tinyOutputs ? [Float](repeating: 0, count: C) : ThreadDeterminismTests.data(C, seed: 24)
        var y = [S](repeating: S.narrow(0), count: n), yi = y, dx = y, dxi = y
        var m = [Float](repeating: 0, count: C), v = m, rm = m, rv = [Float](repeating: 1, count: C), dg = m, db = m, dgi = m, dbi = m
        try x.withUnsafeBufferPointer { xp in try dy.withUnsafeBufferPointer { dp in
            try rm.withUnsafeMutableBufferPointer { rmp in try rv.withUnsafeMutableBufferPointer { rvp in
                let update = RunningUpdate(mean: rmp.baseAddress!, variance: rvp.baseAddress!, batchWeight: 0.1, estimator: .unbiased,
                                           singleValue: .nan)
                try FusedBatchNorm.training(StorageFormat(S.self), x: xp.baseAddress!, y: &y, shape: shape, layout: layout, gamma: g,
                                            beta: b, eps: eps, relu: relu, savedMean: &m, savedVariance: &v, running: update, threads: 1,
                                            isa: isa, testEveryOutput: everyOutput)
            }}
            // Inference with the batch statistics except for channel 0, which gets a NaN variance.
            var vi = v
            vi[0] = .nan
            FusedBatchNorm.inferenceForward(x: xp.baseAddress!, y: &yi, shape: shape, layout: layout, gamma: g, beta: b, mean: m,
                                            variance: vi, eps: eps, relu: relu, isa: isa)
            try y.withUnsafeBufferPointer { yp in
                try FusedBatchNorm.backward(StorageFormat(S.self), x: xp.baseAddress!, dy: dp.baseAddress!, dx: &dx, shape: shape,
                                            layout: layout, gamma: g, eps: eps, statistics: nil,
                                            reluOutput: relu ? UnsafeRawPointer(yp.baseAddress!) : nil, dGamma: &dg, dBeta: &db, threads: 1,
                                            isa: isa, testEveryOutput: everyOutput)
            }
            try m.withUnsafeBufferPointer { mp in try v.withUnsafeBufferPointer { vp in
                try FusedBatchNorm.backward(StorageFormat(S.self), x: xp.baseAddress!, dy: dp.baseAddress!, dx: &dxi, shape: shape,
                                            layout: layout, gamma: g, eps: eps, statistics: (mp.baseAddress!, vp.baseAddress!),
                                            reluOutput: nil, dGamma: &dgi, dBeta: &dbi, threads: 1, isa: isa,
                                            testEveryOutput: everyOutput)
            }}
        }}
        func bits(_ a: [S]) -> [UInt16] {
            a.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        }
        return Outputs(y: bits(y), stats: (m + v + rm + rv).map(\.bitPattern), yi: bits(yi), dx: bits(dx), dxi: bits(dxi),
                       grads: (dg + db + dgi + dbi).map(\.bitPattern))
    }

    static let shapes: [(String, Layout)] = [
        ("5x7x9x11", .nchw), ("3x9x17x1", .nchw), ("2x8x8x4", .nchw), ("2x3x1x1", .nchw), ("2x9x5x5", .nhwc), ("4x37x3x3", .nhwc), ("300x13", .nc),
        ("2x16x3x1", .nhwc),
    ]

    static let higherLevels = KernelISA.available.filter { $0 > .baseline }

    @Test(arguments: higherLevels)
    func everyLevelGivesTheBaselineBits(isa: KernelISA) throws {
        for (text, layout) in Self.shapes {
            let shape = try Shape(parsing: text)
            // ε = 0: the constant channel's 0·∞ makes NaNs (with the sign and payload the
            // hardware gives them) from finite inputs; tiny: subnormal outputs in every lane.
            for (eps, tiny) in [(1e-5, false), (0, false), (1e-5, true)] { for relu in [false, true] {
                let what = "\(text) \(layout) eps \(eps) tiny outputs \(tiny) relu \(relu) at \(isa)"
                #expect(try Self.run(Float.self, shape, layout, relu: relu, isa: isa, eps: eps, tinyOutputs: tiny)
                        == Self.run(Float.self, shape, layout, relu: relu, isa: .baseline, eps: eps, tinyOutputs: tiny), "float32 \(what)")
                #expect(try Self.run(Float16.self, shape, layout, relu: relu, isa: isa, eps: eps, tinyOutputs: tiny)
                        == Self.run(Float16.self, shape, layout, relu: relu, isa: .baseline, eps: eps, tinyOutputs: tiny), "float16 \(what)")
                #expect(try Self.run(BFloat16Bits.self, shape, layout, relu: relu, isa: isa, eps: eps, tinyOutputs: tiny)
                        == Self.run(BFloat16Bits.self, shape, layout, relu: relu, isa: .baseline, eps: eps, tinyOutputs: tiny),
                        "bfloat16 \(what)")
            }}
        }
    }

    /// The data reach the branches they are meant to: NaN and ∞ outputs, exact β for the
    /// constant channel (so equality above is not equality of trivial outputs).
    @Test func adversarialDataReachNonFiniteAndConstantOutputs() throws {
        let shape = try Shape(parsing: "5x7x9x11")
        let out = try Self.run(Float.self, shape, .nchw, relu: false, isa: .selected)
        let y = stride(from: 0, to: out.y.count, by: 2).map { Float(bitPattern: UInt32(out.y[$0]) | UInt32(out.y[$0 + 1]) << 16) }
        #expect(y.contains { $0.isNaN } && y.contains { !$0.isNaN })
        let b = ThreadDeterminismTests.data(7, seed: 24)
        #expect(y[99] == b[1], "the constant channel gives β exactly")
        // Every NaN output is the canonical quiet NaN.
        #expect(y.filter(\.isNaN).allSatisfy { $0.bitPattern == 0x7FC0_0000 })
    }

    /// The tiny-output data reach what they are meant to: many bfloat16 outputs subnormal
    /// (the outputs `vcvtneps2bf16` would flush), in even and odd elements alike.
    @Test func tinyOutputsAreSubnormal() throws {
        for (text, layout) in [("5x7x9x11", Layout.nchw), ("2x16x3x1", .nhwc)] {
            let out = try Self.run(BFloat16Bits.self, try Shape(parsing: text), layout, relu: false, isa: .selected, tinyOutputs: true)
            let subnormal = out.y.map { $0 & 0x7F80 == 0 && $0 & 0x7F != 0 }
            let even = stride(from: 0, to: subnormal.count, by: 2).filter { subnormal[$0] }.count
            let odd = stride(from: 1, to: subnormal.count, by: 2).filter { subnormal[$0] }.count
            #expect(even >= 8 && odd >= 8, "\(text): \(even) even and \(odd) odd subnormal outputs of \(subnormal.count)")
        }
    }

    // MARK: NaN-free outputs

    /// Skipping the NaN test of channels proven NaN-free (``NaNFree``) changes no bit: the
    /// kernels with and without the skip, at every level, storage format and layout, on
    /// the adversarial data (clean channels beside NaN, ±∞, subnormal and overflowing ones),
    /// with ε = 1e-5 and with ε = 0, where the constant channel's scale is ∞ and its
    /// outputs 0·∞ = NaN come from finite inputs: the proof must send it to the test.
    @Test(arguments: KernelISA.available)
    func skippingTheNaNTestOfNaNFreeChannelsChangesNoBit(isa: KernelISA) throws {
        for (text, layout) in Self.shapes {
            let shape = try Shape(parsing: text)
            for eps in [1e-5, 0] { for relu in [false, true] {
                let what = "\(text) \(layout) eps \(eps) relu \(relu) at \(isa)"
                #expect(try Self.run(Float.self, shape, layout, relu: relu, isa: isa, eps: eps)
                        == Self.run(Float.self, shape, layout, relu: relu, isa: isa, eps: eps, everyOutput: true), "float32 \(what)")
                #expect(try Self.run(Float16.self, shape, layout, relu: relu, isa: isa, eps: eps)
                        == Self.run(Float16.self, shape, layout, relu: relu, isa: isa, eps: eps, everyOutput: true), "float16 \(what)")
                #expect(try Self.run(BFloat16Bits.self, shape, layout, relu: relu, isa: isa, eps: eps)
                        == Self.run(BFloat16Bits.self, shape, layout, relu: relu, isa: isa, eps: eps, everyOutput: true),
                        "bfloat16 \(what)")
            }}
        }
    }

    /// With ε = 0 the constant channel's outputs are NaN from finite inputs, and canonical;
    /// the ordinary channels are not NaN (so the comparison above covers both paths).
    @Test func zeroEpsilonGivesCanonicalNaNsFromFiniteInputs() throws {
        let shape = try Shape(parsing: "5x7x9x11")
        let out = try Self.run(Float.self, shape, .nchw, relu: false, isa: .selected, eps: 0)
        let y = stride(from: 0, to: out.y.count, by: 2).map { Float(bitPattern: UInt32(out.y[$0]) | UInt32(out.y[$0 + 1]) << 16) }
        let HW = 99, constant = (0..<5).flatMap { b in (0..<HW).map { (b * 7 + 1) * HW + $0 } }
        #expect(constant.allSatisfy { y[$0].bitPattern == 0x7FC0_0000 }, "0·∞ in the constant channel: canonical NaN")
        let clean = (0..<5).flatMap { b in (0..<HW).map { (b * 7 + 0) * HW + $0 } }
        #expect(clean.allSatisfy { !y[$0].isNaN }, "channel 0 (ordinary data) has no NaN")
    }

    /// The proof accepts finite sums and coefficients and refuses every non-finite witness.
    @Test func theNaNFreeProofRefusesEveryNonFiniteWitness() {
        #expect(NaNFree.affine(sumOfSquares: 12.5, mean: -3, scale: 1e300, shift: 2))
        #expect(NaNFree.gradient(sumOfSquares: 0, sumOfGradients: -7, mean: 0x1p1000, a: 1, b: -1, k: 1e-300))
        for bad in [Double.infinity, -.infinity, .nan] {
            #expect(!NaNFree.affine(sumOfSquares: bad, mean: 0, scale: 1, shift: 0))
            #expect(!NaNFree.affine(sumOfSquares: 1, mean: bad, scale: 1, shift: 0))
            #expect(!NaNFree.affine(sumOfSquares: 1, mean: 0, scale: bad, shift: 0))
            #expect(!NaNFree.affine(sumOfSquares: 1, mean: 0, scale: 1, shift: bad))
            #expect(!NaNFree.gradient(sumOfSquares: bad, sumOfGradients: 0, mean: 0, a: 1, b: 0, k: 1))
            #expect(!NaNFree.gradient(sumOfSquares: 1, sumOfGradients: bad, mean: 0, a: 1, b: 0, k: 1))
            #expect(!NaNFree.gradient(sumOfSquares: 1, sumOfGradients: 0, mean: bad, a: 1, b: 0, k: 1))
            #expect(!NaNFree.gradient(sumOfSquares: 1, sumOfGradients: 0, mean: 0, a: bad, b: 0, k: 1))
            #expect(!NaNFree.gradient(sumOfSquares: 1, sumOfGradients: 0, mean: 0, a: 1, b: bad, k: 1))
            #expect(!NaNFree.gradient(sumOfSquares: 1, sumOfGradients: 0, mean: 0, a: 1, b: 0, k: bad))
        }
        // x − mean could overflow to ∞ (then 0·∞ = NaN) past 2^1000.
        #expect(!NaNFree.affine(sumOfSquares: 1, mean: 0x1p1001, scale: 0, shift: 0))
        #expect(!NaNFree.gradient(sumOfSquares: 1, sumOfGradients: 0, mean: -0x1p1001, a: 1, b: 0, k: 0))
    }

    // MARK: storage conversions

    static func widen<S: StorageElement>(_: S.Type, _ values: [S], isa: KernelISA) -> [UInt32] {
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { Passes(S.self, isa: isa).table.widen($0.baseAddress!, &out, values.count) }
        return out.map(\.bitPattern)
    }

    static func narrow<S: StorageElement>(_: S.Type, _ values: [Float], isa: KernelISA) -> [UInt16] {
        var out = [S](repeating: S.narrow(0), count: values.count)
        out.withUnsafeMutableBufferPointer { Passes(S.self, isa: isa).table.narrow(values, $0.baseAddress!, values.count) }
        return out.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
    }

    /// Floats around every binary16/bfloat16 rounding boundary: for each exponent, the
    /// values just below, at and above each tie, plus specials and random bits.
    static let narrowingInputs: [Float] = {
        var v: [Float] = [0, -0, .infinity, -.infinity, .nan, -.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFA0_1234),
                          65504, 65519.99, 65520, 65536, -65520, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26, .leastNonzeroMagnitude,
                          .greatestFiniteMagnitude]
        for e in 0..<256 {
            for m: UInt32 in [0, 1, 0xFFF, 0x1000, 0x1001, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001, 0x1_8000, 0x7F_E000, 0x7F_F000, 0x7F_FFFF] {
                let bits = UInt32(e) << 23 | m
                v.append(Float(bitPattern: bits)); v.append(Float(bitPattern: bits | 0x8000_0000))
            }
        }
        var s: UInt64 = 7
        for _ in 0..<20_000 { s = s &* 6364136223846793005 &+ 1442695040888963407; v.append(Float(bitPattern: UInt32(truncatingIfNeeded: s >> 29))) }
        return v
    }()

    @Test(arguments: KernelISA.available)
    func float16ConversionsAreExactAndRoundToNearestEven(isa: KernelISA) {
        let all = (0...UInt16.max).map { Float16(bitPattern: $0) }
        let wide = Self.widen(Float16.self, all, isa: isa)
        for (h, w) in zip(all, wide) {
            let f = Float(bitPattern: w)
            if h.isNaN { #expect(f.isNaN && f.sign == h.sign, "NaN \(h.bitPattern)") } else { #expect(f == Float(h), "\(h.bitPattern)") }
        }
        let narrow = Self.narrow(Float16.self, Self.narrowingInputs, isa: isa)
        for (f, h) in zip(Self.narrowingInputs, narrow) {
            let r = Float16(bitPattern: h)
            if f.isNaN { #expect(r.isNaN && r.sign == f.sign) } else { #expect(h == Float16(f).bitPattern, "\(f) (\(f.bitPattern))") }
        }
        #expect(wide == Self.widen(Float16.self, all, isa: .baseline), "widening differs from the baseline level (NaN payloads)")
        #expect(narrow == Self.narrow(Float16.self, Self.narrowingInputs, isa: .baseline), "narrowing differs from the baseline level")
    }

    @Test(arguments: KernelISA.available)
    func bfloat16ConversionsAreExactAndRoundToNearestEven(isa: KernelISA) {
        let all = (0...UInt16.max).map { BFloat16Bits(bits: $0) }
        let wide = Self.widen(BFloat16Bits.self, all, isa: isa)
        #expect(wide == all.map { UInt32($0.bits) << 16 })
        let narrow = Self.narrow(BFloat16Bits.self, Self.narrowingInputs, isa: isa)
        #expect(narrow == Self.narrowingInputs.map { BFloat16.bits($0) })
    }

    // MARK: end to end

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs the `bnspec` built next to this test binary with BNSPEC_CPU = `cpu`.
    static func bnspec(_ arguments: [String], cpu: String) throws -> (status: Int32, out: String, err: String) {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("bnspec").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("bnspec is not built next to the test binary (\(path)); run `swift build` first")
            return (-1, "", "")
        }
        let p = Process(), out = Pipe(), err = Pipe()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.currentDirectoryURL = root
        p.environment = ProcessInfo.processInfo.environment.merging(["BNSPEC_CPU": cpu]) { $1 }
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// `bnspec verify` passes with the portable level forced (as on a CPU without AVX2 or
    /// AVX-512), and every kernel's output digest over the golden suite is the one the
    /// best level gives.
    @Test func verifyPassesAtTheBaselineLevelWithTheSameDigests() throws {
        let args = ["verify", "--golden", Self.root.appendingPathComponent("golden").path, "--digest"]
            + ["fused", "threaded", "fused-float16", "fused-bfloat16"].flatMap { ["--implementation", $0] }
        func digests(_ text: String) -> [String] { text.split(separator: "\n").filter { $0.hasPrefix("  ") && $0.count > 64 }.map(String.init) }
        let base = try Self.bnspec(args, cpu: "baseline"), native = try Self.bnspec(args, cpu: "native")
        #expect(base.status == 0 && native.status == 0, "\(base.err)\(native.err)")
        #expect(digests(base.out).count == 4)
        #expect(digests(base.out) == digests(native.out))
    }

    @Test func unknownLevelIsAOneLineError() throws {
        let r = try Self.bnspec(["verify", "--case", "none"], cpu: "pentium")
        #expect(r.status == 2)  // bad input: the run cannot be completed as asked
        #expect(r.err == "bnspec: error: BNSPEC_CPU=pentium (expected baseline, avx2, avx512 or native)\n")
    }
}
