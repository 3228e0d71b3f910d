import BNCore
import Foundation

/// Reading and writing a golden folder safely.
///
/// - ``write(_:to:force:)`` never overwrites an existing folder without `force`, and
///   writes atomically: everything goes into a sibling temporary folder that is
///   renamed into place only when complete, so an interrupted run leaves the old
///   golden folder intact.
/// - ``load(_:)`` checks every file against the manifest's SHA-256 before use.
public enum GoldenStore {
    public static func write(_ files: [String: Data], to dir: URL, force: Bool) throws {
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: dir.path)
        if exists, !force, let items = try? fm.contentsOfDirectory(atPath: dir.path), !items.isEmpty {
            throw BNError.file(path: dir.path, reason: "already exists; pass --force to overwrite it")
        }
        let parent = dir.deletingLastPathComponent()
        let pid = ProcessInfo.processInfo.processIdentifier
        let tmp = parent.appendingPathComponent(".\(dir.lastPathComponent).tmp-\(pid)")
        let old = parent.appendingPathComponent(".\(dir.lastPathComponent).old-\(pid)")
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
            if exists { try fm.moveItem(at: dir, to: old) }
            try fm.moveItem(at: tmp, to: dir)
            if exists { try? fm.removeItem(at: old) }
        } catch let e as BNError {
            try? fm.removeItem(at: tmp); throw e
        } catch {
            try? fm.removeItem(at: tmp)
            throw BNError.file(path: dir.path, reason: "write failed: \(error.localizedDescription)")
        }
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

    /// Differences between freshly generated files and a folder: one line per file.
    public static func differences(_ files: [String: Data], in dir: URL) -> [String] {
        var diffs: [String] = []
        let onDisk = Set(listFiles(dir))
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
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw BNError.file(path: url.path, reason: "no manifest (is this a golden folder? run 'bnspec generate')")
        }
        do { return try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw BNError.corrupt(path: url.path, reason: "manifest is not valid: \(error)")
        }
    }

    /// Reads one file, verifying its SHA-256 against the manifest.
    static func verifiedData(_ dir: URL, _ path: String, _ manifest: Manifest) throws -> Data {
        let url = dir.appendingPathComponent(path)
        guard let want = manifest.files[path] else {
            throw BNError.corrupt(path: url.path, reason: "file is not listed in the manifest")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw BNError.file(path: url.path, reason: "listed in the manifest but missing")
        }
        let got = SHA256.hex(data)
        guard got == want else {
            throw BNError.corrupt(path: url.path, reason: "SHA-256 \(got.prefix(12))… does not match the manifest's \(want.prefix(12))… (corrupted or tampered)")
        }
        return data
    }

    public static func loadCase(_ dir: URL, id: String, manifest: Manifest) throws -> LoadedCase {
        let specPath = "\(id)/case.json"
        let data = try verifiedData(dir, specPath, manifest)
        let spec: CaseSpec
        do { spec = try JSONDecoder().decode(CaseSpec.self, from: data) } catch {
            throw BNError.corrupt(path: dir.appendingPathComponent(specPath).path, reason: "case JSON is not valid: \(error)")
        }
        do { try spec.validate() } catch let e as BNError {
            throw BNError.corrupt(path: dir.appendingPathComponent(specPath).path, reason: "case JSON is not valid: \(e.description)")
        }
        guard spec.id == id else { throw BNError.corrupt(path: specPath, reason: "case id '\(spec.id)' does not match its folder") }
        func load(_ m: [String: String]) throws -> [String: NPYArray] {
            var out: [String: NPYArray] = [:]
            for (name, file) in m {
                let path = "\(id)/\(file)"
                out[name] = try NPYArray.decode(try verifiedData(dir, path, manifest), name: dir.appendingPathComponent(path).path,
                                                bfloat16: spec.dtype == .bf16)
            }
            return out
        }
        return LoadedCase(spec: spec, inputs: try load(spec.inputs), expected: try load(spec.outputs))
    }
}
