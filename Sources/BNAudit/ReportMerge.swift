import BNCore
import BNGolden
import Foundation

/// `bnspec merge`: the JSON reports of a sharded run (`--shard K/N` in N jobs) joined into the
/// report the unsharded run writes — the same verdicts, the same digests, in the manifest's order.
///
/// Refused (one line, nothing written): reports of different kinds (audit, verify) or schemas,
/// of different golden vectors (`golden_sha256`), bnspec versions, profiles or implementations, a
/// case in two reports, shards of different N, the same shard twice, an audit shard whose results
/// do not add up to the cases it selected, one stopped early by `--maxfail`, and — unless
/// `partial` — a shard missing (a CI job that crashed must not shrink the suite silently).
public enum ReportMerge {
    /// Checks the parts' common field `name` (e.g. the golden SHA-256) is one value, and returns it.
    static func common<T: Equatable>(_ values: [T], _ name: String, paths: [String]) throws -> T {
        guard let first = values.first else { throw BNError.invalidArgument("no report to merge") }
        if let i = values.firstIndex(where: { $0 != first }) {
            throw BNError.invalidArgument("\(paths[i]) has another \(name) (\(values[i])) than \(paths[0]) (\(first)); not merged")
        }
        return first
    }

    /// Each shard report holds only its own shard's cases, and every case of its shard that its
    /// selection picks from the golden manifest: a shard with a case removed and its counts edited
    /// to match had merged to a report one case short (an outside red team's, round F). `ids`:
    /// each part's case ids (a case once per id).
    static func complete(_ shards: [String?], _ ids: [[String]], selection: String, manifest: [String], paths: [String]) throws {
        let chosen = CaseSelector(canonical: selection)
        for (i, path) in paths.enumerated() {
            guard let text = shards[i], let shard = try? Shard(parsing: text) else { continue }
            let held = Set(ids[i])
            if let stray = ids[i].first(where: { !shard.holds($0) }) {
                throw BNError.corrupt(path: path, reason: "case \(stray.prefix(200)) is not of its shard \(shard); not merged")
            }
            if let chosen, let lost = manifest.first(where: { shard.holds($0) && chosen.selects($0) && !held.contains($0) }) {
                throw BNError.corrupt(path: path, reason: "lacks case \(lost) of its shard \(shard) of the selection (\(selection.prefix(200))); not merged")
            }
        }
    }

    /// Checks the shards of the parts ("K/N" or nil) and returns the merged shard label: nil when
    /// the parts are every shard of N (or not shards at all), "partial K,L/N" with `partial`.
    static func shards(_ shards: [String?], paths: [String], partial: Bool) throws -> String? {
        let parsed = try zip(shards, paths).map { s, p -> Shard? in
            guard let s else { return nil }
            do { return try Shard(parsing: s) } catch { throw BNError.corrupt(path: p, reason: "shard '\(s)' is not K/N") }
        }
        let given = parsed.compactMap { $0 }
        if given.isEmpty { return nil }
        guard given.count == parsed.count else {
            throw BNError.invalidArgument("some reports are shards and some are not (\(paths[parsed.firstIndex { $0 == nil }!]) is not); not merged")
        }
        let n = try common(given.map(\.count), "shard count N", paths: paths)
        var seen: [Int: String] = [:]
        for (s, p) in zip(given, paths) {
            if let other = seen[s.index] { throw BNError.invalidArgument("shard \(s) is in both \(other) and \(p); not merged") }
            seen[s.index] = p
        }
        let missing = (1...n).filter { seen[$0] == nil }
        if missing.isEmpty { return nil }
        let list = missing.map(String.init).joined(separator: ", ")
        guard partial else {
            throw BNError.invalidArgument("shard\(missing.count > 1 ? "s" : "") \(list) of \(n) missing (a job that did not write its report?); pass --partial to merge the others")
        }
        return "partial: \(seen.keys.sorted().map(String.init).joined(separator: ","))/\(n)"
    }

    /// The position of each case id in the manifest; an id the manifest lacks is refused, naming
    /// the report that holds it.
    static func order(_ ids: [[String]], manifest: [String], paths: [String]) throws -> [String: Int] {
        var at: [String: Int] = [:]
        for (i, id) in manifest.enumerated() { at[id] = i }
        for (part, path) in zip(ids, paths) {
            if let unknown = part.first(where: { at[$0] == nil }) {
                throw BNError.invalidArgument("\(path): case '\(unknown.prefix(200))' is not in the golden manifest; not merged")
            }
        }
        return at
    }

