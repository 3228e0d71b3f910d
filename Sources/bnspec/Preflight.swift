import BNCore
import BNGolden
import Foundation

/// Checks of a command's arguments that must fail before any long work starts: an audit that runs
/// for an hour must not lose its report to a path that could never be written.
enum Preflight {
    /// Every report path (nil: not asked for) can be written (``FileWrite/reportTarget(_:)``): a
    /// new file in an existing folder, a previous report, a device or FIFO written through.
    static func reports(_ paths: String?...) throws {
        for case let p? in paths { _ = try FileWrite.reportTarget(p) }
    }

    /// Every command-line argument is UTF-8: Swift decodes argv as UTF-8, replacing invalid bytes
    /// by U+FFFD, so a non-UTF-8 path would silently name another file.
    static func argumentsAreUTF8() throws {
        for i in 1..<Int(CommandLine.argc) {
            guard let p = CommandLine.unsafeArgv[i] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
            guard Array(String(decoding: bytes, as: UTF8.self).utf8) == Array(bytes) else {
                let shown = String(decoding: bytes, as: UTF8.self).escapingInvalid
                throw BNError.invalidArgument("argument \(i) '\(shown)' is not valid UTF-8 (bnspec takes UTF-8 paths; rename the file or folder)")
            }
        }
    }
}

private extension String {
    var escapingInvalid: String { replacingOccurrences(of: "\u{FFFD}", with: "?") }
}
