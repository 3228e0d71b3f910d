import BNAudit
import BNCalibration
import BNCore
import BNGolden
import BNReference
import Testing

/// The synchronized tolerance budget (spec §5.2, §11.4) from both sides: every honest exchange —
/// Chan's merge rank by rank and over a tree, PyTorch's invstd round trip, two all-reduce rounds
/// of shifted sums, each over every per-rank algorithm of HonestKernel — passes random and
/// adversarial partitions; each synchronized calibration mutant is caught by the golden suite
/// and the diagnosis names its cause, and no other.
@Suite struct SynchronizedBudgetTests {
    /// A random partition of `batch` samples over 1…8 ranks, empty and one-sample ranks included.
    static func partition(batch: Int, _ r: inout SpecRandom) -> [Int] {
        let k = 1 + r.int(below: 8)
        let cuts = (0..<(k - 1)).map { _ in r.int(below: batch + 1) }.sorted()
        let bounds = [0] + cuts + [batch]
        return (0..<k).map { bounds[$0 + 1] - bounds[$0] }
    }

    /// In-memory cases: shapes N = 1…16 with C = 1…4, spatial none or 2×2 or 3×1; families with
    /// small and large offsets, near-constant (var ≪ eps), constant, exact; eps 0, 1e-5, 1e-3;
    /// float32 and float64; and adversarial variants: the first non-empty rank shifted by 100σ…
    /// (an outlier rank the merge must carry), values sorted within each channel.
    static func cases(count: Int) throws -> [GoldenStore.LoadedCase] {
        var r = SpecRandom("sync-budget/cases")
        let families = ["normal", "uniform", "offset:1e2", "offset:1e3", "near-constant", "constant", "exact", "spread:1e-5", "spread:1e-3"]
        var out: [GoldenStore.LoadedCase] = []
        for i in 0..<count {
            let n = 1 + r.int(below: 16), c = 1 + r.int(below: 4)
            let spatial = [[], [2, 2], [3, 1]][r.int(below: 3)]
            let shape = ([n, c] + spatial).map(String.init).joined(separator: "x")
            let layout = spatial.isEmpty ? "NC" : ["NCHW", "NHWC"][r.int(below: 2)]
            let op: BNGolden.Operation = r.int(below: 2) == 0 ? .syncTrain : .syncBackward
            var keys = ["shape": shape, "layout": layout, "data": families[r.int(below: families.count)],
                        "partition": partition(batch: n, &r).map(String.init).joined(separator: "+"),
                        "eps": ["0", "1e-05", "0.001"][r.int(below: 3)], "profile": ["pytorch", "keras"][r.int(below: 2)],
                        "dtype": r.int(below: 4) == 0 ? "f64" : "f32"]
            if op == .syncBackward { keys["grad_reduction"] = r.int(below: 2) == 0 ? "local" : "global" }
            if keys["eps"] == "0" && keys["data"] == "constant" { keys["eps"] = "1e-05" }  // y is NaN there by definition
            var spec = try Catalog.makeCase(op, keys)
            spec.id += ".\(i)"
            var inputs = try Generator.inputs(spec)
            let s = try spec.shapeValue(), part = try spec.partitionValue()!
            switch r.int(below: 4) {
            case 0:  // the first non-empty rank far from the others
                if let k = part.counts.firstIndex(where: { $0 > 0 }), part.counts.filter({ $0 > 0 }).count > 1 {
                    let range = part.elementRange(rank: k, of: s), shift = 100 * (1 + r.uniform())
                    var x = inputs["x"]!
                    for j in range { x.values[j] = spec.dtype.quantize(x.values[j] + shift) }
                    inputs["x"] = x
                }
            case 1:  // each channel's values sorted in logical order (ranks hold the low or the high values)
                var x = inputs["x"]!
                for ch in 0..<s.channels {
                    let idx = spec.layout.segments(channel: ch, shape: s).flatMap { g in (0..<g.count).map { g.offset + $0 * g.stride } }
                    let sorted = idx.map { x.values[$0] }.sorted()
                    for (j, i) in idx.enumerated() { x.values[i] = sorted[j] }
                }
                inputs["x"] = x
            default: break
            }
            if spec.expectError != nil { continue }
            out.append(GoldenStore.LoadedCase(spec: spec, inputs: inputs, expected: try Generator.expected(spec, inputs)))
        }
        return out
    }

    @Test func everyHonestExchangePassesTheSynchronizedBudget() throws {
        var worst: [String: (Double, String)] = [:]
        for c in try Self.cases(count: 400) {
            let budget = try ToleranceBudget(c)
            for k in HonestKernel.all {
                let r = CaseJudge.judge(c, kernel: k, budget: budget)
                #expect(r.status == .passed, "\(k.name) (\(k.exchange.rawValue)) on \(c.spec.id): \(r.detail)")
                if r.worstRatio > (worst[k.name]?.0 ?? -1) { worst[k.name] = (r.worstRatio, c.spec.id) }
            }
        }
        for k in worst.keys.sorted() { print("sync budget \(k): worst error ÷ tolerance \(worst[k]!.0) on \(worst[k]!.1)") }
    }

