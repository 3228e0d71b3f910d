import BNAudit
import BNCore
import Foundation
import Testing

/// Faulty adapters (issue #7): each misbehaviour ends in a clear per-case failure (or a
/// one-line start error), the audit goes on, and nothing crashes or hangs.
@Suite(.serialized) struct FaultyAdapterTests {
    /// Tests/Fixtures/adapters/expected.tsv: mode, kind (case | pass | start | deadline), text.
    static let rows: [(mode: String, kind: String, text: String)] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/adapters/expected.tsv")
        let text = (try? String(contentsOf: url.standardizedFileURL, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            return (f[0], f.count > 1 ? f[1] : "", f.count > 2 ? f[2] : "")
        }
    }()

    static func command(_ mode: String) -> String { mode.hasPrefix("/") ? mode : "tools/adapters/faulty.py \(mode)" }

    @Test func everyFaultHasAnExpectation() {
        #expect(Self.rows.count >= 16)
        #expect(Set(Self.rows.map(\.kind)).isSubset(of: ["case", "pass", "start", "deadline", "restarts"]))
    }

    @Test(arguments: rows.filter { $0.kind == "case" || $0.kind == "pass" }.map(\.mode))
    func faultIsReportedAgainstItsCase(mode: String) throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        let row = Self.rows.first { $0.mode == mode }!
        let r = try AuditSupport.audit(Self.command(mode), filter: "train.normal.4x3x5x5.NCHW.f32.p", caseTimeout: mode == "hang" ? 3 : 30)
        #expect(r.results.count >= 2)
        if row.kind == "case" {
            let failed = r.results.filter { $0.status == .failed }
            #expect(!failed.isEmpty, "\(mode): no failure reported")
            #expect(failed.allSatisfy { $0.detail.contains(row.text) }, "\(mode): \(failed.map(\.detail))")
        } else {
            #expect(r.failed == 0, "\(mode): \(r.results.map(\.detail))")
        }
    }

    @Test(arguments: rows.filter { $0.kind == "start" }.map(\.mode))
    func startFailureIsOneLineError(mode: String) {
        guard mode.hasPrefix("/") || AuditSupport.has("numpy") else {
            Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return
        }
        let want = Self.rows.first { $0.mode == mode }!.text
        do {
            _ = try AuditSupport.audit(Self.command(mode), filter: "train.normal.4x3x5x5.NCHW.f32.p")
            Issue.record("\(mode): the audit started")
        } catch let e as BNError {
            #expect(e.description.contains(want) && !e.description.contains("\n"), "\(e.description)")
        } catch { Issue.record("\(mode): \(error)") }
    }

    /// An adapter that hangs on every case, over 24 cases (≥ 48 s without these limits).
    /// deadline: 2 s per case, 4 s for the whole audit; restarts: 1 s per case, no deadline
    /// to speak of — after 5 restarts in a row without an answer the audit gives up.
    @Test(arguments: rows.filter { $0.kind == "deadline" || $0.kind == "restarts" }.map { [$0.mode, $0.kind, $0.text] })
    func aHangingAdapterIsGivenUpOn(row: [String]) throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        let (mode, kind, want) = (row[0], row[1], row[2])
        let cases = try AuditSupport.cases(".4x3x5x5.").filter { $0.spec.op == .train && $0.spec.dtype == .f32 }.prefix(24)
        #expect(cases.count == 24)
        let a = Audit(profile: try ConventionProfile.named("pytorch"), cases: Array(cases), goldenDir: AuditSupport.golden, reproBase: "test")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let client = AdapterClient(command: "\(AuditSupport.python) \(Self.command(mode))", caseTimeout: kind == "deadline" ? 2 : 1,
                                   startTimeout: 60, totalTimeout: kind == "deadline" ? 4 : 600, workingDirectory: AuditSupport.root)
        let started = Date()
        let r = try a.run(adapter: client, scratch: scratch)
        let elapsed = Date().timeIntervalSince(started)
        // Without the limit each of the 24 cases would cost its timeout plus a restart (≥ 2 s):
        // ≥ 48 s. With it: ≤ 6 hangs of ≈ 2.5 s, or the 4 s deadline plus one case.
        #expect(elapsed < 30, "\(kind): the audit took \(elapsed) s")
        #expect(r.results.count == cases.count, "every case is reported")
        #expect(r.results.allSatisfy { $0.status == .failed || $0.status == .skipped })
        let limit = kind == "deadline" ? 4 : 6  // cases that ran (and timed out) before the limit hit
        #expect(r.results.filter { $0.detail.contains(want) }.count >= cases.count - limit, "\(kind): \(r.results.map(\.detail))")
    }
}
