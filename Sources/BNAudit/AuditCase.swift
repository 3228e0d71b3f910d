import BNCore
import BNGolden
import Foundation

/// A golden case re-targeted at the convention profile under audit
/// (``BNGolden/GoldenStore/LoadedCase/retargeted(to:)``): same inputs, the case's eps and batch
/// weight w, expected outputs under the audited profile's conventions (running-variance
/// estimator, single-value policy) — the golden files themselves when those agree.
/// spec/AUDIT.md §1. Its data are analysed once (``analysis``) for the tolerance, the
/// diagnosis and the report's condition figure.
public struct AuditCase: Sendable {
    public var golden: GoldenStore.LoadedCase
    public var loaded: GoldenStore.LoadedCase
    public var goldenID: String { golden.spec.id }
    /// The case's data analysis; nil when the inputs cannot be analysed (the judge then reports why).
    public var analysis: CaseAnalysis?
    /// Weight of the batch statistic in the running update, nil for the cumulative average:
    /// the w the reference used, sent to the adapter as is.
    public var batchWeight: Double? { loaded.spec.batchWeight }

    public init(_ golden: GoldenStore.LoadedCase, profile: ConventionProfile) throws {
        self.golden = golden
        loaded = try golden.retargeted(to: profile)
        analysis = try? CaseAnalysis(loaded)
    }

    /// The tolerance budget of the re-targeted case.
    public func budget() throws -> ToleranceBudget { try ToleranceBudget(loaded, analysis: analysis) }

    /// The JSON request of the adapter protocol (spec/AUDIT.md §3) for inputs in `inputDir`.
    public func request(inputDir: URL, outputDir: URL, profile: ConventionProfile) -> [String: Any] {
        let s = loaded.spec
        var inputs: [String: String] = [:]
        for (k, f) in s.inputs { inputs[k] = inputDir.appendingPathComponent(f).path }
        var dtypes: [String: String] = [:]
        for a in s.op.arrays where a.role == .input || s.outputs[a.name] != nil { dtypes[a.name] = a.dtype(in: s).rawValue }
        var request: [String: Any] = [
            "type": "case", "id": goldenID, "op": s.op.rawValue, "shape": s.shape, "layout": s.layout.rawValue,
            "dtype": s.dtype.rawValue, "parameter_dtype": s.parameterDType.rawValue, "eps": s.eps,
            "batch_weight": batchWeight as Any? ?? NSNull(), "cumulative": batchWeight == nil, "step": 1, "steps": s.steps,
            "momentum": s.momentum as Any? ?? NSNull(), "momentum_weighting": profile.momentumWeighting.rawValue,
            "variance_estimator": profile.runningVariance.rawValue, "single_value": profile.singleValue.rawValue,
            "profile": profile.name, "expect_error": s.expectError as Any? ?? NSNull(),
            "inputs": inputs, "outputs": s.outputs.keys.sorted(), "dtypes": dtypes, "output_dir": outputDir.path,
        ]
        // Synchronized BN (spec/AUDIT.md §3.1): samples per rank, and where dγ/dβ are summed.
        if let p = s.partition { request["partition"] = p }
        if let r = s.gradReduction { request["grad_reduction"] = r.rawValue }
        return request
    }

    /// Outputs the audit requires (``BNGolden/ArraySpec/requiredInAudit``; the others are judged
    /// when the adapter returns them).
    public var requiredOutputs: Set<String> {
        Set(loaded.spec.op.outputs.filter(\.requiredInAudit).map(\.name))
    }
}
