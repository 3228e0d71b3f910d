import BNCalibration
import BNCore
import BNGolden
import BNKernels
import BNReference
import Foundation

/// `bnspec verify`: the reference and every registered kernel over a golden folder.
public enum Verification {
    /// Every kernel `verify` knows: implementations, then calibration kernels (BNCalibration).
    public static var kernels: [any BatchNormKernel] { kernels(threads: OptimizedKernel.defaultThreads) }

    /// The same, with the `threaded` kernel on `threads` threads.
    public static func kernels(threads: Int) -> [any BatchNormKernel] {
        [ScalarKernel(), OptimizedKernel(.simd), OptimizedKernel(.fused), OptimizedKernel(.threaded(threads)),
         OptimizedKernel(.fusedFloat16), OptimizedKernel(.fusedBFloat16)]
            + HonestKernel.all + CalibrationKernel.all + HigherOrderCalibrationKernel.all
    }

    /// On which cases the calibration kernels (honest and mutants, BNCalibration) run. They
    /// calibrate the suite — do honest algorithms pass, are classic bugs caught — which the default
    /// suite establishes on small cases; on a large case they cost minutes and tell nothing new.
    /// `auto`: on cases of at most ``calibrationElementLimit`` elements, and on any case for a
    /// calibration kernel named with `--implementation`; `all`: every case; `none`: no case.
    public enum CalibrationPolicy: String, CaseIterable, Codable, Sendable { case auto, all, none }

    /// The largest case (elements of one x tensor) `auto` runs the calibration kernels on: 2^20,
    /// above the default suite's largest case (81,920) and below the `large` suite's smallest
    /// (32×64×28×28 = 1,605,632).
    public static let calibrationElementLimit = 1 << 20

    /// Why a calibration kernel is not run on a case of `elements` elements (`named`: with
    /// `--implementation`), or nil when it runs.
    package static func notRequested(elements: Int, policy: CalibrationPolicy, named: Bool) -> String? {
        switch policy {
        case .all: return nil
        case .none: return "calibration kernels not requested (--calibration none)"
        case .auto:
            if named || elements <= calibrationElementLimit { return nil }
            return "calibration kernels run by default on cases of at most \(calibrationElementLimit) elements, this one has \(elements) (--calibration all runs them)"
        }
    }

    public struct Summary: Codable, Sendable {
        public var name: String
        public var role: String
        public var passed = 0, failed = 0, skipped = 0
        public var worstRatio = 0.0
        /// SHA-256 of the per-case output digests in case order ("-" for a case without
        /// outputs): equal across runs, machines and thread counts iff every output bit is.
        public var digest: String? = nil
        /// Cases of the selection this calibration kernel was not run on because calibration was not
        /// requested there (counted in `skipped` too); nil for none.
        public var notRequested: Int? = nil
        enum CodingKeys: String, CodingKey {
            case name, role, passed, failed, skipped, worstRatio = "worst_ratio", digest = "output_sha256", notRequested = "not_requested"
        }
        /// A mutant that was not caught but not run on every case: nothing is known of it.
        public var unchecked: Bool { role == "mutant" && failed == 0 && (notRequested ?? 0) > 0 }
        /// A calibration kernel not run on any case of the selection (every row not requested).
        public var idle: Bool { notRequested != nil && notRequested == skipped && passed + failed == 0 }
    }

