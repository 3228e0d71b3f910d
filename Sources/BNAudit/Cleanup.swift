import BNCore
import CBNProcess
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What bnspec must undo however it ends: the process groups of the adapters it started
/// (``ChildProcess``) and its scratch folders.
///
/// - On a normal end each owner undoes its own (``ChildProcess/terminate(grace:)``,
///   ``removeScratch(_:)``); an `atexit` handler kills any group still registered.
/// - On SIGINT, SIGTERM or SIGHUP (after ``installSignalHandlers()``): every registered group gets
///   SIGTERM, then SIGKILL after ``grace`` seconds for what is left of it, no new adapter is
///   started, every registered scratch folder is removed, and bnspec ends by the same signal (exit
///   status 128 + signal, as a shell reports it).
/// - SIGKILL cannot be caught: an adapter then sees end-of-file on its stdin, which ends it under
///   the protocol (spec/AUDIT.md §3).
public enum Cleanup {
    /// Seconds between SIGTERM and SIGKILL.
    public static let grace = 2.0

    nonisolated(unsafe) static var groups = Set<pid_t>()
    nonisolated(unsafe) static var scratch = Set<String>()
    nonisolated(unsafe) static var endingBy: Int32 = 0
    nonisolated(unsafe) static var installed = false
    static let lock = NSLock()

    /// True once a signal is ending bnspec: no adapter may be started any more.
    public static var ending: Bool { lock.withLock { endingBy != 0 } }

    /// Once a signal is ending bnspec, the calling thread stops here for good (until the process
    /// ends): the audit loop must not start adapters or create case folders while the cleanup
    /// removes them. Called by the adapter client between requests and after a failure.
    public static func parkIfEnding() {
        guard ending else { return }
        while true { sleep(60) }
    }

    /// Registers a started group. One started while a signal was ending bnspec (after the cleanup
    /// took its list) is killed here, and the caller parked.
    static func register(group: pid_t) {
        let late = lock.withLock { () -> Bool in
            installAtExit()
            groups.insert(group)
            return endingBy != 0
        }
        if late { killpg(group, SIGKILL); parkIfEnding() }
    }
    static func unregister(group: pid_t) { _ = lock.withLock { groups.remove(group) } }

