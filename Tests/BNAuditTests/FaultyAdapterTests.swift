import BNAudit
import BNCore
import BNGolden
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
#if canImport(Glibc)
import Glibc
#endif

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
        #expect(Self.rows.count >= 24)
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
            _ = try AuditSupport.audit(Self.command(mode), filter: "train.normal.4x3x5x5.NCHW.f32.p", startTimeout: mode == "hang-at-start" ? 3 : 60)
            Issue.record("\(mode): the audit started")
        } catch let e as BNError {
            #expect(e.description.contains(want) && !e.description.contains("\n"), "\(e.description)")
        } catch { Issue.record("\(mode): \(error)") }
    }

    /// An adapter that hangs on every case, over 24 cases. deadline: 2 s per case, 4 s for the whole
    /// audit; restarts: 1 s per case, no deadline to speak of — after 5 restarts in a row without an
    /// answer the audit gives up. Checked by facts that do not depend on the machine's speed (no
    /// wall-clock bound): how many cases ran, the timeout each was given, the restarts counted.
    @Test(arguments: rows.filter { $0.kind == "deadline" || $0.kind == "restarts" }.map { [$0.mode, $0.kind, $0.text] })
    func aHangingAdapterIsGivenUpOn(row: [String]) throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        let (mode, kind, want) = (row[0], row[1], row[2])
        let cases = try AuditSupport.cases(".4x3x5x5.").filter { $0.spec.op == .train && $0.spec.dtype == .f32 }.prefix(24)
        #expect(cases.count == 24)
        let a = Audit(profile: try ConventionProfile.named("pytorch"), cases: Array(cases), goldenDir: AuditSupport.golden, reproBase: "test")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let total = kind == "deadline" ? 4.0 : 600, perCase = kind == "deadline" ? 2.0 : 1
        let client = AdapterClient(command: "\(AuditSupport.python) \(Self.command(mode))", caseTimeout: perCase,
                                   startTimeout: 60, totalTimeout: total, workingDirectory: AuditSupport.root)
        let r = try a.run(adapter: client, scratch: scratch)
        #expect(r.results.count == cases.count, "every case is reported")
        #expect(r.results.allSatisfy { $0.status == .failed })
        let hung = r.results.prefix { $0.detail.contains("did not answer within") }
        // Once the limit is reached every later case reports it: the hangs come first, then only `want`.
        #expect(r.results.dropFirst(hung.count).allSatisfy { $0.detail.contains(want) }, "\(kind): \(r.results.map(\.detail))")
        #expect(client.caseTimeouts.count == hung.count, "a case request was sent after the limit")
        #expect(client.caseTimeouts.allSatisfy { $0 <= perCase && $0 >= 1 })
        #expect(client.restarts == hung.count - 1, "each hang but the first is followed by one restart")
        if kind == "restarts" {
            // Deterministic: the first start plus 5 restarts, each hanging once; the 18 others given up.
            #expect(hung.count == 6 && client.restarts == 5 && client.restartsInARow == 5, "\(hung.count) hangs, \(client.restarts) restarts")
        } else {
            // Every request's timeout is cut to the time left (at least 1 s): what ran fits in the
            // 4 s deadline plus one 1 s minimum, so at most 5 cases, at least the first.
            #expect(client.caseTimeouts.reduce(0, +) <= total + 1, "timeouts \(client.caseTimeouts) exceed the deadline")
            #expect((1...5).contains(hung.count), "\(hung.count) cases ran before the 4 s deadline")
        }
    }

    /// An adapter that forks a child (which ignores SIGTERM and keeps stdout open) and exits with
    /// status 7 is reported as exited with status 7 at once (tsv row fork-exit), and its child does
    /// not outlive the audit.
    @Test func forkedChildrenEndWithTheAdapter() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        let pids = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-pids-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: pids) }
        let r = try AuditSupport.audit(Self.command("fork-exit"), filter: "train.normal.4x3x5x5.NCHW.f32.p", caseTimeout: 30,
                                       extraEnvironment: ["BNSPEC_FAULTY_PIDS": pids.path])
        let recorded = AuditSupport.recordedProcesses(pids)
        defer { for p in recorded { kill(p.pid, SIGKILL) } }
        #expect(recorded.count >= 2, "the adapter recorded no forked child")
        #expect(r.results.filter { $0.status == .failed }.allSatisfy { $0.detail.contains("exited with status 7") })
        for p in recorded { #expect(ProcessGroup.liveMembers(p.group) == [], "process \(p.pid) of group \(p.group) survived the audit") }
    }

    /// `--adapter "cd tools/adapters && python3 numpy_bn.py"` runs: the command goes to /bin/sh -c
    /// as it is (spec/AUDIT.md §3), not behind an `exec` that a compound command breaks.
    @Test func aCompoundShellCommandIsAnAdapter() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        let r = try AuditSupport.audit("cd tools/adapters && \(AuditSupport.python) numpy_bn.py", filter: "train.normal.4x3x5x5.NCHW.f32.p",
                                       shell: true)
        #expect(r.failed == 0 && r.passed >= 2, "\(r.results.map(\.detail))")
    }

    /// Control characters an adapter sends (escape sequences, NUL, BEL, DEL, C1), U+FFFE, U+FFFF
    /// (an outside red team's: XML 1.0 forbids them too), a right-to-left override and a line
    /// separator (which reorder or break what a reader sees), reach neither the report's text nor the
    /// JUnit XML raw: the XML parses.
    @Test func adapterTextIsSanitisedAndJUnitStaysValid() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        let r = try AuditSupport.audit(Self.command("control-chars"), filter: "train.normal.4x3x5x5.NCHW.f32.p", caseTimeout: 30)
        #expect(r.failed > 0)
        for res in r.results {
            #expect(!res.detail.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value >= 0xFFFE && $0.value <= 0xFFFF
                        || (0x2028...0x202E).contains($0.value) },
                    "\(res.detail.debugDescription)")
        }
        let parser = XMLParser(data: Data(r.junit().utf8))
        #expect(parser.parse(), "JUnit XML does not parse: \(parser.parserError.map { "\($0)" } ?? "?")")
    }

    /// 2 GB on the adapter's stderr: bnspec keeps a tail only, its peak memory stays small
    /// (measured on the bnspec process itself, through wait4).
    @Test func memoryStaysBoundedWhateverTheAdapterPrints() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        guard let bnspec = AuditSupport.bnspec() else { return }
        let args = [bnspec, "audit", "--adapter", "\(AuditSupport.python) \(Self.command("stderr-flood"))", "--profile", "pytorch",
                    "--golden", AuditSupport.golden.path, "--match", "train.normal.4x3x5x5.NCHW.f32.p"]
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        #expect(posix_spawn(&pid, bnspec, &actions, nil, &cArgs, environ) == 0)
        var status: Int32 = 0, usage = rusage()
        #expect(wait4(pid, &status, 0, &usage) == pid)
        #expect(status == 0, "the audit failed (status \(status))")
        // Keeping the 2 GB would need over 2,000,000 KiB. wait4's ru_maxrss is the largest of bnspec and
        // its reaped descendants (the Python adapter); alone on this machine it is ~38 MB, and 217 MB was
        // seen once with the whole suite running beside it, so the bound is a quarter of what holding
        // the stream would take, not a figure of one quiet run.
        // Under AddressSanitizer (tools/sanitizers.sh sets ASAN_OPTIONS) the binary's RSS is ASan's
        // shadow memory and quarantine (1.46 GB was measured), not bnspec's: the bound is checked by
        // the plain build's run of this test, the sanitizer run looks for memory errors.
        if ProcessInfo.processInfo.environment["ASAN_OPTIONS"] != nil {
            print("peak RSS \(usage.ru_maxrss) KiB under AddressSanitizer (not a memory figure of bnspec)")
        } else {
            #expect(usage.ru_maxrss < 500_000, "peak RSS \(usage.ru_maxrss) KiB with 2 GB of adapter stderr")
        }
    }

    /// The adapter reads its inputs by path from the golden folder: when `generate --force` swaps
    /// another generation in during the audit, the audit gives no verdict but one line, "golden
    /// changed during the run", exit 2.
    @Test func aGoldenSwappedDuringTheAuditIsReported() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        guard let bnspec = AuditSupport.bnspec() else { return }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-swap-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let golden = work.appendingPathComponent("golden")
        let cases = try Catalog.parse("train data=normal shape=4x3x5x5\n", source: "test").cases[Catalog.defaultSuite] ?? []
        let files = try Generator.suiteFiles(cases, suite: Catalog.defaultSuite)
        try GoldenStore.write(files, to: golden, force: false)
        let p = Process(), err = Pipe()
        p.executableURL = URL(fileURLWithPath: bnspec)
        p.arguments = ["audit", "--adapter", "\(AuditSupport.python) \(Self.command("slow-start"))", "--profile", "pytorch",
                       "--golden", golden.path]
        p.currentDirectoryURL = AuditSupport.root
        p.standardOutput = FileHandle.nullDevice; p.standardError = err
        try p.run()
        usleep(1_000_000)  // the adapter sleeps 3 s before its hello
        try GoldenStore.write(files, to: golden, force: true)
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // Exit 2 (no verdict, AUDIT.md §6); one error line (progress lines may precede it).
        #expect(p.terminationStatus == 2 && message.contains("golden changed during the run")
                && message.split(separator: "\n").filter { $0.hasPrefix("bnspec: error: ") }.count == 1
                && message.split(separator: "\n").filter { $0.hasPrefix("bnspec: error: ") }.allSatisfy(BNError.isErrorLine),
                "status \(p.terminationStatus): \(message)")
    }

    /// A grandchild of the adapter that leaves its process group with setsid() does not outlive
    /// `bnspec audit`: bnspec is the reaper of its adapters' orphans and ends them at exit (an
    /// outside red team's daemon ran on under init).
    @Test func aDaemonTheAdapterLeftDoesNotOutliveTheAudit() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        guard let bnspec = AuditSupport.bnspec() else { return }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-daemon-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let pids = work.appendingPathComponent("pids")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bnspec)
        p.arguments = ["audit", "--adapter", "\(AuditSupport.python) \(Self.command("setsid-daemon"))", "--profile", "pytorch",
                       "--golden", AuditSupport.golden.path, "--match", "train.normal.4x3x5x5.NCHW.f32.p"]
        p.currentDirectoryURL = AuditSupport.root
        p.environment = ProcessInfo.processInfo.environment.merging(["BNSPEC_FAULTY_PIDS": pids.path]) { $1 }
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let recorded = AuditSupport.recordedProcesses(pids)
        defer { for r in recorded { kill(r.pid, SIGKILL) } }
        #expect(p.terminationStatus == 0 && recorded.count == 1, "status \(p.terminationStatus), \(recorded.count) daemons recorded")
        for r in recorded {
            // Gone, or at most a zombie init has not reaped yet.
            let stat = (try? String(contentsOfFile: "/proc/\(r.pid)/stat", encoding: .utf8)) ?? ""
            let state = stat.lastIndex(of: ")").map { stat[stat.index($0, offsetBy: 2)...].prefix(1) } ?? ""
            #expect(stat.isEmpty || state == "Z", "the daemon \(r.pid) (session \(r.group)) outlived the audit: state \(state)")
        }
    }

    /// SIGTERM, SIGINT or SIGHUP to `bnspec audit` while the adapter (which ignores SIGTERM and has
    /// forked a child that ignores it too) is busy: bnspec ends by that signal, no process of the
    /// adapter's group survives, and its scratch folder is gone.
    @Test(arguments: [SIGTERM, SIGINT, SIGHUP])
    func aSignalToBnspecEndsTheAdapterGroup(signal: Int32) throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        guard let bnspec = AuditSupport.bnspec() else { return }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-signal-\(UUID().uuidString)")
        let tmp = work.appendingPathComponent("tmp"), pids = work.appendingPathComponent("pids")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bnspec)
        p.arguments = ["audit", "--adapter", "\(AuditSupport.python) \(Self.command("fork-ignore-term"))", "--profile", "pytorch",
                       "--golden", AuditSupport.golden.path, "--match", "train.normal.4x3x5x5.NCHW.f32.p"]
        p.currentDirectoryURL = AuditSupport.root
        p.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": tmp.path, "BNSPEC_FAULTY_PIDS": pids.path]) { $1 }
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        var recorded: [(group: pid_t, pid: pid_t)] = []
        defer { for r in recorded { kill(r.pid, SIGKILL) }; if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let ready = Date().addingTimeInterval(60)
        while Date() < ready && AuditSupport.recordedProcesses(pids).count < 2 { usleep(20_000) }
        recorded = AuditSupport.recordedProcesses(pids)
        #expect(recorded.count == 2, "the adapter never reached its busy case")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).count == 1, "no scratch folder while the audit runs")
        kill(p.processIdentifier, signal)
        let ended = Date().addingTimeInterval(20)
        while p.isRunning && Date() < ended { usleep(20_000) }
        #expect(!p.isRunning, "bnspec did not end within 20 s of the signal")
        if !p.isRunning {
            #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == signal,
                    "ended by \(p.terminationReason) \(p.terminationStatus), not by signal \(signal)")
        }
        for r in recorded { #expect(ProcessGroup.liveMembers(r.group) == [], "process \(r.pid) of the adapter's group survived") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == [], "scratch left behind")
    }

    /// The reader of bnspec's stderr leaves mid-audit (`bnspec audit … 2>&1 | head -1`): the
    /// next progress line meets EPIPE and bnspec ends as on a signal — by SIGPIPE, no process of
    /// the adapter left (found by its environment's mark), its scratch folder removed. It had
    /// trapped in Foundation's FileHandle.write (exit 132, a backtrace), skipping the cleanup.
    @Test func aStderrReaderThatLeavesEndsTheAuditCleanly() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        guard let bnspec = AuditSupport.bnspec() else { return }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-epipe-\(UUID().uuidString)")
        let tmp = work.appendingPathComponent("tmp"), mark = "BNSPEC_TEST_MARK=\(UUID().uuidString)"
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let p = Process(), err = Pipe()
        p.executableURL = URL(fileURLWithPath: bnspec)
        p.arguments = ["audit", "--adapter", "\(AuditSupport.python) \(Self.command("fork-ignore-term"))", "--profile", "pytorch",
                       "--golden", AuditSupport.golden.path, "--match", "train.normal.4x3x5x5.NCHW.*", "--case-timeout", "5"]
        p.currentDirectoryURL = AuditSupport.root
        let kv = mark.split(separator: "=", maxSplits: 1).map(String.init)
        p.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": tmp.path, kv[0]: kv[1]]) { $1 }
        p.standardOutput = FileHandle.nullDevice; p.standardError = err.fileHandleForWriting
        try p.run()
        try err.fileHandleForReading.close(); try err.fileHandleForWriting.close()  // no reader is left
        func marked() -> [String] {
            let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int32($0) != nil && Int32($0) != p.processIdentifier } ?? []
            return pids.filter { pid in
                guard let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
                      String(decoding: env, as: UTF8.self).split(separator: "\0").contains(Substring(mark)) else { return false }
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                return !(stat.lastIndex(of: ")").map { stat[stat.index($0, offsetBy: 2)...].hasPrefix("Z") } ?? true)
            }
        }
        defer { for pid in marked() { kill(pid_t(pid)!, SIGKILL) }; if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let ended = Date().addingTimeInterval(60)
        while p.isRunning && Date() < ended { usleep(20_000) }
        #expect(!p.isRunning, "bnspec did not end within 60 s of its stderr reader leaving")
        if !p.isRunning {
            #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGPIPE,
                    "ended by \(p.terminationReason) \(p.terminationStatus), not by SIGPIPE")
        }
        #expect(marked() == [], "processes of the adapter outlived bnspec: \(marked())")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == [], "scratch left behind")
    }

    /// A dead run's scratch folder (SIGKILL cannot be caught) is removed by the next audit only
    /// when bnspec's mark is in it, for this boot and PID namespace; a folder of the same name
    /// without it (a user's, or a run's in another PID namespace sharing /tmp) is left alone (an
    /// outside red team's notes.txt had been deleted).
    @Test func onlyMarkedScratchOfADeadRunIsRemoved() throws {
        guard AuditSupport.has("numpy") else { Issue.record("no NumPy for \(AuditSupport.python): run bash tools/setup.sh"); return }
        guard let bnspec = AuditSupport.bnspec() else { return }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-stale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let dead = Process()  // two certainly dead PIDs: reaped children
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run(); dead.waitUntilExit()
        let dead2 = Process()
        dead2.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead2.run(); dead2.waitUntilExit()
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let ns = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")) ?? "unknown"
        let marked = tmp.appendingPathComponent("bnspec-audit-\(dead.processIdentifier)")
        let unmarked = tmp.appendingPathComponent("bnspec-audit-\(dead2.processIdentifier)")
        for d in [marked, unmarked] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try Data("bnspec scratch\nboot \(boot)\npid namespace \(ns)\n".utf8).write(to: marked.appendingPathComponent(".bnspec-scratch"))
        try Data("mine".utf8).write(to: unmarked.appendingPathComponent("notes.txt"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bnspec)
        p.arguments = ["audit", "--adapter", "\(AuditSupport.python) tools/adapters/numpy_bn.py", "--profile", "pytorch",
                       "--golden", AuditSupport.golden.path, "--case", "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"]
        p.currentDirectoryURL = AuditSupport.root
        p.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": tmp.path]) { $1 }
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run(); p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: marked.path), "the dead run's marked scratch folder stayed")
        #expect(FileManager.default.fileExists(atPath: unmarked.appendingPathComponent("notes.txt").path), "an unmarked folder was removed")
    }
}
