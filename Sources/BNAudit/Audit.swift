import BNCore
import BNGolden
import BNKernels
import BNReference
import Foundation

/// The verdict on one case of an audit.
public struct AuditResult: Codable, Sendable {
    public var caseID: String
    public var family: String
    public var status: CaseResult.Status
    public var worstRatio: Double
    public var detail: String
    /// The bug whose signature the outputs match, when one does.
    public var likelyCause: String?
    public var repro: String
    /// max over channels of |μ|/σ of the input (the statistics' condition), for the plots.
    public var condition: Double
    /// Normwise error of the primary output in ULPs of the case's storage format:
    /// max|got − expected| ÷ ulp(max|expected|) (the format's largest ulp above its range).
    public var worstUlps: Double?
    /// The fitted figures behind the diagnosis of a failure (spec/AUDIT.md §5).
    public var evidence: [String] = []
    /// Training cases: per channel, κ and the relative error of the variance used, for the
    /// audit-wide variance-growth fit (not encoded).
    public var variancePoints: [VarianceGrowth.Point] = []
    /// Failed training backward cases: the variance dx was normalised with, when that alone
    /// explains the outputs (`Fits.backwardVariancePoints`; not in the fit, not encoded).
    var backwardVariancePoints: [VarianceGrowth.Point] = []
    /// The case's compute unit roundoff, and whether its returned batch mean (or the centre y
    /// implies) is within tolerance (not encoded).
    var computeRoundoff = 0x1p-24, meanWithinTolerance = false
    enum CodingKeys: String, CodingKey {
        case caseID = "case", family, status, detail, repro, condition, evidence
        case worstRatio = "worst_ratio", likelyCause = "likely_cause", worstUlps = "worst_ulps"
    }
    public func encode(to e: any Encoder) throws {
        var c = e.container(keyedBy: CodingKeys.self)
        try c.encode(caseID, forKey: .caseID); try c.encode(family, forKey: .family); try c.encode(status, forKey: .status)
        try c.encode(worstRatio.isFinite ? worstRatio : 1e308, forKey: .worstRatio)
        try c.encode(detail, forKey: .detail); try c.encodeIfPresent(likelyCause, forKey: .likelyCause)
        try c.encode(repro, forKey: .repro); try c.encode(condition.isFinite ? condition : 1e308, forKey: .condition)
        try c.encodeIfPresent(worstUlps.map { $0.isFinite ? $0 : 1e308 }, forKey: .worstUlps)
        if !evidence.isEmpty { try c.encode(evidence, forKey: .evidence) }
    }
}

/// A whole audit: who was audited, against which profile, and the per-case verdicts.
public struct AuditReport: Codable, Sendable {
    public var implementation: String
    public var version: String
    public var profile: String
    public var tolerance: String
    public var passed: Int, failed: Int, skipped: Int
    public var causes: [String: Int]
    /// How the variance error grows with κ = |μ|/σ across the audit's float32-class training
    /// cases: the implementation's variance algorithm (spec/AUDIT.md §5); nil when too few
    /// channels show a measurable error.
    public var varianceGrowth: VarianceGrowth?
    public var results: [AuditResult]
    /// No failure, and at least one case actually checked: an audit that skipped every case
    /// (no results found, nothing supported) is not a pass.
    public var ok: Bool { failed == 0 && passed > 0 }
    enum CodingKeys: String, CodingKey {
        case implementation, version, profile, tolerance, passed, failed, skipped, causes, results
        case varianceGrowth = "variance_growth"
    }

