import ArgumentParser
import BNAudit
import BNCore
import BNLibraryHost
import Foundation

/// `bnspec library-host PATH` (hidden): serves the adapter protocol for a kernel library that
/// implements the C ABI (spec/AUDIT.md §7). `audit --library` and `fingerprint --library` start
/// it as their adapter, so the library runs in this child process, never in the audit's.
struct LibraryHostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "library-host",
        abstract: "Serve the adapter protocol for a C-ABI kernel library (started by audit --library).",
        shouldDisplay: false)
    @Argument(help: "The kernel library (.so).") var path: String
    @Option(help: "Prefix of the library's bnspec_kernel_… symbols.") var symbolPrefix = ""
    @Flag(help: "Load and check the library, print one line (ok<TAB>summary or error<TAB>reason) and exit.") var check = false
    @Option(help: "The bnspec process this host serves: the host ends when it is gone (default: the parent at start).")
    var parentPid: Int32?

    func run() throws {
        // This host ends when bnspec does, even inside a kernel call that never returns (an
        // outside red team's: after kill -KILL of the audit, a hung host ran on under init).
        LibraryHost.endWithParent(parentPid)
        // Before the library loads: what its constructors print goes to stderr, not the protocol.
        let out = LibraryHost.divertStdout()
        if check {
            func say(_ line: String) { FileHandle(fileDescriptor: out).write(Data((line + "\n").utf8)) }
            do { say("ok\t\(try LibraryHost(path: path, symbolPrefix: symbolPrefix).summary)") } catch let e as BNError {
                if case .file(_, let reason) = e { say("error\t\(reason)") } else { say("error\t\(e.description)") }
                throw ExitCode(1)
            }
            return
        }
        try BNSpec.run { try LibraryHost(path: path, symbolPrefix: symbolPrefix).serve(protocolOut: out) }
    }
}

/// The library route of `audit` and `fingerprint`: checks in a child process that the library
/// loads (a missing file or symbol, or an ABI version mismatch, is one line before any work),
/// then returns the adapter command that runs it through `bnspec library-host`.
enum LibraryRoute {
    /// A symbol prefix is the start of a C identifier: letters, digits and '_', not a digit first
    /// (an outside red team's prefix with a newline split the error line in two).
    static func checkSymbolPrefix(_ prefix: String) throws {
        let ok = prefix.unicodeScalars.enumerated().allSatisfy { i, u in
            u == "_" || ("a"..."z").contains(u) || ("A"..."Z").contains(u) || (i > 0 && ("0"..."9").contains(u))
        }
        if !ok { throw BNSpec.usageError("--symbol-prefix '\(prefix.escapingControlCharacters())' is not the start of a C identifier (letters, digits, '_'; not a digit first)") }
    }

    static func adapterCommand(library: String, symbolPrefix: String, timeout given: Double) throws -> String {
        let timeout = min(given, AdapterClient.noLimit)  // inf: no limit
        guard !library.isEmpty else { throw BNError.invalidArgument("--library is empty (give the path of a shared library)") }
        guard FileManager.default.fileExists(atPath: library) else { throw BNError.file(path: library, reason: "no such library file") }
        // A FIFO, a device or a folder is refused before the host opens it (dlopen of a FIFO
        // blocked until the start timeout and read "did not load": an outside red team's).
        var st = stat()
        guard stat(library, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw BNError.file(path: library, reason: "is not a regular file (a shared library is one)")
        }
        let path = URL(fileURLWithPath: library).standardizedFileURL.path
        let exe = try executable()
        let args = ["library-host", path, "--parent-pid", String(getpid())] + (symbolPrefix.isEmpty ? [] : ["--symbol-prefix", symbolPrefix])
        // A process the library's constructors started and detached (setsid, double fork) is
        // adopted and ended with the check (an outside red team's daemon ran on under init).
        Cleanup.adoptOrphans()
        let (status, out, err) = try runChild(exe, args + ["--check"], timeout: timeout)
        Cleanup.endAdoptedOrphans(grace: 0.5)
        // A signal ending bnspec ended the check too: that is the user's interrupt, not a crash of
        // the library (it read "crashed while loading (status 143)"); the signal's cleanup ends
        // bnspec by that signal.
        Cleanup.parkIfEnding()
        let line = out.split(separator: "\n").first.map(String.init) ?? ""
        if status != 0 || !line.hasPrefix("ok\t") {
            if line.hasPrefix("error\t") { throw BNError.file(path: library, reason: String(line.dropFirst(6))) }
            let tail = err.split(separator: "\n").last.map(String.init) ?? ""
            let crashed = "library-host: the kernel crashed: ", exited = "library-host: the kernel called exit "
            // The check line said "ok" but the host did not end: the library loaded, and hung at
            // exit (a destructor; an outside red team's was reported "did not load").
            if status < 0 && line.hasPrefix("ok\t") {
                throw BNError.file(path: library, reason: "loaded, but the process did not exit within \(Int(timeout)) s after the check (a destructor or an atexit handler that hangs?)")
            }
            throw BNError.file(path: library, reason: status < 0 ? "did not load within \(Int(timeout)) s"
                               : tail.hasPrefix(crashed) ? "crashed while loading: \(tail.dropFirst(crashed.count).prefix(200))"
                               : tail.hasPrefix(exited) ? "called exit while loading (status \(status)) \(tail.dropFirst(exited.count).prefix(200))"
                               : "crashed while loading (status \(status))\(tail.isEmpty ? "" : ": \(tail.prefix(200))")")
        }
        return ([exe] + args).map(Shell.quoted).joined(separator: " ")
    }

    /// This executable's absolute path (the child runs the same build).
    static func executable() throws -> String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        let a0 = CommandLine.arguments[0]
        guard a0.contains("/") else { throw BNError.invalidArgument("cannot locate the bnspec executable to start library-host") }
        return URL(fileURLWithPath: a0).standardizedFileURL.path
    }


    /// Runs `exe args` as a ``ChildProcess`` (its own process group, ended whole; no temporary
    /// files): its exit status (128 + signal when a signal ended it; −1 after `timeout` s, killed),
    /// its first stdout line and the tail of its stderr.
    static func runChild(_ exe: String, _ args: [String], timeout: Double) throws -> (Int32, String, String) {
        let child = try ChildProcess(.init(executable: exe, arguments: args))
        defer { child.terminate() }
        child.closeInput()
        let until = Date().addingTimeInterval(timeout)
        let line = (try? child.readLine(timeout: timeout)) ?? ""
        guard child.waitForEnd(seconds: max(0.1, until.timeIntervalSinceNow)) else { return (-1, line, child.stderrText) }
        switch child.ended {
        case .exited(let s)?: return (s, line, child.stderrText)
        case .signaled(let s)?: return (128 + s, line, child.stderrText)
        case nil: return (-1, line, child.stderrText)
        }
    }
}
