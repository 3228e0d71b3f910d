import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import Foundation

/// Loads the given golden cases (manifest order).
func loadGolden(_ dir: URL, _ ids: [String]) throws -> [GoldenStore.LoadedCase] {
    let manifest = try GoldenStore.manifest(dir)
    try GoldenStore.checkFiles(manifest, dir, selected: ids)  // the folder, before any case runs
    return try ids.map { try GoldenStore.loadCase(dir, id: $0, manifest: manifest) }
}

/// Writes `data` to `path` atomically (temporary file, then rename; ``FileWrite``).
func writeAtomically(_ data: Data, to path: String) throws { try FileWrite.writeReport(data, to: path) }

/// Writes a report as JSON (``BNAudit/ReportFormat/encoder()``) to `path`.
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    try writeAtomically(try ReportFormat.encoder().encode(value) + Data("\n".utf8), to: path)
}

/// `bnspec audit`: judge a third-party BN, through an adapter or recorded results.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit a third-party batch normalization against the spec (spec/AUDIT.md).",
        discussion: "Exit status: 0 every judged case passed, 1 a case failed (or differs from --baseline), 2 the audit could not run as asked, 64 usage.")

    @Option(help: "Adapter command, started once; speaks the JSON-lines protocol on stdin/stdout.") var adapter: String?
    @Option(help: "Kernel library implementing the C ABI (bnspec/bnspec_kernel.h, spec/AUDIT.md §7); it runs in a child process.")
    var library: String?
    @Option(help: "Prefix of the library's bnspec_kernel_… symbols (with --library).") var symbolPrefix = ""
    @Option(help: "Folder of recorded outputs: <case id>/<output>.npy (see bnspec export).") var results: String?
    @Option(help: "Convention profile to judge against (paper, pytorch, keras, tf-fused, onnx, flax, mlx).") var profile: String?
    @Option(help: "Golden folder (default: $BNSPEC_GOLDEN, $BNSPEC_HOME/golden, the checkout's, or <prefix>/share/bnspec/golden).")
    var golden: String?
    @OptionGroup var selection: CaseSelection
    @Option(help: "Seconds an adapter may take for one case (inf: no limit).") var caseTimeout: Double = 60
    @Option(help: "Seconds an adapter may take to start (inf: no limit).") var startTimeout: Double = 180
    @Option(help: "Seconds for the whole audit (inf: no limit).") var timeout: Double = 3600
    @Option(help: "Stop after N failed cases; the rest are reported as not run.") var maxfail: Int?
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Option(help: "Write JUnit XML to this file.") var junit: String?
    @Option(help: "Write a self-contained HTML page with plots to this file.") var html: String?
    @Option(help: "Name of the implementation for --results (default: the folder name).") var name: String?
    @Option(help: "A previous --json report: exit 0 when every case has the same verdict as there (known failures allowed), 1 otherwise.")
    var baseline: String?
    @Option(help: "With --baseline: also exit 1 when a case's worst error ÷ tolerance grew more than this factor (≥ 1).")
    var maxGrowth: Double?

    func validate() throws {
        if let m = maxfail, m < 1 { throw BNSpec.usageError("--maxfail takes a positive number of failures") }
        if let g = maxGrowth, !(g >= 1 && g.isFinite) { throw BNSpec.usageError("--max-growth takes a factor ≥ 1") }
        if maxGrowth != nil && baseline == nil { throw BNSpec.usageError("--max-growth compares with a --baseline report; give one") }
        if !(caseTimeout > 0 && startTimeout > 0 && timeout > 0) { throw BNSpec.usageError("timeouts must be positive") }
        try Paths.checkDistinct(outputs: [("--json", json), ("--junit", junit), ("--html", html)])
        if !selection.list {
            guard [adapter, library, results].compactMap({ $0 }).count == 1 else {
                throw BNSpec.usageError("give exactly one of --adapter CMD, --library PATH or --results DIR")
            }
            guard profile != nil else { throw BNSpec.usageError("--profile P is required (paper, pytorch, keras, tf-fused, onnx, flax, mlx)") }
            if !symbolPrefix.isEmpty && library == nil { throw BNSpec.usageError("--symbol-prefix applies to --library only") }
            try LibraryRoute.checkSymbolPrefix(symbolPrefix)
            if name != nil && results == nil { throw BNSpec.usageError("--name applies to --results only (an adapter or library names itself)") }
            if let r = results {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: r, isDirectory: &isDir), !isDir.boolValue {
                    throw BNSpec.usageError("--results \(r) is a file; it takes the folder of recorded outputs (<case id>/<output>.npy, bnspec export)")
                }
            }
        }
    }

    func run() throws {
        try BNSpec.run {
            let dir = try Paths.resolve(golden, default: "golden")
            let selector = try selection.selector(bazel: true)
            let ids = try selector.select(try GoldenStore.manifest(dir).cases, source: dir.path)
            if selection.list { return selection.print(ids) }
            let p = try ConventionProfile.named(profile!)
            let baseline = try self.baseline.map { try Baseline(path: $0) }
            try baseline?.check(profile: p.name)
            let goldenSHA = try ReportFormat.goldenSHA256(dir)
            try Paths.refuseInside([("--json", json), ("--junit", junit), ("--html", html)],
                                   folders: [("golden", dir)] + (results.map { [("results", URL(fileURLWithPath: $0))] } ?? []))
            // Before the library's load check: a signal during it ends the check's process group
            // too (it outlived bnspec by up to 0.1 s: an outside red team's).
            if library != nil { Cleanup.installSignalHandlers() }
            let adapter = try library.map { try LibraryRoute.adapterCommand(library: $0, symbolPrefix: symbolPrefix, timeout: startTimeout) } ?? self.adapter
            try Preflight.reports(json, junit, html)
            let snapshot = try GoldenFolder(dir)  // the adapter reads inputs by path: a swapped golden/ must not go unnoticed
            let cases = try loadGolden(dir, ids)
            let q = Shell.quoted
            // Paths absolute and the limits that shaped a verdict carried, so that the line reruns
            // exactly that case from any directory (an outside red team's: a --timeout failure
            // passed on rerun; relative paths failed elsewhere). The adapter command runs as given.
            let abs = Paths.absolute
            var base = library.map { "bnspec audit --library \(q(abs($0)))\(symbolPrefix.isEmpty ? "" : " --symbol-prefix \(q(symbolPrefix))") --profile \(p.name)" }
                ?? self.adapter.map { "bnspec audit --adapter \(q($0)) --profile \(p.name)" } ?? "bnspec audit --results \(q(abs(results!))) --profile \(p.name)"
            base += Paths.reproGolden(golden)
            // A case that hung reruns under the same limit, not the default minute.
            if results == nil {
                for (flag, value, standard) in [("--case-timeout", caseTimeout, 60.0), ("--start-timeout", startTimeout, 180), ("--timeout", timeout, 3600)]
                where value != standard { base += " \(flag) \(String(format: "%g", value))" }
            }
            var audit = Audit(profile: p, cases: cases, goldenDir: dir, reproBase: base)
            audit.maxFailures = maxfail
            var report: AuditReport
            let progress = Progress("audit")
            let update = { (a: AuditProgress) in progress.update(done: a.done, total: a.total, failed: a.failed, current: a.current) }
            if cases.isEmpty {
                report = AuditReport(implementation: name ?? results.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "-", version: "-",
                                     profile: p.name, results: [])
            } else if let cmd = adapter {
                Cleanup.installSignalHandlers()
                Cleanup.adoptOrphans()
                let scratch = try Cleanup.makeScratch("audit")
                defer { Cleanup.removeScratch(scratch) }
                let client = AdapterClient(command: cmd, caseTimeout: caseTimeout, startTimeout: startTimeout, totalTimeout: timeout)
                report = try audit.run(adapter: client, scratch: scratch, progress: update)
                if snapshot.changed {
                    throw BNError.file(path: dir.path, reason: "golden changed during the run (another generation was swapped in while the adapter read its inputs; no verdict; rerun)")
                }
            } else {
                let r = URL(fileURLWithPath: results!)
                report = try audit.run(results: r, name: name ?? r.lastPathComponent, progress: update)
            }
            report.goldenSHA256 = goldenSHA
            report.shard = selector.shard?.description
            if selector.shard != nil { report.selection = selector.canonical; report.selected = cases.count }
            print(report.terminalText())
            // Beside the verdict it qualifies: a folder re-hashed after an edit, or pruned, passes every per-file check.
            if let notice = GoldenRelease.notice(goldenSHA) { StandardStream.write("bnspec: warning: \(notice)\n", to: 2) }
            // Recorded outputs: a selected case without its folder is skipped, not judged. Said
            // beside the verdict, so a harness that stopped part-way is not read as a pass.
            let missing = results == nil ? 0 : report.results.filter { $0.status == .skipped && $0.detail == Audit.noResultsNote }.count
            if missing > 0 && report.passed + report.failed > 0 {
                StandardStream.write("bnspec: warning: \(missing) of \(report.results.count) selected cases have no folder in \(results!): skipped, not judged (select the cases you ran with --match or --case)\n", to: 2)
            }
            // A shard's JSON keeps what the audit-wide fits read from each case, for bnspec merge.
            if let path = json { try writeJSON(report.shard == nil ? report.withoutFitInputs() : report, to: path) }
            if let path = junit { try writeAtomically(Data(report.junit().utf8), to: path) }
            if let path = html { try writeAtomically(Data(report.html().utf8), to: path) }
            if cases.isEmpty {
                print("audit: shard \(selector.shard?.description ?? "") holds no case of this selection; nothing to run")
                return
            }
            if report.passed + report.failed == 0 {
                throw BNError.invalidArgument("no case was checked (all \(report.skipped) skipped: \(report.results.first?.detail ?? "no cases"))")
            }
            if let b = baseline {
                let diffs = b.differences(report, maxGrowth: maxGrowth)
                for d in diffs { print("baseline: \(d)") }
                let changed = diffs.filter(\.verdictChanged).count, grown = diffs.count - changed
                print("baseline: " + (diffs.isEmpty ? "every verdict as in \(b.path)" + (maxGrowth.map { ", no error grew more than \($0)×" } ?? "")
                    : [changed > 0 ? "\(changed) verdicts differ" : nil, grown > 0 ? "\(grown) errors grew more than \(maxGrowth!)×" : nil]
                        .compactMap { $0 }.joined(separator: ", ") + " from \(b.path)"))
                if !diffs.isEmpty { throw ExitCode(1) }
                return
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}

/// `bnspec export`: every case's inputs and a request JSON, for file-based audits.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every golden case's inputs and request.json for a file-based audit (spec/AUDIT.md §2).")
    @Option(help: "Output folder (must not exist, unless --force).") var out: String?
    @Option(help: "Convention profile the requests are written for.") var profile = "pytorch"
    @Option(help: "Golden folder (default: $BNSPEC_GOLDEN, $BNSPEC_HOME/golden, the checkout's, or <prefix>/share/bnspec/golden).")
    var golden: String?
    @OptionGroup var selection: CaseSelection
    @Flag(help: "Replace an existing export folder (not one holding results).") var force = false

    func validate() throws {
        if !selection.list && out == nil { throw BNSpec.usageError("--out DIR is required") }
        if out?.isEmpty == true { throw BNSpec.usageError("--out is empty (give a folder name)") }
    }

    func run() throws {
        try BNSpec.run {
            let dir = try Paths.resolve(golden, default: "golden")
            let ids = try selection.ids(in: dir)
            if selection.list { return selection.print(ids) }
            guard let out else { return }
            let p = try ConventionProfile.named(profile)
            let outURL = URL(fileURLWithPath: out).standardizedFileURL
            try Paths.refuseInside([("--out", out)], folders: [("golden", dir)])
            try GoldenStore.prepareTarget(outURL, force: force, marker: BNAudit.Export.marker)  // before the work
            let cases = try loadGolden(dir, ids)
            try removedOnSignal { write, temporary in
                try BNAudit.Export.write(cases, profile: p, to: outURL, force: force, write: write, temporary: temporary)
            }
            print("export: \(cases.count) cases for profile \(p.name) in \(outURL.path); write outputs to <out>/results/<case>/<output>.npy,")
            print("then: bnspec audit --results \(outURL.path)/results --profile \(p.name)")
        }
    }
}
