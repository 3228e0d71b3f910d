import BNCore
import BNGolden
import BNKernels
import BNReference
import PropertyBased
import Testing
import BNAudit

/// Laws 13, 14 and 15: folding, thread-count independence, and every Float kernel within
/// the spec's tolerance on generated cases (built exactly like golden cases, with the
/// case id salted by a generated seed, and judged by the same ``CaseJudge``).
@Suite struct LawsOfKernels {
    /// A generated case: catalog fields plus a seed.
    struct GeneratedCase: CustomStringConvertible, Sendable {
        var op: Operation, fields: [String: String], seed: Int
        var description: String {
            "\(op.rawValue) " + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + " seed=\(seed)"
        }
        func load() throws -> GoldenStore.LoadedCase {
            var spec = try Catalog.makeCase(op, fields)
            spec.id += ".seed\(seed)"
            let inputs = try BNGolden.Generator.inputs(spec)
            return GoldenStore.LoadedCase(spec: spec, inputs: inputs, expected: try BNGolden.Generator.expected(spec, inputs))
        }
    }

    static var cases: PropertyBased.Generator<GeneratedCase, some SendableSequenceType> {
        zip(pick([Operation.train, .infer, .backwardTrain, .backwardInfer, .trajectory]),
            pick(["1x3x1x1", "2x3x1x1", "2x5x3x3", "3x9x4x5", "4x8", "5x17", "2x16x2x2", "1x2x7x7"]),
            pick(["NCHW", "NHWC"]), pick(["f32", "f32", "f16", "bf16"]),
            pick(["normal", "uniform", "offset:1e4", "constant", "near-constant", "subnormal", "exact", "huge:1e20"]),
            pick(ConventionProfile.all.map(\.name)), pick(["default", "0", "1e-3", "0.1"]),
            Gen.int(in: 0...1_000_000))
        .map { op, shape, layout, dtype, data, profile, eps, seed in
            var f = ["shape": shape, "layout": shape.split(separator: "x").count == 2 ? "NC" : layout, "dtype": dtype, "data": data,
                     "profile": profile, "eps": eps]
            if op == .trajectory { f["steps"] = "3" }
            // ε = 0 on a constant channel is 0/0 by definition (spec §4): keep it to the cases where it is meaningful.
            if eps == "0" && (data == "constant" || data == "near-constant") { f["eps"] = "1e-3" }
            return GeneratedCase(op: op, fields: f, seed: seed)
        }
    }

    static let floatKernels: [any BatchNormKernel] = [ScalarKernel(), OptimizedKernel(.simd), OptimizedKernel(.fused),
                                                      OptimizedKernel(.threaded(2)), OptimizedKernel(.fusedFloat16),
                                                      OptimizedKernel(.fusedBFloat16)]

    /// Law 15 — every Float kernel, and the Float16/bfloat16 storage variants, stays within
    /// the tolerance model of the reference on every generated case of its dtype.
    @Test func everyKernelWithinTolerance() async {
        await propertyCheck(count: Laws.count(200), input: Self.cases) { gc in
            let c = try gc.load()
            for k in Self.floatKernels {
                let r = CaseJudge.judge(c, kernel: k)
                #expect(r.status != .failed, "law 15: \(k.name) on \(gc): \(r.detail ?? "")")
            }
        }
    }

    /// Law 14 — the threaded kernel gives the same bits on 1 and 2 threads (and 3) on every
    /// generated case, every output — also with order-sensitive (cancelling) values injected.
    @Test func threadedIsBitIdenticalForAnyThreadCount() async {
        await propertyCheck(count: Laws.count(200), input: Self.cases) { gc in
            let c = try gc.load()
            guard c.spec.dtype != .f64 else { return }
            func outputs(_ t: Int) -> [String: [UInt64]]? {
                (try? CaseJudge.run(c, OptimizedKernel(.threaded(t))))?.mapValues { $0.map(\.bitPattern) }
            }
            let one = outputs(1)
            #expect(outputs(2) == one && outputs(3) == one, "law 14: \(gc)")
            // The same case with +1e20 early and −1e20 halfway in every channel: a Double sum then
            // keeps only what is added after the cancellation, so any change of the reduction
            // tree (which values share a partial sum with −1e20) shows in the Float statistics.
            guard c.spec.op == .train || c.spec.op == .backwardTrain, var x = c.inputs["x"], let s = try? c.spec.shapeValue(),
                  s.perChannelCount >= 4 else { return }
            let rows = s.perChannelCount
            for ch in 0..<s.channels {
                let at = { (r: Int) in c.spec.layout.index(n: r / s.spatialSize, c: ch, s: r % s.spatialSize, shape: s) }
                x.values[at(1)] = 1e20; x.values[at(rows / 2)] = -1e20
            }
            var cancel = c
            cancel.inputs["x"] = x
            func cancelling(_ t: Int) -> [String: [UInt64]]? {
                (try? CaseJudge.run(cancel, OptimizedKernel(.threaded(t))))?.mapValues { $0.map(\.bitPattern) }
            }
            let oneC = cancelling(1)
            #expect(cancelling(2) == oneC && cancelling(3) == oneC, "law 14 (cancelling data): \(gc)")
        }
    }

    /// Law 13 — a linear or convolution layer followed by inference BN equals the folded
    /// layer within the folding bound, for random layers and data.
    @Test func foldingEqualsLayerThenBatchNorm() async {
        await propertyCheck(count: Laws.count(30), input: Gen.int(in: 0...1_000_000)) { seed in
            for r in try FoldingCheck(seed: "law13/\(seed)").run() {
                #expect(r.passed, "law 13: \(r.layer) seed \(seed): folded \(r.foldedRatio) unfolded \(r.unfoldedRatio) agreement \(r.agreementRatio)")
            }
        }
    }
}