    /// Refuses a (case, implementation) key present in two parts, or twice in one (a corrupt report).
    static func disjoint(_ keys: [[String]], paths: [String], what: String) throws {
        var seen: [String: String] = [:]
        for (ks, p) in zip(keys, paths) {
            var own = Set<String>()
            for k in ks where !own.insert(k).inserted {
                throw BNError.corrupt(path: p, reason: "\(what) \(k) appears twice in this report; not merged")
            }
            for k in Set(ks) {
                if let other = seen[k] { throw BNError.invalidArgument("\(what) \(k) is in both \(other) and \(p); not merged") }
                seen[k] = p
            }
        }
    }

    /// Decodes a report of type `T` from `path`, requiring `schema`.
    public static func load<T: Decodable>(_ type: T.Type, _ data: Data, path: String, schema: String) throws -> T {
        guard ReportFormat.schema(of: data) == schema else {
            throw BNError.corrupt(path: path, reason: "not a \(schema) report (schema \(ReportFormat.schema(of: data) ?? "missing"))")
        }
        do { return try ReportFormat.decoder().decode(type, from: data) } catch {
            throw BNError.corrupt(path: path, reason: "\(schema) report does not decode: \(DecodingErrorText.brief(error))")
        }
    }
}

extension AuditReport {
    /// The audit reports `parts` (read from `paths`) as one, in the order of the golden manifest
    /// `manifest` (case ids) whose SHA-256 is `goldenSHA256`.
    public static func merged(_ parts: [AuditReport], paths: [String], manifest: [String], goldenSHA256: String,
                              partial: Bool = false) throws -> AuditReport {
        let sha = try ReportMerge.common(parts.map { $0.goldenSHA256 ?? "none" }, "golden manifest (golden_sha256)", paths: paths)
        guard sha == goldenSHA256 else {
            throw BNError.invalidArgument("the reports are of golden vectors \(sha.prefix(12))…, the golden folder's manifest is \(goldenSHA256.prefix(12))…; not merged")
        }
        _ = try ReportMerge.common(parts.map(\.bnspecVersion), "bnspec version", paths: paths)
        let profile = try ReportMerge.common(parts.map(\.profile), "profile", paths: paths)
        // An empty shard's report names no implementation (its adapter was never started).
        let named = zip(parts, paths).filter { !$0.0.results.isEmpty }
        if !named.isEmpty {
            _ = try ReportMerge.common(named.map { "\($0.0.implementation) \($0.0.version)" }, "implementation", paths: named.map(\.1))
        }
        _ = try ReportMerge.common(parts.map(\.tolerance), "tolerance model", paths: paths)
        let shard = try ReportMerge.shards(parts.map(\.shard), paths: paths, partial: partial)
        let selection = try ReportMerge.common(parts.map { $0.selection ?? "none recorded" }, "case selection", paths: paths)
        try ReportMerge.disjoint(parts.map { $0.results.map(\.caseID) }, paths: paths, what: "case")
        for (part, path) in zip(parts, paths) {
            // A shard lists every case it selected: one lost from the file would shrink the suite.
            if let n = part.selected, n != part.results.count {
                throw BNError.corrupt(path: path, reason: "lists \(part.results.count) results for the \(n) cases its shard selected; not merged")
            }
            // Shards that each stopped at their own --maxfail do not add up to the unsharded run,
            // which stops at the first N failures of the whole selection (an outside red team's).
            if part.notRun > 0 {
                throw BNError.invalidArgument("\(path): stopped early by --maxfail (\(part.notRun) cases not run), so the shards do not add up to the unsharded run; rerun the shards without --maxfail to merge them")
            }
        }
        // Each case as it was before its shard's audit-wide fits: the merged report fits over every case.
        let all = parts.flatMap(\.results).map { r in r.fitInputs?.restore(r) ?? r }
        let at = try ReportMerge.order(parts.map { $0.results.map(\.caseID) }, manifest: manifest, paths: paths)
        try ReportMerge.complete(parts.map(\.shard), parts.map { $0.results.map(\.caseID) }, selection: selection, manifest: manifest, paths: paths)
        let source = named.first?.0 ?? parts[0]
        var r = AuditReport(implementation: source.implementation, version: source.version, profile: profile,
                            results: all.sorted { at[$0.caseID]! < at[$1.caseID]! })
        r.goldenSHA256 = sha
        r.shard = shard
        r.selection = shard == nil ? nil : selection == "none recorded" ? nil : selection
        return r
    }
}

