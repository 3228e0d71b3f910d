import BNCore

/// A kernel written as per-channel loops over raw buffers in a compute type T: Float for
/// float32, float16 and bfloat16 storage, Double for float64. The protocol supplies the
/// ``BatchNormKernel`` entry points — arrays converted to T (exactly: they hold values of the
/// storage type), the loops called, results widened back — so a kernel states only its loops.
/// ``ScalarKernel`` and the calibration kernels (BNCalibration) are loop kernels.
public protocol LoopKernel: BatchNormKernel {
    /// Training forward; updates the running statistics `rm`/`rv` in place and returns (μ_B, σ²_B).
    func trainingForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
                                                 _ layout: Layout, _ gamma: [T], _ beta: [T], _ eps: T,
                                                 _ rm: inout [T], _ rv: inout [T], _ step: Int,
                                                 _ rule: RunningUpdateRule) throws -> ([T], [T])
    /// Inference forward with the given statistics.
    func inferenceForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
                                                  _ layout: Layout, _ gamma: [T], _ beta: [T], _ eps: T, _ mean: [T], _ variance: [T])
    /// Backward (training mode when `given` is nil, else with the given (mean, variance)); returns (dγ, dβ).
    func backward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ dy: UnsafeBufferPointer<T>, _ dx: UnsafeMutableBufferPointer<T>,
                                          _ shape: Shape, _ layout: Layout, _ gamma: [T], _ eps: T,
                                          _ given: ([T], [T])?) -> ([T], [T])
}

extension LoopKernel {
    public var dtypes: Set<DType> { Set(DType.allCases) }

    @inlinable
    public func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        dtype == .f64
            ? try trainT(Double.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
            : try trainT(Float.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
    }
    @inlinable
    public func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      mean: [Double], variance: [Double]) throws -> [Double] {
        dtype == .f64 ? inferT(Double.self, x, shape, layout, gamma, beta, eps, mean, variance)
                      : inferT(Float.self, x, shape, layout, gamma, beta, eps, mean, variance)
    }
    @inlinable
    public func backwardTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double) throws -> GradientOutput {
        dtype == .f64 ? backwardT(Double.self, x, dy, shape, layout, gamma, eps, nil)
                      : backwardT(Float.self, x, dy, shape, layout, gamma, eps, nil)
    }
    @inlinable
    public func backwardInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double, mean: [Double], variance: [Double]) throws -> GradientOutput {
        dtype == .f64 ? backwardT(Double.self, x, dy, shape, layout, gamma, eps, (mean, variance))
                      : backwardT(Float.self, x, dy, shape, layout, gamma, eps, (mean, variance))
    }

    /// Calls body(i) for every linear index of channel c, in storage order.
    @inlinable @inline(__always)
    public func forEach(_ c: Int, _ shape: Shape, _ layout: Layout, _ body: (Int) -> Void) {
        for seg in layout.segments(channel: c, shape: shape) {
            var i = seg.offset
            for _ in 0..<seg.count { body(i); i += seg.stride }
        }
    }

    @inlinable
    func trainT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ shape: Shape, _ layout: Layout, _ gd: [Double], _ bd: [Double],
                                        _ epsd: Double, _ rmd: [Double], _ rvd: [Double], _ step: Int,
                                        _ rule: RunningUpdateRule) throws -> TrainingOutput {
        let x = xd.map { T($0) }
        var y = [T](repeating: 0, count: x.count)
        var rm = rmd.map { T($0) }, rv = rvd.map { T($0) }
        let (bm, bv) = try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { yp in
            try trainingForward(xp, yp, shape, layout, gd.map { T($0) }, bd.map { T($0) }, T(epsd), &rm, &rv, step, rule)
        }}
        return TrainingOutput(y: y.map(Double.init), batchMean: bm.map(Double.init), batchVariance: bv.map(Double.init),
                              runningMean: rm.map(Double.init), runningVariance: rv.map(Double.init))
    }

    @inlinable
    func inferT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ shape: Shape, _ layout: Layout, _ gd: [Double], _ bd: [Double],
                                        _ epsd: Double, _ md: [Double], _ vd: [Double]) -> [Double] {
        let x = xd.map { T($0) }
        var y = [T](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            inferenceForward(xp, yp, shape, layout, gd.map { T($0) }, bd.map { T($0) }, T(epsd), md.map { T($0) }, vd.map { T($0) })
        }}
        return y.map(Double.init)
    }

    @inlinable
    func backwardT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ dyd: [Double], _ shape: Shape, _ layout: Layout,
                                           _ gd: [Double], _ epsd: Double, _ given: ([Double], [Double])?) -> GradientOutput {
        let x = xd.map { T($0) }, dy = dyd.map { T($0) }
        var dx = [T](repeating: 0, count: x.count)
        let (dg, db) = x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in dx.withUnsafeMutableBufferPointer { op in
            backward(xp, dp, op, shape, layout, gd.map { T($0) }, T(epsd), given.map { ($0.0.map { T($0) }, $0.1.map { T($0) }) })
        }}}
        return GradientOutput(dx: dx.map(Double.init), dGamma: dg.map(Double.init), dBeta: db.map(Double.init))
    }
}
