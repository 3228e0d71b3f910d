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
/// - A character device or FIFO, or any existing non-folder under /dev/ or /proc/ (`/dev/null`, `/dev/stdout`,
///   a shell's `>(…)` at /dev/fd/N): written through, appended, never replaced by a file (it had
///   turned /dev/null into a regular file, run as root, and been refused as not root).
public extension FileWrite {
    enum ReportTarget: Equatable {
        case replace(String), through(String)
    }

    /// Where the report for `path` goes; throws the one-line error before any work.
    static func reportTarget(_ path: String) throws -> ReportTarget {
        guard !path.isEmpty else { throw BNError.invalidArgument("a report path is empty (give a file name)") }
        var any = stat()
        if path.hasPrefix("/dev/") || path.hasPrefix("/proc/"), stat(path, &any) == 0, (any.st_mode & S_IFMT) != S_IFDIR {
            guard access(path, W_OK) == 0 else { throw BNError.file(path: path, reason: "cannot write (\(reason(errno)))") }
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