    /// A new scratch folder `bnspec-NAME-PID` in the temporary folder (`TMPDIR`), registered for
    /// removal on a signal. One-line errors when `TMPDIR` is not a usable folder.
    public static func makeScratch(_ name: String) throws -> URL {
        let base = FileManager.default.temporaryDirectory
        let shown = ProcessInfo.processInfo.environment["TMPDIR"].map { "TMPDIR=\($0)" } ?? base.path
        var st = stat()
        guard stat(base.path, &st) == 0 else {
            throw BNError.file(path: shown, reason: "cannot be used as the temporary folder (\(errnoText(errno)); set TMPDIR to a writable folder)")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw BNError.file(path: shown, reason: "is not a folder (set TMPDIR to a writable folder)")
        }
        let url = base.appendingPathComponent("bnspec-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        removeStaleScratch(in: base)
        guard mkdir(url.path, 0o700) == 0 else {
            throw BNError.file(path: url.path, reason: "cannot create the scratch folder (\(errnoText(errno)); set TMPDIR to a writable folder)")
        }
        _ = lock.withLock { scratch.insert(url.path) }
        try? Data(scratchMark.utf8).write(to: url.appendingPathComponent(scratchMarkFile))
        return url
    }

    /// The mark in every scratch folder: that bnspec made it, on which boot and in which PID
    /// namespace its PID means what `kill(pid, 0)` says here. ``removeStaleScratch(in:)`` removes
    /// only marked folders of this boot and namespace: a user's own `bnspec-audit-99999`, or a
    /// live run's in a container with another PID namespace sharing /tmp, is left alone (an
    /// outside red team's notes.txt in such a folder had been deleted).
    static let scratchMarkFile = ".bnspec-scratch"
    static let scratchMark: String = {
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let ns = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")) ?? "unknown"
        return "bnspec scratch\nboot \(boot)\npid namespace \(ns)\n"
    }()

    /// Registers a folder another writer creates (`generate`'s `.NAME.tmp-PID`) for removal on
    /// a signal; ``forgetScratch(_:)`` when the writer is done with it.
    /// Once a signal is ending bnspec the caller is parked instead (the cleanup has taken its list).
    public static func registerScratch(_ url: URL) {
        let late = lock.withLock { () -> Bool in
            if endingBy != 0 { return true }
            scratch.insert(url.path); return false
        }
        if late { parkIfEnding() }
    }
    public static func forgetScratch(_ url: URL) { _ = lock.withLock { scratch.remove(url.path) } }

    /// Removes the scratch folders `bnspec-NAME-PID` of this user's bnspec runs that are dead (a
    /// SIGKILL cannot be caught; an outside red team's kill -KILL left one). A folder whose PID is
    /// alive, or another user's, is not touched.
    static let scratchNames: Set<String> = ["bnspec-audit", "bnspec-fingerprint"]
    static func removeStaleScratch(in base: URL) {
        let me = getuid()
        for item in (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? [] {
            // Only the names makeScratch gives ("bnspec-audit-PID", "bnspec-fingerprint-PID").
            guard let dash = item.lastIndex(of: "-"), scratchNames.contains(String(item[..<dash])),
                  item[item.index(after: dash)...].allSatisfy(\.isASCII), let pid = pid_t(item[item.index(after: dash)...]),
                  pid > 0, pid != getpid() else { continue }
            let path = base.appendingPathComponent(item).path
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == me,
                  (try? String(contentsOfFile: path + "/" + scratchMarkFile, encoding: .utf8)) == scratchMark else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    /// Removes a scratch folder made by ``makeScratch(_:)``.
    public static func removeScratch(_ url: URL) {
        _ = lock.withLock { scratch.remove(url.path) }
        try? FileManager.default.removeItem(at: url)
    }

    static func errnoText(_ e: Int32) -> String {
        let t = String(cString: strerror(e))
        return t.prefix(1).lowercased() + t.dropFirst()
    }

    /// Catches SIGINT, SIGTERM and SIGHUP for the cleanup above (idempotent). The CLI calls it
    /// before it starts an adapter.
    public static func installSignalHandlers() {
        lock.lock(); defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        var fds: [Int32] = [0, 0]
        guard bn_pipe_cloexec(&fds) == 0 else { return }
        let reader = fds[0]
        Thread.detachNewThread {
            var b: UInt8 = 0
            while true {
                let n = read(reader, &b, 1)
                if n == 1 { endBySignal(Int32(b)) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
            }
        }
        _ = bn_signals_to_pipe(fds[1])
    }

    /// bnspec's stderr reader has gone (EPIPE, SIGPIPE being ignored): the cleanup of a signal,
    /// then the end by SIGPIPE. Returns only when a signal is ending bnspec already.
    public static func endByBrokenPipe() { endBySignal(SIGPIPE) }

    static func endBySignal(_ sig: Int32) {
        let first: Bool = lock.withLock {
            if endingBy != 0 { return false }
            endingBy = sig; return true
        }
        guard first else { return }
        terminateAll(grace: grace)
        endAdoptedOrphans(grace: grace)
        // The writer's thread parks at its next step (registerScratch); until then it may finish
        // the step it is in: add a file while a folder is removed ("not empty"), or remove the same
        // folder (its set-aside old generation) at once, which fails our removal part way. Retry
        // until the folder is gone, for at most 2 s (a red team's run under load left one).
        for path in lock.withLock({ scratch }) {
            let until = Date().addingTimeInterval(2)
            while FileManager.default.fileExists(atPath: path) && Date() < until {
                try? FileManager.default.removeItem(atPath: path)
                if FileManager.default.fileExists(atPath: path) { usleep(2_000) }
            }
        }
        signal(sig, SIG_DFL)
        kill(getpid(), sig)
        _exit(128 + sig)
    }

    /// SIGTERM to every registered group, SIGKILL after `grace` seconds to what is left; waits
    /// (at most `grace` + 2 s) until no live process of any of them remains.
    static func terminateAll(grace: Double) {
        let all = lock.withLock { groups }
        for g in all where ProcessGroup.hasLiveMembers(g) { killpg(g, SIGTERM) }
        let soft = Date().addingTimeInterval(grace)
        while Date() < soft && all.contains(where: ProcessGroup.hasLiveMembers) { usleep(20_000) }
        for g in all where ProcessGroup.hasLiveMembers(g) { killpg(g, SIGKILL) }
        let hard = Date().addingTimeInterval(2)
        while Date() < hard && all.contains(where: ProcessGroup.hasLiveMembers) { usleep(10_000) }
    }

    nonisolated(unsafe) static var atExitInstalled = false
    static func installAtExit() {
        guard !atExitInstalled else { return }
        atExitInstalled = true
        atexit {
            let left = Cleanup.lock.withLock { Cleanup.groups }
            if !left.isEmpty { Cleanup.terminateAll(grace: 0.5) }
            Cleanup.endAdoptedOrphans(grace: 0.5)
        }
    }

    nonisolated(unsafe) static var adopting = false
    /// Makes bnspec the reaper of its adapters' descendants (``bn_become_subreaper``): one that
    /// left its adapter's process group (setsid) and outlived it is bnspec's child, and is ended at
    /// exit or on a signal (an outside red team's: such a grandchild ran on under init).
    public static func adoptOrphans() {
        lock.withLock {
            guard !adopting else { return }
            adopting = bn_become_subreaper() == 0
            installAtExit()
        }
    }

    /// bnspec's live children (``ProcessGroup/liveProcesses(_:)``: parent = this process).
    static func children() -> [pid_t] {
        let me = getpid()
        return ProcessGroup.liveProcesses { parent, _ in parent == me } ?? []
    }

    /// Ends what the adapters left as bnspec's children once their groups are gone: SIGTERM,
    /// SIGKILL after `grace` seconds, reaped; repeated while new orphans appear (at most 5 rounds).
    public static func endAdoptedOrphans(grace: Double) {
        guard lock.withLock({ adopting }) else { return }
        for _ in 0..<5 {
            let left = children()
            if left.isEmpty { break }
            for p in left { kill(p, SIGTERM) }
            let soft = Date().addingTimeInterval(grace)
            while Date() < soft && !children().isEmpty { while waitpid(-1, nil, WNOHANG) > 0 {}; usleep(20_000) }
            for p in children() { kill(p, SIGKILL) }
            usleep(20_000)
            while waitpid(-1, nil, WNOHANG) > 0 {}
        }
    }
}

/// The processes of a process group, read from /proc.
public enum ProcessGroup {
    /// True while a process of group `pgid` is alive (a zombie, dead but not yet reaped, does not
    /// count). Where /proc cannot be read: whether the group can be signalled.
    public static func hasLiveMembers(_ pgid: pid_t) -> Bool {
        guard let members = liveMembers(pgid) else { return kill(-pgid, 0) == 0 }
        return !members.isEmpty
    }

    /// The pids of the live (non-zombie) processes in group `pgid`; nil when /proc cannot be read.
    public static func liveMembers(_ pgid: pid_t) -> [pid_t]? { liveProcesses { _, group in group == pgid } }

    /// The pids of the live (non-zombie) processes whose (parent, process group) `keep` accepts;
    /// nil when /proc cannot be read.
    static func liveProcesses(_ keep: (_ parent: pid_t, _ group: pid_t) -> Bool) -> [pid_t]? {
        guard let dir = opendir("/proc") else { return nil }
        defer { closedir(dir) }
        var out: [pid_t] = []
        var buf = [UInt8](repeating: 0, count: 1024)
        while let e = readdir(dir) {
            // d_name is read in place, up to its NUL: copying the 256-byte field reads past a short
            // last entry of readdir's buffer (AddressSanitizer: heap-buffer-overflow).
            let name = String(cString: (UnsafeRawPointer(e) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!).assumingMemoryBound(to: CChar.self))
            guard let pid = pid_t(name) else { continue }
            let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            let n = read(fd, &buf, buf.count)
            close(fd)
            guard n > 0 else { continue }
            // "pid (comm) S ppid pgrp …"; comm may hold ')' and spaces: parse after the last ')'.
            let line = buf[0..<n]
            guard let close = line.lastIndex(of: UInt8(ascii: ")")) else { continue }
            let fields = line[(close + 1)...].split(separator: UInt8(ascii: " "))
            guard fields.count > 2, let state = fields[0].first, let parent = pid_t(String(decoding: fields[1], as: UTF8.self)),
                  let group = pid_t(String(decoding: fields[2], as: UTF8.self)) else { continue }
            if keep(parent, group) && state != UInt8(ascii: "Z") && state != UInt8(ascii: "X") { out.append(pid) }
        }
        return out
    }
}
