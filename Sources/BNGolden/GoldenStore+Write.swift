import BNCore
import CBNFiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writing a golden (or export) folder: checked before any work, atomic, nothing lost.
extension GoldenStore {
    /// Checks, before anything is generated, that ``write(_:to:force:marker:write:)`` may and can
    /// replace `dir`; returns the folder it will write. Errors are one line naming `dir`:
    ///
    /// - an existing non-empty folder needs `force`, and even then `marker` (a folder bnspec wrote);
    ///   a file is never replaced;
    /// - a symlink is followed: the folder it names is replaced (swapped inside that folder's parent),
    ///   the link stays; a link to nothing is refused;
    /// - a mount point is refused: the swap is a rename, which cannot cross file systems;
    /// - the parent folder is created if missing, and must accept a new folder (permissions, a
    ///   read-only file system).
    @discardableResult
    public static func prepareTarget(_ dir: URL, force: Bool, marker: String = Manifest.fileName) throws -> URL {
        var target = dir
        var st = stat()
        if lstat(dir.path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
            guard let resolved = realpath(dir.path, nil) else {
                throw BNError.file(path: dir.path, reason: "is a symlink to nothing (\(FileWrite.reason(errno))); point it at a folder or remove it")
            }
            target = URL(fileURLWithPath: String(cString: resolved)); free(resolved)
        }
        let parent = target.deletingLastPathComponent()
        if stat(target.path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw BNError.file(path: dir.path, reason: "exists and is not a folder") }
            var up = stat()
            if target.path != "/" && stat(parent.path, &up) == 0 && up.st_dev != st.st_dev {
                throw BNError.file(path: dir.path, reason: "is a mount point (bnspec replaces the folder with a rename, which cannot cross file systems; write to a folder inside it)")
            }
            let items = (try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? []
            if !items.isEmpty {
                guard force else { throw BNError.file(path: dir.path, reason: "already exists; pass --force to overwrite it") }
                guard items.contains(marker) else {
                    throw BNError.file(path: dir.path, reason: "was not written by bnspec (no \(marker)); not replaced, even with --force")
                }
                if marker == Manifest.fileName { try checkReplaceable(target, shownAs: dir.path) }
            }
        }
        do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw BNError.file(path: dir.path, reason: "cannot create its folder \(parent.path) (\((error as NSError).localizedFailureReason ?? "\(error)"))")
        }
        let probe = parent.appendingPathComponent(".\(target.lastPathComponent).probe-\(getpid())").path
        guard mkdir(probe, 0o755) == 0 else {
            throw BNError.file(path: dir.path, reason: "cannot write in \(parent.path) (\(FileWrite.reason(errno)))")
        }
        rmdir(probe)
        return target
    }

    /// The files (not folders) under `folder`, as paths relative to it, that `listed` does not
    /// hold, sorted: what a replace with `--force` would delete that its writer did not write.
    public static func unlistedFiles(in folder: URL, listed: Set<String>) -> [String] {
        var extra: [String] = []
        if let walk = FileManager.default.enumerator(atPath: folder.path) {
            while let item = walk.nextObject() as? String {
                var st = stat()
                guard lstat(folder.appendingPathComponent(item).path, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR else { continue }
                if !listed.contains(item) { extra.append(item) }
            }
        }
        return extra.sorted()
    }

    /// A golden folder that `--force` may replace: its manifest is a bnspec manifest, and it holds
    /// no file the manifest does not list (a user's file put into it is not deleted with it).
    static func checkReplaceable(_ target: URL, shownAs path: String) throws {
        let manifestURL = target.appendingPathComponent(Manifest.fileName)
        let m: Manifest
        do { m = try decodeManifest(try FileRead.data(manifestURL, limit: FileRead.textLimit), path: manifestURL.path) } catch let e as BNError {
            throw BNError.file(path: path, reason: "its \(Manifest.fileName) is not a bnspec manifest (\(e.reason)); not replaced, even with --force")
        }
        let extra = unlistedFiles(in: target, listed: Set(m.files.keys).union([Manifest.fileName]))
        if let first = extra.first {
            throw BNError.file(path: path, reason: "holds \(extra.count) file\(extra.count == 1 ? "" : "s") its manifest does not list (\(first)); not replaced, even with --force")
        }
    }

    /// Writes `files` (relative path → bytes) as the folder `dir`, atomically.
    ///
    /// - Checks first as ``prepareTarget(_:force:marker:)`` does (force, marker, symlink, mount
    ///   point, permissions), and that the file system has room for every byte.
    /// - Writes into the sibling `.NAME.tmp-PID`, then swaps it with `dir` in one
    ///   `renameat2(RENAME_EXCHANGE)` (Linux), so `dir` is at every instant either the
    ///   complete old folder or the complete new one. Where the exchange is unavailable it
    ///   falls back to two renames through `.NAME.old-PID`; a run killed between them is
    ///   repaired by the next `write` (``recoverInterrupted(_:)``).
    /// - Every file goes through ``FileWrite`` (no short or repeated writes; an error names the
    ///   file as the user will see it, `dir/…`, with the system's reason, and the temporary
    ///   folder is removed).
    /// - Files are not fsync'ed: the guarantee is against interruption (signals, crashes,
    ///   errors), not against power loss.
    /// `marker`: the file that identifies a folder this writer may replace (golden folders:
    /// `manifest.json`). `write`: write(2), replaceable by a test. `temporary`: told the
    /// temporary folder before it is made, and again before each folder, file, swap and removal
    /// that changes it (the CLI registers it for removal on SIGINT/SIGTERM/SIGHUP and, once a
    /// signal is ending bnspec, parks the writer there: the removal never races a step).
    /// Returns what ``recoverInterrupted(_:)`` repaired first, one line each.
    @discardableResult
    public static func write(_ files: [String: Data], to dir: URL, force: Bool, marker: String = Manifest.fileName,
                             write: FileWrite.Call = FileWrite.system, temporary: (URL) -> Void = { _ in }) throws -> [String] {
        var target = try prepareTarget(dir, force: force, marker: marker)
        let recovered = recoverInterrupted(target)
        target = try prepareTarget(dir, force: force, marker: marker)  // a restored folder is checked too
        var st = stat()
        let exists = stat(target.path, &st) == 0
        let (tmp, old) = siblings(of: target, pid: getpid())
        let fm = FileManager.default
        var fs = statvfs()
        let needed = files.values.reduce(0) { $0 + UInt64($1.count) }
        if statvfs(target.deletingLastPathComponent().path, &fs) == 0, UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < needed {
            throw BNError.file(path: dir.path, reason: "cannot write (\(FileWrite.reason(ENOSPC)): needs \(needed) bytes, \(UInt64(fs.f_bavail) * UInt64(fs.f_frsize)) free)")
        }
        do {
            try? fm.removeItem(at: tmp)
            temporary(tmp)
            try FileWrite.makeFolder(tmp.path, name: dir.path)
            for path in files.keys.sorted() {
                var folder = tmp
                for part in path.split(separator: "/").dropLast() {
                    folder.appendPathComponent(String(part))
                    temporary(tmp)
                    try FileWrite.makeFolder(folder.path, name: dir.appendingPathComponent(path).path)
                }
                temporary(tmp)
                try FileWrite.create(files[path]!, at: tmp.appendingPathComponent(path).path,
                                     name: dir.appendingPathComponent(path).path, write: write)
            }
            temporary(tmp)
            if !exists {
                guard rename(tmp.path, target.path) == 0 else { throw renameError(dir) }
            } else if bn_exchange_paths(tmp.path, target.path) == 0 {
                temporary(tmp)
                try? fm.removeItem(at: tmp)  // now the old folder
            } else {
                guard rename(target.path, old.path) == 0 else { throw renameError(dir) }
                guard rename(tmp.path, target.path) == 0 else {
                    let e = renameError(dir)
                    rename(old.path, target.path)
                    throw e
                }
                try? fm.removeItem(at: old)
            }
            return recovered
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    static func renameError(_ dir: URL) -> BNError {
        let e = errno
        return .file(path: dir.path, reason: e == EXDEV || e == EBUSY
                     ? "cannot be replaced (\(FileWrite.reason(e)): a mount point or another file system; write to a folder inside it)"
                     : "cannot be replaced (\(FileWrite.reason(e)))")
    }

    /// The temporary and the set-aside sibling names of `dir` for process `pid`.
    static func siblings(of dir: URL, pid: Int32) -> (tmp: URL, old: URL) {
        let parent = dir.deletingLastPathComponent(), name = dir.lastPathComponent
        return (parent.appendingPathComponent(".\(name).tmp-\(pid)"), parent.appendingPathComponent(".\(name).old-\(pid)"))
    }

    /// Repairs what a killed ``write(_:to:force:marker:write:)`` left next to `dir`: a set-aside old
    /// folder is renamed back when `dir` is missing; other leftovers of dead processes are
    /// removed. Leftovers of live processes (a concurrent run) are not touched.
    /// Returns what was done, one line each.
    @discardableResult
    public static func recoverInterrupted(_ dir: URL) -> [String] {
        let fm = FileManager.default
        let parent = dir.deletingLastPathComponent(), name = dir.lastPathComponent
        guard let items = try? fm.contentsOfDirectory(atPath: parent.path) else { return [] }
        var done: [String] = []
        for item in items.sorted() {
            for kind in ["old", "tmp", "probe"] {
                let prefix = ".\(name).\(kind)-"
                guard item.hasPrefix(prefix), let pid = Int32(item.dropFirst(prefix.count)), !processIsAlive(pid) else { continue }
                let url = parent.appendingPathComponent(item)
                if kind == "old" && !fm.fileExists(atPath: dir.path), (try? fm.moveItem(at: url, to: dir)) != nil {
                    done.append("restored \(dir.path) from \(item) (a run was interrupted between two renames)")
                } else if (try? fm.removeItem(at: url)) != nil {
                    done.append("removed \(item) (left by an interrupted run)")
                }
            }
        }
        return done
    }

    static func processIsAlive(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }
}
