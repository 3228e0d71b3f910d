import BNAudit
import Foundation
import Testing

/// ONNX's own BatchNormalization test data (converted by tools/onnx_to_bnspec.py and
/// committed under spec/peers/onnx): BNSpec's reference must reproduce every ONNX
/// output within the float32 tolerance model.
@Suite struct PeerDataTests {
    @Test func onnxTestDataAgreesWithTheReference() throws {
        let dir = GoldenSuiteTests.root.appendingPathComponent("spec/peers/onnx")
        let results = try PeerData.check(dir)
        #expect(results.count == 9)
        for r in results {
            #expect(r.status == .passed, "\(r.caseID): \(r.detail)")
            print("peer \(r.caseID): \(r.status.rawValue), worst error ÷ tolerance \(r.worstRatio)")
        }
    }
}
