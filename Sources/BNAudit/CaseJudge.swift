import BNCore
import BNGolden
import BNKernels
import BNReference

/// The verdict on one implementation for one golden case.
public struct CaseResult: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case passed, failed, skipped }
    public var caseID: String
    public var family: String
    public var implementation: String
    public var status: Status
    /// max over outputs and elements of |got − expected| / tolerance (0 for bit-exact checks).
    public var worstRatio: Double
    /// Where the worst ratio occurred: "output[index]".
    public var worstAt: String
    public var detail: String
    public var repro: String
    /// SHA-256 of the outputs' bit patterns (``outputDigest(_:)``); nil when none were produced.
    public var digest: String? = nil

    enum CodingKeys: String, CodingKey {
        case caseID = "case", family, implementation, status, worstRatio = "worst_ratio", worstAt = "worst_at", detail, repro
        case digest = "output_sha256"
    }

    /// SHA-256 over the outputs in name order: for each, the UTF-8 name, a 0 byte, the value
    /// count (8 bytes little-endian) and each value's IEEE-754 binary64 bit pattern
    /// (little-endian), NaN as the canonical 0x7FF8… (``Swift/Double/canonicalBitPattern``: the sign and
    /// payload of a computed NaN depend on the machine and the optimiser). Equal digests ⇔ outputs
    /// bit-identical up to NaN sign and payload.
    public static func outputDigest(_ outputs: [String: [Double]]) -> String {
        var bytes: [UInt8] = []
        for name in outputs.keys.sorted() {
            let values = outputs[name]!
            bytes += Array(name.utf8) + [0]
            withUnsafeBytes(of: UInt64(values.count).littleEndian) { bytes += $0 }
            bytes.reserveCapacity(bytes.count + 8 * values.count)
            for v in values { withUnsafeBytes(of: v.canonicalBitPattern.littleEndian) { bytes += $0 } }
        }
        return SHA256.hex(bytes)
    }
}

/// Compares implementations' outputs with a golden case under the tolerance model
/// (``BNGolden/ToleranceBudget``).
public enum CaseJudge {
    /// |got − ref| / tol over an array; NaN and ±Inf must match exactly.
    /// An element whose bound exceeds `limit` (the compute format's largest finite value)
    /// is unresolvable in that format and not judged (spec/SPEC.md §5.4).
    static func worst(_ got: [Double], _ ref: [Double], _ tol: [Double], storage: DType?, limit: Double) -> (ratio: Double, index: Int) {
        guard got.count == ref.count else { return (.infinity, -1) }
        var worst = 0.0, at = 0
        for i in ref.indices {
            var g = got[i]
            var r = ref[i]
            if let st = storage { g = st.quantize(g); if st.quantize(r).isInfinite { r = st.quantize(r) } }
            let ratio: Double
            if tol[i] > limit { ratio = 0 }
            else if r.isNaN { ratio = g.isNaN ? 0 : .infinity }
            else if r.isInfinite { ratio = g == r ? 0 : .infinity }
            else if !g.isFinite { ratio = .infinity }
            else {
                let err = abs(g - r)
                ratio = err == 0 ? 0 : (tol[i] > 0 ? err / tol[i] : .infinity)
            }
            if ratio > worst || ratio.isNaN { worst = ratio.isNaN ? .infinity : ratio; at = i }
        }
        return (worst, at)
    }

    /// Runs `kernel` on a case and judges it. `budget`: the case's tolerance budget when the caller
    /// judges several kernels on one case (computed here otherwise).
    public static func judge(_ c: GoldenStore.LoadedCase, kernel: any BatchNormKernel, budget: ToleranceBudget? = nil) -> CaseResult {
        guard kernel.dtypes.contains(c.spec.dtype) else {
            var r = CaseResult(caseID: c.spec.id, family: c.spec.family, implementation: kernel.name, status: .skipped,
                               worstRatio: 0, worstAt: "", detail: "dtype \(c.spec.dtype.rawValue) not supported",
                               repro: "bnspec verify --case \(c.spec.id) --implementation \(kernel.name)")
            r.status = .skipped
            return r
        }
        return judge(c, name: kernel.name, budget: budget) { try run(c, kernel) }
    }

    /// Judges outputs an implementation already produced (audits: adapters, recorded files).
    public static func judge(_ c: GoldenStore.LoadedCase, outputs: [String: [Double]], name: String,
                             budget: ToleranceBudget? = nil) -> CaseResult {
        judge(c, name: name, budget: budget) { outputs }
    }

