import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where an adapter's output files may be: inside the `output_dir` of its request
/// (spec/AUDIT.md §3), each a file of its own. A path anywhere else — the golden folder's own
/// `expected_*.npy`, a file of another case, /dev/zero — or a hard link to one would let an
/// adapter pass without computing anything.
public enum AdapterOutputs {
    /// `files` (output name → path; a relative path is taken relative to `outputDir`) with every
    /// path resolved (symlinks followed, `..` removed), or a protocol error naming the first one
    /// that resolves outside `outputDir`. A path that does not exist stays as given when it lies
    /// inside `outputDir` (reading it then reports it missing).
    ///
    /// `before`, the folder's ``Identity`` when the request was sent: an `output_dir` that the
    /// adapter replaced meanwhile (by a symlink to the golden case folder, whose expected_*.npy it
    /// then named as its outputs: an outside red team's, which passed) is refused.
    public static func confine(_ files: [String: String], to outputDir: String, before: Identity? = nil) -> AdapterClient.Response {
        guard let root = resolved(outputDir) else {
            return .failure(.protocolError("output_dir \(outputDir) does not exist after the adapter's answer"))
        }
        // A folder the request named but bnspec did not make (the fingerprint's probes leave it to the
        // adapter) must be a folder itself, not a symlink to one.
        if let before, before.path == nil ? !Identity(outputDir).isDirectory : Identity(outputDir) != before {
            return .failure(.protocolError("output_dir \(outputDir) was replaced during the case (it is no longer the folder bnspec made; outputs are new files written into it)"))
        }
        var out: [String: String] = [:]
        for name in files.keys.sorted() {
            let given = files[name]!
            let absolute = given.hasPrefix("/") ? given : URL(fileURLWithPath: outputDir).appendingPathComponent(given).path
            let path = resolved(absolute) ?? URL(fileURLWithPath: absolute).standardizedFileURL.path
            guard path.hasPrefix(root + "/") else {
                return .failure(.protocolError("output '\(name.prefix(80))' is \(given.prefix(200)), which is outside output_dir \(outputDir) (outputs are read only from there)"))
            }
            // A hard link is the same file as its other names: one to the golden folder's
            // expected_*.npy inside output_dir would pass unread (an outside red team's).
            var st = stat()
            if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_nlink > 1 {
                return .failure(.protocolError("output '\(name.prefix(80))' is \(given.prefix(200)), a hard link (\(st.st_nlink) names for one file); outputs are new files written into output_dir"))
            }
            out[name] = path
        }
        return .outputs(out)
    }

    /// A folder as the file system knows it: its resolved path, device and inode, and whether
    /// the path itself is a directory (not a symlink to one). Folders cannot be hard-linked, so
    /// the same identity after the adapter's answer is the same folder.
    public struct Identity: Equatable, Sendable {
        var path: String?, device: UInt64, inode: UInt64, isDirectory: Bool
        public init(_ folder: String) {
            var st = stat()
            let ok = lstat(folder, &st) == 0
            path = AdapterOutputs.resolved(folder)
            device = ok ? UInt64(st.st_dev) : 0
            inode = ok ? UInt64(st.st_ino) : 0
            isDirectory = ok && (st.st_mode & S_IFMT) == S_IFDIR
        }
    }

    /// The canonical absolute path (symlinks resolved), nil when it does not exist.
    static func resolved(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
