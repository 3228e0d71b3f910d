import Foundation

/// The BNSpec checkout: the folder holding `spec/catalog.txt`.
public enum Checkout {
    /// The BNSpec sources this module was compiled from (found from this file's compile-time
    /// `#filePath`): for a package that depends on BNSpec, SwiftPM's checkout of it, which holds
    /// `golden/` and `spec/catalog.txt`. nil when those sources are no longer there.
    public static var compiled: URL? { root(from: URL(fileURLWithPath: #filePath).deletingLastPathComponent()) }

    /// The nearest folder at or above `start` that holds `spec/catalog.txt`; nil when none does.
    public static func root(from start: URL) -> URL? {
        var dir = start.standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("spec/catalog.txt").path) { return dir }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { return nil }
            dir = parent
        }
    }
}
