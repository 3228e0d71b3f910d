import Foundation

/// The BNSpec checkout: the folder holding `spec/catalog.txt`.
public enum Checkout {
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
