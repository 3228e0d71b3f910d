/// A decoding failure in one short clause for an error line's `(<why>)`: what was wrong and where
/// in the document (`at results.0.status`), without Swift's `DecodingError.dataCorrupted(Context(…))`
/// dump (an outside red team's, round J: the dump of a manifest's error filled the line).
public enum DecodingErrorText {
    /// `error` (a `DecodingError`, or any other error) as one clause.
    public static func brief(_ error: any Error) -> String {
        func at(_ c: DecodingError.Context) -> String {
            c.codingPath.isEmpty ? "" : " at " + c.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .dataCorrupted(let c)?: return c.codingPath.isEmpty ? "not valid JSON" : "\(c.debugDescription)\(at(c))"
        case .keyNotFound(let key, let c)?: return "missing key '\(key.stringValue)'\(at(c))"
        case .typeMismatch(let type, let c)?: return "expected a value of type \(type)\(at(c))"
        case .valueNotFound(let type, let c)?: return "missing a value of type \(type)\(at(c))"
        default:
            let text = String(describing: error)
            return String(text.split(separator: "\n").first ?? Substring(text)).prefix(200).description
        }
    }
}
