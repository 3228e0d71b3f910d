import BNCore
import BNGolden
import BNKernels
import BNReference
import Foundation

/// The verdict on one case of an audit.
public struct AuditResult: Codable, Sendable {
    /// Why a case failed without a numeric comparison (or was not run). JUnit reports the faults
    /// that stopped the comparison (``isError``) as `<error>`, numeric failures and
    /// ``notRefused`` as `<failure>`, ``notRun`` as `<skipped>`.
    public enum Fault: String, Codable, Sendable, CaseIterable {
        /// The implementation refused a case the profile defines.
        case refused
        /// The adapter process died (signal or exit) on the case.
        case crashed
        /// No answer within the case timeout, or the audit's deadline passed.
        case timeout
        /// The adapter broke the protocol (a line that is not protocol JSON, a malformed reply).
        case `protocol`
        /// A required output is missing, an output is not one of the case's, unreadable, or of the wrong size.
        case missingOutput = "missing-output", unexpectedOutput = "unexpected-output"
        case unreadableOutput = "unreadable-output", wrongSize = "wrong-size"
        /// The case expects a refusal and the implementation returned outputs.
        case notRefused = "not-refused"
        /// Not run: `--maxfail` was reached first.
        case notRun = "not-run"

        /// The comparison could not happen: a JUnit `<error>`, not a `<failure>`.
        public var isError: Bool { self != .notRefused && self != .notRun }

