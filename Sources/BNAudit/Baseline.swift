import BNCore
import BNGolden
import Foundation

/// `audit --baseline F [--max-growth X]`: a previous `--json` report as the expected state of an
/// implementation (known failures allowed). A case differs when its verdict changed, or — with a
/// growth limit X — when its verdict did not change but its worst error ÷ tolerance grew more than
/// X-fold: after > X·before (from a ratio of 0, any positive ratio is growth). Skipped cases are
/// not compared by ratio.
public struct Baseline: Sendable {
    public struct Entry: Sendable, Equatable {
        public var status: String
        public var worstRatio: Double
        /// A failure's kind: its fault ("timeout", "crashed", "refused", …) or "numeric" (a
        /// comparison beyond tolerance); nil for a pass or a skip, and in reports before faults.
        public var kind: String? = nil
        /// The status with a failure's kind: a numeric failure that turns into a hang or a crash
        /// is a change of verdict (an outside red team's kept its CI green).
        var verdict: String { kind.map { "\(status) (\($0))" } ?? status }
    }
    public var path: String
    public var entries: [String: Entry]
    /// The profile the baseline was audited under (nil in a report without one).
    public var profile: String?

    /// Reads a report written by `audit --json` (any schema version: only `results[].case`,
    /// `status` and `worst_ratio` are read; "inf"/"nan" strings and the 1e308 of older reports
    /// read as +Inf).
    public init(path: String) throws {
        self.path = path
        let data = try FileRead.data(URL(fileURLWithPath: path), limit: FileRead.textLimit)  // a missing or unreadable file says so
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rs = obj["results"] as? [[String: Any]] else {
            throw BNError.file(path: path, reason: "not a bnspec audit --json report")
        }
        var e: [String: Entry] = [:]
        for r in rs {
            guard let id = r["case"] as? String, let st = r["status"] as? String else { continue }
            e[id] = Entry(status: st, worstRatio: Self.number(r["worst_ratio"]),
                          kind: st == "failed" ? (r["fault"] as? String ?? "numeric") : nil)
        }
        entries = e
        profile = obj["profile"] as? String
    }

    /// A one-line error when the baseline was audited under another profile than `name`: its
    /// verdicts are not this audit's to compare with (an outside red team's pytorch baseline was
    /// accepted for a keras audit). Called before the audit runs.
    public func check(profile name: String) throws {
        if let p = profile, p != name {
            throw BNError.invalidArgument("--baseline \(path) is a report of profile \(p), this audit's is \(name) (verdicts under different profiles are not comparable)")
        }
    }

    /// A report number: a JSON number (≥ 1e308 is +Inf), or "inf"/"-inf"/"nan".
    static func number(_ v: Any?) -> Double {
        if let s = v as? String { return s == "inf" ? .infinity : (s == "-inf" ? -.infinity : (Double(s) ?? .nan)) }
        guard let d = (v as? NSNumber)?.doubleValue else { return .nan }
        return d >= 1e308 ? .infinity : d
    }

    /// One case that differs from the baseline.
    public struct Difference: Sendable, CustomStringConvertible {
        public var caseID: String
        public var before: Entry?
        public var after: Entry
        public var detail: String
        /// The verdict changed (else: the error grew).
        public var verdictChanged: Bool
        public var description: String {
            let b = before.map { $0.verdict } ?? "absent"
            if verdictChanged { return "\(caseID) was \(b), now \(before?.kind == nil ? after.status : after.verdict): \(detail.prefix(120))" }
            return "\(caseID) still \(after.status), but error ÷ tolerance grew \(Self.ratio(before?.worstRatio ?? 0)) → \(Self.ratio(after.worstRatio))"
                + " (\(Self.growth(before?.worstRatio ?? 0, after.worstRatio)))"
        }
        static func ratio(_ r: Double) -> String { r.isFinite ? String(format: "%.3g", r) : "∞" }
        static func growth(_ b: Double, _ a: Double) -> String {
            b > 0 && a.isFinite ? String(format: "%.3g×", a / b) : "from \(ratio(b))"
        }
    }

    /// The cases of `report` that differ from the baseline (report order).
    public func differences(_ report: AuditReport, maxGrowth: Double?) -> [Difference] {
        report.results.compactMap { r in
            let now = Entry(status: r.status.rawValue, worstRatio: r.worstRatio,
                            kind: r.status == .failed ? (r.fault?.rawValue ?? "numeric") : nil)
            guard let before = entries[r.caseID] else {
                return Difference(caseID: r.caseID, before: nil, after: now, detail: r.detail, verdictChanged: true)
            }
            // An older baseline without faults: the status alone.
            if before.status != now.status || (before.kind != nil && before.kind != now.kind) {
                return Difference(caseID: r.caseID, before: before, after: now, detail: r.detail, verdictChanged: true)
            }
            guard let x = maxGrowth, r.status != .skipped, Self.grew(before.worstRatio, now.worstRatio, limit: x) else { return nil }
            return Difference(caseID: r.caseID, before: before, after: now, detail: r.detail, verdictChanged: false)
        }
    }

    /// Whether `after` exceeds `limit` × `before` (NaN counts as +Inf; +Inf → +Inf is no growth).
    static func grew(_ before: Double, _ after: Double, limit: Double) -> Bool {
        let b = before.isNaN ? .infinity : before, a = after.isNaN ? .infinity : after
        if b.isInfinite { return false }
        return a > limit * b && a > 0
    }
}
