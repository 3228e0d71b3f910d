import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import BNReferenceChecks
import Foundation

/// `bnspec oracle`: the golden files against the exact oracle (spec §7), independent of the reference.
struct Oracle: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove every golden element correctly rounded: each is re-derived with exact rationals (BigInt), independently of the reference (spec §7).")

    @Option(help: "Golden folder (default: $BNSPEC_GOLDEN, $BNSPEC_HOME/golden, the checkout's, or <prefix>/share/bnspec/golden).")
    var golden: String?
    @OptionGroup var selection: CaseSelection
    @Option(help: "Threads, one case each at a time (default: every core). The result does not depend on it.")
    var threads: Int?
    @Option(help: "Write the tally and the failures as JSON to this file.")
    var json: String?

    func validate() throws {
        if let t = threads, !(1...256).contains(t) { throw BNSpec.usageError("--threads must be in 1…256 (got \(t))") }
    }

    func run() throws {
        try BNSpec.run {
            let dir = try Paths.resolve(golden, default: "golden")
            try Paths.refuseInside([("--json", json)], folders: [("golden", dir)])
            try Preflight.reports(json)
            let ids = try selection.ids(in: dir, bazel: true)
            if selection.list { return selection.print(ids) }
            if ids.isEmpty { print("oracle: shard \(selection.shard ?? "") holds no case of this selection; nothing to check"); return }
            // Every file against the manifest first, as verify does: a changed byte is one line in
            // seconds, not after the whole sweep (an outside red team's: 96 s of work, then the error).
            try GoldenStore.checkFiles(try GoldenStore.manifest(dir), dir, selected: ids)
            nonisolated(unsafe) let progress = Progress("oracle")  // the sweep calls it on one thread at a time
            let sweep = try GoldenOracle.sweep(golden: dir, ids: ids, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount) { done, current in
                progress.update(done: done, total: ids.count, failed: nil, current: current)
            }
            progress.update(done: ids.count, total: ids.count, failed: nil, current: nil)
            let reproGolden = Paths.reproGolden(golden)
            for f in sweep.failures { print("FAIL \(f.line)") }
            if sweep.failureCount > sweep.failures.count {
                print("(\(sweep.failureCount - sweep.failures.count) more failures not shown: at most \(GoldenOracle.Sweep.keptPerCase) per case)")
            }
            for id in sweep.failedCases { print("repro: bnspec oracle --case \(Shell.quoted(id))\(reproGolden)") }
            print(sweep.summary)
            if let notice = GoldenRelease.notice(try ReportFormat.goldenSHA256(dir)) { StandardStream.write("bnspec: warning: \(notice)\n", to: 2) }
            if let path = json { try writeJSON(sweep, to: path) }
            if sweep.failureCount > 0 { throw ExitCode(1) }
        }
    }
}
