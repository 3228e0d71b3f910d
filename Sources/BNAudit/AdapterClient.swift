import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong with an adapter process (not with its numbers).
public enum AdapterFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case timeout(seconds: Double)
    case deadline(seconds: Double)
    case exited(status: Int32, stderr: String)
    case garbage(line: String)
    case protocolError(String)

    public var description: String {
        switch self {
        case .timeout(let s): return "adapter did not answer within \(s) s (killed; restarted for the next case)"
        case .deadline(let s): return "the audit's overall deadline (\(s) s, --timeout) has passed; case not run"
        case .exited(let st, let err):
            let tail = err.split(separator: "\n").last.map(String.init) ?? ""
            return "adapter exited with status \(st)" + (tail.isEmpty ? "" : ": \(tail.prefix(300))")
        case .garbage(let l): return "adapter wrote a line that is not protocol JSON: \(l.prefix(120))"
        case .protocolError(let m): return "adapter protocol error: \(m)"
        }
    }
}

/// One running adapter process speaking JSON lines (spec/AUDIT.md §3).
final class AdapterProcess: @unchecked Sendable {
    let process = Process()
    let input = Pipe(), output = Pipe(), errors = Pipe()
    let cond = NSCondition()
    var pending = Data(), lines: [String] = [], closed = false, stderrTail = Data()
    /// Longest reply line kept (bytes); a longer one is reported as garbage.
    static let maxLine = 1 << 20

