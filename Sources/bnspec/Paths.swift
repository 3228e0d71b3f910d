import BNCore
import BNGolden
import Foundation

/// Locates the BNSpec checkout (the folder holding spec/catalog.txt) from the
/// current directory upwards, so commands work from any subfolder of a clone.
enum Paths {
    static func root() throws -> URL {
        let cwd = FileManager.default.currentDirectoryPath
        guard let dir = Checkout.root(from: URL(fileURLWithPath: cwd)) else {
            throw BNError.file(path: cwd, reason: "not inside a BNSpec checkout (no spec/catalog.txt here or above); pass --catalog/--golden")
        }
        return dir
    }
    static func resolve(_ path: String?, default rel: String) throws -> URL {
        if let p = path { return URL(fileURLWithPath: p).standardizedFileURL }
        return try root().appendingPathComponent(rel)
    }
}
