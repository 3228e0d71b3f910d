import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one way BNSpec writes a file: golden folders, exports, reports, probe inputs.
///
/// - Every byte is written: write(2) transfers at most 0x7FFFF000 bytes per call on Linux and may
///   transfer fewer (a signal, a pipe, a quota); ``writeAll(_:_:name:write:)`` loops until all are
///   written, retries EINTR, and never restarts from the start of the buffer.
/// - Every failure is a one-line ``BNError`` naming the file the user asked for (never a temporary
///   one) and the system's reason in words: `golden/x/expected_y.npy: cannot write (no space left
///   on device)`.
public enum FileWrite {
    /// write(2)'s shape, so a test can inject short writes and errors.
    public typealias Call = @Sendable (Int32, UnsafeRawPointer, Int) -> Int
    /// The system's write(2).
    public static let system: Call = { fd, p, n in Glibc.write(fd, p, n) }

    /// The system's words for an errno value, lowercased: "no space left on device".
    public static func reason(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        return text.prefix(1).lowercased() + text.dropFirst()
    }

    /// Writes all of `bytes` to `fd`, looping on short writes and retrying EINTR. `name` is the
    /// file the error names.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, name: String, write: Call = system) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            let why = n == 0 ? "the system wrote 0 of \(bytes.count - offset) bytes" : reason(errno)
            throw BNError.file(path: name, reason: "cannot write (\(why))")
        }
    }

    /// Creates the file `path` (it must not exist) holding `data`. `name` is what errors call it
    /// (default: `path`); a partly written file is removed.
    public static func create(_ data: Data, at path: String, name: String? = nil, write: Call = system) throws {
        let shown = name ?? path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BNError.file(path: shown, reason: "cannot create (\(reason(errno)))") }
        do {
            try data.withUnsafeBytes { try writeAll(fd, $0, name: shown, write: write) }
        } catch {
            close(fd); unlink(path); throw error
        }
        // close(2) can report a deferred write error (NFS, some quotas).
        guard close(fd) == 0 else {
            let e = errno
            unlink(path)
            throw BNError.file(path: shown, reason: "cannot write (\(reason(e)))")
        }
    }

    /// Replaces the file `path` with `data` atomically: a sibling temporary file, renamed over it
    /// when complete. An error names `path` and leaves it as it was.
    public static func replace(_ data: Data, at path: String, write: Call = system) throws {
        try checkWritable(path)
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        unlink(tmp)
        try create(data, at: tmp, name: path, write: write)
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw BNError.file(path: path, reason: "cannot write (\(reason(e)))")
        }
    }

    /// Checks, before a long run, that ``replace(_:at:write:)`` can write `path` later: it is not a
    /// folder, its folder exists and a file can be created there. Creates nothing that stays.
    public static func checkWritable(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            throw BNError.file(path: path, reason: "cannot write (is a folder; give a file name)")
        }
        let url = URL(fileURLWithPath: path)
        let parent = url.deletingLastPathComponent().path
        guard stat(parent, &st) == 0 else {
            throw BNError.file(path: path, reason: "cannot write (its folder \(parent): \(reason(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw BNError.file(path: path, reason: "cannot write (\(parent) is not a folder)")
        }
        let probe = URL(fileURLWithPath: parent).appendingPathComponent(".\(url.lastPathComponent).probe-\(getpid())").path
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BNError.file(path: path, reason: "cannot write (\(reason(errno)))") }
        close(fd); unlink(probe)
    }

    /// Creates the folder `path` (not its parents). `name` is what errors call it.
    static func makeFolder(_ path: String, name: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw BNError.file(path: name, reason: "cannot create the folder (\(reason(errno)))")
        }
    }
}
