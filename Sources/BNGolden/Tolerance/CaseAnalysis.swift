import BNCore
import BNReference

/// What the tolerance model needs to know about a case's data, computed once per case and
/// shared by the judge (``ToleranceBudget``), the audit's condition figure and the generator:
/// per channel, the reference's exact moments and max|x| of every batch of x (one batch, or
/// `steps` for a trajectory) and of x_eval, and the statistics' condition.
public struct CaseAnalysis: Sendable {
    /// One batch of data: per-channel moments (``BNReference/ChannelMoments``, exact) and max|x|.
    public struct Batch: Sendable {
        public var moments: [ChannelMoments]
        /// max|xᵢ| over the channel (NaN elements ignored).
        public var maxAbs: [Double] { data.map(\.maxAbs) }
        /// The figures of each channel's data the statistics bounds depend on (spec §5.1).
        public var data: [ToleranceModel.ChannelData]
        /// Whether each channel's data hold ±Inf and no NaN (spec §5.3's alternatives).
        public var holdsInfinity: [Bool]
        /// Values per channel, n.
        public var count: Int
        public var mean: [Double] { moments.map(\.mean) }
        public var biasedVariance: [Double] { moments.map(\.biasedVariance) }

        /// Analyses one tensor of `shape` in `layout`.
        public init(_ x: [Double], shape: Shape, layout: Layout) throws {
            let ms = try Reference.moments(x, shape: shape, layout: layout)
            moments = ms
            var data: [ToleranceModel.ChannelData] = [], inf: [Bool] = []
            for ch in 0..<shape.channels {
                // A channel's segments run in its logical order (sample, then spatial position).
                var values: [Double] = []
                values.reserveCapacity(shape.perChannelCount)
                for seg in layout.segments(channel: ch, shape: shape) {
                    for k in 0..<seg.count { values.append(x[seg.offset + k * seg.stride]) }
                }
                data.append(ToleranceModel.ChannelData(values, mean: ms[ch].mean))
                inf.append(values.contains { $0.isInfinite } && !values.contains { $0.isNaN })
            }
            self.data = data; holdsInfinity = inf; count = shape.perChannelCount
        }
    }

    /// The batches of x, in step order (one unless the operation stacks steps or is an epoch).
    public var batches: [Batch]
    /// x_eval (a trajectory's held-out batch), when the operation has one.
    public var evaluation: Batch?
    /// A synchronized case: each rank's own values of x (its block of samples), in rank order;
    /// nil for an empty rank. Empty for other operations.
    public var ranks: [Batch?] = []

    /// Analyses the inputs x (and x_eval) of a case whose arrays were validated
    /// (``GoldenStore/LoadedCase/validateArrays(dtypes:path:)``).
    public init(_ c: GoldenStore.LoadedCase) throws {
        let s = try c.spec.shapeValue(), per = s.elementCount, steps = c.spec.op.stacksSteps ? c.spec.steps : 1
        guard let x = c.inputs["x"]?.values, x.count == per * steps else {
            throw BNError.corrupt(path: c.spec.id, reason: "input 'x' is missing or does not hold \(steps) × \(per) values")
        }
        guard c.inputs["x_eval"].map({ $0.values.count == per }) ?? true else {
            throw BNError.corrupt(path: c.spec.id, reason: "input 'x_eval' does not hold \(per) values")
        }
        batches = try c.spec.trainingBatches(x).map { try Batch($0.values, shape: $0.shape, layout: c.spec.layout) }
        evaluation = try c.inputs["x_eval"].map { try Batch($0.values, shape: s, layout: c.spec.layout) }
        if c.spec.op.isSynchronized, let p = try c.spec.partitionValue() {
            ranks = try p.split(x, shape: s).enumerated().map { k, xk in
                p.counts[k] == 0 ? nil : try Batch(xk, shape: p.shape(rank: k, of: s), layout: c.spec.layout)
            }
        }
    }

    /// The non-empty ranks' parts of channel `ch` (``BNGolden/ToleranceModel/RankPart``), for the
    /// synchronized statistics bound; empty for other operations.
    public func rankParts(channel ch: Int) -> [ToleranceModel.RankPart] {
        ranks.compactMap { $0.map { ToleranceModel.RankPart(data: $0.data[ch], mean: $0.mean[ch], variance: $0.biasedVariance[ch]) } }
    }

    /// The condition of the batch statistics, max over the channels of the first batch of |μ|/σ
    /// (0 for μ = 0, +Inf for a constant channel with μ ≠ 0; NaN channels ignored). The audit
    /// plots errors against it.
    public var condition: Double {
        guard let first = batches.first else { return 0 }
        return first.moments.map { m in
            let sd = m.biasedVariance.squareRoot()
            return m.mean == 0 ? 0 : (sd > 0 ? abs(m.mean) / sd : .infinity)
        }.filter { !$0.isNaN }.max() ?? 0
    }
}
