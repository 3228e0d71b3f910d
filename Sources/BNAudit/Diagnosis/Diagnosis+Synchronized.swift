import BNCore
import BNReference
import Foundation

/// The partition of a synchronized case and each rank's own statistics: what the bug models of
/// synchronized BN (spec/SPEC.md §11) perturb.
extension DiagnosisProblem {
    /// The case's partition (synchronized operations), nil otherwise.
    var partition: BatchPartition? { (try? spec.partitionValue()) ?? nil }

    /// The global indices of channel c on rank k, in the rank's logical order.
    func rankIndices(_ part: BatchPartition, rank k: Int, channel c: Int) -> [Int] {
        guard part.counts[k] > 0 else { return [] }
        let start = part.elementRange(rank: k, of: shape).lowerBound
        var out: [Int] = []
        for seg in spec.layout.segments(channel: c, shape: part.shape(rank: k, of: shape)) {
            for j in 0..<seg.count { out.append(start + seg.offset + j * seg.stride) }
        }
        return out
    }

    /// One rank's exact statistics of a channel: its count of values, mean and biased variance.
    struct RankStatistics { var count: Int, mean: Double, variance: Double }

    /// Per rank (nil for an empty one), per channel: the exact statistics of the rank's own values of x.
    func rankStatistics(_ part: BatchPartition) -> [[RankStatistics]?] {
        let x = input("x")
        guard x.count == shape.elementCount else { return [] }
        return part.split(x, shape: shape).enumerated().map { k, xk in
            guard part.counts[k] > 0, let ms = try? Reference.moments(xk, shape: part.shape(rank: k, of: shape), layout: spec.layout)
            else { return nil }
            return ms.map { RankStatistics(count: $0.count, mean: $0.mean, variance: $0.biasedVariance) }
        }
    }

    /// The statistics of a mean of the non-empty ranks' statistics with weight 1/K' each:
    /// μ = Σ μ_k/K', σ² = Σ (σ_k² + (μ_k − μ)²)/K' (what an unweighted pmean of E[x], E[x²] gives).
    func unweightedStatistics(_ ranks: [[RankStatistics]?]) -> (mean: [Double], variance: [Double]) {
        let parts = ranks.compactMap { $0 }
        guard !parts.isEmpty else { return ([], []) }
        let k = Double(parts.count)
        let mean = (0..<channels).map { c in parts.reduce(0.0) { $0 + $1[c].mean } / k }
        let variance = (0..<channels).map { c in
            parts.reduce(0.0) { $0 + $1[c].variance + ($1[c].mean - mean[c]) * ($1[c].mean - mean[c]) } / k
        }
        return (mean, variance)
    }

    /// The variance without the between-rank term: Σ m_k·σ_k²/m.
    func withinRankVariance(_ ranks: [[RankStatistics]?]) -> [Double] {
        let parts = ranks.compactMap { $0 }, m = Double(n)
        return (0..<channels).map { c in parts.reduce(0.0) { $0 + Double($1[c].count) * $1[c].variance } / m }
    }
}

/// Bug models of synchronized BN (spec/AUDIT.md §5): statistics not weighted by the ranks'
/// counts, Bessel's correction with a rank's own count, no between-rank term, no
/// synchronization at all, dx without the all-reduce, dγ/dβ reduced where the case asks for
/// each rank's own.
enum SynchronizedModels {
    static let unweighted = "the ranks' statistics are averaged with equal weights 1/K' (the mean of the ranks' means), not by their counts n_k/n"
    static let unweightedEmpty = "the ranks' statistics are averaged with equal weights, an empty rank's 0/0 included: NaN on every rank"
    static let noBetween = "the variance misses the between-rank term Σ n_k·(μ_k − μ)²: M2 = Σ M2_k"
    static let unsynchronized = "statistics not synchronized: each rank normalises with its own batch statistics"
    static let unsynchronizedY = "statistics not synchronized in y: each rank normalises with its own batch statistics, the running statistics are the global ones"
    static let localBessel = "running variance Bessel-corrected with a rank's own count"
    static let unreducedDx = "backward's Σdy and Σdy·x̂ are not all-reduced: each rank's dx uses its own sums"

