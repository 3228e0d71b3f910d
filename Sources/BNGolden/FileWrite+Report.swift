import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Report files (`--json`, `--junit`, `--html`): where they may go, checked before the work.
///
/// - A new path: written atomically (``FileWrite/replace(_:at:write:)``).
/// - An existing regular file: replaced only when it is empty or a previous BNSpec report (its
///   first 4 KiB hold `"bnspec_version"`, `<testsuites name="bnspec ` or `<title>BNSpec `);
///   anything else is the user's and is not replaced (an outside red team's: `--json
///   results/<case>/y.npy` overwrote a recorded output).
/// - A symbolic link: followed; its target is judged as above.
/// - A character device or FIFO, or a descriptor the caller holds open (`/dev/stdout`, `/dev/stderr`,
///   `/dev/fd/N`, `/proc/self/fd/N`: a shell's `>(…)` or a redirection to a file): written through,
///   appended, never replaced by a file (it had turned /dev/null into a regular file, run as root,
///   and been refused as not root). Any other path under /dev/ or /proc/ is judged as above (round J:
///   `/proc/self/cwd/notes.txt` and `/dev/shm/notes.txt` had had a report appended to the user's
///   file). A FIFO that no process reads is refused before the work (its open would block).
public extension FileWrite {
    enum ReportTarget: Equatable {
        case replace(String), through(String)
    }

    /// Where the report for `path` goes; throws the one-line error before any work.
    static func reportTarget(_ path: String) throws -> ReportTarget {
        guard !path.isEmpty else { throw BNError.invalidArgument("a report path is empty (give a file name)") }
        var any = stat()
        if isHeldDescriptor(path), stat(path, &any) == 0, (any.st_mode & S_IFMT) != S_IFDIR {
            guard access(path, W_OK) == 0 else { throw BNError.file(path: path, reason: "cannot write (\(reason(errno)))") }
            try checkFIFOReader(path, mode: any.st_mode)
            return .through(path)
        }
        var resolved = path
        var lst = stat()
        if lstat(path, &lst) == 0 && (lst.st_mode & S_IFMT) == S_IFLNK {
            guard let real = realpath(path, nil) else {
                // A dangling link: its target is created.
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(path, &buf, buf.count - 1)
                guard n > 0 else { throw BNError.file(path: path, reason: "cannot read the link (\(reason(errno)))") }
                let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                resolved = target.hasPrefix("/") ? target : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(target).path
                try checkWritable(resolved)
                return .replace(resolved)
            }
            resolved = String(cString: real); free(real)
        }
        var st = stat()
        if stat(resolved, &st) == 0 {
            switch st.st_mode & S_IFMT {
            case S_IFCHR, S_IFIFO:
                guard access(resolved, W_OK) == 0 else { throw BNError.file(path: path, reason: "cannot write (\(reason(errno)))") }
                try checkFIFOReader(resolved, mode: st.st_mode)
                return .through(resolved)
            case S_IFREG:
                guard isReplaceableReport(resolved, size: Int(st.st_size)) else {
                    throw BNError.file(path: path, reason: "exists and is not a BNSpec report; not replaced (remove it or name another file)")
                }
            case S_IFDIR: break  // checkWritable names it
            default: throw BNError.file(path: path, reason: "cannot write (not a regular file, character device or FIFO)")
            }
        }
        try checkWritable(resolved)
        return .replace(resolved)
    }

    /// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` or `/proc/self/fd/N` (`/proc/PID/fd/N`): a descriptor
    /// the caller opened, whose target (a pipe, a terminal, a file redirected to) is the caller's choice.
    static func isHeldDescriptor(_ path: String) -> Bool {
        if path == "/dev/stdout" || path == "/dev/stderr" { return true }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        let digits = { (s: Substring) in !s.isEmpty && s.allSatisfy(\.isASCII) && s.allSatisfy(\.isNumber) }
        if parts.count == 4, parts[0] == "", parts[1] == "dev", parts[2] == "fd" { return digits(parts[3]) }
        if parts.count == 5, parts[0] == "", parts[1] == "proc", parts[2] == "self" || digits(parts[2]), parts[3] == "fd" { return digits(parts[4]) }
        return false
    }

    /// A FIFO with no reader: opening it for writing would block until one comes (a hang at the
    /// end of the run, an outside red team's); refused with one line before the work.
    internal static func checkFIFOReader(_ path: String, mode: mode_t) throws {
        guard (mode & S_IFMT) == S_IFIFO else { return }
        let fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 { close(fd); return }
        if errno == ENXIO { throw BNError.file(path: path, reason: "cannot write (a FIFO that no process reads: the write would wait forever)") }
        throw BNError.file(path: path, reason: "cannot write (\(reason(errno)))")
    }

    /// Writes a report to `path` as ``reportTarget(_:)`` decides.
    static func writeReport(_ data: Data, to path: String) throws {
        switch try reportTarget(path) {
        case .replace(let p): try replace(data, at: p)
        case .through(let p):
            let fd = open(p, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else { throw BNError.file(path: path, reason: "cannot write (\(reason(errno)))") }
            defer { close(fd) }
            try data.withUnsafeBytes { try writeAll(fd, $0, name: path) }
        }
    }

    /// An empty file, or one whose first 4 KiB show a BNSpec report.
    internal static func isReplaceableReport(_ path: String, size: Int) -> Bool {
        if size == 0 { return true }
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let head = String(decoding: (try? h.read(upToCount: 4096)) ?? Data(), as: UTF8.self)
        return ["\"bnspec_version\"", "<testsuites name=\"bnspec ", "<title>BNSpec "].contains { head.contains($0) }
    }
}
