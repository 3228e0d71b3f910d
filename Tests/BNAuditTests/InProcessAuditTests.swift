import BNAudit
import BNCalibration
import BNCore
import BNGolden
import BNKernels
import Foundation
import Testing

/// The in-process audit (spec/AUDIT.md §8): a kernel or a set of closures judged in the test
/// process with the same verdicts, causes and details as the file route, only the supplied
/// operations run, refusals and unsupported cases as through an adapter, repro lines that
/// rerun one case.
@Suite struct InProcessAuditTests {
    static let filter = ".4x3x5x5."

    func audit(_ filter: String = filter, rerun: String = "swift test --filter X") throws -> Audit {
        Audit(profile: .pytorch, cases: try AuditSupport.cases(filter), goldenDir: AuditSupport.golden, reproBase: rerun)
    }

    func audit(id: String) throws -> Audit {
        try Audit(profile: .pytorch, golden: AuditSupport.golden, cases: CaseSelector(ids: [id]), rerun: "swift test --filter X")
    }

    /// Writes what `kernel` returns for each case as recorded results (exact, float64 NPY), or
    /// error.txt when it refuses.
    func record(_ kernel: any BatchNormKernel, _ audit: Audit, to dir: URL) throws {
        for c in audit.cases {
            let ac = try AuditCase(c, profile: audit.profile)
            let d = dir.appendingPathComponent(c.spec.id)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            guard let out = try? CaseJudge.run(ac.loaded, kernel) else {
                try Data("refused".utf8).write(to: d.appendingPathComponent("error.txt")); continue
            }
            for (name, v) in out where ac.loaded.spec.outputs[name] != nil {
                try NPYArray(dtype: .f64, shape: [v.count], values: v).encoded().write(to: d.appendingPathComponent("\(name).npy"))
            }
        }
    }