    /// A training step's outputs with the given global statistics (y, batch statistics, running
    /// update with the case's weight and estimator over the global count).
    static func trainingOutputs(_ p: DiagnosisProblem, mean: [Double], variance: [Double]) -> [String: [Double]]? {
        guard mean.count == p.channels else { return nil }
        var out = ["y": p.normalized(p.input("x"), mean: mean, scale: { p.invStd(variance[$0]) }), "batch_mean": mean,
                   "batch_var": variance]
        if let w = p.weight(step: 1), p.input("running_mean").count == p.channels {
            out["running_mean"] = p.blend(p.input("running_mean"), mean, w)
            out["running_var"] = p.blend(p.input("running_var"), p.runningVarianceTerm(variance), w)
        }
        return out
    }

    /// y when every rank normalises with its own batch statistics (nil when the ranks' statistics
    /// are not at hand).
    static func unsynchronizedOutput(_ p: DiagnosisProblem, _ part: BatchPartition, _ ranks: [[DiagnosisProblem.RankStatistics]?]) -> [Double]? {
        let x = p.input("x")
        guard ranks.count == part.ranks else { return nil }
        var y = [Double](repeating: 0, count: x.count)
        for k in 0..<part.ranks {
            guard let own = ranks[k] else { continue }
            for c in 0..<p.channels {
                let r = p.invStd(own[c].variance)
                for i in p.rankIndices(part, rank: k, channel: c) { y[i] = p.gamma[c] * (x[i] - own[c].mean) * r + p.beta[c] }
            }
        }
        return y
    }

    /// Rank counts (values per channel) that a local Bessel correction could use: the non-empty
    /// ranks' distinct counts other than the global n (a count of 1 divides by 0).
    static func localCounts(_ p: DiagnosisProblem) -> [Int] {
        guard let part = p.partition else { return [] }
        var seen: [Int] = []
        for c in part.counts where c > 0 {
            let m = c * p.shape.spatialSize
            if m != p.n && !seen.contains(m) { seen.append(m) }
        }
        return seen
    }

    static func localBesselPrediction(_ p: DiagnosisProblem, count m: Int) -> [String: [Double]]? {
        guard let rule = try? p.spec.rule(), rule.estimator == .unbiased, let w = p.weight(step: 1),
              p.input("running_var").count == p.channels else { return nil }
        let v = p.trainingStatistics.variance
        guard v.count == p.channels else { return nil }
        return ["running_var": p.blend(p.input("running_var"), v.map { $0 * Double(m) / Double(m - 1) }, w)]
    }

    /// The rank count whose Bessel factor reproduces the outputs, if one does.
    static func fittedLocalCount(_ p: DiagnosisProblem) -> Int? {
        localCounts(p).first { m in localBesselPrediction(p, count: m).map(p.explains) ?? false }
    }

