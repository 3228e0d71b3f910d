import BNAudit
import BNCore
import BNGolden
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// What a CI system reads from bnspec (issue 16): the exit status — 0 passed, 1 an implementation
/// failed a case, 2 the run could not be completed as asked, 64 usage — with one line on stderr;
/// JUnit that tells an error (refusal, crash, missing output) from a failure (numbers), with a
/// time on every testcase; JSON with its schema, version and golden manifest, numbers as numbers
/// and non-finite values as "inf"/"-inf"/"nan"; progress lines when stderr is not a terminal;
/// --maxfail; --baseline with --max-growth.
@Suite struct ExitStatusAndReportTests {
    static let pytorch = "*4x3x5x5*pytorch*"
    static let train = "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"
    static let infer = "infer.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"
    static let refusal = "train.normal.1x4x1x1.NCHW.f32.pytorch.eps1e-05.m0.1"

    /// `audit --results DIR --profile pytorch` with extra arguments.
    func audit(_ results: URL, _ args: [String]) throws -> CLI.Run {
        try CLI.run(["audit", "--results", results.path, "--profile", "pytorch"] + args)
    }

    @Test(arguments: [
        (["verify", "--nope"], "Unknown option '--nope'"),
        (["audit", "--profile", "pytorch"], "give exactly one of --adapter CMD, --library PATH or --results DIR"),
        (["audit", "--results", "/tmp"], "--profile P is required"),
        (["verify", "--shard", "0/3"], "shard 0/3 does not exist"),
        (["verify", "--shard", "two"], "--shard takes K/N"),
        (["verify", "--calibration", "some"], "unknown --calibration 'some' (expected auto, all or none)"),
        (["audit", "--results", "/tmp", "--profile", "pytorch", "--maxfail", "0"], "--maxfail takes a positive number"),
        (["audit", "--results", "/tmp", "--profile", "pytorch", "--max-growth", "2"], "--max-growth compares with a --baseline report"),
        (["export"], "--out DIR is required"),
    ])
    func usageIs64(args: [String], text: String) throws {
        guard CLI.isBuilt() else { return }
        let r = try CLI.run(args)
        #expect(r.status == 64, "\(args): \(r.status) \(r.err)")
        #expect(r.errLines.count == 1 && BNError.isErrorLine(r.err) && r.err.contains(text), "\(r.err)")
        #expect(r.out.isEmpty)
    }

