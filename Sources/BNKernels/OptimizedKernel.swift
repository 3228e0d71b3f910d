import BNCore
import Foundation

/// The optimized Float32 kernels as `bnspec verify` runs them: each converts the
/// case's Double arrays to its storage type, runs the kernel on raw buffers, and
/// widens the results back (conversion is outside what `bnspec bench` times).
///
/// - `simd`: ``SIMDBatchNorm`` (explicit SIMD, Float accumulation), 1 thread.
/// - `fused`: ``FusedBatchNorm`` on 1 thread.
/// - `threaded`: ``FusedBatchNorm`` on `threads` threads (default: all cores).
/// - `fused-float16`, `fused-bfloat16`: ``FusedBatchNorm`` with Float16 / bfloat16
///   storage for x, y, dy, dx (Float32 parameters and statistics).
///
/// Float32-storage kernels also run float16 and bfloat16 cases (those inputs are exact
/// in Float32; outputs stay Float32, within the storage tolerance). Float64 cases are
/// not theirs and are skipped.
public struct OptimizedKernel: BatchNormKernel {
    public enum Variant: Sendable, Equatable {
        case simd, fused, threaded(Int), fusedFloat16, fusedBFloat16
    }
    public let variant: Variant
    /// Instruction-set level of the fused kernels' passes (the same bits at every level).
    public let isa: KernelISA
    public init(_ variant: Variant, isa: KernelISA = .selected) { self.variant = variant; self.isa = isa }

    public static var defaultThreads: Int { max(2, ProcessInfo.processInfo.activeProcessorCount) }

    public var name: String {
        switch variant {
        case .simd: "simd"
        case .fused: "fused"
        case .threaded: "threaded"
        case .fusedFloat16: "fused-float16"
        case .fusedBFloat16: "fused-bfloat16"
        }
    }
    public var role: KernelRole { .implementation }
    public var dtypes: Set<DType> {
        switch variant {
        case .fusedFloat16: [.f16]
        case .fusedBFloat16: [.bf16]
        default: [.f32, .f16, .bf16]
        }
    }
    var threads: Int { if case .threaded(let t) = variant { t } else { 1 } }

    // MARK: BatchNormKernel

    public func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        switch variant {
        case .simd:
            return try simdTrain(x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
        case .fusedFloat16:
            return try fusedTrain(Float16.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
        case .fusedBFloat16:
            return try fusedTrain(BFloat16Bits.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
        default:
            return try fusedTrain(Float.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
        }
    }

    public func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      mean: [Double], variance: [Double]) throws -> [Double] {
        switch variant {
        case .simd:
            let xs = x.map { Float($0) }
            var y = [Float](repeating: 0, count: x.count)
            xs.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                SIMDBatchNorm.inferenceForward(x: xp.baseAddress!, y: yp.baseAddress!, shape: shape, layout: layout,
                                               gamma: floats(gamma), beta: floats(beta), mean: floats(mean),
                                               variance: floats(variance), eps: Float(eps))
            }}
            return y.map(Double.init)
        case .fusedFloat16: return fusedInfer(Float16.self, x, shape, layout, gamma, beta, eps, mean, variance)
        case .fusedBFloat16: return fusedInfer(BFloat16Bits.self, x, shape, layout, gamma, beta, eps, mean, variance)
        default: return fusedInfer(Float.self, x, shape, layout, gamma, beta, eps, mean, variance)
        }
    }