    static let training: [BugModel] = [
        BugModel(cause: unweighted) { p in
            guard let part = p.partition, part.counts.filter({ $0 > 0 }).count > 1 else { return nil }
            let s = p.unweightedStatistics(p.rankStatistics(part))
            return trainingOutputs(p, mean: s.mean, variance: s.variance)
        },
        BugModel(cause: unweightedEmpty) { p in
            guard let part = p.partition, part.counts.contains(0) else { return nil }
            let nan = [Double](repeating: .nan, count: p.channels)
            return trainingOutputs(p, mean: nan, variance: nan)
        },
        BugModel(cause: noBetween) { p in
            guard let part = p.partition, part.counts.filter({ $0 > 0 }).count > 1 else { return nil }
            return trainingOutputs(p, mean: p.trainingStatistics.mean, variance: p.withinRankVariance(p.rankStatistics(part)))
        },
        BugModel(cause: unsynchronized) { p in
            guard let part = p.partition, part.counts.filter({ $0 > 0 }).count > 1 else { return nil }
            let ranks = p.rankStatistics(part)
            guard let y = unsynchronizedOutput(p, part, ranks), let first = ranks.compactMap({ $0 }).first else { return nil }
            var out = ["y": y]
            // Each rank updates its own running statistics with its own batch; rank 0's (the first non-empty) are returned.
            if let w = p.weight(step: 1), let rule = try? p.spec.rule(), p.input("running_mean").count == p.channels {
                let m = Double(first[0].count)
                out["running_mean"] = p.blend(p.input("running_mean"), first.map(\.mean), w)
                out["running_var"] = p.blend(p.input("running_var"), first.map { rule.estimator == .unbiased && m > 1 ? $0.variance * m / (m - 1) : $0.variance }, w)
                out["batch_mean"] = first.map(\.mean); out["batch_var"] = first.map(\.variance)
            }
            return out
        },
        // y from each rank's own statistics, the running statistics synchronized (a plain BN whose
        // buffers are all-reduced afterwards): round F's such engine, on a partition of one sample
        // per rank, was named "statistics per sample" alone — the same y there, so both are named.
        BugModel(cause: unsynchronizedY) { p in
            guard let part = p.partition, part.counts.filter({ $0 > 0 }).count > 1, p.got["running_mean"] != nil,
                  let y = unsynchronizedOutput(p, part, p.rankStatistics(part)) else { return nil }
            return ["y": y]
        },
        BugModel(cause: localBessel, describe: { p in
            let m = fittedLocalCount(p) ?? 0
            return "\(localBessel) n_k/(n_k − 1) with n_k = \(m) instead of the global n/(n − 1), n = \(p.n)"
        }) { p in
            let counts = localCounts(p)
            guard !counts.isEmpty else { return nil }
            return localBesselPrediction(p, count: fittedLocalCount(p) ?? counts[0])
        },
    ]

    /// dx, dγ, dβ of a synchronized backward in which rank k normalises channel c with
    /// `statistics(k, c)` (mean, 1/√(σ² + ε)); dx takes the all-reduced sums (`reduced`) or the
    /// rank's own, divided by `divisor(k)` (default the global n); dγ, dβ rows as the case asks.
    static func gradients(_ p: DiagnosisProblem, _ part: BatchPartition, reduced: Bool, divisor: ((Int) -> Double)? = nil,
                          statistics: (Int, Int) -> (mean: Double, scale: Double)) -> [String: [Double]] {
        let x = p.input("x"), dy = p.input("dy"), K = part.ranks, C = p.channels
        var dx = [Double](repeating: 0, count: x.count)
        var rowsG = [Double](repeating: 0, count: K * C), rowsB = rowsG, dg = [Double](repeating: 0, count: C), db = dg
        for c in 0..<C {
            let idx = (0..<K).map { p.rankIndices(part, rank: $0, channel: c) }
            let stats = (0..<K).map { statistics($0, c) }
            var sdy = [Double](repeating: 0, count: K), sdyx = sdy
            for k in 0..<K {
                for i in idx[k] { sdy[k] += dy[i]; sdyx[k] += dy[i] * (x[i] - stats[k].mean) * stats[k].scale }
                rowsG[k * C + c] = sdyx[k]; rowsB[k * C + c] = sdy[k]
            }
            dg[c] = sdyx.reduce(0, +); db[c] = sdy.reduce(0, +)
            for k in 0..<K where !idx[k].isEmpty {
                let (a, b) = reduced ? (db[c], dg[c]) : (sdy[k], sdyx[k])
                let n = divisor?(k) ?? Double(p.n), s = stats[k].scale, g = p.gamma[c] * s
                for i in idx[k] { dx[i] = g * (dy[i] - a / n - (x[i] - stats[k].mean) * s * b / n) }
            }
        }
        let local = p.spec.gradientRows > 1
        return ["dx": dx, "dgamma": local ? rowsG : dg, "dbeta": local ? rowsB : db]
    }

