import BNCore
import BNGolden
import Foundation

/// Where bnspec finds its data — `golden/` and `spec/catalog.txt` — when no `--golden`,
/// `--catalog` or `--out` names them (README, "Install"). In this order:
///
/// 1. `BNSPEC_GOLDEN` (the golden folder itself; golden only);
/// 2. `BNSPEC_HOME`: a folder holding `golden/` and `spec/` — a checkout or an install's share folder;
/// 3. the BNSpec checkout around the working directory (spec/catalog.txt here or above), so
///    commands work from any subfolder of a clone;
/// 4. the share folder of an install: `<prefix>/share/bnspec` for the binary `<prefix>/bin/bnspec`
///    (symbolic links to the binary followed).
///
/// A variable that names no folder is an error, not a fall-through: a CI job that sets it means it.
enum Paths {
    static let goldenVariable = "BNSPEC_GOLDEN", homeVariable = "BNSPEC_HOME"

    static func resolve(_ path: String?, default rel: String) throws -> URL {
        if let p = path {
            // An empty path is no path (an outside red team's: generate --out '' wrote into the current folder).
            guard !p.isEmpty else { throw BNError.invalidArgument("an empty path where a \(rel == "golden" ? "folder" : "file") is expected") }
            return URL(fileURLWithPath: p).standardizedFileURL
        }
        let env = ProcessInfo.processInfo.environment
        if rel == "golden", let g = env[goldenVariable], !g.isEmpty { return try folder(g, variable: goldenVariable) }
        if let h = env[homeVariable], !h.isEmpty { return try folder(h, variable: homeVariable).appendingPathComponent(rel) }
        let cwd = FileManager.default.currentDirectoryPath
        if let root = Checkout.root(from: URL(fileURLWithPath: cwd)) { return root.appendingPathComponent(rel) }
        if let share = shareFolder() { return share.appendingPathComponent(rel) }
        throw BNError.file(path: cwd, reason: "no \(rel) here: not inside a BNSpec checkout, \(homeVariable) is not set, and there is no "
                           + "share/bnspec beside the binary's folder; pass --\(rel == "golden" ? "golden DIR" : "catalog FILE") (README: Install)")
    }

    /// The folder a variable names, checked.
    static func folder(_ value: String, variable: String) throws -> URL {
        let url = URL(fileURLWithPath: value).standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
            throw BNError.file(path: value, reason: "\(variable) names no folder")
        }
        return url
    }

    /// `<prefix>/share/bnspec` when this binary is `<prefix>/bin/bnspec` and that folder exists.
    static func shareFolder() -> URL? {
        guard let exe = try? LibraryRoute.executable() else { return nil }
        let share = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("share/bnspec")
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: share.path, isDirectory: &isDir) && isDir.boolValue ? share : nil
    }
}

extension Paths {
    /// The `--golden` a repro line carries: the folder given (with --golden, BNSPEC_GOLDEN or BNSPEC_HOME),
    /// absolute, so the line reruns against the same golden data from any directory and in a
    /// shell without the variable (an outside red team's: a BNSPEC_GOLDEN run's repro rerun
    /// against the default folder passed; a relative --golden failed from another directory).
    static func reproGolden(_ given: String?) -> String {
        let variables = ProcessInfo.processInfo.environment
        let env = variables[goldenVariable].flatMap { $0.isEmpty ? nil : $0 }
        // BNSPEC_HOME's golden/ too (round J: its repro, rerun without the variable, ran against
        // the checkout's golden folder and passed).
        let home = variables[homeVariable].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0).appendingPathComponent("golden").path }
        guard let g = given ?? env ?? home else { return "" }
        return " --golden \(Shell.quoted(absolute(g)))"
    }

    /// Refuses an output path inside an input folder (the golden folder, a results folder):
    /// a report written into a case folder failed that case on the next run, and an export or a
    /// report inside golden/ changed what the next run reads (an outside red team's).
    static func refuseInside(_ outputs: [(flag: String, path: String?)], folders: [(name: String, url: URL)]) throws {
        func real(_ p: String) -> String {
            // The deepest existing ancestor resolved (links followed), the rest appended.
            var url = URL(fileURLWithPath: p).standardizedFileURL, rest: [String] = []
            while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" {
                rest.insert(url.lastPathComponent, at: 0); url = url.deletingLastPathComponent()
            }
            return rest.reduce(url.resolvingSymlinksInPath()) { $0.appendingPathComponent($1) }.path
        }
        for (flag, path) in outputs {
            guard let path else { continue }
            let target = real(path)
            for (name, url) in folders {
                let root = real(url.path)
                if target == root || target.hasPrefix(root.hasSuffix("/") ? root : root + "/") {
                    throw BNSpec.usageError("\(flag) \(path.escapingControlCharacters()) is inside the \(name) folder \(url.path.escapingControlCharacters()), which this command reads; write it elsewhere")
                }
            }
        }
    }

    /// `p` made absolute against the working directory (links kept as written).
    static func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }

    /// The same file for two paths (an existing file by its real path, a new one by its
    /// standardized path), so that one output does not overwrite another or an input.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        func key(_ p: String, _ depth: Int = 0) -> String {
            if let r = realpath(p, nil) { defer { free(r) }; return String(cString: r) }
            // A symbolic link to a file not yet written (the report another flag names): the
            // file it will write (an outside red team's `--json a --junit link-to-a` lost the JSON).
            if depth < 40, let target = try? FileManager.default.destinationOfSymbolicLink(atPath: p) {
                let parent = URL(fileURLWithPath: p).deletingLastPathComponent()
                return key(target.hasPrefix("/") ? target : parent.appendingPathComponent(target).path, depth + 1)
            }
            let url = URL(fileURLWithPath: p).standardizedFileURL
            if let r = realpath(url.deletingLastPathComponent().path, nil) {
                defer { free(r) }
                return String(cString: r) + "/" + url.lastPathComponent
            }
            return url.path
        }
        return key(a) == key(b)
    }

    /// A usage error when two report outputs name the same file, or an output names an input:
    /// the later write would silently replace the earlier (a merge would overwrite its own shard).
    static func checkDistinct(outputs: [(flag: String, path: String?)], inputs: [String] = []) throws {
        let given = outputs.compactMap { o in o.path.map { (o.flag, $0) } }
        for (i, (flag, path)) in given.enumerated() {
            for (other, q) in given[..<i] where sameFile(path, q) {
                throw BNSpec.usageError("\(other) and \(flag) name the same file \(path); each report needs its own")
            }
            for input in inputs where sameFile(path, input) {
                throw BNSpec.usageError("\(flag) \(path) is one of the reports being merged; write the merged report elsewhere")
            }
        }
    }
}