    static func judge(_ c: GoldenStore.LoadedCase, name: String, budget given: ToleranceBudget?,
                      produce: () throws -> [String: [Double]]) -> CaseResult {
        let spec = c.spec
        var result = CaseResult(caseID: spec.id, family: spec.family, implementation: name, status: .passed,
                                worstRatio: 0, worstAt: "", detail: "",
                                repro: "bnspec verify --case \(spec.id) --implementation \(name)")
        do {
            try c.validateArrays(dtypes: false, path: spec.id)
            let got = try produce()
            result.digest = CaseResult.outputDigest(got)
            if let e = spec.expectError {
                result.status = .failed; result.worstRatio = .infinity
                result.detail = "expected the implementation to refuse (\(e)), it returned outputs"
                _ = got; return result
            }
            let budget = try given ?? ToleranceBudget(c)
            for name in spec.outputs.keys.sorted() {
                guard let exp = c.expected[name]?.values, let g = got[name], let t = budget[output: name] else {
                    result.status = .failed; result.worstRatio = .infinity; result.detail = "no output '\(name)'"; return result
                }
                // Storage outputs are rounded to the storage format before comparison (spec §5.2).
                let (ratio, i) = worst(g, exp, t, storage: spec.op.output(name)?.element == .storage ? spec.dtype : nil,
                                      limit: spec.dtype == .f64 ? .greatestFiniteMagnitude : Double(Float.greatestFiniteMagnitude))
                if ratio > result.worstRatio || result.worstAt.isEmpty {
                    result.worstRatio = ratio; result.worstAt = "\(name)[\(i)]"
                    if i >= 0 && i < exp.count {
                        result.detail = "\(name)[\(i)] = \(g[i]), expected \(exp[i]), tolerance \(t[i])"
                    } else { result.detail = "\(name): \(g.count) values, expected \(exp.count)" }
                }
            }
            if result.worstRatio > 1 || result.worstRatio.isNaN { result.status = .failed }
        } catch let e as BNError {
            if spec.expectError != nil, case .singleValuePerChannel = e { return result }
            result.status = .failed; result.worstRatio = .infinity; result.detail = "error: \(e.description)"
        } catch {
            result.status = .failed; result.worstRatio = .infinity; result.detail = "error: \(error)"
        }
        return result
    }

    static func run(_ c: GoldenStore.LoadedCase, _ k: any BatchNormKernel) throws -> [String: [Double]] {
        let spec = c.spec, s = try spec.shapeValue(), L = spec.layout, dt = spec.dtype
        func v(_ key: String) -> [Double] { c.inputs[key]?.values ?? [] }
        switch spec.op {
        case .train:
            let o = try k.train(v("x"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), beta: v("beta"), eps: spec.eps,
                                runningMean: v("running_mean"), runningVariance: v("running_var"), step: 1, rule: try spec.rule())
            return ["y": o.y, "batch_mean": o.batchMean, "batch_var": o.batchVariance,
                    "running_mean": o.runningMean, "running_var": o.runningVariance]
        case .infer:
            return ["y": try k.infer(v("x"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), beta: v("beta"), eps: spec.eps,
                                     mean: v("mean"), variance: v("var"))]
        case .backwardTrain:
            let g = try k.backwardTrain(v("x"), dy: v("dy"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), eps: spec.eps)
            return ["dx": g.dx, "dgamma": g.dGamma, "dbeta": g.dBeta]
        case .backwardInfer:
            let g = try k.backwardInfer(v("x"), dy: v("dy"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), eps: spec.eps,
                                        mean: v("mean"), variance: v("var"))
            return ["dx": g.dx, "dgamma": g.dGamma, "dbeta": g.dBeta]
        case .trajectory:
            let xs = v("x"), per = s.elementCount
            var rm = v("running_mean"), rv = v("running_var"), allM: [Double] = [], allV: [Double] = []
            for step in 0..<spec.steps {
                let o = try k.train(Array(xs[(step * per)..<((step + 1) * per)]), shape: s, layout: L, dtype: dt,
                                    gamma: v("gamma"), beta: v("beta"), eps: spec.eps, runningMean: rm,
                                    runningVariance: rv, step: step + 1, rule: try spec.rule())
                // Running statistics live in the parameter dtype between steps.
                rm = o.runningMean.map(spec.parameterDType.quantize); rv = o.runningVariance.map(spec.parameterDType.quantize)
                allM += rm; allV += rv
            }
            let y = try k.infer(v("x_eval"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), beta: v("beta"), eps: spec.eps,
                                mean: rm, variance: rv)
            return ["running_mean": allM, "running_var": allV, "y_eval": y]
        }
    }
}
