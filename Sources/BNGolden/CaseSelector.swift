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
/// - `shard` (`--shard K/N`, or Bazel's `TEST_SHARD_INDEX`/`TEST_TOTAL_SHARDS`): keeps the cases
///   of shard K of N (``Shard``), a partition by case id.
///
/// A case is selected when it is named by `ids` or matches a `match` pattern (every case when
/// neither is given), matches no `exclude` pattern and falls in the shard. The selection keeps the
/// suite's (manifest) order; an empty selection is an error, except an empty shard of a non-empty
/// selection (a CI matrix has a fixed N). Every repro line selects its one case with `--case`.
public struct CaseSelector: Sendable, Hashable {
    public var ids: [String]
    public var match: [String]
    public var exclude: [String]
    public var shard: Shard?

    public init(ids: [String] = [], match: [String] = [], exclude: [String] = [], shard: Shard? = nil) {
        self.ids = ids; self.match = match; self.exclude = exclude; self.shard = shard
    }

    /// The selection without its shard, in a canonical form ("all", or "case=…; match=…;
    /// exclude=…" with each list sorted): shard reports carry it, and `bnspec merge` joins only
    /// shards of one selection (an outside red team's shards run with different --exclude merged
    /// to a pass that lacked the failing cases).
    public var canonical: String {
        let parts = [("case", ids), ("match", match), ("exclude", exclude)].filter { !$0.1.isEmpty }
            .map { "\($0.0)=\($0.1.sorted().joined(separator: ","))" }
        return parts.isEmpty ? "all" : parts.joined(separator: "; ")
    }

    /// A selection read back from its ``canonical`` form (what a shard report records), when that
    /// is unambiguous: nil for a list holding a bracket glob (`[a,b]`: its comma would split it)
    /// or text that is no canonical form.
    public init?(canonical text: String) {
        self.init()
        guard text != "all" else { return }
        for part in text.components(separatedBy: "; ") {
            guard let eq = part.firstIndex(of: "=") else { return nil }
            let values = part[part.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !values.contains(where: { $0.isEmpty || $0.contains("[") }) else { return nil }
            switch part[..<eq] {
            case "case": ids = values
            case "match": match = values
            case "exclude": exclude = values
            default: return nil
            }
        }
        guard canonical == text else { return nil }
    }

    /// True when no option narrows the selection.
    public var selectsEverything: Bool { ids.isEmpty && match.isEmpty && exclude.isEmpty && shard == nil }

    /// Whether `pattern` matches `id`: a glob when it holds `*`, `?` or `[`, else a substring.
    public static func matches(_ pattern: String, _ id: String) -> Bool {
        guard pattern.contains(where: { "*?[".contains($0) }) else { return id.contains(pattern) }
        return fnmatch(pattern, id, 0) == 0
    }

    /// Whether `id` is selected (without checking that the exact ids exist).
    public func selects(_ id: String) -> Bool {
        let included = (ids.isEmpty && match.isEmpty) || ids.contains(id) || match.contains { Self.matches($0, id) }
        return included && !exclude.contains { Self.matches($0, id) } && (shard?.holds(id) ?? true)
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
        var unsharded = self
        unsharded.shard = nil
        let before = suite.filter(unsharded.selects)
        guard !before.isEmpty else {
            throw BNError.invalidArgument("no case selected in \(source) (\(unsharded.description))")
        }
        guard let shard else { return before }
        return before.filter(shard.holds)
    }

    /// The options as a command line would give them.
    public var description: String {
        let parts = ids.map { "--case \($0)" } + match.map { "--match '\($0)'" } + exclude.map { "--exclude '\($0)'" }
            + (shard.map { ["--shard \($0)"] } ?? [])
        return parts.isEmpty ? "every case" : parts.joined(separator: " ")
    }
}

/// Shard K of N (K in 1…N) of a case selection: the cases whose id hashes to K − 1 modulo N,
/// the hash being 64-bit FNV-1a over the id's UTF-8 bytes (offset basis 0xcbf29ce484222325,
/// prime 0x100000001b3). A partition: every case is in exactly one shard of N, the same one on
/// every machine and run, and a case keeps its shard when others are added or removed.
public struct Shard: Sendable, Hashable, CustomStringConvertible {
    /// 1-based shard number.
    public var index: Int
    public var count: Int

    /// - Throws: ``BNCore/BNError/invalidArgument(_:)`` unless 1 ≤ index ≤ count.
    public init(index: Int, count: Int) throws {
        guard count >= 1, (1...count).contains(index) else {
            throw BNError.invalidArgument("shard \(index)/\(count) does not exist (K/N takes 1 ≤ K ≤ N)")
        }
        self.index = index; self.count = count
    }

    /// Parses `K/N`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw BNError.invalidArgument("--shard takes K/N, e.g. 2/4 (got '\(text.prefix(40))')")
        }
        try self.init(index: k, count: n)
    }

    /// 64-bit FNV-1a of `id`'s UTF-8 bytes.
    public static func fnv1a(_ id: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// Whether case `id` is in this shard.
    public func holds(_ id: String) -> Bool { Int(Self.fnv1a(id) % UInt64(count)) == index - 1 }

    public var description: String { "\(index)/\(count)" }
}
