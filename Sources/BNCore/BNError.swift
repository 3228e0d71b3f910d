/// Every error BNSpec reports to a user.
///
/// Each case renders as one line, ``description``, of the form `<what> (<why>)`: what was wrong
/// (the argument, the file or case it came from) and, in parentheses, why. The CLI prints it as
/// `bnspec: error: <what> (<why>)` and exits non-zero; nothing in BNSpec traps on user input.
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

    /// What was wrong: the first part of the line.
    public var what: String { parts.what }
    /// Why: the part in parentheses.
    public var why: String { parts.why }

    /// The one line, `<what> (<why>)`.
    public var description: String { "\(what) (\(why))" }

    /// The error as a clause to quote inside another error's reason (a catalog line that holds
    /// an invalid argument): the argument's message without "invalid argument", else the line.
    public var reason: String {
        if case .invalidArgument(let m) = self { return m }
        return description
    }

    private var parts: (what: String, why: String) {
        switch self {
        case .invalidArgument(let m):
            // A message that already ends with its reason in parentheses keeps it; any other is
            // the reason an argument is invalid.
            return Self.splitTrailingParenthesis(m) ?? ("invalid argument", m)
        case .emptyChannel(let c): return ("channel \(c) has no elements", "n = 0: batch statistics are undefined")
        case .singleValuePerChannel(let p): return ("profile '\(p)' refuses training with one value per channel", "n = 1")
        case .file(let path, let reason):
            if let (what, why) = Self.splitTrailingParenthesis(reason) { return ("\(path): \(what)", why) }
            return (path, reason)
        case .corrupt(let path, let reason): return ("\(path) is corrupt", reason)
        }
    }

    /// Whether `line` is one BNSpec error line, `bnspec: error: <what> (<why>)` (a trailing newline
    /// allowed): the form the CLI and the Python package give every error.
    public static func isErrorLine(_ line: some StringProtocol) -> Bool {
        var text = String(line)
        if text.hasSuffix("\n") { text.removeLast() }
        let prefix = "bnspec: error: "
        guard text.hasPrefix(prefix), !text.contains("\n") else { return false }
        return splitTrailingParenthesis(String(text.dropFirst(prefix.count))) != nil
    }

    /// `"text (reason)"` → `("text", "reason")` when `s` ends with a parenthesised group (nested
    /// parentheses inside it are kept) that follows some text and a space; else nil.
    static func splitTrailingParenthesis(_ s: String) -> (String, String)? {
        guard s.hasSuffix(")") else { return nil }
        var depth = 0
        var i = s.endIndex
        while i > s.startIndex {
            i = s.index(before: i)
            switch s[i] {
            case ")": depth += 1
            case "(":
                depth -= 1
                if depth == 0 {
                    guard i > s.startIndex, s[s.index(before: i)] == " " else { return nil }
                    let what = s[..<s.index(before: i)].trimmingSuffix()
                    guard !what.isEmpty else { return nil }
                    return (String(what), String(s[s.index(after: i)..<s.index(before: s.endIndex)]))
                }
            default: break
            }
        }
        return nil
    }
}

private extension Substring {
    func trimmingSuffix() -> Substring {
        var s = self
        while let last = s.last, last == " " || last == ";" || last == ":" || last == "," { s = s.dropLast() }
        return s
    }
}
