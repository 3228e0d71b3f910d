import BNCore

/// One golden case: everything needed to regenerate its inputs and to judge an
/// implementation's outputs. Serialised as `case.json` in the case's folder.
public struct CaseSpec: Codable, Hashable, Sendable {
    public var id: String
    public var op: Operation
    /// Logical dimensions N, C, spatial… (the layout says how they are stored).
    public var shape: [Int]
    public var layout: Layout
    /// Storage type of x, dy and y; parameters and running statistics are float32
    /// (float64 for float64 cases).
    public var dtype: DType
    /// Data family (spec/SPEC.md §6), e.g. `normal`, `offset:1e4`, `nist:NumAcc3`.
    public var data: String
    public var profile: String
    public var eps: Double
    /// Momentum in the profile's own convention; `nil` = cumulative average. Written to case.json;
    /// the update itself uses ``batchWeight``.
    public var momentum: Double?
    /// The weight w of the batch statistic in the running update (SPEC §2), the canonical quantity:
    /// the reference, the kernels and the tolerance use it. Not in case.json: read, it is `momentum`
    /// converted by ``BNCore/MomentumWeighting/batchWeight(momentum:)``; a re-targeted case keeps its
    /// source's w (``retargeted(to:)``). `nil` = cumulative average.
    public var batchWeight: Double?
    /// Training steps (trajectory cases; an epoch's batches); 1 otherwise.
    public var steps: Int
    /// Set when the profile must refuse this case (e.g. n = 1 under `pytorch`).
    public var expectError: String?
    /// Synchronized operations: samples per rank along N, in rank order (spec/SPEC.md §11.1;
    /// ``BNCore/BatchPartition``); an epoch: samples per batch, in step order (spec/SPEC.md §2);
    /// nil for the others. case.json key `partition`.
    public var partition: [Int]?
    /// sync-backward: where dγ and dβ are summed — per rank (`local`, [K, C]) or over the global
    /// batch (`global`, [C]) (spec/SPEC.md §11.3); nil for the others. case.json key
    /// `grad_reduction`. A property of the case, not of a profile: it says which sums are asked
    /// for, and re-targeting keeps it (spec/SPEC.md §11.3).
    public var gradReduction: GradientReduction?
    /// Input and output arrays: logical name → file name in the case folder.
    public var inputs: [String: String]
    public var outputs: [String: String]
    /// What the tolerance model needs beyond the arrays.
    public var tolerance: ToleranceInfo
    /// The command that reruns just this case.
    public var repro: String

    public struct ToleranceInfo: Codable, Hashable, Sendable {
        public var model: String
        public var computeRoundoff: Double
        public var storageRoundoff: Double
        /// The data are built so that any summation order gives exact statistics.
        public var exactStatistics: Bool
    }

    public func shapeValue() throws -> Shape {
        guard shape.count >= 2 else { throw BNError.invalidArgument("case \(id): shape needs at least N and C") }
        return try Shape(batch: shape[0], channels: shape[1], spatial: Array(shape.dropFirst(2)))
    }

    /// A golden case's shape (SPEC §6.3): at least one value per channel (an empty channel
    /// has no batch statistics) and at most ``NPYArray/maxElements`` elements, counting all
    /// `steps` batches of a trajectory (they are stacked in one array).
    public static func checkCaseLimits(_ shape: Shape, steps: Int = 1) throws {
        guard shape.perChannelCount > 0 else {
            throw BNError.invalidArgument("shape \(shape) has no elements per channel (N × spatial = 0): batch statistics are undefined")
        }
        guard shape.elementCount <= NPYArray.maxElements else {
            throw BNError.invalidArgument("shape \(shape) has \(shape.elementCount) elements; a golden case holds at most \(NPYArray.maxElements) (SPEC §6.3)")
        }
        guard steps <= NPYArray.maxElements / shape.elementCount else {
            throw BNError.invalidArgument("\(steps) steps of shape \(shape) stack more than \(NPYArray.maxElements) elements (SPEC §6.3)")
        }
    }

    public func profileValue() throws -> ConventionProfile { try ConventionProfile.named(profile) }

    /// The partition of a synchronized case (nil for the others), checked against the shape.
    public func partitionValue() throws -> BatchPartition? {
        guard let counts = partition else { return nil }
        let p = try BatchPartition(counts: counts)
        try p.validate(for: try shapeValue())
        return p
    }

    /// Rows of the dγ/dβ outputs (``ArraySpec/Extent/gradientRows``): K under a local gradient
    /// reduction, else 1.
    public var gradientRows: Int { gradReduction == .local ? max(partition?.count ?? 1, 1) : 1 }

    /// The most ranks a synchronized case may have (a partition is one line of case.json).
    public static let maxRanks = 1024

