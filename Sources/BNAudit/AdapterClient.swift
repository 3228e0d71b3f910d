import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong with an adapter process (not with its numbers). Every description is one line
/// with the adapter's own text (stderr, messages) stripped of control characters.
public enum AdapterFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case timeout(seconds: Double)
    case deadline(seconds: Double)
    case exited(status: Int32, stderr: String)
    case signaled(signal: Int32, stderr: String)
    case garbage(line: String)
    case protocolError(String)
    /// The adapter answered the case with a `fault` reply: the case fails as a protocol fault
    /// (never a refusal); the adapter serves on.
    case fault(String)

    public var description: String {
        func lastLine(_ err: String) -> String {
            let tail = err.split(separator: "\n").last.map(String.init) ?? ""
            return tail.isEmpty ? "" : ": \(tail.prefix(300).escapingControlCharacters())"
        }
        switch self {
        case .timeout(let s): return "adapter did not answer within \(String(format: "%g", s)) s (killed; restarted for the next case)"
        case .deadline(let s): return "the audit's overall deadline (\(s) s, --timeout) has passed; case not run"
        case .exited(let st, let err): return "adapter exited with status \(st)" + lastLine(err)
        case .signaled(let sig, let err): return "adapter was killed by signal \(sig)" + lastLine(err)
        case .garbage(let l): return "adapter wrote a line that is not protocol JSON: \(l.prefix(120).escapingControlCharacters())"
        case .protocolError(let m): return "adapter protocol error: \(m.escapingControlCharacters())"
        case .fault(let m): return "adapter reported a fault: \(m)"
        }
    }
}

/// The audit's side of the adapter protocol (spec/AUDIT.md §3): start, handshake, one request per
/// case with a timeout, restart after a crash or a hang, an overall deadline. The adapter runs as a
/// ``ChildProcess`` (its own process group, ended whole).
public final class AdapterClient: @unchecked Sendable {
    public struct Hello: Sendable {
        public var name: String, version: String
        public var ops: Set<String>, dtypes: Set<String>, layouts: Set<String>, cumulative: Bool
        /// false: the implementation keeps no running statistics (supports.running_statistics, spec/AUDIT.md §3).
        public var runningStatistics = true
    }
    public enum Response: Sendable {
        /// Output name → file, each inside the request's `output_dir` (symlinks resolved).
        case outputs([String: String])
        case unsupported(String)
        case refused(String)
        case failure(AdapterFailure)
    }

    /// What is run (its `description` names it in messages).
    public let child: ChildProcess.Command
    public var command: String { child.description }
    public let caseTimeout: Double, startTimeout: Double
    public let deadline: Date
    public let totalTimeout: Double
    public private(set) var hello: Hello?
    /// Restarts so far, and since the last case the adapter answered (the audit gives up on
    /// an adapter after `maxRestarts` restarts in a row without an answer).
    public private(set) var restarts = 0, restartsInARow = 0
    public let maxRestarts: Int
    /// The timeout each case request was given, in order (≤ `caseTimeout`, and ≤ the time left
    /// before the deadline, but at least 1 s).
    public private(set) var caseTimeouts: [Double] = []
    var process: ChildProcess?
    /// Ids of cases that timed out (a late answer to one is discarded) and of cases answered.
    var timedOut = Set<String>(), answered = Set<String>()

    /// The longest timeout, 10⁹ s (about 32 years): a larger one, `inf` included, means no limit.
    /// (A deadline past it overflowed the condition variable's timespec: `--timeout inf` with
    /// `--case-timeout inf` trapped.)
    public static let noLimit = 1e9

    /// Timeouts in seconds (> 0; each at most ``noLimit``, larger ones taken as it).
    public init(_ child: ChildProcess.Command, caseTimeout: Double = 60, startTimeout: Double = 120, totalTimeout: Double = 3600,
                maxRestarts: Int = 5) {
        self.child = child
        self.caseTimeout = min(caseTimeout, Self.noLimit); self.startTimeout = min(startTimeout, Self.noLimit)
        self.totalTimeout = min(totalTimeout, Self.noLimit)
        self.deadline = Date().addingTimeInterval(self.totalTimeout); self.maxRestarts = maxRestarts
    }

    /// `command` run by `/bin/sh -c` (spec/AUDIT.md §3).
    public convenience init(command: String, caseTimeout: Double = 60, startTimeout: Double = 120, totalTimeout: Double = 3600,
                            maxRestarts: Int = 5, workingDirectory: URL? = nil, environment: [String: String]? = nil) {
        self.init(.shell(command, environment: environment, workingDirectory: workingDirectory), caseTimeout: caseTimeout,
                  startTimeout: startTimeout, totalTimeout: totalTimeout, maxRestarts: maxRestarts)
    }

