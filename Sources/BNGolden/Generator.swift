import BNCore
import BNReference
import Foundation

/// Turns catalog cases into golden files: inputs from the data families, expected
/// outputs from the Double reference, a case JSON, and a manifest of SHA-256 hashes.
///
/// Everything here is a pure function of the case spec, so `generate` is
/// byte-identical on rerun and `generate --check` can compare bytes.
public enum Generator {
    /// The inputs of a case, in the dtypes an implementation receives: each input of the
    /// operation's table (``Operation/arrays``) made from its ``ArraySpec/Source``.
    public static func inputs(_ spec: CaseSpec) throws -> [String: NPYArray] {
        let s = try spec.shapeValue()
        let pd = spec.parameterDType, C = s.channels
        func data(_ stream: String) throws -> [Double] {
            try DataFamily.fill(spec.data, shape: s, layout: spec.layout, dtype: spec.dtype, seed: "\(spec.id)/\(stream)")
        }
        // Streams that make two arrays at once are drawn once.
        var parameters: (gamma: [Double], beta: [Double])? = nil, running: (mean: [Double], variance: [Double])? = nil
        var global: (mean: [Double], variance: [Double])? = nil
        func globalStatistics() throws -> (mean: [Double], variance: [Double]) {
            if let g = global { return g }
            // Global statistics near the data's own: μ + 0.1·σ·N(0,1), σ²·U[0.5, 1.5). With one value
            // per channel (N = 1 after a linear layer) a channel has no spread of its own, and σ² is
            // the whole tensor's: otherwise μ = x, σ² = 0 and y = β whatever the kernel does with x̂
            // (an outside red team's N = 1 bug that dropped β was named "γ and β not applied" there).
            // Statistics of the channel's finite values: a running mean and variance are finite in
            // practice, and NaN/±Inf in x must then show in y at that element alone (round G's
            // inference that replaced NaN and ±Inf in x by 0 passed while the given statistics
            // were the poisoned channel's own, NaN or Inf, so y was NaN whatever it did with x).
            let x = try data("x")
            let ms = try Reference.moments(x, shape: s, layout: spec.layout).enumerated().map { c, m -> ChannelMoments in
                guard !m.mean.isFinite || !m.biasedVariance.isFinite else { return m }
                var finite: [Double] = []
                for n in 0..<s.batch { for j in 0..<s.spatialSize {
                    let v = x[spec.layout.index(n: n, c: c, s: j, shape: s)]
                    if v.isFinite { finite.append(v) }
                } }
                guard !finite.isEmpty else { return m }
                return try Reference.moments(finite, shape: try Shape(batch: finite.count, channels: 1), layout: .nc)[0]
            }
            let whole = s.perChannelCount == 1
                ? try Reference.moments(x, shape: try Shape(batch: s.elementCount, channels: 1), layout: .nc)[0].biasedVariance : nil
            let spread = ms.map { whole ?? $0.biasedVariance }
            var r = SpecRandom("\(spec.id)/global")
            let mean = zip(ms, spread).map { m, v -> Double in
                let sd = v.squareRoot()
                return pd.quantize(m.mean + 0.1 * (sd.isFinite ? sd : 0) * r.normal())
            }
            let variance = spread.map { pd.quantize($0 * (0.5 + r.uniform())) }
            global = (mean, variance)
            if DataFamily.split(spec.data)[0] == "stats-nonfinite" { DataFamily.givenStatisticsEdges(&global!) }
            return global!
        }
        var out: [String: NPYArray] = [:]
        for a in spec.op.inputs {
            let values: [Double]
            switch a.source {
            case .data(let stream)?:
                values = a.extent == .stepsTensor
                    ? try (0..<spec.steps).flatMap { k in try data(k == 0 ? stream : "\(stream)\(k)") } : try data(stream)
            case .gamma?, .beta?:
                if parameters == nil { parameters = DataFamily.parameters(channels: C, seed: "\(spec.id)/params", dtype: pd, family: spec.data) }
                values = a.source == .gamma ? parameters!.gamma : parameters!.beta
            case .runningMean?, .runningVariance?:
                if running == nil {
                    running = DataFamily.runningStatistics(channels: C, seed: "\(spec.id)/running", dtype: pd)
                    if DataFamily.split(spec.data)[0] == "stats-nonfinite" { DataFamily.givenStatisticsEdges(&running!) }
                }
                values = a.source == .runningMean ? running!.mean : running!.variance
            case .globalMean?: values = try globalStatistics().mean
            case .globalVariance?: values = try globalStatistics().variance
            case .upstreamGradient?:
                values = try DataFamily.upstreamGradient(spec.data, x: { try data("x") }, shape: s, layout: spec.layout, dtype: a.dtype(in: spec),
                                                     seed: "\(spec.id)/dy")
            case .direction(let stream)?:
                var r = SpecRandom("\(spec.id)/\(stream)")
                values = (0..<a.count(in: spec, shape: s)).map { _ in a.dtype(in: spec).quantize(r.normal()) }
            case nil: throw BNError.corrupt(path: spec.id, reason: "input '\(a.name)' has no source in the operation table")
            }
            out[a.name] = NPYArray(dtype: a.dtype(in: spec), shape: a.dimensions(in: spec, shape: s), values: values)
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
        /// Expected NaNs are written as the canonical quiet NaN: IEEE 754 leaves a NaN result's sign
        /// and payload to the operand order, which the optimizer may change (a release build gave
        /// +NaN where a debug build gave −NaN), and golden/ must be bit-identical whatever built it.
        /// The judge compares a NaN with a NaN (spec §5.3).
        func arr(_ values: [Double], _ shape: [Int]) -> NPYArray {
            NPYArray(dtype: .f64, shape: shape, values: values.map { $0.isNaN ? .nan : $0 })
        }
        /// A direction of spec §12 from its three inputs (`<d>_x`, `<d>_gamma`, `<d>_beta`).
        func direction(_ d: String) throws -> DerivativeDirection {
            DerivativeDirection(x: try v("\(d)_x"), gamma: try v("\(d)_gamma"), beta: try v("\(d)_beta"))
        }
        let profile = try spec.profileValue()
        func partition() throws -> BatchPartition {
            guard let p = try spec.partitionValue() else {
                throw BNError.corrupt(path: spec.id, reason: "a \(spec.op.rawValue) case needs a partition")
            }
            return p
        }
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
        case .syncTrain:
            // BN of the concatenation, from all values at once (spec §11.2): the train outputs, bit for bit.
            let (sync, next) = try Reference.synchronizedTrainingStep(
                try v("x"), shape: s, layout: spec.layout, partition: try partition(), gamma: try v("gamma"), beta: try v("beta"),
                eps: spec.eps, running: RunningStatistics(mean: try v("running_mean"), variance: try v("running_var")),
                rule: try spec.rule(), profileName: profile.name)
            return ["y": arr(sync.global.y, dims), "batch_mean": arr(sync.global.mean, [C]), "batch_var": arr(sync.global.variance, [C]),
                    "running_mean": arr(next.mean, [C]), "running_var": arr(next.variance, [C])]
        case .syncBackward:
            let p = try partition()
            let f = try Reference.synchronizedTrainingForward(try v("x"), shape: s, layout: spec.layout, partition: p,
                                                              gamma: try v("gamma"), beta: try v("beta"), eps: spec.eps)
            guard let reduction = spec.gradReduction else {
                throw BNError.corrupt(path: spec.id, reason: "a sync-backward case needs a grad_reduction")
            }
            let g = try Reference.synchronizedTrainingBackward(try v("x"), dy: try v("dy"), shape: s, layout: spec.layout, partition: p,
                                                               gamma: try v("gamma"), mean: f.global.mean, invStd: f.global.invStd,
                                                               reduction: reduction)
            let rows = spec.op.output("dgamma")!.dimensions(in: spec, shape: s)
            return ["dx": arr(g.dx, dims), "dgamma": arr(g.dGamma.flatMap { $0 }, rows), "dbeta": arr(g.dBeta.flatMap { $0 }, rows)]
        case .trajectory, .epoch:
            // A training step per batch (a trajectory's stacked batches, an epoch's partition of x), then inference on x_eval.
            var running = RunningStatistics(mean: try v("running_mean"), variance: try v("running_var"))
            var means: [Double] = [], vars: [Double] = []
            for batch in try spec.trainingBatches(try v("x")) {
                let (_, next) = try Reference.trainingStep(
                    batch.values, shape: batch.shape, layout: spec.layout, gamma: try v("gamma"), beta: try v("beta"),
                    eps: spec.eps, running: running, rule: try spec.rule(), profileName: profile.name)
                running = next
                means += next.mean; vars += next.variance
            }
            let y = try Reference.inferenceForward(try v("x_eval"), shape: s, layout: spec.layout, mean: running.mean,
                                                   variance: running.variance, gamma: try v("gamma"), beta: try v("beta"), eps: spec.eps)
            return ["running_mean": arr(means, [spec.steps, C]), "running_var": arr(vars, [spec.steps, C]), "y_eval": arr(y, dims)]
        case .hvpTrain:
            let h = try Reference.trainingHessianVectorProduct(try v("x"), dy: try v("dy"), shape: s, layout: spec.layout,
                                                               gamma: try v("gamma"), eps: spec.eps, direction: try direction("v"))
            return ["hv_x": arr(h.x, dims), "hv_gamma": arr(h.gamma, [C]), "hv_beta": arr(h.beta, [C])]
        case .hvpInfer:
            let h = try Reference.inferenceHessianVectorProduct(try v("x"), dy: try v("dy"), shape: s, layout: spec.layout,
                                                                gamma: try v("gamma"), mean: try v("mean"), variance: try v("var"),
                                                                eps: spec.eps, direction: try direction("v"))
            return ["hv_x": arr(h.x, dims), "hv_gamma": arr(h.gamma, [C]), "hv_beta": arr(h.beta, [C])]
        case .d2Train:
            let d2 = try Reference.trainingSecondDerivative(try v("x"), shape: s, layout: spec.layout, gamma: try v("gamma"),
                                                            eps: spec.eps, try direction("v"), try direction("w"))
            return ["d2y": arr(d2, dims)]
        case .d3Train:
            let dv = try direction("v")
            let d3 = try Reference.trainingThirdDerivative(try v("x"), shape: s, layout: spec.layout, gamma: try v("gamma"),
                                                           eps: spec.eps, dv, dv, try direction("w"))
            return ["d3y": arr(d3, dims)]
        }
    }

