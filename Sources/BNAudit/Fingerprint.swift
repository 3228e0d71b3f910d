import BNCore
import BNGolden
import BNReference
import Foundation

/// Black-box convention probes of a framework's BN through its adapter
/// (spec/AUDIT.md §4). Every finding carries its evidence: the request sent and
/// what came back.
public struct Fingerprint: Sendable {
    public struct Finding: Encodable, Sendable {
        public var value: String
        public var evidence: String
        enum CodingKeys: String, CodingKey { case value, evidence }
        /// A numeric value (eps, momentum) is a JSON number; the others are strings.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            if let v = Double(value) { try c.encode(v, forKey: .value) } else { try c.encode(value, forKey: .value) }
            try c.encode(evidence, forKey: .evidence)
        }
    }
    public struct Result: Encodable, Sendable {
        /// ``ReportFormat/fingerprintSchema``.
        public var schema = ReportFormat.fingerprintSchema
        public var bnspecVersion = ReportFormat.bnspecVersion
        public var implementation: String, version: String
        public var momentumWeights: Finding, momentum: Finding, eps: Finding, runningVariance: Finding, epsPlacement: Finding
        public var singleValuePerChannel: Finding, fp16Statistics: Finding, inferenceForm: Finding, varianceAlgorithm: Finding
        public var closestProfile: Finding
        /// Synchronized BN (when the adapter supports sync-train): ``SynchronizedFindings``.
        public var synchronized: SynchronizedFindings? = nil
        enum CodingKeys: String, CodingKey {
            case schema, bnspecVersion = "bnspec_version", implementation, version, eps
            case momentumWeights = "momentum_weights", momentum, runningVariance = "running_variance", epsPlacement = "eps_placement"
            case singleValuePerChannel = "single_value_per_channel", fp16Statistics = "fp16_statistics", inferenceForm = "inference_form"
            case varianceAlgorithm = "variance_algorithm", closestProfile = "closest_profile", synchronized
        }
    }

    let client: AdapterClient
    let scratch: URL
    var counter = 0
    /// The eps every probe sends: nil asks for the implementation's default; set to
    /// ``givenEpsValue`` when it has none (e.g. oneDNN, where eps is a required parameter).
    var givenEps: Double? = nil
    static let givenEpsValue = 1e-3

    public init(client: AdapterClient, scratch: URL) { self.client = client; self.scratch = scratch }

    /// Sends one probe: writes inputs, returns outputs (or the refusal message).
    mutating func probe(_ op: String, shape: [Int], dtype: DType = .f32, inputs: [String: [Double]], extra: [String: Any] = [:])
        throws -> (outputs: [String: [Double]]?, refusal: String?)
    {
        counter += 1
        let dir = scratch.appendingPathComponent("probe\(counter)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var paths: [String: String] = [:]
        for (k, v) in inputs {
            let isData = Operation(rawValue: op)?.input(k)?.element == .storage
            let dims = isData ? shape : [shape[1]]
            let arr = NPYArray(dtype: isData ? dtype : .f32, shape: dims, values: v)
            let url = dir.appendingPathComponent("\(k).npy")
            try FileWrite.replace(arr.encoded(), at: url.path)
            paths[k] = url.path
        }
        var req: [String: Any] = ["type": "case", "id": "fingerprint-\(counter)", "op": op, "shape": shape, "layout": "NCHW",
                                  "dtype": dtype.rawValue, "parameter_dtype": "float32", "eps": givenEps.map { $0 as Any } ?? NSNull(), "batch_weight": NSNull(),
                                  "cumulative": false, "step": 1, "steps": 1, "inputs": paths,
                                  "output_dir": dir.appendingPathComponent("out").path, "fingerprint": true]
        for (k, v) in extra { req[k] = v }
        switch client.run(req) {
        case .outputs(let files):
            var out: [String: [Double]] = [:]
            // No larger than an NPY of the probe's own size can be (8-byte values): a file of
            // gigabytes is refused from its size, not read (an outside red team's, round J).
            let limit = 12 + NPYArray.maxHeaderBytes + 8 * max(shape.reduce(1, *), shape.count > 1 ? shape[1] : 1)
            for (k, p) in files { out[k] = try NPYArray.read(URL(fileURLWithPath: p), limit: limit).values }
            // An output of the wrong size is no answer (the audit's rule, `wrong-size`): the probe reads
            // as refused, so what depends on it is undetermined (an outside red team's: outputs one
            // element short were read as conventions, and 1-element ones trapped on an index).
            let o = Operation(rawValue: op)
            func expected(_ name: String) -> Int? {
                switch o?.output(name)?.extent {
                case .tensor?: return shape.reduce(1, *)
                case .channels?: return shape.count > 1 ? shape[1] : nil
                default: return nil
                }
            }
            for (k, v) in out.sorted(by: { $0.key < $1.key }) {
                if let n = expected(k), n != v.count { return (nil, "wrong size: \(k): \(v.count) values, expected \(n)") }
            }
            return (out, nil)
        case .refused(let m): return (nil, m)
        case .unsupported(let m): return (nil, "unsupported: \(m)")
        case .failure(let f): throw BNError.invalidArgument("fingerprint probe \(op) failed (\(f))")
        }
    }

    static func fmt(_ v: Double) -> String { String(format: "%.6g", v) }

    /// The common eps (1e-5, 1e-3, 1e-4, 1e-6, 1e-8, 1e-12, 0) nearest a solved value.
    static func nearestCommonEps(_ e: Double) -> Double {
        [1e-5, 1e-3, 1e-4, 1e-6, 1e-8, 1e-12, 0].min { abs($0 - e) < abs($1 - e) }!
    }

    /// Whether eps values solved from x = ±a (one per amplitude in `amps`) agree: each within 2 %
    /// of their median plus what the outputs' rounding allows (eps solved from y = a/√(a² + ε)
    /// moves by about 2(a² + ε)·δy/y for a relative error δy of y: 10⁴·2⁻²⁴ covers a float32 BN a
    /// few ulps off). Non-finite values never agree.
    static func epsConsistent(_ v: [Double], amps: [Double]) -> Bool {
        guard v.count == amps.count, v.allSatisfy(\.isFinite) else { return false }
        let med = v.sorted()[v.count / 2]
        return v.indices.allSatisfy { abs(v[$0] - med) <= 0.02 * abs(med) + 1e4 * 0x1p-24 * (amps[$0] * amps[$0] + abs(med)) }
    }

    public mutating func run() throws -> Result {
        let hello = try client.hello ?? client.start()
        let C = 4
        let ones = [Double](repeating: 1, count: C), zeros = [Double](repeating: 0, count: C)
        // 1. eps and its placement: two values per channel, ±a around m, γ = 1, β = 0.
        func pairs(_ a: [Double], _ m: Double) -> [Double] {
            // NCHW 2×C×1×1: sample 0 then sample 1.
            a.map { m + $0 } + a.map { m - $0 }
        }
        let amps = [0.003, 0.01, 0.03, 0.1]
        let plain: [String: [Double]] = ["x": pairs(amps, 0), "gamma": ones, "beta": zeros, "running_mean": zeros, "running_var": ones]
        var p1 = try probe("train", shape: [2, C, 1, 1], inputs: plain)
        let noDefaultEps = p1.outputs == nil && p1.refusal?.hasPrefix("unsupported") == true ? p1.refusal : nil
        if noDefaultEps != nil {  // no default eps: every probe gives one
            givenEps = Self.givenEpsValue
            p1 = try probe("train", shape: [2, C, 1, 1], inputs: plain)
        }
        guard let o1 = p1.outputs, let y1 = o1["y"] else {
            throw BNError.invalidArgument("the adapter gave no answer to a plain training step (\(p1.refusal ?? "no y among its outputs"))")
        }
        let inside = amps.indices.map { amps[$0] * amps[$0] * (1 / (y1[$0] * y1[$0]) - 1) }
        let outside = amps.indices.map { amps[$0] / y1[$0] - amps[$0] }
        func spread(_ v: [Double]) -> Double { (v.max()! - v.min()!) / max(abs(v.reduce(0, +) / Double(v.count)), 1e-300) }
        // A hypothesis is consistent when its solved values agree (``epsConsistent``). Neither consistent (an outside red team's rsqrt(max(var, eps)) gave [1e-6, 0, 0, 0]
        // and was read as eps 0 inside the root): eps and its placement are undetermined.
        let insideConsistent = Self.epsConsistent(inside, amps: amps), outsideConsistent = Self.epsConsistent(outside, amps: amps)
        let insideWins = insideConsistent != outsideConsistent ? insideConsistent : spread(inside) <= spread(outside)
        let epsEst = (insideWins ? inside : outside).sorted()[amps.count / 2]
        // Outputs that give no finite eps (NaN, ±∞, zeros) determine neither eps nor its placement;
        // the later probes then use 1e-5 (an outside red team's NaN adapter ended the fingerprint
        // with "invalid argument: eps nan").
        let solvable = (inside + outside).allSatisfy(\.isFinite) && epsEst >= -1e-6
        let probeEps = solvable ? max(epsEst, 0) : 1e-5  // solvable: epsEst is one of the finite values
        let placed = solvable && (insideConsistent || outsideConsistent)
        let epsPlacement = Finding(value: !placed ? "undetermined" : insideWins ? "inside_sqrt" : "outside_sqrt",
                                   evidence: "x = ±a per channel (a = \(amps.map(Self.fmt))): y = \(y1.prefix(C).map(Self.fmt)); eps solved as a²(1/y² − 1) = \(inside.map(Self.fmt)) (inside √) vs a/y − a = \(outside.map(Self.fmt)) (outside √); "
                                    + (placed ? "the consistent one wins" : solvable ? "neither is consistent (an eps that is no constant inside or outside √, e.g. max(var, eps))" : "no finite eps"))
        let niceEps = Self.nearestCommonEps(epsEst)
        var epsF = !solvable
            ? Finding(value: "undetermined", evidence: "no finite, non-negative eps solves y = \(y1.prefix(C).map(Self.fmt)) (median \(Self.fmt(epsEst))); later probes use eps = 1e-5")
            : !placed ? Finding(value: "undetermined", evidence: "no one eps solves y = \(y1.prefix(C).map(Self.fmt)) inside or outside √ (see eps placement); later probes use the median, \(Self.fmt(max(epsEst, 0)))")
            : Finding(value: Self.fmt(abs(niceEps - epsEst) <= 0.05 * max(niceEps, 1e-300) ? niceEps : epsEst),
                      evidence: "median of the solved values: \(Self.fmt(epsEst))")
        if let why = noDefaultEps {
            epsF = Finding(value: "none", evidence: "no default: a request without eps was answered '\(why.prefix(160))'; every probe sends eps = \(Self.fmt(Self.givenEpsValue)), solved back as \(Self.fmt(epsEst))")
        }
        // 2. momentum: a batch with mean 2 from running mean 0 → new running mean = w·2. Two samples
        // of two positions each (2×C×1×2, NCHW: 2.5, 2.5 then 1.5, 1.5 per channel), so that n = N·H·W = 4
        // differs from N = 2: a Bessel factor over N alone (an outside red team's, round G) had read
        // "unbiased" on a 2×C×1×1 batch, where the two coincide.
        var spread: [Double] = []
        for b in 0..<2 { let v: Double = b == 0 ? 2.5 : 1.5; for _ in 0..<(2 * C) { spread.append(v) } }
        let p2 = try probe("train", shape: [2, C, 1, 2], inputs: ["x": spread, "gamma": ones, "beta": zeros,
                                                                 "running_mean": zeros, "running_var": ones])
        let rm = p2.outputs?["running_mean"] ?? [], rv = p2.outputs?["running_var"] ?? []
        let w = rm.isEmpty ? Double.nan : rm[0] / 2
        // Which way the framework's own momentum parameter points: set it to 0.2.
        let p3 = try probe("train", shape: [2, C, 1, 2], inputs: ["x": spread, "gamma": ones, "beta": zeros,
                                                                 "running_mean": zeros, "running_var": ones], extra: ["raw_momentum": 0.2])
        let w2 = (p3.outputs?["running_mean"]?.first).map { $0 / 2 } ?? .nan
        let weights: String, mom: Double
        // A batch weight of neither 0.2 nor 0.8 says nothing of the convention (an outside red team's
        // adapter ignoring the framework's momentum had been read as "batch" from its default).
        if !w.isFinite { weights = "undetermined" } else if abs(w2 - 0.2) < 1e-3 { weights = "batch" } else if abs(w2 - 0.8) < 1e-3 { weights = "running" } else {
            weights = "undetermined"
        }
        mom = weights == "undetermined" ? .nan : (weights == "batch" ? MomentumWeighting.batch : .running).momentum(batchWeight: w)
        var momentumWeights = Finding(value: weights, evidence: "framework momentum set to 0.2 → batch weight \(Self.fmt(w2)) (0.2 means the momentum weights the batch, 0.8 the running value; anything else: undetermined)")
        var momentumF = Finding(value: mom.isFinite ? Self.fmt((mom * 1e6).rounded() / 1e6) : "undetermined", evidence: "default: running mean 0 → \(rm.first.map(Self.fmt) ?? "none") after a batch with mean 2: batch weight \(Self.fmt(w))"
                                    + (w.isFinite && !mom.isFinite ? " (the momentum's convention is undetermined, so not its value)" : "")
                                    + (abs(w - 1) < 1e-9 ? " (one step cannot tell this from a cumulative average, whose first step replaces the running values)" : ""))
        // 3. running variance estimator: the batch above (n = 4) has biased variance 0.25, unbiased
        // n/(n − 1)·0.25 = 1/3; a Bessel factor over the batch dimension only, N/(N − 1)·0.25 = 0.5.
        let vb = rv.isEmpty || w == 0 ? Double.nan : (rv[0] - (1 - w)) / w
        // Named only within 0.2 % of one of them (float32 rounding moves vb by ~10⁻⁶): a variance
        // fed with another factor or about another centre is neither (an outside red team's
        // inverted variance momentum, fed −3.5, had been read "biased", by the nearer of the two).
        let estimator = !vb.isFinite ? nil : abs(vb - 1.0 / 3) <= 2e-3 / 3 ? "unbiased" : abs(vb - 0.25) <= 5e-4 ? "biased" : nil
        let overN = vb.isFinite && abs(vb - 0.5) <= 1e-3 ? " — 0.5 is N/(N − 1)·0.25: a Bessel factor over the batch dimension N = 2 only, not over n = N·H·W = 4" : ""
        var runVar = Finding(value: estimator ?? "undetermined",
                             evidence: "running variance 1 → \(rv.first.map(Self.fmt) ?? "none") with batch weight \(Self.fmt(w)) after 2×C×1×2 values 2 ± 0.5: batch variance fed \(Self.fmt(vb)) (biased 0.25, unbiased n/(n − 1)·0.25 = 0.3333, each to 0.2 %; anything else: undetermined)\(overN)")
        if !hello.runningStatistics {  // supports.running_statistics = false: nothing to infer, nothing invented
            let none = Finding(value: "not provided", evidence: "the implementation keeps no running statistics (supports.running_statistics = false)")
            momentumWeights = none; momentumF = none; runVar = none
        }
        // 4. one value per channel.
        let p4 = try probe("train", shape: [1, C, 1, 1], inputs: ["x": [0.5, -1, 2, 3], "gamma": ones, "beta": [0.25, 0.25, 0.25, 0.25],
                                                                 "running_mean": zeros, "running_var": ones])
        let single: Finding
        if let r = p4.refusal { single = Finding(value: r.hasPrefix("unsupported") ? "other" : "error", evidence: "refused: \(r.prefix(160))") } else {
            let y = p4.outputs?["y"] ?? []
            let v = y.allSatisfy { $0 == 0.25 } ? "beta" : (y.contains { $0.isNaN } ? "nan" : "other")
            single = Finding(value: v, evidence: "N = 1, β = 0.25: y = \(y.map(Self.fmt))")
        }
        // 5. fp16 statistics: 4096 values ≈ 300 per channel (the float16 running sum would pass 65504).
        var rng = SpecRandom("fingerprint/fp16")
        let n16 = 1024
        let x16 = (0..<(n16 * C)).map { _ in DType.f16.quantize(300 + 8 * rng.normal()) }
        let p5 = try probe("train", shape: [n16, C, 1, 1], dtype: .f16, inputs: ["x": x16, "gamma": ones, "beta": zeros,
                                                                                 "running_mean": zeros, "running_var": ones])
        let fp16: Finding
        if let r = p5.refusal { fp16 = Finding(value: "unsupported", evidence: "float16 input refused: \(r.prefix(160))") } else {
            let s = try Shape(batch: n16, channels: C, spatial: [1, 1])
            let ref = try Reference.trainingForward(x16, shape: s, layout: .nchw, eps: probeEps).y
            let y = p5.outputs?["y"] ?? []
            let err = zip(y, ref).map { abs($0 - $1) }.max() ?? .infinity
            // Σx of a channel is 1024·300 > 65504 in any summation order: accumulated in float16 it
            // overflows, and y is non-finite (unless the float32 probe's was too). A finite y that is
            // wrong is another error of the float16 path, not this one: "other" (a red team's γ/β
            // swapped in float16 alone had been read as fp16 statistics).
            let overflowed = y.contains { !$0.isFinite }
            fp16 = Finding(value: !solvable ? "undetermined" : overflowed ? "fp16" : err > 0.05 ? "other" : "fp32", evidence: "n = \(n16) per channel, x ≈ 300 (float16 Σx would overflow): max |y − y_ref| = \(Self.fmt(err))\(y.contains { !$0.isFinite } ? ", non-finite outputs" : "")")
        }
        // 6. inference form: x = 1e4 + N(0, 1) with mean 1e4 + 0.3, variance 1.
        var r6 = SpecRandom("fingerprint/infer")
        let xi = (0..<(64 * C)).map { _ in Double(Float(1e4 + r6.normal())) }
        let mi = [Double](repeating: Double(Float(1e4 + 0.3)), count: C)
        let p6 = try probe("infer", shape: [64, C, 1, 1], inputs: ["x": xi, "gamma": ones.map { _ in 1.7 }, "beta": zeros.map { _ in 0.1 },
                                                                  "mean": mi, "var": ones])
        let yi = p6.outputs?["y"] ?? []
        let s6 = try Shape(batch: 64, channels: C, spatial: [1, 1])
        let ri = try Reference.inferenceForward(xi, shape: s6, layout: .nchw, mean: mi, variance: ones, gamma: ones.map { _ in 1.7 },
                                                beta: zeros.map { _ in 0.1 }, eps: probeEps)
        let scale = 1.7 / (1 + probeEps).squareRoot()
        let form = Self.inferenceForm(y: yi, reference: ri, z: xi.indices.map { (xi[$0] - mi[$0 % C]) * scale }, channels: C,
                                      muS: abs(mi[0] * scale),
                                      probe: FoldProbe(x: xi, mean: mi[0], gamma: 1.7, beta: 0.1, variance: 1, eps: probeEps))
        // 7. variance algorithm: how the variance error grows with κ = |μ|/σ. 96 channels of
        // n = 1024 values κ + N(0, 1), κ ∈ {4, 16, 64, 256, 1024, 4096} (16 channels each), γ = 1, β = 0;
        // the variance each channel was normalised with is read off y (least squares
        // y ≈ a·x + b gives 1/a² − ε) and the exponent of error ∝ κ^p is fitted (κ⁰ two-pass
        // class, κ¹ updating, κ² one-pass; Chan, Golub & LeVeque 1983).
        let xv = Self.varianceProbeInput(), n7 = Self.varianceProbeValues, C7 = Self.varianceProbeKappas.count
        let ones7 = [Double](repeating: 1, count: C7), zeros7 = [Double](repeating: 0, count: C7)
        let p7 = try probe("train", shape: [n7, C7, 1, 1], inputs: ["x": xv, "gamma": ones7, "beta": zeros7, "running_mean": zeros7,
                                                                    "running_var": ones7])
        let y7 = p7.outputs?["y"] ?? []
        let algo: Finding
        if y7.count == xv.count {
            let (growth, evidence) = try Self.varianceGrowth(x: xv, y: y7, eps: probeEps)
            algo = Finding(value: growth.algorithm, evidence: "x = κ + N(0, 1), n = \(n7), \(Self.varianceProbeKappaSet): " + evidence)
        } else {
            algo = Finding(value: y7.isEmpty ? "unknown" : "undetermined",
                           evidence: y7.isEmpty ? "the adapter returned no y: \(p7.refusal ?? "")" : "y has \(y7.count) values, x \(xv.count)")
        }
        // 8. closest profile.
        let scored = ConventionProfile.all.map { p -> (String, Int) in
            var s = 0
            if p.momentumWeighting.rawValue == weights { s += 1 }
            if let d = p.defaultMomentum, abs(p.momentumWeighting.batchWeight(momentum: d) - w) < 1e-3 { s += 2 }
            if abs(p.defaultEps - niceEps) <= 0.05 * p.defaultEps { s += 2 }
            if p.runningVariance.rawValue == runVar.value { s += 2 }
            if p.singleValue.rawValue == single.value { s += 1 }
            return (p.name, s)
        }.sorted { $0.1 > $1.1 }
        // Profiles tied at the top are all named: these probes cannot tell them apart (an outside
        // red team's: MLX's defaults read "pytorch" from a tie broken by the list's order).
        let top = scored.filter { $0.1 == scored[0].1 }.map(\.0)
        var closest = Finding(value: top.joined(separator: " or "),
                              evidence: "agreement scores (weights 1, default batch weight 2, eps 2, running variance 2, single value 1): " + scored.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                                + (top.count > 1 ? " (tied: these probes do not tell \(top.joined(separator: " and ")) apart)" : ""))
        if !placed || (hello.runningStatistics && (!w.isFinite || runVar.value == "undetermined")) {
            closest = Finding(value: "undetermined", evidence: "eps, the momentum weighting or the running variance could not be read from the outputs: nothing to score")
        }
        if !hello.runningStatistics || noDefaultEps != nil {
            // The profiles differ in running-statistics conventions and defaults; without them a score compares nothing.
            closest = Finding(value: "none", evidence: "the profiles differ in defaults and running-statistics conventions, which this implementation does not have (\([hello.runningStatistics ? nil : "no running statistics", noDefaultEps == nil ? nil : "no default eps"].compactMap { $0 }.joined(separator: ", ")))")
        }
        // 9. synchronized BN, when the adapter runs it (spec/AUDIT.md §4).
        var sync: SynchronizedFindings? = nil
        if hello.ops.contains(Operation.syncTrain.rawValue) {
            sync = try synchronizedProbes(SingleDevice(batchWeight: w, eps: probeEps, epsInside: placed ? insideWins : nil,
                                                       runningStatistics: hello.runningStatistics))
        }
        client.stop()
        var result = Result(implementation: hello.name, version: hello.version, momentumWeights: momentumWeights, momentum: momentumF,
                            eps: epsF, runningVariance: runVar, epsPlacement: epsPlacement, singleValuePerChannel: single,
                            fp16Statistics: fp16, inferenceForm: form, varianceAlgorithm: algo, closestProfile: closest)
        result.synchronized = sync
        return result
    }
}