    public init(implementation: String, version: String, profile: String, results: [AuditResult]) {
        self.implementation = implementation; self.version = version; self.profile = profile
        tolerance = ToleranceModel.name
        var results = results
        // A failure a bug model explains (a wrong weighting, eps, estimator…) says nothing about the
        // precision of the variance algorithm: its channels stay out of the fit.
        let growth = VarianceGrowth.fit(results.filter { $0.computeRoundoff == 0x1p-24 && $0.likelyCause == nil }.flatMap(\.variancePoints),
                                        floor: 0x1p-24, binned: true)
        varianceGrowth = growth.algorithm == "undetermined" ? nil : growth
        // A failure nothing explains case by case, on a channel whose condition exceeds 10 and
        // whose mean is right, is the one-pass algorithm's when the audit-wide fit shows its κ²;
        // likewise a training backward that is right but for the variance it was normalised with.
        if growth.algorithm == "one_pass" {
            for i in results.indices where results[i].status == .failed && results[i].likelyCause == nil {
                let u = results[i].computeRoundoff
                let wrong = { (pts: [VarianceGrowth.Point]) in pts.contains { $0.kappa >= 10 && $0.error > 1e3 * u } }
                guard (results[i].meanWithinTolerance && wrong(results[i].variancePoints)) || wrong(results[i].backwardVariancePoints)
                else { continue }
                results[i].likelyCause = String(format: "variance computed in one pass (E[x²] − E[x]²): across this audit the variance error grows like κ^%.2f", growth.exponent)
                results[i].evidence.append(growth.evidence)
                let pts = results[i].backwardVariancePoints
                if !pts.isEmpty {
                    results[i].evidence.append("dx is the training backward about the batch mean with the variance v′ its scale implies: "
                        + "|v′ − v|/v = \(Fits.list(pts.map(\.error))) at κ = \(Fits.list(pts.map(\.kappa)))")
                }
            }
        }
        self.results = results
        passed = results.filter { $0.status == .passed }.count
        failed = results.filter { $0.status == .failed }.count
        skipped = results.filter { $0.status == .skipped }.count
        var c: [String: Int] = [:]
        for r in results where r.status == .failed { c[r.likelyCause ?? "unexplained", default: 0] += 1 }
        causes = c
    }
}

/// Runs an audit: every golden case through an adapter (or recorded results), judged by
/// the tolerance model against the reference under the audited profile.
public struct Audit {
    public var profile: ConventionProfile
    public var cases: [GoldenStore.LoadedCase]
    public var goldenDir: URL
    public var reproBase: String

    public init(profile: ConventionProfile, cases: [GoldenStore.LoadedCase], goldenDir: URL, reproBase: String) {
        self.profile = profile; self.cases = cases; self.goldenDir = goldenDir; self.reproBase = reproBase
    }

