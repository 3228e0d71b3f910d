import BNCore
import BNReference
import Foundation

/// Turns catalog cases into golden files: inputs from the data families, expected
/// outputs from the Double reference, a case JSON, and a manifest of SHA-256 hashes.
///
/// Everything here is a pure function of the case spec, so `generate` is
/// byte-identical on rerun and `generate --check` can compare bytes.
public enum Generator {
    /// The inputs of a case, in the dtypes an implementation receives.
    public static func inputs(_ spec: CaseSpec) throws -> [String: NPYArray] {
        let s = try spec.shapeValue()
        let dims = spec.layout.storageDimensions(s)
        let pd = spec.parameterDType, C = s.channels
        var out: [String: NPYArray] = [:]
        let (g, b) = DataFamily.parameters(channels: C, seed: "\(spec.id)/params", dtype: pd)
        out["gamma"] = NPYArray(dtype: pd, shape: [C], values: g)
        out["beta"] = NPYArray(dtype: pd, shape: [C], values: b)
        func data(_ stream: String) throws -> [Double] {
            try DataFamily.fill(spec.data, shape: s, layout: spec.layout, dtype: spec.dtype, seed: "\(spec.id)/\(stream)")
        }
        let x = try data("x")
        switch spec.op {
        case .trajectory:
            var all: [Double] = []
            for k in 0..<spec.steps { all += k == 0 ? x : try data("x\(k)") }
            out["x"] = NPYArray(dtype: spec.dtype, shape: [spec.steps] + dims, values: all)
            out["x_eval"] = NPYArray(dtype: spec.dtype, shape: dims, values: try data("x_eval"))
        default:
            out["x"] = NPYArray(dtype: spec.dtype, shape: dims, values: x)
        }
        if spec.op == .train || spec.op == .trajectory {
            let (m, v) = DataFamily.runningStatistics(channels: C, seed: "\(spec.id)/running", dtype: pd)
            out["running_mean"] = NPYArray(dtype: pd, shape: [C], values: m)
            out["running_var"] = NPYArray(dtype: pd, shape: [C], values: v)
        }
        if spec.op == .infer || spec.op == .backwardInfer {
            // Global statistics near the data's own: μ + 0.1·σ·N(0,1), σ²·U[0.5, 1.5).
            let ms = try Reference.moments(x, shape: s, layout: spec.layout)
            var r = SpecRandom("\(spec.id)/global")
            let mean = ms.map { m -> Double in
                let sd = m.biasedVariance.squareRoot()
                return pd.quantize(m.mean + 0.1 * (sd.isFinite ? sd : 0) * r.normal())
            }
            let variance = ms.map { pd.quantize($0.biasedVariance * (0.5 + r.uniform())) }
            out["mean"] = NPYArray(dtype: pd, shape: [C], values: mean)
            out["var"] = NPYArray(dtype: pd, shape: [C], values: variance)
        }
        if spec.op == .backwardTrain || spec.op == .backwardInfer {
            var r = SpecRandom("\(spec.id)/dy")
            out["dy"] = NPYArray(dtype: spec.dtype, shape: dims, values: (0..<s.elementCount).map { _ in spec.dtype.quantize(r.normal()) })
        }
        return out
    }