    static func backwardModel(_ cause: String, _ f: @escaping @Sendable (DiagnosisProblem, BatchPartition) -> [String: [Double]]?) -> BugModel {
        BugModel(cause: cause) { p in
            guard let part = p.partition, part.counts.filter({ $0 > 0 }).count > 1, p.trainingStatistics.mean.count == p.channels else { return nil }
            return f(p, part)
        }
    }

    static let backward: [BugModel] = [
        backwardModel("\(unreducedDx) (÷ the global n)") { p, part in
            let s = p.trainingStatistics
            return gradients(p, part, reduced: false) { _, c in (s.mean[c], p.invStd(s.variance[c])) }
        },
        backwardModel("\(unreducedDx) (÷ the rank's own count n_k)") { p, part in
            let s = p.trainingStatistics
            return gradients(p, part, reduced: false, divisor: { Double(part.counts[$0] * p.shape.spatialSize) }) { _, c in
                (s.mean[c], p.invStd(s.variance[c]))
            }
        },
        backwardModel(unweighted) { p, part in
            let s = p.unweightedStatistics(p.rankStatistics(part))
            return s.mean.isEmpty ? nil : gradients(p, part, reduced: true) { _, c in (s.mean[c], p.invStd(s.variance[c])) }
        },
        // The derivative of the unweighted forward (automatic differentiation through an unweighted
        // pmean): ∂μ/∂x_i = 1/(K'·n_k) on rank k, so each rank divides the all-reduced sums by K'·n_k.
        backwardModel("\(unweighted); the backward is its derivative (the sums ÷ K'·n_k on rank k)") { p, part in
            let s = p.unweightedStatistics(p.rankStatistics(part)), k = Double(part.counts.filter { $0 > 0 }.count)
            return s.mean.isEmpty ? nil : gradients(p, part, reduced: true, divisor: { k * Double(part.counts[$0] * p.shape.spatialSize) }) { _, c in
                (s.mean[c], p.invStd(s.variance[c]))
            }
        },
        backwardModel(unweightedEmpty) { p, part in
            guard part.counts.contains(0) else { return nil }
            var g = gradients(p, part, reduced: true) { _, _ in (.nan, .nan) }  // dβ = Σdy stays finite
            g["dgamma"] = g["dgamma"]!.map { _ in .nan }
            return g
        },
        backwardModel(noBetween) { p, part in
            let m = p.trainingStatistics.mean, v = p.withinRankVariance(p.rankStatistics(part))
            return gradients(p, part, reduced: true) { _, c in (m[c], p.invStd(v[c])) }
        },
        backwardModel(unsynchronized) { p, part in
            let ranks = p.rankStatistics(part)
            guard ranks.count == part.ranks else { return nil }
            return gradients(p, part, reduced: false, divisor: { Double(part.counts[$0] * p.shape.spatialSize) }) { k, c in
                ranks[k].map { ($0[c].mean, p.invStd($0[c].variance)) } ?? (0, 0)
            }
        },
        backwardModel("dγ and dβ all-reduced: every rank returns the global sums where the case asks for each rank's own") { p, part in
            guard p.spec.gradientRows > 1 else { return nil }
            let s = p.trainingStatistics
            var g = gradients(p, part, reduced: true) { _, c in (s.mean[c], p.invStd(s.variance[c])) }
            let C = p.channels
            for name in ["dgamma", "dbeta"] {
                let rows = g[name]!
                let total = (0..<C).map { c in stride(from: c, to: rows.count, by: C).reduce(0.0) { $0 + rows[$1] } }
                g[name] = (0..<rows.count).map { total[$0 % C] }
            }
            return g
        },
    ]
}

