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
    @Flag(help: "Print the selected case ids, one per line, and exit.") var list = false

    var selector: CaseSelector { CaseSelector(ids: ids, match: match, exclude: exclude) }

    /// The selected ids of a golden folder (manifest order).
    func ids(in golden: URL) throws -> [String] {
        try selector.select(try GoldenStore.manifest(golden).cases, source: golden.path)
    }

    /// Prints `ids` one per line (for `--list`).
    func print(_ ids: [String]) { Swift.print(ids.joined(separator: "\n")) }
}
