import BNAudit
import BNCore
import BNGolden
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Running the bnspec executable built next to this test binary, as a CI job does: arguments,
/// environment and working directory given, stdout and stderr captured (through files: a pipe
/// would make stderr a non-terminal too, but could fill up), exit status returned.
enum CLI {
    static let root: URL = Checkout.root(from: URL(fileURLWithPath: #filePath))!
    static var golden: URL { root.appendingPathComponent("golden") }

    static let bnspec: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("bnspec").path
    }()

    /// Records an issue (never a silent pass) when the binary is missing.
    static func isBuilt() -> Bool {
        if FileManager.default.isExecutableFile(atPath: bnspec) { return true }
        Issue.record("bnspec is not built next to the test binary (\(bnspec)); run `swift build` first")
        return false
    }

    /// A Python with NumPy for the shipped adapters: BNSPEC_PYTHON, else the virtualenv of
    /// tools/setup.sh, else python3; nil (and a recorded issue, never a silent pass) without NumPy.
    static func pythonWithNumPy() throws -> String? {
        let venv = root.appendingPathComponent(".venv-frameworks/bin/python").path
        let python = ProcessInfo.processInfo.environment["BNSPEC_PYTHON"] ?? (FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3")
        guard try run([python, "-c", "import numpy"], exe: "/usr/bin/env").status == 0 else {
            Issue.record("no Python with NumPy for the adapters (\(python); run bash tools/setup.sh)"); return nil
        }
        return python
    }

    struct Run {
        var status: Int32, out: String, err: String
        var errLines: [String] { err.split(separator: "\n").map(String.init) }
    }

    /// Runs `exe args` (bnspec by default) in `cwd` (the checkout by default) with `env` added to
    /// (or, with `clean`, replacing all but PATH and HOME of) this process's environment.
    static func run(_ args: [String], exe: String = bnspec, cwd: URL = root, env: [String: String] = [:], clean: Bool = false) throws -> Run {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let o = dir.appendingPathComponent("out"), e = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: o.path, contents: nil); _ = FileManager.default.createFile(atPath: e.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.currentDirectoryURL = cwd
        var environment = ProcessInfo.processInfo.environment
        // Bazel's sharding variables of an outer runner would shard these runs too.
        for k in ["TEST_TOTAL_SHARDS", "TEST_SHARD_INDEX", "TEST_SHARD_STATUS_FILE", "BNSPEC_HOME", "BNSPEC_GOLDEN"] { environment[k] = nil }
        if clean { environment = environment.filter { ["PATH", "HOME"].contains($0.key) } }
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = try FileHandle(forWritingTo: o); p.standardError = try FileHandle(forWritingTo: e)
        try p.run(); p.waitUntilExit()
        return Run(status: p.terminationStatus, out: (try? String(contentsOf: o, encoding: .utf8)) ?? "",
                   err: (try? String(contentsOf: e, encoding: .utf8)) ?? "")
    }

    /// A fresh folder, removed by the caller.
    static func scratch(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func json(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// The committed golden case ids matching `pattern` (CaseSelector's glob or substring).
    static func ids(_ pattern: String) throws -> [String] {
        try GoldenStore.manifest(golden).cases.filter { CaseSelector.matches(pattern, $0) }
    }

    /// Recorded outputs for `audit --results`: each case's expected outputs under its own profile
    /// (the reference's answer, which passes), moved by `shift(case, output, expected, tolerance)`
    /// when given (tolerances from the golden tolerance files).
    static func record(_ ids: [String], to dir: URL,
                       shift: ((String, String, [Double], [Double]) -> [Double]?)? = nil) throws {
        let m = try GoldenStore.manifest(golden)
        for id in ids {
            let c = try GoldenStore.loadCase(golden, id: id, manifest: m)
            let d = dir.appendingPathComponent(id)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            if c.spec.expectError != nil { try Data("refused\n".utf8).write(to: d.appendingPathComponent("error.txt")); continue }
            for (name, arr) in c.expected {
                let tol = try NPYArray.read(golden.appendingPathComponent("\(id)/tolerance_\(name).npy")).values
                var a = NPYArray(dtype: .f64, shape: arr.shape, values: arr.values)
                if let f = shift, let moved = f(id, name, arr.values, tol) { a.values = moved }
                try a.encoded().write(to: d.appendingPathComponent("\(name).npy"))
            }
        }
    }
}