    /// The reference's outputs for a case (float64), keyed by output name.
    /// A case whose profile must refuse it has no outputs.
    public static func expected(_ spec: CaseSpec, _ inputs: [String: NPYArray]) throws -> [String: NPYArray] {
        if spec.expectError != nil { return [:] }
        let s = try spec.shapeValue()
        let C = s.channels, dims = spec.layout.storageDimensions(s)
        func v(_ k: String) throws -> [Double] {
            guard let a = inputs[k] else { throw BNError.corrupt(path: spec.id, reason: "missing input '\(k)'") }
            return a.values
        }
        func arr(_ values: [Double], _ shape: [Int]) -> NPYArray { NPYArray(dtype: .f64, shape: shape, values: values) }
        let profile = try spec.profileValue()
        switch spec.op {
        case .train:
            let (f, next) = try Reference.trainingStep(
                try v("x"), shape: s, layout: spec.layout, gamma: try v("gamma"), beta: try v("beta"), eps: spec.eps,
                running: RunningStatistics(mean: try v("running_mean"), variance: try v("running_var")),
                rule: try spec.rule(), profileName: profile.name)
            return ["y": arr(f.y, dims), "batch_mean": arr(f.mean, [C]), "batch_var": arr(f.variance, [C]),
                    "running_mean": arr(next.mean, [C]), "running_var": arr(next.variance, [C])]
        case .infer:
            let y = try Reference.inferenceForward(try v("x"), shape: s, layout: spec.layout, mean: try v("mean"),
                                                   variance: try v("var"), gamma: try v("gamma"), beta: try v("beta"), eps: spec.eps)
            return ["y": arr(y, dims)]
        case .backwardTrain:
            let g = try Reference.trainingBackward(try v("x"), dy: try v("dy"), shape: s, layout: spec.layout,
                                                   gamma: try v("gamma"), eps: spec.eps)
            return ["dx": arr(g.dx, dims), "dgamma": arr(g.dGamma, [C]), "dbeta": arr(g.dBeta, [C])]
        case .backwardInfer:
            let g = try Reference.inferenceBackward(try v("x"), dy: try v("dy"), shape: s, layout: spec.layout,
                                                    gamma: try v("gamma"), mean: try v("mean"), variance: try v("var"), eps: spec.eps)
            return ["dx": arr(g.dx, dims), "dgamma": arr(g.dGamma, [C]), "dbeta": arr(g.dBeta, [C])]
        case .trajectory:
            let xs = try v("x"), per = s.elementCount
            var running = RunningStatistics(mean: try v("running_mean"), variance: try v("running_var"))
            var means: [Double] = [], vars: [Double] = []
            for k in 0..<spec.steps {
                let (_, next) = try Reference.trainingStep(
                    Array(xs[(k * per)..<((k + 1) * per)]), shape: s, layout: spec.layout, gamma: try v("gamma"),
                    beta: try v("beta"), eps: spec.eps, running: running, rule: try spec.rule(), profileName: profile.name)
                running = next
                means += next.mean; vars += next.variance
            }
            let y = try Reference.inferenceForward(try v("x_eval"), shape: s, layout: spec.layout, mean: running.mean,
                                                   variance: running.variance, gamma: try v("gamma"), beta: try v("beta"), eps: spec.eps)
            return ["running_mean": arr(means, [spec.steps, C]), "running_var": arr(vars, [spec.steps, C]), "y_eval": arr(y, dims)]
        }
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// Every file of one case, relative to the case folder.
    public static func caseFiles(_ spec: CaseSpec) throws -> [String: Data] {
        let ins = try inputs(spec)
        var files: [String: Data] = [:]
        for (name, file) in spec.inputs {
            guard let a = ins[name] else { throw BNError.corrupt(path: spec.id, reason: "no generator for input '\(name)'") }
            files[file] = a.encoded()
        }
        let outs = try expected(spec, ins)
        for (name, file) in spec.outputs {
            guard let a = outs[name] else { throw BNError.corrupt(path: spec.id, reason: "no reference output '\(name)'") }
            files[file] = a.encoded()
        }
        files["case.json"] = try encoder().encode(spec) + Data("\n".utf8)
        return files
    }

    /// Every file of a suite, relative to the golden folder, including manifest.json.
    public static func suiteFiles(_ cases: [CaseSpec], suite: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for spec in cases {
            for (name, data) in try caseFiles(spec) { files["\(spec.id)/\(name)"] = data }
        }
        let manifest = Manifest(format: 1, suite: suite, generator: "bnspec generate --suite \(suite)",
                                cases: cases.map(\.id),
                                files: files.mapValues { SHA256.hex($0) })
        files[Manifest.fileName] = try encoder().encode(manifest) + Data("\n".utf8)
        return files
    }
}

/// golden/manifest.json: the case list and the SHA-256 of every file.
public struct Manifest: Codable, Sendable {
    public static let fileName = "manifest.json"
    public var format: Int
    public var suite: String
    public var generator: String
    public var cases: [String]
    /// Path relative to the golden folder → SHA-256 (hex).
    public var files: [String: String]
}
