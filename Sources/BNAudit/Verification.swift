import BNCore
import BNGolden
import BNKernels
import BNReference
import Foundation

/// `bnspec verify`: the reference and every registered kernel over a golden folder.
public enum Verification {
    /// Every kernel `verify` knows: implementations, then calibration kernels.
    public static let kernels: [any BatchNormKernel] =
        [ScalarKernel(), OptimizedKernel(.simd), OptimizedKernel(.fused), OptimizedKernel(.threaded(OptimizedKernel.defaultThreads)),
         OptimizedKernel(.fusedFloat16), OptimizedKernel(.fusedBFloat16)]
        + ScalarKernel.Mutation.allCases.filter { $0 != .none }.map { ScalarKernel($0) }

    public struct Summary: Codable, Sendable {
        public var name: String
        public var role: String
        public var passed = 0, failed = 0, skipped = 0
        public var worstRatio = 0.0
        enum CodingKeys: String, CodingKey { case name, role, passed, failed, skipped, worstRatio = "worst_ratio" }
    }

    public struct Report: Codable, Sendable {
        public var implementations: [Summary]
        public var cases: [CaseResult]
        /// True when the reference and all implementations and honest calibration kernels
        /// passed every case and every mutant was caught.
        public var ok: Bool
    }

    static func roleName(_ r: KernelRole) -> String {
        switch r { case .implementation: "implementation"; case .honestCalibration: "honest-calibration"; case .mutant: "mutant" }
    }

    /// The reference must reproduce the golden outputs bit for bit.
    public static func judgeReference(_ c: GoldenStore.LoadedCase) -> CaseResult {
        var r = CaseResult(caseID: c.spec.id, family: c.spec.family, implementation: "reference", status: .passed,
                           worstRatio: 0, worstAt: "", detail: "", repro: "bnspec verify --case \(c.spec.id) --implementation reference")
        do {
            let again = try Generator.expected(c.spec, c.inputs)
            for (name, exp) in c.expected {
                let got = again[name]?.values ?? []
                let same = got.count == exp.values.count && zip(got, exp.values).allSatisfy { $0.bitPattern == $1.bitPattern }
                if !same {
                    r.status = .failed; r.worstRatio = .infinity; r.worstAt = name
                    r.detail = "reference output '\(name)' differs from golden bit pattern"
                }
            }
            if c.spec.expectError != nil {
                // The reference itself must refuse the case.
                let s = try c.spec.shapeValue()
                guard let x = c.inputs["x"]?.values, x.count >= s.elementCount else {
                    throw BNError.corrupt(path: c.spec.id, reason: "input 'x' is missing or too short")
                }
                do {
                    _ = try Reference.trainingStep(Array(x.prefix(s.elementCount)), shape: s,
                                                   layout: c.spec.layout, gamma: nil, beta: nil, eps: c.spec.eps,
                                                   running: RunningStatistics(channels: s.channels), rule: try c.spec.rule(),
                                                   profileName: c.spec.profile)
                    r.status = .failed; r.detail = "reference accepted a case its profile refuses"
                } catch BNError.singleValuePerChannel { }
            }
        } catch let e as BNError {
            r.status = .failed; r.worstRatio = .infinity; r.detail = e.description
        } catch { r.status = .failed; r.worstRatio = .infinity; r.detail = "\(error)" }
        return r
    }

    /// Runs the selected implementations (all when `only` is empty) over the golden folder.
    public static func run(golden: URL, only: [String] = [], caseFilter: String? = nil,
                           progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        let manifest = try GoldenStore.manifest(golden)
        var ids = manifest.cases
        if let f = caseFilter {
            ids = ids.filter { $0 == f }
            guard !ids.isEmpty else { throw BNError.invalidArgument("no case '\(f)' in \(golden.path)") }
        }
        let known = ["reference"] + kernels.map(\.name)
        for name in only where !known.contains(name) {
            throw BNError.invalidArgument("unknown implementation '\(name)' (known: \(known.joined(separator: ", ")))")
        }
        let selected = kernels.filter { only.isEmpty || only.contains($0.name) }
        let runReference = only.isEmpty || only.contains("reference")
        var results: [CaseResult] = []
        for (i, id) in ids.enumerated() {
            progress?(i, ids.count)
            let c = try GoldenStore.loadCase(golden, id: id, manifest: manifest)
            if runReference { results.append(judgeReference(c)) }
            for k in selected { results.append(CaseJudge.judge(c, kernel: k)) }
        }
        var summaries: [Summary] = []
        let names = (runReference ? ["reference"] : []) + selected.map(\.name)
        for name in names {
            let role = name == "reference" ? "reference" : roleName(selected.first { $0.name == name }!.role)
            var s = Summary(name: name, role: role)
            for r in results where r.implementation == name {
                switch r.status {
                case .passed: s.passed += 1
                case .failed: s.failed += 1
                case .skipped: s.skipped += 1
                }
                if r.status != .skipped { s.worstRatio = max(s.worstRatio, r.worstRatio) }
            }
            summaries.append(s)
        }
        let ok = summaries.allSatisfy { s in s.role == "mutant" ? (s.failed > 0 || caseFilter != nil) : s.failed == 0 }
        return Report(implementations: summaries, cases: results, ok: ok)
    }
}
