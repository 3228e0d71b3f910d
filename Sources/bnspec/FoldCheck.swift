import ArgumentParser
import BNAudit
import BNCore
import Foundation

/// `bnspec fold-check`: folded and unfolded linear/conv + BN layers agree within the
/// error bound of spec §6.4.
struct FoldCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fold-check",
        abstract: "Check BN folding into a linear and a convolution layer against the unfolded layers.")
    @Option(help: "Seed of the random layers and data.") var seed = "fold-check"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try BNSpec.run {
            let results = try FoldingCheck(seed: seed).run()
            if json { try printJSON(results) } else {
                print(table(["layer", "outputs", "folded ÷ bound", "unfolded ÷ bound", "|folded − unfolded| ÷ bound", ""],
                            results.map { [$0.layer, "\($0.outputs)", String(format: "%.3g", $0.foldedRatio),
                                           String(format: "%.3g", $0.unfoldedRatio), String(format: "%.3g", $0.agreementRatio),
                                           $0.passed ? "ok" : "FAIL"] }))
            }
            if !results.allSatisfy(\.passed) {  // a verdict: exit 1, not 2
                writeStderr("bnspec: error: folding check failed (repro: bnspec fold-check --seed \(seed))\n")
                throw ExitCode(1)
            }
        }
    }
}