    /// A synchronized operation's partition and reduction (spec/SPEC.md §11.1): a partition whose
    /// counts (≥ 0) add up to N over 1…``maxRanks`` ranks, and a gradient reduction exactly when
    /// the operation returns dγ/dβ rows; neither for other operations.
    func validateSynchronization() throws {
        let wantsReduction = op.outputs.contains { $0.extent == .gradientRows }
        guard op.hasPartition else {
            guard partition == nil, gradReduction == nil else {
                throw BNError.invalidArgument("partition and grad_reduction apply to sync-train, sync-backward and epoch only, not to \(op.rawValue)")
            }
            return
        }
        if op == .epoch {
            guard let counts = partition else { throw BNError.invalidArgument("an epoch case needs its batches (partition)") }
            guard gradReduction == nil else { throw BNError.invalidArgument("grad_reduction applies to sync-backward only") }
            let p = try BatchPartition(counts: counts)
            try Self.checkEpoch(p, shape: try shapeValue())
            guard steps == counts.count else {
                throw BNError.invalidArgument("an epoch of \(counts.count) batches has steps \(counts.count), not \(steps)")
            }
            return
        }
        guard let counts = partition else { throw BNError.invalidArgument("a \(op.rawValue) case needs a partition") }
        guard (1...Self.maxRanks).contains(counts.count) else {
            throw BNError.invalidArgument("a partition has 1…\(Self.maxRanks) ranks, this one \(counts.count)")
        }
        _ = try partitionValue()
        guard (gradReduction != nil) == wantsReduction else {
            throw BNError.invalidArgument(wantsReduction ? "a \(op.rawValue) case needs a grad_reduction (local or global)"
                                                         : "grad_reduction applies to sync-backward only")
        }
    }

    /// An epoch's batches (spec/SPEC.md §2): 1…1000 of them, adding up to N, each with at
    /// least two values per channel (a training step on one value per channel is each
    /// profile's single-value policy, which train cases test).
    public static func checkEpoch(_ batches: BatchPartition, shape: Shape) throws {
        guard (1...1000).contains(batches.ranks) else {
            throw BNError.invalidArgument("an epoch has 1…1000 batches, this one \(batches.ranks)")
        }
        try batches.validate(for: shape)
        guard batches.counts.allSatisfy({ $0 * shape.spatialSize >= 2 }) else {
            throw BNError.invalidArgument("every batch of an epoch needs at least two values per channel (batches \(batches), spatial size \(shape.spatialSize))")
        }
    }

    /// Checks the fields a decoder cannot: a valid shape within the limits of
    /// ``checkCaseLimits(_:)``, a known profile and data family, eps finite and ≥ 0,
    /// momentum in [0, 1], steps in 1…1000.
    public func validate() throws {
        try Self.checkCaseLimits(try shapeValue(), steps: op.stacksSteps ? max(steps, 1) : 1)
        _ = try profileValue()
        try DataFamily.validate(data, dtype: dtype)
        try DataFamily.validate(data, for: op)
        guard eps.isFinite, eps >= 0 else { throw BNError.invalidArgument("eps \(eps) must be finite and ≥ 0") }
        if let m = momentum, !(m >= 0 && m <= 1) { throw BNError.invalidArgument("momentum \(m) is outside [0, 1]") }
        if let w = batchWeight, !(w >= 0 && w <= 1) { throw BNError.invalidArgument("batch weight \(w) is outside [0, 1]") }
        guard (1...1000).contains(steps) else { throw BNError.invalidArgument("steps \(steps) must be in 1…1000") }
        try validateSynchronization()
    }

    /// The running-update rule: the profile's conventions with this case's w (and momentum).
    public func rule() throws -> RunningUpdateRule {
        let p = try profileValue()
        return try RunningUpdateRule(weighting: p.momentumWeighting, momentum: momentum, batchWeight: batchWeight,
                                     estimator: p.runningVariance, singleValue: p.singleValue)
    }

    /// Dtype of parameter arrays (gamma, beta, running statistics).
    public var parameterDType: DType { dtype == .f64 ? .f64 : .f32 }

    /// The case family used to group results in reports: `op/data-family`.
    public var family: String {
        return "\(op.rawValue)/\(DataFamily.split(data)[0])" + (dtype == .f32 || dtype == .f64 ? "" : "/\(dtype.short)")
    }

    enum CodingKeys: String, CodingKey {
        case id, op, shape, layout, dtype, data, profile, eps, momentum, steps
        case expectError = "expect_error", inputs, outputs, tolerance, repro
        case partition, gradReduction = "grad_reduction"
    }
}

