import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import Foundation

/// `bnspec verify`: the reference and the built-in kernels over the golden cases.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the reference and every built-in implementation over the golden cases; print a table.")

    @Option(help: "Golden folder (default: golden/ of the checkout).")
    var golden: String?
    @Option(name: .customLong("implementation"), help: "Only these implementations (repeatable).")
    var implementations: [String] = []
    @OptionGroup var selection: CaseSelection
    @Option(help: "Write the full results as JSON to this file.")
    var json: String?
    @Option(help: "Threads of the 'threaded' kernel (default: every core, at least 2).")
    var threads: Int?
    @Flag(help: "Print each implementation's output digest (SHA-256 of every output bit, all cases): compare across runs, machines and --threads.")
    var digest = false

    func run() throws {
        try BNSpec.run {
            try Preflight.reports(json)
            let dir = try Paths.resolve(golden, default: "golden")
            if selection.list { return selection.print(try selection.ids(in: dir)) }
            let tty = isatty(2) != 0
            let report = try Verification.run(golden: dir, only: implementations, cases: selection.selector, threads: threads) { i, n in
                if tty { FileHandle.standardError.write(Data("\rverify: case \(i + 1)/\(n)".utf8)) }
            }
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            printTable(report)
            if let path = json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                try FileWrite.replace(try enc.encode(report), at: path)
            }
            if !report.ok { throw ExitCode(1) }
        }
    }

    func ratio(_ r: Double) -> String { r.isFinite ? String(format: "%.3g", r) : "inf" }

    func printTable(_ report: Verification.Report) {
        let impls = report.implementations.filter { $0.role != "mutant" }
        let families = Array(Set(report.cases.map(\.family))).sorted()
        print("BNSpec verify — \(Set(report.cases.map(\.caseID)).count) golden cases; cell = passed/run (worst error ÷ tolerance)\n")
        var rows: [[String]] = []
        for f in families {
            var row = [f]
            for s in impls {
                let rs = report.cases.filter { $0.family == f && $0.implementation == s.name && $0.status != .skipped }
                let p = rs.filter { $0.status == .passed }.count
                let w = rs.map(\.worstRatio).max() ?? 0
                row.append(rs.isEmpty ? "-" : "\(p)/\(rs.count) (\(ratio(w)))")
            }
            rows.append(row)
        }
        rows.append(["TOTAL"] + impls.map { "\($0.passed)/\($0.passed + $0.failed) (\(ratio($0.worstRatio)))" })
        print(table(["family"] + impls.map(\.name), rows))
        let mutants = report.implementations.filter { $0.role == "mutant" }
        if !mutants.isEmpty {
            print("\nCalibration mutants (each must be caught by at least one case):")
            for m in mutants {
                let first = report.cases.first { $0.implementation == m.name && $0.status == .failed }
                let verdict = m.failed > 0 ? "caught by \(m.failed) cases" : "NOT CAUGHT"
                print("  \(m.name): \(verdict)" + (first.map { " — e.g. \($0.caseID): \($0.detail)" } ?? ""))
            }
        }
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
        print(report.ok ? "\nverify: OK" : "\nverify: FAILED")
    }
}
