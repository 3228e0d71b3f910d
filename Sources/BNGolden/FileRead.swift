import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading an input file without trusting it.
public enum FileRead {
    /// The bytes of `url`, which must be a regular file (after following symlinks) of at most
    /// `limit` bytes. A FIFO, a device (e.g. /dev/zero), a folder or an oversized file is a
    /// one-line ``BNError`` before anything is read — reading it could hang or exhaust memory.
    public static func data(_ url: URL, limit: Int) throws -> Data {
        var st = stat()
        guard stat(url.path, &st) == 0 else {
            throw BNError.file(path: url.path, reason: errno == ENOENT ? "no such file" : "cannot read the file")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw BNError.file(path: url.path, reason: "is not a regular file") }
        guard Int(st.st_size) <= limit else {
            throw BNError.file(path: url.path, reason: "is \(st.st_size) bytes, over the limit of \(limit)")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw BNError.file(path: url.path, reason: "cannot read the file")
        }
        return data
    }

    /// Largest NPY file read: the header (≤ 64 KiB) and ``NPYArray/maxElements`` float64 values.
    public static let npyLimit = (1 << 16) + NPYArray.maxElements * 8
    /// Largest text file read (catalog, case.json, manifest.json).
    public static let textLimit = 64 << 20
}
