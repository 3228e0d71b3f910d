import BNAudit
import BNCore
import BNGolden
import Foundation
import Testing

/// Sharded runs (issue 16): `--shard K/N` partitions a selection by case id, Bazel's sharding
/// environment means the same, and `bnspec merge` of the shards' reports gives the unsharded
/// run's verdicts and digests — or refuses, in one line, what must not be merged.
@Suite struct ShardAndMergeTests {
    static let selection = ["--match", "*4x3x5x5*"]

    func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

    @Test func shardsPartitionTheSelectionInEveryCommand() throws {
        guard CLI.isBuilt() else { return }
        let all = lines(try CLI.run(["verify", "--list"] + Self.selection).out)
        #expect(all.count > 50)
        var union: [String] = []
        for k in 1...4 {
            let shard = ["--shard", "\(k)/4"]
            let v = lines(try CLI.run(["verify", "--list"] + Self.selection + shard).out)
            #expect(!v.isEmpty && v == all.filter { Int(Shard.fnv1a($0) % 4) == k - 1 })
            for cmd in [["audit", "--list"], ["export", "--list"], ["generate", "--check", "--list"], ["oracle", "--list"]] {
                #expect(lines(try CLI.run(cmd + Self.selection + shard).out) == v, "\(cmd) \(shard)")
            }
            union += v
        }
        #expect(union.sorted() == all.sorted() && Set(union).count == all.count)
        // Bazel: TEST_SHARD_INDEX is 0-based; the status file is touched.
        let dir = try CLI.scratch("bazel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let status = dir.appendingPathComponent("shard-status").path
        for cmd in ["verify", "audit"] {
            try? FileManager.default.removeItem(atPath: status)
            let b = try CLI.run([cmd, "--list"] + Self.selection,
                                env: ["TEST_TOTAL_SHARDS": "4", "TEST_SHARD_INDEX": "2", "TEST_SHARD_STATUS_FILE": status])
            #expect(lines(b.out) == lines(try CLI.run(["verify", "--list", "--shard", "3/4"] + Self.selection).out), "\(cmd)")
            #expect(FileManager.default.fileExists(atPath: status), "\(cmd) did not touch TEST_SHARD_STATUS_FILE")
        }
        let bad = try CLI.run(["verify", "--list"], env: ["TEST_TOTAL_SHARDS": "4", "TEST_SHARD_INDEX": "4"])
        #expect(bad.status == 2 && bad.err.contains("shard 5/4 does not exist"), "\(bad.err)")
    }

    /// The acceptance test: `verify --shard K/N` for K = 1…N, merged, equals the unsharded run —
    /// every (case, implementation) verdict, ratio and output digest, and each implementation's digest.
    @Test func mergedVerifyShardsEqualTheUnshardedRun() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("shards")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sel = Self.selection + ["--exclude", "f16", "--exclude", "bf16"]
        let full = dir.appendingPathComponent("full.json")
        #expect(try CLI.run(["verify", "--json", full.path] + sel).status == 0)
        var parts: [String] = []
        for k in 1...3 {
            let p = dir.appendingPathComponent("shard\(k).json").path
            let r = try CLI.run(["verify", "--shard", "\(k)/3", "--json", p] + sel)
            #expect(r.status == 0 && r.out.contains("(shard \(k)/3)"), "\(r.out)")
            parts.append(p)
        }
        let merged = dir.appendingPathComponent("merged.json")
        let m = try CLI.run(["merge", "--json", merged.path, "--digest"] + parts.reversed())
        #expect(m.status == 0, "\(m.err)")
        let a = try ReportMerge.load(Verification.Report.self, Data(contentsOf: full), path: "full", schema: ReportFormat.verifySchema)
        let b = try ReportMerge.load(Verification.Report.self, Data(contentsOf: merged), path: "merged", schema: ReportFormat.verifySchema)
        func key(_ r: CaseResult) -> String { "\(r.caseID) \(r.implementation) \(r.status) \(r.worstRatio) \(r.digest ?? "-") \(r.detail)" }
        #expect(a.cases.count == b.cases.count && a.cases.count > 100)
        #expect(a.cases.map(key) == b.cases.map(key))
        #expect(a.implementations.map { "\($0.name) \($0.passed) \($0.failed) \($0.skipped) \($0.worstRatio) \($0.digest ?? "")" }
                == b.implementations.map { "\($0.name) \($0.passed) \($0.failed) \($0.skipped) \($0.worstRatio) \($0.digest ?? "")" })
        #expect(a.ok == b.ok && b.shard == nil && b.goldenSHA256 == a.goldenSHA256)
        // The digests merge prints are the unsharded run's.
        for s in a.implementations { #expect(m.out.contains(s.digest ?? "?"), "\(s.name)") }
    }

