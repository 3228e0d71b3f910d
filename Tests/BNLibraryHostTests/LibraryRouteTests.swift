import BNCore
import BNGolden
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `bnspec audit --library` end to end (spec/AUDIT.md §7): kernel libraries compiled here with
/// `cc` from examples/c-kernel/bn_kernel.c (honest, with a bug, crashing) and from small faulty
/// sources, audited by the bnspec executable built next to this test binary.
@Suite final class LibraryRouteTests {
    static let root: URL = Checkout.root(from: URL(fileURLWithPath: #filePath))!
    static let bnspec: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("bnspec").path
    }()
    /// This test's folder (sources, libraries, outputs), removed when it ends.
    let scratch: URL

    init() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-library-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: scratch) }

    struct Run { var status: Int32; var out: String; var err: String; var report: [String: Any]? }

    /// Runs `cmd args`; output through files (no pipe to fill).
    func run(_ cmd: String, _ args: [String]) throws -> (Int32, String, String) {
        let id = UUID().uuidString
        let o = scratch.appendingPathComponent("\(id).out"), e = scratch.appendingPathComponent("\(id).err")
        _ = FileManager.default.createFile(atPath: o.path, contents: nil); _ = FileManager.default.createFile(atPath: e.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cmd)
        p.arguments = args
        p.currentDirectoryURL = Self.root
        p.standardOutput = try FileHandle(forWritingTo: o); p.standardError = try FileHandle(forWritingTo: e)
        try p.run(); p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: o, encoding: .utf8)) ?? "", (try? String(contentsOf: e, encoding: .utf8)) ?? "")
    }

    /// Compiles C `source` (a file, or text) into a shared library with `defines`; nil (and a
    /// recorded issue, never a silent pass) when there is no C compiler or bnspec.
    func library(_ name: String, source: String? = nil, defines: [String] = []) throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: Self.bnspec) else {
            Issue.record("bnspec is not built next to the test binary (\(Self.bnspec)); run `swift build` first"); return nil
        }
        guard let cc = ["/usr/bin/cc", "/usr/bin/gcc", "/usr/bin/clang"].first(where: FileManager.default.isExecutableFile) else {
            Issue.record("no C compiler (cc): run bash tools/setup.sh"); return nil
        }
        var src = Self.root.appendingPathComponent("examples/c-kernel/bn_kernel.c").path
        if let text = source {
            src = scratch.appendingPathComponent("\(name).c").path
            try text.write(toFile: src, atomically: true, encoding: .utf8)
        }
        let out = scratch.appendingPathComponent("lib\(name).so").path
        let include = Self.root.appendingPathComponent("Sources/CBNKernelABI/include").path
        let (st, _, err) = try run(cc, ["-std=c11", "-O1", "-shared", "-fPIC", "-fvisibility=hidden", "-I", include]
                                      + defines.map { "-D\($0)" } + [src, "-o", out, "-lm"])
        guard st == 0 else { Issue.record("cc failed: \(err)"); return nil }
        return out
    }

    func audit(_ args: [String], filter: String) throws -> Run {
        let json = scratch.appendingPathComponent("\(UUID().uuidString).json")
        let (st, out, err) = try run(Self.bnspec, ["audit", "--profile", "pytorch", "--match", filter, "--json", json.path] + args)
        let report = (try? Data(contentsOf: json)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        return Run(status: st, out: out, err: err, report: report)
    }

    static func results(_ r: Run) -> [(id: String, status: String, detail: String, cause: String?)] {
        (r.report?["results"] as? [[String: Any]] ?? []).map {
            ($0["case"] as? String ?? "", $0["status"] as? String ?? "", $0["detail"] as? String ?? "", $0["likely_cause"] as? String)
        }
    }

    @Test func honestKernelPasses() throws {
        guard let lib = try library("honest") else { return }
        let r = try audit(["--library", lib], filter: "4x3x5x5.NCHW")
        let rs = Self.results(r)
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(rs.count >= 20 && rs.allSatisfy { $0.status == "passed" }, "\(rs.filter { $0.status != "passed" })")
        #expect(r.report?["implementation"] as? String == "c-kernel")
    }

    /// A library whose constructor prints a banner on stdout when it is loaded (as many do): the
    /// host diverts stdout to stderr before loading it, so the protocol is intact and the honest
    /// kernel passes (it was "crashed while loading (status 0)": the banner was read as the check
    /// line; found by an outside red team).
    @Test func bannerOnStdoutAtLoad() throws {
        let kernel = Self.root.appendingPathComponent("examples/c-kernel/bn_kernel.c").path
        let source = "#include \"\(kernel)\"\n#include <stdio.h>\n"
            + "__attribute__((constructor)) static void banner(void) { printf(\"MyKernel 1.0 loaded\\n\"); fflush(stdout); }\n"
        guard let lib = try library("banner", source: source) else { return }
        let r = try audit(["--library", lib], filter: "train.normal.4x3x5x5.NCHW")
        #expect(r.status == 0 && (r.report?["passed"] as? Int ?? 0) > 0, "\(r.out)\(r.err)")
        #expect(r.err.contains("MyKernel 1.0 loaded") || !r.out.contains("MyKernel"), "the banner reached stdout: \(r.out)")
    }

    /// A symbol prefix: found with --symbol-prefix, a one-line error without it.
    @Test func symbolPrefix() throws {
        guard let lib = try library("prefixed", defines: ["BNSPEC_KERNEL_PREFIX=demo_"]) else { return }
        let r = try audit(["--library", lib, "--symbol-prefix", "demo_"], filter: "train.normal.4x3x5x5.NHWC")
        #expect(r.status == 0 && (r.report?["passed"] as? Int ?? 0) > 0, "\(r.out)\(r.err)")
        let bad = try audit(["--library", lib], filter: "train.normal.4x3x5x5.NHWC")
        #expect(bad.status == 2 && bad.out.isEmpty && bad.err.contains("does not export bnspec_kernel_abi_version"), "\(bad.err)")
    }

    @Test(arguments: [
        ["BN_BUG=BN_BUG_EPS_OUTSIDE_SQRT", "eps added outside the square root", "train.normal.4x3x5x5.NCHW"],
        // The one-pass cause is named from the audit-wide growth of the variance error with κ:
        // the selection spans offsets 1e2 … 1e4 (several decades of κ).
        ["BN_BUG=BN_BUG_ONE_PASS_VARIANCE", "variance computed in one pass", "train.*.4x3x5x5.*"],
    ])
    func bugIsCaughtWithItsCause(row: [String]) throws {
        guard let lib = try library(row[0].lowercased().replacingOccurrences(of: "=", with: "-"), defines: [row[0]]) else { return }
        let r = try audit(["--library", lib], filter: row[2])
        let failed = Self.results(r).filter { $0.status == "failed" }
        #expect(r.status == 1 && !failed.isEmpty, "\(r.out)")
        // Its cause is named (most failures), and never another one; "unexplained" is allowed.
        let named = failed.compactMap(\.cause)
        #expect(named.count * 2 >= failed.count && named.allSatisfy { $0.contains(row[1]) }, "\(failed.map { $0.cause ?? "none" })")
    }

    /// A kernel that segfaults on one case: that case fails naming the signal, entry point and
    /// case; the next case runs (and passes) in a fresh host; no host process is left.
    @Test func crashIsOneCaseError() throws {
        guard let lib = try library("segfault", defines: ["BN_BUG=BN_BUG_SEGFAULT"]) else { return }
        let r = try audit(["--library", lib], filter: "train.normal.2x3x33")
        let rs = Self.results(r)
        #expect(r.status == 1 && rs.count == 2, "\(r.out)\(r.err)")
        let crashed = rs.filter { $0.status == "failed" }, passed = rs.filter { $0.status == "passed" }
        #expect(crashed.count == 1 && passed.count == 1)
        #expect(crashed.first?.id == "train.normal.2x3x33.NCHW.f32.pytorch.eps1e-05.m0.1")
        #expect(crashed.first?.detail.contains("SIGSEGV (segmentation fault) in bnspec_kernel_train_f32 on case train.normal.2x3x33.NCHW.f32.pytorch") == true,
                "\(crashed)")
        #expect(Self.hostsRunning(lib) == 0, "a library-host process was left running")
    }

    /// A kernel whose describe gives a 3 MiB name is audited, under its name cut to 200
    /// characters (an outside red team's: the load check read "crashed while loading (status 0)").
    @Test func aHugeKernelNameIsCut() throws {
        let huge = "static char huge_name[3 << 20];\n__attribute__((constructor)) static void fill(void) { memset(huge_name, 'k', sizeof huge_name - 1); }\n"
        let source = "#include <string.h>\n" + huge + Self.faulty("return 0;").replacingOccurrences(of: "d->name = \"faulty\"", with: "d->name = huge_name")
        #expect(source.contains("d->name = huge_name"))
        guard let lib = try library("huge-name", source: source) else { return }
        let r = try audit(["--library", lib, "--exclude", ".eps0."], filter: "train.normal.4x3x5x5.NCHW.f32.pytorch")
        #expect(r.err.isEmpty || !r.err.contains("bnspec: error"), "\(r.err)")
        #expect(r.report?["implementation"] as? String == String(repeating: "k", count: 200), "\(r.err)")
    }

    /// A train entry point that returns an unknown code fails every train case as a protocol
    /// fault, with the kernel's message, and the host serves on: the right infer and backward
    /// entry points are still audited and pass (an outside red team's: the host had exited on each
    /// fault, and after five in a row the audit gave up on the library, failing them unrun).
    @Test func unknownReturnCodeFailsItsCasesOnly() throws {
        guard let lib = try library("unknown-code", defines: ["BN_BUG=BN_BUG_UNKNOWN_CODE"]) else { return }
        let r = try audit(["--library", lib], filter: "*.4x3x5x5.NCHW.f32.pytorch.eps1e-05*")
        let rs = Self.results(r)
        let train = rs.filter { $0.id.hasPrefix("train.") }, other = rs.filter { !$0.id.hasPrefix("train.") && $0.status != "skipped" }
        #expect(r.status == 1 && train.count >= 6 && other.count >= 3, "\(r.out)\(r.err)")
        #expect(train.allSatisfy { $0.status == "failed" && $0.detail.contains("bnspec_kernel_train_f32 returned 7, not a bnspec_kernel.h return code") },
                "\(train.map(\.detail))")
        #expect(other.allSatisfy { $0.status == "passed" }, "\(other.map { "\($0.id): \($0.detail)" })")
        #expect(Self.hostsRunning(lib) == 0, "a library-host process was left running")
    }

    /// The library host ends once the bnspec it serves is gone, also when that bnspec died before
    /// the host started (it had recorded getppid() at start, the reaper by then, and ran on); and
    /// it keeps serving while that bnspec lives. `--parent-pid` names the bnspec (audit --library
    /// passes its own pid); here a reaped /bin/true's pid stands for a dead bnspec.
    @Test func hostEndsWhenItsBnspecIsGoneAlreadyAtStart() throws {
        guard let lib = try library("watchdog") else { return }
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run(); dead.waitUntilExit()
        func host(parent: pid_t) throws -> (Process, Pipe, URL) {
            let p = Process(), input = Pipe(), err = scratch.appendingPathComponent("\(UUID().uuidString).err")
            _ = FileManager.default.createFile(atPath: err.path, contents: nil)
            p.executableURL = URL(fileURLWithPath: Self.bnspec)
            p.arguments = ["library-host", lib, "--parent-pid", String(parent)]
            p.standardInput = input  // held open: the host does not end on end of input
            p.standardOutput = FileHandle.nullDevice
            p.standardError = try FileHandle(forWritingTo: err)
            try p.run()
            return (p, input, err)
        }
        func ended(_ p: Process, within seconds: Double) -> Bool {
            let until = Date().addingTimeInterval(seconds)
            while p.isRunning && Date() < until { usleep(20_000) }
            return !p.isRunning
        }
        let (orphan, orphanInput, orphanErr) = try host(parent: dead.processIdentifier)
        defer { if orphan.isRunning { kill(orphan.processIdentifier, SIGKILL) } }
        #expect(ended(orphan, within: 10), "a host whose bnspec (pid \(dead.processIdentifier)) was gone at start ran on")
        if !orphan.isRunning {
            #expect(orphan.terminationStatus == 1)
            #expect(((try? String(contentsOf: orphanErr, encoding: .utf8)) ?? "").contains("library-host: bnspec (pid \(dead.processIdentifier)) is gone; ending"))
        }
        try? orphanInput.fileHandleForWriting.close()
        let (served, servedInput, _) = try host(parent: getpid())
        defer { if served.isRunning { kill(served.processIdentifier, SIGKILL) } }
        #expect(!ended(served, within: 1.5), "the host ended while its bnspec (this test) lives")
        try servedInput.fileHandleForWriting.close()
        #expect(ended(served, within: 10) && served.terminationStatus == 0, "the host did not end at the end of its input")
    }

    /// Processes whose command line names `lib`.
    static func hostsRunning(_ lib: String) -> Int {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
        return pids.filter { pid in
            guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: d, as: UTF8.self).contains(lib)
        }.count
    }

    /// An implementation without running statistics: train judged on y and the batch
    /// statistics, named "not provided"; trajectories skipped as not provided.
    @Test func noRunningStatisticsAreNotProvidedNotFailed() throws {
        guard let lib = try library("norunning", defines: ["BN_RUNNING_STATISTICS=0"]) else { return }
        let r = try audit(["--library", lib], filter: ".NCHW.f32.pytorch.eps1e-05.m0.1")
        let rs = Self.results(r)
        let train = rs.filter { $0.id.hasPrefix("train.") && $0.status == "passed" && !$0.detail.hasPrefix("refused as the profile requires") }, traj = rs.filter { $0.id.hasPrefix("trajectory.") }
        #expect(r.status == 0, "\(r.out)")
        #expect(!train.isEmpty && train.allSatisfy { $0.detail.contains("running_mean, running_var: not provided by the implementation") })
        #expect(!traj.isEmpty && traj.allSatisfy { $0.status == "skipped" && $0.detail.contains("not provided by the implementation") })
    }

    static let header = "#include <bnspec/bnspec_kernel.h>\n"
    static let common = """
        int32_t bnspec_kernel_abi_version(void) { return ABI; }
        int32_t bnspec_kernel_describe(bnspec_kernel_description *d, char *m, size_t n) {
            (void)m; (void)n; d->name = "faulty"; d->version = "0"; d->features = BNSPEC_FEATURE_RUNNING_STATISTICS; return 0; }
        int32_t bnspec_kernel_supports(int32_t op, int32_t dtype, int32_t layout) {
            return op == BNSPEC_OP_TRAIN && dtype == DTYPE && layout == BNSPEC_LAYOUT_NCHW; }

        """
    /// A train_f32 that copies x to y and then commits FAULT.
    static func faulty(_ fault: String, abi: Int = 1, dtype: String = "BNSPEC_DTYPE_F32", train: Bool = true) -> String {
        header + "#define ABI \(abi)\n#define DTYPE \(dtype)\n" + common + (train ? """
            int32_t bnspec_kernel_train_f32(const bnspec_problem *p, const float *x, const float *gamma, const float *beta,
                float *rm, float *rv, float *y, float *bm, float *bv, char *m, size_t n) {
                (void)gamma; (void)beta; (void)m; (void)n;
                int64_t count = 1; for (int i = 0; i < p->rank; i++) count *= p->shape[i];
                for (int64_t i = 0; i < count; i++) y[i] = x[i];
                for (int64_t c = 0; c < p->shape[1]; c++) { bm[c] = 0; bv[c] = 1; rm[c] = 0; rv[c] = 1; }
                \(fault)
            }
            """ : "")
    }

    /// What the host checks for every call is reported against the case (never as a pass).
    @Test(arguments: [
        ["input", "((float *)x)[0] = 1; return 0;", "wrote to its input x (declared const)"],
        ["overrun", "y[count] = 1; return 0;", "wrote past the end of y"],
        // A guard page before each buffer and after it (an outside red team's: a write one element
        // before y, or 4 KiB past its end, went unnoticed beside a 256-byte trailing guard).
        ["underrun", "y[-1] = 1; return 0;", "wrote before the start of y"],
        ["overrun-4k", "bv[p->shape[1] + 1024] = 1; return 0;", "wrote past the end of batch_var"],
        // Further out the mapping is inaccessible: the write faults inside the entry point.
        ["overrun-far", "y[count + 8192] = 1; return 0;", "SIGSEGV (segmentation fault) in bnspec_kernel_train_f32 on case"],
        ["underrun-far", "rm[-8192] = 1; return 0;", "SIGSEGV (segmentation fault) in bnspec_kernel_train_f32 on case"],
        ["code", "return 7;", "returned 7, not a bnspec_kernel.h return code"],
        ["failed", "snprintf(m, n, \"out of scratch memory\"); return BNSPEC_FAILED;", "failed (BNSPEC_FAILED): out of scratch memory"],
        // exit(0) inside an entry point: named, not a bare "exited with status 0" (an outside red team's).
        ["exit", "exit(0);", "exited with status 0: library-host: the kernel called exit in bnspec_kernel_train_f32 on case"],
    ])
    func kernelFaultIsReported(row: [String]) throws {
        guard let lib = try library("fault-\(row[0])", source: "#include <stdio.h>\n#include <stdlib.h>\n" + Self.faulty(row[1])) else { return }
        // Not the eps = 0 case: a kernel error there is a refusal the pytorch profile allows (spec §5.6).
        let r = try audit(["--library", lib, "--exclude", ".eps0."], filter: "train.normal.4x3x5x5.NCHW.f32.pytorch")
        let judged = Self.results(r).filter { $0.status != "skipped" }
        #expect(r.status == 1 && !judged.isEmpty, "\(r.out)\(r.err)")
        #expect(judged.allSatisfy { $0.status == "failed" && $0.detail.contains(row[2]) }, "\(judged.map(\.detail))")
    }

    /// A daemon that a library's constructor starts and detaches (setsid, double fork, SIGTERM
    /// ignored) is ended with bnspec: the load check's and the host's alike (an outside red
    /// team's ran on under init after the check). The constructor returns once its daemon has
    /// recorded its pid (it closes the pipe the constructor reads), so both are on record
    /// whatever the load (a busy CI machine had ended the host before its daemon wrote).
    @Test func daemonOfALibraryConstructorDoesNotOutliveTheAudit() throws {
        let pids = scratch.appendingPathComponent("daemons.txt").path
        let daemon = """
            #include <signal.h>
            #include <stdio.h>
            #include <unistd.h>
            __attribute__((constructor)) void start_daemon(void) {
                int ready[2]; if (pipe(ready) != 0) return;
                if (fork() == 0) { close(ready[0]); setsid(); if (fork() == 0) { signal(SIGTERM, SIG_IGN);
                    FILE *f = fopen("\(pids)", "a"); if (f) { fprintf(f, "%d\\n", (int)getpid()); fclose(f); }
                    close(ready[1]); for (;;) pause(); } _exit(0); }
                close(ready[1]); char c; while (read(ready[0], &c, 1) > 0) {} close(ready[0]);
            }

            """
        guard let l = try library("daemon", source: daemon + Self.faulty("return 0;")) else { return }
        _ = try audit(["--library", l], filter: "train.normal.4x3x5x5.NCHW.f32.pytorch")
        let started = ((try? String(contentsOfFile: pids, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
        #expect(started.count >= 2, "the constructor's daemons were not started: \(started)")  // the check's and the host's
        let alive = started.filter { kill($0, 0) == 0 }
        for p in alive { kill(p, SIGKILL) }
        #expect(alive.isEmpty, "daemons left running: \(alive)")
    }

    /// A library that cannot be audited is one line on stderr, before the audit starts.
    @Test(arguments: [
        ["missing", "", "no such library file"],
        ["not-a-library", "", "cannot load the library"],
        ["abi-2", "abi", "was built for bnspec kernel ABI version 2; this bnspec speaks version 1"],
        ["no-entry-point", "entry", "its supports table names train f16 but it does not export bnspec_kernel_train_f16"],
        // A describe that fails without a message: no dangling ": " (an outside red team's).
        ["describe-fails", "describe", "bnspec_kernel_describe returned 5 (no message)"],
        // A constructor that crashes: one line naming the signal, no runtime backtrace chatter.
        ["constructor-crash", "constructor", "crashed while loading: SIGSEGV (segmentation fault) in a constructor of the library (while it loaded)"],
        ["constructor-exit", "constructor-exit", "called exit while loading (status 0) in a constructor of the library (while it loaded)"],
    ])
    func unusableLibraryIsOneLineError(row: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bnspec) else { Issue.record("bnspec not built"); return }
        var path = scratch.appendingPathComponent("nothing-here.so").path
        switch row[1] {
        case "abi": guard let l = try library("abi2", source: Self.faulty("return 0;", abi: 2)) else { return }; path = l
        case "entry": guard let l = try library("noentry", source: Self.faulty("", dtype: "BNSPEC_DTYPE_F16", train: false)) else { return }; path = l
        case "describe":
            let source = Self.faulty("return 0;").replacingOccurrences(of: "d->features = BNSPEC_FEATURE_RUNNING_STATISTICS; return 0; }", with: "return 5; }")
            #expect(source.contains("return 5; }"))
            guard let l = try library("describe-fails", source: source) else { return }; path = l
        case "constructor":
            let boom = "int * volatile crash_target = 0;\n__attribute__((constructor)) void crash_at_load(void) { *crash_target = 1; }\n"
            guard let l = try library("constructor-crash", source: Self.faulty("return 0;") + boom) else { return }; path = l
        case "constructor-exit":
            let leave = "__attribute__((constructor)) void exit_at_load(void) { exit(0); }\n"
            guard let l = try library("constructor-exit", source: "#include <stdlib.h>\n" + Self.faulty("return 0;") + leave) else { return }; path = l
        default:
            if row[0] == "not-a-library" { path = scratch.appendingPathComponent("text.so").path; try "not ELF".write(toFile: path, atomically: true, encoding: .utf8) }
        }
        let r = try audit(["--library", path], filter: "train.normal.4x3x5x5.NCHW")
        let lines = r.err.split(separator: "\n")
        #expect(r.status == 2 && r.out.isEmpty, "\(r.out)")
        #expect(BNError.isErrorLine(r.err) && lines[0].hasPrefix("bnspec: error: \(path)") && lines[0].contains(row[2]), "\(r.err)")
    }
}
