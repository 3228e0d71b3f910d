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
    /// (little-endian). Equal digests ⇔ bit-identical outputs (NaN payloads included).
    public static func outputDigest(_ outputs: [String: [Double]]) -> String {
        var bytes: [UInt8] = []
        for name in outputs.keys.sorted() {
            let values = outputs[name]!
            bytes += Array(name.utf8) + [0]
            withUnsafeBytes(of: UInt64(values.count).littleEndian) { bytes += $0 }
            bytes.reserveCapacity(bytes.count + 8 * values.count)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        }
        return SHA256.hex(bytes)
    }
}

/// Compares implementations' outputs with a golden case under the tolerance model.
public enum CaseJudge {
    /// Per-output expected values and per-element tolerances for an implementation.
    struct Budget {
        var tol: [String: [Double]] = [:]
        /// Outputs stored in the case's storage dtype (rounded before comparison).
        var storageOutputs: Set<String> = []
    }

    static func weight(_ rule: RunningUpdateRule, step k: Int) -> Double { rule.batchWeight(step: k) }

    /// Tolerances for every output of a case (spec/SPEC.md §5).
    static func budget(_ c: GoldenStore.LoadedCase) throws -> Budget {
        let spec = c.spec, m = ToleranceModel(spec), K = ToleranceModel.safety, u = m.u
        let s = try spec.shapeValue(), layout = spec.layout, n = s.perChannelCount, C = s.channels
        func inp(_ k: String) -> [Double] { c.inputs[k]?.values ?? [] }
        func ref(_ k: String) -> [Double] { c.expected[k]?.values ?? [] }
        let gamma = inp("gamma"), beta = inp("beta")
        var b = Budget()

        /// Stats bounds per channel from data x (per-channel max|x|) and reference mean/var.
        func channelInfo(_ x: [Double], mean: [Double], variance: [Double], batch: Bool)
            -> [(max: Double, r: Double, bounds: ToleranceModel.StatBounds, rho: Double)] {
            (0..<C).map { ch in
                var mx = 0.0
                for seg in layout.segments(channel: ch, shape: s) {
                    for k in 0..<seg.count { mx = max(mx, abs(x[seg.offset + k * seg.stride])) }
                }
                let v = variance[ch]
                let bounds = batch ? m.statBounds(n: n, maxAbs: mx, variance: v)
                                   : ToleranceModel.StatBounds(mean: 0, variance: 0)
                return (mx, 1 / (v + spec.eps).squareRoot(), bounds, m.rho(bounds, variance: v, eps: spec.eps))
            }
        }
        /// Tolerance of y = γ·x̂ + β for every element.
        func yTolerance(_ x: [Double], mean: [Double], info: [(max: Double, r: Double, bounds: ToleranceModel.StatBounds, rho: Double)],
                        reference y: [Double]) -> [Double] {
            var t = [Double](repeating: 0, count: x.count)
            for ch in 0..<C {
                let g = abs(gamma[ch]), bt = abs(beta[ch]), inf = info[ch]
                for seg in layout.segments(channel: ch, shape: s) {
                    for k in 0..<seg.count {
                        let i = seg.offset + k * seg.stride
                        let xh = (x[i] - mean[ch]) * inf.r
                        let e = m.xhatError(x: x[i], mean: mean[ch], r: inf.r, xhat: xh, bounds: inf.bounds, rho: inf.rho)
                        t[i] = m.stored(K * (g * e + u * (g * abs(xh) + bt)), reference: y[i])
                    }
                }
            }
            return t
        }
        /// r' = (1 − w)·r + w·b: the error carried in r and b, plus the roundings counted
        /// term by term — 1 − w, ×r and the final + on (1 − w)·r (3u); ×b and + on w·b (2u);
        /// and w itself held in the compute type (|δw| ≤ u·w, times |r| + |b|).
        func runningTol(prev: [Double], prevTol: [Double], batch: [Double], batchTol: [Double], w: Double) -> [Double] {
            (0..<C).map { ch in
                let r = abs(prev[ch]), bb = abs(batch[ch])
                return (1 - w) * prevTol[ch] + w * batchTol[ch] + K * u * (3 * (1 - w) * r + 2 * w * bb + w * (r + bb))
            }
        }

        switch spec.op {
        case .train:
            let x = inp("x")
            let ms = try Reference.moments(x, shape: s, layout: layout)
            let mean = ms.map(\.mean), variance = ms.map(\.biasedVariance)
            let info = channelInfo(x, mean: mean, variance: variance, batch: true)
            b.tol["y"] = yTolerance(x, mean: mean, info: info, reference: ref("y")); b.storageOutputs.insert("y")
            b.tol["batch_mean"] = (0..<C).map { K * (info[$0].bounds.mean + u * abs(mean[$0])) }
            b.tol["batch_var"] = (0..<C).map { K * (info[$0].bounds.variance + u * variance[$0]) }
            let rule = try spec.rule(), w = weight(rule, step: 1)
            let corr = rule.estimator == .unbiased && n > 1 ? Double(n) / Double(n - 1) : 1
            let bvar = variance.map { $0 * corr }
            b.tol["running_mean"] = runningTol(prev: inp("running_mean"), prevTol: .init(repeating: 0, count: C), batch: mean,
                                               batchTol: info.map(\.bounds.mean), w: w)
            b.tol["running_var"] = runningTol(prev: inp("running_var"), prevTol: .init(repeating: 0, count: C), batch: bvar,
                                              batchTol: info.map { $0.bounds.variance * corr }, w: w)
        case .infer:
            let x = inp("x"), mean = inp("mean"), variance = inp("var")
            let info = channelInfo(x, mean: mean, variance: variance, batch: false)
            b.tol["y"] = yTolerance(x, mean: mean, info: info, reference: ref("y")); b.storageOutputs.insert("y")
        case .backwardTrain, .backwardInfer:
            let x = inp("x"), dy = inp("dy"), batch = spec.op == .backwardTrain
            var mean: [Double], variance: [Double]
            if batch {
                let ms = try Reference.moments(x, shape: s, layout: layout)
                mean = ms.map(\.mean); variance = ms.map(\.biasedVariance)
            } else { mean = inp("mean"); variance = inp("var") }
            let info = channelInfo(x, mean: mean, variance: variance, batch: batch)
            let dg = ref("dgamma"), dbt = ref("dbeta"), refDx = ref("dx"), nn = Double(n)
            var xhats = [Double](repeating: 0, count: x.count), errs = xhats
            var tdx = [Double](repeating: 0, count: x.count), tdg = [Double](), tdb = [Double]()
            for ch in 0..<C {
                let inf = info[ch], g = abs(gamma[ch])
                var sumDy = 0.0, sumDyXh = 0.0, sumDyE = 0.0
                let segs = layout.segments(channel: ch, shape: s)
                for seg in segs {
                    for k in 0..<seg.count {
                        let i = seg.offset + k * seg.stride
                        let h = (x[i] - mean[ch]) * inf.r
                        let e = m.xhatError(x: x[i], mean: mean[ch], r: inf.r, xhat: h, bounds: inf.bounds, rho: inf.rho)
                        xhats[i] = h; errs[i] = e
                        sumDy += abs(dy[i]); sumDyXh += abs(dy[i] * h); sumDyE += abs(dy[i]) * e
                    }
                }
                let tb = K * nn * u * sumDy
                // + n·tiny·r: each product dy·(x − μ) can fall in the subnormal range, where its
                // rounding error is absolute (≤ tiny), then scaled by r (spec §5.2; found by law 15).
                let tg = K * (nn * u * sumDyXh + sumDyE + nn * m.tiny * inf.r)
                tdb.append(tb); tdg.append(tg)
                for seg in segs { for k in 0..<seg.count {
                    let i = seg.offset + k * seg.stride, h = xhats[i], e = errs[i]
                    let t: Double
                    if batch {
                        let core = abs(dy[i]) + abs(dbt[ch]) / nn + abs(h * dg[ch]) / nn
                        t = K * g * inf.r * (2 * u * core + tb / nn + abs(h) * tg / nn + e * abs(dg[ch]) / nn + inf.rho * core)
                    } else {
                        t = K * g * inf.r * abs(dy[i]) * (3 * u + inf.rho)
                    }
                    // ρ = +Inf (spec §5.4): r is undetermined, so is every dx of the channel.
                    tdx[i] = inf.rho.isInfinite ? .infinity : m.stored(t, reference: refDx[i])
                } }
            }
            b.tol["dx"] = tdx; b.tol["dgamma"] = tdg; b.tol["dbeta"] = tdb; b.storageOutputs.insert("dx")
        case .trajectory:
            let xs = inp("x"), per = s.elementCount, rule = try spec.rule()
            var prevM = inp("running_mean"), prevV = inp("running_var")
            var tolM = [Double](repeating: 0, count: C), tolV = tolM
            var allM: [Double] = [], allV: [Double] = []
            for k in 0..<spec.steps {
                let x = Array(xs[(k * per)..<((k + 1) * per)])
                let ms = try Reference.moments(x, shape: s, layout: layout)
                let mean = ms.map(\.mean), variance = ms.map(\.biasedVariance)
                let info = channelInfo(x, mean: mean, variance: variance, batch: true)
                let w = weight(rule, step: k + 1)
                let corr = rule.estimator == .unbiased && n > 1 ? Double(n) / Double(n - 1) : 1
                let bv = ms.map { rule.estimator == .unbiased && n > 1 ? $0.unbiasedVariance : $0.biasedVariance }
                tolM = runningTol(prev: prevM, prevTol: tolM, batch: mean, batchTol: info.map(\.bounds.mean), w: w)
                tolV = runningTol(prev: prevV, prevTol: tolV, batch: bv, batchTol: info.map { $0.bounds.variance * corr }, w: w)
                let rm = ref("running_mean"), rv = ref("running_var")
                prevM = Array(rm[(k * C)..<((k + 1) * C)]); prevV = Array(rv[(k * C)..<((k + 1) * C)])
                allM += tolM; allV += tolV
            }
            b.tol["running_mean"] = allM; b.tol["running_var"] = allV
            // Inference with running statistics that carry errors tolM/tolV.
            let xe = inp("x_eval")
            var info = channelInfo(xe, mean: prevM, variance: prevV, batch: false)
            for ch in 0..<C {
                info[ch].bounds = ToleranceModel.StatBounds(mean: tolM[ch], variance: tolV[ch])
                info[ch].rho = m.rho(info[ch].bounds, variance: prevV[ch], eps: spec.eps)
            }
            b.tol["y_eval"] = yTolerance(xe, mean: prevM, info: info, reference: ref("y_eval")); b.storageOutputs.insert("y_eval")
        }
        return b
    }

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

