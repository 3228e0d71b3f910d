import BNCore
import BNGolden
import Foundation

/// A golden case re-targeted at the convention profile under audit: same inputs, the
/// case's eps and batch weight, expected outputs recomputed by the reference under the
/// audited profile's conventions (momentum direction, running-variance estimator,
/// single-value policy). spec/AUDIT.md §2.
public struct AuditCase: Sendable {
    public var golden: GoldenStore.LoadedCase
    public var loaded: GoldenStore.LoadedCase
    public var goldenID: String { golden.spec.id }
    /// Weight of the batch statistic in the running update, nil for the cumulative average.
    public var batchWeight: Double?

    public init(_ golden: GoldenStore.LoadedCase, profile: ConventionProfile) throws {
        self.golden = golden
        let g = golden.spec
        let w: Double? = try g.momentum.map { _ in try g.rule().batchWeight(step: 1) }
        batchWeight = w
        let m: String = w.map { "\(profile.momentumWeighting == .batch ? $0 : 1 - $0)" } ?? "cumulative"
        var fields = ["shape": g.shape.map(String.init).joined(separator: "x"), "layout": g.layout.rawValue, "dtype": g.dtype.short,
                      "data": g.data, "profile": profile.name, "eps": "\(g.eps)", "momentum": m]
        if g.op == .trajectory { fields["steps"] = "\(g.steps)" }
        var spec = try Catalog.makeCase(g.op, fields)
        spec.id = g.id
        spec.repro = ""
        loaded = GoldenStore.LoadedCase(spec: spec, inputs: golden.inputs, expected: try Generator.expected(spec, golden.inputs))
    }

    /// The JSON request of the adapter protocol (spec/AUDIT.md §3) for inputs in `inputDir`.
    public func request(inputDir: URL, outputDir: URL, profile: ConventionProfile) -> [String: Any] {
        let s = loaded.spec
        var inputs: [String: String] = [:]
        for (k, f) in s.inputs { inputs[k] = inputDir.appendingPathComponent(f).path }
        return [
            "type": "case", "id": goldenID, "op": s.op.rawValue, "shape": s.shape, "layout": s.layout.rawValue,
            "dtype": s.dtype.rawValue, "parameter_dtype": s.parameterDType.rawValue, "eps": s.eps,
            "batch_weight": batchWeight as Any? ?? NSNull(), "cumulative": batchWeight == nil, "step": 1, "steps": s.steps,
            "momentum": s.momentum as Any? ?? NSNull(), "momentum_weighting": profile.momentumWeighting.rawValue,
            "variance_estimator": profile.runningVariance.rawValue, "single_value": profile.singleValue.rawValue,
            "profile": profile.name, "expect_error": s.expectError as Any? ?? NSNull(),
            "inputs": inputs, "outputs": s.outputs.keys.sorted(), "output_dir": outputDir.path,
        ]
    }

    /// Outputs the audit requires (the others are judged when the adapter returns them).
    public var requiredOutputs: Set<String> {
        switch loaded.spec.op {
        case .train: ["y", "running_mean", "running_var"]
        case .infer: ["y"]
        case .backwardTrain, .backwardInfer: ["dx", "dgamma", "dbeta"]
        case .trajectory: ["running_mean", "running_var", "y_eval"]
        }
    }
}
