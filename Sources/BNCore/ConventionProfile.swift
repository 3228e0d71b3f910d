/// What a framework's "momentum" weights in the running-statistics update.
public enum MomentumWeighting: String, Codable, Sendable, CaseIterable {
    /// r ← (1 − m)·r + m·b — PyTorch, MLX, `tf.nn.fused_batch_norm`'s exponential_avg_factor.
    case batch
    /// r ← m·r + (1 − m)·b — Keras, Flax, ONNX.
    case running
}

extension MomentumWeighting {
    /// The weight w of the batch statistic (SPEC §2: R ← (1 − w)·R + w·b) for a momentum m given in
    /// this convention: m for `.batch`, 1 − m for `.running`. The one momentum ↔ w conversion of
    /// BNSpec: every kernel, the reference and the audit's re-targeting go through it.
    ///
    /// w is the canonical quantity; a momentum is w as one framework family writes it. 1 − m is
    /// rounded (exact only for m ∈ [0.5, 1]), so converting twice need not return m: re-target
    /// by carrying w, never by converting a momentum back and forth.
    @inlinable
    public func batchWeight(momentum m: Double) -> Double {
        self == .batch ? m : 1 - m
    }

    /// The momentum that gives batch weight w in this convention (the same map: it is its own inverse
    /// in exact arithmetic).
    @inlinable
    public func momentum(batchWeight w: Double) -> Double { batchWeight(momentum: w) }
}

/// Which batch variance feeds the running variance.
public enum VarianceEstimator: String, Codable, Sendable, CaseIterable {
    /// Σ(x − μ)² / n — what BN always normalises with.
    case biased
    /// Σ(x − μ)² / (n − 1) — Bessel-corrected (PyTorch, TF fused op, the paper).
    case unbiased
}

/// What a profile does in training when a channel holds a single value (n = 1).
public enum SingleValuePolicy: String, Codable, Sendable, CaseIterable {
    /// Training is refused (PyTorch raises "Expected more than 1 value per channel").
    case error
    /// Training proceeds: var = 0, so y = β (for eps > 0); an unbiased running
    /// variance falls back to the biased value 0 (TF fused op's n/(n−1) factor is 1 for n = 1).
    case beta
    /// Training proceeds: y = β, and the unbiased running variance is 0/0 = NaN.
    case nan
}

/// A named set of BN conventions: everything that differs between frameworks
/// while all of them claim to implement "batch normalization".
///
/// The normalisation itself never differs: every profile normalises with the
/// biased batch variance and puts eps inside the square root. Profiles differ
/// in the running-statistics update and their defaults. See spec/SPEC.md §3.
public struct ConventionProfile: Codable, Hashable, Sendable {
    public var name: String
    public var momentumWeighting: MomentumWeighting
    /// Default momentum in the framework's own convention; `nil` = cumulative average by default.
    public var defaultMomentum: Double?
    public var defaultEps: Double
    public var runningVariance: VarianceEstimator
    public var singleValue: SingleValuePolicy
    /// Whether the framework offers a cumulative (1/k) average of batch statistics.
    public var supportsCumulative: Bool
    /// Where the convention is documented.
    public var source: String
}

extension ConventionProfile {
    /// The binary format in which the framework holds eps and momentum, whatever the tensors'
    /// dtype: float32 for ONNX, whose BatchNormalization takes `epsilon` and `momentum` as FLOAT
    /// attributes (AttributeProto.f, 32-bit), so no ONNX runtime can hold momentum 0.9 or eps 1e-5
    /// as binary64; binary64 for every other profile (Python floats, C++ doubles). An audit under
    /// the profile judges with eps and w rounded to this format (``CaseSpec/retargeted(to:)``,
    /// SPEC §3).
    public var attributeFormat: DType { name == "onnx" ? .f32 : .f64 }

    /// `v` as the profile holds an attribute (``attributeFormat``): rounded to float32 or unchanged.
    @inlinable public func attribute(_ v: Double) -> Double { attributeFormat == .f32 ? Double(Float(v)) : v }
}

