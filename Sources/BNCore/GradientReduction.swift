/// Where dγ and dβ of a synchronized BN are summed (spec/SPEC.md §11.3).
public enum GradientReduction: String, Codable, Sendable, CaseIterable {
    /// Each rank returns the sums over its own values (shape [K, C]); data parallelism
    /// reduces them later with the other parameters' gradients (PyTorch's SyncBatchNorm,
    /// Keras under MirroredStrategy, Flax under pmap).
    case local
    /// dγ and dβ are the sums over the global batch (shape [C]), identical on every rank.
    case global
}
