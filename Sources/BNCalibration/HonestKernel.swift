import BNCore
import BNKernels

/// Honest BN kernels that compute the batch statistics with a different, correct
/// algorithm each — the class of algorithms the tolerance model (spec/SPEC.md §5) must
/// accept. Every one of them must pass every golden case; together they calibrate the
/// model from the honest side, as the mutants do from the buggy side.
///
/// Compute type T = Float for float32/float16/bfloat16 storage, Double for float64
/// (as a framework would), except ``Statistics/wideAccumulation``, which accumulates
/// in Double and rounds the statistics to T.
///
/// Statistics algorithms (Chan, Golub & LeVeque 1983; Higham 2002 §1.9):
/// - `two-pass`: Σx recursively, μ = Σx/n, then Σ(x − μ)².
/// - `welford`: the updating algorithm of Welford/West (what GPU BN kernels use):
///   μₖ = μₖ₋₁ + (xₖ − μₖ₋₁)/k, Mₖ = Mₖ₋₁ + (xₖ − μₖ₋₁)(xₖ − μₖ).
/// - `pairwise`: Chan's pairwise merge of (n, μ, M2) over a balanced binary tree.
/// - `blocked-chan-64`: two-pass within 64-element chunks in storage order, chunks merged
///   left to right with Chan's formula (how parallel and GPU kernels reduce).
/// - `pivot-shifted`: one pass of Σ(x − p), Σ(x − p)² about p = the channel's first value.
/// - `kahan`: two-pass with Kahan-compensated sums.
/// - `float64-accumulation`: two-pass with Double accumulators, statistics rounded to T.
///
/// Outputs use the plain formulas in T: y = γ·(x − μ)·r + β, running R ← R + w·(b − R) for `welford` and
/// `pairwise` (the lerp form) and (1 − w)·R + w·b otherwise; backward as SPEC §2 with
/// the same statistics.
///
/// Synchronized BN (spec/SPEC.md §11, ``SynchronizedBatchNormKernel``): each rank's statistics by
/// the kernel's algorithm, exchanged by one honest scheme of §11.4 per kernel (``exchange``):
/// PyTorch's invstd round trip for `welford`, a tree of Chan merges for `pairwise`, two all-reduce
/// rounds of shifted sums for `float64-accumulation`, Chan's merge rank by rank for the others.
public struct HonestKernel: BatchNormKernel {
    public enum Statistics: String, CaseIterable, Sendable {
        case twoPass = "two-pass", welford, pairwise, blocked = "blocked-chan-64"
        case pivotShifted = "pivot-shifted", kahan, wideAccumulation = "float64-accumulation"
    }

    public let statistics: Statistics

    public init(_ statistics: Statistics) { self.statistics = statistics }

    public var name: String { "honest/\(statistics.rawValue)" }
    public var role: KernelRole { .honestCalibration }
    public var dtypes: Set<DType> { Set(DType.allCases) }

    /// Every honest kernel `bnspec verify` runs (the folded inference form is
    /// ``CalibrationKernel/Mutation/foldedInference``).
    public static let all: [HonestKernel] = Statistics.allCases.map { HonestKernel($0) }

    // MARK: statistics

    /// (mean, M2) of `v` in T by the selected algorithm.
    public func moments<T: BinaryFloatingPoint>(_ v: [T]) -> (T, T) {
        let n = v.count
        switch statistics {
        case .twoPass:
            var s: T = 0
            for x in v { s += x }
            let m = s / T(n)
            var q: T = 0
            for x in v { let d = x - m; q += d * d }
            return (m, q)
        case .welford:
            var m: T = 0, q: T = 0
            for (k, x) in v.enumerated() {
                let d = x - m
                m += d / T(k + 1)
                q += d * (x - m)
            }
            return (m, q)
        case .pairwise:
            return Self.pairwise(v[...])
        case .blocked:
            var acc: (n: Int, m: T, q: T) = (0, 0, 0)
            var start = 0
            while start < n {
                let chunk = v[start..<min(n, start + 64)]
                var s: T = 0
                for x in chunk { s += x }
                let m = s / T(chunk.count)
                var q: T = 0
                for x in chunk { let d = x - m; q += d * d }
                acc = acc.n == 0 ? (chunk.count, m, q) : Self.merge(acc, (chunk.count, m, q))
                start += 64
            }
            return (acc.m, acc.q)
        case .pivotShifted:
            let p = v[0]
            var s: T = 0, q: T = 0
            for x in v { let d = x - p; s += d; q += d * d }
            let m = p + s / T(n)
            let q2 = q - s * s / T(n)
            return (m, q2 < 0 ? 0 : q2)  // clamps at 0 and keeps NaN
        case .kahan:
            var s: T = 0, c: T = 0
            for x in v { let y = x - c; let t = s + y; c = (t - s) - y; s = t }
            let m = s / T(n)
            var q: T = 0, cq: T = 0
            for x in v { let d = x - m; let y = d * d - cq; let t = q + y; cq = (t - q) - y; q = t }
            return (m, q)
        case .wideAccumulation:
            var s = 0.0
            for x in v { s += Double(x) }
            let m = s / Double(n)
            var q = 0.0
            for x in v { let d = Double(x) - m; q += d * d }
            return (T(m), T(q))
        }
    }