        /// How reports count a failure of this kind that no likely cause explains.
        public var summary: String {
            switch self {
            case .refused: "refused the case"
            case .crashed: "the adapter crashed"
            case .timeout: "no answer in time"
            case .protocol: "adapter protocol fault"
            case .missingOutput: "missing output"
            case .unexpectedOutput: "unexpected output"
            case .unreadableOutput: "unreadable output file"
            case .wrongSize: "output of the wrong size"
            case .notRefused: "outputs where the profile requires a refusal"
            case .notRun: "not run"
            }
        }
    }

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
    package var backwardVariancePoints: [VarianceGrowth.Point] = []
    /// The case's compute unit roundoff, and whether its returned batch mean (or the centre y
    /// implies) is within tolerance (not encoded).
    package var computeRoundoff = 0x1p-24, meanWithinTolerance = false
    /// Failed training cases: whether a BN right but for the variance it used reproduces every
    /// returned output (`Fits.varianceAloneExplains`), and whether the running update with the
    /// weight its running mean implies does (`Fits.runningWeightAloneExplains`): the model
    /// checks of the audit-wide one-pass and weight attributions (not encoded).
    package var varianceAloneExplains = false, runningWeightAloneExplains = false
    /// Training cases: the batch weight asked for and the one the returned running mean implies
    /// (for the audit-wide ``WeightFit``; not encoded).
    package var weightPoint: WeightFit.Point?
    /// For the audit-wide check of a vector-loop tail (``VectorTail/judge(_:)``; not encoded):
    /// the case's channel count, its channels with an element beyond tolerance, the loop widths
    /// whose tail they are, and its kernel path (operation, layout, dtype; nil for NCHW, where no
    /// loop runs over channels). Passing cases keep their channel count and path: a tail that
    /// should have failed there is counter-evidence.
    package var channels = 0, failingChannels: [Int] = [], tailWidths: [Int] = [], tailKey: String? = nil
    /// A failed single-step training case whose running statistics fail: the running-update
    /// models that reproduce them (``RunningConsistency``; not encoded).
    var runningModels: [String]? = nil
    /// A failed or passed case: the models ``ModelConsistency`` judges whose prediction misses it far (not encoded).
    var contradictedModels: [String]? = nil
    /// A failed case returned a non-finite value where the reference's is finite (an overflow: a
    /// precision model that reproduces it is not judged by majority, ``ModelConsistency/byMajority``; not encoded).
    var nonFiniteWhereFinite = false
    /// The case's operation and whether its data are finite (not encoded): the audit-wide check
    /// of ``Patterns/poisonCause``.
    var operation = "", finiteData = true
    /// The case's storage dtype (float32, float16, …).
    public var dtype: String = ""
    /// Seconds the case took (request, answer, judging).
    public var seconds: Double = 0
    /// Set when the case failed without a numeric comparison, or was not run.
    public var fault: Fault? = nil
    /// The worst element, as `output[n=…, c=…, …]`, and how many elements of that output are
    /// beyond tolerance, of how many judged (numeric comparisons only).
    public var worstAt: String? = nil
    public var beyond: Int? = nil
    public var judged: Int? = nil
    /// What this case gave the audit-wide fits, before they named causes (``AuditReport/init``):
    /// kept in a shard's JSON report so that `bnspec merge` refits over every case as the
    /// unsharded audit does (``AuditReport/merged(_:paths:manifest:goldenSHA256:partial:)``).
    public var fitInputs: FitInputs? = nil
    enum CodingKeys: String, CodingKey {
        case caseID = "case", family, status, detail, repro, condition, evidence, dtype, seconds, fault, beyond, judged
        case worstRatio = "worst_ratio", likelyCause = "likely_cause", worstUlps = "worst_ulps", worstAt = "worst_at"
        case fitInputs = "fit_inputs"
    }
    /// Decodes a report's case (``ReportFormat/decoder()``); the fields that are not encoded keep their defaults.
    public init(from d: any Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        caseID = try c.decode(String.self, forKey: .caseID); family = try c.decode(String.self, forKey: .family)
        status = try c.decode(CaseResult.Status.self, forKey: .status); worstRatio = try c.decode(Double.self, forKey: .worstRatio)
        detail = try c.decode(String.self, forKey: .detail); likelyCause = try c.decodeIfPresent(String.self, forKey: .likelyCause)
        repro = try c.decode(String.self, forKey: .repro); condition = try c.decode(Double.self, forKey: .condition)
        worstUlps = try c.decodeIfPresent(Double.self, forKey: .worstUlps)
        evidence = try c.decodeIfPresent([String].self, forKey: .evidence) ?? []
        dtype = try c.decodeIfPresent(String.self, forKey: .dtype) ?? ""; seconds = try c.decodeIfPresent(Double.self, forKey: .seconds) ?? 0
        fault = try c.decodeIfPresent(Fault.self, forKey: .fault); worstAt = try c.decodeIfPresent(String.self, forKey: .worstAt)
        beyond = try c.decodeIfPresent(Int.self, forKey: .beyond); judged = try c.decodeIfPresent(Int.self, forKey: .judged)
        fitInputs = try c.decodeIfPresent(FitInputs.self, forKey: .fitInputs)
    }
    public init(caseID: String, family: String, status: CaseResult.Status, worstRatio: Double, detail: String, likelyCause: String?,
                repro: String, condition: Double, dtype: String = "") {
        self.caseID = caseID; self.family = family; self.status = status; self.worstRatio = worstRatio; self.detail = detail
        self.likelyCause = likelyCause; self.repro = repro; self.condition = condition; self.dtype = dtype
    }
    /// Non-finite numbers go through the encoder's strategy (``ReportFormat/encoder()``: "inf", "-inf", "nan").
    public func encode(to e: any Encoder) throws {
        var c = e.container(keyedBy: CodingKeys.self)
        try c.encode(caseID, forKey: .caseID); try c.encode(family, forKey: .family); try c.encode(status, forKey: .status)
        try c.encode(worstRatio, forKey: .worstRatio)
        try c.encode(detail, forKey: .detail); try c.encodeIfPresent(likelyCause, forKey: .likelyCause)
        try c.encode(repro, forKey: .repro); try c.encode(condition, forKey: .condition)
        try c.encodeIfPresent(worstUlps, forKey: .worstUlps)
        if !evidence.isEmpty { try c.encode(evidence, forKey: .evidence) }
        try c.encode(dtype, forKey: .dtype); try c.encode(seconds, forKey: .seconds); try c.encodeIfPresent(fault, forKey: .fault)
        try c.encodeIfPresent(worstAt, forKey: .worstAt); try c.encodeIfPresent(beyond, forKey: .beyond)
        try c.encodeIfPresent(judged, forKey: .judged); try c.encodeIfPresent(fitInputs, forKey: .fitInputs)
    }

    /// A failure of the numbers themselves (not a refusal, crash, protocol fault or missing output).
    public var isNumericFailure: Bool { status == .failed && fault == nil }
    /// Judged by comparing numbers: a pass or numeric failure with outputs (not a refusal).
    public var hasNumbers: Bool { status != .skipped && fault == nil && (worstAt != nil || worstUlps != nil) }
}