    public func backwardTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double) throws -> GradientOutput {
        try backward(x, dy, shape, layout, gamma, eps, nil)
    }

    public func backwardInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double, mean: [Double], variance: [Double]) throws -> GradientOutput {
        try backward(x, dy, shape, layout, gamma, eps, (mean, variance))
    }

    // MARK: conversions around the raw-buffer kernels

    func floats(_ a: [Double]) -> [Float] { a.map { Float($0) } }

    func backward(_ x: [Double], _ dy: [Double], _ shape: Shape, _ layout: Layout, _ gamma: [Double], _ eps: Double,
                  _ stats: ([Double], [Double])?) throws -> GradientOutput {
        switch variant {
        case .simd:
            let xs = floats(x), dys = floats(dy)
            var dx = [Float](repeating: 0, count: x.count)
            let (dg, db) = xs.withUnsafeBufferPointer { xp in dys.withUnsafeBufferPointer { dp in dx.withUnsafeMutableBufferPointer { op in
                SIMDBatchNorm.backward(x: xp.baseAddress!, dy: dp.baseAddress!, dx: op.baseAddress!, shape: shape, layout: layout,
                                       gamma: floats(gamma), eps: Float(eps), statistics: stats.map { (floats($0.0), floats($0.1)) })
            }}}
            return GradientOutput(dx: dx.map(Double.init), dGamma: dg.map(Double.init), dBeta: db.map(Double.init))
        case .fusedFloat16: return try fusedBackward(Float16.self, x, dy, shape, layout, gamma, eps, stats)
        case .fusedBFloat16: return try fusedBackward(BFloat16Bits.self, x, dy, shape, layout, gamma, eps, stats)
        default: return try fusedBackward(Float.self, x, dy, shape, layout, gamma, eps, stats)
        }
    }

    func simdTrain(_ x: [Double], _ shape: Shape, _ layout: Layout, _ gamma: [Double], _ beta: [Double], _ eps: Double,
                   _ rm: [Double], _ rv: [Double], _ step: Int, _ rule: RunningUpdateRule) throws -> TrainingOutput {
        let n = shape.perChannelCount
        if n == 1, rule.estimator == .unbiased, rule.singleValue == .error { throw BNError.singleValuePerChannel(profile: "kernel") }
        let xs = floats(x)
        var y = [Float](repeating: 0, count: x.count)
        let (mean, v, m2) = xs.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            SIMDBatchNorm.trainingForward(x: xp.baseAddress!, y: yp.baseAddress!, shape: shape, layout: layout,
                                          gamma: floats(gamma), beta: floats(beta), eps: Float(eps))
        }}
        let w = Float(rule.batchWeight(step: step))
        var newMean = [Double](), newVar = [Double]()
        for c in 0..<shape.channels {
            let vr: Float = rule.estimator == .biased ? v[c] : n > 1 ? m2[c] / Float(n - 1) : rule.singleValue == .nan ? .nan : v[c]
            newMean.append(Double((1 - w) * Float(rm[c]) + w * mean[c]))
            newVar.append(Double((1 - w) * Float(rv[c]) + w * vr))
        }
        return TrainingOutput(y: y.map(Double.init), batchMean: mean.map(Double.init), batchVariance: v.map(Double.init),
                              runningMean: newMean, runningVariance: newVar)
    }

    func fusedTrain<S: StorageElement>(_: S.Type, _ x: [Double], _ shape: Shape, _ layout: Layout, _ gamma: [Double],
                                       _ beta: [Double], _ eps: Double, _ rm: [Double], _ rv: [Double], _ step: Int,
                                       _ rule: RunningUpdateRule) throws -> TrainingOutput {
        let C = shape.channels
        let xs = x.map { S.narrow(Float($0)) }
        var y = [S](repeating: S.narrow(0), count: x.count)
        var mean = [Float](repeating: 0, count: C), variance = [Float](repeating: 0, count: C)
        var runMean = floats(rm), runVar = floats(rv)
        let g = floats(gamma), b = floats(beta)
        try xs.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { yp in
            try mean.withUnsafeMutableBufferPointer { mp in try variance.withUnsafeMutableBufferPointer { vp in
                try runMean.withUnsafeMutableBufferPointer { rmp in try runVar.withUnsafeMutableBufferPointer { rvp in
                    try g.withUnsafeBufferPointer { gp in try b.withUnsafeBufferPointer { bp in
                        let update = RunningUpdate(mean: rmp.baseAddress!, variance: rvp.baseAddress!,
                                                   batchWeight: rule.batchWeight(step: step), estimator: rule.estimator,
                                                   singleValue: rule.singleValue)
                        try FusedBatchNorm.trainingForward(x: xp.baseAddress!, y: yp.baseAddress!, shape: shape, layout: layout,
                                                           gamma: gp.baseAddress!, beta: bp.baseAddress!, eps: eps,
                                                           savedMean: mp.baseAddress!, savedVariance: vp.baseAddress!,
                                                           running: update, threads: threads, isa: isa)
                    }}
                }}
            }}
        }}
        return TrainingOutput(y: y.map { Double(S.widen($0)) }, batchMean: mean.map(Double.init),
                              batchVariance: variance.map(Double.init), runningMean: runMean.map(Double.init),
                              runningVariance: runVar.map(Double.init))
    }

    func fusedInfer<S: StorageElement>(_: S.Type, _ x: [Double], _ shape: Shape, _ layout: Layout, _ gamma: [Double],
                                       _ beta: [Double], _ eps: Double, _ mean: [Double], _ variance: [Double]) -> [Double] {
        let xs = x.map { S.narrow(Float($0)) }
        var y = [S](repeating: S.narrow(0), count: x.count)
        let g = floats(gamma), b = floats(beta), m = floats(mean), v = floats(variance)
        xs.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            g.withUnsafeBufferPointer { gp in b.withUnsafeBufferPointer { bp in m.withUnsafeBufferPointer { mp in v.withUnsafeBufferPointer { vp in
                FusedBatchNorm.inferenceForward(x: xp.baseAddress!, y: yp.baseAddress!, shape: shape, layout: layout,
                                                gamma: gp.baseAddress!, beta: bp.baseAddress!, mean: mp.baseAddress!,
                                                variance: vp.baseAddress!, eps: eps, threads: threads, isa: isa)
            }}}}
        }}
        return y.map { Double(S.widen($0)) }
    }

    func fusedBackward<S: StorageElement>(_: S.Type, _ x: [Double], _ dy: [Double], _ shape: Shape, _ layout: Layout,
                                          _ gamma: [Double], _ eps: Double, _ stats: ([Double], [Double])?) throws -> GradientOutput {
        let C = shape.channels
        let xs = x.map { S.narrow(Float($0)) }, dys = dy.map { S.narrow(Float($0)) }
        var dx = [S](repeating: S.narrow(0), count: x.count)
        var dg = [Float](repeating: 0, count: C), db = [Float](repeating: 0, count: C)
        let g = floats(gamma), m = floats(stats?.0 ?? []), v = floats(stats?.1 ?? [])
        try xs.withUnsafeBufferPointer { xp in try dys.withUnsafeBufferPointer { dp in try dx.withUnsafeMutableBufferPointer { op in
            try g.withUnsafeBufferPointer { gp in try m.withUnsafeBufferPointer { mp in try v.withUnsafeBufferPointer { vp in
                try dg.withUnsafeMutableBufferPointer { dgp in try db.withUnsafeMutableBufferPointer { dbp in
                    try FusedBatchNorm.backward(x: xp.baseAddress!, dy: dp.baseAddress!, dx: op.baseAddress!, shape: shape,
                                                layout: layout, gamma: gp.baseAddress!, eps: eps,
                                                statistics: stats == nil ? nil : (mp.baseAddress!, vp.baseAddress!),
                                                dGamma: dgp.baseAddress!, dBeta: dbp.baseAddress!, threads: threads, isa: isa)
                }}
            }}}
        }}}
        return GradientOutput(dx: dx.map { Double(S.widen($0)) }, dGamma: dg.map(Double.init), dBeta: db.map(Double.init))
    }
}