    /// Audit shards merge to the unsharded audit (JSON, JUnit, HTML); what must not be merged is refused.
    @Test func auditMergeAndRefusals() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("merge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pattern = "*4x3x5x5*pytorch*"
        let results = dir.appendingPathComponent("results")
        let ids = try CLI.ids(pattern)
        try CLI.record(ids, to: results) { id, name, e, t in id == ids[3] && name == "running_mean" ? e.map { $0 + 1 } : nil }
        func audit(_ extra: [String], profile: String = "pytorch") throws -> (CLI.Run, String) {
            let p = dir.appendingPathComponent("\(UUID().uuidString).json").path
            return (try CLI.run(["audit", "--results", results.path, "--profile", profile, "--match", pattern, "--json", p] + extra), p)
        }
        let (whole, wholePath) = try audit([])
        #expect(whole.status == 1)
        let shards = try (1...3).map { k in try audit(["--shard", "\(k)/3"]) }
        let merged = dir.appendingPathComponent("merged")
        let m = try CLI.run(["merge", "--json", "\(merged.path).json", "--junit", "\(merged.path).xml", "--html", "\(merged.path).html"] + shards.map(\.1))
        #expect(m.status == 1 && m.out.contains("audit: \(ids.count - 1) passed, 1 failed, 0 skipped"), "\(m.out)\(m.err)")
        let a = try CLI.json(URL(fileURLWithPath: wholePath)), b = try CLI.json(URL(fileURLWithPath: "\(merged.path).json"))
        func verdicts(_ o: [String: Any]) -> [String] {
            (o["results"] as? [[String: Any]] ?? []).map { "\($0["case"] ?? "") \($0["status"] ?? "") \($0["worst_ratio"] ?? "") \($0["detail"] ?? "")" }
        }
        #expect(verdicts(a) == verdicts(b) && verdicts(a).count == ids.count)
        #expect(FileManager.default.fileExists(atPath: "\(merged.path).xml") && FileManager.default.fileExists(atPath: "\(merged.path).html"))

        // A shard that holds none of the selected cases writes a report without results; it merges.
        let one = ids[0], k = Int(Shard.fnv1a(one) % 2) + 1
        let lone = try (1...2).map { j -> (CLI.Run, String) in
            let p = dir.appendingPathComponent("lone\(j).json").path
            return (try CLI.run(["audit", "--results", results.path, "--profile", "pytorch", "--case", one, "--shard", "\(j)/2", "--json", p]), p)
        }
        #expect(lone[2 - k].0.status == 0 && lone[2 - k].0.out.contains("holds no case"), "\(lone[2 - k].0.out)")
        let m2 = try CLI.run(["merge"] + lone.map(\.1))
        #expect(m2.status == 0 && m2.out.contains("audit: 1 passed, 0 failed, 0 skipped"), "\(m2.out)\(m2.err)")

        func refused(_ paths: [String], _ text: String, extra: [String] = []) throws {
            let r = try CLI.run(["merge"] + extra + paths)
            #expect(r.status == 2 && r.errLines.count == 1 && r.err.contains(text), "\(r.err)")
        }
        try refused([shards[0].1, shards[1].1], "shard 3 of 3 missing")
        let partial = try CLI.run(["merge", "--partial", shards[0].1, shards[1].1])
        #expect(partial.status != 2 && partial.out.contains("partial: 1,2/3"), "\(partial.out)\(partial.err)")
        try refused([shards[0].1, shards[0].1, shards[2].1], "is in both")
        try refused([wholePath, shards[0].1], "some reports are shards and some are not")
        let (_, keras) = try audit(["--shard", "3/3"], profile: "keras")
        try refused([shards[0].1, shards[1].1, keras], "another profile")
        // Another golden manifest (here: the report says so).
        var other = try CLI.json(URL(fileURLWithPath: shards[2].1))
        other["golden_sha256"] = String(repeating: "0", count: 64)
        let otherPath = dir.appendingPathComponent("other.json").path
        try JSONSerialization.data(withJSONObject: other).write(to: URL(fileURLWithPath: otherPath))
        try refused([shards[0].1, shards[1].1, otherPath], "another golden manifest")
        let verify = dir.appendingPathComponent("verify.json").path
        _ = try CLI.run(["verify", "--implementation", "fused", "--case", ids[0], "--json", verify])
        try refused([shards[0].1, verify], "is a bnspec-verify-report/1 report")
        // Shards of different selections (an outside red team's: --exclude one failing case in
        // one shard, another in the other, merged to a pass with both missing).
        let (_, narrower) = try audit(["--shard", "3/3", "--exclude", ids[3]])
        try refused([shards[0].1, shards[1].1, narrower], "another case selection (match=\(pattern); exclude=\(ids[3]))")
        #expect(try CLI.json(URL(fileURLWithPath: shards[0].1))["selection"] as? String == "match=\(pattern)")
    }

