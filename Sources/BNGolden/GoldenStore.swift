import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing a golden folder safely.
///
/// - ``write(_:to:force:marker:write:)`` never overwrites an existing folder without `force`, and
///   writes atomically: everything goes into a sibling temporary folder that is
///   swapped into place only when complete, so an interrupted run leaves the old
///   golden folder intact (GoldenStore+Write.swift).
/// - ``manifest(_:)`` opens the folder once (``GoldenFolder``); ``loadCase(_:id:manifest:)`` reads
///   through it and checks every file against the manifest's SHA-256 before use.
public enum GoldenStore {
    /// The bytes of the files of case `id` in the golden folder `dir` (0 where they cannot be
    /// listed: loading the case reports why). Large cases first balances threads over cases.
    public static func caseBytes(_ dir: URL, id: String) -> Int {
        let folder = dir.appendingPathComponent(id)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.reduce(0) { total, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.size]) as? Int
            return total + (size ?? 0)
        }
    }

    /// Relative paths of every regular file under `dir`, sorted (none when it cannot be opened).
    public static func listFiles(_ dir: URL) -> [String] {
        (try? GoldenFolder(dir).listFiles()) ?? []
    }

    /// Differences between freshly generated files and a folder: one line per file. `under`:
    /// compare only the files in these case folders (a selection), else the whole folder. The
    /// folder is opened once, so a generation swapped in meanwhile does not mix into the comparison.
    public static func differences(_ files: [String: Data], in dir: URL, under caseIDs: [String]? = nil) -> [String] {
        guard let folder = try? GoldenFolder(dir) else { return files.keys.sorted().map { "missing: \($0)" } }
        var diffs: [String] = []
        var onDisk = Set((try? folder.listFiles()) ?? [])
        if let ids = caseIDs {
            let prefixes = Set(ids.map { "\($0)/" })
            onDisk = onDisk.filter { p in p.firstIndex(of: "/").map { prefixes.contains(String(p[...$0])) } ?? false }
        }
        for path in files.keys.sorted() {
            guard onDisk.contains(path) else { diffs.append("missing: \(path)"); continue }
            do {
                if try folder.data(path, limit: FileRead.npyLimit) != files[path] { diffs.append("differs: \(path)") }
            } catch { diffs.append("differs: \(path) (\(error))") }
        }
        for path in onDisk.subtracting(files.keys).sorted() { diffs.append("extra: \(path)") }
        return diffs
    }

    /// A loaded golden case: its spec, inputs and expected outputs.
    public struct LoadedCase: Sendable {
        public var spec: CaseSpec
        public var inputs: [String: NPYArray]
        public var expected: [String: NPYArray]
        public init(spec: CaseSpec, inputs: [String: NPYArray], expected: [String: NPYArray]) {
            self.spec = spec; self.inputs = inputs; self.expected = expected
        }
    }

    /// The manifest of the golden folder `dir`, which is opened once and kept open in the returned
    /// manifest (``Manifest/folder``): cases loaded with it are read from that same folder.
    public static func manifest(_ dir: URL) throws -> Manifest {
        let folder = try GoldenFolder(dir)
        let url = dir.appendingPathComponent(Manifest.fileName)
        guard folder.exists(Manifest.fileName) else {
            throw BNError.file(path: url.path, reason: "no manifest (is this a golden folder? run 'bnspec generate')")
        }
        var m = try decodeManifest(try folder.data(Manifest.fileName, limit: FileRead.textLimit), path: url.path)
        // A case folder the manifest does not list: a case dropped from `cases` (an outside red
        // team's edit shrank the suite in silence: "verify: OK — 443 cases").
        let listed = Set(m.cases)
        for entry in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !entry.hasPrefix(".") && !listed.contains(entry) {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(entry).path, isDirectory: &isDir), isDir.boolValue {
                throw BNError.corrupt(path: url.path, reason: "the folder holds case folder '\(entry.prefix(80))', which the manifest does not list (an edited manifest?)")
            }
        }
        m.folder = folder
        return m
    }

    /// Decodes and checks manifest bytes (`path` names them in errors). Every path stays inside
    /// the folder: a case id is one plain name, a file a relative path without `.` or `..`
    /// components (no reading /etc/passwd through a crafted manifest). Total: any bytes give a
    /// manifest or a one-line ``BNError`` (fuzzed by tools/fuzz).
    public static func decodeManifest(_ data: Data, path: String) throws -> Manifest {
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw BNError.corrupt(path: path, reason: "manifest is not valid: \(DecodingErrorText.brief(error))")
        }
        if let key = JSONKeys.firstDuplicate(in: data) {
            throw BNError.corrupt(path: path, reason: "key '\(key.prefix(80))' appears twice in one object (a file listed twice?)")
        }
        guard m.format == Manifest.formatVersion else {
            throw BNError.corrupt(path: path, reason: "manifest format \(m.format); this bnspec reads format \(Manifest.formatVersion)")
        }
        var seen = Set<String>()
        for id in m.cases where !seen.insert(id).inserted {
            throw BNError.corrupt(path: path, reason: "case '\(id.prefix(80))' is listed twice")
        }
        for id in m.cases where !isPlainName(id) {
            throw BNError.corrupt(path: path, reason: "case id '\(id.prefix(80))' is not a plain folder name (at most \(maxNameBytes) bytes, no '/')")
        }
        for file in m.files.keys where file.hasPrefix("/") || !file.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({ isPlainName(String($0)) }) {
            throw BNError.corrupt(path: path, reason: "file path '\(file.prefix(80))' leaves the golden folder or is not relative")
        }
        // Cases and files agree: a file of a case not listed is an edited manifest.
        let listed = Set(m.cases)
        for file in m.files.keys.sorted() {
            let parts = file.split(separator: "/", maxSplits: 1)
            if parts.count == 2, !listed.contains(String(parts[0])) {
                throw BNError.corrupt(path: path, reason: "file '\(file.prefix(120))' belongs to no listed case (an edited manifest?)")
            }
        }
        return m
    }

    /// Decodes and validates case.json bytes (``CaseSpec/validate()``); total like ``decodeManifest(_:path:)``.
    public static func decodeCase(_ data: Data, path: String) throws -> CaseSpec {
        let spec: CaseSpec
        do { spec = try JSONDecoder().decode(CaseSpec.self, from: data) } catch {
            throw BNError.corrupt(path: path, reason: "case JSON is not valid: \(DecodingErrorText.brief(error))")
        }
        if let key = JSONKeys.firstDuplicate(in: data) {
            throw BNError.corrupt(path: path, reason: "case JSON is not valid: key '\(key.prefix(80))' appears twice in one object")
        }
        do { try spec.validate() } catch let e as BNError {
            throw BNError.corrupt(path: path, reason: "case JSON is not valid: \(e.reason)")
        }
        for file in Array(spec.inputs.values) + Array(spec.outputs.values) where !isPlainName(file) {
            throw BNError.corrupt(path: path, reason: "file name '\(file.prefix(80))' is not a plain name in the case folder")
        }
        return spec
    }

    /// Longest file or folder name (bytes of UTF-8): NAME_MAX of Linux file systems.
    public static let maxNameBytes = 255

    static func isPlainName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("/") && !s.contains("\0") && s.utf8.count <= maxNameBytes
    }

    /// A case id must be usable as a folder name: at most ``maxNameBytes`` bytes, no `/`.
    public static func checkCaseID(_ id: String) throws {
        guard isPlainName(id) else {
            throw BNError.invalidArgument("case id \(id.prefix(60))… is \(id.utf8.count) bytes; a folder name holds at most \(maxNameBytes) (shorten the shape or the data parameter)")
        }
    }

    /// Reads one file through the manifest's open folder, verifying its SHA-256 against the manifest.
    static func verifiedData(_ folder: GoldenFolder, _ path: String, _ manifest: Manifest) throws -> Data {
        let url = folder.url.appendingPathComponent(path)
        guard let want = manifest.files[path] else {
            throw BNError.corrupt(path: url.path, reason: "file is not listed in the manifest")
        }
        guard folder.exists(path) else {
            if folder.changed { throw folder.changedError }
            throw BNError.file(path: url.path, reason: "listed in the manifest but missing")
        }
        let data = try folder.data(path, limit: FileRead.npyLimit)
        let got = SHA256.hex(data)
        guard got == want else {
            if folder.changed { throw folder.changedError }
            throw BNError.corrupt(path: url.path, reason: "SHA-256 \(got.prefix(12))… does not match the manifest's \(want.prefix(12))… (corrupted or tampered)")
        }
        return data
    }

    /// Checks the files the manifest lists against its SHA-256s, not only those a run reads
    /// (``loadCase(_:id:manifest:)``: case.json, inputs, expected outputs): every file of the
    /// `selected` cases must be present and match (request.json and the tolerance arrays are what
    /// other tools read), and every other listed file that is present must match (a folder
    /// holding a subset of the cases stays usable; a changed byte anywhere does not pass).
    /// Throws the first mismatch (one line).
    public static func checkFiles(_ manifest: Manifest, _ dir: URL, selected: [String]) throws {
        let folder = try manifest.folder ?? GoldenFolder(dir)
        let chosen = Set(selected)
        for path in manifest.files.keys.sorted() {
            let inCase = path.split(separator: "/").first.map { chosen.contains(String($0)) && path.contains("/") } ?? false
            if inCase || folder.exists(path) { _ = try verifiedData(folder, path, manifest) }
        }
    }

    /// Loads one case through the folder `manifest` was read from (``manifest(_:)``; `dir` is opened
    /// anew only for a manifest that was not read from a folder), every file checked against the
    /// manifest's SHA-256, and every array against the operation's table and case.json
    /// (``LoadedCase/validateArrays(dtypes:path:)``): a case that loads is safe to compute on.
    public static func loadCase(_ dir: URL, id: String, manifest: Manifest) throws -> LoadedCase {
        let folder = try manifest.folder ?? GoldenFolder(dir)
        let specPath = "\(id)/case.json"
        let spec = try decodeCase(try verifiedData(folder, specPath, manifest), path: folder.url.appendingPathComponent(specPath).path)
        guard spec.id == id else { throw BNError.corrupt(path: specPath, reason: "case id '\(spec.id)' does not match its folder") }
        let casePath = folder.url.appendingPathComponent(id).path
        try spec.validateArrayLists(path: folder.url.appendingPathComponent(specPath).path)
        func load(_ m: [String: String], _ table: [ArraySpec]) throws -> [String: NPYArray] {
            var out: [String: NPYArray] = [:]
            for (name, file) in m {
                let path = "\(id)/\(file)"
                let bf16 = table.first { $0.name == name }?.goldenDType(in: spec) == .bf16
                out[name] = try NPYArray.decode(try verifiedData(folder, path, manifest), name: folder.url.appendingPathComponent(path).path,
                                                bfloat16: bf16)
            }
            return out
        }
        let loaded = LoadedCase(spec: spec, inputs: try load(spec.inputs, spec.op.inputs), expected: try load(spec.outputs, spec.op.outputs))
        try loaded.validateArrays(dtypes: true, path: casePath)
        // After the arrays (a contradiction they show is named more precisely there).
        guard let derived = spec.parametersID, derived == id else {
            throw BNError.corrupt(path: specPath, reason: "its parameters (op, data, shape, layout, dtype, profile, eps, momentum…) give the id '\(spec.parametersID ?? "none")', not its own")
        }
        return loaded
    }
}
