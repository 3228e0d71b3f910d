import ArgumentParser
import BNCore
import BNGolden
import Foundation

/// The case-selection options shared by `verify`, `audit`, `export` and `generate --check`
/// (``BNGolden/CaseSelector``).
struct CaseSelection: ParsableArguments {
    @Option(name: .customLong("case"), help: "Only this case (exact id; repeatable).") var ids: [String] = []
    @Option(help: "Only cases whose id matches: a glob when it holds * ? [, else a substring (repeatable).") var match: [String] = []
    @Option(help: "Leave out cases whose id matches (glob or substring, repeatable).") var exclude: [String] = []
    @Option(help: ArgumentHelp("Only shard K of N of the selection (1 ≤ K ≤ N): a partition by case id; bnspec merge joins the shards' JSON reports.",
                               valueName: "K/N"))
    var shard: String?
    @Flag(help: "Print the selected case ids, one per line, and exit.") var list = false

    func validate() throws {
        if let s = shard { do { _ = try Shard(parsing: s) } catch let e as BNError { throw ValidationError(e.description) } }
    }

    /// The selector of the options. `bazel`: without `--shard`, take the shard from Bazel's test
    /// sharding environment (`TEST_TOTAL_SHARDS`, 0-based `TEST_SHARD_INDEX`) and touch
    /// `TEST_SHARD_STATUS_FILE`, telling Bazel the command shards (verify and audit).
    func selector(bazel: Bool = false) throws -> CaseSelector {
        var s = CaseSelector(ids: ids, match: match, exclude: exclude)
        if let text = shard {
            s.shard = try Shard(parsing: text)
        } else if bazel, let sharding = try BazelSharding.fromEnvironment() {
            s.shard = sharding.shard
            sharding.acknowledge()
        }
        return s
    }

    /// The selected ids of a golden folder (manifest order).
    func ids(in golden: URL, bazel: Bool = false) throws -> [String] {
        try selector(bazel: bazel).select(try GoldenStore.manifest(golden).cases, source: golden.path)
    }

    /// Prints `ids` one per line (for `--list`).
    func print(_ ids: [String]) { if !ids.isEmpty { Swift.print(ids.joined(separator: "\n")) } }
}

/// Bazel's test sharding (`bazel test` with `shard_count`): the runner sets `TEST_TOTAL_SHARDS`
/// and the 0-based `TEST_SHARD_INDEX`, and expects a sharding-aware test to touch
/// `TEST_SHARD_STATUS_FILE`.
struct BazelSharding {
    var shard: Shard
    var statusFile: String?

    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> BazelSharding? {
        guard let total = env["TEST_TOTAL_SHARDS"], !total.isEmpty else { return nil }
        guard let n = Int(total), let k = Int(env["TEST_SHARD_INDEX"] ?? "") else {
            throw BNError.invalidArgument("Bazel sharding: TEST_TOTAL_SHARDS=\(total.prefix(20)) and TEST_SHARD_INDEX=\((env["TEST_SHARD_INDEX"] ?? "unset").prefix(20)) must be integers")
        }
        // k + 1 without overflow (an outside red team's TEST_SHARD_INDEX=Int.max trapped here):
        // an index past the count is Shard's one-line error.
        let (index, overflow) = k.addingReportingOverflow(1)
        guard !overflow else { throw BNError.invalidArgument("Bazel sharding: TEST_SHARD_INDEX=\(k) (must be below TEST_TOTAL_SHARDS=\(n))") }
        return BazelSharding(shard: try Shard(index: index, count: n), statusFile: env["TEST_SHARD_STATUS_FILE"])
    }

    func acknowledge() {
        guard let f = statusFile, !f.isEmpty else { return }
        if !FileManager.default.fileExists(atPath: f) { _ = FileManager.default.createFile(atPath: f, contents: nil) }
    }
}
