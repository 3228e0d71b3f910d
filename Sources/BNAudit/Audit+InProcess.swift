import BNCore
import BNGolden
import BNKernels
import Foundation

/// The in-process route of an audit (spec/AUDIT.md §8): a Swift package that depends on BNSpec
/// audits its own ``BNKernels/BatchNormKernel`` (or a ``BatchNormOperations`` of closures) in its
/// test process. Each case runs as `bnspec verify` runs a kernel (``CaseJudge``) and is judged as
/// `run(adapter:)` judges an adapter's outputs: the same ``AuditResult``s and ``AuditReport``, tolerance
/// and diagnosis. A kernel that crashes takes the test process with it: for isolation, audit it
/// through an adapter or the C ABI (`bnspec audit --adapter/--library`).
extension Audit {
    /// Environment variables that narrow an in-process audit to some cases, as `--case` (exact ids,
    /// comma-separated) and `--match` (a pattern) do on the command line; every in-process repro
    /// line sets ``caseVariable``.
    public static let caseVariable = "BNSPEC_CASE", matchVariable = "BNSPEC_MATCH"

    /// The cases ``caseVariable`` and ``matchVariable`` select in `environment` (every case when
    /// neither is set).
    public static func environmentSelector(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> CaseSelector {
        func list(_ name: String) -> [String] {
            (environment[name] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return CaseSelector(ids: list(caseVariable), match: list(matchVariable))
    }

    /// The golden folder of the BNSpec sources this module was compiled from (for a dependent
    /// package, SwiftPM's checkout of BNSpec).
    public static func packagedGolden() throws -> URL {
        guard let root = Checkout.compiled else {
            throw BNError.file(path: #filePath, reason: "the BNSpec sources this module was built from are gone; pass golden: a golden folder")
        }
        return root.appendingPathComponent("golden")
    }

    /// The ids of the selected cases, in the suite's order: the arguments of a test per case.
    /// `golden`: nil for ``packagedGolden()``. Throws for an unknown id or an empty selection.
    public static func caseIDs(golden: URL? = nil, cases: CaseSelector = environmentSelector()) throws -> [String] {
        let dir = try golden ?? packagedGolden()
        return try cases.select(GoldenStore.manifest(dir).cases, source: dir.path)
    }

    /// An audit of the selected golden cases (each checked against the manifest's SHA-256) against
    /// `profile`, for an in-process run. `rerun`: the command that reruns the audit (a failure's
    /// repro line is `BNSPEC_CASE=<id> <rerun>`), e.g. `swift test --filter MyKernelAudit`.
    public init(profile: ConventionProfile, golden: URL? = nil, cases: CaseSelector = environmentSelector(),
                rerun: String = "swift test") throws {
        let dir = try golden ?? Self.packagedGolden()
        let manifest = try GoldenStore.manifest(dir)
        let loaded = try cases.select(manifest.cases, source: dir.path).map { try GoldenStore.loadCase(dir, id: $0, manifest: manifest) }
        self.init(profile: profile, cases: loaded, goldenDir: dir, reproBase: rerun)
    }

    /// Audits `kernel` in this process over ``cases``. `progress(i, n, id)` is called before each case.
    public func run(kernel: any BatchNormKernel, version: String = "in-process",
                    progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> AuditReport {
        try run(operations: BatchNormOperations(kernel, version: version), progress: progress)
    }

    /// Audits the supplied operations in this process over ``cases``; cases of operations not
    /// supplied, and of dtypes or layouts not declared, are skipped.
    public func run(operations: BatchNormOperations, progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> AuditReport {
        let results = try eachCase(progress: { p in if let id = p.current { progress(p.done, p.total, id) } }) { ac in
            try judge(ac, operations: operations)
        }
        return AuditReport(implementation: operations.name, version: operations.version, profile: profile.name, results: results)
    }

    /// Runs one case through the operations and judges what they return; throws only for a case
    /// whose own conventions cannot be read (as `run(adapter:)` does).
    func judge(_ ac: AuditCase, operations ops: BatchNormOperations) throws -> AuditResult {
        let spec = ac.loaded.spec
        var r = base(ac)
        r.repro = "\(Self.caseVariable)=\(ac.goldenID) \(reproBase)"
        if !ops.runningStatistics && spec.op.hasSteps {
            r.status = .skipped; r.detail = Self.notProvidedNote(["running_mean", "running_var", "y_eval"]); return r
        }
        guard ops.supplies(spec.op), ops.dtypes.contains(spec.dtype), ops.layouts.contains(spec.layout) else {
            r.status = .skipped; r.detail = "not supported by the kernel (\(spec.op.rawValue), \(spec.dtype.rawValue), \(spec.layout.rawValue))"
            return r
        }
        let notProvided: Set<String> = ops.runningStatistics ? [] : Self.runningOutputs
        let kernel = ops.kernel(rule: try spec.rule())
        _ = try spec.shapeValue()
        let outputs: [String: [Double]]
        do {  // from here on, an error is the kernel's
            outputs = try CaseJudge.run(ac.loaded, kernel)
                .filter { spec.outputs[$0.key] != nil && !notProvided.contains($0.key) }
        } catch let e as BatchNormOperations.Unsupported {
            r.status = .skipped; r.detail = "kernel: unsupported: \(e)"; return r
        } catch {
            return refused(ac, r, message: "\(error)", by: "kernel")
        }
        if spec.expectError != nil { return outputsInsteadOfRefusal(ac, r, names: outputs.keys) }
        return judge(ac, r, outputs: outputs, notProvided: notProvided)
    }
}

extension AuditReport {
    /// The verdict on case `id`; nil when the audit did not select it.
    public subscript(case id: String) -> AuditResult? { results.first { $0.caseID == id } }
}

extension AuditResult: CustomStringConvertible {
    /// The verdict as the CLI prints a failure: status and case, the likely cause in brackets and
    /// the detail; on a second line the repro.
    public var description: String {
        "\(status.rawValue) \(caseID): \(likelyCause.map { "[\($0)] " } ?? "")\(detail)\n  repro: \(repro)"
    }
}
