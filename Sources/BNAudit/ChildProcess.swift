import BNCore
import CBNProcess
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process that bnspec talks to in lines over pipes (an adapter, spec/AUDIT.md §3), run
/// as the leader of its own process group so that everything it starts can be ended with it.
///
/// - Started with posix_spawn (`POSIX_SPAWN_SETPGROUP`, default signal dispositions, an empty
///   signal mask), registered with ``Cleanup`` until its whole group is gone.
/// - Its end is learnt by waiting on it (waitpid on a thread of its own), not from end-of-file on
///   its stdout: a child that exits while a process it forked keeps stdout open is reported as
///   exited, with its status, at once. Output it wrote before it ended is read first.
/// - Memory is bounded whatever it prints: a stdout line over `maxLine` bytes is replaced by a
///   marker, at most ``maxQueuedLines`` unread lines are kept, and of stderr only the last
///   `stderrTail` bytes.
/// - ``terminate(grace:)`` ends the whole group: SIGTERM, `grace` seconds, SIGKILL, and waits until
///   no process of the group is alive.
public final class ChildProcess: @unchecked Sendable {
    /// What to run. Generic: the adapter client runs a shell command line, other clients (a
    /// library host) an executable with arguments and environment.
    public struct Command: Sendable, CustomStringConvertible {
        public var executable: String
        public var arguments: [String]
        /// The environment; nil inherits bnspec's.
        public var environment: [String: String]?
        public var workingDirectory: URL?
        /// How messages name the command.
        public var description: String

        public init(executable: String, arguments: [String] = [], environment: [String: String]? = nil,
                    workingDirectory: URL? = nil, description: String? = nil) {
            self.executable = executable; self.arguments = arguments; self.environment = environment
            self.workingDirectory = workingDirectory
            self.description = description ?? ([executable] + arguments).joined(separator: " ")
        }

        /// `line` run by `/bin/sh -c` (spec/AUDIT.md §3): compound commands (`cd dir && python3
        /// x.py`), pipes and variables work; the shell and everything it starts share the group.
        /// A simple command (``isSimple(_:)``) is run as `exec LINE`, so that the adapter itself is
        /// bnspec's child: its exit status, a signal that killed it and a stdin it closed are then
        /// seen directly rather than through the shell (which holds the pipes while it waits).
        public static func shell(_ line: String, environment: [String: String]? = nil, workingDirectory: URL? = nil) -> Command {
            Command(executable: "/bin/sh", arguments: ["-c", isSimple(line) ? "exec " + line : line], environment: environment,
                    workingDirectory: workingDirectory, description: line)
        }

        /// True for a shell command line that is one simple command: no operator, redirection,
        /// subshell, substitution or newline, no reserved word or variable assignment first.
        /// `exec` in front of it means the same thing; in front of anything else it need not.
        public static func isSimple(_ line: String) -> Bool {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = words.first, !first.contains("=") else { return false }
            let reserved: Set<Substring> = ["if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
                                            "{", "}", "!", "function", "exec", "time", "[[", "select", "coproc"]
            return !reserved.contains(first) && !line.contains(where: { ";&|<>()`\n\r".contains($0) })
        }
    }

    /// How the child ended.
    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// Most unread stdout lines kept; later ones are dropped (a reply is one line per request).
    public static let maxQueuedLines = 64

    public let command: Command
    /// The child's pid, which is also its process group's id.
    public let pid: pid_t
    let maxLine: Int, stderrLimit: Int
    let stdinFD: Int32
    let cond = NSCondition()
    // Guarded by `cond`:
    var lines: [String] = []
    var pending: [UInt8] = []
    var discardingLongLine = false
    var stdoutEOF = false
    var stderrTail: [UInt8] = []
    var termination: Termination?
    var stdinClosed = false
    var reaped: Termination?  // set by the waiter, published as `termination` after the output is drained