/// A whole audit: who was audited, against which profile, and the per-case verdicts.
public struct AuditReport: Codable, Sendable {
    /// ``ReportFormat/auditSchema``.
    public var schema = ReportFormat.auditSchema
    public var bnspecVersion = ReportFormat.bnspecVersion
    /// SHA-256 of the golden folder's manifest.json: which golden vectors were used.
    public var goldenSHA256: String? = nil
    /// The shard this report covers ("K/N"), nil for a whole selection.
    public var shard: String? = nil
    /// A shard's case selection (``BNGolden/CaseSelector/canonical``): merge refuses shards of
    /// different selections.
    public var selection: String? = nil
    /// A shard's number of selected cases (every one has a result, a skip or a case not run
    /// included): merge refuses a shard whose results do not add up to it.
    public var selected: Int? = nil
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
    /// How the batch weight of the running update depends on the case's, across the audit's
    /// training cases; nil when the cases cannot tell.
    public var weightFit: WeightFit?
    public var results: [AuditResult]
    /// No failure, and at least one case actually checked: an audit that skipped every case
    /// (no results found, nothing supported) is not a pass.
    public var ok: Bool { failed == 0 && passed > 0 }
    enum CodingKeys: String, CodingKey {
        case schema, bnspecVersion = "bnspec_version", goldenSHA256 = "golden_sha256", shard, selection, selected
        case implementation, version, profile, tolerance, passed, failed, skipped, causes, results
        case varianceGrowth = "variance_growth", weightFit = "weight_fit"
    }

