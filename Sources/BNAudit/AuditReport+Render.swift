import BNCore
import Foundation

extension AuditReport {
    /// `s` as XML attribute or element text: markup characters as entities, control characters
    /// (which XML 1.0 forbids, and which an adapter's text may hold) escaped as `\xNN`.
    static func xml(_ s: String) -> String {
        s.escapingControlCharacters(keepNewlines: true).replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Failures whose comparison could not happen (refusals, crashes, protocol faults, missing or
    /// unreadable outputs): JUnit `<error>`s.
    public var errors: [AuditResult] { results.filter { $0.status == .failed && $0.fault?.isError == true } }
    /// Cases not run because `--maxfail` was reached (counted among the skipped).
    public var notRun: Int { results.filter { $0.fault == .notRun }.count }

    static func seconds(_ s: Double) -> String { String(format: "%.3f", s) }

    /// JUnit XML: one testsuite per case family, one testcase per case, each with its `time`.
    /// A numeric failure (and outputs where a refusal was expected) is a `<failure>`; a refusal,
    /// crash, timeout, protocol fault or missing output an `<error>` (type = the fault); a case
    /// the implementation does not support, or not run after `--maxfail`, `<skipped>`. Messages
    /// carry the detail and likely cause, the body the repro line.
    public func junit() -> String {
        let families = Dictionary(grouping: results, by: \.family).sorted { $0.key < $1.key }
        func counts(_ rs: [AuditResult]) -> String {
            let e = rs.filter { $0.status == .failed && $0.fault?.isError == true }.count
            let f = rs.filter { $0.status == .failed }.count - e, s = rs.filter { $0.status == .skipped }.count
            return "tests=\"\(rs.count)\" failures=\"\(f)\" errors=\"\(e)\" skipped=\"\(s)\" time=\"\(Self.seconds(rs.reduce(0) { $0 + $1.seconds }))\""
        }
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"bnspec audit \(Self.xml(implementation)) \(Self.xml(version)) (profile \(Self.xml(profile)))\" \(counts(results))>\n"
        for (family, rs) in families {
            out += "  <testsuite name=\"\(Self.xml(family))\" \(counts(rs))>\n"
            for r in rs {
                out += "    <testcase classname=\"\(Self.xml(family))\" name=\"\(Self.xml(r.caseID))\" time=\"\(Self.seconds(r.seconds))\""
                let msg = (r.likelyCause.map { "likely cause: \($0); " } ?? "") + r.detail
                switch r.status {
                case .passed: out += "/>\n"
                case .skipped: out += ">\n      <skipped message=\"\(Self.xml(r.detail))\"/>\n    </testcase>\n"
                case .failed:
                    let tag = r.fault?.isError == true ? "error" : "failure"
                    let type = r.fault?.rawValue ?? "numeric"
                    out += ">\n      <\(tag) type=\"\(type)\" message=\"\(Self.xml(msg))\">repro: \(Self.xml(r.repro))</\(tag)>\n    </testcase>\n"
                }
            }
            out += "  </testsuite>\n"
        }
        return out + "</testsuites>\n"
    }

    /// Families, those with the most failures first (then by name).
    func familiesByFailures() -> [(family: String, results: [AuditResult])] {
        Dictionary(grouping: results, by: \.family).map { (family: $0.key, results: $0.value) }.sorted {
            let a = $0.results.filter { $0.status == .failed }.count, b = $1.results.filter { $0.status == .failed }.count
            return a != b ? a > b : $0.family < $1.family
        }
    }

    static func ratioText(_ r: Double) -> String { r.isFinite ? String(format: "%.3g", r) : "∞" }

    /// The terminal table, failing families first: family, passed/judged, numeric failures,
    /// errors (refusals, crashes, protocol faults, missing outputs), skipped, the worst numeric
    /// error ÷ tolerance (errors have none), likely causes.
    public func familyRows() -> [[String]] {
        familiesByFailures().map { family, rs in
            let judged = rs.filter { $0.status != .skipped }
            let numeric = rs.filter(\.hasNumbers)
            let errors = rs.filter { $0.status == .failed && $0.fault?.isError == true }.count
            let worst = numeric.map(\.worstRatio).max()
            let causes = Set(rs.filter { $0.status == .failed }.map { $0.likelyCause ?? $0.fault.map { "\($0.summary) (no comparison)" } ?? "unexplained" })
                .sorted().joined(separator: "; ")
            return [family, "\(rs.filter { $0.status == .passed }.count)/\(judged.count)",
                    "\(judged.filter { $0.status == .failed }.count - errors)", "\(errors)", "\(rs.count - judged.count)",
                    worst.map(Self.ratioText) ?? "-", causes]
        }
    }

    /// The last line of an audit (the shape `audit: P passed, F failed, S skipped` is stable).
    public var closingLine: String {
        let e = errors.count
        var notes: [String] = []
        if e > 0 { notes.append("\(e) of the failures \(e == 1 ? "is an error" : "are errors") (refusal, crash, protocol fault or missing output)") }
        if notRun > 0 { notes.append("\(notRun) not run after --maxfail") }
        let time = results.reduce(0) { $0 + $1.seconds }
        return "audit: \(passed) passed, \(failed) failed, \(skipped) skipped" + (notes.isEmpty ? "" : " — " + notes.joined(separator: "; "))
            + String(format: " (%.1f s)", time) + (shard.map { ", shard \($0)" } ?? "")
    }
}
