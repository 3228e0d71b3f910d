import BNAudit
import BNCore
import BNGolden
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every file in Tests/Fixtures/bad-inputs ends in the one-line error that
/// expected.tsv names (issue #7): no trap, no multi-line dump, the file named.
@Suite struct BadInputTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/bad-inputs").standardizedFileURL
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../golden").standardizedFileURL

    static let rows: [(String, String, String)] = {
        let text = (try? String(contentsOf: dir.appendingPathComponent("expected.tsv"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: "\t", maxSplits: 2).map(String.init)
            return (f[0], f[1], f.count > 2 ? f[2] : "")
        }
    }()

    /// A one-case golden folder whose case.json is `file` (manifest hashes made to match): the
    /// golden case its `id` names, or a train case when it names none.
    func goldenWith(caseJSON: Data) throws -> (URL, String) {
        let named = (try? JSONSerialization.jsonObject(with: caseJSON) as? [String: Any])?["id"] as? String
        let id = named.flatMap { FileManager.default.fileExists(atPath: Self.golden.appendingPathComponent($0).path) ? $0 : nil }
            ?? "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-bad-\(UUID().uuidString)")
        var files: [String: Data] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: Self.golden.appendingPathComponent(id).path) {
            files["\(id)/\(f)"] = try Data(contentsOf: Self.golden.appendingPathComponent("\(id)/\(f)"))
        }
        files["\(id)/case.json"] = caseJSON
        var manifest = try GoldenStore.manifest(Self.golden)
        manifest.cases = [id]
        manifest.files = files.mapValues { SHA256.hex($0) }
        files[Manifest.fileName] = try JSONEncoder().encode(manifest)
        try GoldenStore.write(files, to: tmp, force: false)
        return (tmp, id)
    }

    func error(_ file: String, _ parser: String) -> String? {
        let url = Self.dir.appendingPathComponent(file)
        do {
            let data = try Data(contentsOf: url)
            switch parser {
            case "npy": _ = try NPYArray.decode(data, name: url.path)
            case "catalog": _ = try Catalog.parse(String(decoding: data, as: UTF8.self), source: file)
            case "generate":
                let cat = try Catalog.parse(String(decoding: data, as: UTF8.self), source: file)
                for c in cat.cases.values.joined() { _ = try Generator.caseFiles(c) }
            case "case-json":
                let (g, id) = try goldenWith(caseJSON: data)
                defer { try? FileManager.default.removeItem(at: g) }
                _ = try GoldenStore.loadCase(g, id: id, manifest: try GoldenStore.manifest(g))
            case "manifest":
                let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-bad-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: tmp) }
                try data.write(to: tmp.appendingPathComponent(Manifest.fileName))
                _ = try GoldenStore.manifest(tmp)
            default: return "unknown parser \(parser)"
            }
            return nil
        } catch let e as BNError { return e.description } catch { return "not a BNError: \(error)" }
    }

    /// Every kind of error renders as `<what> (<why>)`, whatever its message holds: a reason
    /// already in parentheses is kept (nested ones too), any other message becomes the reason.
    @Test func everyErrorIsWhatThenWhyInParentheses() {
        let rows: [(BNError, String)] = [
            (.invalidArgument("shape '1x' is not N,C[,spatial…]"), "invalid argument (shape '1x' is not N,C[,spatial…])"),
            (.invalidArgument("unknown profile 'x' (known: a, b)"), "unknown profile 'x' (known: a, b)"),
            (.invalidArgument("cannot start 'p (q)' (exit (3))"), "cannot start 'p (q)' (exit (3))"),
            (.invalidArgument("(only a reason)"), "invalid argument ((only a reason))"),
            (.file(path: "/g", reason: "no such folder"), "/g (no such folder)"),
            (.file(path: "/o", reason: "cannot write (is a folder)"), "/o: cannot write (is a folder)"),
            (.corrupt(path: "c.txt:2", reason: BNError.invalidArgument("eps '-1' must be ≥ 0").reason), "c.txt:2 is corrupt (eps '-1' must be ≥ 0)"),
            (.emptyChannel(channel: 3), "channel 3 has no elements (n = 0: batch statistics are undefined)"),
            (.singleValuePerChannel(profile: "pytorch"), "profile 'pytorch' refuses training with one value per channel (n = 1)"),
        ]
        for (e, line) in rows {
            #expect(e.description == line)
            #expect(BNError.isErrorLine("bnspec: error: \(e)"), "\(e)")
        }
        for bad in ["bnspec: error: /g: no such folder", "bnspec: error: (why)", "bnspec: error: a (b)\nc (d)", "error: a (b)"] {
            #expect(!BNError.isErrorLine(bad), "\(bad)")
        }
    }

    @Test func fixturesArePresent() { #expect(Self.rows.count >= 19) }

    @Test(arguments: rows.map(\.0))
    func badInputGivesItsOneLineError(file: String) {
        let (_, parser, want) = Self.rows.first { $0.0 == file }!
        guard let msg = error(file, parser) else { Issue.record("\(file): accepted"); return }
        #expect(msg.contains(want), "\(file): \(msg)")
        #expect(!msg.contains("\n"), "\(file): multi-line error")
        #expect(BNError.isErrorLine("bnspec: error: " + msg), "\(file): not `<what> (<why>)`: \(msg)")
        #expect(!msg.hasPrefix("not a BNError"), "\(file): \(msg)")
    }

    /// Files that are not regular files are refused before reading: a FIFO or /dev/zero given
    /// as an NPY output (by an adapter, a results folder or a golden folder) would hang or
    /// exhaust memory.
    @Test func nonRegularFilesAreRefusedBeforeReading() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("y.npy")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let link = dir.appendingPathComponent("zero.npy")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/dev/zero")
        for (url, want) in [(fifo, "is not a regular file"), (link, "is not a regular file"), (dir, "is not a regular file"),
                            (dir.appendingPathComponent("absent.npy"), "no such file")] {
            do { _ = try NPYArray.read(url); Issue.record("\(url.path): read") } catch let e as BNError {
                #expect(e.description.contains(want) && e.description.contains(url.path), "\(e.description)")
            }
        }
    }
}
