import BNCore
import BNKernels

/// How a synchronized calibration kernel exchanges the ranks' statistics (spec/SPEC.md §11.4).
public enum SynchronizedExchange: String, Sendable, CaseIterable {
    /// Each rank's (m_k, μ_k, M2_k) gathered and merged rank by rank with Chan's formula:
    /// d = μ_b − μ_a, μ ← μ_a + d·n_b/n, M2 ← M2_a + M2_b + d²·n_a·n_b/n (§11.4 (a)).
    case chanChain = "chan-chain"
    /// The same merges over a balanced binary tree of the non-empty ranks.
    case chanTree = "chan-tree"
    /// PyTorch's SyncBatchNorm (§11.4 (c)): each rank sends (μ_k, r_k = 1/√(v_k + ε), m_k); the
    /// merge rebuilds M2_k = ((1/r_k)·(1/r_k) − ε)·m_k and combines in the convex form
    /// μ ← (n_a/n)·μ_a + (n_b/n)·μ_b, as `batch_norm_reduce_statistics_kernel` does.
    case invstdRoundTrip = "invstd-round-trip"
    /// Two all-reduce rounds of sums in Double (§11.4 (b), shift = the first round's mean):
    /// Σx → μ₀ = Σx/m, then Σ(x − μ₀) and Σ(x − μ₀)² → μ = μ₀ + s/m, M2 = q − s²/m, rounded to T.
    case shiftedAllReduce = "shifted-all-reduce"
}

/// A deliberate bug of synchronized BN (the calibration mutants of spec/SPEC.md §5.5).
public enum SynchronizationBug: Sendable {
    /// The global mean is the mean of the ranks' means, the variance the mean of the ranks'
    /// (v_k + (μ_k − μ)²): every non-empty rank weighted 1/K', not m_k/m.
    case unweightedMean
    /// The unbiased running variance corrected with the first non-empty rank's own count.
    case localBessel
    /// Backward without the all-reduce: each rank's dx uses its own Σdy and Σdy·x̂ over its own count.
    case unsynchronizedDx
    /// M2 = Σ M2_k: the between-rank term Σ m_k·(μ_k − μ)² is dropped.
    case noBetweenTerm
}

/// The loops of a synchronized calibration kernel in the compute type T: per-rank statistics by
/// `moments` (a single-device algorithm of spec §5.1 on the rank's values of a channel, in
/// logical order), the exchange, then the single-device formulas with the global statistics.
struct SynchronizedLoops<T: BinaryFloatingPoint> {
    let shape: Shape, layout: Layout, partition: BatchPartition
    let exchange: SynchronizedExchange
    let bug: SynchronizationBug?
    /// (mean, M2) of one rank's values of a channel.
    let moments: ([T]) -> (T, T)
    /// Σ of one rank's values (the gradient sums).
    let sum: ([T]) -> T
    /// The running update as R + w·(b − R) instead of (1 − w)·R + w·b.
    let lerp: Bool

    /// The global indices of channel c on rank k, in the rank's logical order (empty for an empty rank).
    func indices(rank k: Int, channel c: Int) -> [Int] {
        guard partition.counts[k] > 0 else { return [] }
        let start = partition.elementRange(rank: k, of: shape).lowerBound
        var out: [Int] = []
        for seg in layout.segments(channel: c, shape: partition.shape(rank: k, of: shape)) {
            for j in 0..<seg.count { out.append(start + seg.offset + j * seg.stride) }
        }
        return out
    }

    static func chan(_ a: (n: Int, m: T, q: T), _ b: (n: Int, m: T, q: T), between: Bool) -> (n: Int, m: T, q: T) {
        let n = a.n + b.n, d = b.m - a.m
        return (n, a.m + d * T(b.n) / T(n), a.q + b.q + (between ? d * d * T(a.n) * T(b.n) / T(n) : 0))
    }

