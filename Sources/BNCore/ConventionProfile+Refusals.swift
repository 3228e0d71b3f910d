/// A refusal a framework documents: an implementation following the profile may refuse such a
/// case instead of answering it (spec §5.6); an answer is judged as usual.
public struct DocumentedRefusal: Sendable, Equatable {
    /// What is refused, e.g. "eps = 0 in training".
    public var what: String
    /// Where the framework documents it.
    public var source: String
    /// Whether a case (its operation's name, its eps) is one the refusal covers.
    public var covers: @Sendable (_ op: String, _ eps: Double) -> Bool

    public static func == (a: DocumentedRefusal, b: DocumentedRefusal) -> Bool { a.what == b.what && a.source == b.source }
}

extension DocumentedRefusal {
    /// PyTorch raises on eps = 0 whenever batch statistics are computed (training forward,
    /// and so training backward, trajectories and epochs).
    public static let zeroEpsInTraining = DocumentedRefusal(
        what: "eps = 0 in training",
        source: "torch 2.15 torch.nn.functional.batch_norm: ValueError \"batch_norm eps must be positive during training, but got 0.0\"",
        covers: { op, eps in eps == 0 && ["train", "backward-train", "trajectory", "epoch"].contains(op) })
}

extension ConventionProfile {
    /// The refusals this profile's framework documents (spec §5.6).
    public var documentedRefusals: [DocumentedRefusal] {
        name == ConventionProfile.pytorch.name ? [.zeroEpsInTraining] : []
    }

    /// The documented refusal covering a case, if any.
    public func documentedRefusal(op: String, eps: Double) -> DocumentedRefusal? {
        documentedRefusals.first { $0.covers(op, eps) }
    }
}
