import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import Foundation

/// Loads the selected golden cases (manifest order).
func loadGolden(_ dir: URL, _ selection: CaseSelection) throws -> [GoldenStore.LoadedCase] {
    let manifest = try GoldenStore.manifest(dir)
    return try selection.selector.select(manifest.cases, source: dir.path).map { try GoldenStore.loadCase(dir, id: $0, manifest: manifest) }
}

/// Writes `data` to `path` atomically (temporary file, then rename; ``FileWrite``).
func writeAtomically(_ data: Data, to path: String) throws { try FileWrite.replace(data, at: path) }

/// `bnspec audit`: judge a third-party BN, through an adapter or recorded results.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit a third-party batch normalization against the spec (spec/AUDIT.md).")

    @Option(help: "Adapter command, started once; speaks the JSON-lines protocol on stdin/stdout.") var adapter: String?
    @Option(help: "Kernel library implementing the C ABI (bnspec/bnspec_kernel.h, spec/AUDIT.md §7); it runs in a child process.")
    var library: String?
    @Option(help: "Prefix of the library's bnspec_kernel_… symbols (with --library).") var symbolPrefix = ""
    @Option(help: "Folder of recorded outputs: <case id>/<output>.npy (see bnspec export).") var results: String?
    @Option(help: "Convention profile to judge against (paper, pytorch, keras, tf-fused, onnx, flax, mlx).") var profile: String?
    @Option(help: "Golden folder (default: golden/ of this checkout).") var golden: String?
    @OptionGroup var selection: CaseSelection
    @Option(help: "Seconds an adapter may take for one case.") var caseTimeout: Double = 60
    @Option(help: "Seconds an adapter may take to start.") var startTimeout: Double = 180
    @Option(help: "Seconds for the whole audit.") var timeout: Double = 3600
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Option(help: "Write JUnit XML to this file.") var junit: String?
    @Option(help: "Write a self-contained HTML page with plots to this file.") var html: String?
    @Option(help: "Name of the implementation for --results (default: the folder name).") var name: String?
    @Option(help: "A previous --json report: exit 0 when every case has the same verdict as there (known failures allowed), 1 otherwise.")
    var baseline: String?

    func run() throws {
        try BNSpec.run {
            let dir = try Paths.resolve(golden, default: "golden")
            if selection.list { return selection.print(try selection.ids(in: dir)) }
            guard [adapter, library, results].compactMap({ $0 }).count == 1 else {
                throw BNError.invalidArgument("give exactly one of --adapter CMD, --library PATH or --results DIR")
            }
            guard let profile else { throw BNError.invalidArgument("--profile P is required (paper, pytorch, keras, tf-fused, onnx, flax, mlx)") }
            guard caseTimeout > 0, startTimeout > 0, timeout > 0 else { throw BNError.invalidArgument("timeouts must be positive") }
            let adapter = try library.map { try LibraryRoute.adapterCommand(library: $0, symbolPrefix: symbolPrefix, timeout: startTimeout) } ?? self.adapter
            let p = try ConventionProfile.named(profile)
            try Preflight.reports(json, junit, html)
            let before = try baseline.map(Preflight.baseline)
            let snapshot = try GoldenFolder(dir)  // the adapter reads inputs by path: a swapped golden/ must not go unnoticed
            let cases = try loadGolden(dir, selection)
            var base = library.map { "bnspec audit --library \($0)\(symbolPrefix.isEmpty ? "" : " --symbol-prefix \(symbolPrefix)") --profile \(p.name)" }
                ?? self.adapter.map { "bnspec audit --adapter '\($0)' --profile \(p.name)" } ?? "bnspec audit --results \(results!) --profile \(p.name)"
            if let g = golden { base += " --golden \(g)" }
            let audit = Audit(profile: p, cases: cases, goldenDir: dir, reproBase: base)
            let report: AuditReport
            if let cmd = adapter {
                Cleanup.installSignalHandlers()
                let scratch = try Cleanup.makeScratch("audit")
                defer { Cleanup.removeScratch(scratch) }
                let client = AdapterClient(command: cmd, caseTimeout: caseTimeout, startTimeout: startTimeout, totalTimeout: timeout)
                let tty = isatty(2) != 0
                report = try audit.run(adapter: client, scratch: scratch) { i, n, id in
                    if tty { FileHandle.standardError.write(Data("\r\u{1B}[Kaudit: \(i + 1)/\(n) \(id.prefix(70))".utf8)) }
                }
                if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                if snapshot.changed {
                    throw BNError.file(path: dir.path, reason: "golden changed during the run (another generation was swapped in while the adapter read its inputs; no verdict; rerun)")
                }
            } else {
                let r = URL(fileURLWithPath: results!)
                report = try audit.run(results: r, name: name ?? r.lastPathComponent)
            }
            print("BNSpec audit — \(report.implementation) \(report.version) against profile \(report.profile) (\(report.tolerance))\n")
            print(table(["family", "passed", "skipped", "worst ÷ tol", "likely cause"], report.table()))
            let failures = report.results.filter { $0.status == .failed }
            if !failures.isEmpty {
                print("\nFailures (\(failures.count)):")
                for r in failures.prefix(40) {
                    print("  \(r.caseID): \(r.likelyCause.map { "[\($0)] " } ?? "")\(r.detail.prefix(160))")
                    print("    repro: \(r.repro)")
                }
                if failures.count > 40 { print("  … \(failures.count - 40) more in --json/--html") }
            }
            print("\naudit: \(report.passed) passed, \(report.failed) failed, \(report.skipped) skipped")
            if report.passed + report.failed == 0 {
                FileHandle.standardError.write(Data("bnspec: error: no case was checked (all \(report.skipped) skipped: \(report.results.first?.detail ?? "no cases"))\n".utf8))
            }
            if let path = json {
                let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                try writeAtomically(try enc.encode(report), to: path)
            }
            if let path = junit { try writeAtomically(Data(report.junit().utf8), to: path) }
            if let path = html { try writeAtomically(Data(report.html().utf8), to: path) }
            if let b = baseline, let before {
                let changed = report.results.filter { before[$0.caseID] != $0.status.rawValue }
                for r in changed { print("baseline: \(r.caseID) was \(before[r.caseID] ?? "absent"), now \(r.status.rawValue): \(r.detail.prefix(120))") }
                print("baseline: \(changed.isEmpty ? "every verdict as in" : "\(changed.count) verdicts differ from") \(b)")
                if !changed.isEmpty { throw ExitCode(1) }
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
    @Option(help: "Golden folder (default: golden/ of this checkout).") var golden: String?
    @OptionGroup var selection: CaseSelection
    @Flag(help: "Replace an existing export folder (not one holding results).") var force = false

    func run() throws {
        try BNSpec.run {
            let dir = try Paths.resolve(golden, default: "golden")
            if selection.list { return selection.print(try selection.ids(in: dir)) }
            guard let out else { throw BNError.invalidArgument("--out DIR is required") }
            let p = try ConventionProfile.named(profile)
            let outURL = URL(fileURLWithPath: out).standardizedFileURL
            try GoldenStore.prepareTarget(outURL, force: force, marker: BNAudit.Export.marker)  // before the work
            let cases = try loadGolden(dir, selection)
            try BNAudit.Export.write(cases, profile: p, to: outURL, force: force)
            print("export: \(cases.count) cases for profile \(p.name) in \(outURL.path); write outputs to <out>/results/<case>/<output>.npy,")
            print("then: bnspec audit --results \(outURL.path)/results --profile \(p.name)")
        }
    }
}
