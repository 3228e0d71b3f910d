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
    func stats<T: BinaryFloatingPoint>(_ x: [T], _ c: Int, _ shape: Shape, _ layout: Layout) -> (T, T) {
        let n = T(shape.perChannelCount)
        if mutation == .onePassVariance {
            var s: T = 0, s2: T = 0
            forEach(c, shape, layout) { i in s += x[i]; s2 += x[i] * x[i] }
            let m = s / n
            return (m, (s2 / n - m * m) * n)
        }
        var s: T = 0
        forEach(c, shape, layout) { s += x[$0] }
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
        let x = xd.map { T($0) }, eps = T(epsd)
        let n = shape.perChannelCount
        var y = [T](repeating: 0, count: x.count)
        var bm = [Double](), bv = [Double](), rm = [Double](), rv = [Double]()
        var weighting = rule.weighting
        if mutation == .momentumSwapped { weighting = weighting == .batch ? .running : .batch }
        var estimator = rule.estimator
        if mutation == .wrongRunningEstimator { estimator = estimator == .biased ? .unbiased : .biased }
        let w: T = rule.momentum.map { T(weighting == .batch ? $0 : 1 - $0) } ?? 1 / T(step)
        for c in 0..<shape.channels {
            let (m, ss) = stats(x, c, shape, layout)
            let v = ss / T(n)
            let vNorm = mutation == .unbiasedNormalization && n > 1 ? ss / T(n - 1) : v
            let r = invStd(vNorm, eps), g = T(gd[c]), b = T(bd[c])
            forEach(c, shape, layout) { i in y[i] = g * (x[i] - m) * r + b }
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
            bm.append(Double(m)); bv.append(Double(v))
            rm.append(Double((1 - w) * T(rmd[c]) + w * m))
            rv.append(Double((1 - w) * T(rvd[c]) + w * vRun))
        }
        return TrainingOutput(y: y.map(Double.init), batchMean: bm, batchVariance: bv, runningMean: rm, runningVariance: rv)
    }

    func inferT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ shape: Shape, _ layout: Layout, _ gd: [Double], _ bd: [Double],
                                        _ epsd: Double, _ md: [Double], _ vd: [Double]) -> [Double] {
        let x = xd.map { T($0) }, eps = T(epsd)
        var y = [T](repeating: 0, count: x.count)
        for c in 0..<shape.channels {
            let m = T(md[c]), r = invStd(T(vd[c]), eps), g = T(gd[c]), b = T(bd[c])
            if mutation == .foldedInference {
                let s = g * r, shift = b - m * s
                forEach(c, shape, layout) { i in y[i] = x[i] * s + shift }
            } else {
                forEach(c, shape, layout) { i in y[i] = g * (x[i] - m) * r + b }
            }
        }
        return y.map(Double.init)
    }

    func backwardT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ dyd: [Double], _ shape: Shape, _ layout: Layout,
                                           _ gd: [Double], _ epsd: Double, _ given: ([Double], [Double])?) -> GradientOutput {
        let x = xd.map { T($0) }, dy = dyd.map { T($0) }, eps = T(epsd)
        let n = T(shape.perChannelCount)
        var dx = [T](repeating: 0, count: x.count)
        var dg = [Double](), db = [Double]()
        for c in 0..<shape.channels {
            let m: T, r: T
            if let (gm, gv) = given { m = T(gm[c]); r = invStd(T(gv[c]), eps) } else {
                let (mm, ss) = stats(x, c, shape, layout)
                m = mm; r = invStd(ss / n, eps)
            }
            var sdy: T = 0, sdyx: T = 0
            forEach(c, shape, layout) { i in sdy += dy[i]; sdyx += dy[i] * (x[i] - m) * r }
            let k = T(gd[c]) * r
            if given != nil {
                forEach(c, shape, layout) { i in dx[i] = k * dy[i] }
            } else {
                let mdy = sdy / n, mdyx = sdyx / n
                forEach(c, shape, layout) { i in dx[i] = k * (dy[i] - mdy - (x[i] - m) * r * mdyx) }
            }
            dg.append(Double(sdyx)); db.append(Double(sdy))
        }
        return GradientOutput(dx: dx.map(Double.init), dGamma: dg, dBeta: db)
    }
}