    /// The JSON style of every file bnspec writes into golden/ and exports (pretty, keys sorted).
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// Every file of one case, relative to the case folder: the inputs, `expected_<out>.npy`,
    /// the stored tolerances (`tolerance_<out>.npy`, `allowed_<out>.json`:
    /// ``ToleranceBudget/files(_:)``), case.json and request.json (the adapter request under the
    /// case's own profile, ``CaseSpec/fileRequest(profile:)``).
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
        if spec.expectError == nil {
            let loaded = GoldenStore.LoadedCase(spec: spec, inputs: ins, expected: outs.filter { spec.outputs[$0.key] != nil })
            for (name, data) in try ToleranceBudget(loaded).files(loaded) { files[name] = data }
        }
        files["case.json"] = try encoder().encode(spec) + Data("\n".utf8)
        files["request.json"] = try encoder().encode(spec.fileRequest(profile: try spec.profileValue())) + Data("\n".utf8)
        return files
    }

    /// Every file of the given cases, relative to the golden folder (no manifest).
    public static func selectedFiles(_ cases: [CaseSpec]) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for spec in cases {
            for (name, data) in try caseFiles(spec) { files["\(spec.id)/\(name)"] = data }
        }
        return files
    }

    /// Every file of a suite, relative to the golden folder, including manifest.json.
    public static func suiteFiles(_ cases: [CaseSpec], suite: String) throws -> [String: Data] {
        var files = try selectedFiles(cases)
        files[GoldenReadme.fileName] = Data(GoldenReadme.text(suite: suite, cases: cases).utf8)
        let manifest = Manifest(format: Manifest.formatVersion, suite: suite, generator: "bnspec generate --suite \(suite)",
                                cases: cases.map(\.id),
                                files: files.mapValues { SHA256.hex($0) })
        files[Manifest.fileName] = try encoder().encode(manifest) + Data("\n".utf8)
        return files
    }
}

/// golden/manifest.json: the case list and the SHA-256 of every file.
public struct Manifest: Codable, Sendable {
    public static let fileName = "manifest.json"
    /// The manifest format this bnspec writes and reads.
    public static let formatVersion = 1
    public var format: Int
    public var suite: String
    public var generator: String
    public var cases: [String]
    /// Path relative to the golden folder → SHA-256 (hex).
    public var files: [String: String]
    /// The folder this manifest was read from, kept open (not encoded): cases loaded with this
    /// manifest come from the same generation even if the folder is swapped meanwhile (``GoldenFolder``).
    public internal(set) var folder: GoldenFolder? = nil
    enum CodingKeys: String, CodingKey { case format, suite, generator, cases, files }
}