    /// docs/ci/bnspec_test.sh (the sh_test of docs/ci/BUILD.bazel) run as `bazel test` runs its
    /// shards — TEST_TOTAL_SHARDS, TEST_SHARD_INDEX, TEST_SHARD_STATUS_FILE, XML_OUTPUT_FILE,
    /// TEST_UNDECLARED_OUTPUTS_DIR set — with the NumPy adapter's one-pass-variance mutant: every
    /// shard touches the status file and writes its JUnit, and the merged report is the unsharded
    /// audit's, likely causes included (the audit-wide variance-growth fit runs over every case again).
    @Test func documentedBazelTestShardsMergeToTheWholeAudit() throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        let dir = try CLI.scratch("bazel-test")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pattern = "*4x3x5x5*pytorch*", n = 3
        var reports: [String] = []
        for index in 0..<n {
            let status = dir.appendingPathComponent("status-\(index)").path, xml = dir.appendingPathComponent("test-\(index).xml").path
            let r = try CLI.run([CLI.root.appendingPathComponent("docs/ci/bnspec_test.sh").path], exe: "/bin/bash", env: [
                "BNSPEC": CLI.bnspec, "BNSPEC_HOME": CLI.root.path, "BNSPEC_ADAPTER": "\(python) tools/adapters/numpy_mutant.py one-pass-variance",
                "BNSPEC_AUDIT_ARGS": "--match \(pattern)", "TEST_TOTAL_SHARDS": "\(n)", "TEST_SHARD_INDEX": "\(index)",
                "TEST_SHARD_STATUS_FILE": status, "XML_OUTPUT_FILE": xml, "TEST_UNDECLARED_OUTPUTS_DIR": dir.path])
            #expect(r.status <= 1, "shard \(index): \(r.out)\(r.err)")
            #expect(FileManager.default.fileExists(atPath: status) && FileManager.default.fileExists(atPath: xml), "shard \(index)")
            reports.append(dir.appendingPathComponent("audit-shard-\(index + 1)-of-\(n).json").path)
        }
        let merged = dir.appendingPathComponent("merged.json"), whole = dir.appendingPathComponent("whole.json")
        let m = try CLI.run(["merge", "--json", merged.path] + reports)
        let w = try CLI.run(["audit", "--adapter", "\(python) tools/adapters/numpy_mutant.py one-pass-variance", "--profile", "pytorch",
                             "--match", pattern, "--json", whole.path])
        #expect(m.status == 1 && w.status == 1, "\(m.err)\(w.err)")
        let a = try CLI.json(whole), b = try CLI.json(merged)
        func rows(_ o: [String: Any]) -> [String] {
            (o["results"] as? [[String: Any]] ?? []).map { "\($0["case"] ?? "") \($0["status"] ?? "") \($0["likely_cause"] ?? "-") \($0["evidence"] ?? "-")" }
        }
        let ids = try CLI.ids(pattern)
        #expect(rows(a) == rows(b) && rows(a).count == ids.count)
        #expect((a["causes"] as? [String: Int]) == (b["causes"] as? [String: Int]) && !(a["causes"] as? [String: Int] ?? [:]).isEmpty)
        func canonical(_ v: Any?) throws -> Data { try JSONSerialization.data(withJSONObject: v ?? NSNull(), options: [.sortedKeys, .fragmentsAllowed]) }
        let growthA = try canonical(a["variance_growth"]), growthB = try canonical(b["variance_growth"])
        #expect(a["variance_growth"] != nil && growthA == growthB, "\(String(decoding: growthA, as: UTF8.self)) vs \(String(decoding: growthB, as: UTF8.self))")
        #expect(!(String(data: try Data(contentsOf: whole), encoding: .utf8) ?? "").contains("fit_inputs"), "a whole audit's JSON keeps no fit inputs")
    }

    /// `generate --check --shard K/N` checks the shard's case folders: a changed file is found by
    /// the shard that holds its case, and only by it.
    /// A selection's --check reads the folder's manifest too (round J, an outside red team's: a
    /// truncated or edited manifest passed `generate --check --case ID`): the selected case's
    /// entries must give each regenerated file's SHA-256.
    @Test func generateCheckOfASelectionReadsTheManifest() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("gencheck-manifest")
        defer { try? FileManager.default.removeItem(at: dir) }
        let catalog = dir.appendingPathComponent("c.txt"), golden = dir.appendingPathComponent("golden")
        try Data("suite default\ntrain data=normal shape=2x3x2x2\n".utf8).write(to: catalog)
        #expect(try CLI.run(["generate", "--catalog", catalog.path, "--out", golden.path]).status == 0)
        let id = try #require(try FileManager.default.contentsOfDirectory(atPath: golden.path).first { $0.hasPrefix("train.") })
        let check = ["generate", "--check", "--catalog", catalog.path, "--out", golden.path, "--case", id]
        #expect(try CLI.run(check).status == 0)
        let manifest = golden.appendingPathComponent("manifest.json")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        // One file's digest changed (its file untouched): the check fails, naming it.
        let entry = try #require(text.range(of: "\"\(id)/x.npy\" : \"[0-9a-f]{64}", options: .regularExpression))
        let digest = try #require(text.range(of: "[0-9a-f]{64}", options: .regularExpression, range: entry))
        try text.replacingCharacters(in: digest, with: String(repeating: "0", count: 64)).write(to: manifest, atomically: true, encoding: .utf8)
        let edited = try CLI.run(check)
        #expect(edited.status == 1 && edited.out.contains("manifest: ") && edited.out.contains("has another SHA-256"), "\(edited.out)\(edited.err)")
        // Truncated: one line, exit 2.
        try Data(text.utf8.prefix(text.utf8.count / 2)).write(to: manifest)
        let truncated = try CLI.run(check)
        #expect(truncated.status == 2 && BNError.isErrorLine(truncated.err), "\(truncated.out)\(truncated.err)")
    }

    @Test func generateCheckBySharding() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("gencheck")
        defer { try? FileManager.default.removeItem(at: dir) }
        let golden = dir.appendingPathComponent("golden")
        let ids = try CLI.ids("train.normal.4x3x5x5.N*.f32.pytorch*")
        try FileManager.default.createDirectory(at: golden, withIntermediateDirectories: true)
        for id in ids { try FileManager.default.copyItem(at: CLI.golden.appendingPathComponent(id), to: golden.appendingPathComponent(id)) }
        let victim = ids[0]
        let tol = golden.appendingPathComponent("\(victim)/tolerance_y.npy")
        var bytes = try Data(contentsOf: tol)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: tol)
        let holder = Int(Shard.fnv1a(victim) % 5) + 1
        for k in 1...5 {
            let r = try CLI.run(["generate", "--check", "--out", golden.path, "--shard", "\(k)/5"] + ids.flatMap { ["--case", $0] })
            if k == holder {
                #expect(r.status == 1 && r.out.contains("differs: \(victim)/tolerance_y.npy"), "\(r.out)\(r.err)")
            } else {
                #expect(r.status == 0, "shard \(k): \(r.out)\(r.err)")
            }
        }
    }
}
