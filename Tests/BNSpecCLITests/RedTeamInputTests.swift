import BNGolden
import Foundation
import Testing

/// What an outside reviewer's attacks on the command line found (stop 37), each now refused with
/// one line before any work: a golden folder is checked whole (every file the manifest lists,
/// its format), `generate --force` replaces only a golden folder holding nothing else, two
/// outputs never name one file, a merge never writes over its own input nor accepts a report
/// holding a case twice, control characters in an argument stay on the error's one line,
/// unbounded or empty work is refused, and a kernel library's banner on stdout does not break
/// the protocol.
@Suite struct RedTeamInputTests {
    static let caseID = "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"

    /// A copy of the checkout's golden folder, removed by the caller.
    static func goldenCopy() throws -> URL {
        let dir = try CLI.scratch("golden")
        let copy = dir.appendingPathComponent("g")
        try FileManager.default.copyItem(at: CLI.root.appendingPathComponent("golden"), to: copy)
        return copy
    }

    static func expectOneLine(_ r: CLI.Run, status: Int32, _ text: String, _ what: String) {
        #expect(r.status == status, "\(what): status \(r.status), \(r.err)")
        #expect(r.errLines.count == 1 && r.errLines.first?.hasPrefix("bnspec: error: ") == true && r.err.contains(text), "\(what): \(r.err)")
    }