    /// Audits through a running adapter. `progress(i, n)` is called before each case.
    public func run(adapter: AdapterClient, scratch: URL, progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> AuditReport {
        let hello = try adapter.hello ?? adapter.start()
        defer { adapter.stop() }  // also when a case throws: never leave the adapter running
        var results: [AuditResult] = []
        for (i, golden) in cases.enumerated() {
            progress(i, cases.count, golden.spec.id)
            let ac = try AuditCase(golden, profile: profile)
            let spec = ac.loaded.spec
            var r = base(ac)
            // An implementation without running statistics (a kernel library; its framework keeps them):
            // trajectories are not run and train cases are judged without them (the cumulative average,
            // a running-statistics convention, does not matter then).
            let notProvided: Set<String> = hello.runningStatistics ? [] : Self.runningOutputs
            if !hello.runningStatistics && spec.op == .trajectory {
                r.status = .skipped; r.detail = Self.notProvidedNote(["running_mean", "running_var", "y_eval"])
                results.append(r); continue
            }
            let supported = hello.ops.contains(spec.op.rawValue) && hello.dtypes.contains(spec.dtype.rawValue)
                && hello.layouts.contains(spec.layout.rawValue) && (ac.batchWeight != nil || hello.cumulative
                    || !hello.runningStatistics || !spec.op.updatesRunningStatistics)
            if !supported {
                r.status = .skipped; r.detail = "not supported by the adapter (\(spec.op.rawValue), \(spec.dtype.rawValue), \(spec.layout.rawValue))"
                results.append(r); continue
            }
            let out = scratch.appendingPathComponent(golden.spec.id)
            try? FileManager.default.removeItem(at: out)
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let request = ac.request(inputDir: goldenDir.appendingPathComponent(golden.spec.id), outputDir: out, profile: profile)
            switch adapter.run(request) {
            case .unsupported(let m): r.status = .skipped; r.detail = "adapter: unsupported: \(m)"
            case .failure(let f): r.status = .failed; r.worstRatio = .infinity; r.detail = f.description
            case .refused(let m):
                if spec.expectError != nil { r.status = .passed; r.detail = "refused as the profile requires: \(m)" }
                else if let d = profile.documentedRefusal(op: spec.op.rawValue, eps: spec.eps) {
                    r.status = .passed; r.detail = "refused (\(d.what)), as the \(profile.name) profile allows: \(m)"
                } else {
                    r.status = .failed; r.worstRatio = .infinity; r.detail = "adapter refused the case: \(m)"
                    r.likelyCause = spec.eps == 0 ? "refuses eps = 0 (which the spec defines)" : "refuses a case the profile defines"
                }
            case .outputs(let paths) where spec.expectError != nil:  // as --results: a refusal was expected
                r.status = .failed; r.worstRatio = .infinity
                r.detail = "expected a refusal (\(spec.expectError!)), got outputs \(paths.keys.sorted().joined(separator: ", "))"
                r.likelyCause = Self.missingRefusal(spec, profile)
            case .outputs(let paths):
                r = judge(ac, r, files: paths.mapValues { URL(fileURLWithPath: $0) }, notProvided: notProvided)
            }
            results.append(r)
        }
        return AuditReport(implementation: hello.name, version: hello.version, profile: profile.name, results: results)
    }

    /// The cause of a failure that is outputs where the profile requires a refusal (the only
    /// such requirement: one value per channel in a training step, `single_value_per_channel`).
    static func missingRefusal(_ spec: CaseSpec, _ profile: ConventionProfile) -> String {
        "no refusal of a training step with one value per channel (\(spec.expectError ?? "")), which the \(profile.name) profile requires"
    }

    /// Audits recorded outputs: `dir/<case id>/<output>.npy`.
    public func run(results dir: URL, name: String) throws -> AuditReport {
        guard FileManager.default.fileExists(atPath: dir.path) else { throw BNError.file(path: dir.path, reason: "no such results folder") }
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent(Export.marker).path) {
            throw BNError.file(path: dir.path, reason: "is the export folder; the outputs go to (and --results takes) \(dir.appendingPathComponent("results").path)")
        }
        var results: [AuditResult] = []
        for golden in cases {
            let ac = try AuditCase(golden, profile: profile)
            var r = base(ac)
            let caseDir = dir.appendingPathComponent(golden.spec.id)
            var files: [String: URL] = [:]
            for name in ac.loaded.spec.outputs.keys {
                let f = caseDir.appendingPathComponent("\(name).npy")
                if FileManager.default.fileExists(atPath: f.path) { files[name] = f }
            }
            if !FileManager.default.fileExists(atPath: caseDir.path) {
                r.status = .skipped; r.detail = "no results for this case"
            } else if ac.loaded.spec.expectError != nil {
                let refused = FileManager.default.fileExists(atPath: caseDir.appendingPathComponent("error.txt").path)
                r.status = refused ? .passed : .failed
                r.detail = refused ? "refused as the profile requires" : "expected a refusal (error.txt), found outputs"
                if !refused { r.worstRatio = .infinity; r.likelyCause = Self.missingRefusal(ac.loaded.spec, profile) }
            } else if files.isEmpty, FileManager.default.fileExists(atPath: caseDir.appendingPathComponent("error.txt").path),
                      let d = profile.documentedRefusal(op: ac.loaded.spec.op.rawValue, eps: ac.loaded.spec.eps) {
                r.detail = "refused (\(d.what)), as the \(profile.name) profile allows"
            } else {
                r = judge(ac, r, files: files)
            }
            results.append(r)
        }
        return AuditReport(implementation: name, version: "recorded", profile: profile.name, results: results)
    }

    func base(_ ac: AuditCase) -> AuditResult {
        AuditResult(caseID: ac.goldenID, family: ac.loaded.spec.family, status: .passed, worstRatio: 0, detail: "",
                    likelyCause: nil, repro: "\(reproBase) --case \(ac.goldenID)", condition: ac.analysis?.condition ?? 0)
    }

