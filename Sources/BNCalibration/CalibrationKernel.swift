import BNCore
import BNKernels

/// The calibration kernels of the tolerance model (spec/SPEC.md §5.5): the straightforward
/// two-pass loops of ``BNKernels/ScalarKernel`` with one deliberate variation each.
/// ``Mutation/foldedInference`` is honest (inference in folded form) and must pass every golden
/// case; each other ``Mutation`` is one classic BN bug, and the golden suite must catch every one
/// of them, and the audit's diagnosis must name its cause (``Mutation/expectedCause``).
///
/// Arithmetic: as ``BNKernels/ScalarKernel`` — accumulation in the compute type T (Float for
/// float32, float16 and bfloat16 storage; Double for float64), memory walked in storage order —
/// except where the mutation says otherwise. The four `sync-` mutations are synchronized-BN bugs:
/// they run the synchronized operations (two-pass per rank, Chan's merge rank by rank, with the
/// bug) and compute the single-device ones honestly; the others skip the synchronized cases.
public struct CalibrationKernel: LoopKernel {
    public enum Mutation: String, CaseIterable, Sendable {
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
        /// Synchronized BN (spec §11): the ranks' statistics averaged with weight 1/K' each
        /// (the mean of the ranks' means), not m_k/m.
        case syncUnweightedMean = "sync-unweighted-mean"
        /// Synchronized BN: the unbiased running variance corrected with the first non-empty
        /// rank's own count n_k/(n_k − 1), not the global n/(n − 1).
        case syncLocalBessel = "sync-local-bessel"
        /// Synchronized BN: backward without the all-reduce of Σdy and Σdy·x̂ (each rank's dx from
        /// its own sums over its own count).
        case syncUnsynchronizedDx = "sync-unsynchronized-dx"
        /// Synchronized BN: M2 = Σ M2_k, the between-rank term Σ m_k·(μ_k − μ)² dropped.
        case syncNoBetweenTerm = "sync-no-between-term"

        /// The start of the cause the audit's diagnosis names for this bug (spec/AUDIT.md §5);
        /// nil for the honest kernel. The mutation score requires it to be the most frequent
        /// cause of the bug's failures, and no other cause ever named for them.
        public var expectedCause: String? {
            switch self {
            case .foldedInference: nil
            case .onePassVariance: "variance computed in one pass"
            case .epsOutsideSqrt: "eps added outside the square root"
            case .unbiasedNormalization: "normalises with the unbiased variance"
            case .momentumSwapped: "momentum convention inverted"
            case .wrongRunningEstimator: "running variance uses the other estimator"
            case .runningNotUpdated: "running statistics not updated"
            case .perSampleStatistics: "statistics per sample"
            case .gammaBetaSwapped: "γ and β swapped"
            case .channelsLastOffByOne: "channel c normalised with the statistics and parameters of channel c + 1"
            case .backwardMissingMeanTerm: "backward misses the −mean(dy) term"
            case .backwardMissingXhatTerm: "backward misses the −x̂·mean(dy·x̂) term"
            case .inferenceUsesBatchStatistics: "inference normalises with the batch's own statistics"
            case .fp16Accumulation: "Σx accumulated in float16"
            case .nanToZero: "NaN turned into 0"
            case .syncUnweightedMean: "the ranks' statistics are averaged with equal weights"
            case .syncLocalBessel: "running variance Bessel-corrected with a rank's own count"
            case .syncUnsynchronizedDx: "backward's Σdy and Σdy·x̂ are not all-reduced"
            case .syncNoBetweenTerm: "the variance misses the between-rank term"
            }
        }

        /// The synchronized-BN bug this mutation is, nil for the single-device ones.
        public var synchronizationBug: SynchronizationBug? {
            switch self {
            case .syncUnweightedMean: .unweightedMean
            case .syncLocalBessel: .localBessel
            case .syncUnsynchronizedDx: .unsynchronizedDx
            case .syncNoBetweenTerm: .noBetweenTerm
            default: nil
            }
        }
    }

    public let mutation: Mutation
    public init(_ mutation: Mutation) { self.mutation = mutation }


    /// Every calibration kernel, in ``Mutation`` order.
    public static var all: [CalibrationKernel] { Mutation.allCases.map(CalibrationKernel.init) }

    public var name: String { "calibration/\(mutation.rawValue)" }
    public var role: KernelRole {
        switch mutation {
        case .foldedInference: .honestCalibration
        default: .mutant(mutation.rawValue)
        }
    }

    // MARK: the loops (LoopKernel supplies the entry points)

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

    /// Training forward on raw buffers; updates `rm`/`rv` in place and returns (μ_B, σ²_B).
    public func trainingForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
                                                 _ layout: Layout, _ gamma: [T], _ beta: [T], _ eps: T,
                                                 _ rm: inout [T], _ rv: inout [T], _ step: Int,
                                                 _ rule: RunningUpdateRule) throws -> ([T], [T]) {
        let n = shape.perChannelCount
        var bm = [T](), bv = [T]()
        var estimator = rule.estimator
        if mutation == .wrongRunningEstimator { estimator = estimator == .biased ? .unbiased : .biased }
        var w: T = rule.batchWeight.map { T($0) } ?? 1 / T(step)
        if mutation == .momentumSwapped, let m = rule.momentum {
            // The profile's momentum plugged into the other framework family's convention.
            w = T((rule.weighting == .batch ? MomentumWeighting.running : .batch).batchWeight(momentum: m))
        }
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

    public func inferenceForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
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

    /// Backward on raw buffers (training mode when `given` is nil); returns (dγ, dβ).
    public func backward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ dy: UnsafeBufferPointer<T>, _ dx: UnsafeMutableBufferPointer<T>,
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

// MARK: synchronized BN (spec/SPEC.md §11)

extension CalibrationKernel: SynchronizedBatchNormKernel {
    public var runsSynchronized: Bool { mutation.synchronizationBug != nil }

    /// Two-pass per rank in T, Chan's merge rank by rank, the mutation's bug.
    var recipe: SynchronizedRecipe {
        func twoPass<T: BinaryFloatingPoint>(_ v: [T]) -> (T, T) {
            var s: T = 0
            for x in v { s += x }
            let m = s / T(v.count)
            var q: T = 0
            for x in v { q += (x - m) * (x - m) }
            return (m, q)
        }
        return SynchronizedRecipe(exchange: .chanChain, bug: mutation.synchronizationBug, lerp: false, moments32: twoPass, moments64: twoPass,
                                  sum32: { $0.reduce(0, +) }, sum64: { $0.reduce(0, +) })
    }

    public func syncTrain(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition, gamma: [Double],
                          beta: [Double], eps: Double, runningMean: [Double], runningVariance: [Double], step: Int,
                          rule: RunningUpdateRule) throws -> TrainingOutput {
        guard runsSynchronized else { throw BNError.invalidArgument("\(name) does not run synchronized BN") }
        return try recipe.train(x, shape: shape, layout: layout, dtype: dtype, partition: partition, gamma: gamma, beta: beta, eps: eps,
                                runningMean: runningMean, runningVariance: runningVariance, step: step, rule: rule)
    }

    public func syncBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition,
                             reduction: GradientReduction, gamma: [Double], eps: Double) throws -> GradientOutput {
        guard runsSynchronized else { throw BNError.invalidArgument("\(name) does not run synchronized BN") }
        return try recipe.backward(x, dy: dy, shape: shape, layout: layout, dtype: dtype, partition: partition, reduction: reduction,
                                   gamma: gamma, eps: eps)
    }
}