    static func merge<T: BinaryFloatingPoint>(_ a: (n: Int, m: T, q: T), _ b: (n: Int, m: T, q: T)) -> (n: Int, m: T, q: T) {
        let n = a.n + b.n
        let d = b.m - a.m
        let m = a.m + d * T(b.n) / T(n)
        let q = a.q + b.q + d * d * T(a.n) * T(b.n) / T(n)
        return (n, m, q)
    }

    static func pairwise<T: BinaryFloatingPoint>(_ v: ArraySlice<T>) -> (T, T) {
        func go(_ s: ArraySlice<T>) -> (n: Int, m: T, q: T) {
            if s.count == 1 { return (1, s.first!, 0) }
            let mid = s.startIndex + s.count / 2
            return merge(go(s[s.startIndex..<mid]), go(s[mid..<s.endIndex]))
        }
        let r = go(v)
        return (r.m, r.q)
    }

    /// Σ in T: recursive, or pairwise for the pairwise kernel.
    func sum<T: BinaryFloatingPoint>(_ v: [T]) -> T {
        if statistics == .pairwise {
            func go(_ s: ArraySlice<T>) -> T {
                if s.count <= 2 { return s.reduce(0, +) }
                let mid = s.startIndex + s.count / 2
                return go(s[s.startIndex..<mid]) + go(s[mid..<s.endIndex])
            }
            return go(v[...])
        }
        if statistics == .wideAccumulation { return T(v.reduce(0.0) { $0 + Double($1) }) }
        return v.reduce(0, +)
    }

    // MARK: BatchNormKernel

