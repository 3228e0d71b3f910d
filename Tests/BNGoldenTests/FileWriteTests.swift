import BNCore
import BNGolden
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 14 item 1: every byte written exactly once, every failure one line naming the target.
@Suite struct FileWriteTests {
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-write-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func files() throws -> [String: Data] {
        let cases = try Catalog.parse("train data=normal shape=4x3x5x5\ninfer data=nonfinite shape=4x3x5x5\n", source: "test")
            .cases[Catalog.defaultSuite] ?? []
        return try Generator.suiteFiles(cases, suite: Catalog.defaultSuite)
    }

    static func contents(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for path in GoldenStore.listFiles(dir) { out[path] = try Data(contentsOf: dir.appendingPathComponent(path)) }
        return out
    }

    /// write(2) may transfer fewer bytes than asked (at most 0x7FFFF000, or fewer after a signal):
    /// a writer that takes at most 1000 bytes per call, and fails every third call with EINTR,
    /// still produces the exact bytes.
    @Test func shortAndInterruptedWritesAreCompleted() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let files = try Self.files()
        let calls = Counter()
        try GoldenStore.write(files, to: work.appendingPathComponent("golden"), force: false) { fd, p, n in
            if calls.next() % 3 == 2 { errno = EINTR; return -1 }
            return Glibc.write(fd, p, min(n, 1000))
        }
        let minimum = files.values.reduce(0) { $0 + max(1, ($1.count + 999) / 1000) }  // calls of ≤ 1000 bytes
        #expect(calls.value >= minimum, "the writer was called \(calls.value) times, fewer than the \(minimum) short writes needed")
        #expect(try Self.contents(work.appendingPathComponent("golden")) == files)
    }

    /// A full disk: the error says so in words, names the file as the user knows it (not the
    /// temporary folder), the previous generation stays, and nothing is left behind.
    @Test func fullDiskIsOneLineNamingTheTarget() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("golden")
        let old = try Self.files()
        try GoldenStore.write(old, to: out, force: false)
        var new = old
        new["extra/more.npy"] = Data(repeating: 7, count: 100_000)
        let written = Counter()
        do {
            try GoldenStore.write(new, to: out, force: true) { fd, p, n in
                if written.add(n) > 50_000 { errno = ENOSPC; return -1 }
                return Glibc.write(fd, p, n)
            }
            Issue.record("the write succeeded")
        } catch let e as BNError {
            let msg = e.description
            #expect(msg.contains("no space left on device") && msg.hasPrefix(out.path + "/") && !msg.contains(".tmp-")
                    && !msg.contains("\n"), "\(msg)")
        }
        #expect(try Self.contents(out) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path) == ["golden"])
    }

    /// The real thing: a 2 GiB + 8 KiB file (more than one write(2) can take) written through
    /// GoldenStore. The source is a sparse file mapped into memory (no 2 GiB of RAM); its first and
    /// last 4 KiB are marked, and the written file must end with the last marker, not with a copy
    /// of the first (the bug: the write restarted from the buffer's start after 0x7FFFF000 bytes).
    /// It writes 2 GiB to disk (≈ 30 s on a busy 2-core machine), so it runs only with
    /// BNSPEC_LARGE_FILE_TEST=1 (reported as skipped otherwise); the short-write test above covers
    /// the same loop in CI.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["BNSPEC_LARGE_FILE_TEST"] == "1",
                   "writes 2 GiB; set BNSPEC_LARGE_FILE_TEST=1"))
    func fileOverTwoGiBIsWrittenWhole() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let size = 0x8000_0000 + 8192
        let source = work.appendingPathComponent("source")
        let fd = open(source.path, O_RDWR | O_CREAT, 0o600)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(ftruncate(fd, off_t(size)) == 0)
        let head = [UInt8](repeating: 0xAA, count: 4096), tail = [UInt8](repeating: 0x55, count: 4096)
        #expect(pwrite(fd, head, head.count, 0) == head.count && pwrite(fd, tail, tail.count, off_t(size - tail.count)) == tail.count)
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            Issue.record("cannot map the sparse source file"); return
        }
        defer { munmap(map, size) }
        let data = Data(bytesNoCopy: map, count: size, deallocator: .none)
        let out = work.appendingPathComponent("golden")
        try GoldenStore.write(["big.npy": data], to: out, force: false)
        let written = out.appendingPathComponent("big.npy")
        #expect((try FileManager.default.attributesOfItem(atPath: written.path)[.size] as? Int) == size)
        let h = try FileHandle(forReadingFrom: written)
        defer { try? h.close() }
        try h.seek(toOffset: UInt64(size - tail.count))
        #expect(try h.read(upToCount: tail.count).map(Array.init) == tail, "the last 4 KiB are not the source's last 4 KiB")
        try h.seek(toOffset: 0)
        #expect(try h.read(upToCount: head.count).map(Array.init) == head)
    }

    /// read(2) may return fewer bytes than asked: a reader that returns at most 777 bytes per call
    /// (and EINTR every fourth call) gives the whole file; a file that ends early is an error.
    @Test func shortReadsAreCompleted() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let bytes = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: work.appendingPathComponent("f"))
        let calls = Counter()
        let dir = open(work.path, O_RDONLY | O_DIRECTORY)
        defer { close(dir) }
        let got = try FileRead.data("f", relativeTo: dir, name: "f", limit: 1 << 20) { fd, p, n in
            if calls.next() % 4 == 3 { errno = EINTR; return -1 }
            return Glibc.read(fd, p, min(n, 777))
        }
        #expect(got == bytes && calls.value > 100)
        #expect(throws: BNError.self) {
            _ = try FileRead.data("f", relativeTo: dir, name: "f", limit: 1 << 20) { _, _, _ in 0 }
        }
    }

    /// Reports are replaced atomically, and a path that can never be written is refused up front.
    @Test func reportPathsAreCheckedBeforeTheWork() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let report = work.appendingPathComponent("report.json").path
        try FileWrite.replace(Data("one".utf8), at: report)
        try FileWrite.replace(Data("two".utf8), at: report)
        #expect(try Data(contentsOf: URL(fileURLWithPath: report)) == Data("two".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path) == ["report.json"])
        for (path, want) in [(work.path, "is a folder"), (work.appendingPathComponent("no/such/r.json").path, "no such file or directory"),
                             (report + "/x.json", "is not a folder"), ("/proc/version/r.json", "is not a folder")] {
            do { try FileWrite.checkWritable(path); Issue.record("\(path): accepted") } catch let e as BNError {
                #expect(e.description.contains(want) && e.description.hasPrefix(path), "\(e.description)")
            }
        }
    }

    /// Report paths go where the user means (an outside red team's findings): a previous report
    /// or an empty file is replaced; any other existing file is refused, unchanged; /dev/null and
    /// a FIFO are written through and stay what they are; a symbolic link stays and its target
    /// is replaced; an empty path is an error.
    @Test func reportPathsAreWrittenWhereTheUserMeans() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let report = Data("{\n  \"bnspec_version\" : \"0\"\n}\n".utf8)
        let previous = work.appendingPathComponent("r.json").path
        try FileWrite.writeReport(report, to: previous)
        try FileWrite.writeReport(report + Data(" ".utf8), to: previous)
        #expect(try Data(contentsOf: URL(fileURLWithPath: previous)) == report + Data(" ".utf8))
        let mine = work.appendingPathComponent("y.npy").path
        try Data("user data".utf8).write(to: URL(fileURLWithPath: mine))
        #expect(throws: BNError.self) { try FileWrite.writeReport(report, to: mine) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: mine)) == Data("user data".utf8))
        do { _ = try FileWrite.reportTarget(mine) } catch let e as BNError {
            #expect(e.description == "\(mine): exists and is not a BNSpec report; not replaced (remove it or name another file)", "\(e.description)")
        }
        let empty = work.appendingPathComponent("made-by-mktemp").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        try FileWrite.writeReport(report, to: empty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: empty)) == report)
        try FileWrite.writeReport(report, to: "/dev/null")
        var st = stat()
        #expect(stat("/dev/null", &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR)
        let fifo = work.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        // The reader is open before the write (a reader thread could close first: SIGPIPE).
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        try FileWrite.writeReport(report, to: fifo)
        var got = [UInt8](repeating: 0, count: 4096)
        #expect(read(reader, &got, got.count) == report.count)
        #expect(lstat(fifo, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO)
        let link = work.appendingPathComponent("link.json").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "r.json")
        try FileWrite.writeReport(report, to: link)
        #expect(lstat(link, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK)
        #expect(try Data(contentsOf: URL(fileURLWithPath: previous)) == report)
        #expect(throws: BNError.self) { try FileWrite.reportTarget("") }
        // Round J: a user's file reached through /proc (or /dev/shm) is judged as any other path,
        // not appended to; a FIFO with no reader is refused before the work; held descriptors are
        // written through.
        #expect(throws: BNError.self) { try FileWrite.writeReport(report, to: "/proc/self/root" + mine) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: mine)) == Data("user data".utf8))
        let lonely = work.appendingPathComponent("no-reader").path
        #expect(mkfifo(lonely, 0o600) == 0)
        do { _ = try FileWrite.reportTarget(lonely); Issue.record("a FIFO without a reader was accepted") } catch let e as BNError {
            #expect(e.description.contains("no process reads"), "\(e.description)")
        }
        for held in ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/2", "/proc/42/fd/7"] { #expect(FileWrite.isHeldDescriptor(held), "\(held)") }
        for other in ["/proc/self/cwd/x.json", "/dev/shm/x.json", "/dev/fd/", "/dev/fd/1x", "/proc/self/fd/1/x"] { #expect(!FileWrite.isHeldDescriptor(other), "\(other)") }
    }
}

/// A thread-safe counter for the injected system calls.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
    /// Returns the count before this call.
    func next() -> Int { add(1) - 1 }
    /// Adds `k`; returns the new total.
    func add(_ k: Int) -> Int { lock.lock(); defer { lock.unlock() }; n += k; return n }
}
