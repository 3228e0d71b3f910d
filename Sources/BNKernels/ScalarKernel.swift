import BNCore

/// The straightforward BN loops anyone would write: two passes per channel
/// (Σx, then Σ(x − μ)²), accumulating in the compute type T (Float for float32,
/// float16 and bfloat16 storage; Double for float64), memory walked in storage order.
///
/// It is BNSpec's baseline kernel and, with ``Mutation/none``, the honest
/// calibration kernel of the tolerance model (spec/SPEC.md §5): it must pass every
/// golden case. Each other ``Mutation`` is one classic BN bug; the golden suite must
/// catch every one of them.
public struct ScalarKernel: BatchNormKernel {
    public enum Mutation: String, CaseIterable, Sendable {
        case none
        /// Honest: inference in folded form y = x·s + (β − μ·s), s = γ/sqrt(var + eps).
        case foldedInference = "folded-inference"
        /// var = E[x²] − E[x]², one pass in the compute type.
        case onePassVariance = "one-pass-variance"
        /// y = γ·(x − μ)/(sqrt(var) + eps) + β.
        case epsOutsideSqrt = "eps-outside-sqrt"
        /// Normalises with Σ(x − μ)²/(n − 1).
        case unbiasedNormalization = "unbiased-normalization"
        /// Applies the other framework family's momentum convention.
        case momentumSwapped = "momentum-swapped"
        /// Feeds the running variance with the other estimator than the profile's.
        case wrongRunningEstimator = "wrong-running-estimator"
        /// Returns the running statistics it was given.
        case runningNotUpdated = "running-not-updated"
        /// Statistics per (sample, channel) over the spatial positions only.
        case perSampleStatistics = "per-sample-statistics"
        /// Uses β as the scale and γ as the shift.
        case gammaBetaSwapped = "gamma-beta-swapped"
        /// Channels-last indexing off by one: channel c is normalised with the statistics
        /// and parameters of channel c + 1 (mod C). NHWC/NC only.
        case channelsLastOffByOne = "nhwc-off-by-one"
        /// Training backward without the −mean(dy) term.
        case backwardMissingMeanTerm = "backward-missing-mean-term"
        /// Training backward without the −x̂·mean(dy·x̂) term.
        case backwardMissingXhatTerm = "backward-missing-xhat-term"
        /// Inference normalises with the batch's own statistics.
        case inferenceUsesBatchStatistics = "inference-uses-batch-statistics"
        /// Accumulates Σx in Float16 (for float16 storage).
        case fp16Accumulation = "fp16-accumulation"
        /// Turns NaN outputs into 0.
        case nanToZero = "nan-to-zero"
    }

    public let mutation: Mutation
    public init(_ mutation: Mutation = .none) { self.mutation = mutation }

    public var name: String { mutation == .none ? "scalar" : "calibration/\(mutation.rawValue)" }
    public var role: KernelRole {
        switch mutation {
        case .none: .implementation
        case .foldedInference: .honestCalibration
        default: .mutant(mutation.rawValue)
        }
    }
    public var dtypes: Set<DType> { Set(DType.allCases) }

    // MARK: dispatch on the compute type

