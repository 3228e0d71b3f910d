import BNCore
import CBNFiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing a golden folder safely.
///
/// - ``write(_:to:force:)`` never overwrites an existing folder without `force`, and
///   writes atomically: everything goes into a sibling temporary folder that is
///   swapped into place only when complete, so an interrupted run leaves the old
///   golden folder intact.
/// - ``load(_:)`` checks every file against the manifest's SHA-256 before use.
public enum GoldenStore {
    /// Writes `files` (relative path → bytes) as the folder `dir`, atomically.
    ///
    /// - Refuses an existing non-empty folder unless `force`; even with `force`, refuses a
    ///   folder without `marker` (not one bnspec wrote) and a path that is a file.
    /// - Writes into the sibling `.NAME.tmp-PID`, then swaps it with `dir` in one
    ///   `renameat2(RENAME_EXCHANGE)` (Linux), so `dir` is at every instant either the
    ///   complete old folder or the complete new one. Where the exchange is unavailable it
    ///   falls back to two renames through `.NAME.old-PID`; a run killed between them is
    ///   repaired by the next `write` (``recoverInterrupted(_:)``).
    /// - Files are not fsync'ed: the guarantee is against interruption (signals, crashes,
    ///   errors), not against power loss.
    /// `marker`: the file that identifies a folder this writer may replace (golden folders:
    /// `manifest.json`).
    /// Returns what ``recoverInterrupted(_:)`` repaired first, one line each.
    @discardableResult
    public static func write(_ files: [String: Data], to dir: URL, force: Bool, marker: String = Manifest.fileName) throws -> [String] {
        let fm = FileManager.default
        let recovered = recoverInterrupted(dir)
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: dir.path, isDirectory: &isDir)
        if exists {
            guard isDir.boolValue else { throw BNError.file(path: dir.path, reason: "exists and is not a folder") }
            let items = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
            if !items.isEmpty {
                guard force else { throw BNError.file(path: dir.path, reason: "already exists; pass --force to overwrite it") }
                guard items.contains(marker) else {
                    throw BNError.file(path: dir.path, reason: "was not written by bnspec (no \(marker)); not replaced, even with --force")
                }
            }
        }
        let (tmp, old) = siblings(of: dir, pid: ProcessInfo.processInfo.processIdentifier)
        do {
            try? fm.removeItem(at: tmp)
            try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
            for (path, data) in files {
                let url = tmp.appendingPathComponent(path)
                try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                guard fm.createFile(atPath: url.path, contents: data) else {
                    throw BNError.file(path: url.path, reason: "cannot write")
                }
            }
            if !exists {
                try fm.moveItem(at: tmp, to: dir)
            } else if bn_exchange_paths(tmp.path, dir.path) == 0 {
                try? fm.removeItem(at: tmp)  // now the old folder
            } else {
                try fm.moveItem(at: dir, to: old)
                try fm.moveItem(at: tmp, to: dir)
                try? fm.removeItem(at: old)
            }
            return recovered
        } catch let e as BNError {
            try? fm.removeItem(at: tmp); throw e
        } catch {
            try? fm.removeItem(at: tmp)
            throw BNError.file(path: dir.path, reason: "write failed: \(error.localizedDescription)")
        }
    }

    /// The temporary and the set-aside sibling names of `dir` for process `pid`.
    static func siblings(of dir: URL, pid: Int32) -> (tmp: URL, old: URL) {
        let parent = dir.deletingLastPathComponent(), name = dir.lastPathComponent
        return (parent.appendingPathComponent(".\(name).tmp-\(pid)"), parent.appendingPathComponent(".\(name).old-\(pid)"))
    }

    /// Repairs what a killed ``write(_:to:force:)`` left next to `dir`: a set-aside old
    /// folder is renamed back when `dir` is missing; other leftovers of dead processes are
    /// removed. Leftovers of live processes (a concurrent run) are not touched.
    /// Returns what was done, one line each.
    @discardableResult
    public static func recoverInterrupted(_ dir: URL) -> [String] {
        let fm = FileManager.default
        let parent = dir.deletingLastPathComponent(), name = dir.lastPathComponent
        guard let items = try? fm.contentsOfDirectory(atPath: parent.path) else { return [] }
        var done: [String] = []
        for item in items.sorted() {
            for kind in ["old", "tmp"] {
                let prefix = ".\(name).\(kind)-"
                guard item.hasPrefix(prefix), let pid = Int32(item.dropFirst(prefix.count)), !processIsAlive(pid) else { continue }
                let url = parent.appendingPathComponent(item)
                if kind == "old" && !fm.fileExists(atPath: dir.path), (try? fm.moveItem(at: url, to: dir)) != nil {
                    done.append("restored \(dir.path) from \(item) (a run was interrupted between two renames)")
                } else if (try? fm.removeItem(at: url)) != nil {
                    done.append("removed \(item) (left by an interrupted run)")
                }
            }
        }
        return done
    }

    static func processIsAlive(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    /// Relative paths of every regular file under `dir`, sorted.
    public static func listFiles(_ dir: URL) -> [String] {
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        var out: [String] = []
        let base = dir.standardizedFileURL.path + "/"
        for case let url as URL in e {
            if (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                out.append(String(url.standardizedFileURL.path.dropFirst(base.count)))
            }
        }
        return out.sorted()
    }

    /// Differences between freshly generated files and a folder: one line per file. `under`:
    /// compare only the files in these case folders (a selection), else the whole folder.
    public static func differences(_ files: [String: Data], in dir: URL, under caseIDs: [String]? = nil) -> [String] {
        var diffs: [String] = []
        var onDisk = Set(listFiles(dir))
        if let ids = caseIDs {
            let prefixes = Set(ids.map { "\($0)/" })
            onDisk = onDisk.filter { p in p.firstIndex(of: "/").map { prefixes.contains(String(p[...$0])) } ?? false }
        }
        for path in files.keys.sorted() {
            guard onDisk.contains(path) else { diffs.append("missing: \(path)"); continue }
            if FileManager.default.contents(atPath: dir.appendingPathComponent(path).path) != files[path] {
                diffs.append("differs: \(path)")
            }
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

    public static func manifest(_ dir: URL) throws -> Manifest {
        let url = dir.appendingPathComponent(Manifest.fileName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BNError.file(path: url.path, reason: "no manifest (is this a golden folder? run 'bnspec generate')")
        }
        return try decodeManifest(try FileRead.data(url, limit: FileRead.textLimit), path: url.path)
    }

    /// Decodes and checks manifest bytes (`path` names them in errors). Every path stays inside
    /// the folder: a case id is one plain name, a file a relative path without `.` or `..`
    /// components (no reading /etc/passwd through a crafted manifest). Total: any bytes give a
    /// manifest or a one-line ``BNError`` (fuzzed by tools/fuzz).
    public static func decodeManifest(_ data: Data, path: String) throws -> Manifest {
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw BNError.corrupt(path: path, reason: "manifest is not valid: \(error)")
        }
        for id in m.cases where !isPlainName(id) {
            throw BNError.corrupt(path: path, reason: "case id '\(id.prefix(80))' is not a plain folder name")
        }
        for file in m.files.keys where file.hasPrefix("/") || !file.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({ isPlainName(String($0)) }) {
            throw BNError.corrupt(path: path, reason: "file path '\(file.prefix(80))' leaves the golden folder or is not relative")
        }
        return m
    }

    /// Decodes and validates case.json bytes (``CaseSpec/validate()``); total like ``decodeManifest(_:path:)``.
    public static func decodeCase(_ data: Data, path: String) throws -> CaseSpec {
        let spec: CaseSpec
        do { spec = try JSONDecoder().decode(CaseSpec.self, from: data) } catch {
            throw BNError.corrupt(path: path, reason: "case JSON is not valid: \(error)")
        }
        do { try spec.validate() } catch let e as BNError {
            throw BNError.corrupt(path: path, reason: "case JSON is not valid: \(e.description)")
        }
        for file in Array(spec.inputs.values) + Array(spec.outputs.values) where !isPlainName(file) {
            throw BNError.corrupt(path: path, reason: "file name '\(file.prefix(80))' is not a plain name in the case folder")
        }
        return spec
    }

    static func isPlainName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("/") && !s.contains("\0")
    }

    /// Reads one file, verifying its SHA-256 against the manifest.
    static func verifiedData(_ dir: URL, _ path: String, _ manifest: Manifest) throws -> Data {
        let url = dir.appendingPathComponent(path)
        guard let want = manifest.files[path] else {
            throw BNError.corrupt(path: url.path, reason: "file is not listed in the manifest")
        }
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BNError.file(path: url.path, reason: "listed in the manifest but missing")
        }
        let data = try FileRead.data(url, limit: FileRead.npyLimit)
        let got = SHA256.hex(data)
        guard got == want else {
            throw BNError.corrupt(path: url.path, reason: "SHA-256 \(got.prefix(12))… does not match the manifest's \(want.prefix(12))… (corrupted or tampered)")
        }
        return data
    }

    /// Loads one case, every file checked against the manifest's SHA-256, and every array against
    /// the operation's table and case.json (``LoadedCase/validateArrays(dtypes:path:)``): a case
    /// that loads is safe to compute on.
    public static func loadCase(_ dir: URL, id: String, manifest: Manifest) throws -> LoadedCase {
        let specPath = "\(id)/case.json"
        let spec = try decodeCase(try verifiedData(dir, specPath, manifest), path: dir.appendingPathComponent(specPath).path)
        guard spec.id == id else { throw BNError.corrupt(path: specPath, reason: "case id '\(spec.id)' does not match its folder") }
        let casePath = dir.appendingPathComponent(id).path
        try spec.validateArrayLists(path: dir.appendingPathComponent(specPath).path)
        func load(_ m: [String: String], _ table: [ArraySpec]) throws -> [String: NPYArray] {
            var out: [String: NPYArray] = [:]
            for (name, file) in m {
                let path = "\(id)/\(file)"
                let bf16 = table.first { $0.name == name }?.goldenDType(in: spec) == .bf16
                out[name] = try NPYArray.decode(try verifiedData(dir, path, manifest), name: dir.appendingPathComponent(path).path,
                                                bfloat16: bf16)
            }
            return out
        }
        let loaded = LoadedCase(spec: spec, inputs: try load(spec.inputs, spec.op.inputs), expected: try load(spec.outputs, spec.op.outputs))
        try loaded.validateArrays(dtypes: true, path: casePath)
        return loaded
    }
}