    public init(implementation: String, version: String, profile: String, results: [AuditResult]) {
        self.implementation = implementation; self.version = version; self.profile = profile
        tolerance = ToleranceModel.name
        var results = results
        for i in results.indices { results[i].fitInputs = AuditResult.FitInputs(results[i]) }  // what the fits below start from
        // A failure a bug model explains (a wrong weighting, eps, estimator…) says nothing about the
        // precision of the variance algorithm: its channels stay out of the fit.
        let growth = VarianceGrowth.auditWide(results.filter { $0.computeRoundoff == 0x1p-24 && $0.likelyCause == nil }.flatMap(\.variancePoints))
        varianceGrowth = growth.algorithm == "undetermined" ? nil : growth
        // A failure nothing explains case by case, on a channel whose condition exceeds 10 and
        // whose mean is right, is the one-pass algorithm's when the audit-wide fit shows its κ²;
        // likewise a training backward that is right but for the variance it was normalised with.
        // Only when a BN right but for that variance reproduces every returned output (the
        // model check), and the variance's error in every channel where it is measurable is no
        // larger than the audit's one-pass growth predicts for the channel's κ and the case's
        // roundoff (``VarianceGrowth/onePassAllows``): a bug elsewhere, or a variance wrong by a
        // fixed factor, is not the algorithm's rounding.
        if growth.algorithm == "one_pass" {
            for i in results.indices where results[i].status == .failed && results[i].likelyCause == nil {
                let u = results[i].computeRoundoff
                let wrong = { (pts: [VarianceGrowth.Point]) in
                    pts.contains { $0.kappa >= 10 && $0.error > 1e3 * u } && growth.onePassAllows(pts, roundoff: u, floor: 0x1p-24)
                }
                let forward = results[i].meanWithinTolerance && results[i].varianceAloneExplains && wrong(results[i].variancePoints)
                guard forward || wrong(results[i].backwardVariancePoints) else { continue }
                results[i].likelyCause = String(format: "variance computed in one pass (E[x²] − E[x]²): across this audit the variance error grows like κ^%.2f", growth.exponent)
                results[i].evidence.append(growth.evidence)
                let pts = results[i].backwardVariancePoints
                if !pts.isEmpty {
                    results[i].evidence.append("dx is the training backward about the batch mean with the variance v′ its scale implies: "
                        + "|v′ − v|/v = \(Fits.list(pts.map(\.error))) at κ = \(Fits.list(pts.map(\.kappa)))")
                }
            }
        }
        // A vector loop's tail stands only at the widths every case agrees with (VectorTail.judge):
        // judged on the causes as the cases named them; the open failures that fit those widths
        // are named with all of them, a contradicted tail is withdrawn with its evidence.
        let tailCases = results.map { r in
            VectorTail.Case(id: r.caseID, key: r.tailKey, channels: r.channels, passed: r.status == .passed && r.hasNumbers,
                            open: r.isNumericFailure && (r.likelyCause == nil || VectorTail.isCause(r.likelyCause)),
                            failing: r.failingChannels, widths: r.tailWidths)
        }
        let tail = VectorTail.judge(tailCases)
        let tailNamed = Set(tail.named)
        for i in results.indices {
            if tailNamed.contains(i) {
                results[i].likelyCause = VectorTail.cause(channels: results[i].channels, widths: tail.widths)
                if !tail.against.isEmpty { results[i].evidence.append("vector-loop widths ruled out across this audit: " + tail.against.joined(separator: "; ")) }
            } else if VectorTail.isCause(results[i].likelyCause) {
                results[i].evidence.append("the failing channels are the tail of a vector loop here, but not across this audit: "
                    + (tail.against.isEmpty ? "no other case has two full vectors right or another channel count" : tail.against.joined(separator: "; ")))
                results[i].likelyCause = nil
            }
        }
        // The running update's weight rule across cases replaces single-case weight causes (one
        // case cannot tell a fixed weight from an inverted momentum) and names unexplained
        // failures whose running mean follows it.
        let weights = WeightFit.fit(results.compactMap(\.weightPoint))
        weightFit = weights
        if let fit = weights, let cause = fit.cause {
            // An unexplained failure only when the running update with its own implied weight
            // reproduces every returned output (a failure of y is not the weight's).
            for i in results.indices where results[i].status == .failed && results[i].weightPoint != nil {
                let current = results[i].likelyCause ?? ""
                guard (current.isEmpty && results[i].runningWeightAloneExplains)
                        || RunningModels.weightCauses.contains(where: { current.contains($0) }) else { continue }
                results[i].likelyCause = cause
                results[i].evidence.append(fit.evidence)
            }
        }
        // A running-update cause that another failing case's running statistics contradict is
        // withdrawn (RunningConsistency), the audit-wide weight rule with it.
        let withdrawn = RunningConsistency.withdrawContradicted(&results)
        if var fit = weightFit, let cause = fit.cause, let k = RunningConsistency.keys(cause).first(where: { withdrawn[$0] != nil }) {
            fit.evidence += "; contradicted by \(withdrawn[k]!), whose running statistics it does not reproduce: no cause named from it"
            fit.rule = nil; fit.constant = nil
            weightFit = fit
        }
        // Poisoning fits a case with a non-finite input whose other channels came out NaN; a
        // failure of the same operation on finite data, where nothing can poison, is a bug that
        // may make those channels wrong by itself (an outside red team's: an inference that took
        // the last channel's statistics from its neighbour was named poisoning on the non-finite
        // cases, its 105 finite failures unexplained): withdrawn, with that case as evidence.
        for i in results.indices where results[i].likelyCause?.contains(Patterns.poisonCause) == true {
            guard let j = results.indices.first(where: {
                results[$0].isNumericFailure && results[$0].finiteData && results[$0].operation == results[i].operation
            }) else { continue }
            results[i].evidence.append("cause withdrawn: «\(results[i].likelyCause ?? "")» fits this case, but \(results[j].caseID) "
                + "fails too, with finite data and nothing to poison (\(results[j].detail.prefix(160))): a bug of its own can make these channels wrong")
            results[i].likelyCause = nil
        }
        // A formula model's cause that an unexplained failure of its own kernel path contradicts.
        ModelConsistency.withdrawContradicted(&results)
        self.results = results
        passed = results.filter { $0.status == .passed }.count
        failed = results.filter { $0.status == .failed }.count
        skipped = results.filter { $0.status == .skipped }.count
        // A failure without a comparison is counted by its kind, not as an unexplained numeric error.
        var c: [String: Int] = [:]
        for r in results where r.status == .failed { c[r.likelyCause ?? r.fault.map { "\($0.summary) (no comparison)" } ?? "unexplained", default: 0] += 1 }
        causes = c
    }
}

/// Where an audit is: `done` of `total` cases finished, `failed` of them failed; `current` the
/// case being run (nil once all are done).
public struct AuditProgress: Sendable {
    public var done: Int, total: Int, failed: Int
    public var current: String?
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

    /// Stop after this many failed cases: the rest are reported as not run (``AuditResult/Fault/notRun``).
    public var maxFailures: Int? = nil