    public struct Report: Codable, Sendable {
        /// ``ReportFormat/verifySchema``.
        public var schema = ReportFormat.verifySchema
        public var bnspecVersion = ReportFormat.bnspecVersion
        /// SHA-256 of the golden folder's manifest.json.
        public var goldenSHA256: String? = nil
        /// The shard this report covers ("K/N"), nil for a whole selection.
        public var shard: String? = nil
        /// A shard's selection (``BNGolden/CaseSelector/canonical``, the implementations and the
        /// calibration policy asked for): merge refuses shards of different selections.
        public var selection: String? = nil
        public var implementations: [Summary]
        public var cases: [CaseResult]
        /// True when the reference and all implementations and honest calibration kernels
        /// passed every case they ran on and — over the whole suite — every mutant that was run on
        /// every case was caught (a mutant not run on some case is reported unchecked, not failed).
        public var ok: Bool
        /// Plain statements about what this run did not check (calibration kernels not run); nil for none.
        public var notes: [String]? = nil
        enum CodingKeys: String, CodingKey {
            case schema, bnspecVersion = "bnspec_version", goldenSHA256 = "golden_sha256", shard, selection, implementations, cases, ok, notes
        }

        public init(implementations: [Summary], cases: [CaseResult], ok: Bool) {
            self.implementations = implementations; self.cases = cases; self.ok = ok
            notes = Self.notes(implementations, cases)
        }

        /// What the run did not check, in words.
        static func notes(_ summaries: [Summary], _ cases: [CaseResult]) -> [String]? {
            let skippedCases = Set(cases.filter { $0.notRequested == true }.map(\.caseID))
            guard !skippedCases.isEmpty else { return nil }
            let unchecked = summaries.filter(\.unchecked).count
            let kernels = summaries.filter { ($0.notRequested ?? 0) > 0 }.count
            return ["\(kernels) calibration kernels were not run on \(skippedCases.count) case\(skippedCases.count == 1 ? "" : "s") of this selection"
                    + " (by default they run on cases of at most \(calibrationElementLimit) elements): there, honest algorithms are not checked to pass"
                    + (unchecked > 0 ? " and \(unchecked) calibration mutants are not checked to be caught" : "")
                    + "; `bnspec verify --calibration all` runs them"]
        }
    }

    static func roleName(_ r: KernelRole) -> String {
        switch r { case .implementation: "implementation"; case .honestCalibration: "honest-calibration"; case .mutant: "mutant" }
    }

