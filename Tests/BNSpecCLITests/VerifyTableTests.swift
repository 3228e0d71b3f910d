import Foundation
import Testing

/// The table `bnspec verify` prints (the README's main job) says what its JSON report says: each
/// cell, passed/run and the worst ratio of one family's run cases for one implementation, is
/// recounted here from the report's cases.
@Suite struct VerifyTableTests {
    @Test func everyCellCountsTheReportsCases() throws {
        guard CLI.isBuilt() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-table-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = dir.appendingPathComponent("report.json")
        let r = try CLI.run(["verify", "--match", "*2x3x1x1*", "--match", "infer.normal.2x16x4x4*", "--match", "backward-train.normal.8x8*",
                             "--calibration", "none", "--json", json.path])
        #expect(r.status == 0, "\(r.err)")

        // The report, recounted: family → implementation → (passed, run, worst ratio).
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let cases = try #require(report["cases"] as? [[String: Any]])
        var want: [String: [String: (passed: Int, run: Int, worst: Double)]] = [:]
        for c in cases {
            let family = try #require(c["family"] as? String), impl = try #require(c["implementation"] as? String)
            let status = try #require(c["status"] as? String)
            if status == "skipped" { continue }
            let ratio = (c["worst_ratio"] as? Double) ?? (c["worst_ratio"] as? String).flatMap { Double($0) } ?? .nan
            var cell = want[family, default: [:]][impl] ?? (0, 0, -.infinity)
            cell.run += 1
            if status == "passed" { cell.passed += 1 }
            cell.worst = max(cell.worst, ratio)
            want[family, default: [:]][impl] = cell
        }
        #expect(want.count >= 3, "families: \(want.keys.sorted())")

        // The printed table: a header row, a rule, one row per family, TOTAL.
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("family ") })
        func cells(_ line: String) -> [String] {
            line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let columns = cells(lines[header])
        #expect(columns.count > 5 && columns.contains("fused"), "\(columns)")
        var families: [String] = []
        for line in lines[(header + 2)...] {
            let row = cells(line)
            if row.first == "TOTAL" || row.isEmpty { break }
            #expect(row.count == columns.count, "\(line)")
            let family = row[0]
            families.append(family)
            for (impl, text) in zip(columns.dropFirst(), row.dropFirst()) {
                if let c = want[family]?[impl] {
                    let worst = c.worst.isFinite ? String(format: "%.3g", c.worst) : "∞"
                    #expect(text == "\(c.passed)/\(c.run) (\(worst))", "\(family) × \(impl)")
                } else {
                    #expect(text == "-", "\(family) × \(impl): no case ran, the cell reads \(text)")
                }
            }
        }
        #expect(families == want.keys.sorted(), "table rows \(families), report families \(want.keys.sorted())")
    }
}