    /// Runs `one` on every case in order, timing each, counting failures for ``maxFailures``, and
    /// reporting progress before each case and once at the end.
    func eachCase(progress: (AuditProgress) -> Void, _ one: (AuditCase) throws -> AuditResult) throws -> [AuditResult] {
        var results: [AuditResult] = [], failed = 0
        for (i, golden) in cases.enumerated() {
            progress(AuditProgress(done: i, total: cases.count, failed: failed, current: golden.spec.id))
            let ac = try AuditCase(golden, profile: profile)
            if let m = maxFailures, failed >= m {
                var r = base(ac)
                r.status = .skipped; r.fault = .notRun; r.detail = "not run: --maxfail \(m) reached"
                results.append(r); continue
            }
            let started = Date()
            var r = try one(ac)
            r.seconds = Date().timeIntervalSince(started)
            if r.status == .failed { failed += 1 }
            results.append(r)
        }
        progress(AuditProgress(done: cases.count, total: cases.count, failed: failed, current: nil))
        return results
    }

    /// Audits through a running adapter.
    public func run(adapter: AdapterClient, scratch: URL, progress: (AuditProgress) -> Void = { _ in }) throws -> AuditReport {
        let hello = try adapter.hello ?? adapter.start()
        defer { adapter.stop() }  // also when a case throws: never leave the adapter running
        let results = try eachCase(progress: progress) { ac in
            let golden = ac.golden, spec = ac.loaded.spec
            var r = base(ac)
            // An implementation without running statistics (a kernel library; its framework keeps them):
            // trajectories and epochs are not run and train cases are judged without them (the cumulative average,
            // a running-statistics convention, does not matter then).
            let notProvided: Set<String> = hello.runningStatistics ? [] : Self.runningOutputs
            if !hello.runningStatistics && spec.op.hasSteps {
                r.status = .skipped; r.detail = Self.notProvidedNote(["running_mean", "running_var", "y_eval"])
                return r
            }
            let supported = hello.ops.contains(spec.op.rawValue) && hello.dtypes.contains(spec.dtype.rawValue)
                && hello.layouts.contains(spec.layout.rawValue) && (ac.batchWeight != nil || hello.cumulative
                    || !hello.runningStatistics || !spec.op.updatesRunningStatistics)
            if !supported {
                let missing = [hello.ops.contains(spec.op.rawValue) ? nil : "op \(spec.op.rawValue)",
                               hello.dtypes.contains(spec.dtype.rawValue) ? nil : "dtype \(spec.dtype.rawValue)",
                               hello.layouts.contains(spec.layout.rawValue) ? nil : "layout \(spec.layout.rawValue)"].compactMap { $0 }
                r.status = .skipped
                r.detail = "not supported by the adapter (\(spec.op.rawValue), \(spec.dtype.rawValue), \(spec.layout.rawValue)): "
                    + (missing.isEmpty ? "no cumulative running average" : missing.joined(separator: ", "))
                return r
            }
            let out = scratch.appendingPathComponent(golden.spec.id)
            try? FileManager.default.removeItem(at: out)
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let request = ac.request(inputDir: goldenDir.appendingPathComponent(golden.spec.id), outputDir: out, profile: profile)
            switch adapter.run(request) {
            case .unsupported(let m): r.status = .skipped; r.detail = "adapter: unsupported: \(m)"
            case .failure(let f):
                r.status = .failed; r.worstRatio = .infinity; r.detail = f.description
                switch f {
                case .timeout, .deadline: r.fault = .timeout
                case .exited, .signaled: r.fault = .crashed
                case .garbage, .protocolError, .fault: r.fault = .protocol
                }
            case .refused(let m): r = refused(ac, r, message: m, by: "adapter")
            case .outputs(let paths) where spec.expectError != nil:  // as --results: a refusal was expected
                r = outputsInsteadOfRefusal(ac, r, names: paths.keys)
            case .outputs(let paths):
                r = judge(ac, r, files: paths.mapValues { URL(fileURLWithPath: $0) }, notProvided: notProvided)
            }
            return r
        }
        return AuditReport(implementation: hello.name, version: hello.version, profile: profile.name, results: results)
    }

    /// The cause of a failure that is outputs where the profile requires a refusal (the only
    /// such requirement: one value per channel in a training step, `single_value_per_channel`).
    static func missingRefusal(_ spec: CaseSpec, _ profile: ConventionProfile) -> String {
        "no refusal of a training step with one value per channel (\(spec.expectError ?? "")), which the \(profile.name) profile requires"
    }


