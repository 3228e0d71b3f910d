import ArgumentParser
import BNAudit
import BNCore
import BNGolden
import BNKernels
import Foundation

/// `bnspec` — the command-line face of BNSpec. Each subcommand is thin: it parses
/// arguments, calls a library module, and prints.
///
/// Exit status (as CI systems read it): 0 everything asked passed; 1 an implementation failed a
/// case (a verdict); 2 the run could not be completed as asked (an adapter that does not start,
/// bad input, an unknown profile, corrupt golden files, no case checked); 64 a command line that
/// does not parse or contradicts itself (EX_USAGE). Every error is one line on stderr,
/// `bnspec: error: <what> (<why>)`.
@main
struct BNSpec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bnspec",
        abstract: "The reference for Batch Normalization numerics: golden vectors, verification and audit.",
        version: ReportFormat.bnspecVersion,
        subcommands: [Verify.self, AuditCommand.self, ExportCommand.self, MergeCommand.self, Fingerprint.self, Accuracy.self, Bench.self,
                      FoldCheck.self, Generate.self, Oracle.self, Nist.self, LibraryHostCommand.self])

    /// Exit statuses beyond 0 and 1.
    static let incomplete: Int32 = 2, usage: Int32 = 64

    /// Runs `body`, turning a BNSpec error into a one-line message and exit status 2 (a usage
    /// error, ``usageError(_:)``, exits 64 through ``main()``).
    static func run(_ body: () throws -> Void) throws {
        do {
            if let bad = KernelISA.environmentError { throw BNError.invalidArgument(bad) }
            try body()
        } catch let e as BNError {
            // One line whatever the error quotes (a path or case id with a newline or an escape
            // sequence in it): control characters are written escaped.
            StandardStream.write("bnspec: error: \(e.description.escapingControlCharacters())\n", to: 2)
            throw ExitCode(incomplete)
        } catch let e as CocoaError {
            // A file operation Foundation refused (an outside red team's TMPDIR of a 4 KB path gave
            // its raw "Error Domain=NSCocoaErrorDomain Code=514 …"): the path and the reason, one line.
            let underlying = e.underlying as NSError?
            let why = underlying.map { $0.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32($0.code))) : $0.localizedDescription }
                ?? "Foundation file error \(e.code.rawValue)"
            let line = "\(e.filePath ?? "a file"): cannot be read or written (\(why))"
            StandardStream.write("bnspec: error: \(line.escapingControlCharacters())\n", to: 2)
            throw ExitCode(incomplete)
        }
    }

    /// A command line that contradicts itself: exit 64 with one line.
    static func usageError(_ message: String) -> ValidationError { ValidationError(message) }

    /// Parses and runs; ArgumentParser's own errors (unknown option, missing value, validation)
    /// become one line and exit 64; `--help` and `--version` print as usual.
    static func main() {
        // A reader that leaves (`bnspec … | head -1`) must not end bnspec between an adapter's
        // start and its cleanup, nor mid-write of a golden folder: writes to it return EPIPE
        // instead. On stderr, where the progress lines go, that ends the run as a signal does
        // (`writeStderr`); on stdout the run finishes, its exit status the verdict's.
        signal(SIGPIPE, SIG_IGN)
        // Started with stdin, stdout or stderr closed (`2>&-`): /dev/null takes its place, so
        // that no file bnspec opens later becomes descriptor 0–2 and receives progress lines or
        // error text (an outside red team's `2>&-` runs ended by SIGILL in FileHandle.write).
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            let null = open("/dev/null", O_RDWR)
            if null >= 0 && null != fd { dup2(null, fd); close(null) }
        }
        do { try Preflight.argumentsAreUTF8() } catch {  // before parsing: arguments that are not UTF-8 are usage errors
            StandardStream.write("bnspec: error: \(error)\n", to: 2)
            Foundation.exit(usage)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if error is ExitCode { Foundation.exit(code.rawValue) }
            if code == .success { Swift.print(fullMessage(for: error)); Foundation.exit(0) }
            let lines = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let text = lines.joined(separator: "; ").replacingOccurrences(of: "Error: ", with: "")
            // Parse and validation errors are usage (64); anything else a command throws stopped the run (2).
            let isUsage = code == .validationFailure
            // `<what> (<why>)`: a usage error points to the help; any other error's text is why the run stopped.
            let line = isUsage ? "\(text) (see bnspec help)" : BNError.isErrorLine("bnspec: error: \(text)") ? text : "the run stopped (\(text))"
            StandardStream.write("bnspec: error: \(line.escapingControlCharacters())\n", to: 2)
            Foundation.exit(isUsage ? usage : incomplete)
        }
    }
}

/// Writes `text` to stderr. When its reader has gone (EPIPE: `bnspec audit … 2>&1 | head -1`),
/// bnspec ends as on SIGINT (``Cleanup``: adapters ended, temporary folders removed), then by
/// SIGPIPE, exit status 141 in a shell: no one is reading the progress of the run any more.
func writeStderr(_ text: String) {
    if StandardStream.write(text, to: 2) == EPIPE { Cleanup.endByBrokenPipe() }
}

/// Runs a folder write (`GoldenStore.write`: generate, export) so that SIGINT, SIGTERM or SIGHUP
/// removes its temporary folder (the target stays whole): `body` gets the write call, which
/// stops at its next write once a signal is ending bnspec (the removal does not race it), and
/// the hook that registers the temporary folder. (An interrupted export had left its
/// `.NAME.tmp-PID` folder: an outside red team's.)
func removedOnSignal<T>(_ body: (@escaping FileWrite.Call, @escaping (URL) -> Void) throws -> T) throws -> T {
    Cleanup.installSignalHandlers()
    nonisolated(unsafe) var temporary: URL?
    defer { if let t = temporary { Cleanup.forgetScratch(t) } }
    return try body({ fd, bytes, count in Cleanup.parkIfEnding(); return FileWrite.system(fd, bytes, count) },
                    { temporary = $0; Cleanup.registerScratch($0) })
}

/// Writes `value` as pretty, key-sorted JSON to stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try enc.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Formats a table: the first column and the columns in `left` left-aligned (text), the others
/// right-aligned (numbers).
func table(_ header: [String], _ rows: [[String]], left: Set<Int> = []) -> String {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, s in
            let pad = String(repeating: " ", count: widths[i] - s.count)
            return i == 0 || left.contains(i) ? (i == r.count - 1 ? s : s + pad) : pad + s
        }.joined(separator: "  ")
    }
    let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
    return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
}