    public func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        dtype == .f64
            ? try trainT(Double.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
            : try trainT(Float.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
    }
    public func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      mean: [Double], variance: [Double]) throws -> [Double] {
        dtype == .f64 ? inferT(Double.self, x, shape, layout, gamma, beta, eps, mean, variance)
                      : inferT(Float.self, x, shape, layout, gamma, beta, eps, mean, variance)
    }
    public func backwardTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double) throws -> GradientOutput {
        dtype == .f64 ? backwardT(Double.self, x, dy, shape, layout, gamma, eps, nil)
                      : backwardT(Float.self, x, dy, shape, layout, gamma, eps, nil)
    }
    public func backwardInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double, mean: [Double], variance: [Double]) throws -> GradientOutput {
        dtype == .f64 ? backwardT(Double.self, x, dy, shape, layout, gamma, eps, (mean, variance))
                      : backwardT(Float.self, x, dy, shape, layout, gamma, eps, (mean, variance))
    }

    // MARK: generic loops

    /// Calls body(i) for every linear index of channel c, in storage order.
    @inline(__always)
    func forEach(_ c: Int, _ shape: Shape, _ layout: Layout, _ body: (Int) -> Void) {
        for seg in layout.segments(channel: c, shape: shape) {
            var i = seg.offset
            for _ in 0..<seg.count { body(i); i += seg.stride }
        }
    }

    /// (mean, Σ(x − mean)²) in T.
    func stats<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ c: Int, _ shape: Shape, _ layout: Layout) -> (T, T) {
        let n = T(shape.perChannelCount)
        if mutation == .onePassVariance {
            var s: T = 0, s2: T = 0
            forEach(c, shape, layout) { i in s += x[i]; s2 += x[i] * x[i] }
            let m = s / n
            return (m, (s2 / n - m * m) * n)
        }
        var s: T = 0
        if mutation == .fp16Accumulation && T.self == Float.self {
            var h: Float16 = 0
            forEach(c, shape, layout) { h += Float16(Float(x[$0])) }
            s = T(Float(h))
        } else {
            forEach(c, shape, layout) { s += x[$0] }
        }
        let m = s / n
        var ss: T = 0
        forEach(c, shape, layout) { let d = x[$0] - m; ss += d * d }
        return (m, ss)
    }

    func invStd<T: BinaryFloatingPoint>(_ v: T, _ eps: T) -> T {
        mutation == .epsOutsideSqrt ? 1 / (v.squareRoot() + eps) : 1 / (v + eps).squareRoot()
    }

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

    /// Training forward on raw buffers; updates `rm`/`rv` in place and returns (μ_B, σ²_B).
    func trainingForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
                                                 _ layout: Layout, _ gamma: [T], _ beta: [T], _ eps: T,
                                                 _ rm: inout [T], _ rv: inout [T], _ step: Int,
                                                 _ rule: RunningUpdateRule) throws -> ([T], [T]) {
        let n = shape.perChannelCount
        var bm = [T](), bv = [T]()
        var weighting = rule.weighting
        if mutation == .momentumSwapped { weighting = weighting == .batch ? .running : .batch }
        var estimator = rule.estimator
        if mutation == .wrongRunningEstimator { estimator = estimator == .biased ? .unbiased : .biased }
        let w: T = rule.momentum.map { T(weighting == .batch ? $0 : 1 - $0) } ?? 1 / T(step)
        let C = shape.channels
        let shifted = mutation == .channelsLastOffByOne && layout != .nchw
        var statsOf = [(T, T)]()
        for c in 0..<C { statsOf.append(stats(x, c, shape, layout)) }
        for c in 0..<C {
            let (m, ss) = statsOf[c]
            let v = ss / T(n)
            let vNorm = mutation == .unbiasedNormalization && n > 1 ? ss / T(n - 1) : v
            let src = shifted ? (c + 1) % C : c
            let (ms, sss) = statsOf[src]
            let r = invStd(shifted ? sss / T(n) : vNorm, eps)
            let g = mutation == .gammaBetaSwapped ? beta[src] : gamma[src], b = mutation == .gammaBetaSwapped ? gamma[src] : beta[src]
            if mutation == .perSampleStatistics {
                perSample(x, c, shape, layout) { idx, pm, pv in
                    let pr = invStd(pv, eps)
                    for i in idx { y[i] = g * (x[i] - pm) * pr + b }
                }
            } else {
                let mm = shifted ? ms : m
                forEach(c, shape, layout) { i in y[i] = g * (x[i] - mm) * r + b }
            }
            if mutation == .nanToZero { forEach(c, shape, layout) { i in if y[i].isNaN { y[i] = 0 } } }
            let vRun: T
            if estimator == .unbiased {
                if n > 1 { vRun = ss / T(n - 1) } else {
                    switch rule.singleValue {
                    case .error: throw BNError.singleValuePerChannel(profile: "kernel")
                    case .beta: vRun = v
                    case .nan: vRun = .nan
                    }
                }
            } else { vRun = v }
            bm.append(m); bv.append(v)
            if mutation != .runningNotUpdated {
                rm[c] = (1 - w) * rm[c] + w * m
                rv[c] = (1 - w) * rv[c] + w * vRun
            }
        }
        return (bm, bv)
    }

    func inferT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ shape: Shape, _ layout: Layout, _ gd: [Double], _ bd: [Double],
                                        _ epsd: Double, _ md: [Double], _ vd: [Double]) -> [Double] {
        let x = xd.map { T($0) }
        var y = [T](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            inferenceForward(xp, yp, shape, layout, gd.map { T($0) }, bd.map { T($0) }, T(epsd), md.map { T($0) }, vd.map { T($0) })
        }}
        return y.map(Double.init)
    }

    func inferenceForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
                                                  _ layout: Layout, _ gamma: [T], _ beta: [T], _ eps: T, _ mean: [T], _ variance: [T]) {
        let C = shape.channels
        let shifted = mutation == .channelsLastOffByOne && layout != .nchw
        for c in 0..<C {
            let src = shifted ? (c + 1) % C : c
            var m = mean[src], r = invStd(variance[src], eps)
            let g = mutation == .gammaBetaSwapped ? beta[src] : gamma[src], b = mutation == .gammaBetaSwapped ? gamma[src] : beta[src]
            if mutation == .inferenceUsesBatchStatistics {
                let (bm, ss) = stats(x, c, shape, layout)
                m = bm; r = invStd(ss / T(shape.perChannelCount), eps)
            }
            if mutation == .foldedInference {
                let s = g * r, shift = b - m * s
                forEach(c, shape, layout) { i in y[i] = x[i] * s + shift }
            } else {
                forEach(c, shape, layout) { i in y[i] = g * (x[i] - m) * r + b }
            }
            if mutation == .nanToZero { forEach(c, shape, layout) { i in if y[i].isNaN { y[i] = 0 } } }
        }
    }

    /// Calls body(indices, mean, biased variance) for each sample's part of channel c.
    func perSample<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ c: Int, _ shape: Shape, _ layout: Layout,
                                           _ body: ([Int], T, T) -> Void) {
        for b in 0..<shape.batch {
            let idx = (0..<shape.spatialSize).map { layout.index(n: b, c: c, s: $0, shape: shape) }
            let m = idx.reduce(T(0)) { $0 + x[$1] } / T(idx.count)
            let v = idx.reduce(T(0)) { $0 + (x[$1] - m) * (x[$1] - m) } / T(idx.count)
            body(idx, m, v)
        }
    }

    func backwardT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ dyd: [Double], _ shape: Shape, _ layout: Layout,
                                           _ gd: [Double], _ epsd: Double, _ given: ([Double], [Double])?) -> GradientOutput {
        let x = xd.map { T($0) }, dy = dyd.map { T($0) }
        var dx = [T](repeating: 0, count: x.count)
        let (dg, db) = x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in dx.withUnsafeMutableBufferPointer { op in
            backward(xp, dp, op, shape, layout, gd.map { T($0) }, T(epsd), given.map { ($0.0.map { T($0) }, $0.1.map { T($0) }) })
        }}}
        return GradientOutput(dx: dx.map(Double.init), dGamma: dg.map(Double.init), dBeta: db.map(Double.init))
    }

    /// Backward on raw buffers (training mode when `given` is nil); returns (dγ, dβ).
    func backward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ dy: UnsafeBufferPointer<T>, _ dx: UnsafeMutableBufferPointer<T>,
                                          _ shape: Shape, _ layout: Layout, _ gamma: [T], _ eps: T,
                                          _ given: ([T], [T])?) -> ([T], [T]) {
        let n = T(shape.perChannelCount)
        var dg = [T](), db = [T]()
        for c in 0..<shape.channels {
            let m: T, r: T
            if let (gm, gv) = given { m = gm[c]; r = invStd(gv[c], eps) } else {
                let (mm, ss) = stats(x, c, shape, layout)
                m = mm; r = invStd(ss / n, eps)
            }
            var sdy: T = 0, sdyx: T = 0
            forEach(c, shape, layout) { i in sdy += dy[i]; sdyx += dy[i] * (x[i] - m) * r }
            let k = gamma[c] * r
            if given != nil {
                forEach(c, shape, layout) { i in dx[i] = k * dy[i] }
            } else {
                let mdy = mutation == .backwardMissingMeanTerm ? 0 : sdy / n
                let mdyx = mutation == .backwardMissingXhatTerm ? 0 : sdyx / n
                forEach(c, shape, layout) { i in dx[i] = k * (dy[i] - mdy - (x[i] - m) * r * mdyx) }
            }
            if mutation == .nanToZero { forEach(c, shape, layout) { i in if dx[i].isNaN { dx[i] = 0 } } }
            dg.append(sdyx); db.append(sdy)
        }
        return (dg, db)
    }
}
