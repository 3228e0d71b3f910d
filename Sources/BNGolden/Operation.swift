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
    /// Synchronized training forward over a partition of the batch across ranks, plus one
    /// running-statistics update (spec/SPEC.md §11.2): BN of the concatenated global batch.
    case syncTrain = "sync-train"
    /// Synchronized training backward (spec/SPEC.md §11.3): dx of the global batch, dγ and dβ
    /// per rank (local reduction) or global.
    case syncBackward = "sync-backward"

    /// The batch is split across ranks by the case's partition (``CaseSpec/partition``).
    public var isSynchronized: Bool { self == .syncTrain || self == .syncBackward }
}
