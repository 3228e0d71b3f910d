import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import Foundation

/// `bnspec merge`: the JSON reports of a sharded run joined into one (``BNAudit/ReportMerge``).
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the JSON reports of sharded runs (audit or verify --shard K/N --json F) into one report.",
        discussion: """
        The merged report equals the unsharded run's: the same verdicts and digests, in the manifest's order. \
        Refused: reports of different golden vectors, profiles or implementations, a case in two reports, a missing \
        shard (unless --partial). Exit status: 0 the merged run passed, 1 it failed, 2 not merged, 64 usage.
        """)

    @Argument(help: "JSON reports (all from audit --json, or all from verify --json).") var reports: [String]
    @Option(help: "Golden folder the reports were made from (for the case order; default as the other commands).") var golden: String?
    @Option(help: "Write the merged report as JSON to this file.") var json: String?
    @Option(help: "Write JUnit XML to this file (audit reports).") var junit: String?
    @Option(help: "Write the HTML page to this file (audit reports).") var html: String?
    @Flag(help: "Merge even when some shards are missing (the merged report says which it holds).") var partial = false
    @Flag(help: "Print each implementation's output digest (verify reports).") var digest = false

    func validate() throws {
        if reports.isEmpty { throw BNSpec.usageError("give the JSON reports to merge") }
        try Paths.checkDistinct(outputs: [("--json", json), ("--junit", junit), ("--html", html)], inputs: reports)
    }

    func run() throws {
        try BNSpec.run {
            let dir = try Paths.resolve(golden, default: "golden")
            try Paths.refuseInside([("--json", json), ("--junit", junit), ("--html", html)], folders: [("golden", dir)])
            try Preflight.reports(json, junit, html)
            let manifest = try GoldenStore.manifest(dir).cases, sha = try ReportFormat.goldenSHA256(dir)
            let data = try reports.map { try FileRead.data(URL(fileURLWithPath: $0), limit: FileRead.textLimit) }
            let schemas = zip(data, reports).map { d, _ in ReportFormat.schema(of: d) ?? "none" }
            if let i = schemas.firstIndex(of: "none") {
                throw BNError.corrupt(path: reports[i], reason: "not a BNSpec JSON report (not strict JSON, or no \"schema\" field)")
            }
            guard Set(schemas).count == 1 else {
                let i = schemas.firstIndex { $0 != schemas[0] }!
                throw BNError.invalidArgument("\(reports[i]) is a \(schemas[i]) report, \(reports[0]) a \(schemas[0]) one; not merged")
            }
            switch schemas[0] {
            case ReportFormat.auditSchema:
                let parts = try zip(data, reports).map { try ReportMerge.load(AuditReport.self, $0, path: $1, schema: ReportFormat.auditSchema) }
                let merged = try AuditReport.merged(parts, paths: reports, manifest: manifest, goldenSHA256: sha, partial: partial)
                print(merged.terminalText())
                if let path = json { try writeJSON(merged.shard == nil ? merged.withoutFitInputs() : merged, to: path) }
                if let path = junit { try writeAtomically(Data(merged.junit().utf8), to: path) }
                if let path = html { try writeAtomically(Data(merged.html().utf8), to: path) }
                if merged.passed + merged.failed == 0 { throw BNError.invalidArgument("no case was checked in the merged reports") }
                if !merged.ok { throw ExitCode(1) }
            case ReportFormat.verifySchema:
                guard junit == nil && html == nil else { throw BNSpec.usageError("--junit and --html merge audit reports; verify reports merge to --json") }
                let parts = try zip(data, reports).map { try ReportMerge.load(Verification.Report.self, $0, path: $1, schema: ReportFormat.verifySchema) }
                let merged = try Verification.Report.merged(parts, paths: reports, manifest: manifest, goldenSHA256: sha, partial: partial)
                print(verifyText(merged, digests: digest))
                if let path = json { try writeJSON(merged, to: path) }
                if !merged.ok { throw ExitCode(1) }
            default:
                throw BNError.invalidArgument("\(reports[0]): cannot merge \(schemas[0]) reports (audit and verify reports merge)")
            }
        }
    }
}