    /// The run cannot be completed as asked: 2, one line, and no report claiming verdicts.
    /// The repro line of an adapter audit run with another --case-timeout carries it: a case
    /// that hung reruns under the same limit (an outside red team's: it had waited the default
    /// minute).
    @Test func reproCarriesTheCaseTimeout() throws {
        guard CLI.isBuilt(), let python = try CLI.pythonWithNumPy() else { return }
        let adapter = "\(python) tools/adapters/faulty.py hang"
        // faulty.py hang answers the first case and hangs on the next.
        let r = try CLI.run(["audit", "--adapter", adapter, "--profile", "pytorch", "--case-timeout", "3", "--match", "train.normal.4x3x5x5.NCHW.f32.p"])
        #expect(r.status == 1, "\(r.err)")
        #expect(r.out.contains("did not answer within 3 s") && r.out.contains("repro: bnspec audit --adapter '\(adapter)' --profile pytorch --case-timeout 3 --case "),
                "\(r.out)")
    }

    /// A repro line names the golden folder BNSPEC_GOLDEN chose, and the results folder and the
    /// golden folder by absolute paths, with every limit that differs from its default (an
    /// outside red team's: such lines reran against other data, or from another directory failed).
    @Test func reproLineIsSelfContained() throws {
        guard CLI.isBuilt(), let python = try CLI.pythonWithNumPy() else { return }
        let dir = try CLI.scratch("repro-context")
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLI.record([Self.train], to: dir.appendingPathComponent("results"))
        let y = dir.appendingPathComponent("results/\(Self.train)/y.npy")
        var bytes = try Data(contentsOf: y); bytes[bytes.count - 1] ^= 0x40; try bytes.write(to: y)
        let r = try CLI.run(["audit", "--results", "results", "--profile", "pytorch", "--case", Self.train], cwd: dir,
                            env: ["BNSPEC_GOLDEN": CLI.golden.path])
        #expect(r.status == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("repro: bnspec audit --results \(Shell.quoted(dir.appendingPathComponent("results").path)) --profile pytorch --golden \(Shell.quoted(CLI.golden.path)) --case \(Self.train)"), "\(r.out)")
        let a = try CLI.run(["audit", "--adapter", "\(python) tools/adapters/numpy_mutant.py gamma-beta-swapped", "--profile", "pytorch",
                             "--case", Self.train, "--timeout", "500", "--start-timeout", "90"])
        #expect(a.status == 1 && a.out.contains("--start-timeout 90 --timeout 500 --case \(Self.train)"), "\(a.out)")
    }

    /// A repro line is read back by a shell as it was given: a golden path with a space and a
    /// quote, an adapter command with a quote (an outside red team's: printed bare, the line
    /// was a shell syntax error). Rerun through /bin/sh it audits exactly that case, which fails again.
    @Test func reproLineRerunsThroughAShell() throws {
        guard CLI.isBuilt(), let python = try CLI.pythonWithNumPy() else { return }
        let dir = try CLI.scratch("repro-quoting")
        defer { try? FileManager.default.removeItem(at: dir) }
        let golden = dir.appendingPathComponent("g o'lden")
        try FileManager.default.createSymbolicLink(at: golden, withDestinationURL: CLI.golden)
        let adapter = "\(python) tools/adapters/numpy_mutant.py gamma-beta-swapped # it's"
        let r = try CLI.run(["audit", "--adapter", adapter, "--profile", "pytorch", "--golden", golden.path, "--case", Self.train])
        #expect(r.status == 1, "\(r.out)\(r.err)")
        let repro = try #require(r.out.split(separator: "\n").first { $0.contains("repro: ") }.map { String($0.split(separator: "repro: ", maxSplits: 1)[1]) })
        #expect(repro.hasPrefix("bnspec audit --adapter '") && repro.hasSuffix("--case \(Self.train)"), "\(repro)")
        let again = try CLI.run(["-c", "exec \(CLI.bnspec)" + repro.dropFirst("bnspec".count)], exe: "/bin/sh")
        #expect(again.status == 1 && again.out.contains("audit: 0 passed, 1 failed, 0 skipped"), "\(again.out)\(again.err)")
    }

    /// Recorded outputs for part of the selection: the cases without a folder are skipped, the
    /// exit status is the judged cases' (0 here), and one stderr line says how many were not
    /// judged (a harness that stopped part-way had passed silently); a full selection says nothing.
    @Test func missingResultFoldersAreSaid() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("missing-results")
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLI.record([Self.train], to: dir)
        let partial = try audit(dir, ["--case", Self.train, "--case", Self.infer])
        #expect(partial.status == 0 && partial.out.contains("audit: 1 passed, 0 failed, 1 skipped"), "\(partial.out)\(partial.err)")
        #expect(partial.errLines.filter { !$0.hasPrefix("audit: ") } == ["bnspec: warning: 1 of 2 selected cases have no folder in \(dir.path): skipped, not judged (select the cases you ran with --match or --case)"],
                "\(partial.err)")
        let whole = try audit(dir, ["--case", Self.train])
        #expect(whole.status == 0 && !whole.err.contains("warning"), "\(whole.err)")
    }

    @Test func couldNotRunIs2() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("exit2")
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = dir.appendingPathComponent("r.json").path
        // Unknown profile; an adapter that does not start; an unknown case id.
        for (args, text) in [(["audit", "--results", dir.path, "--profile", "nope", "--case", Self.train], "unknown profile"),
                             (["audit", "--adapter", "/nonexistent/adapter", "--profile", "pytorch", "--case", Self.train, "--start-timeout", "20",
                               "--json", json], "adapter"),
                             (["verify", "--case", "train.nope"], "no case 'train.nope'")] {
            let r = try CLI.run(args)
            #expect(r.status == 2 && r.errLines.count == 1 && BNError.isErrorLine(r.err) && r.err.contains(text),
                    "\(args): \(r.status) \(r.err)")
        }
        #expect(!FileManager.default.fileExists(atPath: json))
        // Corrupt golden: one flipped byte in a copy.
        let golden = dir.appendingPathComponent("golden")
        let id = Self.train
        try FileManager.default.createDirectory(at: golden, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.golden.appendingPathComponent(id), to: golden.appendingPathComponent(id))
        try FileManager.default.copyItem(at: CLI.golden.appendingPathComponent("manifest.json"), to: golden.appendingPathComponent("manifest.json"))
        let x = golden.appendingPathComponent("\(id)/x.npy")
        var bytes = try Data(contentsOf: x)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: x)
        let corrupt = try CLI.run(["verify", "--golden", golden.path, "--case", id])
        #expect(corrupt.status == 2 && corrupt.errLines.count == 1 && corrupt.err.contains("does not match the manifest"), "\(corrupt.err)")
        // An audit in which no case was checked (nothing recorded): 2, and the JSON says why.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let none = try audit(empty, ["--case", id, "--json", json])
        #expect(none.status == 2 && none.err.contains("no case was checked"), "\(none.err)")
        #expect(try CLI.json(URL(fileURLWithPath: json))["skipped"] as? Int == 1)
    }

    /// 0 when every case passes, 1 when one fails; JUnit `<failure>` for the numbers, `<error>` for
    /// a refusal or a missing output, every testcase timed; the JSON envelope and number encoding.
    @Test func verdictsJUnitAndJSON() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("verdicts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ids = [Self.train, Self.infer, Self.refusal, "train.offset-1e4.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"]
        let args = ids.flatMap { ["--case", $0] }
        let good = dir.appendingPathComponent("good")
        try CLI.record(ids, to: good)
        #expect(try audit(good, args).status == 0)
        // One numeric failure (y off by 3 tolerances), one refusal, one missing output.
        let bad = dir.appendingPathComponent("bad")
        try CLI.record(ids, to: bad) { id, name, e, t in
            id == Self.train && name == "y" ? e.enumerated().map { $0 == 7 ? $1 + 3 * t[7] : $1 } : nil
        }
        let inferDir = bad.appendingPathComponent(Self.infer)
        try FileManager.default.removeItem(at: inferDir.appendingPathComponent("y.npy"))
        try Data("RuntimeError: no\n".utf8).write(to: inferDir.appendingPathComponent("error.txt"))
        let offsetDir = bad.appendingPathComponent(ids[3])
        try FileManager.default.removeItem(at: offsetDir.appendingPathComponent("running_var.npy"))
        let junit = dir.appendingPathComponent("r.xml"), json = dir.appendingPathComponent("r.json"), html = dir.appendingPathComponent("r.html")
        let r = try audit(bad, args + ["--junit", junit.path, "--json", json.path, "--html", html.path])
        #expect(r.status == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("audit: 1 passed, 3 failed, 0 skipped — 2 of the failures are errors"), "\(r.out)")

        // JUnit: parse it and read every testcase.
        final class Collect: NSObject, XMLParserDelegate {
            var cases: [(name: String, time: String?, child: String?, type: String?)] = []
            var suites: [[String: String]] = []
            func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes a: [String: String]) {
                switch e {
                case "testcase": cases.append((a["name"] ?? "", a["time"], nil, nil))
                case "failure", "error", "skipped": cases[cases.count - 1].child = e; cases[cases.count - 1].type = a["type"]
                case "testsuite", "testsuites": suites.append(a)
                default: break
                }
            }
        }
        let c = Collect()
        let parser = XMLParser(data: try Data(contentsOf: junit))
        parser.delegate = c
        #expect(parser.parse())
        let byName = Dictionary(uniqueKeysWithValues: c.cases.map { ($0.name, $0) })
        #expect(byName[Self.train]?.child == "failure" && byName[Self.train]?.type == "numeric")
        #expect(byName[Self.infer]?.child == "error" && byName[Self.infer]?.type == "refused")
        #expect(byName[ids[3]]?.child == "error" && byName[ids[3]]?.type == "missing-output")
        #expect(byName[Self.refusal]?.child == nil)
        #expect(c.cases.count == 4 && c.cases.allSatisfy { $0.time.flatMap(Double.init).map { $0 >= 0 } == true })
        #expect(c.suites.first { $0["tests"] == "4" }.map { $0["failures"] == "1" && $0["errors"] == "2" && $0["time"] != nil } == true)

        // JSON: envelope, numbers as numbers, ∞ as "inf".
        let obj = try CLI.json(json)
        #expect(obj["schema"] as? String == "bnspec-audit-report/1")
        let version = try CLI.run(["--version"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(obj["bnspec_version"] as? String == version && !version.isEmpty)
        let manifest = try Data(contentsOf: CLI.golden.appendingPathComponent("manifest.json"))
        #expect(obj["golden_sha256"] as? String == SHA256.hex(manifest))
        let results = try #require(obj["results"] as? [[String: Any]])
        let train = try #require(results.first { $0["case"] as? String == Self.train })
        let refused = try #require(results.first { $0["case"] as? String == Self.infer })
        for key in ["worst_ratio", "condition", "seconds", "worst_ulps"] {
            #expect(train[key] is NSNumber && !(train[key] is String), "\(key): \(String(describing: train[key]))")
        }
        #expect(((train["worst_ratio"] as? NSNumber)?.doubleValue ?? 0) > 2.9 && train["beyond"] as? Int == 1 && train["judged"] as? Int == 300)
        #expect(train["worst_at"] as? String == "y[n=0, c=0, h=1, w=2]")  // flat 7 of a 4×3×5×5 NCHW tensor
        #expect(refused["worst_ratio"] as? String == "inf" && refused["fault"] as? String == "refused")

        // The evidence is in every report (spec/AUDIT.md §5): indented under the failure in the
        // terminal, in the HTML failure row (an outside red team's: the terminal and HTML had none).
        let evidence = try #require(train["evidence"] as? [String])
        #expect(evidence.contains { $0.hasPrefix("y: 1 of 300 elements outside tolerance") }, "\(evidence)")
        let lines = r.out.split(separator: "\n").map(String.init)
        let at = try #require(lines.firstIndex { $0.hasPrefix("  \(Self.train): ") })
        #expect(Array(lines[(at + 1)...].prefix(evidence.count)) == evidence.map { "    evidence: " + $0 }, "\(r.out)")
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(page.contains("<details><summary>evidence</summary><ul><li>y: 1 of 300 elements outside tolerance"), "no evidence in the HTML")
    }

    /// A case folder with error.txt and outputs contradicts itself: it fails as an unexpected
    /// output whether or not the case requires a refusal (an outside red team's: the outputs had
    /// been judged on a normal case and the refusal taken on a case requiring one). So do a folder
    /// named error.txt and a dangling link in place of the case's folder.
    @Test func refusalAndOutputsTogetherFail() throws {
        guard CLI.isBuilt() else { return }
        let scratch = try CLI.scratch("refusal-and-outputs")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let dir = scratch.appendingPathComponent("results")
        try CLI.record([Self.train, Self.refusal], to: dir)
        #expect(try audit(dir, ["--case", Self.train, "--case", Self.refusal]).status == 0)
        try Data("refused\n".utf8).write(to: dir.appendingPathComponent("\(Self.train)/error.txt"))
        try FileManager.default.copyItem(at: dir.appendingPathComponent("\(Self.train)/y.npy"),
                                         to: dir.appendingPathComponent("\(Self.refusal)/y.npy"))
        let json = scratch.appendingPathComponent("r.json")
        let r = try audit(dir, ["--case", Self.train, "--case", Self.refusal, "--json", json.path])
        #expect(r.status == 1, "\(r.out)\(r.err)")
        let results = try #require(try CLI.json(json)["results"] as? [[String: Any]])
        #expect(results.count == 2 && results.allSatisfy {
            $0["status"] as? String == "failed" && $0["fault"] as? String == "unexpected-output"
                && ($0["detail"] as? String)?.contains("both error.txt (a refusal) and outputs (") == true
        }, "\(results)")
        // A folder named error.txt is no refusal (it had passed a case requiring one).
        let refusalDir = dir.appendingPathComponent(Self.refusal)
        try FileManager.default.removeItem(at: refusalDir)
        try FileManager.default.createDirectory(at: refusalDir.appendingPathComponent("error.txt"), withIntermediateDirectories: true)
        let f = try audit(dir, ["--case", Self.refusal, "--json", json.path])
        let one = try #require((try CLI.json(json)["results"] as? [[String: Any]])?.first)
        #expect(f.status == 1 && one["fault"] as? String == "unexpected-output"
                && (one["detail"] as? String)?.contains("error.txt is a folder") == true, "\(one)")
        // A link to nothing where the case's folder belongs claims results it does not hold: it
        // had been skipped ("no results"), while bnspec.check failed it.
        let trainDir = dir.appendingPathComponent(Self.train)
        try FileManager.default.removeItem(at: trainDir)
        try FileManager.default.createSymbolicLink(atPath: trainDir.path, withDestinationPath: scratch.appendingPathComponent("nowhere").path)
        let d = try audit(dir, ["--case", Self.train, "--json", json.path])
        let dangling = try #require((try CLI.json(json)["results"] as? [[String: Any]])?.first)
        #expect(d.status == 1 && dangling["status"] as? String == "failed" && dangling["fault"] as? String == "unexpected-output"
                && (dangling["detail"] as? String)?.contains("is not a folder") == true, "\(dangling)")
    }

    /// fingerprint --json: the same envelope; numeric findings are JSON numbers (they were strings).
    @Test func fingerprintValuesAreNumbers() throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        let r = try CLI.run(["fingerprint", "--adapter", "\(python) tools/adapters/numpy_bn.py", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(obj["schema"] as? String == "bnspec-fingerprint/1" && obj["bnspec_version"] is String)
        let eps = (obj["eps"] as? [String: Any])?["value"], momentum = (obj["momentum"] as? [String: Any])?["value"]
        #expect((eps as? NSNumber)?.doubleValue == 1e-5 && !(eps is String), "\(String(describing: eps))")
        #expect((momentum as? NSNumber)?.doubleValue == 0.1 && !(momentum is String), "\(String(describing: momentum))")
        #expect((obj["running_variance"] as? [String: Any])?["value"] as? String == "unbiased")
    }

    /// An adapter whose training y is all NaN: eps, its placement and the closest profile are
    /// "undetermined", the fingerprint completes (an outside red team's: it ended with
    /// "invalid argument: eps nan must be finite", exit 2, as if the user had given that eps).
    @Test func fingerprintOfNaNOutputsIsUndetermined() throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        let r = try CLI.run(["fingerprint", "--adapter", "\(python) tools/adapters/faulty.py nan-output", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        for key in ["eps", "eps_placement", "fp16_statistics", "closest_profile"] {
            #expect((obj[key] as? [String: Any])?["value"] as? String == "undetermined", "\(key): \(String(describing: obj[key]))")
        }
        // The running statistics are right: read as they are.
        #expect((obj["running_variance"] as? [String: Any])?["value"] as? String == "unbiased")
    }

    /// fp16_statistics reads "fp16" only where y overflows as a float16 Σx of 1024 values ≈ 300
    /// must (in any order), "other" for a finite wrong y of the 16-bit path (a float16 y 5 % too
    /// large had been read "fp16"), "fp32" for the honest NumPy adapter.
    @Test(arguments: [("tools/adapters/numpy_bn.py", "fp32"), ("tools/adapters/numpy_mutant.py fp16-accumulation", "fp16"),
                      ("tools/adapters/faulty.py half-y-scaled", "other")])
    func fp16StatisticsReadsOnlyAFloat16Sum(adapter: String, expected: String) throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        let r = try CLI.run(["fingerprint", "--adapter", "\(python) \(adapter)", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let f = obj["fp16_statistics"] as? [String: Any]
        #expect(f?["value"] as? String == expected, "\(adapter): \(String(describing: f))")
    }

    /// Outputs of the wrong size are no answer to a probe (the audit's `wrong-size` rule): one value
    /// per output had trapped the fingerprint on an index (a Swift crash report, exit 132), one
    /// element short had been read as conventions (an outside red team's, round I).
    @Test(arguments: ["scalar-outputs", "wrong-shape"])
    func fingerprintRefusesOutputsOfTheWrongSize(mode: String) throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        let r = try CLI.run(["fingerprint", "--adapter", "\(python) tools/adapters/faulty.py \(mode)"])
        #expect(r.status == 2 && BNError.isErrorLine(r.err)
                && r.err.contains("(wrong size: "), "\(r.status): \(r.err)")
    }

    /// Round G (2026-12-05): a running variance whose Bessel factor is taken over the batch
    /// dimension N alone read "unbiased" on the former 2×C×1×1 probe, where N = n = N·H·W. The
    /// probe has two positions per sample now: neither estimator, and the evidence says which factor.
    @Test func besselFactorOverTheBatchDimensionIsNotReadUnbiased() throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        let r = try CLI.run(["fingerprint", "--adapter", "\(python) tools/adapters/numpy_mutant.py running-variance-bessel-over-batch", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let rv = try #require(obj["running_variance"] as? [String: Any])
        #expect(rv["value"] as? String == "undetermined" && (rv["evidence"] as? String)?.contains("over the batch dimension N = 2 only") == true, "\(rv)")
        // The honest adapter on the same probe: unbiased (fingerprintValuesAreNumbers), and the right momentum here.
        #expect((obj["momentum"] as? [String: Any])?["value"] as? NSNumber == 0.1, "\(String(describing: obj["momentum"]))")
    }

    /// `fingerprint --json` of an adapter: each finding's value as text (the findings of the
    /// object `object`, e.g. "synchronized", when given).
    static func fingerprintValues(_ python: String, _ adapter: String, in object: String? = nil) throws -> [String: String] {
        let r = try CLI.run(["fingerprint", "--adapter", "\(python) \(adapter)", "--json"])
        #expect(r.status == 0, "\(r.err)")
        var obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        if let object { obj = try #require(obj[object] as? [String: Any], "no \(object) findings: \(r.out.prefix(200))") }
        return obj.compactMapValues { ($0 as? [String: Any])?["value"].map { "\($0)" } }
    }

    /// What the probes cannot read is "undetermined", never a guess (an outside red team's):
    /// rsqrt(max(var, eps)) solves to no one eps inside or outside the root (it read "eps 0,
    /// inside"); a framework momentum that has no effect leaves its convention unknown (it read
    /// "batch" from the default weight); profiles tied on every probe are all named (MLX's and
    /// PyTorch's defaults read "pytorch"); a running variance fed neither estimator's batch
    /// variance is neither (it read the nearer one).
    @Test func fingerprintSaysUndeterminedRatherThanGuess() throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        func fingerprint(_ adapter: String) throws -> [String: String] { try Self.fingerprintValues(python, adapter) }
        let clamped = try fingerprint("tools/adapters/numpy_mutant.py eps-clamped")
        #expect(clamped["eps"] == "undetermined" && clamped["eps_placement"] == "undetermined", "\(clamped)")
        let ignored = try fingerprint("tools/adapters/numpy_mutant.py momentum-parameter-ignored")
        #expect(ignored["momentum_weights"] == "undetermined" && ignored["momentum"] == "undetermined", "\(ignored)")
        #expect(ignored["eps"] == "1e-05" && ignored["running_variance"] == "unbiased", "\(ignored)")
        // A running variance fed neither the biased nor the unbiased batch variance (updated with
        // the inverted weight: −3.5 here) is no estimator (an outside red team's: read "biased").
        let inverted = try fingerprint("tools/adapters/numpy_mutant.py running-variance-momentum-inverted")
        #expect(inverted["running_variance"] == "undetermined" && inverted["momentum_weights"] == "batch", "\(inverted)")
        let honest = try fingerprint("tools/adapters/numpy_bn.py")
        #expect(honest["closest_profile"] == "pytorch or mlx" && honest["momentum_weights"] == "batch" && honest["eps_placement"] == "inside_sqrt", "\(honest)")
        // A variance about the mean rounded to float16 is too large wherever its error rises above
        // rounding: a bias, not an algorithm (a red team's: over eight probe channels it read "updating").
        let f16Mean = try fingerprint("tools/adapters/numpy_mutant.py variance-about-f16-mean")
        #expect(f16Mean["variance_algorithm"] == "biased", "\(f16Mean)")
        #expect(honest["variance_algorithm"] == "two_pass", "\(honest)")
    }

    /// The variance-algorithm probe names honest algorithms by their class: NumPy's two-pass
    /// variance `two_pass`, Welford's update and a pairwise tree of Chan et al.'s merges
    /// `updating` (over κ from 4 to 256 these two had read `two_pass`: in float32 at n = 1024 an
    /// updating algorithm's error stands out of the two-pass floor only above κ ≈ 256), each with
    /// its fitted exponent and its rise in the evidence.
    @Test func fingerprintNamesTheVarianceAlgorithm() throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        for (variance, expected) in [("two-pass", "two_pass"), ("welford", "updating"), ("pairwise", "updating")] {
            let r = try CLI.run(["fingerprint", "--adapter", "\(python) tools/adapters/numpy_bn.py --variance \(variance)", "--json"])
            #expect(r.status == 0, "\(r.err)")
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            let found = try #require(obj["variance_algorithm"] as? [String: Any])
            let evidence = found["evidence"] as? String ?? ""
            #expect(found["value"] as? String == expected && evidence.contains("κ ∈ {4, 16, 64, 256, 1024, 4096}")
                    && evidence.contains("over 96 channels"), "\(variance): \(found)")
            if expected == "updating" { #expect(evidence.contains("the errors rise") && evidence.contains("at least 25×"), "\(variance): \(evidence)") }
        }
    }

    /// The synchronized probes read only what fits (an outside red team's, round F): an
    /// all-reduce that leaves out the ranks beyond the largest power of two ≤ K is no count
    /// weighting (it read "counts" over four ranks); running statistics from one rank's own batch
    /// are no invstd round trip (the error does not follow u·ε/v); y from each rank's own
    /// statistics solves to no one eps (it read −9e-5). The honest engine reads as it is.
    @Test func synchronizedFingerprintReadsOnlyWhatFits() throws {
        guard CLI.isBuilt() else { return }
        guard let python = try CLI.pythonWithNumPy() else { return }
        func sync(_ bug: String) throws -> [String: String] {
            try Self.fingerprintValues(python, "tools/adapters/numpy_sync_bn.py \(bug)", in: "synchronized")
        }
        let honest = try sync("")
        #expect(honest["count_weighting"] == "counts" && honest["bessel_n"] == "global_n" && honest["eps"] == "1e-05"
                && honest["variance_exchange"] == "exact" && honest["gradient_reduction"] == "local", "\(honest)")
        let pow2 = try sync("pow2-allreduce")
        #expect(pow2["count_weighting"] == "other", "\(pow2)")
        let rank0 = try sync("running-rank0")
        #expect(rank0["variance_exchange"] == "undetermined" && rank0["bessel_n"] == "other", "\(rank0)")
        let localY = try sync("local-y")
        #expect(localY["eps"] == "undetermined", "\(localY)")
        // Nor one variance per channel: y from each rank's own statistics is no line in x, so no
        // channel's variance error is measurable (it had read two_pass off the misfit).
        #expect(localY["variance_algorithm"] == "undetermined", "\(localY)")
    }

    /// Progress on stderr when it is not a terminal: a line each 10 % of the cases, the last at 100 %.
    @Test func progressLinesWithoutATerminal() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("progress")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ids = try CLI.ids(Self.pytorch)
        #expect(ids.count >= 20)
        try CLI.record(ids, to: dir)
        let r = try audit(dir, ["--match", Self.pytorch])
        #expect(r.status == 0, "\(r.out)")
        let lines = r.errLines.filter { $0.hasPrefix("audit: ") }
        let done = lines.compactMap { $0.split(separator: " ")[1].split(separator: "/").first.flatMap { Int($0) } }
        #expect(lines.count >= 10 && lines.last?.hasPrefix("audit: \(ids.count)/\(ids.count) cases (100 %), 0 failed") == true, "\(r.err)")
        #expect(done == done.sorted() && Set(done).count == done.count)
        // Every tenth of the cases is reported.
        for k in 1...10 { #expect(done.contains { $0 * 10 >= k * ids.count && ($0 - 1) * 10 < k * ids.count }, "\(k)0 %: \(done)") }
        let v = try CLI.run(["verify", "--implementation", "fused", "--match", "infer.*4x3x5x5*"])
        #expect(v.status == 0 && v.errLines.contains { $0.hasPrefix("verify: ") && $0.contains("cases (100 %)") }, "\(v.err)")
        let closing = v.out.split(separator: "\n").last.map(String.init) ?? ""
        #expect(closing.hasPrefix("verify: OK — ") && closing.contains(" × 1 implementation: ") && closing.contains(" passed, 0 failed, "), "\(closing)")
    }

    /// --maxfail N: the N-th failure stops the run; the rest are reported as not run (skipped).
    @Test func maxfailStopsAndReportsTheRestAsNotRun() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("maxfail")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ids = Array(try CLI.ids(Self.pytorch).prefix(12))
        let results = dir.appendingPathComponent("results")  // the report beside it: never inside a folder the audit reads
        try CLI.record(ids, to: results) { id, name, e, t in
            [ids[2], ids[5], ids[9]].contains(id) ? e.enumerated().map { $0 == 0 ? $1 + 10 * t[0] + 1 : $1 } : nil
        }
        let json = dir.appendingPathComponent("r.json")
        let r = try audit(results, ids.flatMap { ["--case", $0] } + ["--maxfail", "2", "--json", json.path])
        #expect(r.status == 1)
        let rows = try #require(try CLI.json(json)["results"] as? [[String: Any]])
        let status = rows.map { $0["status"] as? String ?? "" }, fault = rows.map { $0["fault"] as? String }
        #expect(status.filter { $0 == "failed" }.count == 2 && status[2] == "failed" && status[5] == "failed")
        #expect((6..<12).allSatisfy { status[$0] == "skipped" && fault[$0] == "not-run" } && (0..<6).allSatisfy { fault[$0] != "not-run" })
        #expect(r.out.contains("6 not run after --maxfail"), "\(r.out)")
    }

    /// --baseline: changed verdicts fail; with --max-growth X, an error ÷ tolerance that grew more
    /// than X-fold fails too, though the case still passes.
    @Test func baselineFlagsGrowth() throws {
        guard CLI.isBuilt() else { return }
        let dir = try CLI.scratch("baseline")
        defer { try? FileManager.default.removeItem(at: dir) }
        // float64 cases: no storage rounding, so every output's error ÷ tolerance is the fraction recorded.
        let ids = ["train.normal.4x3x5x5.NCHW.f64.pytorch.eps1e-05.m0.1", "train.nist-Lew.100x2.NC.f64.pytorch.eps1e-05.m0.1"]
        let args = ids.flatMap { ["--case", $0] }
        func recordAt(_ fraction: Double, _ name: String) throws -> URL {
            let d = dir.appendingPathComponent(name)
            try CLI.record(ids, to: d) { _, _, e, t in e.enumerated().map { $1 + fraction * t[$0] } }
            return d
        }
        let small = try recordAt(0.01, "small"), large = try recordAt(0.5, "large"), over = try recordAt(2, "over")
        let base = dir.appendingPathComponent("base.json").path
        #expect(try audit(small, args + ["--json", base]).status == 0)
        #expect(try audit(large, args + ["--baseline", base]).status == 0)  // the same verdicts
        let grown = try audit(large, args + ["--baseline", base, "--max-growth", "10"])
        #expect(grown.status == 1 && grown.out.contains("still passed, but error ÷ tolerance grew"), "\(grown.out)")
        #expect(grown.out.contains("baseline: 2 errors grew more than 10.0×"), "\(grown.out)")
        #expect(try audit(large, args + ["--baseline", base, "--max-growth", "100"]).status == 0)  // 50× < 100×
        let changed = try audit(over, args + ["--baseline", base])
        #expect(changed.status == 1 && changed.out.contains("was passed, now failed"), "\(changed.out)")
        // A known numeric failure that becomes a fault (here a missing output; a hang or a crash
        // alike) is a change; a baseline of another profile is refused before the audit (an
        // outside red team's CI stayed green through both).
        let failedBase = dir.appendingPathComponent("failed.json").path
        #expect(try audit(over, args + ["--json", failedBase]).status == 1)
        try FileManager.default.removeItem(at: over.appendingPathComponent(ids[0]).appendingPathComponent("y.npy"))
        let fault = try audit(over, args + ["--baseline", failedBase])
        #expect(fault.status == 1 && fault.out.contains("was failed (numeric), now failed (missing-output)"), "\(fault.out)")
        let other = try CLI.run(["audit", "--results", over.path, "--profile", "keras", "--baseline", failedBase] + args)
        #expect(other.status == 2 && other.err.contains("is a report of profile pytorch, this audit's is keras"), "\(other.err)")
    }
}