    /// Starts `command`. Throws a one-line ``BNError`` when it cannot be started at all.
    public init(_ command: Command, maxLine: Int = 1 << 20, stderrTail: Int = 8192) throws {
        self.command = command; self.maxLine = maxLine; self.stderrLimit = stderrTail
        Cleanup.parkIfEnding()
        signal(SIGPIPE, SIG_IGN)  // a dead child must be an error, not the end of bnspec
        var inP: [Int32] = [0, 0], outP: [Int32] = [0, 0], errP: [Int32] = [0, 0], note: [Int32] = [0, 0]
        guard bn_pipe_cloexec(&inP) == 0, bn_pipe_cloexec(&outP) == 0, bn_pipe_cloexec(&errP) == 0,
              bn_pipe_cloexec(&note) == 0 else {
            throw BNError.invalidArgument("cannot start '\(command.description)' (no pipes: \(Cleanup.errnoText(errno)))")
        }
        let args = [command.executable] + command.arguments
        let env = command.environment.map { $0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } }
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?]? = env.map { $0.map { strdup($0) } + [nil] }
        defer { cArgs.forEach { free($0) }; cEnv?.forEach { free($0) } }
        var child: pid_t = 0
        let rc: Int32 = cArgs.withUnsafeMutableBufferPointer { a in
            if var e = cEnv {
                return e.withUnsafeMutableBufferPointer { e in
                    bn_spawn_group(&child, command.executable, a.baseAddress, e.baseAddress, command.workingDirectory?.path,
                                   inP[0], outP[1], errP[1])
                }
            }
            return bn_spawn_group(&child, command.executable, a.baseAddress, nil, command.workingDirectory?.path, inP[0], outP[1], errP[1])
        }
        close(inP[0]); close(outP[1]); close(errP[1])
        guard rc == 0 else {
            for fd in [inP[1], outP[0], errP[0], note[0], note[1]] { close(fd) }
            throw BNError.invalidArgument("cannot start '\(command.description)' (\(Cleanup.errnoText(rc)))")
        }
        pid = child
        stdinFD = inP[1]
        _ = fcntl(stdinFD, F_SETFL, fcntl(stdinFD, F_GETFL) | O_NONBLOCK)
        Cleanup.register(group: child)
        let (outFD, errFD, noteRead, noteWrite) = (outP[0], errP[0], note[0], note[1])
        Thread.detachNewThread { [self] in waitForExit(notify: noteWrite) }
        Thread.detachNewThread { [self] in pump(out: outFD, err: errFD, note: noteRead) }
    }

    deinit {
        close(stdinFD)
    }

    // MARK: Threads

    /// Waits for the child to end; tells the pump through `notify`.
    func waitForExit(notify: Int32) {
        var status: Int32 = 0
        var r: pid_t
        repeat { r = waitpid(pid, &status, 0) } while r < 0 && errno == EINTR
        let t: Termination = r < 0 ? .exited(-1)
            : (status & 0x7F) == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
        cond.lock(); reaped = t; cond.unlock()
        var b: UInt8 = 1
        _ = write(notify, &b, 1)
        close(notify)
    }

    /// Reads stdout (into lines) and stderr (into the tail) until the child has ended, then drains
    /// what it wrote before ending and publishes its termination.
    func pump(out: Int32, err: Int32, note: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        var fds = [pollfd(fd: out, events: Int16(POLLIN), revents: 0), pollfd(fd: err, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: note, events: Int16(POLLIN), revents: 0)]
        var open = [true, true]
        func readOnce(_ i: Int) -> Bool {  // false at end-of-file or error
            let n = read(fds[i].fd, &buf, buf.count)
            if n < 0 && errno == EINTR { return true }
            if n <= 0 {
                open[i] = false; fds[i].fd = -1
                if i == 0 { cond.lock(); stdoutEOF = true; cond.broadcast(); cond.unlock() }
                return false
            }
            cond.lock()
            if i == 0 { takeStdout(buf[0..<n]) } else { takeStderr(buf[0..<n]) }
            cond.broadcast(); cond.unlock()
            return true
        }
        while true {
            let r = poll(&fds, nfds_t(fds.count), -1)
            if r < 0 { if errno == EINTR { continue }; break }
            for i in 0..<2 where open[i] && fds[i].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { _ = readOnce(i) }
            if fds[2].revents != 0 { break }
        }
        // The child has ended: what it wrote before is in the pipes now. Drain without blocking
        // (a process it forked may hold them open and write forever: read at most what is there).
        for i in 0..<2 where open[i] {
            _ = fcntl(fds[i].fd, F_SETFL, fcntl(fds[i].fd, F_GETFL) | O_NONBLOCK)
            var budget = 64
            while budget > 0, readOnce(i) { budget -= 1 }
        }
        close(out); close(err); close(note)
        cond.lock()
        termination = reaped ?? .exited(-1)
        stdoutEOF = true
        cond.broadcast(); cond.unlock()
    }

    /// Splits stdout into lines (caller holds `cond`).
    func takeStdout(_ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while let nl = rest.firstIndex(of: 0x0A) {
            if discardingLongLine { discardingLongLine = false } else {
                pending.append(contentsOf: rest[..<nl])
                queue(String(decoding: pending, as: UTF8.self))
            }
            pending.removeAll(keepingCapacity: true)
            rest = rest[(nl + 1)...]
        }
        guard !discardingLongLine else { return }
        pending.append(contentsOf: rest)
        if pending.count > maxLine {  // a reply is a short JSON line; an endless one must not exhaust memory
            queue("(a line of more than \(maxLine) bytes)")
            pending = []
            discardingLongLine = true
        }
    }

    func queue(_ line: String) {
        if lines.count < Self.maxQueuedLines { lines.append(line) }
    }

    /// Keeps the last `stderrLimit` bytes (caller holds `cond`).
    func takeStderr(_ bytes: ArraySlice<UInt8>) {
        stderrTail.append(contentsOf: bytes.suffix(stderrLimit))
        if stderrTail.count > 2 * stderrLimit { stderrTail.removeFirst(stderrTail.count - stderrLimit) }
    }

    // MARK: Talking

    /// How the child ended; nil while it runs.
    public var ended: Termination? { cond.lock(); defer { cond.unlock() }; return termination }

    /// The last lines it wrote on stderr (at most `stderrTail` bytes), control characters escaped.
    public var stderrText: String {
        cond.lock(); defer { cond.unlock() }
        return String(decoding: stderrTail.suffix(stderrLimit), as: UTF8.self).escapingControlCharacters(keepNewlines: true)
    }

    /// The failure to report once the child has ended.
    func exitFailure() -> AdapterFailure {
        switch ended {
        case .exited(let s): return .exited(status: s, stderr: stderrText)
        case .signaled(let s): return .signaled(signal: s, stderr: stderrText)
        case nil: return .protocolError("adapter is still running")
        }
    }

    /// Waits (at most `seconds`) for the child to end; true when it has.
    @discardableResult
    public func waitForEnd(seconds: Double) -> Bool {
        let until = Date().addingTimeInterval(min(seconds, AdapterClient.noLimit))
        cond.lock(); defer { cond.unlock() }
        while termination == nil { if !cond.wait(until: until) { break } }
        return termination != nil
    }

    /// Writes `line` and a newline to the child's stdin within `timeout` seconds.
    /// Throws ``AdapterFailure``: the child ended (with its status), it closed its stdin while
    /// running, or it did not take the line in time.
    public func send(_ line: Data, timeout: Double) throws {
        var data = line
        data.append(0x0A)
        if cond.withLock({ stdinClosed }) { throw AdapterFailure.protocolError("bnspec closed the adapter's stdin already") }
        let until = Date().addingTimeInterval(min(timeout, AdapterClient.noLimit))
        try data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            var off = 0
            while off < buf.count {
                if ended != nil { throw exitFailure() }
                let n = write(stdinFD, buf.baseAddress! + off, buf.count - off)
                if n > 0 { off += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN {
                    let left = until.timeIntervalSinceNow
                    guard left > 0 else { throw AdapterFailure.timeout(seconds: timeout) }
                    var p = pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, Int32(min(left, 0.25) * 1000) + 1)
                    continue
                }
                // EPIPE: no reader. Either the child ended or it closed its stdin and runs on.
                if waitForEnd(seconds: 1) { throw exitFailure() }
                throw AdapterFailure.protocolError("closed its stdin while still running (it can take no more requests)")
            }
        }
    }

    /// The next line from the child's stdout within `timeout` seconds.
    /// Throws ``AdapterFailure``: a timeout, the child's end (lines it wrote before are returned
    /// first), or stdout closed while the child runs on.
    public func readLine(timeout: Double) throws -> String {
        let until = Date().addingTimeInterval(min(timeout, AdapterClient.noLimit))
        cond.lock()
        while lines.isEmpty {
            if termination != nil { cond.unlock(); throw exitFailure() }
            if stdoutEOF {
                cond.unlock()
                if waitForEnd(seconds: 1) { throw exitFailure() }
                throw AdapterFailure.protocolError("closed its stdout while still running")
            }
            if !cond.wait(until: until) {
                if lines.isEmpty { cond.unlock(); throw AdapterFailure.timeout(seconds: timeout) }
            }
        }
        let line = lines.removeFirst()
        cond.unlock()
        return line
    }

    /// Closes the child's stdin (end of requests).
    public func closeInput() {
        cond.lock(); defer { cond.unlock() }
        if !stdinClosed { stdinClosed = true; shutdownWrite() }
    }

    func shutdownWrite() {
        // Replace our end by /dev/null rather than closing it: deinit closes stdinFD once.
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if null >= 0 { dup2(null, stdinFD); close(null) }
    }

    /// Ends the child and every process of its group: SIGTERM, up to `grace` seconds, SIGKILL;
    /// returns when none is alive (or 2 s after SIGKILL). Idempotent.
    public func terminate(grace: Double = Cleanup.grace) {
        closeInput()
        if ended == nil || ProcessGroup.hasLiveMembers(pid) {
            killpg(pid, SIGTERM)
            let soft = Date().addingTimeInterval(grace)
            while Date() < soft && (ended == nil || ProcessGroup.hasLiveMembers(pid)) { usleep(10_000) }
            if ended == nil || ProcessGroup.hasLiveMembers(pid) {
                killpg(pid, SIGKILL)
                let hard = Date().addingTimeInterval(2)
                while Date() < hard && (ended == nil || ProcessGroup.hasLiveMembers(pid)) { usleep(10_000) }
            }
        }
        Cleanup.unregister(group: pid)
    }

    /// Asks the child to end on its own (`goodbye` sent, stdin closed), waits up to `seconds`,
    /// then ``terminate(grace:)``s what is left of its group.
    public func stop(goodbye: Data? = nil, seconds: Double = 1) {
        if ended == nil, let g = goodbye { try? send(g, timeout: 0.5) }
        closeInput()
        waitForEnd(seconds: seconds)
        terminate()
    }
}
