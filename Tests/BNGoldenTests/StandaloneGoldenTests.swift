import BNAudit
import BNCore
import BNGolden
import Foundation
import Testing

/// Golden vectors that stand alone (issue 16): beside every expected output its per-element
/// tolerance, the case's own adapter request, and a README that says how to check; the Python
/// checker (tools/python/tests/test_golden_standalone.py) holds the files to the judge's verdicts.
@Suite struct StandaloneGoldenTests {
    static let golden = GoldenSuiteTests.golden

    /// Every output of every case has `tolerance_<out>.npy`: float64, the expected output's shape,
    /// the judge's budget element for element (+Inf where the format cannot resolve the bound),
    /// never NaN or negative.
    @Test func everyOutputCarriesTheJudgesTolerance() throws {
        let m = try GoldenStore.manifest(Self.golden)
        var infinite = 0, outputs = 0
        for id in m.cases {
            let c = try GoldenStore.loadCase(Self.golden, id: id, manifest: m)
            guard c.spec.expectError == nil else {
                #expect(!m.files.keys.contains { $0.hasPrefix("\(id)/tolerance_") }, "\(id) expects a refusal")
                continue
            }
            let budget = try ToleranceBudget(c)
            for (name, expected) in c.expected {
                let path = "\(id)/tolerance_\(name).npy"
                #expect(m.files[path] != nil, "\(path) is not in the manifest")
                let t = try NPYArray.read(Self.golden.appendingPathComponent(path))
                let want = try #require(budget.storedTolerance(name, dtype: c.spec.dtype))
                #expect(t.dtype == .f64 && t.shape == expected.shape, "\(path)")
                #expect(t.values.map(\.bitPattern) == want.map(\.bitPattern), "\(path)")
                #expect(t.values.allSatisfy { $0 >= 0 }, "\(path) holds a NaN or negative bound")
                infinite += t.values.filter(\.isInfinite).count; outputs += 1
            }
        }
        #expect(outputs > 800, "\(outputs) outputs, \(infinite) unresolvable elements")  // +Inf itself: storedToleranceMarks…
    }

    @Test func storedToleranceMarksWhatTheJudgeDoesNotJudge() {
        var b = try! ToleranceBudget(goldenCase("train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"))
        b.tolerances["y"] = [1e-7, 4e38, .infinity, .nan, 0]
        #expect(b.storedTolerance("y", dtype: .f32)!.map(\.bitPattern) == [1e-7, .infinity, .infinity, .infinity, 0].map(\.bitPattern))
        #expect(b.storedTolerance("y", dtype: .f64)![1] == 4e38)  // float64 resolves it
        #expect(b.storedTolerance("dx", dtype: .f32) == nil)
    }

    func goldenCase(_ id: String) throws -> GoldenStore.LoadedCase {
        try GoldenStore.loadCase(Self.golden, id: id, manifest: try GoldenStore.manifest(Self.golden))
    }

    /// golden/<case>/request.json is what `bnspec export --profile <the case's own>` writes.
    @Test func requestIsTheExportsUnderTheOwnProfile() throws {
        for id in ["train.normal.4x3x5x5.NCHW.f32.keras.eps0.001.m0.99", "trajectory.normal.2x3x2x2.NCHW.f32.keras.eps0.001.m0.99.k5",
                   "train.normal.1x4x1x1.NCHW.f32.pytorch.eps1e-05.m0.1", "backward-infer.normal.16x10.NC.f32.pytorch.eps1e-05.m0.1"] {
            let c = try goldenCase(id)
            let exported = try Export.files([c], profile: try c.spec.profileValue())
            let mine = try Data(contentsOf: Self.golden.appendingPathComponent("\(id)/request.json"))
            #expect(exported["\(id)/request.json"] == mine, "\(id)")
            let obj = try #require(try JSONSerialization.jsonObject(with: mine) as? [String: Any])
            #expect(obj["profile"] as? String == c.spec.profile && (obj["inputs"] as? [String: String]) == c.spec.inputs)
            #expect(obj.keys.contains("expect_error") && obj.keys.contains("batch_weight"), "null fields are written, not left out")
        }
    }

    @Test func readmeDescribesTheFilesBesideIt() throws {
        let text = try String(contentsOf: Self.golden.appendingPathComponent("README.md"), encoding: .utf8)
        let cases = try Catalog.load(GoldenSuiteTests.root.appendingPathComponent("spec/catalog.txt")).cases[Catalog.defaultSuite]!
        #expect(text == GoldenReadme.text(suite: Catalog.defaultSuite, cases: cases))
        #expect(text.contains("\(cases.count) cases") && text.contains("`<u2` bit patterns") && text.contains("|got − e| ≤ t"))
        for op in Operation.allCases { for a in op.outputs { #expect(text.contains("`tolerance_\(a.name).npy`")) } }
    }

    /// `allowed_<out>.json`: the format golden/README.md documents and the Python checker reads.
    @Test func allowedValuesFileFormat() throws {
        var b = try ToleranceBudget(goldenCase("train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"))
        #expect(try b.allowedFile("batch_mean") == nil)
        b.alternatives["batch_mean"] = [2: [.nan, .infinity], 0: [-.infinity]]
        let text = String(decoding: try #require(try b.allowedFile("batch_mean")), as: UTF8.self)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(obj["format"] as? String == "bnspec-allowed-1" && obj["output"] as? String == "batch_mean")
        let elements = try #require(obj["elements"] as? [[String: Any]])
        #expect(elements.map { $0["index"] as? Int } == [0, 2])
        #expect(elements.map { $0["values"] as? [String] ?? [] } == [["-inf"], ["nan", "inf"]])
    }

    /// Failing elements are named by their logical coordinates whatever the layout.
    @Test func coordinatesOfFlatIndices() throws {
        let nhwc = try goldenCase("train.normal.4x3x5x5.NHWC.f32.pytorch.eps1e-05.m0.1").spec
        // NHWC [4, 5, 5, 3]: flat 3·(5·5·3) + 2·(5·3) + 4·3 + 1 = 225 + 30 + 12 + 1 = 268 is n 3, h 2, w 4, c 1.
        #expect(nhwc.op.output("y")?.coordinates(ofFlat: 268, in: nhwc) == "n=3, c=1, h=2, w=4")
        #expect(nhwc.op.output("running_var")?.coordinates(ofFlat: 2, in: nhwc) == "c=2")
        #expect(nhwc.op.output("y")?.coordinates(ofFlat: 300, in: nhwc) == nil)
        let nc = try goldenCase("backward-infer.normal.16x10.NC.f32.pytorch.eps1e-05.m0.1").spec
        #expect(nc.op.output("dx")?.coordinates(ofFlat: 37, in: nc) == "n=3, c=7")
        let t = try goldenCase("trajectory.normal.2x3x2x2.NCHW.f32.keras.eps0.001.m0.99.k5").spec
        // running_mean is [5 steps, 3 channels]; y_eval [2, 3, 2, 2]: flat 1·12 + 0·4 + 1·2 + 1 = 15.
        #expect(t.op.output("running_mean")?.coordinates(ofFlat: 3 * 3 + 1, in: t) == "step=4, c=1")
        #expect(t.op.output("y_eval")?.coordinates(ofFlat: 15, in: t) == "n=1, c=0, h=1, w=1")
        #expect(t.op.input("x")?.coordinates(ofFlat: 24 + 15, in: t) == "step=2, n=1, c=0, h=1, w=1")
    }
}
