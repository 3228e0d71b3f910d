import BNCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which golden cases a command works on — the one selection of `verify`, `audit`, `export` and
/// `generate --check` (`--case`, `--match`, `--exclude`; `--list` prints the result).
///
/// - `ids` (`--case ID`, repeatable): exact case ids; an id that is not in the suite is an error.
/// - `match` (`--match PATTERN`, repeatable): a glob when the pattern holds `*`, `?` or `[`
///   (fnmatch(3) over the whole id), else a substring of the id.
/// - `exclude` (`--exclude PATTERN`, repeatable): the same kind of pattern; removes cases.
///
/// A case is selected when it is named by `ids` or matches a `match` pattern (every case when
/// neither is given) and matches no `exclude` pattern. The selection keeps the suite's (manifest)
/// order; an empty selection is an error. Every repro line selects its one case with `--case`.
public struct CaseSelector: Sendable, Hashable {
    public var ids: [String]
    public var match: [String]
    public var exclude: [String]

    public init(ids: [String] = [], match: [String] = [], exclude: [String] = []) {
        self.ids = ids; self.match = match; self.exclude = exclude
    }

    /// True when no option narrows the selection.
    public var selectsEverything: Bool { ids.isEmpty && match.isEmpty && exclude.isEmpty }

    /// Whether `pattern` matches `id`: a glob when it holds `*`, `?` or `[`, else a substring.
    public static func matches(_ pattern: String, _ id: String) -> Bool {
        guard pattern.contains(where: { "*?[".contains($0) }) else { return id.contains(pattern) }
        return fnmatch(pattern, id, 0) == 0
    }

    /// Whether `id` is selected (without checking that the exact ids exist).
    public func selects(_ id: String) -> Bool {
        let included = (ids.isEmpty && match.isEmpty) || ids.contains(id) || match.contains { Self.matches($0, id) }
        return included && !exclude.contains { Self.matches($0, id) }
    }

    /// The selected ids of `suite` (its order). `source` names the suite in errors (a golden
    /// folder or a catalog suite).
    /// - Throws: ``BNCore/BNError/invalidArgument(_:)`` for an exact id not in the suite, or when
    ///   nothing is selected.
    public func select(_ suite: [String], source: String) throws -> [String] {
        let known = Set(suite)
        if let missing = ids.first(where: { !known.contains($0) }) {
            throw BNError.invalidArgument("no case '\(missing.prefix(300))' in \(source) (--case takes an exact id; --match PATTERN selects by substring or glob)")
        }
        let selected = suite.filter(selects)
        guard !selected.isEmpty else {
            throw BNError.invalidArgument("no case selected in \(source) (\(description))")
        }
        return selected
    }

    /// The options as a command line would give them.
    public var description: String {
        let parts = ids.map { "--case \($0)" } + match.map { "--match '\($0)'" } + exclude.map { "--exclude '\($0)'" }
        return parts.isEmpty ? "every case" : parts.joined(separator: " ")
    }
}