extension ConventionProfile {
    public static let paper = ConventionProfile(
        name: "paper", momentumWeighting: .batch, defaultMomentum: nil, defaultEps: 1e-5,
        runningVariance: .unbiased, singleValue: .error, supportsCumulative: true,
        source: "Ioffe & Szegedy 2015, Alg. 2: E[x] = E_B[μ_B], Var[x] = m/(m−1)·E_B[σ²_B] (population averages over training batches); eps unspecified, BNSpec uses 1e-5")
    public static let pytorch = ConventionProfile(
        name: "pytorch", momentumWeighting: .batch, defaultMomentum: 0.1, defaultEps: 1e-5,
        runningVariance: .unbiased, singleValue: .error, supportsCumulative: true,
        source: "torch.nn.BatchNorm2d docs: x_new = (1 − momentum)·x + momentum·x_t, momentum=None → cumulative average, running var unbiased")
    public static let keras = ConventionProfile(
        name: "keras", momentumWeighting: .running, defaultMomentum: 0.99, defaultEps: 1e-3,
        runningVariance: .biased, singleValue: .beta, supportsCumulative: false,
        source: "keras.layers.BatchNormalization docs: moving = moving·momentum + batch·(1 − momentum), momentum=0.99, epsilon=0.001")
    public static let tfFused = ConventionProfile(
        name: "tf-fused", momentumWeighting: .batch, defaultMomentum: 1.0, defaultEps: 1e-3,
        runningVariance: .unbiased, singleValue: .beta, supportsCumulative: false,
        source: "tf.compat.v1.nn.fused_batch_norm docs: epsilon=0.001, exponential_avg_factor=1.0; the op's batch_variance is Bessel-corrected")
    public static let onnx = ConventionProfile(
        name: "onnx", momentumWeighting: .running, defaultMomentum: 0.9, defaultEps: 1e-5,
        runningVariance: .biased, singleValue: .beta, supportsCumulative: false,
        source: "ONNX BatchNormalization-15: running = input·momentum + current·(1 − momentum); ReduceVar is the population variance")
    public static let flax = ConventionProfile(
        name: "flax", momentumWeighting: .running, defaultMomentum: 0.99, defaultEps: 1e-5,
        runningVariance: .biased, singleValue: .beta, supportsCumulative: false,
        source: "flax.linen.BatchNorm docs: momentum=0.99 (decay of the moving average), epsilon=1e-5")
    public static let mlx = ConventionProfile(
        name: "mlx", momentumWeighting: .batch, defaultMomentum: 0.1, defaultEps: 1e-5,
        runningVariance: .unbiased, singleValue: .error, supportsCumulative: false,
        source: "mlx.nn.BatchNorm 0.32.4 source: eps=1e-5, momentum=0.1; running = (1 − momentum)·running + momentum·batch; running var from _calc_stats(x, ddof=1) (unbiased); training with one value per channel raises ValueError (corrected by the MLX audit)")

    /// Every built-in profile, in the order SPEC.md lists them.
    public static let all: [ConventionProfile] = [.paper, .pytorch, .keras, .tfFused, .onnx, .flax, .mlx]

    public static func named(_ name: String) throws -> ConventionProfile {
        guard let p = all.first(where: { $0.name == name.lowercased() }) else {
            throw BNError.invalidArgument(
                "unknown profile '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
        }
        return p
    }
}

/// The running-statistics update rule for one step, fully explicit.
///
/// The batch weight w is what every update uses (``batchWeight(step:)``); `momentum` is the same
/// weight as the profile's user writes it, kept for reports and for the calibration mutant that
/// plugs it into the other convention.
public struct RunningUpdateRule: Codable, Hashable, Sendable {
    public var weighting: MomentumWeighting
    /// Momentum in `weighting`'s convention; `nil` selects the cumulative average (factor 1/k at step k).
    public var momentum: Double?
    /// The weight w of the batch statistic; `nil` selects the cumulative average.
    public var batchWeight: Double?
    public var estimator: VarianceEstimator
    public var singleValue: SingleValuePolicy

    /// A rule from a momentum in `weighting`'s convention: w = `weighting.batchWeight(momentum: m)`.
    public init(weighting: MomentumWeighting, momentum: Double?, estimator: VarianceEstimator,
                singleValue: SingleValuePolicy) throws {
        try self.init(weighting: weighting, momentum: momentum, batchWeight: momentum.map(weighting.batchWeight(momentum:)),
                      estimator: estimator, singleValue: singleValue)
    }

    /// A rule with both numbers given: w (used by the update) and the momentum that names it in
    /// `weighting`'s convention. Both must be in [0, 1] and both nil or both set.
    public init(weighting: MomentumWeighting, momentum: Double?, batchWeight: Double?, estimator: VarianceEstimator,
                singleValue: SingleValuePolicy) throws {
        for v in [momentum, batchWeight].compactMap({ $0 }) where !(v >= 0 && v <= 1) {
            throw BNError.invalidArgument("momentum \(v) is outside [0, 1]")
        }
        guard (momentum == nil) == (batchWeight == nil) else {
            throw BNError.invalidArgument("a momentum and a batch weight are both given or both absent (cumulative)")
        }
        self.weighting = weighting; self.momentum = momentum; self.batchWeight = batchWeight
        self.estimator = estimator; self.singleValue = singleValue
    }

    /// The profile's rule with its default momentum, or an explicit one.
    public init(profile: ConventionProfile, momentum: Double?? = .none) throws {
        let m: Double? = momentum ?? profile.defaultMomentum
        try self.init(weighting: profile.momentumWeighting, momentum: m,
                      estimator: profile.runningVariance, singleValue: profile.singleValue)
    }

    /// Weight of the batch statistic at step `k` (1-based): w, or 1/k for the cumulative average.
    public func batchWeight(step k: Int) -> Double {
        batchWeight ?? 1 / Double(k)
    }
}
