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
    public static func confine(_ files: [String: String], to outputDir: String) -> AdapterClient.Response {
        guard let root = resolved(outputDir) else {
            return .failure(.protocolError("output_dir \(outputDir) does not exist after the adapter's answer"))
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

    /// The canonical absolute path (symlinks resolved), nil when it does not exist.
    static func resolved(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
