import BNCore
import BNAudit
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 14 item 9: a path argument that cannot work is one line, `bnspec: error: <what> (<why>)`,
/// exit 1, before any work starts (an hour-long audit must not lose its report at the end).
/// Each run names an adapter that does not exist: had the work started, the error would be about
/// the adapter instead.
@Suite struct PathArgumentTests {
    /// Runs bnspec with raw argument bytes (so that non-UTF-8 can be passed) and extra environment;
    /// returns the exit status and stderr.
    static func run(_ args: [[UInt8]], environment extra: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        guard let bnspec = AuditSupport.bnspec() else { return (-1, "") }
        let argv: [UnsafeMutablePointer<CChar>?] = ([Array(bnspec.utf8)] + args).map { bytes in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
            p[bytes.count] = 0
            return p
        } + [nil]
        defer { argv.forEach { $0?.deallocate() } }
        let env = ProcessInfo.processInfo.environment.merging(extra) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { a in env.withUnsafeBufferPointer { e in
            posix_spawn(&pid, bnspec, &actions, nil, UnsafeMutablePointer(mutating: a.baseAddress!), UnsafeMutablePointer(mutating: e.baseAddress!))
        } }
        close(fds[1])
        #expect(rc == 0)
        let err = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return ((status >> 8) & 0xFF, String(decoding: err, as: UTF8.self))
    }

    static func args(_ words: String...) -> [[UInt8]] { words.map { Array($0.utf8) } }

    static let audit = ["audit", "--adapter", "/nonexistent/adapter", "--profile", "pytorch", "--match", "train.normal.4x3x5x5.NCHW.f32.p",
                        "--golden", AuditSupport.golden.path]

    /// One line `bnspec: error: …` and the exit status of AUDIT.md §6: 2 (the run could not be
    /// made: bad input), 64 for a command line that cannot be parsed (arguments that are not UTF-8).
    func expectOneLine(_ r: (status: Int32, stderr: String), _ want: String, _ what: String, status: Int32 = 2) {
        let lines = r.stderr.split(separator: "\n")
        #expect(r.status == status && BNError.isErrorLine(r.stderr) && r.stderr.contains(want),
                "\(what): status \(r.status), stderr: \(r.stderr)")
    }

    @Test func reportPathsAndBaselineAreCheckedBeforeTheAudit() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-paths-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let a = Self.audit.map { Array($0.utf8) }
        let rows: [([[UInt8]], String)] = [
            (a + Self.args("--json", work.path), "\(work.path): cannot write (is a folder"),
            (a + Self.args("--junit", "/nonexistent-folder/report.xml"), "/nonexistent-folder/report.xml: cannot write (its folder /nonexistent-folder: no such file or directory)"),
            (a + Self.args("--html", "/proc/version/report.html"), "/proc/version/report.html: cannot write (/proc/version is not a folder)"),
            (a + Self.args("--baseline", "/nonexistent-folder/audit.json"), "/nonexistent-folder/audit.json (no such file)"),
            (Self.args("verify", "--json", work.path, "--case", "x", "--golden", AuditSupport.golden.path), "\(work.path): cannot write (is a folder"),
        ]
        for (args, want) in rows {
            expectOneLine(try Self.run(args), want, args.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))
        }
    }

    /// TMPDIR naming a file: the audit's scratch folder cannot be made; one line naming TMPDIR.
    @Test func tmpdirThatIsAFileIsOneLine() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-tmpdir-\(UUID().uuidString)")
        try Data("not a folder".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        expectOneLine(try Self.run(Self.audit.map { Array($0.utf8) }, environment: ["TMPDIR": file.path]),
                      "TMPDIR=\(file.path): is not a folder (set TMPDIR to a writable folder)", "TMPDIR=file")
    }

    /// A non-UTF-8 `--out` is refused: Swift would read it with U+FFFD in place of the bad bytes and
    /// write to a folder of another name.
    @Test func nonUTF8PathIsRefused() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-utf8-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let catalog = work.appendingPathComponent("c.txt")
        try Data("train data=normal shape=2x3x1x1\n".utf8).write(to: catalog)
        let out = Array((work.path + "/gold").utf8) + [0xFF, 0xFE] + Array("en".utf8)
        expectOneLine(try Self.run(Self.args("generate", "--catalog", catalog.path, "--out") + [out]), "is not valid UTF-8", "non-UTF-8 --out", status: 64)
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path) == ["c.txt"], "something was written")
    }

    /// `--out` on a mount point: refused before generating (the swap is a rename, which cannot
    /// leave a file system). /dev/shm is a mount point on Linux machines.
    @Test func outOnAMountPointIsRefusedFirst() throws {
        var shm = stat(), dev = stat()
        guard stat("/dev/shm", &shm) == 0, stat("/dev", &dev) == 0, shm.st_dev != dev.st_dev else {
            Issue.record("/dev/shm is not a mount point here: nothing to test with"); return
        }
        let before = try FileManager.default.contentsOfDirectory(atPath: "/dev").filter { $0.hasPrefix(".shm") }
        let r = try Self.run(Self.args("generate", "--out", "/dev/shm", "--force", "--catalog",
                                       AuditSupport.root.appendingPathComponent("spec/catalog.txt").path))
        expectOneLine(r, "/dev/shm: is a mount point", "--out /dev/shm")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "/dev").filter { $0.hasPrefix(".shm") } == before)
    }
}