    /// A byte of a file that no case run reads (the tolerance arrays, request.json, README.md), a
    /// selected case's file removed, and a manifest format this bnspec does not read: verify and
    /// audit refuse the folder.
    @Test func goldenFolderIsCheckedWhole() throws {
        guard CLI.isBuilt() else { return }
        for file in ["\(Self.caseID)/tolerance_y.npy", "\(Self.caseID)/request.json", "README.md"] {
            let g = try Self.goldenCopy()
            defer { try? FileManager.default.removeItem(at: g.deletingLastPathComponent()) }
            let url = g.appendingPathComponent(file)
            var bytes = try Data(contentsOf: url)
            bytes[bytes.count - 2] ^= 0x01
            try bytes.write(to: url)
            Self.expectOneLine(try CLI.run(["verify", "--golden", g.path, "--implementation", "scalar", "--case", Self.caseID]), status: 2,
                               "does not match the manifest", "verify, \(file)")
            Self.expectOneLine(try CLI.run(["audit", "--results", g.path, "--profile", "pytorch", "--golden", g.path, "--case", Self.caseID]),
                               status: 2, "does not match the manifest", "audit, \(file)")
        }
        let gone = try Self.goldenCopy()
        defer { try? FileManager.default.removeItem(at: gone.deletingLastPathComponent()) }
        try FileManager.default.removeItem(at: gone.appendingPathComponent("\(Self.caseID)/tolerance_y.npy"))
        Self.expectOneLine(try CLI.run(["verify", "--golden", gone.path, "--implementation", "scalar", "--case", Self.caseID]), status: 2,
                           "listed in the manifest but missing", "verify, a file removed")
        let g = try Self.goldenCopy()
        defer { try? FileManager.default.removeItem(at: g.deletingLastPathComponent()) }
        let m = g.appendingPathComponent("manifest.json")
        let text = try String(contentsOf: m, encoding: .utf8)
        try text.replacingOccurrences(of: #""format"\s*:\s*1"#, with: "\"format\": 99", options: .regularExpression)
            .write(to: m, atomically: true, encoding: .utf8)
        #expect(try String(contentsOf: m, encoding: .utf8) != text, "the manifest's format field was not found")
        Self.expectOneLine(try CLI.run(["verify", "--golden", g.path]), status: 2, "manifest format 99; this bnspec reads format 1", "format")
    }

    /// A case dropped from the manifest's list, its folder or its files' entries kept, is refused
    /// (an outside red team's "verify: OK — 443 cases"). A case removed whole is a consistent
    /// manifest of a smaller suite (bnspec generate --check and the reports' golden SHA-256 tell).
    @Test func aShrunkManifestIsRefused() throws {
        guard CLI.isBuilt() else { return }
        func edited(_ edit: (inout [String: Any], URL) throws -> Void) throws -> CLI.Run {
            let g = try Self.goldenCopy()
            defer { try? FileManager.default.removeItem(at: g.deletingLastPathComponent()) }
            let m = g.appendingPathComponent("manifest.json")
            var obj = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: m)) as? [String: Any])
            try edit(&obj, g)
            try JSONSerialization.data(withJSONObject: obj).write(to: m)
            return try CLI.run(["verify", "--golden", g.path, "--implementation", "scalar", "--calibration", "none"])
        }
        func dropCase(_ obj: inout [String: Any]) { obj["cases"] = (obj["cases"] as? [String] ?? []).filter { $0 != Self.caseID } }
        func dropFiles(_ obj: inout [String: Any]) { obj["files"] = (obj["files"] as? [String: Any] ?? [:]).filter { !$0.key.hasPrefix(Self.caseID + "/") } }
        Self.expectOneLine(try edited { o, _ in dropCase(&o) }, status: 2, "belongs to no listed case", "case dropped, files kept")
        Self.expectOneLine(try edited { o, _ in dropCase(&o); dropFiles(&o) }, status: 2, "which the manifest does not list", "case dropped, folder kept")
        // Removed whole (folder, list entry, files) the manifest is consistent again: generate --check
        // names the missing case, and every report's golden SHA-256 differs from the suite's.
        let r = try edited { o, g in dropCase(&o); dropFiles(&o); try FileManager.default.removeItem(at: g.appendingPathComponent(Self.caseID)) }
        #expect(r.status == 0 && !r.out.contains(Self.caseID), "\(r.out)\(r.err)")
    }

    /// An NPY header whose shape has the right count but other dimensions, with the manifest's
    /// hash updated to match (a consistent edit): the case does not load.
    @Test func headerShapeIsChecked() throws {
        guard CLI.isBuilt() else { return }
        let g = try Self.goldenCopy()
        defer { try? FileManager.default.removeItem(at: g.deletingLastPathComponent()) }
        let rel = "\(Self.caseID)/x.npy", url = g.appendingPathComponent(rel)
        let original = try Data(contentsOf: url)
        let header = try #require(String(data: original.prefix(128), encoding: .isoLatin1))
        #expect(header.contains("(4, 3, 5, 5)"))
        let edited = try #require(header.replacingOccurrences(of: "(4, 3, 5, 5)", with: "(3, 4, 5, 5)").data(using: .isoLatin1))
            + original.dropFirst(128)
        try edited.write(to: url)
        let m = g.appendingPathComponent("manifest.json")
        let text = try String(contentsOf: m, encoding: .utf8)
        let fixed = text.replacingOccurrences(of: SHA256.hex(original), with: SHA256.hex(edited))
        #expect(fixed != text)
        try fixed.write(to: m, atomically: true, encoding: .utf8)
        Self.expectOneLine(try CLI.run(["verify", "--golden", g.path, "--implementation", "scalar", "--case", Self.caseID]), status: 2,
                           "has shape [3, 4, 5, 5], case.json implies [4, 3, 5, 5]", "header shape")
    }

    /// --force replaces a golden folder, not a folder whose manifest.json is not one, nor a golden
    /// folder holding a file of the user's; either stays as it was.
    @Test func forceReplacesOnlyAGoldenFolder() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("force")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = dir.appendingPathComponent("fake")
        try FileManager.default.createDirectory(at: fake, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: fake.appendingPathComponent("manifest.json"))
        try Data("mine".utf8).write(to: fake.appendingPathComponent("keep.txt"))
        Self.expectOneLine(try CLI.run(["generate", "--out", fake.path, "--force"]), status: 2, "is not a bnspec manifest", "fake manifest")
        #expect(FileManager.default.fileExists(atPath: fake.appendingPathComponent("keep.txt").path))
        let g = try Self.goldenCopy()
        defer { try? FileManager.default.removeItem(at: g.deletingLastPathComponent()) }
        try Data("mine".utf8).write(to: g.appendingPathComponent(Self.caseID).appendingPathComponent("notes.txt"))
        Self.expectOneLine(try CLI.run(["generate", "--out", g.path, "--force"]), status: 2, "holds 1 file its manifest does not list (\(Self.caseID)/notes.txt)", "extra file")
        #expect(FileManager.default.fileExists(atPath: g.appendingPathComponent(Self.caseID).appendingPathComponent("notes.txt").path))
    }

    /// `inf` timeouts mean no limit (help: "inf: no limit"), in the audit through an adapter and a
    /// library. An outside red team's: `--timeout inf` with `--case-timeout inf` trapped (exit 132),
    /// a deadline past what the condition variable's timespec holds.
    @Test func infiniteTimeoutsMeanNoLimit() throws {
        guard CLI.isBuilt(), let python = try CLI.pythonWithNumPy() else { return }
        let inf = ["--case-timeout", "inf", "--start-timeout", "inf", "--timeout", "inf", "--case", Self.caseID, "--profile", "pytorch"]
        let r = try CLI.run(["audit", "--adapter", "\(python) tools/adapters/numpy_bn.py"] + inf)
        #expect(r.status == 0 && r.out.contains("audit: 1 passed, 0 failed"), "\(r.status) \(r.out.suffix(200)) \(r.err.suffix(300))")
        let huge = try CLI.run(["audit", "--adapter", "\(python) tools/adapters/numpy_bn.py", "--start-timeout", "1e300", "--timeout", "1e300",
                                "--case", Self.caseID, "--profile", "pytorch"])
        #expect(huge.status == 0 && huge.out.contains("audit: 1 passed, 0 failed"), "\(huge.status) \(huge.err.suffix(300))")
    }

    @Test(arguments: [
        (["audit", "--results", "/tmp", "--profile", "pytorch", "--json", "/tmp/r.out", "--junit", "/tmp/./r.out"], "--json and --junit name the same file"),
        (["merge", "/tmp/a.json", "/tmp/b.json", "--json", "/tmp/a.json"], "--json /tmp/a.json is one of the reports being merged"),
        (["audit", "--results", "README.md", "--profile", "pytorch"], "--results README.md is a file"),
        (["audit", "--adapter", "true", "--profile", "pytorch", "--name", "x"], "--name applies to --results only"),
        (["audit", "--adapter", "true", "--profile", "pytorch", "--symbol-prefix", "x_"], "--symbol-prefix applies to --library only"),
        (["fingerprint", "--adapter", "true", "--case-timeout", "nan"], "timeouts must be positive"),
        (["audit", "--library", "/tmp/x.so", "--profile", "pytorch", "--symbol-prefix", "x\ny"], "--symbol-prefix 'x\\x0ay' is not the start of a C identifier"),
        (["fingerprint", "--library", "/tmp/x.so", "--symbol-prefix", "9x"], "--symbol-prefix '9x' is not the start of a C identifier"),
        (["accuracy", "--trials", "9223372036854775807"], "--trials must be in 1…10000"),
        // Numbers out of range are usage errors in every command (bench and verify exited 2).
        (["bench", "--threads", "100000000", "--quick"], "--threads must be in 1…256 (got 100000000)"),
        (["bench", "--threads", "0", "--quick"], "--threads must be in 1…256 (got 0)"),
        (["bench", "--min-time", "inf", "--quick"], "--min-time must be more than 0 and at most 3600 s"),
        (["bench", "--rounds", "0", "--quick"], "--rounds must be in 1…1000 (got 0)"),
        (["verify", "--threads", "0"], "--threads must be in 1…256 (got 0)"),
        (["oracle", "--threads", "257"], "--threads must be in 1…256 (got 257)"),
        // Outputs inside a folder the command reads (an outside red team's: a report in a case
        // folder failed that case on the next run; an export inside golden/).
        (["verify", "--json", "golden/new.json"], "--json golden/new.json is inside the golden folder"),
        (["export", "--out", "golden/sub"], "--out golden/sub is inside the golden folder"),
        (["audit", "--results", "Tests", "--profile", "pytorch", "--json", "Tests/r.json"], "--json Tests/r.json is inside the results folder"),
    ])
    func refusedAsUsage(args: [String], text: String) throws {
        guard CLI.isBuilt() else { return }
        Self.expectOneLine(try CLI.run(args), status: 64, text, args.joined(separator: " "))
    }

    @Test(arguments: [
        (["bench", "--shape", "0x3x4x4", "--quick"], "has no elements per channel"),
        (["verify", "--golden", "/tmp/no\nsuch\u{1b}[2J"], "/tmp/no\\x0asuch\\x1b[2J: no such folder"),
        (["bench", "--shape=-1x3x4x4", "--quick"], "has a negative batch size N"),
        // A shape the machine cannot hold (an outside red team's: an allocation trap with a backtrace).
        (["bench", "--shape", "1000000x1000000x1x1", "--quick"], "needs 11444091 MiB of memory for its three float32 tensors"),
        // An empty dimension is no dimension (round F: 2x3x4x ran as 2x3x4, 2x3x4xx4 as 2x3x4x4).
        (["bench", "--shape", "2x3x4x", "--quick"], "shape '2x3x4x' is not N,C[,spatial…] with integer dimensions"),
        (["bench", "--shape", "2x3x4xx4", "--quick"], "shape '2x3x4xx4' is not N,C[,spatial…] with integer dimensions"),
        (["generate", "--out", ""], "an empty path where a folder is expected"),  // it wrote into the current folder
    ])
    func refusedBeforeWork(args: [String], text: String) throws {
        guard CLI.isBuilt() else { return }
        Self.expectOneLine(try CLI.run(args), status: 2, text, args.joined(separator: " "))
    }

    /// A merge input holding one case twice (an edited or concatenated report) is corrupt.
    @Test func mergeRefusesACaseTwiceInOneReport() throws {
        guard CLI.isBuilt(), let python = try CLI.pythonWithNumPy() else { return }
        let dir = try CLI.scratch("merge-dup")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.json"), b = dir.appendingPathComponent("b.json")
        for (k, url) in [(1, a), (2, b)] {
            let r = try CLI.run(["audit", "--adapter", "\(python) tools/adapters/numpy_bn.py", "--profile", "pytorch", "--match", "*4x3x5x5*",
                                 "--shard", "\(k)/2", "--json", url.path])
            #expect(r.status == 0, "\(r.err)")
        }
        #expect(try CLI.run(["merge", a.path, b.path]).status == 0)
        let original = try Data(contentsOf: b)
        func tampered(_ edit: (inout [String: Any]) throws -> Void) throws -> CLI.Run {
            var obj = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
            try edit(&obj)
            try JSONSerialization.data(withJSONObject: obj).write(to: b)
            return try CLI.run(["merge", a.path, b.path])
        }
        Self.expectOneLine(try tampered { obj in
            var results = try #require(obj["results"] as? [Any]); results.append(results[0]); obj["results"] = results
        }, status: 2, "appears twice in this report; not merged", "duplicate")
        // A second outside red team's (stop 41): a case lost from a shard merged into a smaller
        // suite; a case the manifest lacks was blamed on the first report; another bnspec
        // version merged silently; a bare NaN gave "is a none (… is not a bnspec JSON report) report".
        Self.expectOneLine(try tampered { obj in
            var results = try #require(obj["results"] as? [Any]); results.removeLast(); obj["results"] = results
        }, status: 2, "\(b.path): corrupt: lists", "a case lost")
        Self.expectOneLine(try tampered { obj in
            var results = try #require(obj["results"] as? [[String: Any]]); results[0]["case"] = "train.bogus"; obj["results"] = results
        }, status: 2, "\(b.path): case 'train.bogus' is not in the golden manifest", "an unknown case")
        // Round F: the lost case with the shard's own counts edited to match merged one case short.
        Self.expectOneLine(try tampered { obj in
            var results = try #require(obj["results"] as? [[String: Any]]); results.removeLast(); obj["results"] = results
            obj["selected"] = results.count
            obj["passed"] = results.filter { $0["status"] as? String == "passed" }.count
        }, status: 2, "of its shard 2/2 of the selection (match=*4x3x5x5*); not merged", "a case lost, counts edited")
        Self.expectOneLine(try tampered { obj in obj["bnspec_version"] = "0.0.1" }, status: 2, "has another bnspec version", "another version")
        try Data("NaN".utf8).write(to: b)
        Self.expectOneLine(try CLI.run(["merge", a.path, b.path]), status: 2, "\(b.path): corrupt: not a BNSpec JSON report", "not JSON")
    }

    /// Shards that each stopped at their own --maxfail are not the unsharded run (which stops at
    /// the first failures of the whole selection): merge refuses them (an outside red team's:
    /// 15 failed and 417 not run were merged where the unsharded run had 5 and 429).
    @Test func mergeRefusesShardsStoppedByMaxfail() throws {
        guard CLI.isBuilt(), let python = try CLI.pythonWithNumPy() else { return }
        let dir = try CLI.scratch("merge-maxfail")
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = (1...2).map { dir.appendingPathComponent("s\($0).json").path }
        for (k, path) in paths.enumerated() {
            let r = try CLI.run(["audit", "--adapter", "\(python) tools/adapters/numpy_mutant.py eps-outside-sqrt", "--profile", "pytorch",
                                 "--match", "train.normal.4x3x5x5*", "--maxfail", "1", "--shard", "\(k + 1)/2", "--json", path])
            #expect(r.status == 1, "\(r.err)")
        }
        Self.expectOneLine(try CLI.run(["merge"] + paths), status: 2, "stopped early by --maxfail", "maxfail shards")
    }

    /// A second red team's (stop 40): a report flag naming a symbolic link to the file another
    /// flag names (not yet written) is the same file; a FIFO given as --library is refused
    /// before the host opens it; a returned output larger than an NPY of the case's element
    /// count can be is refused from its size, not read (a header declaring 2²⁸ elements).
    @Test func symlinkAliasFifoLibraryAndOversizedOutput() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("red-team-b")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.out"), link = dir.appendingPathComponent("link.out")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "a.out")
        Self.expectOneLine(try CLI.run(["audit", "--results", dir.path, "--profile", "pytorch", "--json", a.path, "--junit", link.path]),
                           status: 64, "--json and --junit name the same file", "symlink alias")
        let fifo = dir.appendingPathComponent("lib.so")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        Self.expectOneLine(try CLI.run(["audit", "--library", fifo.path, "--profile", "pytorch"]), status: 2,
                           "lib.so: is not a regular file", "FIFO library")
        let results = dir.appendingPathComponent("results").appendingPathComponent(Self.caseID)
        try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (268435456,), }"
        header += String(repeating: " ", count: 117 - header.utf8.count) + "\n"
        var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0]); npy.append(Data(header.utf8))
        let y = results.appendingPathComponent("y.npy")
        try npy.write(to: y)
        let h = try FileHandle(forWritingTo: y); try h.truncate(atOffset: UInt64(npy.count) + 4 << 28); try h.close()  // sparse: 1 GiB
        let r = try CLI.run(["audit", "--results", results.deletingLastPathComponent().path, "--profile", "pytorch", "--case", Self.caseID])
        #expect(r.status == 1 && r.out.contains("output 'y'") && r.out.contains("is 1073741952 bytes, over the limit"), "\(r.out)\(r.err)")
    }

    /// case.json with an eps that contradicts its id, the manifest re-hashed to match (a second
    /// red team's): corrupt, one line, before any case (verify had failed the reference column
    /// and audit blamed the implementation).
    @Test func caseParametersMustGiveItsID() throws {
        guard CLI.isBuilt() else { return }
        let g = try Self.goldenCopy()
        defer { try? FileManager.default.removeItem(at: g.deletingLastPathComponent()) }
        let rel = "\(Self.caseID)/case.json"
        let url = g.appendingPathComponent(rel)
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.contains("\"eps\" : 1e-05"))
        try text.replacingOccurrences(of: "\"eps\" : 1e-05", with: "\"eps\" : 0.001").write(to: url, atomically: true, encoding: .utf8)
        let manifestURL = g.appendingPathComponent("manifest.json")
        let old = try String(contentsOf: manifestURL, encoding: .utf8)
        let before = SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: CLI.root.appendingPathComponent("golden").appendingPathComponent(rel).path)))
        #expect(old.contains(before))
        try old.replacingOccurrences(of: before, with: SHA256.hex(try Data(contentsOf: url))).write(to: manifestURL, atomically: true, encoding: .utf8)
        Self.expectOneLine(try CLI.run(["verify", "--golden", g.path, "--case", Self.caseID]), status: 2,
                           "its parameters (op, data, shape, layout, dtype, profile, eps, momentum…) give the id 'train.normal.4x3x5x5.NCHW.f32.pytorch.eps0.001.m0.1', not its own", "eps edited")
    }
}