    /// The same outputs judged in process and from files give the same verdicts, worst ratios,
    /// details and causes: one judge.
    @Test(arguments: ["scalar", "eps-outside-sqrt", "nhwc-off-by-one", "one-pass-variance"])
    func sameVerdictsAsRecordedOutputs(kernel name: String) throws {
        let kernel: any BatchNormKernel = name == "scalar" ? ScalarKernel() : CalibrationKernel(CalibrationKernel.Mutation(rawValue: name)!)
        let a = try audit()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-inprocess-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try record(kernel, a, to: dir)
        let files = try a.run(results: dir, name: kernel.name), inProcess = try a.run(kernel: kernel)
        #expect(inProcess.implementation == kernel.name && inProcess.results.count == a.cases.count)
        #expect(inProcess.results.map(\.caseID) == files.results.map(\.caseID))
        for (p, f) in zip(inProcess.results, files.results) {
            #expect(p.status == f.status && p.likelyCause == f.likelyCause && p.detail == f.detail, "\(p.caseID): \(p) vs \(f)")
            #expect(p.worstRatio == f.worstRatio || (p.worstRatio.isNaN && f.worstRatio.isNaN), "\(p.caseID)")
            #expect(p.worstUlps == f.worstUlps || (p.worstUlps?.isNaN == true && f.worstUlps?.isNaN == true), "\(p.caseID)")
        }
        if name == "scalar" { #expect(inProcess.ok && inProcess.passed == a.cases.count) } else { #expect(inProcess.failed > 0) }
    }

    /// The honest kernel passes the single-value cases by refusing them, as the profile requires.
    @Test func honestKernelRefusesWhatTheProfileRefuses() throws {
        let r = try audit(".1x4x1x1.NCHW.f32.").run(kernel: ScalarKernel())  // the 7 profiles (every type has them since round G)
        #expect(r.results.count == 7 && r.passed == 7, "\(r.results)")
        #expect(r.results.allSatisfy { $0.detail.hasPrefix("refused as the profile requires") })
    }

    /// Only the operations supplied run; the rest, and undeclared dtypes, are skipped (not failed).
    @Test func onlySuppliedOperationsRun() throws {
        var ops = BatchNormOperations(ScalarKernel())
        ops.infer = nil; ops.backwardInfer = nil; ops.dtypes = [.f32]
        let a = try audit(), r = try a.run(operations: ops)
        let specs = Dictionary(uniqueKeysWithValues: a.cases.map { ($0.spec.id, $0.spec) })
        #expect(r.failed == 0 && r.passed > 0)
        for x in r.results {
            let spec = try #require(specs[x.caseID])
            let runs = (spec.op == .train || spec.op == .backwardTrain) && spec.dtype == .f32
            #expect(x.status == (runs ? .passed : .skipped), "\(x)")
            if !runs { #expect(x.detail.hasPrefix("not supported by the kernel (\(spec.op.rawValue), \(spec.dtype.rawValue)")) }
        }
    }

    /// Unsupported → skipped; any other error refuses the case: a failure with its cause where the
    /// profile defines the case, a pass where it requires a refusal; outputs where a refusal is
    /// required fail.
    @Test func refusalsAndUnsupportedCases() throws {
        struct Refusal: Error, CustomStringConvertible { var description: String { "no thanks" } }
        let scalar = ScalarKernel()
        let picky = BatchNormOperations(name: "picky", train: { a in
            if a.layout == .nhwc { throw BatchNormOperations.Unsupported("NHWC") }
            throw Refusal()
        })
        let a = try audit(id: "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1")
        let b = try audit(id: "train.normal.4x3x5x5.NHWC.f32.pytorch.eps1e-05.m0.1")
        let refused = try a.run(operations: picky).results, unsupported = try b.run(operations: picky).results
        #expect(refused.count == 1 && refused[0].status == .failed && refused[0].detail == "kernel refused the case: no thanks"
                && refused[0].likelyCause == "refuses a case the profile defines", "\(refused)")
        #expect(unsupported.count == 1 && unsupported[0].status == .skipped && unsupported[0].detail == "kernel: unsupported: NHWC")
        let single = try audit(".1x4x1x1.NCHW.f32.")
        #expect(try single.run(operations: picky).passed == 7)
        // Outputs for a case that must be refused: a kernel that never refuses.
        let lenient = BatchNormOperations(name: "lenient", train: { a in
            try scalar.train(a.x, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, beta: a.beta, eps: a.eps,
                             runningMean: a.runningMean, runningVariance: a.runningVariance, step: a.step,
                             rule: try RunningUpdateRule(weighting: .batch, momentum: 0.1, estimator: .biased, singleValue: .beta))
        })
        let r = try single.run(operations: lenient)
        #expect(r.failed == 7 && r.results.allSatisfy { $0.detail.hasPrefix("expected a refusal (") }, "\(r.results)")
    }

    /// An implementation without running statistics: train judged without them, trajectories skipped.
    @Test func withoutRunningStatistics() throws {
        let scalar = ScalarKernel()
        let ops = BatchNormOperations(name: "stateless", runningStatistics: false, train: { a in
            var o = try scalar.train(a.x, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, beta: a.beta, eps: a.eps,
                                     runningMean: a.runningMean, runningVariance: a.runningVariance, step: a.step, rule: a.rule)
            o.runningMean = []; o.runningVariance = []
            return o
        }, infer: { a in
            try scalar.infer(a.x, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, beta: a.beta, eps: a.eps,
                             mean: a.mean, variance: a.variance)
        })
        let train = try audit(id: "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1").run(operations: ops).results
        #expect(train.count == 1 && train[0].status == .passed && train[0].detail.contains("not provided by the implementation"), "\(train)")
        let traj = try audit("trajectory.normal.2x3x2x2").run(operations: ops)
        #expect(traj.skipped == traj.results.count && traj.results.count > 0)
    }

    /// A failure's repro names its case in BNSPEC_CASE; that selection audits exactly that case
    /// with the same verdict.
    @Test func reproRerunsExactlyThatCase() throws {
        let kernel = CalibrationKernel(.epsOutsideSqrt)
        let full = try audit(rerun: "swift test --filter MyAudit").run(kernel: kernel)
        let f = try #require(full.results.first { $0.status == .failed })
        #expect(f.repro == "BNSPEC_CASE=\(f.caseID) swift test --filter MyAudit")
        let env = ["BNSPEC_CASE": f.caseID]
        #expect(try Audit.caseIDs(golden: AuditSupport.golden, cases: Audit.environmentSelector(env)) == [f.caseID])
        let again = try Audit(profile: .pytorch, golden: AuditSupport.golden, cases: Audit.environmentSelector(env),
                              rerun: "swift test --filter MyAudit").run(kernel: kernel)
        #expect(again.results.count == 1 && again[case: f.caseID]?.detail == f.detail && again[case: f.caseID]?.likelyCause == f.likelyCause)
        #expect(Audit.environmentSelector(["BNSPEC_CASE": " a , b", "BNSPEC_MATCH": "train.*"]) == CaseSelector(ids: ["a", "b"], match: ["train.*"]))
        #expect(Audit.environmentSelector([:]).selectsEverything)
        #expect(throws: BNError.self) { try Audit.caseIDs(golden: AuditSupport.golden, cases: Audit.environmentSelector(["BNSPEC_CASE": "nope"])) }
    }

    /// Without a golden folder the audit reads the golden suite of the sources it was built from.
    @Test func packagedGoldenIsThisCheckouts() throws {
        #expect(try Audit.packagedGolden().standardizedFileURL.path == AuditSupport.golden.standardizedFileURL.path)
        #expect(try Audit.caseIDs() == GoldenStore.manifest(AuditSupport.golden).cases)
    }
}
