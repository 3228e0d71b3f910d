import BNCore
import Testing
import BNKernels

/// Fused BN+ReLU, the streaming store path and the storage formats.
@Suite struct FusedKernelTests {
    static let shape = try! Shape(parsing: "3x5x7x4")

    func forward(_ x: [Float], relu: Bool, layout: Layout) throws -> [Float] {
        let C = Self.shape.channels
        var y = [Float](repeating: 0, count: x.count), m = [Float](repeating: 0, count: C), v = m
        let g: [Float] = [1, -2, 0.5, 3, 1], b: [Float] = [0, 0.5, -0.5, 0.1, 2]
        try FusedBatchNorm.trainingForward(x: x, y: &y, shape: Self.shape, layout: layout, gamma: g, beta: b, eps: 1e-3, relu: relu,
                                           savedMean: &m, savedVariance: &v)
        return y
    }

    @Test(arguments: [Layout.nchw, .nhwc])
    func fusedReLUForwardIsReLUOfBatchNorm(layout: Layout) throws {
        let x = ThreadDeterminismTests.data(Self.shape.elementCount, seed: 5)
        let plain = try forward(x, relu: false, layout: layout), fused = try forward(x, relu: true, layout: layout)
        #expect(fused == plain.map { max($0, 0) })
        #expect(plain.contains { $0 < 0 }, "the data must exercise the clamp")
    }

    @Test(arguments: [Layout.nchw, .nhwc])
    func fusedReLUBackwardIsBackwardOfMaskedGradient(layout: Layout) throws {
        let n = Self.shape.elementCount, C = Self.shape.channels
        let x = ThreadDeterminismTests.data(n, seed: 6), dy = ThreadDeterminismTests.data(n, seed: 7)
        let y = try forward(x, relu: true, layout: layout)
        let g: [Float] = [1, -2, 0.5, 3, 1]
        var dx1 = [Float](repeating: 0, count: n), dx2 = dx1
        var dg1 = [Float](repeating: 0, count: C), db1 = dg1, dg2 = dg1, db2 = dg1
        try y.withUnsafeBufferPointer { yp in
            try FusedBatchNorm.backward(x: x, dy: dy, dx: &dx1, shape: Self.shape, layout: layout, gamma: g, eps: 1e-3,
                                        reluOutput: yp.baseAddress!, dGamma: &dg1, dBeta: &db1)
        }
        let masked = zip(dy, y).map { $1 > 0 ? $0 : 0 }
        try FusedBatchNorm.backward(x: x, dy: masked, dx: &dx2, shape: Self.shape, layout: layout, gamma: g, eps: 1e-3,
                                    dGamma: &dg2, dBeta: &db2)
        #expect(dx1 == dx2 && dg1 == dg2 && db1 == db2)
    }

    /// Non-temporal stores (outputs > 32 MiB) write exactly what plain stores write, at
    /// every alignment of the output, in every pass that streams, at every level.
    @Test(arguments: KernelISA.available)
    func streamingStoresWriteTheSameValues(isa: KernelISA) {
        let x = ThreadDeterminismTests.data(1003, seed: 8), dy = ThreadDeterminismTests.data(1003, seed: 9)
        let p = Passes(Float.self, isa: isa)
        let m = [3.1], k = [0.7], b = [-0.2], kk = [0.01]
        for offset in 0..<8 {
            var out = [[Float]](repeating: [Float](repeating: 0, count: 1011), count: 6)
            let nanFree: [UInt8]? = offset % 2 == 1 ? [1] : nil  // finite data: both forms of the output
            for stream: Int32 in [0, 1] {
                out[Int(stream)].withUnsafeMutableBufferPointer { p.table.runs_apply(x, $0.baseAddress! + offset, 1, 1003, 0, 1, m, k, b, 0, stream) }
                out[2 + Int(stream)].withUnsafeMutableBufferPointer {
                    p.table.nchw_backward_step(x, dy, nil, $0.baseAddress! + offset, 1, 1, 1003, 0, 1, m, k, b, kk, stream, nanFree, 0, 0,
                                               nil, nil, nil)
                }
                // NHWC: 17 rows of 59 channels (unaligned rows).
                out[4 + Int(stream)].withUnsafeMutableBufferPointer {
                    let c = [Double](repeating: 3.1, count: 59), s = [Double](repeating: 0.7, count: 59)
                    p.table.rows_apply(x, $0.baseAddress! + offset, 0, 17, 59, c, s, s, 1, stream, nanFree == nil ? 0 : 1)
                }
            }
            #expect(out[0] == out[1] && out[2] == out[3] && out[4] == out[5], "offset \(offset)")
            #expect(out[0][offset + 5] != 0 && out[2][offset + 5] != 0, "the passes must have written")
        }
    }

    @Test func bfloat16VectorStoreRoundsLikeTheScalarRule() {
        var values: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                               Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_7FFF),
                               Float(bitPattern: 0x7F7F_FFFF), Float(bitPattern: 0x0000_8000)]
        values += ThreadDeterminismTests.data(1001, seed: 11).map { $0 * 1e-3 }
        while values.count % 8 != 0 { values.append(0.5) }
        var out = [BFloat16Bits](repeating: BFloat16Bits(bits: 0), count: values.count)
        for i in stride(from: 0, to: values.count, by: 8) {
            let v = SIMD8<Float>(values[i..<(i + 8)])
            out.withUnsafeMutableBufferPointer { BFloat16Bits.store8(v, $0.baseAddress! + i) }
        }
        for (v, o) in zip(values, out) { #expect(o.bits == BFloat16.bits(v), "\(v)") }
        // Loads widen exactly.
        out.withUnsafeBufferPointer { p in
            for i in stride(from: 0, to: out.count, by: 8) {
                let w = BFloat16Bits.load8(p.baseAddress! + i)
                for j in 0..<8 where !w[j].isNaN { #expect(w[j] == BFloat16.float(out[i + j].bits)) }
            }
        }
    }

    @Test func zeroElementsAndSingleValuePolicyAreErrors() throws {
        var y = [Float](repeating: 0, count: 3), m = y, v = y, rm = y, rv = y
        let g: [Float] = [1, 1, 1]
        let one = try Shape(parsing: "1x3x1x1")
        try rm.withUnsafeMutableBufferPointer { rmp in try rv.withUnsafeMutableBufferPointer { rvp in
            let update = RunningUpdate(mean: rmp.baseAddress!, variance: rvp.baseAddress!, batchWeight: 0.1, estimator: .unbiased,
                                       singleValue: .error)
            #expect(throws: BNError.self) {
                try FusedBatchNorm.trainingForward(x: [1, 2, 3], y: &y, shape: one, layout: .nchw, gamma: g, beta: g, eps: 1e-5,
                                                   savedMean: &m, savedVariance: &v, running: update)
            }
        }}
    }
}