    /// The global (mean, M2) of channel c, and the count of the first non-empty rank.
    func statistics(_ x: [T], channel c: Int, eps: T) -> (mean: T, m2: T, firstCount: Int) {
        let ranks = (0..<partition.ranks).map { indices(rank: $0, channel: c) }.filter { !$0.isEmpty }
        let firstCount = ranks.first?.count ?? 0
        if exchange == .shiftedAllReduce && bug == nil {
            let m = Double(ranks.reduce(0) { $0 + $1.count })
            let s1 = ranks.map { r in r.reduce(0.0) { $0 + Double(x[$1]) } }.reduce(0, +)
            let mu0 = s1 / m
            let s = ranks.map { r in r.reduce(0.0) { $0 + (Double(x[$1]) - mu0) } }.reduce(0, +)
            let q = ranks.map { r in r.reduce(0.0) { let d = Double(x[$1]) - mu0; return $0 + d * d } }.reduce(0, +)
            let m2 = q - s * s / m
            return (T(mu0 + s / m), T(m2 < 0 ? 0 : m2), firstCount)
        }
        let parts = ranks.map { r -> (n: Int, m: T, q: T) in let (mm, q) = moments(r.map { x[$0] }); return (r.count, mm, q) }
        switch bug {
        case .unweightedMean?:
            let k = T(parts.count)
            let mean = parts.reduce(T(0)) { $0 + $1.m } / k
            let variance = parts.reduce(T(0)) { $0 + $1.q / T($1.n) + ($1.m - mean) * ($1.m - mean) } / k
            return (mean, variance * T(parts.reduce(0) { $0 + $1.n }), firstCount)
        case .noBetweenTerm?:
            let r = parts.dropFirst().reduce(parts[0]) { Self.chan($0, $1, between: false) }
            return (r.m, r.q, firstCount)
        default: break
        }
        switch exchange {
        case .chanChain, .shiftedAllReduce:
            let r = parts.dropFirst().reduce(parts[0]) { Self.chan($0, $1, between: true) }
            return (r.m, r.q, firstCount)
        case .chanTree:
            func tree(_ p: ArraySlice<(n: Int, m: T, q: T)>) -> (n: Int, m: T, q: T) {
                if p.count == 1 { return p.first! }
                let mid = p.startIndex + p.count / 2
                return Self.chan(tree(p[p.startIndex..<mid]), tree(p[mid..<p.endIndex]), between: true)
            }
            let r = tree(parts[...])
            return (r.m, r.q, firstCount)
        case .invstdRoundTrip:
            var avg: T = 0, varN: T = 0, n: T = 0
            for p in parts {
                let count = T(p.n), invstd = 1 / (p.q / count + eps).squareRoot()
                let t = 1 / invstd
                let w = (t * t - eps) * count
                let factor = 1 / (n + count)
                varN = varN + (w + (avg - p.m) * (avg - p.m) * n * count * factor)
                avg = n * factor * avg + count * factor * p.m
                n = n + count
            }
            return (avg, varN, firstCount)
        }
    }

    func train(_ x: [T], gamma: [T], beta: [T], eps: T, runningMean: [T], runningVariance: [T], step: Int,
               rule: RunningUpdateRule) throws -> TrainingOutput {
        let m = shape.perChannelCount
        if m == 1 && rule.singleValue == .error && rule.estimator == .unbiased {
            throw BNError.singleValuePerChannel(profile: "kernel")  // one value per channel *globally* (§11.1)
        }
        let w: T = rule.batchWeight.map { T($0) } ?? 1 / T(step)
        var y = [T](repeating: 0, count: x.count)
        var bm: [Double] = [], bv: [Double] = [], rm: [Double] = [], rv: [Double] = []
        for c in 0..<shape.channels {
            let (mean, m2, firstCount) = statistics(x, channel: c, eps: eps)
            let v = m2 / T(m), r = 1 / (v + eps).squareRoot()
            for k in 0..<partition.ranks { for i in indices(rank: k, channel: c) { y[i] = gamma[c] * (x[i] - mean) * r + beta[c] } }
            var vRun = v
            if rule.estimator == .unbiased {
                let bessel = bug == .localBessel ? firstCount : m
                vRun = m > 1 ? m2 / T(m) * T(bessel) / T(bessel - 1) : (rule.singleValue == .nan ? .nan : v)
            }
            let R = runningMean[c], RV = runningVariance[c]
            rm.append(Double(lerp ? R + w * (mean - R) : (1 - w) * R + w * mean))
            rv.append(Double(lerp ? RV + w * (vRun - RV) : (1 - w) * RV + w * vRun))
            bm.append(Double(mean)); bv.append(Double(v))
        }
        return TrainingOutput(y: y.map(Double.init), batchMean: bm, batchVariance: bv, runningMean: rm, runningVariance: rv)
    }

