/// What a golden case exercises. Each operation's arrays — inputs, outputs, their dtypes and
/// extents — are one table, ``arrays`` (Operation+Arrays.swift); its reference is
/// ``Generator/expected(_:_:)`` and its tolerance ``ToleranceBudget`` (spec/SPEC.md §10).
public enum Operation: String, Codable, CaseIterable, Sendable {
    /// Training forward with batch statistics, plus one running-statistics update.
    case train
    /// Inference forward with given running statistics.
    case infer
    /// Training-mode backward (statistics depend on x).
    case backwardTrain = "backward-train"
    /// Inference-mode backward (statistics are constants).
    case backwardInfer = "backward-infer"
    /// K training steps on fresh batches, then inference on a held-out batch.
    case trajectory
    /// One pass over a dataset cut into consecutive batches of the case's partition (sizes that
    /// differ, as a data loader's last batch without drop_last): a training step per batch,
    /// then inference on x_eval (spec/SPEC.md §2).
    case epoch
    /// Synchronized training forward over a partition of the batch across ranks, plus one
    /// running-statistics update (spec/SPEC.md §11.2): BN of the concatenated global batch.
    case syncTrain = "sync-train"
    /// Synchronized training backward (spec/SPEC.md §11.3): dx of the global batch, dγ and dβ
    /// per rank (local reduction) or global.
    case syncBackward = "sync-backward"

    /// The batch is split across ranks by the case's partition (``CaseSpec/partition``).
    public var isSynchronized: Bool { self == .syncTrain || self == .syncBackward }
    /// The case carries a partition of its batch along N (``CaseSpec/partition``): the ranks of a
    /// synchronized operation, the batches of an epoch.
    public var hasPartition: Bool { isSynchronized || self == .epoch }
    /// H·v of L = ⟨dy, y⟩ in (x, γ, β) along a direction v, training mode (spec §12.3).
    case hvpTrain = "hvp-train"
    /// H·v of L = ⟨dy, y⟩ along v, inference mode (statistics are constants, spec §12.5).
    case hvpInfer = "hvp-infer"
    /// The second directional derivative D²y[v, w], training mode (spec §12.2).
    case d2Train = "d2-train"
    /// The third directional derivative D³y[v, v, w], training mode (spec §12.2).
    case d3Train = "d3-train"

    /// The higher-order derivatives of spec §12.
    public var isHigherOrder: Bool { [.hvpTrain, .hvpInfer, .d2Train, .d3Train].contains(self) }
}