    init(command: String, workingDirectory: URL?) throws {
        signal(SIGPIPE, SIG_IGN)  // a dead adapter must be an error, not the end of bnspec
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec " + command]
        if let wd = workingDirectory { process.currentDirectoryURL = wd }
        process.standardInput = input; process.standardOutput = output; process.standardError = errors
        output.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.cond.lock()
            if d.isEmpty { self.closed = true; h.readabilityHandler = nil } else {
                self.pending.append(d)
                while let nl = self.pending.firstIndex(of: 0x0A) {
                    self.lines.append(String(decoding: self.pending[self.pending.startIndex..<nl], as: UTF8.self))
                    self.pending.removeSubrange(self.pending.startIndex...nl)
                }
                // A reply is a short JSON line; an endless one must not exhaust memory.
                if self.pending.count > Self.maxLine {
                    self.lines.append("(a line of more than \(Self.maxLine) bytes)")
                    self.pending = Data()
                }
            }
            self.cond.broadcast(); self.cond.unlock()
        }
        errors.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.cond.lock()
            if d.isEmpty { h.readabilityHandler = nil } else {
                self.stderrTail.append(d)
                if self.stderrTail.count > 8192 { self.stderrTail = self.stderrTail.suffix(4096) }
            }
            self.cond.unlock()
        }
        do { try process.run() } catch {
            throw BNError.invalidArgument("cannot start adapter '\(command)': \(error.localizedDescription)")
        }
    }

    func send(_ object: [String: Any]) throws {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        data.append(0x0A)
        let fd = input.fileHandleForWriting.fileDescriptor
        let ok = data.withUnsafeBytes { buf -> Bool in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        if !ok { throw failureAfterExit() }
    }

    /// The next line, or a failure after `timeout` seconds or when the process ends.
    func readLine(timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while lines.isEmpty {
            if closed { cond.unlock(); let f = failureAfterExit(); cond.lock(); throw f }
            if !cond.wait(until: deadline) { throw AdapterFailure.timeout(seconds: timeout) }
        }
        return lines.removeFirst()
    }

    func failureAfterExit() -> AdapterFailure {
        // Give the process a moment to be reaped so its status is known.
        let until = Date().addingTimeInterval(2)
        while process.isRunning && Date() < until { usleep(10_000) }
        cond.lock(); let err = String(decoding: stderrTail, as: UTF8.self); cond.unlock()
        return .exited(status: process.isRunning ? -1 : process.terminationStatus, stderr: err)
    }

    func stop() {
        if process.isRunning {
            try? send(["type": "bye"])
            try? input.fileHandleForWriting.close()
            let until = Date().addingTimeInterval(1)
            while process.isRunning && Date() < until { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        output.fileHandleForReading.readabilityHandler = nil
        errors.fileHandleForReading.readabilityHandler = nil
    }
}

/// The audit's side of the adapter protocol: start, handshake, one request per case
/// with a timeout, restart after a crash or a hang, an overall deadline.
public final class AdapterClient: @unchecked Sendable {
    public struct Hello: Sendable {
        public var name: String, version: String
        public var ops: Set<String>, dtypes: Set<String>, layouts: Set<String>, cumulative: Bool
        /// false: the implementation keeps no running statistics (supports.running_statistics, spec/AUDIT.md §3).
        public var runningStatistics = true
    }
    public enum Response: Sendable {
        case outputs([String: String])
        case unsupported(String)
        case refused(String)
        case failure(AdapterFailure)
    }

    public let command: String
    public let caseTimeout: Double, startTimeout: Double
    public let deadline: Date
    public let totalTimeout: Double
    public private(set) var hello: Hello?
    /// Restarts so far, and since the last case the adapter answered (the audit gives up on
    /// an adapter after `maxRestarts` restarts in a row without an answer).
    public private(set) var restarts = 0, restartsInARow = 0
    public let maxRestarts: Int
    var process: AdapterProcess?
    let workingDirectory: URL?

    public init(command: String, caseTimeout: Double = 60, startTimeout: Double = 120, totalTimeout: Double = 3600,
                maxRestarts: Int = 5, workingDirectory: URL? = nil) {
        self.command = command; self.caseTimeout = caseTimeout; self.startTimeout = startTimeout
        self.deadline = Date().addingTimeInterval(totalTimeout); self.totalTimeout = totalTimeout; self.maxRestarts = maxRestarts
        self.workingDirectory = workingDirectory
    }

    /// Starts the adapter and reads its hello. Throws a one-line error if it cannot.
    @discardableResult
    public func start() throws -> Hello {
        let p = try AdapterProcess(command: command, workingDirectory: workingDirectory)
        process = p
        do {
            try p.send(["type": "hello", "protocol": "bnspec-adapter/1"])
            let line = try p.readLine(timeout: min(startTimeout, max(1, deadline.timeIntervalSinceNow)))  // within the overall deadline
            guard let obj = Self.parse(line), obj["type"] as? String == "hello" else { throw AdapterFailure.garbage(line: line) }
            guard (obj["protocol"] as? String) == "bnspec-adapter/1" else {
                throw AdapterFailure.protocolError("expected protocol bnspec-adapter/1, got \(obj["protocol"] ?? "none")")
            }
            let sup = obj["supports"] as? [String: Any] ?? [:]
            var h = Hello(name: obj["name"] as? String ?? "adapter", version: obj["version"] as? String ?? "?",
                          ops: Set(sup["ops"] as? [String] ?? []), dtypes: Set(sup["dtypes"] as? [String] ?? []),
                          layouts: Set(sup["layouts"] as? [String] ?? []), cumulative: sup["cumulative"] as? Bool ?? false)
            h.runningStatistics = sup["running_statistics"] as? Bool ?? true
            hello = h
            return h
        } catch let f as AdapterFailure {
            p.stop(); process = nil
            throw BNError.invalidArgument("adapter '\(command)' did not start: \(f.description)")
        }
    }

    static func parse(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// Decodes one reply line of the protocol: the response, nil for a late answer to an
    /// earlier (timed-out) case, or an ``AdapterFailure`` for anything malformed. Total:
    /// never traps, whatever the line holds (fuzzed by tools/fuzz).
    public static func decodeReply(_ line: String, expectedID id: String) throws -> Response? {
        guard let obj = parse(line), let type = obj["type"] as? String else { throw AdapterFailure.garbage(line: line) }
        if let rid = obj["id"] as? String, rid != id { return nil }
        switch type {
        case "result":
            guard let outs = obj["outputs"] as? [String: String] else {
                throw AdapterFailure.protocolError("result without an outputs object of file paths")
            }
            return .outputs(outs)
        case "unsupported": return .unsupported(obj["message"] as? String ?? "unsupported")
        case "error": return .refused(obj["message"] as? String ?? "error")
        default: throw AdapterFailure.protocolError("unexpected reply type '\(type.prefix(40))'")
        }
    }

    /// Sends one case request and waits for its answer. Crashes and hangs become
    /// `.failure`; the adapter is restarted for the next request (up to `maxRestarts`).
    public func run(_ request: [String: Any]) -> Response {
        if Date() >= deadline { stop(); return .failure(.deadline(seconds: totalTimeout)) }
        if process == nil || !(process!.process.isRunning) {
            if hello != nil {  // it ran before: this is a restart
                guard restartsInARow < maxRestarts else {
                    return .failure(.protocolError("adapter failed and was restarted \(restartsInARow) times in a row; giving up on it"))
                }
                restarts += 1; restartsInARow += 1
            }
            process?.stop(); process = nil
            do { try start() } catch { return .failure(.protocolError("\(error)")) }
        }
        guard let p = process else { return .failure(.protocolError("no adapter")) }
        let id = request["id"] as? String ?? ""
        do {
            try p.send(request)
            let timeout = min(caseTimeout, max(1, deadline.timeIntervalSinceNow))
            while true {
                if let r = try Self.decodeReply(try p.readLine(timeout: timeout), expectedID: id) { restartsInARow = 0; return r }
            }
        } catch let f as AdapterFailure {
            p.stop(); process = nil
            return .failure(f)
        } catch {
            p.stop(); process = nil
            return .failure(.protocolError("\(error)"))
        }
    }

    public func stop() { process?.stop(); process = nil }

    deinit { process?.stop() }
}
