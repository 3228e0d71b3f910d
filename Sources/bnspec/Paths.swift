import BNCore
import Foundation

/// Locates the BNSpec checkout (the folder holding spec/catalog.txt) from the
/// current directory upwards, so commands work from any subfolder of a clone.
enum Paths {
    static func root() throws -> URL {
        var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("spec/catalog.txt").path) { return dir }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path {
                throw BNError.file(path: FileManager.default.currentDirectoryPath,
                                   reason: "not inside a BNSpec checkout (no spec/catalog.txt here or above); pass --catalog/--golden")
            }
            dir = parent
        }
    }
    static func resolve(_ path: String?, default rel: String) throws -> URL {
        if let p = path { return URL(fileURLWithPath: p).standardizedFileURL }
        return try root().appendingPathComponent(rel)
    }
}