    /// Audits recorded outputs: `dir/<case id>/<output>.npy` (`error.txt` for a refusal).
    public func run(results dir: URL, name: String, progress: (AuditProgress) -> Void = { _ in }) throws -> AuditReport {
        guard FileManager.default.fileExists(atPath: dir.path) else { throw BNError.file(path: dir.path, reason: "no such results folder") }
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent(Export.marker).path) {
            throw BNError.file(path: dir.path, reason: "is the export folder; the outputs go to (and --results takes) \(dir.appendingPathComponent("results").path)")
        }
        // Results written for an export under another profile are judged by that profile's requests
        // (eps, weights, refusals): auditing them under this one would blame the implementation.
        let marker = dir.deletingLastPathComponent().appendingPathComponent(Export.marker)
        if let data = try? FileRead.data(marker, limit: FileRead.textLimit),
           let exported = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["profile"] as? String, exported != profile.name {
            throw BNError.invalidArgument("these results answer an export for profile '\(exported.prefix(40))' (\(marker.path)); audit them with --profile \(exported.prefix(40))")
        }
        // A folder that names no golden case (a typo, another suite's id) would be skipped
        // silently: refused before any case.
        let known = Set((try? FileManager.default.contentsOfDirectory(atPath: goldenDir.path)) ?? [])
        let stray = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !known.contains($0) && !$0.hasPrefix(".") }.sorted()
        if !known.isEmpty, let first = stray.first {
            throw BNError.file(path: dir.appendingPathComponent(first).path,
                               reason: "names no golden case (each folder must be a case id\(stray.count > 1 ? "; and \(stray.count - 1) more entries of the results folder" : ""))")
        }
        let results = try eachCase(progress: progress) { ac in
            var r = base(ac)
            let caseDir = dir.appendingPathComponent(ac.goldenID)
            var files: [String: URL] = [:]
            // Something other than a folder where the case's folder belongs (a file, a link to
            // nothing) claims results it does not hold: failed, as bnspec.check fails it.
            var isCaseDir: ObjCBool = false, pathStat = stat()
            if lstat(caseDir.path, &pathStat) == 0,
               !(FileManager.default.fileExists(atPath: caseDir.path, isDirectory: &isCaseDir) && isCaseDir.boolValue) {
                r.status = .failed; r.worstRatio = .infinity; r.fault = .unexpectedOutput
                r.detail = "\(ac.goldenID) in the results folder is not a folder (RESULTS/<case id>/<output>.npy)"
                return r
            }
            // The op's outputs (a case that requires a refusal lists none, yet its outputs are judged).
            let allowed = Set(ac.loaded.spec.op.arrays.filter { $0.role == .output }.map { "\($0.name).npy" } + ["error.txt"])
            for entry in ((try? FileManager.default.contentsOfDirectory(atPath: caseDir.path)) ?? []).sorted() {
                let f = caseDir.appendingPathComponent(entry)
                // Every entry is a file of its own (no link out of the folder, as for an adapter's outputs).
                let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: f.path)) != nil
                var isDir: ObjCBool = false
                // A folder named error.txt or y.npy is no refusal and no output (an outside red team's:
                // an error.txt folder passed as a refusal).
                let folder = !link && FileManager.default.fileExists(atPath: f.path, isDirectory: &isDir) && isDir.boolValue
                if link || folder || !allowed.contains(entry) {
                    r.status = .failed; r.worstRatio = .infinity; r.fault = .unexpectedOutput
                    r.detail = link ? "\(entry) is a symbolic link; outputs must be files in the case folder"
                        : folder ? "\(entry) is a folder; outputs (and error.txt) must be files in the case folder"
                        : "unexpected file \(entry) in the case folder (allowed: \(allowed.sorted().joined(separator: ", ")))"
                    return r
                }
                if entry != "error.txt" { files[String(entry.dropLast(4))] = f }
            }
            let errorFile = caseDir.appendingPathComponent("error.txt")
            let refused = FileManager.default.fileExists(atPath: errorFile.path)
            // A refusal and outputs at once say two things: neither may be taken (an outside red
            // team's: the outputs were judged on a normal case, the refusal taken on one that
            // requires it, whichever way favoured the implementation).
            if refused && !files.isEmpty {
                r.status = .failed; r.worstRatio = .infinity; r.fault = .unexpectedOutput
                r.detail = "both error.txt (a refusal) and outputs (\(files.keys.sorted().joined(separator: ", "))) in the case folder: give one or the other"
                return r
            }
            if !FileManager.default.fileExists(atPath: caseDir.path) {
                r.status = .skipped; r.detail = Self.noResultsNote
            } else if ac.loaded.spec.expectError != nil {
                r.status = refused ? .passed : .failed
                r.detail = refused ? "refused as the profile requires" : "expected a refusal (error.txt), found outputs"
                if !refused { r.worstRatio = .infinity; r.fault = .notRefused; r.likelyCause = Self.missingRefusal(ac.loaded.spec, profile) }
            } else if refused && files.isEmpty {  // a refusal: allowed where the profile documents one (spec §5.6)
                let said = (try? FileRead.data(errorFile, limit: FileRead.textLimit)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                r = self.refused(ac, r, message: said.split(separator: "\n").first.map { String($0.prefix(200)) } ?? "", by: "the implementation (error.txt)")
            } else {
                r = judge(ac, r, files: files)
            }
            return r
        }
        return AuditReport(implementation: name, version: "recorded", profile: profile.name, results: results)
    }

    func base(_ ac: AuditCase) -> AuditResult {
        var r = AuditResult(caseID: ac.goldenID, family: ac.loaded.spec.family, status: .passed, worstRatio: 0, detail: "",
                            likelyCause: nil, repro: "\(reproBase) --case \(ac.goldenID)", condition: ac.analysis?.condition ?? 0,
                            dtype: ac.loaded.spec.dtype.rawValue)
        r.operation = "\(ac.loaded.spec.op)"
        r.finiteData = !ac.loaded.spec.data.hasPrefix("nonfinite")
        return r
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

    /// The verdict on a case the implementation refused (`by`: who refused, for the detail): a pass
    /// when the profile requires the refusal or documents it (spec §5.6), else a failure.
    func refused(_ ac: AuditCase, _ r0: AuditResult, message m: String, by who: String) -> AuditResult {
        var r = r0
        let spec = ac.loaded.spec
        if spec.expectError != nil { r.status = .passed; r.detail = "refused as the profile requires: \(m)" }
        else if let d = profile.documentedRefusal(op: spec.op.rawValue, eps: spec.eps) {
            r.status = .passed; r.detail = "refused (\(d.what)), as the \(profile.name) profile allows: \(m)"
        } else {
            r.status = .failed; r.worstRatio = .infinity; r.detail = "\(who) refused the case: \(m)"; r.fault = .refused
            r.likelyCause = spec.eps == 0 ? "refuses eps = 0 (which the spec defines)" : "refuses a case the profile defines"
        }
        return r
    }

    /// The verdict on outputs returned for a case the profile requires the implementation to refuse.
    func outputsInsteadOfRefusal(_ ac: AuditCase, _ r0: AuditResult, names: some Collection<String>) -> AuditResult {
        var r = r0
        r.status = .failed; r.worstRatio = .infinity; r.fault = .notRefused
        r.detail = "expected a refusal (\(ac.loaded.spec.expectError ?? "")), got outputs \(names.sorted().joined(separator: ", "))"
        r.likelyCause = Self.missingRefusal(ac.loaded.spec, profile)
        return r
    }

    /// Outputs an implementation without running statistics does not provide.
    static let runningOutputs: Set<String> = ["running_mean", "running_var"]
    /// The skip reason of a selected case whose results folder holds no folder for it.
    public static let noResultsNote = "no results for this case"
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
            r.status = .failed; r.worstRatio = .infinity; r.fault = .unexpectedOutput
            r.detail = "unexpected output\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")) (this case has \(spec.outputs.keys.sorted().joined(separator: ", ")))"
            return r
        }
        for (name, url) in files.sorted(by: { $0.key < $1.key }) {
            do {
                // No larger than an NPY of this output's element count can be (8-byte values and
                // the longest header accepted): a header declaring 2²⁸ elements is refused from its
                // size, not read into memory (an outside red team's five such outputs took 11.5 GB).
                let limit = ac.loaded.expected[name].map { 12 + NPYArray.maxHeaderBytes + 8 * $0.values.count } ?? FileRead.npyLimit
                let a = try NPYArray.read(url, bfloat16: spec.op.output(name)?.isBFloat16(in: spec) == true, limit: limit)
                got[name] = a.values
            } catch {
                r.status = .failed; r.worstRatio = .infinity; r.fault = .unreadableOutput; r.detail = "output '\(name)': \(error)"; return r
            }
        }
        return judge(ac, r, outputs: got, notProvided: notProvided)
    }

    /// Judges the outputs an implementation returned (read from its files, or handed over in
    /// process); names the likely cause of a failure.
    func judge(_ ac: AuditCase, _ r0: AuditResult, outputs got: [String: [Double]], notProvided: Set<String> = []) -> AuditResult {
        var r = r0
        let spec = ac.loaded.spec
        let missing = ac.requiredOutputs.subtracting(notProvided).subtracting(got.keys)
        if !missing.isEmpty {
            r.status = .failed; r.worstRatio = .infinity; r.fault = .missingOutput
            r.detail = "missing output\(missing.count > 1 ? "s" : "") \(missing.sorted().joined(separator: ", "))"; return r
        }
        var judged = ac.loaded
        judged.spec.outputs = spec.outputs.filter { got[$0.key] != nil }
        let budget = try? ac.budget()
        let verdict = CaseJudge.judge(judged, outputs: got, name: "adapter", budget: budget)
        r.status = verdict.status; r.worstRatio = verdict.worstRatio; r.detail = verdict.detail ?? ""
        r.beyond = verdict.beyond; r.judged = verdict.judged
        if verdict.worstAt.hasSuffix("[-1]") { r.fault = .wrongSize } else if let open = verdict.worstAt.firstIndex(of: "["),
                  let i = Int(verdict.worstAt[verdict.worstAt.index(after: open)...].dropLast()) {
            let name = String(verdict.worstAt[..<open])
            r.worstAt = "\(name)[\(spec.op.output(name)?.coordinates(ofFlat: i, in: spec) ?? "\(i)")]"
        }
        let absent = notProvided.intersection(spec.outputs.keys).subtracting(got.keys).sorted()
        if r.status == .passed && !absent.isEmpty { r.detail = Self.notProvidedNote(absent) }
        if let p = spec.op.primaryOutput?.name, let exp = judged.expected[p]?.values, let g = got[p], g.count == exp.count {
            let finite = zip(g, exp).filter { $1.isFinite && $0.isFinite }
            let top = finite.map { abs($0.1) }.max() ?? 0
            r.worstUlps = finite.map { abs($0 - $1) }.max().map { $0 / Self.ulp(top, spec.dtype) }
        }
        if let problem = try? CaseJudge.diagnosisProblem(judged, got: got, budget: budget, analysis: ac.analysis) {
            r.variancePoints = Fits.variancePoints(problem)
            if spec.op == .train, let asked = problem.weight(step: 1), let used = Fits.fittedWeight(problem) {
                r.weightPoint = WeightFit.Point(asked: asked, used: used)
            }
            if r.status == .failed {
                r.backwardVariancePoints = Fits.backwardVariancePoints(problem)
                r.varianceAloneExplains = Fits.varianceAloneExplains(problem)
                r.runningWeightAloneExplains = r.weightPoint != nil && Fits.runningWeightAloneExplains(problem)
                r.runningModels = RunningConsistency.reproducing(problem)
                r.contradictedModels = ModelConsistency.contradicted(problem)
                r.nonFiniteWhereFinite = problem.got.contains { name, values in
                    guard let e = problem.expected[name], e.count == values.count else { return false }
                    return zip(values, e).contains { !$0.isFinite && $1.isFinite }
                }
            } else if r.status == .passed && problem.shape.elementCount <= 1 << 20 {
                // A passing case can contradict a formula cause named elsewhere (``ModelConsistency``);
                // the large suite's tensors are left out (its four cases are honest-scale timing cases).
                r.contradictedModels = ModelConsistency.contradicted(problem)
            }
            r.computeRoundoff = spec.dtype.computeRoundoff
            r.meanWithinTolerance = problem.got["batch_mean"] != nil ? problem.failing("batch_mean").isEmpty : Fits.centreWithinTolerance(problem)
            if r.status == .failed && r.fault == nil {  // no cause is read from outputs that were not compared
                let d = Diagnosis.of(problem)
                r.likelyCause = d.cause; r.evidence = d.evidence
                r.failingChannels = Patterns.failures(problem).channels.sorted()
                r.tailWidths = VectorTail.widths(problem)
            }
            r.channels = problem.channels
            r.tailKey = spec.layout == .nchw ? nil : "\(spec.op.rawValue) \(spec.layout.rawValue) \(spec.dtype.rawValue)"
        }
        return r
    }
}
