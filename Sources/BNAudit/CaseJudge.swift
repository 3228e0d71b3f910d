import BNCalibration
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
    /// Reference rows: how finely the case judges its primary output (spec §5.4); nil when it
    /// has nothing finite to judge.
    public var resolution: Double? = nil
    /// Elements of the worst output beyond tolerance, of `judged` elements there (nil: no comparison).
    public var beyond: Int? = nil
    public var judged: Int? = nil
    /// True on a calibration kernel's row that was skipped because calibration kernels were not
    /// requested for this case (``Verification/CalibrationPolicy``): nothing is known of it.
    public var notRequested: Bool? = nil

    enum CodingKeys: String, CodingKey {
        case caseID = "case", family, implementation, status, worstRatio = "worst_ratio", worstAt = "worst_at", detail, repro
        case digest = "output_sha256", resolution, beyond, judged, notRequested = "not_requested"
    }

    /// SHA-256 over the outputs in name order: for each, the UTF-8 name, a 0 byte, the value
    /// count (8 bytes little-endian) and each value's IEEE-754 binary64 bit pattern
    /// (little-endian), NaN as the canonical 0x7FF8… (``Swift/Double/canonicalBitPattern``: the sign and
    /// payload of a computed NaN depend on the machine and the optimiser). Equal digests ⇔ outputs
    /// bit-identical up to NaN sign and payload.
    public static func outputDigest(_ outputs: [String: [Double]]) -> String {
        var h = SHA256.Hasher()
        var chunk = [UInt64](repeating: 0, count: 4096)     // the bit patterns, streamed in blocks
        for name in outputs.keys.sorted() {
            let values = outputs[name]!
            h.update(Array(name.utf8) + [0])
            withUnsafeBytes(of: UInt64(values.count).littleEndian) { h.update($0) }
            values.withUnsafeBufferPointer { v in
                var i = 0
                while i < v.count {
                    let k = min(chunk.count, v.count - i)
                    chunk.withUnsafeMutableBufferPointer { c in
                        for j in 0..<k { c[j] = v[i + j].canonicalBitPattern.littleEndian }
                        h.update(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(c)[..<(8 * k)]))
                    }
                    i += k
                }
            }
        }
        return SHA256.hex(digest: h.finalize())
    }
}

/// Compares implementations' outputs with a golden case under the tolerance model
/// (``BNGolden/ToleranceBudget``).
public enum CaseJudge {
    /// |got − ref| / tol over an array (spec §5.3, §5.4):
    /// - an element whose bound exceeds `limit` (the compute format's largest finite value), or
    ///   is NaN, is unresolvable in that format and not judged — except a non-finite reference
    ///   that the input's own NaN or ±Inf defines, whose τ the budget pins to 0
    ///   (``BNGolden/ToleranceBudget``);
    /// - a NaN or ±Inf reference is matched exactly, or by one of `alternatives(i)` (the values
    ///   the spec also allows there, ``BNGolden/ToleranceBudget/alternatives``);
    /// - a finite reference within tolerance of the storage format's overflow is also matched by
    ///   the infinity an answer rounds to;
    /// - otherwise the answer must be finite and within tolerance.
    /// `beyond`: elements whose ratio exceeds 1, of `judged` elements (bound within `limit`).
    /// golden/'s stored tolerances follow these rules (``BNGolden/ToleranceBudget/storedTolerance(_:dtype:)``).
    static func worst(_ got: [Double], _ ref: [Double], _ tol: [Double], storage: DType?, limit: Double,
                      alternatives: (Int) -> [Double] = { _ in [] }) -> (ratio: Double, index: Int, beyond: Int, judged: Int) {
        guard got.count == ref.count, tol.count == ref.count else { return (.infinity, -1, got.count, ref.count) }
        func same(_ a: Double, _ b: Double) -> Bool { a.isNaN ? b.isNaN : a == b }
        var worst = 0.0, at = 0, beyond = 0, judged = 0
        for i in ref.indices {
            var g = got[i]
            let r = ref[i]
            if let st = storage { g = st.quantize(g) }
            let ratio: Double
            if !(tol[i] <= limit) {
                ratio = 0
            } else if !r.isFinite {
                ratio = same(r, g) || alternatives(i).contains(where: { same($0, g) }) ? 0 : .infinity
            } else if g.isInfinite, let st = storage, st.quantize(r + (g > 0 ? tol[i] : -tol[i])) == g {
                ratio = 0
            } else if !g.isFinite {
                ratio = .infinity
            } else {
                let err = abs(g - r)
                ratio = err == 0 ? 0 : (tol[i] > 0 ? err / tol[i] : .infinity)
            }
            if tol[i] <= limit { judged += 1 }
            if ratio > 1 || ratio.isNaN { beyond += 1 }
            if ratio > worst || ratio.isNaN { worst = ratio.isNaN ? .infinity : ratio; at = i }
        }
        return (worst, at, beyond, judged)
    }