    /// The reference must reproduce the golden outputs bit for bit (a NaN as any NaN: golden files
    /// hold the canonical one, SPEC §6.3).
    /// It also checks that the case judges its primary output (spec §5.4): a case whose
    /// resolution is 1 or more fails here, whatever the implementation.
    public static func judgeReference(_ c: GoldenStore.LoadedCase, budget: ToleranceBudget? = nil) -> CaseResult {
        var r = CaseResult(caseID: c.spec.id, family: c.spec.family, implementation: "reference", status: .passed,
                           worstRatio: 0, worstAt: "", detail: "", repro: "bnspec verify --case \(c.spec.id) --implementation reference")
        do {
            let again = try Generator.expected(c.spec, c.inputs)
            if !again.isEmpty { r.digest = CaseResult.outputDigest(again.mapValues(\.values)) }
            if c.spec.expectError == nil {
                r.resolution = try (budget ?? ToleranceBudget(c)).resolution(c)
                if let res = r.resolution, !(res < 1) {
                    r.status = .failed; r.worstRatio = .infinity; r.worstAt = c.spec.op.primaryOutput?.name ?? ""
                    r.detail = "case judges nothing: the \(r.worstAt) tolerance is \(res) × its natural scale at the median element (spec §5.4)"
                }
            }
            for (name, exp) in c.expected {
                let got = again[name]?.values ?? []
                let same = got.count == exp.values.count && zip(got, exp.values).allSatisfy { $0.canonicalBitPattern == $1.canonicalBitPattern }
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

    /// Per implementation (in `names` order): counts, worst ratio and the output digest over
    /// `results` (in case order).
    static func summarize(_ results: [CaseResult], names: [String], roles: [String: String]) -> [Summary] {
        names.map { name in
            var s = Summary(name: name, role: roles[name] ?? "implementation")
            let mine = results.filter { $0.implementation == name }
            s.digest = SHA256.hex(Array(mine.map { $0.digest ?? "-" }.joined(separator: "\n").utf8))
            for r in mine {
                if r.notRequested == true { s.notRequested = (s.notRequested ?? 0) + 1 }
                switch r.status {
                case .passed: s.passed += 1
                case .failed: s.failed += 1
                case .skipped: s.skipped += 1
                }
                if r.status != .skipped { s.worstRatio = max(s.worstRatio, r.worstRatio) }
            }
            return s
        }
    }

    /// No implementation or honest calibration kernel failed, and — over the whole suite — every
    /// mutant that was run on every case was caught (one not run somewhere is unchecked: the
    /// report says so, ``Report/notes``, and it is not a failure).
    static func isOK(_ summaries: [Summary], mutantsRequired: Bool) -> Bool {
        summaries.allSatisfy { s in s.role == "mutant" ? (s.failed > 0 || !mutantsRequired || s.unchecked) : s.failed == 0 }
    }

    /// Runs the selected implementations (all when `only` is empty) over the selected cases of
    /// the golden folder. `threads`: the `threaded` kernel's thread count (default: every core, at least 2).
    /// `calibration`: on which cases the calibration kernels run (``CalibrationPolicy``).
    /// `excluding`: implementations left out of that selection (e.g. the reference, whose outputs
    /// `bnspec generate --check` proves equal to golden/ byte for byte); naming a calibration
    /// kernel here does not count as naming it for the policy.
    public static func run(golden: URL, only: [String] = [], excluding: [String] = [], cases selector: CaseSelector = CaseSelector(),
                           threads: Int? = nil, calibration: CalibrationPolicy = .auto,
                           progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        if let t = threads, !(1...256).contains(t) { throw BNError.invalidArgument("--threads must be in 1…256, got \(t)") }
        let kernels = kernels(threads: threads ?? OptimizedKernel.defaultThreads)
        let manifest = try GoldenStore.manifest(golden)
        let ids = try selector.select(manifest.cases, source: golden.path)
        try GoldenStore.checkFiles(manifest, golden, selected: ids)  // the folder, before any case runs
        let known = ["reference"] + kernels.map(\.name)
        for name in only + excluding where !known.contains(name) {
            throw BNError.invalidArgument("unknown implementation '\(name)' (known: \(known.joined(separator: ", ")))")
        }
        let selected = kernels.filter { (only.isEmpty || only.contains($0.name)) && !excluding.contains($0.name) }
        let runReference = (only.isEmpty || only.contains("reference")) && !excluding.contains("reference")
        guard runReference || !selected.isEmpty else {
            throw BNError.invalidArgument("no implementation left to run (every one selected is excluded)")
        }
        var results: [CaseResult] = []
        for (i, id) in ids.enumerated() {
            progress?(i, ids.count)
            let c = try GoldenStore.loadCase(golden, id: id, manifest: manifest)
            // One analysis and budget per case for every kernel (a failure is reported per kernel by the judge).
            let budget = c.spec.expectError == nil ? try? ToleranceBudget(c) : nil
            if runReference { results.append(judgeReference(c, budget: budget)) }
            let elements = (try? c.spec.shapeValue().elementCount) ?? 0
            for k in selected {
                if k.role != .implementation,
                   let why = notRequested(elements: elements, policy: calibration, named: only.contains(k.name)) {
                    var r = CaseJudge.skipped(c.spec, k, why)
                    r.notRequested = true
                    results.append(r)
                    continue
                }
                var r = CaseJudge.judge(c, kernel: k, budget: budget)
                if let t = threads, k.name == "threaded" { r.repro += " --threads \(t)" }
                results.append(r)
            }
        }
        let names = (runReference ? ["reference"] : []) + selected.map(\.name)
        var roles: [String: String] = [:]
        for name in names { roles[name] = name == "reference" ? "reference" : roleName(selected.first { $0.name == name }!.role) }
        let summaries = summarize(results, names: names, roles: roles)
        let ok = isOK(summaries, mutantsRequired: selector.selectsEverything)
        return Report(implementations: summaries, cases: results, ok: ok)
    }
}
