import BNCore
import BNGolden
import Foundation

/// `bnspec export`: every selected case's inputs and an adapter request (request.json) in a
/// folder, for an audit through files (spec/AUDIT.md §2). The outputs written into
/// `<folder>/results/` are judged by ``Audit/run(results:name:)``.
public enum Export {
    /// Written into every export: identifies a folder `force` may replace.
    public static let marker = "export.json"

    /// The files of an export (relative path → bytes): per case its inputs and request.json
    /// (paths relative to the case folder; outputs to `results/<case>`), and ``marker``.
    public static func files(_ cases: [GoldenStore.LoadedCase], profile: ConventionProfile) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let json: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        for c in cases {
            let ac = try AuditCase(c, profile: profile)
            let id = c.spec.id
            for (k, f) in c.spec.inputs {
                guard let a = c.inputs[k] else { continue }
                files["\(id)/\(f)"] = a.encoded()
            }
            // Paths in the exported request are relative to the case folder (as golden/<case>/request.json).
            files["\(id)/request.json"] = try Generator.encoder().encode(ac.loaded.spec.fileRequest(profile: profile)) + Data("\n".utf8)
        }
        files[marker] = try JSONSerialization.data(
            withJSONObject: ["format": "bnspec-export-1", "profile": profile.name, "cases": cases.map(\.spec.id)], options: json)
        return files
    }

    /// Writes the export of `cases` to `dir` atomically. `force` replaces an earlier export,
    /// never the outputs written into it: a non-empty `results/` is a one-line error.
    /// `write` and `temporary` as in ``GoldenStore/write(_:to:force:marker:write:temporary:)``.
    public static func write(_ cases: [GoldenStore.LoadedCase], profile: ConventionProfile, to dir: URL, force: Bool,
                             write: @escaping FileWrite.Call = FileWrite.system, temporary: @escaping (URL) -> Void = { _ in }) throws {
        let files = try files(cases, profile: profile)
        let results = dir.appendingPathComponent("results")
        if force, let r = try? FileManager.default.contentsOfDirectory(atPath: results.path), !r.isEmpty {
            throw BNError.file(path: results.path, reason: "holds outputs (\(r.count) entries); move them away before re-exporting with --force")
        }
        if force { try checkReplaceable(dir) }
        _ = try GoldenStore.write(files, to: dir, force: force, marker: marker, write: write, temporary: temporary)
    }

    /// An earlier export `force` may replace holds only what export wrote: export.json, and per
    /// case it lists, request.json and the inputs that request names (folders, an empty
    /// results/ among them, do not count). Anything else is the user's: one line, nothing
    /// replaced (an outside red team's: `export --force` deleted a script and notes kept there).
    static func checkReplaceable(_ dir: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue,
              let data = try? FileRead.data(dir.appendingPathComponent(marker), limit: FileRead.textLimit),
              let listed = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let ids = listed["cases"] as? [String] else { return }  // not an export: GoldenStore.write refuses it
        var allowed: Set<String> = [marker]
        for id in ids {
            allowed.insert("\(id)/request.json")
            let request = (try? FileRead.data(dir.appendingPathComponent(id).appendingPathComponent("request.json"), limit: FileRead.textLimit))
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            for case let f as String in (request?["inputs"] as? [String: Any])?.values.map({ $0 }) ?? [] { allowed.insert("\(id)/\(f)") }
        }
        let extra = GoldenStore.unlistedFiles(in: dir, listed: allowed)
        if let first = extra.first {
            throw BNError.file(path: dir.path, reason: "holds \(extra.count) file\(extra.count == 1 ? "" : "s") the export did not write (\(first)); not replaced, even with --force")
        }
    }
}