    func indices(_ c: Int, _ shape: Shape, _ layout: Layout) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(shape.perChannelCount)
        for seg in layout.segments(channel: c, shape: shape) {
            var i = seg.offset
            for _ in 0..<seg.count { out.append(i); i += seg.stride }
        }
        return out
    }

    public func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        dtype == .f64
            ? try trainT(Double.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
            : try trainT(Float.self, x, shape, layout, gamma, beta, eps, runningMean, runningVariance, step, rule)
    }

    func trainT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ shape: Shape, _ layout: Layout, _ gd: [Double], _ bd: [Double],
                                        _ epsd: Double, _ rmd: [Double], _ rvd: [Double], _ step: Int,
                                        _ rule: RunningUpdateRule) throws -> TrainingOutput {
        let x = xd.map { T($0) }, eps = T(epsd)
        let n = shape.perChannelCount
        if n == 1 && rule.singleValue == .error && rule.estimator == .unbiased {
            throw BNError.singleValuePerChannel(profile: "kernel")
        }
        let w: T = rule.momentum.map { T(rule.weighting == .batch ? $0 : 1 - $0) } ?? 1 / T(step)
        var y = [T](repeating: 0, count: x.count)
        var bm: [Double] = [], bv: [Double] = [], rm: [Double] = [], rv: [Double] = []
        for c in 0..<shape.channels {
            let idx = indices(c, shape, layout)
            let (m, q) = moments(idx.map { x[$0] })
            let v = q / T(n)
            let r = 1 / (v + eps).squareRoot()
            let g = T(gd[c]), b = T(bd[c])
            for i in idx { y[i] = g * (x[i] - m) * r + b }
            var vRun = v
            if rule.estimator == .unbiased { vRun = n > 1 ? q / T(n - 1) : (rule.singleValue == .nan ? .nan : v) }
            let R = T(rmd[c]), RV = T(rvd[c])
            let lerp = statistics == .welford || statistics == .pairwise
            rm.append(Double(lerp ? R + w * (m - R) : (1 - w) * R + w * m))
            rv.append(Double(lerp ? RV + w * (vRun - RV) : (1 - w) * RV + w * vRun))
            bm.append(Double(m)); bv.append(Double(v))
        }
        return TrainingOutput(y: y.map(Double.init), batchMean: bm, batchVariance: bv, runningMean: rm, runningVariance: rv)
    }

    public func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      mean: [Double], variance: [Double]) throws -> [Double] {
        dtype == .f64 ? inferT(Double.self, x, shape, layout, gamma, beta, eps, mean, variance)
                      : inferT(Float.self, x, shape, layout, gamma, beta, eps, mean, variance)
    }

    func inferT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ shape: Shape, _ layout: Layout, _ gd: [Double], _ bd: [Double],
                                        _ epsd: Double, _ md: [Double], _ vd: [Double]) -> [Double] {
        var y = [Double](repeating: 0, count: xd.count)
        for c in 0..<shape.channels {
            let m = T(md[c]), r = 1 / (T(vd[c]) + T(epsd)).squareRoot(), g = T(gd[c]), b = T(bd[c])
            for i in indices(c, shape, layout) { y[i] = Double(g * (T(xd[i]) - m) * r + b) }
        }
        return y
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

    func backwardT<T: BinaryFloatingPoint>(_: T.Type, _ xd: [Double], _ dyd: [Double], _ shape: Shape, _ layout: Layout,
                                           _ gd: [Double], _ epsd: Double, _ given: ([Double], [Double])?) -> GradientOutput {
        let n = T(shape.perChannelCount), eps = T(epsd)
        var dx = [Double](repeating: 0, count: xd.count), dg: [Double] = [], db: [Double] = []
        for c in 0..<shape.channels {
            let idx = indices(c, shape, layout)
            let xs = idx.map { T(xd[$0]) }, dys = idx.map { T(dyd[$0]) }
            let m: T, r: T
            if let (gm, gv) = given { m = T(gm[c]); r = 1 / (T(gv[c]) + eps).squareRoot() } else {
                let (mm, q) = moments(xs)
                m = mm; r = 1 / (q / n + eps).squareRoot()
            }
            let xh = xs.map { ($0 - m) * r }
            let sdy = sum(dys), sdyx = sum(zip(dys, xh).map { $0 * $1 })
            let k = T(gd[c]) * r
            for (j, i) in idx.enumerated() {
                dx[i] = Double(given != nil ? k * dys[j] : k * (dys[j] - sdy / n - xh[j] * (sdyx / n)))
            }
            dg.append(Double(sdyx)); db.append(Double(sdy))
        }
        return GradientOutput(dx: dx, dGamma: dg, dBeta: db)
    }
}

// MARK: synchronized BN (spec/SPEC.md §11)

extension HonestKernel: SynchronizedBatchNormKernel {
    public var runsSynchronized: Bool { true }

    /// How this kernel exchanges the ranks' statistics: the per-rank algorithm is its own
    /// (``moments(_:)`` on each rank's values, so `pivot-shifted` pivots on each rank's first
    /// value), the exchange one of the honest kinds of §11.4 — `welford` as PyTorch's SyncBatchNorm
    /// (Welford per rank, the invstd round trip, the convex merge), `pairwise` a tree of Chan
    /// merges over the ranks, `float64-accumulation` two all-reduce rounds of shifted sums, the
    /// others Chan's merge rank by rank.
    public var exchange: SynchronizedExchange {
        switch statistics {
        case .welford: .invstdRoundTrip
        case .pairwise: .chanTree
        case .wideAccumulation: .shiftedAllReduce
        case .twoPass, .blocked, .pivotShifted, .kahan: .chanChain
        }
    }

    var recipe: SynchronizedRecipe {
        SynchronizedRecipe(exchange: exchange, bug: nil, lerp: statistics == .welford || statistics == .pairwise,
                           moments32: { self.moments($0) }, moments64: { self.moments($0) }, sum32: { self.sum($0) }, sum64: { self.sum($0) })
    }

    public func syncTrain(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition, gamma: [Double],
                          beta: [Double], eps: Double, runningMean: [Double], runningVariance: [Double], step: Int,
                          rule: RunningUpdateRule) throws -> TrainingOutput {
        try recipe.train(x, shape: shape, layout: layout, dtype: dtype, partition: partition, gamma: gamma, beta: beta, eps: eps,
                         runningMean: runningMean, runningVariance: runningVariance, step: step, rule: rule)
    }

    public func syncBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition,
                             reduction: GradientReduction, gamma: [Double], eps: Double) throws -> GradientOutput {
        try recipe.backward(x, dy: dy, shape: shape, layout: layout, dtype: dtype, partition: partition, reduction: reduction,
                            gamma: gamma, eps: eps)
    }
}