extension Verification.Report {
    /// The verify reports `parts` as one (cases in manifest order, each case's rows in the
    /// parts' implementation order; summaries and digests recomputed as an unsharded run does).
    public static func merged(_ parts: [Verification.Report], paths: [String], manifest: [String], goldenSHA256: String,
                              partial: Bool = false) throws -> Verification.Report {
        let sha = try ReportMerge.common(parts.map { $0.goldenSHA256 ?? "none" }, "golden manifest (golden_sha256)", paths: paths)
        guard sha == goldenSHA256 else {
            throw BNError.invalidArgument("the reports are of golden vectors \(sha.prefix(12))…, the golden folder's manifest is \(goldenSHA256.prefix(12))…; not merged")
        }
        _ = try ReportMerge.common(parts.map(\.bnspecVersion), "bnspec version", paths: paths)
        let names = try ReportMerge.common(parts.map { $0.implementations.map(\.name) }, "set of implementations", paths: paths)
        let shard = try ReportMerge.shards(parts.map(\.shard), paths: paths, partial: partial)
        let selection = try ReportMerge.common(parts.map { $0.selection ?? "none recorded" }, "selection", paths: paths)
        try ReportMerge.disjoint(parts.map { $0.cases.map { "\($0.caseID) (\($0.implementation))" } }, paths: paths, what: "result")
        let all = parts.flatMap(\.cases)
        let at = try ReportMerge.order(parts.map { $0.cases.map(\.caseID) }, manifest: manifest, paths: paths)
        try ReportMerge.complete(parts.map(\.shard), parts.map { Array(Set($0.cases.map(\.caseID))) }, selection: selection, manifest: manifest, paths: paths)
        var rank: [String: Int] = [:]
        for (i, n) in names.enumerated() { rank[n] = i }
        let cases = all.sorted { (at[$0.caseID]!, rank[$0.implementation] ?? 0) < (at[$1.caseID]!, rank[$1.implementation] ?? 0) }
        var roles: [String: String] = [:]
        for s in parts.flatMap(\.implementations) { roles[s.name] = s.role }
        let summaries = Verification.summarize(cases, names: names, roles: roles)
        let everything = Set(cases.map(\.caseID)) == Set(manifest)
        var r = Verification.Report(implementations: summaries, cases: cases, ok: Verification.isOK(summaries, mutantsRequired: everything))
        r.goldenSHA256 = sha
        r.shard = shard
        r.selection = shard == nil ? nil : selection == "none recorded" ? nil : selection
        return r
    }

    /// The last line of `verify`: the verdict and the counts.
    public var closingLine: String {
        let ids = Set(cases.map(\.caseID)).count
        // Calibration kernels not run on any case of the selection are counted apart, not as skips.
        let idle = implementations.filter(\.idle), ran = implementations.filter { !$0.idle }
        let impls = ran.filter { $0.role != "mutant" }, mutants = ran.filter { $0.role == "mutant" }
        let p = impls.reduce(0) { $0 + $1.passed }, f = impls.reduce(0) { $0 + $1.failed }, s = impls.reduce(0) { $0 + $1.skipped }
        let caught = mutants.filter { $0.failed > 0 }.count, unchecked = mutants.filter(\.unchecked).count
        func n(_ k: Int, _ what: String) -> String { "\(k) \(what)\(k == 1 ? "" : "s")" }
        return "verify: \(ok ? "OK" : "FAILED") — \(n(ids, "case")) × \(n(impls.count, "implementation")): \(p) passed, \(f) failed, \(s) skipped"
            + (mutants.isEmpty ? "" : "; \(caught) of \(mutants.count) calibration mutants caught")
            + (unchecked == 0 ? "" : ", \(unchecked) not checked (not run on every case)")
            + (idle.isEmpty ? "" : "; \(n(idle.count, "calibration kernel")) not run")
            + (unchecked + idle.count == 0 ? "" : " (--calibration all runs them)")
            + (shard.map { " (shard \($0))" } ?? "")
    }
}

