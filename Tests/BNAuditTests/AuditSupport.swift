import BNAudit
import BNCore
import BNGolden
import Foundation
import Testing

/// Shared set-up of the audit tests: the checkout, the golden cases, and a Python with NumPy.
enum AuditSupport {
    static let root: URL = Checkout.root(from: URL(fileURLWithPath: #filePath))!
    static var golden: URL { root.appendingPathComponent("golden") }

    /// BNSPEC_PYTHON, else the virtualenv tools/setup.sh creates, else python3.
    static let python: String = {
        if let p = ProcessInfo.processInfo.environment["BNSPEC_PYTHON"] { return p }
        let venv = root.appendingPathComponent(".venv-frameworks/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
    }()

    /// True when `python` imports the given modules (checked once per module set).
    static func has(_ modules: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "\(python) -c 'import \(modules)' 2>/dev/null"]
        try? p.run(); p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// The golden cases whose id contains `filter`.
    static func cases(_ filter: String) throws -> [GoldenStore.LoadedCase] {
        let m = try GoldenStore.manifest(golden)
        return try m.cases.filter { $0.contains(filter) }.map { try GoldenStore.loadCase(golden, id: $0, manifest: m) }
    }

    /// The largest case the whole-suite audit tests judge in the debug build, unless it is one a
    /// bug acts on.
    static let suiteCaseBytes = 100_000

    /// The suite as the whole-suite audit tests run it: every case of at most ``suiteCaseBytes``
    /// (1100 of 1242; the others hold 82 % of the data, and judging them in the debug build was
    /// most of these tests' time), and every case `keep` selects whatever its size (the cases a bug
    /// acts on). `bnspec audit` and tools/mutation_score.py audit every case.
    static func suite(keep: (String) -> Bool = { _ in false }) throws -> [GoldenStore.LoadedCase] {
        let m = try GoldenStore.manifest(golden)
        return try m.cases.filter { keep($0) || GoldenStore.caseBytes(golden, id: $0) <= suiteCaseBytes }
            .map { try GoldenStore.loadCase(golden, id: $0, manifest: m) }
    }

    /// The golden cases of the higher-order operations (spec §12).
    static func higherOrderCases() throws -> [GoldenStore.LoadedCase] {
        let m = try GoldenStore.manifest(golden)
        return try m.cases.filter { id in ["hvp-", "d2-", "d3-"].contains { id.hasPrefix($0) } }
            .map { try GoldenStore.loadCase(golden, id: $0, manifest: m) }.filter { $0.spec.op.isHigherOrder }
    }

    /// Audits `adapter` over the cases whose id contains `filter` (or over `cases`).
    /// `extraEnvironment` is added to this process's environment for the adapter.
    static func audit(_ adapter: String, profile: String = "pytorch", filter: String = ".4x3x5x5.",
                      cases selected: [GoldenStore.LoadedCase]? = nil, caseTimeout: Double = 60,
                      extraEnvironment: [String: String] = [:], shell: Bool = false, startTimeout: Double = 60) throws -> AuditReport
    {
        let a = Audit(profile: try ConventionProfile.named(profile), cases: try selected ?? cases(filter), goldenDir: golden,
                      reproBase: "test")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let env = extraEnvironment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(extraEnvironment) { $1 }
        let client = AdapterClient(command: shell ? adapter : "\(python) \(adapter)", caseTimeout: caseTimeout, startTimeout: startTimeout,
                                   totalTimeout: 600, workingDirectory: root, environment: env)
        return try a.run(adapter: client, scratch: scratch)
    }

    /// The `bnspec` executable built next to this test binary (`swift test` builds every product);
    /// nil, with an issue recorded (never a silent pass), when it is missing.
    static func bnspec() -> String? {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("bnspec").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        Issue.record("bnspec is not built next to the test binary (\(path)); run `swift build` first")
        return nil
    }

    /// The "pgid pid" lines tools/adapters/faulty.py recorded in `file` (BNSPEC_FAULTY_PIDS).
    static func recordedProcesses(_ file: URL) -> [(group: pid_t, pid: pid_t)] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").compactMap { pid_t($0) }
            return f.count == 2 ? (f[0], f[1]) : nil
        }
    }
}