    /// The problem a diagnosis works on: the case, the returned outputs and the judge's
    /// tolerances (also at other unit roundoffs, for the precision evidence).
    /// `analysis`: the case's data analysis when the caller has it (its exact moments are the
    /// problem's batch statistics, and the budgets at other roundoffs reuse it).
    public static func diagnosisProblem(_ c: GoldenStore.LoadedCase, got: [String: [Double]],
                                        budget given: ToleranceBudget? = nil, analysis: CaseAnalysis? = nil) throws -> DiagnosisProblem {
        let b = try given ?? ToleranceBudget(c, analysis: analysis)
        let storage = Set(c.spec.op.outputs.filter { $0.element == .storage }.map(\.name))
        // One batch of x: the analysis's moments are Reference.moments of x, as batchStatistics computes them.
        let known = c.spec.op.hasSteps ? nil : analysis?.batches.first.map { ($0.mean, $0.biasedVariance) }
        return DiagnosisProblem(
            spec: c.spec, inputs: c.inputs.mapValues(\.values), expected: c.expected.mapValues(\.values),
            got: got.filter { c.expected[$0.key] != nil }, tolerance: b.tolerances, storageOutputs: storage,
            alternatives: b.alternatives,
            budgetAt: { u in
                var d = c
                d.spec.tolerance.computeRoundoff = u
                guard let bb = try? ToleranceBudget(d, analysis: analysis) else { return nil }
                return (bb.tolerances, try? bb.resolution(d, analysis: analysis))
            },
            statisticsOfX: known)
    }

