import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import Foundation

/// `bnspec generate`: writes (or checks) golden vectors from the case catalog.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate golden vectors from spec/catalog.txt (byte-identical on rerun).")

    @Option(help: "Output folder (default: golden/ of the checkout for the default suite).")
    var out: String?
    @Option(help: "Catalog suite to generate.")
    var suite = Catalog.defaultSuite
    @Option(help: "Catalog file (default: spec/catalog.txt of the checkout).")
    var catalog: String?
    @Flag(help: "Overwrite an existing output folder.")
    var force = false
    @Flag(help: "Regenerate in memory and compare with the folder; exit 1 naming each differing file.")
    var check = false
    @OptionGroup var selection: CaseSelection

    func validate() throws {
        if out == nil && suite != Catalog.defaultSuite && !selection.list {
            throw BNSpec.usageError("suite '\(suite)' is not committed to golden/; pass --out DIR")
        }
    }

    func run() throws {
        try BNSpec.run {
            let cat = try Catalog.load(try Paths.resolve(catalog, default: "spec/catalog.txt"))
            guard let all = cat.cases[suite] else {
                throw BNError.invalidArgument("no suite '\(suite)' in the catalog (have: \(cat.cases.keys.sorted().joined(separator: ", ")))")
            }
            let selector = try selection.selector()
            let chosen = Set(try selector.select(all.map(\.id), source: "suite '\(suite)'"))
            let cases = all.filter { chosen.contains($0.id) }
            if selection.list { return selection.print(cases.map(\.id)) }
            guard check || selector.selectsEverything else {
                throw BNSpec.usageError("--case/--match/--exclude/--shard select the cases of --check or --list; generate writes whole suites")
            }
            let dir = try Paths.resolve(out, default: "golden")
            if !check { try GoldenStore.prepareTarget(dir, force: force) }  // before the work: refusals cost nothing
            if check {
                // A selection (a shard too) compares its cases' folders; the whole suite also its manifest and README.
                let files = selector.selectsEverything
                    ? try Generator.suiteFiles(cases, suite: suite)
                    : try Generator.selectedFiles(cases)
                var diffs = GoldenStore.differences(files, in: dir, under: selector.selectsEverything ? nil : cases.map(\.id))
                if !selector.selectsEverything, FileManager.default.fileExists(atPath: dir.appendingPathComponent(Manifest.fileName).path) {
                    // The manifest too, for the selected cases' entries (an outside red team's: a truncated
                    // or edited manifest passed a selection's --check; a folder of case folders alone
                    // compares those): it must read as a manifest
                    // (one line if not), list the cases, and give each regenerated file's SHA-256.
                    let manifest = try GoldenStore.manifest(dir)
                    let listed = Set(manifest.cases)
                    for id in cases.map(\.id) where !listed.contains(id) { diffs.append("manifest: case \(id) is not listed") }
                    for path in files.keys.sorted() where manifest.files[path] != SHA256.hex(files[path]!) {
                        diffs.append("manifest: \(path) " + (manifest.files[path] == nil ? "is not listed" : "has another SHA-256"))
                    }
                    let prefixes = Set(cases.map { "\($0.id)/" })
                    for path in manifest.files.keys.sorted() where files[path] == nil
                        && path.firstIndex(of: "/").map({ prefixes.contains(String(path[...$0])) }) == true {
                        diffs.append("manifest: \(path) is listed but not generated")
                    }
                }
                if diffs.isEmpty {
                    print("generate --check: \(cases.count) cases, \(files.count) files in \(dir.path) are identical"
                          + (selector.shard.map { " (shard \($0))" } ?? ""))
                    return
                }
                for d in diffs { print(d) }
                // Differences are the verdict of --check: exit 1 (the folder is not what the catalog generates).
                let e = BNError.corrupt(path: dir.path, reason: "\(diffs.count) files differ from a fresh generation")
                writeStderr("bnspec: error: \(e.description)\n")
                throw ExitCode(1)
            }
            let files = try Generator.suiteFiles(cases, suite: suite)
            let bytes = files.values.reduce(0) { $0 + $1.count }
            let recovered = try removedOnSignal { write, temporary in
                try GoldenStore.write(files, to: dir, force: force, write: write, temporary: temporary)
            }
            for line in recovered { writeStderr("bnspec: \(line)\n") }
            print("generated \(cases.count) cases (\(files.count) files, \(bytes / 1024) KiB) in \(dir.path)")
        }
    }
}
