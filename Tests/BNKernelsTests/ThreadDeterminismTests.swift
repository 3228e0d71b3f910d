import BNCore
import Testing
import BNKernels

/// The fused kernel's results do not depend on the thread count (issue #4, law 14):
/// every output bit is the same for 1, 2 and 3 threads, and across two runs.
@Suite struct ThreadDeterminismTests {
    struct Outputs: Equatable {
        var y: [UInt32], mean: [UInt32], variance: [UInt32], runMean: [UInt32], runVar: [UInt32]
        var yi: [UInt32], dx: [UInt32], dg: [UInt32], db: [UInt32], dxi: [UInt32]
    }

    static func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

    /// Values whose Double sums depend on the summation order: ±1e20 every 37th value
    /// swallows the small values summed after it until the opposite sign cancels it, so
    /// any change of reduction tree shows up in the Float statistics.
    static func cancelling(_ n: Int, seed: UInt64) -> [Float] {
        var v = data(n, seed: seed)
        for i in stride(from: 5, to: n, by: 37) { v[i] = (i / 37) % 2 == 0 ? 1e20 : -1e20 }
        return v
    }

    static func data(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            // Full 24-bit significands over 2⁻¹⁵…2¹⁶: Double sums of such data round, so
            // a change of summation order would show in the bits.
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let significand = Float(Int64(bitPattern: s) >> 40) * 0x1p-23
            return 3 + significand * Float(sign: .plus, exponent: Int(s >> 8 & 31) - 15, significand: 1)
        }
    }

    static func run(_ shape: Shape, _ layout: Layout, threads: Int, relu: Bool, cancel: Bool = false) throws -> Outputs {
        let n = shape.elementCount, C = shape.channels
        let x = cancel ? cancelling(n, seed: 1) : data(n, seed: 1), dy = cancel ? cancelling(n, seed: 2) : data(n, seed: 2)
        let g = data(C, seed: 3), b = data(C, seed: 4)
        var y = [Float](repeating: 0, count: n), yi = y, dx = y, dxi = y
        var m = [Float](repeating: 0, count: C), v = m, rm = m, rv = [Float](repeating: 1, count: C), dg = m, db = m, dg2 = m, db2 = m
        try x.withUnsafeBufferPointer { xp in try dy.withUnsafeBufferPointer { dp in
            try rm.withUnsafeMutableBufferPointer { rmp in try rv.withUnsafeMutableBufferPointer { rvp in
                let update = RunningUpdate(mean: rmp.baseAddress!, variance: rvp.baseAddress!, batchWeight: 0.1, estimator: .unbiased,
                                           singleValue: .error)
                try FusedBatchNorm.trainingForward(x: xp.baseAddress!, y: &y, shape: shape, layout: layout, gamma: g, beta: b, eps: 1e-5,
                                                   relu: relu, savedMean: &m, savedVariance: &v, running: update, threads: threads)
            }}
            FusedBatchNorm.inferenceForward(x: xp.baseAddress!, y: &yi, shape: shape, layout: layout, gamma: g, beta: b, mean: m,
                                            variance: v, eps: 1e-5, relu: relu, threads: threads)
            try y.withUnsafeBufferPointer { yp in
                try FusedBatchNorm.backward(x: xp.baseAddress!, dy: dp.baseAddress!, dx: &dx, shape: shape, layout: layout, gamma: g,
                                            eps: 1e-5, reluOutput: relu ? yp.baseAddress! : nil, dGamma: &dg, dBeta: &db, threads: threads)
            }
            try m.withUnsafeBufferPointer { mp in try v.withUnsafeBufferPointer { vp in
                try FusedBatchNorm.backward(x: xp.baseAddress!, dy: dp.baseAddress!, dx: &dxi, shape: shape, layout: layout, gamma: g,
                                            eps: 1e-5, statistics: (mp.baseAddress!, vp.baseAddress!), dGamma: &dg2, dBeta: &db2,
                                            threads: threads)
            }}
        }}
        return Outputs(y: bits(y), mean: bits(m), variance: bits(v), runMean: bits(rm), runVar: bits(rv), yi: bits(yi),
                       dx: bits(dx), dg: bits(dg + dg2), db: bits(db + db2), dxi: bits(dxi))
    }

    /// Shapes of ≥ 3 × 64 Ki values really run on 3 threads (``usefulThreads`` gives
    /// smaller ones fewer); the small ones check that asking for threads changes nothing.
    @Test(arguments: [("5x7x9x11", Layout.nchw), ("5x7x9x11", .nhwc), ("300x13", .nc), ("2x3x1x1", .nchw), ("1x20x17x3", .nhwc),
                      ("130x9x2x2", .nhwc), ("9x37x29x23", .nchw), ("13x29x27x23", .nhwc), ("7001x29", .nc)])
    func fusedKernelIsBitIdenticalForOneTwoAndThreeThreads(shape: String, layout: Layout) throws {
        let s = try Shape(parsing: shape)
        for relu in [false, true] {
            for cancel in [false, true] {
                let one = try Self.run(s, layout, threads: 1, relu: relu, cancel: cancel)
                let what = "\(shape) \(layout) relu \(relu) cancelling \(cancel)"
                #expect(try Self.run(s, layout, threads: 1, relu: relu, cancel: cancel) == one, "two 1-thread runs differ: \(what)")
                #expect(try Self.run(s, layout, threads: 2, relu: relu, cancel: cancel) == one, "1 vs 2 threads differ: \(what)")
                #expect(try Self.run(s, layout, threads: 3, relu: relu, cancel: cancel) == one, "1 vs 3 threads differ: \(what)")
            }
        }
    }

    @Test func threadedKernelThroughTheVerifyInterfaceMatchesFused() throws {
        let shape = try Shape(parsing: "4x10x6x6")
        let x = Self.data(shape.elementCount, seed: 9).map(Double.init)
        let g = [Double](repeating: 1.5, count: 10), b = [Double](repeating: -0.25, count: 10)
        let rule = try RunningUpdateRule(profile: .pytorch)
        for layout in [Layout.nchw, .nhwc] {
            let a = try OptimizedKernel(.fused).train(x, shape: shape, layout: layout, dtype: .f32, gamma: g, beta: b, eps: 1e-5,
                                                      runningMean: b, runningVariance: g, step: 1, rule: rule)
            let t = try OptimizedKernel(.threaded(2)).train(x, shape: shape, layout: layout, dtype: .f32, gamma: g, beta: b, eps: 1e-5,
                                                            runningMean: b, runningVariance: g, step: 1, rule: rule)
            #expect(a.y == t.y && a.runningMean == t.runningMean && a.runningVariance == t.runningVariance)
        }
    }

    /// The NCHW channel grouping (one group per thread in cache, L2-sized pipelined groups
    /// out of cache, ``ChannelGroups``) never changes a bit: every group size, on 1, 2
    /// and 3 threads, gives the one-thread result.
    @Test func channelGroupingIsBitNeutral() throws {
        let shape = try Shape(parsing: "9x37x29x23"), n = shape.elementCount, C = shape.channels
        #expect(usefulThreads(3, elements: n, items: C) == 3, "the shape must be large enough for 3 threads")
        let x = Self.cancelling(n, seed: 31), dy = Self.data(n, seed: 32), g = Self.data(C, seed: 33), b = Self.data(C, seed: 34)
        func run(groupSize: Int?, threads: Int) throws -> [UInt32] {
            var y = [Float](repeating: 0, count: n), dx = y, m = [Float](repeating: 0, count: C), v = m, dg = m, db = m
            try x.withUnsafeBytes { xp in try dy.withUnsafeBytes { dp in try y.withUnsafeMutableBytes { yp in try dx.withUnsafeMutableBytes { op in
                let f = StorageFormat(Float.self)
                try FusedBatchNorm.training(f, x: xp.baseAddress!, y: yp.baseAddress!, shape: shape, layout: .nchw, gamma: g, beta: b,
                                            eps: 1e-5, relu: false, savedMean: &m, savedVariance: &v, running: nil, threads: threads,
                                            isa: .selected, groupSize: groupSize)
                try FusedBatchNorm.backward(f, x: xp.baseAddress!, dy: dp.baseAddress!, dx: op.baseAddress!, shape: shape, layout: .nchw,
                                            gamma: g, eps: 1e-5, statistics: nil, reluOutput: nil, dGamma: &dg, dBeta: &db,
                                            threads: threads, isa: .selected, groupSize: groupSize)
            }}}}
            return Self.bits(y + m + v + dx + dg + db)
        }
        let reference = try run(groupSize: nil, threads: 1)
        for size in [1, 2, 5, 36, 37] {
            for threads in [1, 2, 3] {
                #expect(try run(groupSize: size, threads: threads) == reference, "groups of \(size) on \(threads) threads")
            }
        }
    }
}