    func backward(_ x: [T], dy: [T], gamma: [T], eps: T, reduction: GradientReduction) -> GradientOutput {
        let m = T(shape.perChannelCount), C = shape.channels, K = partition.ranks
        var dx = [Double](repeating: 0, count: x.count)
        var localG = [[Double]](repeating: [Double](repeating: 0, count: C), count: K), localB = localG
        var globalG: [Double] = [], globalB: [Double] = []
        for c in 0..<C {
            let (mean, m2, _) = statistics(x, channel: c, eps: eps)
            let r = 1 / (m2 / m + eps).squareRoot(), g = gamma[c] * r
            let idx = (0..<K).map { indices(rank: $0, channel: c) }
            let xh = idx.map { $0.map { (x[$0] - mean) * r } }
            let sdy = idx.map { sum($0.map { dy[$0] }) }
            let sdyx = (0..<K).map { k in sum(zip(idx[k], xh[k]).map { dy[$0] * $1 }) }
            var allDy: T = 0, allDyX: T = 0  // the all-reduce, in rank order
            for k in 0..<K { allDy += sdy[k]; allDyX += sdyx[k] }
            for k in 0..<K {
                let (a, b, n) = bug == .unsynchronizedDx ? (sdy[k], sdyx[k], T(idx[k].count)) : (allDy, allDyX, m)
                for (j, i) in idx[k].enumerated() { dx[i] = Double(g * (dy[i] - a / n - xh[k][j] * (b / n))) }
                localG[k][c] = Double(sdyx[k]); localB[k][c] = Double(sdy[k])
            }
            globalG.append(Double(allDyX)); globalB.append(Double(allDy))
        }
        return reduction == .local ? GradientOutput(dx: dx, dGamma: localG.flatMap { $0 }, dBeta: localB.flatMap { $0 })
                                   : GradientOutput(dx: dx, dGamma: globalG, dBeta: globalB)
    }
}

extension SynchronizedLoops {
    /// ``train(_:gamma:beta:eps:runningMean:runningVariance:step:rule:)`` on Double arrays holding values of the
    /// storage type (converted to T exactly).
    func train(converting x: [Double], gamma: [Double], beta: [Double], eps: Double, runningMean: [Double],
               runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        try train(x.map { T($0) }, gamma: gamma.map { T($0) }, beta: beta.map { T($0) }, eps: T(eps),
                  runningMean: runningMean.map { T($0) }, runningVariance: runningVariance.map { T($0) }, step: step, rule: rule)
    }

    /// ``backward(_:dy:gamma:eps:reduction:)`` on Double arrays holding values of the storage type.
    func backward(converting x: [Double], dy: [Double], gamma: [Double], eps: Double, reduction: GradientReduction) -> GradientOutput {
        backward(x.map { T($0) }, dy: dy.map { T($0) }, gamma: gamma.map { T($0) }, eps: T(eps), reduction: reduction)
    }
}

/// What a synchronized calibration kernel computes, for either compute type: its exchange, its bug
/// (mutants), its per-rank algorithm and summation in Float and in Double, its running-update form.
/// The kernels' `syncTrain`/`syncBackward` are this recipe run in the case's compute type (Double
/// for float64 cases, Float otherwise).
struct SynchronizedRecipe {
    var exchange: SynchronizedExchange
    var bug: SynchronizationBug?
    var lerp: Bool
    var moments32: ([Float]) -> (Float, Float), moments64: ([Double]) -> (Double, Double)
    var sum32: ([Float]) -> Float, sum64: ([Double]) -> Double

    func loops<T: BinaryFloatingPoint>(_: T.Type, _ shape: Shape, _ layout: Layout, _ partition: BatchPartition) -> SynchronizedLoops<T> {
        let moments: ([T]) -> (T, T), sum: ([T]) -> T
        if T.self == Double.self {
            moments = { v in let (m, q) = moments64(v.map { Double($0) }); return (T(m), T(q)) }
            sum = { T(sum64($0.map { Double($0) })) }
        } else {
            moments = { v in let (m, q) = moments32(v.map { Float($0) }); return (T(m), T(q)) }
            sum = { T(sum32($0.map { Float($0) })) }
        }
        return SynchronizedLoops(shape: shape, layout: layout, partition: partition, exchange: exchange, bug: bug, moments: moments,
                                 sum: sum, lerp: lerp)
    }

    func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition, gamma: [Double], beta: [Double],
               eps: Double, runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        try partition.validate(for: shape)
        return dtype == .f64
            ? try loops(Double.self, shape, layout, partition).train(converting: x, gamma: gamma, beta: beta, eps: eps, runningMean: runningMean,
                                                                     runningVariance: runningVariance, step: step, rule: rule)
            : try loops(Float.self, shape, layout, partition).train(converting: x, gamma: gamma, beta: beta, eps: eps, runningMean: runningMean,
                                                                    runningVariance: runningVariance, step: step, rule: rule)
    }

    func backward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition,
                  reduction: GradientReduction, gamma: [Double], eps: Double) throws -> GradientOutput {
        try partition.validate(for: shape)
        return dtype == .f64
            ? loops(Double.self, shape, layout, partition).backward(converting: x, dy: dy, gamma: gamma, eps: eps, reduction: reduction)
            : loops(Float.self, shape, layout, partition).backward(converting: x, dy: dy, gamma: gamma, eps: eps, reduction: reduction)
    }
}
