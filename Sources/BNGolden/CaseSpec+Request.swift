import BNCore

/// The case request of the adapter protocol `bnspec-adapter/1` (spec/AUDIT.md §3): what an
/// implementation must compute for one case under one profile, conventions resolved. The audit
/// sends it to an adapter, `bnspec export` writes it as `<case>/request.json`, and every golden
/// case carries its own (its profile, paths relative to the case folder) so the golden vectors
/// can be used without bnspec.
///
/// Encoded with every key present: a value the profile leaves to the implementation (no
/// momentum, no expected refusal) is `null`, never absent; only `partition` and `grad_reduction`
/// appear for synchronized cases alone.
public struct CaseRequest: Encodable, Sendable, Equatable {
    public var id: String
    public var op: String
    /// Logical [N, C, spatial…].
    public var shape: [Int]
    public var layout: String
    public var dtype: String
    public var parameterDType: String
    public var eps: Double
    /// w in R' = (1 − w)·R + w·b; nil for the cumulative average (then `cumulative` is true).
    public var batchWeight: Double?
    public var steps: Int
    public var momentum: Double?
    public var momentumWeighting: String
    public var varianceEstimator: String
    public var singleValue: String
    public var profile: String
    public var expectError: String?
    /// Input name → NPY path.
    public var inputs: [String: String]
    /// The outputs to write, by name (each as `<output_dir>/<name>.npy`).
    public var outputs: [String]
    /// Array name → the dtype it arrives or must be returned in (inputs, and the case's outputs).
    public var dtypes: [String: String]
    public var outputDir: String
    /// Synchronized BN (spec/AUDIT.md §3.1): samples per rank, and where dγ/dβ are summed
    /// ("local" or "global"); absent from the requests of the other operations.
    public var partition: [Int]? = nil
    public var gradReduction: String? = nil

    enum CodingKeys: String, CodingKey {
        case type, id, op, shape, layout, dtype, parameterDType = "parameter_dtype", eps, batchWeight = "batch_weight", cumulative
        case step, steps, momentum, momentumWeighting = "momentum_weighting", varianceEstimator = "variance_estimator"
        case singleValue = "single_value", profile, expectError = "expect_error", inputs, outputs, dtypes, outputDir = "output_dir"
        case partition, gradReduction = "grad_reduction"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("case", forKey: .type); try c.encode(id, forKey: .id); try c.encode(op, forKey: .op)
        try c.encode(shape, forKey: .shape); try c.encode(layout, forKey: .layout); try c.encode(dtype, forKey: .dtype)
        try c.encode(parameterDType, forKey: .parameterDType); try c.encode(eps, forKey: .eps)
        if let w = batchWeight { try c.encode(w, forKey: .batchWeight) } else { try c.encodeNil(forKey: .batchWeight) }
        try c.encode(batchWeight == nil, forKey: .cumulative); try c.encode(1, forKey: .step); try c.encode(steps, forKey: .steps)
        if let m = momentum { try c.encode(m, forKey: .momentum) } else { try c.encodeNil(forKey: .momentum) }
        try c.encode(momentumWeighting, forKey: .momentumWeighting); try c.encode(varianceEstimator, forKey: .varianceEstimator)
        try c.encode(singleValue, forKey: .singleValue); try c.encode(profile, forKey: .profile)
        if let e = expectError { try c.encode(e, forKey: .expectError) } else { try c.encodeNil(forKey: .expectError) }
        try c.encode(inputs, forKey: .inputs); try c.encode(outputs, forKey: .outputs); try c.encode(dtypes, forKey: .dtypes)
        try c.encode(outputDir, forKey: .outputDir)
        try c.encodeIfPresent(partition, forKey: .partition); try c.encodeIfPresent(gradReduction, forKey: .gradReduction)
    }
}

extension CaseSpec {
    /// This case's request under `profile`'s conventions (the case should be re-targeted at it:
    /// ``retargeted(to:)``). `inputs`: input name → path; `outputDir`: where outputs go.
    public func request(profile: ConventionProfile, inputs: [String: String], outputDir: String) -> CaseRequest {
        var dtypes: [String: String] = [:]
        for a in op.arrays where a.role == .input || outputs[a.name] != nil { dtypes[a.name] = a.dtype(in: self).rawValue }
        return CaseRequest(id: id, op: op.rawValue, shape: shape, layout: layout.rawValue, dtype: dtype.rawValue,
                           parameterDType: parameterDType.rawValue, eps: eps, batchWeight: batchWeight, steps: steps,
                           momentum: momentum, momentumWeighting: profile.momentumWeighting.rawValue,
                           varianceEstimator: profile.runningVariance.rawValue, singleValue: profile.singleValue.rawValue,
                           profile: profile.name, expectError: expectError, inputs: inputs, outputs: outputs.keys.sorted(),
                           dtypes: dtypes, outputDir: outputDir, partition: partition, gradReduction: gradReduction?.rawValue)
    }

    /// The request as `bnspec export` and golden/ write it: input paths relative to the case
    /// folder (the file names of case.json), outputs to `results/<id>` (relative to the folder
    /// holding the case folders).
    public func fileRequest(profile: ConventionProfile) -> CaseRequest {
        request(profile: profile, inputs: inputs, outputDir: "results/\(id)")
    }
}
