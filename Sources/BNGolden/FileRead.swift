import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading an input file without trusting it.
public enum FileRead {
    /// read(2)'s shape, so a test can inject short reads.
    public typealias Call = @Sendable (Int32, UnsafeMutableRawPointer, Int) -> Int
    /// The system's read(2).
    public static let system: Call = { fd, p, n in Glibc.read(fd, p, n) }

    /// The bytes of `url`, which must be a regular file (after following symlinks) of at most
    /// `limit` bytes. A FIFO, a device (e.g. /dev/zero), a folder or an oversized file is a
    /// one-line ``BNError`` before anything is read — reading it could hang or exhaust memory.
    public static func data(_ url: URL, limit: Int) throws -> Data {
        try data(url.path, relativeTo: AT_FDCWD, name: url.path, limit: limit)
    }

    /// The bytes of `path` opened relative to the folder descriptor `dir` (`AT_FDCWD`: the current
    /// folder), checked as in ``data(_:limit:)``. `name` is what errors call it. The file is opened
    /// once (non-blocking, so a FIFO cannot hang the open) and checked on that descriptor: it cannot
    /// be swapped between the check and the read.
    public static func data(_ path: String, relativeTo dir: Int32, name: String, limit: Int, read: Call = system) throws -> Data {
        let fd = openat(dir, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let e = errno
            throw BNError.file(path: name, reason: e == ENOENT ? "no such file" : "cannot read the file (\(FileWrite.reason(e)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw BNError.file(path: name, reason: "cannot read the file (\(FileWrite.reason(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw BNError.file(path: name, reason: "is not a regular file") }
        guard Int(st.st_size) <= limit else {
            throw BNError.file(path: name, reason: "is \(st.st_size) bytes, over the limit of \(limit)")
        }
        _ = fcntl(fd, F_SETFL, 0)  // a regular file: blocking reads again
        return try readAll(fd, size: Int(st.st_size), name: name, read: read)
    }

    /// Reads exactly `size` bytes from `fd`, looping on short reads (read(2) returns at most
    /// 0x7FFFF000 bytes per call) and retrying EINTR. A file that ends early (it shrank while read)
    /// is an error.
    static func readAll(_ fd: Int32, size: Int, name: String, read: Call = system) throws -> Data {
        var out = Data(count: size)
        try out.withUnsafeMutableBytes { buf in
            var offset = 0
            while offset < size {
                let n = read(fd, buf.baseAddress! + offset, size - offset)
                if n > 0 { offset += n; continue }
                if n < 0 && errno == EINTR { continue }
                throw BNError.file(path: name, reason: n == 0 ? "ends after \(offset) of its \(size) bytes (changed while read)"
                                                                 : "cannot read the file (\(FileWrite.reason(errno)))")
            }
        }
        return out
    }

    /// Largest NPY file read: the header (≤ 64 KiB) and ``NPYArray/maxElements`` float64 values.
    public static let npyLimit = (1 << 16) + NPYArray.maxElements * 8
    /// Largest text file read (catalog, case.json, manifest.json).
    public static let textLimit = 64 << 20
}
