import BNCore
import BNGolden
import BNKernels
import Foundation

/// Outputs recorded by someone else's implementation, replayed as a kernel so the
/// tolerance model can judge them (the file-based way into an audit).
public struct RecordedKernel: BatchNormKernel {
    public let name: String
    public let outputs: [String: [Double]]
    public var role: KernelRole { .implementation }
    public var dtypes: Set<DType> { Set(DType.allCases) }
    public init(name: String, outputs: [String: [Double]]) { self.name = name; self.outputs = outputs }

    func o(_ k: String) throws -> [Double] {
        guard let v = outputs[k] else { throw BNError.invalidArgument("\(name) recorded no output '\(k)'") }
        return v
    }
    public func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        TrainingOutput(y: try o("y"), batchMean: outputs["batch_mean"] ?? [], batchVariance: outputs["batch_var"] ?? [],
                       runningMean: try o("running_mean"), runningVariance: try o("running_var"))
    }
    public func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      mean: [Double], variance: [Double]) throws -> [Double] { try o("y") }
    public func backwardTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double) throws -> GradientOutput {
        GradientOutput(dx: try o("dx"), dGamma: try o("dgamma"), dBeta: try o("dbeta"))
    }
    public func backwardInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double, mean: [Double], variance: [Double]) throws -> GradientOutput {
        GradientOutput(dx: try o("dx"), dGamma: try o("dgamma"), dBeta: try o("dbeta"))
    }
}

/// Peer test data converted by tools/onnx_to_bnspec.py (spec/peers/onnx/<name>/).
public enum PeerData {
    struct Meta: Decodable { var name: String; var op: String; var shape: [Int]; var eps: Double; var momentum: Double; var outputs: [String] }

    /// Judges every peer case in `dir` against BNSpec's reference under the float32 tolerance model.
    public static func check(_ dir: URL, profile: String = "onnx") throws -> [CaseResult] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.sorted() ?? []
        guard !names.isEmpty else { throw BNError.file(path: dir.path, reason: "no peer cases") }
        return try names.map { name in
            let d = dir.appendingPathComponent(name)
            guard let json = FileManager.default.contents(atPath: d.appendingPathComponent("peer.json").path) else {
                throw BNError.file(path: d.path, reason: "no peer.json")
            }
            let meta = try JSONDecoder().decode(Meta.self, from: json)
            guard let op = Operation(rawValue: meta.op) else { throw BNError.corrupt(path: d.path, reason: "unknown op \(meta.op)") }
            let dims = meta.shape.map(String.init).joined(separator: "x")
            var spec = try Catalog.makeCase(op, ["shape": dims, "profile": profile, "eps": "\(meta.eps)", "momentum": "\(meta.momentum)"])
            spec.id = "peer.onnx.\(meta.name)"
            spec.outputs = spec.outputs.filter { meta.outputs.contains($0.key) }
            spec.repro = "swift test --filter PeerDataTests  # spec/peers/onnx/\(meta.name)"
            var inputs: [String: NPYArray] = [:]
            for (k, file) in spec.inputs { inputs[k] = try NPYArray.read(d.appendingPathComponent(file)) }
            let expected = try Generator.expected(spec, inputs).filter { meta.outputs.contains($0.key) }
            var recorded: [String: [Double]] = [:]
            for o in meta.outputs { recorded[o] = try NPYArray.read(d.appendingPathComponent("onnx_\(o).npy")).values }
            let loaded = GoldenStore.LoadedCase(spec: spec, inputs: inputs, expected: expected)
            return CaseJudge.judge(loaded, kernel: RecordedKernel(name: "onnx-test-data", outputs: recorded))
        }
    }
}
