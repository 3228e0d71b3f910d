import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import Foundation

/// `bnspec verify`: the reference and the built-in kernels over the golden cases.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the reference and every built-in implementation over the golden cases; print a table.")

    @Option(help: "Golden folder (default: $BNSPEC_GOLDEN, $BNSPEC_HOME/golden, the checkout's, or <prefix>/share/bnspec/golden).")
    var golden: String?
    @Option(name: .customLong("implementation"), help: "Only these implementations (repeatable).")
    var implementations: [String] = []
    @Option(name: .customLong("exclude-implementation"),
            help: "Leave these implementations out (repeatable), e.g. reference: `bnspec generate --check` proves its outputs equal to golden/.")
    var excludedImplementations: [String] = []
    @OptionGroup var selection: CaseSelection
    @Option(help: "Write the full results as JSON to this file.")
    var json: String?
    @Option(help: "Threads of the 'threaded' kernel (default: every core, at least 2).")
    var threads: Int?
    @Option(help: "Calibration kernels (honest algorithms and mutants): auto (cases of at most 1048576 elements, and any case for one named with --implementation), all, or none.")
    var calibration = "auto"
    @Flag(help: "Print each implementation's output digest (SHA-256 of every output bit, all cases): compare across runs, machines and --threads.")
    var digest = false

    func validate() throws {
        guard Verification.CalibrationPolicy(rawValue: calibration) != nil else {
            throw BNSpec.usageError("unknown --calibration '\(calibration)' (expected auto, all or none)")
        }
        if let t = threads, !(1...256).contains(t) { throw BNSpec.usageError("--threads must be in 1…256 (got \(t))") }
        if let both = implementations.first(where: excludedImplementations.contains) {
            throw BNSpec.usageError("--implementation \(both) and --exclude-implementation \(both) contradict each other")
        }
    }

    func run() throws {
        try BNSpec.run {
            let policy = Verification.CalibrationPolicy(rawValue: calibration) ?? .auto
            let dir = try Paths.resolve(golden, default: "golden")
            try Paths.refuseInside([("--json", json)], folders: [("golden", dir)])
            try Preflight.reports(json)
            let selector = try selection.selector(bazel: true)
            let ids = try selector.select(try GoldenStore.manifest(dir).cases, source: dir.path)
            if selection.list { return selection.print(ids) }
            let progress = Progress("verify")
            var report = try Verification.run(golden: dir, only: implementations, excluding: excludedImplementations, cases: selector,
                                              threads: threads, calibration: policy) { i, n in
                progress.update(done: i, total: n, failed: nil, current: i < n ? ids[i] : nil)
            }
            progress.update(done: ids.count, total: ids.count, failed: nil, current: nil)
            report.goldenSHA256 = try ReportFormat.goldenSHA256(dir)
            if let notice = GoldenRelease.notice(report.goldenSHA256!) { StandardStream.write("bnspec: warning: \(notice)\n", to: 2) }
            report.shard = selector.shard?.description
            if selector.shard != nil {
                report.selection = "\(selector.canonical); implementations=\(implementations.isEmpty ? "all" : implementations.sorted().joined(separator: ","))"
                    + (excludedImplementations.isEmpty ? "" : "; excluded=\(excludedImplementations.sorted().joined(separator: ","))") + "; calibration=\(policy.rawValue)"
            }
            // A failure reruns against the same golden folder.
            let reproGolden = Paths.reproGolden(golden)
            for i in report.cases.indices where !report.cases[i].repro.isEmpty { report.cases[i].repro += reproGolden }
            if ids.isEmpty { print("verify: shard \(selector.shard?.description ?? "") holds no case of this selection; nothing to run") }
            print(verifyText(report, digests: digest))
            if let path = json { try writeJSON(report, to: path) }
            if !report.ok { throw ExitCode(1) }
        }
    }
}
