import BNCore

/// A synchronized training forward pass (spec/SPEC.md §11): the global result and what
/// each rank holds.
public struct SynchronizedTrainingResult: Sendable {
    /// The global pass: y of the whole batch (the ranks' outputs concatenated in rank
    /// order) and the global statistics — exactly ``Reference/trainingForward(_:shape:layout:gamma:beta:eps:)``
    /// of the concatenation, bit for bit.
    public var global: TrainingForwardResult
    public var partition: BatchPartition
    /// Per rank, per channel: the moments of the rank's own values; `nil` for an empty rank.
    public var rankMoments: [[ChannelMoments]?]
    /// Per channel: ``ChannelMoments/merge(_:)`` of the non-empty ranks' moments — what an
    /// honest exchange of rounded (n, μ, M2) computes in Double; within
    /// ``ChannelMoments/mergeBound(_:merged:)`` of `global.moments`.
    public var mergedMoments: [ChannelMoments]
    let shape: Shape

    /// Rank k's output y (empty for an empty rank).
    public func y(rank k: Int) -> [Double] { Array(global.y[partition.elementRange(rank: k, of: shape)]) }
}

/// A synchronized training backward pass (spec/SPEC.md §11.3).
public struct SynchronizedBackwardResult: Sendable {
    /// dx of the whole batch (ranks concatenated) — the single-device training backward of
    /// the concatenation, bit for bit.
    public var dx: [Double]
    /// dγ and dβ: one row of C values for `.global`; K rows (rank order, zeros for an
    /// empty rank) for `.local`. The local rows add up to the global row (up to rounding).
    public var dGamma: [[Double]]
    public var dBeta: [[Double]]
    public var reduction: GradientReduction
}

extension Reference {
    /// Synchronized training forward over `partition`: BN of the concatenated global batch.
    ///
    /// Definition (§11.2): the global statistics are those of the union of the ranks'
    /// values — n = Σ nₖ·∏D values per channel — so they do not depend on how the batch is
    /// split, and rank k's output is the global y restricted to its samples. The reference
    /// therefore computes them from all values at once (``trainingForward(_:shape:layout:gamma:beta:eps:)``,
    /// exact summation: within 1 ulp of the exact statistics), not from rounded per-rank
    /// moments; ``SynchronizedTrainingResult/mergedMoments`` holds the honest per-rank
    /// exchange beside it.
    ///
    /// - Throws: as ``trainingForward(_:shape:layout:gamma:beta:eps:)``, and when the
    ///   partition's counts do not add up to the batch.
    public static func synchronizedTrainingForward(_ x: [Double], shape: Shape, layout: Layout, partition: BatchPartition,
                                                   gamma: [Double]? = nil, beta: [Double]? = nil,
                                                   eps: Double) throws -> SynchronizedTrainingResult {
        try partition.validate(for: shape)
        let global = try trainingForward(x, shape: shape, layout: layout, gamma: gamma, beta: beta, eps: eps)
        return try synchronized(global, x, shape: shape, layout: layout, partition: partition)
    }

    /// A synchronized training step: the forward pass, then the running update with the
    /// global statistics and the global count n (biased or unbiased per `rule`). The
    /// single-value policy applies when the *global* count is 1 (§11.1); a rank holding one
    /// value of a larger batch is an ordinary rank. Every rank holds the same running
    /// statistics afterwards.
    public static func synchronizedTrainingStep(_ x: [Double], shape: Shape, layout: Layout, partition: BatchPartition,
                                                gamma: [Double]?, beta: [Double]?, eps: Double,
                                                running: RunningStatistics, rule: RunningUpdateRule,
                                                profileName: String) throws -> (SynchronizedTrainingResult, RunningStatistics) {
        try partition.validate(for: shape)
        let (global, next) = try trainingStep(x, shape: shape, layout: layout, gamma: gamma, beta: beta, eps: eps,
                                              running: running, rule: rule, profileName: profileName)
        return (try synchronized(global, x, shape: shape, layout: layout, partition: partition), next)
    }

    /// Synchronized training backward (§11.3): Σdy and Σdy·x̂ are all-reduced over the ranks,
    /// so dx is the single-device dx of the concatenation; dγ = Σdy·x̂ and dβ = Σdy are the
    /// global sums (`.global`) or each rank's sums over its own values (`.local`), with x̂
    /// from the saved global μ and invstd.
    public static func synchronizedTrainingBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout,
                                                    partition: BatchPartition, gamma: [Double]?, mean: [Double],
                                                    invStd: [Double], reduction: GradientReduction) throws -> SynchronizedBackwardResult {
        try partition.validate(for: shape)
        let whole = try trainingBackward(x, dy: dy, shape: shape, layout: layout, gamma: gamma, mean: mean, invStd: invStd)
        switch reduction {
        case .global:
            return SynchronizedBackwardResult(dx: whole.dx, dGamma: [whole.dGamma], dBeta: [whole.dBeta], reduction: .global)
        case .local:
            let xs = partition.split(x, shape: shape), dys = partition.split(dy, shape: shape)
            var dg: [[Double]] = [], db: [[Double]] = []
            for k in 0..<partition.ranks {
                if partition.counts[k] == 0 {
                    dg.append(.init(repeating: 0, count: shape.channels)); db.append(.init(repeating: 0, count: shape.channels))
                    continue
                }
                // Each rank's Σdy·x̂ and Σdy, correctly rounded from the saved global μ and invstd
                // (the training backward from saved statistics over the rank's own values).
                let s = try trainingBackward(xs[k], dy: dys[k], shape: partition.shape(rank: k, of: shape), layout: layout,
                                             gamma: gamma, mean: mean, invStd: invStd)
                dg.append(s.dGamma); db.append(s.dBeta)
            }
            return SynchronizedBackwardResult(dx: whole.dx, dGamma: dg, dBeta: db, reduction: .local)
        }
    }

    /// Per rank, per channel moments of each rank's own values (`nil` for an empty rank).
    public static func rankMoments(_ x: [Double], shape: Shape, layout: Layout,
                                   partition: BatchPartition) throws -> [[ChannelMoments]?] {
        try partition.validate(for: shape)
        try check(x.count, shape, layout)
        return try zip(partition.split(x, shape: shape), 0...).map { xk, k in
            partition.counts[k] == 0 ? nil : try moments(xk, shape: partition.shape(rank: k, of: shape), layout: layout)
        }
    }

    static func synchronized(_ global: TrainingForwardResult, _ x: [Double], shape: Shape, layout: Layout,
                             partition: BatchPartition) throws -> SynchronizedTrainingResult {
        let ranks = try rankMoments(x, shape: shape, layout: layout, partition: partition)
        let merged = (0..<shape.channels).map { c in
            let parts = ranks.compactMap { $0?[c] }
            // Non-finite channels have no merge (its precondition): NaN/Inf propagate as in §4.
            return parts.allSatisfy { $0.mean.isFinite && $0.m2.isFinite } ? ChannelMoments.merge(parts) : global.moments[c]
        }
        return SynchronizedTrainingResult(global: global, partition: partition, rankMoments: ranks,
                                          mergedMoments: merged, shape: shape)
    }
}