    /// Checks that every array of a case has the length its shape implies, so a
    /// malformed case is reported, never indexed out of range.
    static func validate(_ c: GoldenStore.LoadedCase) throws {
        let spec = c.spec, s = try spec.shapeValue()
        let perX = s.elementCount * (spec.op == .trajectory ? spec.steps : 1)
        for (name, a) in c.inputs {
            let want = name == "x" ? perX : (name == "dy" || name == "x_eval" ? s.elementCount : s.channels)
            guard a.values.count == want else {
                throw BNError.corrupt(path: spec.id, reason: "input '\(name)' has \(a.values.count) values, expected \(want)")
            }
        }
        for (name, a) in c.expected {
            let big = ["y", "dx", "y_eval"].contains(name)
            let want = big ? s.elementCount : s.channels * (spec.op == .trajectory ? spec.steps : 1)
            guard a.values.count == want else {
                throw BNError.corrupt(path: spec.id, reason: "expected '\(name)' has \(a.values.count) values, expected \(want)")
            }
        }
    }

    /// Runs `kernel` on a case and judges it.
    public static func judge(_ c: GoldenStore.LoadedCase, kernel: any BatchNormKernel) -> CaseResult {
        guard kernel.dtypes.contains(c.spec.dtype) else {
            var r = CaseResult(caseID: c.spec.id, family: c.spec.family, implementation: kernel.name, status: .skipped,
                               worstRatio: 0, worstAt: "", detail: "dtype \(c.spec.dtype.rawValue) not supported",
                               repro: "bnspec verify --case \(c.spec.id) --implementation \(kernel.name)")
            r.status = .skipped
            return r
        }
        return judge(c, name: kernel.name) { try run(c, kernel) }
    }

