import BNAudit
import BNCore
import BNGolden
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// Reports and the file-based audit: recorded results judged from a folder, JUnit XML
/// well-formed, HTML self-contained with its three plots.
@Suite struct ReportTests {
    /// Writes the reference's own outputs as recorded results, optionally corrupting one.
    func record(_ cases: [GoldenStore.LoadedCase], profile: ConventionProfile, to dir: URL, corrupt: String?) throws {
        for c in cases {
            let ac = try AuditCase(c, profile: profile)
            let d = dir.appendingPathComponent(c.spec.id)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            for (name, arr) in ac.loaded.expected {
                var a = arr
                if name == "y" && c.spec.id == corrupt { a.values[0] += 1 }
                try a.encoded().write(to: d.appendingPathComponent("\(name).npy"))
            }
        }
    }

    @Test func recordedResultsAreJudgedAndReported() throws {
        let cases = try AuditSupport.cases("train.normal.4x3x5x5.NCHW.f32")
        let profile = ConventionProfile.pytorch
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-results-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let audit = Audit(profile: profile, cases: cases, goldenDir: AuditSupport.golden, reproBase: "bnspec audit --results X")
        try record(cases, profile: profile, to: dir, corrupt: nil)
        let clean = try audit.run(results: dir, name: "reference")
        #expect(clean.failed == 0 && clean.passed == cases.count)
        try record(cases, profile: profile, to: dir, corrupt: cases[0].spec.id)
        let bad = try audit.run(results: dir, name: "reference")
        #expect(bad.failed == 1)
        let f = bad.results.first { $0.status == .failed }!
        #expect(f.caseID == cases[0].spec.id && f.repro == "bnspec audit --results X --case \(cases[0].spec.id)")
        // JUnit: well-formed XML with one failure.
        let parser = XMLParser(data: Data(bad.junit().utf8))
        #expect(parser.parse(), "JUnit XML does not parse")
        #expect(bad.junit().components(separatedBy: "<failure ").count == 2)
        // HTML: the three plots (one ULP histogram per dtype: float32 only here), no external resources.
        let html = bad.html()
        for plot in ["error against condition", "results per family", "ULP histogram float32"] { #expect(html.contains("aria-label=\"\(plot)\"")) }
        #expect(!html.contains("ULP histogram float16"))
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"))
        // JSON round trip of the main fields.
        let obj = try JSONSerialization.jsonObject(with: JSONEncoder().encode(bad)) as? [String: Any]
        #expect(obj?["failed"] as? Int == 1 && (obj?["results"] as? [Any])?.count == cases.count)
    }

    /// Outputs where the profile requires a refusal (one value per channel in training, pytorch):
    /// a failure that names it; the refusal (error.txt) passes.
    @Test(arguments: ["train.normal.1x8.NC.f32.pytorch", "sync-train.normal.1x4.NC.f32.pytorch"])
    func outputsInsteadOfARequiredRefusalAreNamed(filter: String) throws {
        let cases = try AuditSupport.cases(filter).filter { $0.spec.id.hasPrefix(filter) }
        try #require(cases.count == 1 && cases[0].spec.expectError != nil, "golden case \(filter) missing or not a refusal case")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-results-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = dir.appendingPathComponent(cases[0].spec.id)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        let audit = Audit(profile: .pytorch, cases: cases, goldenDir: AuditSupport.golden, reproBase: "x")
        try Data("refused".utf8).write(to: d.appendingPathComponent("error.txt"))
        #expect(try audit.run(results: dir, name: "r").passed == 1)
        try FileManager.default.removeItem(at: d.appendingPathComponent("error.txt"))
        try cases[0].inputs["x"]!.encoded().write(to: d.appendingPathComponent("y.npy"))
        let r = try audit.run(results: dir, name: "r")
        #expect(r.failed == 1 && r.results[0].likelyCause?.hasPrefix("no refusal of a training step with one value per channel") == true,
                "\(r.results[0].likelyCause ?? "unexplained"): \(r.results[0].detail)")
    }

    @Test func missingResultsFolderIsOneLineError() throws {
        let audit = Audit(profile: .pytorch, cases: try AuditSupport.cases("train.normal.4x3x5x5.NCHW.f32.pytorch"),
                          goldenDir: AuditSupport.golden, reproBase: "x")
        #expect(throws: BNError.self) { try audit.run(results: URL(fileURLWithPath: "/nonexistent/results"), name: "x") }
    }

    /// An empty results folder is not a silent pass; the export folder itself is a one-line error.
    @Test func auditThatChecksNothingIsNotOK() throws {
        let audit = Audit(profile: .pytorch, cases: try AuditSupport.cases("train.normal.4x3x5x5.NCHW.f32.pytorch"),
                          goldenDir: AuditSupport.golden, reproBase: "x")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try audit.run(results: dir, name: "x")
        #expect(r.failed == 0 && r.passed == 0 && r.skipped == r.results.count && !r.ok)
        try Data("{}".utf8).write(to: dir.appendingPathComponent("export.json"))
        do { _ = try audit.run(results: dir, name: "x"); Issue.record("accepted the export folder as results") } catch let e as BNError {
            #expect(e.description.contains("is the export folder") && !e.description.contains("\n"))
        }
    }
}
