import BNAudit
import BNCore
import Foundation
import Testing

/// Faulty adapters (issue #7): each misbehaviour ends in a clear per-case failure (or a
/// one-line start error), the audit goes on, and nothing crashes or hangs.
@Suite(.serialized) struct FaultyAdapterTests {
    /// mode → text the failing cases' detail must contain (nil: the audit must pass).
    static let expectations: [(String, String?)] = [
        ("crash-mid-run", "adapter exited with status 3"),
        ("hang", "did not answer within 3.0 s"),
        ("garbage", "not protocol JSON: this is not JSON"),
        ("wrong-shape", "y: 299 values, expected 300"),
        ("wrong-dtype", "unsupported dtype '<i4'"),
        ("nan-output", "y[0] = nan"),
        ("missing-output", "missing output running_var"),
        ("extra-output", "unexpected output surprise"),
        ("slow-start", nil),
        ("stderr-noise", nil),
    ]

    @Test(arguments: expectations.map(\.0))
    func faultIsReportedAgainstItsCase(mode: String) throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        let want = Self.expectations.first { $0.0 == mode }!.1
        let r = try AuditSupport.audit("tools/adapters/faulty.py \(mode)", filter: "train.normal.4x3x5x5.NCHW.f32.p", caseTimeout: 3)
        #expect(r.results.count >= 2)
        if let want {
            let failed = r.results.filter { $0.status == .failed }
            #expect(!failed.isEmpty, "\(mode): no failure reported")
            #expect(failed.allSatisfy { $0.detail.contains(want) }, "\(mode): \(failed.map(\.detail))")
        } else {
            #expect(r.failed == 0, "\(mode): \(r.results.map(\.detail))")
        }
    }

    @Test(arguments: [("crash-at-start", "did not start: adapter exited with status 1: faulty: crashing at start on purpose"),
                      ("bad-hello", "expected protocol bnspec-adapter/1, got bnspec-adapter/99")])
    func startFailureIsOneLineError(mode: String, message: String) {
        guard AuditSupport.has("numpy") else { return }
        do {
            _ = try AuditSupport.audit("tools/adapters/faulty.py \(mode)", filter: "train.normal.4x3x5x5.NCHW.f32.p")
            Issue.record("\(mode): the audit started")
        } catch let e as BNError {
            #expect(e.description.contains(message) && !e.description.contains("\n"), "\(e.description)")
        } catch { Issue.record("\(mode): \(error)") }
    }

    @Test func missingAdapterCommandIsOneLineError() {
        do {
            _ = try AuditSupport.audit("/nonexistent/adapter.py")
            Issue.record("started a nonexistent adapter")
        } catch let e as BNError {
            #expect(e.description.contains("did not start") && !e.description.contains("\n"))
        } catch { Issue.record("\(error)") }
    }
}