    /// ulp(v) in a storage format: the spacing of that format's values at |v| (its largest
    /// spacing above its range, its subnormal spacing below).
    static func ulp(_ v: Double, _ dtype: DType) -> Double {
        switch dtype {
        case .f64: return v.isFinite ? max(v.ulp, Double.leastNonzeroMagnitude) : Double.greatestFiniteMagnitude.ulp
        case .f32: return Double(Float(min(v, Double(Float.greatestFiniteMagnitude))).ulp)
        case .f16: return Double(Float16(min(v, 65504)).ulp)
        case .bf16:
            let f = Float(min(v, Double(Float.greatestFiniteMagnitude)))
            return max(Double(f.ulp) * 0x1p16, 0x1p-133)  // 8 significand bits instead of 24
        }
    }

    /// Outputs an implementation without running statistics does not provide.
    static let runningOutputs: Set<String> = ["running_mean", "running_var"]
    static func notProvidedNote(_ names: [String]) -> String {
        "\(names.joined(separator: ", ")): not provided by the implementation (it keeps no running statistics)"
    }

    /// Reads the returned files and judges them; names the likely cause of a failure. Outputs in
    /// `notProvided` are not required (the implementation declared it has none); a pass says so.
    func judge(_ ac: AuditCase, _ r0: AuditResult, files: [String: URL], notProvided: Set<String> = []) -> AuditResult {
        var r = r0
        let spec = ac.loaded.spec
        var got: [String: [Double]] = [:]
        let unknown = files.keys.filter { spec.outputs[$0] == nil }.sorted()
        if !unknown.isEmpty {
            r.status = .failed; r.worstRatio = .infinity
            r.detail = "unexpected output\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")) (this case has \(spec.outputs.keys.sorted().joined(separator: ", ")))"
            return r
        }
        for (name, url) in files {
            do {
                let a = try NPYArray.read(url, bfloat16: spec.op.output(name)?.isBFloat16(in: spec) == true)
                got[name] = a.values
            } catch {
                r.status = .failed; r.worstRatio = .infinity; r.detail = "output '\(name)': \(error)"; return r
            }
        }
        let missing = ac.requiredOutputs.subtracting(notProvided).subtracting(got.keys)
        if !missing.isEmpty {
            r.status = .failed; r.worstRatio = .infinity
            r.detail = "missing output\(missing.count > 1 ? "s" : "") \(missing.sorted().joined(separator: ", "))"; return r
        }
        var judged = ac.loaded
        judged.spec.outputs = spec.outputs.filter { got[$0.key] != nil }
        let budget = try? ac.budget()
        let verdict = CaseJudge.judge(judged, outputs: got, name: "adapter", budget: budget)
        r.status = verdict.status; r.worstRatio = verdict.worstRatio; r.detail = verdict.detail ?? ""
        let absent = notProvided.intersection(spec.outputs.keys).subtracting(got.keys).sorted()
        if r.status == .passed && !absent.isEmpty { r.detail = Self.notProvidedNote(absent) }
        if let p = spec.op.primaryOutput?.name, let exp = judged.expected[p]?.values, let g = got[p], g.count == exp.count {
            let finite = zip(g, exp).filter { $1.isFinite && $0.isFinite }
            let top = finite.map { abs($0.1) }.max() ?? 0
            r.worstUlps = finite.map { abs($0 - $1) }.max().map { $0 / Self.ulp(top, spec.dtype) }
        }
        if let problem = try? CaseJudge.diagnosisProblem(judged, got: got, budget: budget) {
            r.variancePoints = Fits.variancePoints(problem)
            if r.status == .failed { r.backwardVariancePoints = Fits.backwardVariancePoints(problem) }
            r.computeRoundoff = spec.dtype.computeRoundoff
            r.meanWithinTolerance = problem.got["batch_mean"] != nil ? problem.failing("batch_mean").isEmpty : Fits.centreWithinTolerance(problem)
            if r.status == .failed {
                let d = Diagnosis.of(problem)
                r.likelyCause = d.cause; r.evidence = d.evidence
            }
        }
        return r
    }
}