extension CaseSpec {
    /// Decodes case.json; ``batchWeight`` is the momentum converted under the profile's convention
    /// (the momentum itself when the profile is unknown: ``validate()`` then refuses the case).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        op = try c.decode(Operation.self, forKey: .op)
        shape = try c.decode([Int].self, forKey: .shape)
        layout = try c.decode(Layout.self, forKey: .layout)
        dtype = try c.decode(DType.self, forKey: .dtype)
        data = try c.decode(String.self, forKey: .data)
        profile = try c.decode(String.self, forKey: .profile)
        eps = try c.decode(Double.self, forKey: .eps)
        momentum = try c.decodeIfPresent(Double.self, forKey: .momentum)
        steps = try c.decode(Int.self, forKey: .steps)
        expectError = try c.decodeIfPresent(String.self, forKey: .expectError)
        inputs = try c.decode([String: String].self, forKey: .inputs)
        outputs = try c.decode([String: String].self, forKey: .outputs)
        tolerance = try c.decode(ToleranceInfo.self, forKey: .tolerance)
        repro = try c.decode(String.self, forKey: .repro)
        partition = try c.decodeIfPresent([Int].self, forKey: .partition)
        gradReduction = try c.decodeIfPresent(GradientReduction.self, forKey: .gradReduction)
        let weighting = (try? ConventionProfile.named(profile))?.momentumWeighting ?? .batch
        batchWeight = momentum.map(weighting.batchWeight(momentum:))
    }

    /// A case from typed values: the arrays (case.json's `inputs`/`outputs`) from the operation's
    /// table, the refusal the profile's single-value policy requires, the tolerance information.
    /// `momentum` is w in the profile's convention (derived from w when not given). `partition` and
    /// `gradReduction`: a synchronized operation's (spec/SPEC.md §11), nil otherwise.
    /// The caller checks the values (``Catalog/makeCase(_:_:)`` parses and checks catalog text).
    public init(id: String, op: Operation, shape: Shape, layout: Layout, dtype: DType, data: String,
                profile: ConventionProfile, eps: Double, batchWeight: Double?, momentum: Double? = nil, steps: Int,
                partition: BatchPartition? = nil, gradReduction: GradientReduction? = nil, repro: String) {
        let expectError: String? = op.updatesRunningStatistics && shape.perChannelCount == 1 && profile.singleValue == .error
            ? "single_value_per_channel" : nil
        var inputs: [String: String] = [:], outputs: [String: String] = [:]
        for a in op.inputs { inputs[a.name] = a.file }
        if expectError == nil { for a in op.outputs { outputs[a.name] = a.file } }
        self.init(id: id, op: op, shape: shape.dimensions, layout: layout, dtype: dtype, data: data, profile: profile.name,
                  eps: eps, momentum: momentum ?? batchWeight.map(profile.momentumWeighting.momentum(batchWeight:)),
                  batchWeight: batchWeight, steps: op.hasSteps ? steps : 1, expectError: expectError,
                  partition: partition?.counts, gradReduction: gradReduction, inputs: inputs, outputs: outputs,
                  tolerance: .init(model: ToleranceModel.name, computeRoundoff: dtype.computeRoundoff,
                                   storageRoundoff: dtype.storageRoundoff, exactStatistics: data == "exact"),
                  repro: repro)
    }
}

extension CaseSpec.ToleranceInfo {
    enum CodingKeys: String, CodingKey {
        case model, computeRoundoff = "compute_roundoff", storageRoundoff = "storage_roundoff"
        case exactStatistics = "exact_statistics"
    }
}

extension CaseSpec {
    /// The id a case of these parameters has (its folder's name):
    /// `op.data.shape.layout.dtype.profile.epsE.mM` (`mcum`: the cumulative average), then `.kSTEPS`
    /// (trajectories), `.pPARTITION` and `.REDUCTION` (synchronized cases).
    public static func canonicalID(op: Operation, data: String, shape: String, layout: Layout, dtype: DType, profile: String,
                                   eps: Double, momentum: Double?, steps: Int, partition: String?, reduction: GradientReduction?) -> String {
        var id = [op.rawValue, data.replacingOccurrences(of: ":", with: "-"), shape, layout.rawValue, dtype.short, profile, "eps\(eps)",
                  momentum.map { "m\($0)" } ?? "mcum"].joined(separator: ".")
        if op.hasSteps { id += ".k\(steps)" }
        if let p = partition { id += ".p\(p)" }
        if let r = reduction { id += ".\(r.rawValue)" }
        return id
    }

    /// The id case.json's parameters give: a case.json whose eps, momentum, data… contradict its
    /// id (and folder) is corrupt (an outside red team's edited eps, manifest re-hashed, had
    /// its reference column fail in verify and the implementation blamed in audit).
    public var parametersID: String? {
        guard let s = try? shapeValue() else { return nil }
        return Self.canonicalID(op: op, data: data, shape: s.description, layout: layout, dtype: dtype, profile: profile, eps: eps,
                                momentum: momentum, steps: steps, partition: partition?.map(String.init).joined(separator: "+"),
                                reduction: gradReduction)
    }
}