extension AuditResult {
    /// A case as the audit-wide fits of ``AuditReport/init`` found it: its own diagnosis (cause
    /// and evidence) and what it contributes to the variance-growth and weight fits.
    public struct FitInputs: Codable, Sendable, Equatable {
        public var cause: String?
        public var evidence: [String]
        /// [κ, relative error of the variance, its sign (+1, −1, 0: unknown)] per channel.
        public var variancePoints: [[Double]]
        /// [asked, used] batch weight.
        public var weightPoint: [Double]?
        /// [κ, |v′ − v|/v] of a failed training backward (the one-pass relabel reads them).
        public var backwardVariancePoints: [[Double]]?
        public var computeRoundoff: Double
        public var meanWithinTolerance: Bool
        /// The model checks of the one-pass and weight attributions (absent: false).
        public var varianceAloneExplains: Bool?
        public var runningWeightAloneExplains: Bool?
        /// The vector-loop-tail check: a channels-last case's (or a numeric failure's) channel
        /// count and kernel path, a failure's failing channels and the loop widths they fit.
        public var channels: Int?
        public var failingChannels: [Int]?
        public var tailWidths: [Int]?
        public var tailKey: String?
        /// The running-update models that reproduce a failing training case's running statistics.
        public var runningModels: [String]?
        /// The formula models a failing case contradicts (``ModelConsistency``).
        public var contradictedModels: [String]?
        /// A failing case's non-finite output where the reference is finite (absent: false).
        public var nonFiniteWhereFinite: Bool?
        enum CodingKeys: String, CodingKey {
            case cause, evidence, variancePoints = "variance_points", weightPoint = "weight_point"
            case backwardVariancePoints = "backward_variance_points"
            case computeRoundoff = "compute_roundoff", meanWithinTolerance = "mean_within_tolerance"
            case varianceAloneExplains = "variance_alone_explains", runningWeightAloneExplains = "running_weight_alone_explains"
            case channels, failingChannels = "failing_channels", tailWidths = "tail_widths", tailKey = "tail_key"
            case runningModels = "running_models", contradictedModels = "contradicted_models"
            case nonFiniteWhereFinite = "non_finite_where_finite"
        }

        init(_ r: AuditResult) {
            cause = r.likelyCause; evidence = r.evidence
            variancePoints = r.variancePoints.map { [$0.kappa, $0.error, $0.sign] }
            weightPoint = r.weightPoint.map { [$0.asked, $0.used] }
            backwardVariancePoints = r.backwardVariancePoints.isEmpty ? nil : r.backwardVariancePoints.map { [$0.kappa, $0.error] }
            computeRoundoff = r.computeRoundoff; meanWithinTolerance = r.meanWithinTolerance
            varianceAloneExplains = r.varianceAloneExplains ? true : nil; runningWeightAloneExplains = r.runningWeightAloneExplains ? true : nil
            channels = r.failingChannels.isEmpty && r.tailKey == nil ? nil : r.channels
            failingChannels = r.failingChannels.isEmpty ? nil : r.failingChannels
            tailWidths = r.tailWidths.isEmpty ? nil : r.tailWidths
            tailKey = r.tailKey
            runningModels = r.runningModels
            contradictedModels = r.contradictedModels.flatMap { $0.isEmpty ? nil : $0 }
            nonFiniteWhereFinite = r.nonFiniteWhereFinite ? true : nil
        }

        /// `r` as it was before the fits, for fitting again.
        func restore(_ r: AuditResult) -> AuditResult {
            var r = r
            r.likelyCause = cause; r.evidence = evidence
            r.variancePoints = variancePoints.compactMap { $0.count >= 2 ? VarianceGrowth.Point(kappa: $0[0], error: $0[1], sign: $0.count > 2 ? $0[2] : 0) : nil }
            r.weightPoint = weightPoint.flatMap { $0.count == 2 ? WeightFit.Point(asked: $0[0], used: $0[1]) : nil }
            r.backwardVariancePoints = (backwardVariancePoints ?? []).compactMap { $0.count == 2 ? VarianceGrowth.Point(kappa: $0[0], error: $0[1]) : nil }
            r.computeRoundoff = computeRoundoff; r.meanWithinTolerance = meanWithinTolerance
            r.varianceAloneExplains = varianceAloneExplains ?? false; r.runningWeightAloneExplains = runningWeightAloneExplains ?? false
            r.channels = channels ?? 0; r.failingChannels = failingChannels ?? []
            r.tailWidths = tailWidths ?? []; r.tailKey = tailKey
            r.runningModels = runningModels
            r.contradictedModels = contradictedModels
            r.nonFiniteWhereFinite = nonFiniteWhereFinite ?? false
            return r
        }
    }
}

extension AuditReport {
    /// The report without the fit inputs of its cases (they only serve `bnspec merge`: a whole
    /// audit's JSON leaves them out).
    public func withoutFitInputs() -> AuditReport {
        var r = self
        for i in r.results.indices { r.results[i].fitInputs = nil }
        return r
    }
}