extension Fits {
    /// Least squares A·w ≈ b (normal equations, Gaussian elimination with partial pivoting); nil
    /// when singular or with fewer equations than unknowns.
    static func leastSquares(_ rows: [[Double]], _ b: [Double]) -> [Double]? {
        guard let k = rows.first?.count, k > 0, rows.count >= k else { return nil }
        var m = [[Double]](repeating: [Double](repeating: 0, count: k), count: k), r = [Double](repeating: 0, count: k)
        for (row, y) in zip(rows, b) where row.allSatisfy(\.isFinite) && y.isFinite {
            for i in 0..<k { for j in 0..<k { m[i][j] += row[i] * row[j] }; r[i] += row[i] * y }
        }
        let scale = (0..<k).map { m[$0][$0] }.max() ?? 0
        for col in 0..<k {
            guard let piv = (col..<k).max(by: { abs(m[$0][col]) < abs(m[$1][col]) }), abs(m[piv][col]) > 1e-12 * scale else { return nil }
            m.swapAt(col, piv); r.swapAt(col, piv)
            for i in (col + 1)..<k {
                let f = m[i][col] / m[col][col]
                for j in col..<k { m[i][j] -= f * m[col][j] }
                r[i] -= f * r[col]
            }
        }
        var w = [Double](repeating: 0, count: k)
        for i in (0..<k).reversed() { w[i] = (r[i] - ((i + 1)..<k).reduce(0.0) { $0 + m[i][$1] * w[$1] }) / m[i][i] }
        return w
    }

    /// The weights w_k (Σ w_k = 1) with which the mean an implementation used is Σ w_k·μ_k over the
    /// non-empty ranks, fitted over the channels; `means`: that mean per channel. Nil when the
    /// channels do not determine them (fewer than K' − 1 channels with distinct rank means).
    static func rankWeights(_ p: DiagnosisProblem, means: [Double]) -> [Double]? {
        guard let part = p.partition, means.count == p.channels else { return nil }
        let parts = p.rankStatistics(part).compactMap { $0 }
        guard parts.count >= 2 else { return nil }
        let last = parts[parts.count - 1]
        // μ − μ_last = Σ_{k < K'−1} w_k·(μ_k − μ_last), w_last = 1 − Σ w_k.
        let rows = (0..<p.channels).map { c in parts.dropLast().map { $0[c].mean - last[c].mean } }
        let rhs = (0..<p.channels).map { means[$0] - last[$0].mean }
        guard let w = leastSquares(rows, rhs) else { return nil }
        return w + [1 - w.reduce(0, +)]
    }

    /// The mean each channel was normalised with: the returned batch mean, else the centre of
    /// y ≈ a·x + b (x where y = β).
    static func usedMeans(_ p: DiagnosisProblem) -> [Double]? {
        if let m = p.got["batch_mean"], m.count == p.channels { return m }
        let fits = yFits(p)
        guard fits.count == p.channels else { return nil }
        let m = (0..<p.channels).map { c -> Double in
            guard let f = fits[c], f.residual <= 1, f.a != 0 else { return .nan }
            return (p.beta[c] - f.b) / f.a
        }
        return m.contains { !$0.isFinite } ? nil : m
    }

    /// Synchronized cases: the partition and, for training, the fitted weights of the ranks' means.
    static func synchronizedEvidence(_ p: DiagnosisProblem) -> [String] {
        guard let part = p.partition else { return [] }
        let counts = part.counts.map { $0 * p.shape.spatialSize }
        var out = ["partition \(part) (values per channel per rank \(counts), n = \(p.n))"]
        if p.spec.op == .syncTrain, let used = usedMeans(p), let w = rankWeights(p, means: used) {
            let nonEmpty = counts.filter { $0 > 0 }.map { Double($0) / Double(p.n) }
            out.append("mean used = Σ w_k·μ_k over the non-empty ranks, fitted over \(p.channels) channels: w = \(list(w)) (counts n_k/n = \(list(nonEmpty)), equal 1/K' = \(fmt(1 / Double(nonEmpty.count))))")
        }
        return out
    }
}