    /// Starts the adapter and reads its hello. Throws a one-line error if it cannot.
    @discardableResult
    public func start() throws -> Hello {
        let p = try ChildProcess(child)
        process = p
        do {
            let timeout = min(startTimeout, max(1, deadline.timeIntervalSinceNow))  // within the overall deadline
            try p.send(try Self.encode(["type": "hello", "protocol": "bnspec-adapter/1"]), timeout: timeout)
            let line = try p.readLine(timeout: timeout)
            guard let obj = Self.parse(line), obj["type"] as? String == "hello" else { throw AdapterFailure.garbage(line: line) }
            guard (obj["protocol"] as? String) == "bnspec-adapter/1" else {
                throw AdapterFailure.protocolError("expected protocol bnspec-adapter/1, got \("\(obj["protocol"] ?? "none")".prefix(80))")
            }
            let sup = obj["supports"] as? [String: Any] ?? [:]
            func text(_ key: String, _ fallback: String) -> String {
                ((obj[key] as? String) ?? fallback).prefix(200).escapingControlCharacters()
            }
            var h = Hello(name: text("name", "adapter"), version: text("version", "?"),
                          ops: Set(sup["ops"] as? [String] ?? []), dtypes: Set(sup["dtypes"] as? [String] ?? []),
                          layouts: Set(sup["layouts"] as? [String] ?? []), cumulative: sup["cumulative"] as? Bool ?? false)
            h.runningStatistics = sup["running_statistics"] as? Bool ?? true
            hello = h
            return h
        } catch let f as AdapterFailure {
            p.terminate(); process = nil
            // A hang here is no case's: the message says so (the case timeout's text speaks of a restart).
            let why = if case .timeout(let s) = f { "no hello within \(String(format: "%g", s)) s; killed" } else { f.description }
            throw BNError.invalidArgument("adapter '\(command.escapingControlCharacters())' did not start (\(why))")
        }
    }

    static func encode(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func parse(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// Decodes one reply line of the protocol for the case `id`: the response; nil for a late
    /// answer to a case in `timedOut` (discarded); an ``AdapterFailure`` for anything else — a
    /// malformed line, a reply without an `id`, a reply for a case never asked or already answered
    /// (`answered`). Total: never traps, whatever the line holds (fuzzed by tools/fuzz).
    public static func decodeReply(_ line: String, expectedID id: String, timedOut: Set<String> = [],
                                   answered: Set<String> = []) throws -> Response? {
        guard let obj = parse(line), let type = obj["type"] as? String else { throw AdapterFailure.garbage(line: line) }
        guard let rid = obj["id"] as? String else {
            if let other = obj["id"], !(other is NSNull) {
                let shown = ((try? encode(["id": other])).map { String(decoding: $0, as: UTF8.self) } ?? "?").dropFirst(6).dropLast()
                throw AdapterFailure.protocolError("a reply whose \"id\" is not a string (\(shown.prefix(60))) while case \(id) was asked")
            }
            throw AdapterFailure.protocolError("a reply without an \"id\" while case \(id) was asked")
        }
        if rid != id {
            if timedOut.contains(rid) { return nil }
            if answered.contains(rid) { throw AdapterFailure.protocolError("a second reply for case \(rid.prefix(200)), already answered") }
            throw AdapterFailure.protocolError("a reply for case '\(rid.prefix(200))', which was not asked (case \(id) was)")
        }
        func message() -> String { ((obj["message"] as? String) ?? type).prefix(500).escapingControlCharacters() }
        switch type {
        case "result":
            guard let outs = obj["outputs"] as? [String: String] else {
                throw AdapterFailure.protocolError("result without an outputs object of file paths")
            }
            return .outputs(outs)
        case "unsupported": return .unsupported(message())
        case "error": return .refused(message())
        case "fault": return .failure(.fault(message()))
        default: throw AdapterFailure.protocolError("unexpected reply type '\(type.prefix(40))'")
        }
    }

    /// Sends one case request and waits for its answer. Crashes and hangs become
    /// `.failure`; the adapter is restarted for the next request (up to `maxRestarts`).
    /// Output files are accepted only inside the request's `output_dir` (``AdapterOutputs``).
    public func run(_ request: [String: Any]) -> Response {
        Cleanup.parkIfEnding()
        if Date() >= deadline { stop(); return .failure(.deadline(seconds: totalTimeout)) }
        if process == nil || process!.ended != nil {
            if hello != nil {  // it ran before: this is a restart
                guard restartsInARow < maxRestarts else {
                    return .failure(.protocolError("adapter failed and was restarted \(restartsInARow) times in a row; giving up on it"))
                }
                restarts += 1; restartsInARow += 1
            }
            process?.terminate(); process = nil
            do { try start() } catch { return .failure(.protocolError("\(error)")) }
        }
        guard let p = process else { return .failure(.protocolError("no adapter")) }
        let id = request["id"] as? String ?? ""
        let timeout = min(caseTimeout, max(1, deadline.timeIntervalSinceNow))
        caseTimeouts.append(timeout)
        let outputFolder = (request["output_dir"] as? String).map(AdapterOutputs.Identity.init)
        do {
            try p.send(try Self.encode(request), timeout: timeout)
            let until = Date().addingTimeInterval(timeout)
            while true {
                let line: String
                do { line = try p.readLine(timeout: until.timeIntervalSinceNow) } catch AdapterFailure.timeout {
                    throw AdapterFailure.timeout(seconds: timeout)
                }
                guard let r = try Self.decodeReply(line, expectedID: id, timedOut: timedOut, answered: answered) else { continue }
                restartsInARow = 0
                answered.insert(id)
                if case .outputs(let files) = r, let dir = request["output_dir"] as? String {
                    return AdapterOutputs.confine(files, to: dir, before: outputFolder)
                }
                return r
            }
        } catch let f as AdapterFailure {
            Cleanup.parkIfEnding()  // the adapter was ended by bnspec's own signal cleanup
            if case .timeout = f { timedOut.insert(id) }
            p.terminate(); process = nil
            return .failure(f)
        } catch {
            p.terminate(); process = nil
            return .failure(.protocolError("\(error)"))
        }
    }

    /// Says goodbye and ends the adapter's whole process group.
    public func stop() {
        process?.stop(goodbye: try? Self.encode(["type": "bye"]))
        process = nil
    }

    deinit { process?.terminate() }
}
