import BNCore
import BNGolden
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Golden-file safety (issue #7): `bnspec generate --force` killed at any moment leaves the
/// output folder either exactly as it was or exactly as the new generation — never partial,
/// never missing — and the next run cleans up what the killed one left.
@Suite(.serialized) struct InterruptedGenerateTests {
    static let root: URL = Checkout.root(from: URL(fileURLWithPath: #filePath))!

    /// The `bnspec` executable built next to this test binary (`swift test` builds every product).
    static let bnspec: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("bnspec").path
    }()

    /// Records an issue (never a silent pass) when the binary is missing.
    static func bnspecIsBuilt() -> Bool {
        if FileManager.default.isExecutableFile(atPath: bnspec) { return true }
        Issue.record("bnspec is not built next to the test binary (\(bnspec)); run `swift build` first")
        return false
    }

    /// Every regular file under `dir`, relative path → bytes.
    static func contents(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for path in GoldenStore.listFiles(dir) { out[path] = try Data(contentsOf: dir.appendingPathComponent(path)) }
        return out
    }

    static func files(catalog text: String) throws -> [String: Data] {
        let cases = try Catalog.parse(text, source: "test").cases[Catalog.defaultSuite] ?? []
        return try Generator.suiteFiles(cases, suite: Catalog.defaultSuite)
    }

    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-interrupt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Leftovers (`.golden.tmp-PID`, `.golden.old-PID`) next to the output folder.
    /// Starts `bnspec generate --force --out OUT --catalog CATALOG`; returns once it has written
    /// for `delay` µs after its temporary folder appeared (waited for up to 60 s), or, with nil,
    /// 20 ms after the start (still generating in memory).
    static func startGenerate(out: URL, catalog: URL, writingFor delay: UInt32?) throws -> Process {
        try startWriting(["generate", "--force", "--out", out.path, "--catalog", catalog.path], out: out, writingFor: delay)
    }

    /// Starts `bnspec ARGS`, which writes the folder `out` (generate, export), as ``startGenerate``.
    static func startWriting(_ args: [String], out: URL, writingFor delay: UInt32?) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bnspec)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        guard let delay else { usleep(20_000); return p }
        let tmp = out.deletingLastPathComponent().appendingPathComponent(".\(out.lastPathComponent).tmp-\(p.processIdentifier)").path
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning, Date() < deadline, !FileManager.default.fileExists(atPath: tmp) { usleep(200) }
        usleep(delay)
        return p
    }

    /// Sends `sig` to `p` and waits for it; true when it was running and the signal ended it
    /// (recording an issue unless the signal was `sig` itself).
    static func endedBySignal(_ p: Process, _ sig: Int32) -> Bool {
        let wasRunning = p.isRunning
        kill(p.processIdentifier, sig)
        p.waitUntilExit()
        guard wasRunning && p.terminationReason == .uncaughtSignal else { return false }
        #expect(p.terminationStatus == sig, "ended by signal \(p.terminationStatus), not \(sig)")
        return true
    }

    static func leftovers(_ parent: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []).filter { $0.hasPrefix(".golden.") }
    }

    /// The new generation of the kill test: many small cases (172 cases, 2,458 files), cheap to
    /// compute and long to write (a debug build: 0.7 s of computing, about 2 s of writing with
    /// its fsyncs), so the kills land in the write, which is what they test. (The default
    /// catalog, 6,278 files, took 12 s of computing per run, 8 runs, for the same write.)
    static let newCatalog = """
        suite default
        train data=normal,uniform shape=4x3x5x5,2x3x1x1,1x3x1x2,1x4x3x1 layout=NCHW,NHWC profile=paper,pytorch,keras,tf-fused,onnx,flax,mlx
        infer data=normal,uniform shape=4x3x5x5,2x3x1x1 layout=NCHW,NHWC profile=paper,pytorch,keras,tf-fused,onnx,flax,mlx
        backward-train data=normal shape=2x16x4x4,3x3x3x3 layout=NCHW,NHWC

        """

    /// Kills `generate --force` (old folder: a 2-case catalog; new: ``newCatalog``) at several
    /// moments after its temporary folder appears, i.e. while it writes, and once before it
    /// writes anything; each time the folder must be the complete old or the complete new
    /// generation. A final uninterrupted run must produce the new one and leave no leftovers.
    @Test func killedGenerateLeavesOldOrNewGoldenIntact() throws {
        guard Self.bnspecIsBuilt() else { return }
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("golden")
        let oldText = "train data=normal shape=4x3x5x5 layout=NCHW,NHWC\n"
        let old = try Self.files(catalog: oldText)
        let catalog = work.appendingPathComponent("catalog.txt")
        try Self.newCatalog.write(to: catalog, atomically: true, encoding: .utf8)
        let new = try Self.files(catalog: Self.newCatalog)
        #expect(new.count > 2000, "the new generation has \(new.count) files")
        try GoldenStore.write(old, to: out, force: false)
        #expect(try Self.contents(out) == old)

        var killedWhileWriting = 0
        // nil: kill 20 ms after start (still generating in memory); else: µs after the temporary folder appeared.
        let delays: [UInt32?] = [nil, 0, 500, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000]
        for delay in delays {
            let p = try Self.startGenerate(out: out, catalog: catalog, writingFor: delay)
            let wasRunning = p.isRunning
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if wasRunning && p.terminationReason == .uncaughtSignal && delay != nil { killedWhileWriting += 1 }
            let now = try Self.contents(out)
            let state = now == old ? "old" : now == new ? "new" : "PARTIAL"
            #expect(state != "PARTIAL", "killed \(delay.map { "\($0) µs after the temporary folder appeared" } ?? "before writing"): \(out.path) holds \(now.count) files, neither the old (\(old.count)) nor the new (\(new.count)) generation")
        }
        // At least some kills must have hit the write itself, or the test proved nothing.
        #expect(killedWhileWriting >= 3, "only \(killedWhileWriting) kills landed while generate was writing")

        // The next run finishes, and removes what the killed runs left behind.
        try GoldenStore.write(new, to: out, force: true)
        #expect(try Self.contents(out) == new)
        #expect(Self.leftovers(work).isEmpty, "left behind: \(Self.leftovers(work))")
    }

    /// SIGTERM or SIGINT while generate writes: bnspec ends by that signal, the golden folder is
    /// the old or the new generation, and the temporary folder is gone at once (before, it stayed
    /// until the next run removed it).
    @Test(arguments: [SIGTERM, SIGINT])
    func signalledGenerateRemovesItsTemporaryFolder(signal sig: Int32) throws {
        guard Self.bnspecIsBuilt() else { return }
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("golden")
        let old = try Self.files(catalog: "train data=normal shape=4x3x5x5 layout=NCHW,NHWC\n")
        let catalog = work.appendingPathComponent("catalog.txt")
        try Self.newCatalog.write(to: catalog, atomically: true, encoding: .utf8)
        let new = try Self.files(catalog: Self.newCatalog)
        try GoldenStore.write(old, to: out, force: false)
        var signalledWhileWriting = 0
        for delay: UInt32 in [0, 2_000, 10_000, 40_000] {
            let p = try Self.startGenerate(out: out, catalog: catalog, writingFor: delay)
            if Self.endedBySignal(p, sig) { signalledWhileWriting += 1 }
            let now = try Self.contents(out)
            #expect(now == old || now == new, "signal \(sig) \(delay) µs in: \(now.count) files, neither generation")
            #expect(Self.leftovers(work).isEmpty, "signal \(sig) \(delay) µs in left behind: \(Self.leftovers(work))")
        }
        #expect(signalledWhileWriting >= 2, "only \(signalledWhileWriting) signals landed while generate was writing")
    }

    /// SIGINT or SIGTERM while `bnspec export` writes: bnspec ends by that signal and leaves no
    /// temporary folder (it left `.NAME.tmp-PID` with the cases written so far until the next
    /// export to the same folder: an outside red team's).
    @Test(arguments: [SIGTERM, SIGINT])
    func signalledExportRemovesItsTemporaryFolder(signal sig: Int32) throws {
        guard Self.bnspecIsBuilt() else { return }
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("golden")  // an export folder, named so that leftovers() sees its siblings
        var signalledWhileWriting = 0
        for delay: UInt32 in [0, 20_000] {
            try? FileManager.default.removeItem(at: out)
            let p = try Self.startWriting(["export", "--out", out.path, "--profile", "pytorch", "--golden", Self.root.appendingPathComponent("golden").path],
                                          out: out, writingFor: delay)
            if Self.endedBySignal(p, sig) { signalledWhileWriting += 1 }
            #expect(Self.leftovers(work).isEmpty, "signal \(sig) \(delay) µs in left behind: \(Self.leftovers(work))")
        }
        #expect(signalledWhileWriting >= 1, "no signal landed while export was writing")
    }

    /// A run killed between the two renames of the fallback path (no `renameat2`) leaves the
    /// old folder at `.golden.old-PID` and no `golden/`: the next write restores it first.
    @Test func setAsideFolderOfADeadRunIsRestored() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("golden")
        let old = try Self.files(catalog: "train data=normal shape=2x3x1x1\n")
        // A process id that is certainly dead: a child that has exited and been reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run(); child.waitUntilExit()
        let dead = child.processIdentifier
        try GoldenStore.write(old, to: work.appendingPathComponent(".golden.old-\(dead)"), force: false)
        try FileManager.default.createDirectory(at: work.appendingPathComponent(".golden.tmp-\(dead)/partial"), withIntermediateDirectories: true)
        let done = GoldenStore.recoverInterrupted(out)
        #expect(done.count == 2, "\(done)")
        #expect(try Self.contents(out) == old)
        #expect(Self.leftovers(work).isEmpty, "left behind: \(Self.leftovers(work))")
        // And the refusal to overwrite without --force applies to the restored folder.
        #expect(throws: BNError.self) { try GoldenStore.write([:], to: out, force: false) }
    }

    /// `--force` replaces a golden folder, never an arbitrary one or a file.
    @Test func forceReplacesOnlyGoldenFolders() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let files = try Self.files(catalog: "train data=normal shape=2x3x1x1\n")
        let notGolden = work.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: notGolden, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: notGolden.appendingPathComponent("cat.jpg"))
        #expect(throws: BNError.self) { try GoldenStore.write(files, to: notGolden, force: true) }
        #expect(try Self.contents(notGolden) == ["cat.jpg": Data("keep me".utf8)])
        let aFile = work.appendingPathComponent("notes.txt")
        try Data("keep me".utf8).write(to: aFile)
        #expect(throws: BNError.self) { try GoldenStore.write(files, to: aFile, force: true) }
        #expect(try Data(contentsOf: aFile) == Data("keep me".utf8))
        #expect(Self.leftovers(work).isEmpty)
    }

    /// `bnspec export --force` replaces an export, never the outputs a user wrote into it.
    @Test func exportForceNeverDeletesResults() throws {
        guard Self.bnspecIsBuilt() else { return }
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("export")
        func export(force: Bool) throws -> (Int32, String) {
            let p = Process(), err = Pipe()
            p.executableURL = URL(fileURLWithPath: Self.bnspec)
            p.arguments = ["export", "--out", out.path, "--golden", Self.root.appendingPathComponent("golden").path,
                           "--match", "train.normal.4x3x5x5.NCHW.f32.pytorch"] + (force ? ["--force"] : [])
            p.standardOutput = FileHandle.nullDevice; p.standardError = err
            try p.run(); p.waitUntilExit()
            return (p.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        #expect(try export(force: false).0 == 0)
        #expect(try export(force: false).0 != 0, "overwrote without --force")
        #expect(try export(force: true).0 == 0, "--force must replace an export")
        let mine = out.appendingPathComponent("results/train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1/y.npy")
        try FileManager.default.createDirectory(at: mine.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("my outputs".utf8).write(to: mine)
        let (status, message) = try export(force: true)
        #expect(status != 0 && message.contains("holds outputs") && message.split(separator: "\n").count == 1, "\(status): \(message)")
        #expect(try Data(contentsOf: mine) == Data("my outputs".utf8))
        try FileManager.default.removeItem(at: out.appendingPathComponent("results"))
        // Nor any other file kept there: a script beside the cases, a note in a case folder (an
        // outside red team's: both were deleted with exit 0).
        for extra in ["run_my_bn.py", "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1/notes.txt"] {
            let file = out.appendingPathComponent(extra)
            try Data("mine".utf8).write(to: file)
            let (st, msg) = try export(force: true)
            #expect(st == 2 && msg.contains("holds 1 file the export did not write (\(extra)); not replaced, even with --force"), "\(st): \(msg)")
            #expect(try Data(contentsOf: file) == Data("mine".utf8))
            try FileManager.default.removeItem(at: file)
        }
        #expect(try export(force: true).0 == 0, "an unchanged export is replaced")
    }
}