    /// The largest finite value of a case's compute format (float64 cases: Double; else Float).
    static func computeLimit(_ spec: CaseSpec) -> Double { ToleranceBudget.resolvableLimit(spec.dtype) }

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
        if c.spec.op.isSynchronized && !((kernel as? any SynchronizedBatchNormKernel)?.runsSynchronized ?? false) {
            return CaseResult(caseID: c.spec.id, family: c.spec.family, implementation: kernel.name, status: .skipped,
                              worstRatio: 0, worstAt: "", detail: "synchronized BN (\(c.spec.op.rawValue)) not supported",
                              repro: "bnspec verify --case \(c.spec.id) --implementation \(kernel.name)")
        }
        if let reason = unreachable(c.spec, kernel) { return skipped(c.spec, kernel, reason) }
        return judge(c, name: kernel.name, budget: budget) { try run(c, kernel) }
    }

    /// Why a calibration kernel is not run on this case — it does not implement the operation, or
    /// it is a mutant whose code there is the honest one (``BNCalibration/MutationReach``) — or nil.
    public static func unreachable(_ spec: CaseSpec, _ kernel: any BatchNormKernel) -> String? {
        guard let k = kernel as? any ReachDeclaring else { return nil }
        let used = entries(spec.op)
        if !used.isSubset(of: k.implemented) { return "not implemented by the kernel: \(spec.op.rawValue)" }
        return k.reach?.skipReason(entries: used, layout: spec.layout, dtype: spec.dtype)
    }

    /// The kernel entry points a case of `op` calls (``run(_:_:)``).
    package static func entries(_ op: Operation) -> Set<KernelEntry> {
        switch op {
        case .train: [.train]
        case .infer: [.infer]
        case .backwardTrain: [.backwardTrain]
        case .backwardInfer: [.backwardInfer]
        case .trajectory, .epoch: [.train, .infer]
        case .syncTrain: [.syncTrain]
        case .syncBackward: [.syncBackward]
        case .hvpTrain: [.hvpTrain]
        case .hvpInfer: [.hvpInfer]
        case .d2Train: [.d2Train]
        case .d3Train: [.d3Train]
        }
    }

    /// A skipped row with its one-line reason.
    static func skipped(_ spec: CaseSpec, _ kernel: any BatchNormKernel, _ reason: String) -> CaseResult {
        CaseResult(caseID: spec.id, family: spec.family, implementation: kernel.name, status: .skipped,
                   worstRatio: 0, worstAt: "", detail: reason, repro: "bnspec verify --case \(spec.id) --implementation \(kernel.name)")
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
                let alt = budget.alternatives[name] ?? [:]
                let (ratio, i, beyond, judged) = worst(g, exp, t, storage: spec.op.output(name)?.element == .storage ? spec.dtype : nil,
                                                       limit: computeLimit(spec), alternatives: { alt[$0] ?? [] })
                if ratio > result.worstRatio || result.worstAt.isEmpty {
                    result.worstRatio = ratio; result.worstAt = "\(name)[\(i)]"
                    result.beyond = i >= 0 ? beyond : nil; result.judged = i >= 0 ? judged : nil
                    if i >= 0 && i < exp.count {
                        let at = spec.op.output(name)?.coordinates(ofFlat: i, in: spec).map { "\(name)[\($0)]" } ?? "\(name)[\(i)]"
                        // A NaN prints as "nan" whatever its sign (SPEC §6.3): a value read from a file holds the canonical one.
                        func shown(_ v: Double) -> String { v.isNaN ? "nan" : "\(v)" }
                        result.detail = "\(at) = \(shown(g[i])), expected \(shown(exp[i])), tolerance \(t[i])"
                            + (beyond > 0 ? "; \(beyond) of \(judged) elements of \(name) beyond tolerance" : "")
                    } else { result.detail = "\(name): \(g.count) values, expected \(exp.count)" }
                }
            }
            if result.worstRatio > 1 || result.worstRatio.isNaN { result.status = .failed }
        } catch let e as UnsupportedOperation {     // the kernel does not implement the operation
            result.status = .skipped; result.detail = "not implemented by the kernel: \(e)"
        } catch let e as BNError {
            if spec.expectError != nil, case .singleValuePerChannel = e { return result }
            result.status = .failed; result.worstRatio = .infinity; result.detail = "error: \(e.description)"
        } catch {
            result.status = .failed; result.worstRatio = .infinity; result.detail = "error: \(error)"
        }
        return result
    }

    package static func run(_ c: GoldenStore.LoadedCase, _ k: any BatchNormKernel) throws -> [String: [Double]] {
        let spec = c.spec, s = try spec.shapeValue(), L = spec.layout, dt = spec.dtype
        func v(_ key: String) -> [Double] { c.inputs[key]?.values ?? [] }
        func direction(_ d: String) -> DerivativeDirection {
            DerivativeDirection(x: v("\(d)_x"), gamma: v("\(d)_gamma"), beta: v("\(d)_beta"))
        }
        if spec.op.isHigherOrder {
            guard let h = k as? any HigherOrderKernel else { throw UnsupportedOperation(spec.op.rawValue) }
            switch spec.op {
            case .hvpTrain, .hvpInfer:
                let o = spec.op == .hvpTrain
                    ? try h.hvpTrain(v("x"), dy: v("dy"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), eps: spec.eps,
                                     direction: direction("v"))
                    : try h.hvpInfer(v("x"), dy: v("dy"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), eps: spec.eps,
                                     mean: v("mean"), variance: v("var"), direction: direction("v"))
                return ["hv_x": o.x, "hv_gamma": o.gamma, "hv_beta": o.beta]
            case .d2Train:
                return ["d2y": try h.d2Train(v("x"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), eps: spec.eps,
                                             direction("v"), direction("w"))]
            default:
                return ["d3y": try h.d3Train(v("x"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), eps: spec.eps,
                                             direction("v"), direction("w"))]
            }
        }
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
        case .trajectory, .epoch:
            var rm = v("running_mean"), rv = v("running_var"), allM: [Double] = [], allV: [Double] = []
            for (step, batch) in try spec.trainingBatches(v("x")).enumerated() {
                let o = try k.train(batch.values, shape: batch.shape, layout: L, dtype: dt,
                                    gamma: v("gamma"), beta: v("beta"), eps: spec.eps, runningMean: rm,
                                    runningVariance: rv, step: step + 1, rule: try spec.rule())
                // Running statistics live in the parameter dtype between steps.
                rm = o.runningMean.map(spec.parameterDType.quantize); rv = o.runningVariance.map(spec.parameterDType.quantize)
                allM += rm; allV += rv
            }
            let y = try k.infer(v("x_eval"), shape: s, layout: L, dtype: dt, gamma: v("gamma"), beta: v("beta"), eps: spec.eps,
                                mean: rm, variance: rv)
            return ["running_mean": allM, "running_var": allV, "y_eval": y]
        case .syncTrain, .syncBackward:
            guard let sk = k as? any SynchronizedBatchNormKernel, sk.runsSynchronized, let p = try spec.partitionValue() else {
                throw BNError.invalidArgument("\(k.name) does not run synchronized BN")
            }
            if spec.op == .syncTrain {
                let o = try sk.syncTrain(v("x"), shape: s, layout: L, dtype: dt, partition: p, gamma: v("gamma"), beta: v("beta"),
                                         eps: spec.eps, runningMean: v("running_mean"), runningVariance: v("running_var"), step: 1,
                                         rule: try spec.rule())
                return ["y": o.y, "batch_mean": o.batchMean, "batch_var": o.batchVariance,
                        "running_mean": o.runningMean, "running_var": o.runningVariance]
            }
            guard let reduction = spec.gradReduction else { throw BNError.corrupt(path: spec.id, reason: "no grad_reduction") }
            let g = try sk.syncBackward(v("x"), dy: v("dy"), shape: s, layout: L, dtype: dt, partition: p, reduction: reduction,
                                        gamma: v("gamma"), eps: spec.eps)
            return ["dx": g.dx, "dgamma": g.dGamma, "dbeta": g.dBeta]
        case .hvpTrain, .hvpInfer, .d2Train, .d3Train:
            throw UnsupportedOperation(spec.op.rawValue)     // handled above
        }
    }
}
