import BNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A golden folder opened once: every file of a run is read relative to one folder descriptor, so
/// the run sees one generation even while `bnspec generate --force` swaps a new one in (SPEC §6.3).
///
/// The swap (``GoldenStore/write(_:to:force:marker:write:)``) renames the new folder over the old
/// one and then deletes the old one. A run that opened the old folder keeps reading it; files it
/// has not opened yet may be deleted under it. Such a read fails with "changed during the run"
/// (never "missing" or a checksum mismatch between generations), one line, and the run stops.
public final class GoldenFolder: Sendable {
    /// The path the folder was opened by.
    public let url: URL
    let fd: Int32
    let device: UInt64, inode: UInt64

    /// Opens `url` (following symlinks); a one-line error when it is missing or not a folder.
    public init(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw BNError.file(path: url.path, reason: e == ENOENT ? "no such folder"
                               : e == ENOTDIR ? "is not a folder" : "cannot open the folder (\(FileWrite.reason(e)))")
        }
        var st = stat()
        fstat(fd, &st)
        self.url = url; self.fd = fd; device = UInt64(st.st_dev); inode = UInt64(st.st_ino)
    }

    deinit { close(fd) }

    /// True when the path no longer names the folder that was opened (another generation was
    /// swapped in, or the folder was removed).
    public var changed: Bool {
        var st = stat(), mine = stat()
        fstat(fd, &mine)
        guard mine.st_nlink > 0, stat(url.path, &st) == 0 else { return true }
        return UInt64(st.st_dev) != device || UInt64(st.st_ino) != inode
    }

    /// The error for a read that failed because the folder was replaced meanwhile.
    var changedError: BNError {
        .file(path: url.path, reason: "golden changed during the run (another generation was swapped in while bnspec read it; rerun)")
    }

    /// The bytes of `relative` (a path inside the folder), a regular file of at most `limit` bytes.
    /// A file missing because the folder was replaced is reported as such, not as missing.
    public func data(_ relative: String, limit: Int) throws -> Data {
        let shown = url.appendingPathComponent(relative).path
        do { return try FileRead.data(relative, relativeTo: fd, name: shown, limit: limit) } catch {
            if changed { throw changedError }
            throw error
        }
    }

    /// Whether `relative` exists (without following a final symlink).
    public func exists(_ relative: String) -> Bool {
        var st = stat()
        return fstatat(fd, relative, &st, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// Relative paths of every regular file in the folder, sorted (symlinks are not followed).
    public func listFiles() throws -> [String] {
        var out: [String] = []
        func walk(_ dirfd: Int32, _ prefix: String) throws {
            guard let d = fdopendir(dirfd) else { close(dirfd); return }
            defer { closedir(d) }
            while let e = readdir(d) {
                // d_name is read in place, up to its NUL: copying the 256-byte field reads past a short
                // last entry of readdir's buffer (AddressSanitizer: heap-buffer-overflow).
                let name = String(cString: (UnsafeRawPointer(e) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!).assumingMemoryBound(to: CChar.self))
                if name == "." || name == ".." { continue }
                var st = stat()
                guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFREG: out.append(prefix + name)
                case S_IFDIR:
                    let sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if sub >= 0 { try walk(sub, prefix + name + "/") }
                default: continue
                }
            }
        }
        let again = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)  // fdopendir takes ownership
        guard again >= 0 else { throw BNError.file(path: url.path, reason: "cannot list the folder (\(FileWrite.reason(errno)))") }
        try walk(again, "")
        return out.sorted()
    }
}
