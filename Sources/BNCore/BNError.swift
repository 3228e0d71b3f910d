/// Every error BNSpec reports to a user.
///
/// Each case renders as one line (``description``) that names what was wrong
/// and, where there is one, the file or case it came from. The CLI prints that
/// line and exits non-zero; nothing in BNSpec traps on user input.
public enum BNError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A shape, layout or parameter that the specification does not define.
    case invalidArgument(String)
    /// A channel with no elements (N × spatial size = 0): BN's statistics are undefined.
    case emptyChannel(channel: Int)
    /// A profile refuses training with one value per channel (e.g. PyTorch).
    case singleValuePerChannel(profile: String)
    /// A file could not be read, parsed or written.
    case file(path: String, reason: String)
    /// A golden case or manifest is inconsistent.
    case corrupt(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .emptyChannel(let c): return "channel \(c) has no elements (n = 0): batch statistics are undefined"
        case .singleValuePerChannel(let p):
            return "profile '\(p)' refuses training with one value per channel (n = 1)"
        case .file(let path, let reason): return "\(path): \(reason)"
        case .corrupt(let path, let reason): return "\(path): corrupt: \(reason)"
        }
    }
}
