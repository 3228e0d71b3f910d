import BNAudit
import Foundation

/// The terminal text of a verify report: a table per case family, the calibration mutants, one
/// repro line per failure, the digests (`digests`), and the closing line with the counts.
func verifyText(_ report: Verification.Report, digests digest: Bool) -> String {
    var lines: [String] = []
    func print(_ s: String) { lines.append(s) }
    func ratio(_ r: Double) -> String { r.isFinite ? String(format: "%.3g", r) : "∞" }
    // Calibration kernels not run on any case of the selection get no column (listed below).
    let idle = report.implementations.filter(\.idle)
    let impls = report.implementations.filter { $0.role != "mutant" && !$0.idle }
    let families = Array(Set(report.cases.map(\.family))).sorted()
    print("BNSpec verify — \(Set(report.cases.map(\.caseID)).count) golden cases; cell = passed/run (worst error ÷ tolerance)\n")
    // One cell per (family, implementation): passed, run and the worst ratio of its run cases,
    // gathered in one pass over the results (filtering them per cell was quadratic).
    struct Cell { var passed = 0, run = 0; var worst: Double? = nil }
    var cells: [String: [String: Cell]] = [:]
    for r in report.cases where r.status != .skipped {
        var c = cells[r.family, default: [:]][r.implementation, default: Cell()]
        c.run += 1
        if r.status == .passed { c.passed += 1 }
        c.worst = c.worst.map { Swift.max($0, r.worstRatio) } ?? r.worstRatio
        cells[r.family, default: [:]][r.implementation] = c
    }
    var rows: [[String]] = []
    for f in families {
        var row = [f]
        for s in impls {
            let c = cells[f]?[s.name] ?? Cell()
            row.append(c.run == 0 ? "-" : "\(c.passed)/\(c.run) (\(ratio(c.worst ?? 0)))")
        }
        rows.append(row)
    }
    rows.append(["TOTAL"] + impls.map { "\($0.passed)/\($0.passed + $0.failed) (\(ratio($0.worstRatio)))" })
    print(table(["family"] + impls.map(\.name), rows))
    if !idle.isEmpty {
        print("\nCalibration kernels not run on any case of this selection (\(idle.count)): \(idle.map(\.name).joined(separator: ", "))")
    }
    let mutants = report.implementations.filter { $0.role == "mutant" && !$0.idle }
    if !mutants.isEmpty {
        print("\nCalibration mutants (each must be caught by at least one case):")
        for m in mutants {
            let first = report.cases.first { $0.implementation == m.name && $0.status == .failed }
            let runs = m.passed + m.failed
            let verdict = m.failed > 0 ? "caught by \(m.failed) cases"
                : m.unchecked ? "not checked: not run on \(m.notRequested ?? 0) case\(m.notRequested == 1 ? "" : "s")" + (runs > 0 ? ", not caught by the \(runs) it ran on" : "")
                : (report.ok ? "not caught by the cases of this selection" : "NOT CAUGHT")
            print("  \(m.name): \(verdict)" + (first.map { " — e.g. \($0.caseID): \($0.detail)" } ?? ""))
        }
    }
    for note in report.notes ?? [] { print("\nNote: \(note)") }
    let mutantNames = Set(mutants.map(\.name))
    let failures = report.cases.filter { $0.status == .failed && !mutantNames.contains($0.implementation) }
    if !failures.isEmpty {
        print("\nFAILED (\(failures.count)):")
        for f in failures { print("  \(f.implementation) \(f.caseID): \(f.detail)\n    repro: \(f.repro)") }
    }
    if digest {
        print("\nOutput digests (SHA-256 over every output bit of every case):")
        for s in report.implementations { print("  \(s.name.padding(toLength: 34, withPad: " ", startingAt: 0)) \(s.digest ?? "-")") }
    }
    print("\n" + report.closingLine)
    return lines.joined(separator: "\n")
}


extension AuditReport {
    /// The terminal text of an audit: a table per case family (failing families first; the cause
    /// column left-aligned), the numeric failures and the errors (refusals, crashes, protocol
    /// faults, missing outputs) each with their repro line, and the closing line with the counts.
    /// The first `evidenceLimit` failures of each list carry their evidence, indented (each line
    /// cut at 300 characters); every failure's whole evidence is in --json and --html.
    func terminalText(limit: Int = 40, evidenceLimit: Int = 10) -> String {
        var lines = ["BNSpec audit — \(implementation) \(version) against profile \(profile) (\(tolerance))" + (shard.map { ", shard \($0)" } ?? ""), ""]
        lines.append(table(["family", "passed", "failed", "errors", "skipped", "worst ÷ tol", "likely cause"], familyRows(), left: [6]))
        func list(_ title: String, _ rs: [AuditResult]) {
            guard !rs.isEmpty else { return }
            lines.append("\n\(title) (\(rs.count)):")
            for (k, r) in rs.prefix(limit).enumerated() {
                lines.append("  \(r.caseID): \(r.likelyCause.map { "[\($0)] " } ?? (r.fault == nil ? "[unexplained] " : ""))\(r.fault.map { "\($0.rawValue): " } ?? "")\(r.detail.prefix(200))")
                if k < evidenceLimit {
                    for e in r.evidence { lines.append("    evidence: " + (e.count > 300 ? e.prefix(299) + "…" : e)) }
                }
                lines.append("    repro: \(r.repro)")
            }
            if rs.count > limit { lines.append("  … \(rs.count - limit) more in --json/--html") }
            if rs.count > evidenceLimit, rs.dropFirst(evidenceLimit).contains(where: { !$0.evidence.isEmpty }) {
                lines.append("  (evidence of the first \(evidenceLimit) only; every failure's in --json/--html)")
            }
        }
        list("Failures", results.filter { $0.status == .failed && !($0.fault?.isError ?? false) })
        list("Errors: refusals, crashes, protocol faults, missing outputs", results.filter { $0.fault?.isError == true })
        lines.append("\n" + closingLine)
        return lines.joined(separator: "\n")
    }
}