    /// The invstd round trip is honest but lossy: on var ≪ eps its variance error is far above the
    /// single-device class bound (so the synchronized term is needed) and within the synchronized one.
    @Test func theRoundTripNeedsItsTermAndStaysWithinIt() throws {
        let spec = try Catalog.makeCase(.syncTrain, ["shape": "64x4", "data": "spread:1e-5", "partition": "16+16+16+16"])
        let inputs = try Generator.inputs(spec)
        let c = GoldenStore.LoadedCase(spec: spec, inputs: inputs, expected: try Generator.expected(spec, inputs))
        let p = try spec.partitionValue()!, s = try spec.shapeValue()
        let o = try HonestKernel(.welford).syncTrain(inputs["x"]!.values, shape: s, layout: .nc, dtype: .f32, partition: p,
                                                     gamma: inputs["gamma"]!.values, beta: inputs["beta"]!.values, eps: spec.eps,
                                                     runningMean: inputs["running_mean"]!.values, runningVariance: inputs["running_var"]!.values,
                                                     step: 1, rule: try spec.rule())
        let a = try CaseAnalysis(c), m = ToleranceModel(spec)
        var beyondClass = 0
        for ch in 0..<s.channels {
            let v = a.batches[0].biasedVariance[ch], err = abs(o.batchVariance[ch] - v)
            let single = m.statBounds(a.batches[0].data[ch], variance: v)
            let sync = m.synchronizedStatBounds(a.batches[0].data[ch], mean: a.batches[0].mean[ch], variance: v,
                                                ranks: a.rankParts(channel: ch), eps: spec.eps)
            #expect(err <= sync.variance, "channel \(ch): round-trip error \(err) > synchronized bound \(sync.variance)")
            if err > single.variance { beyondClass += 1 }
            print("round trip channel \(ch): variance error ÷ single-device class bound \(err / single.variance), ÷ synchronized bound \(err / sync.variance)")
        }
        #expect(beyondClass > 0, "the round trip stayed within the single-device class bound: the test shows nothing")
    }

    /// Each synchronized calibration mutant fails golden cases, and the diagnosis of every failure
    /// names the mutant's cause (Mutation.expectedCause) or nothing.
    @Test(arguments: CalibrationKernel.Mutation.allCases.filter { $0.synchronizationBug != nil })
    func syncMutantIsCaughtWithItsCause(mutation: CalibrationKernel.Mutation) throws {
        let kernel = CalibrationKernel(mutation), expected = try #require(mutation.expectedCause)
        var causes: [String: Int] = [:], failed = 0
        for c in try AuditSupport.cases("sync-") {
            let budget = c.spec.expectError == nil ? try ToleranceBudget(c) : nil
            let r = CaseJudge.judge(c, kernel: kernel, budget: budget)
            guard r.status == .failed, let b = budget else { continue }
            failed += 1
            let s = try c.spec.shapeValue(), p = try c.spec.partitionValue()!
            let got: [String: [Double]]
            if c.spec.op == .syncTrain {
                let o = try kernel.syncTrain(c.inputs["x"]!.values, shape: s, layout: c.spec.layout, dtype: c.spec.dtype, partition: p,
                                             gamma: c.inputs["gamma"]!.values, beta: c.inputs["beta"]!.values, eps: c.spec.eps,
                                             runningMean: c.inputs["running_mean"]!.values, runningVariance: c.inputs["running_var"]!.values,
                                             step: 1, rule: try c.spec.rule())
                got = ["y": o.y, "batch_mean": o.batchMean, "batch_var": o.batchVariance, "running_mean": o.runningMean,
                       "running_var": o.runningVariance]
            } else {
                let g = try kernel.syncBackward(c.inputs["x"]!.values, dy: c.inputs["dy"]!.values, shape: s, layout: c.spec.layout,
                                                dtype: c.spec.dtype, partition: p, reduction: c.spec.gradReduction!,
                                                gamma: c.inputs["gamma"]!.values, eps: c.spec.eps)
                got = ["dx": g.dx, "dgamma": g.dGamma, "dbeta": g.dBeta]
            }
            let d = Diagnosis.of(try CaseJudge.diagnosisProblem(c, got: got, budget: b))
            causes[d.cause ?? "unexplained", default: 0] += 1
        }
        #expect(failed > 0, "\(mutation.rawValue) is not caught by any golden case")
        let named = causes.filter { $0.key != "unexplained" }
        let top = named.max { $0.value < $1.value }?.key ?? "unexplained"
        #expect(top.contains(expected), "\(mutation.rawValue): most frequent cause \(top); causes \(causes)")
        for cause in named.keys { #expect(cause.contains(expected), "\(mutation.rawValue): wrong cause named: \(cause)") }
        print("sync mutant \(mutation.rawValue): \(failed) failures, causes \(causes)")
    }
}