    /// Judges outputs an implementation already produced (audits: adapters, recorded files).
    public static func judge(_ c: GoldenStore.LoadedCase, outputs: [String: [Double]], name: String) -> CaseResult {
        judge(c, name: name) { outputs }
    }

    static func judge(_ c: GoldenStore.LoadedCase, name: String, produce: () throws -> [String: [Double]]) -> CaseResult {
        let spec = c.spec
        var result = CaseResult(caseID: spec.id, family: spec.family, implementation: name, status: .passed,
                                worstRatio: 0, worstAt: "", detail: "",
                                repro: "bnspec verify --case \(spec.id) --implementation \(name)")
        do {
            try validate(c)
            let got = try produce()
            result.digest = CaseResult.outputDigest(got)
            if let e = spec.expectError {
                result.status = .failed; result.worstRatio = .infinity
                result.detail = "expected the implementation to refuse (\(e)), it returned outputs"
                _ = got; return result
            }
            let budget = try budget(c)
            for name in spec.outputs.keys.sorted() {
                guard let exp = c.expected[name]?.values, let g = got[name], let t = budget.tol[name] else {
                    result.status = .failed; result.worstRatio = .infinity; result.detail = "no output '\(name)'"; return result
                }
                let (ratio, i) = worst(g, exp, t, storage: budget.storageOutputs.contains(name) ? spec.dtype : nil,
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
