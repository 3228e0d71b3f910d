import ArgumentParser
import BNAudit
import BNCore
import BNKernels
import Foundation

/// `bnspec accuracy`: the four accuracy figures of every built-in kernel.
struct Accuracy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Normwise training-forward error of each kernel in ULPs, and the constant-channel check.")

    @Option(help: "Seeded inputs per figure (the worst is reported).") var trials = 10
    @Option(name: .customLong("implementation"), help: "Only these kernels (repeatable).") var only: [String] = []
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        try BNSpec.run {
            guard (1...10_000).contains(trials) else { throw BNSpec.usageError("--trials must be in 1…10000 (each trial runs every probe; got \(trials))") }
            let kernels = Verification.kernels.filter { $0.role == .implementation && (only.isEmpty || only.contains($0.name)) }
            guard !kernels.isEmpty else { throw BNError.invalidArgument("no kernel named \(only.joined(separator: ", "))") }
            let probe = AccuracyProbe(trials: trials)
            let figures = try kernels.map { try probe.measure($0) }
            if json { return try printJSON(figures) }
            func f(_ v: Double) -> String { String(format: "%.3g", v) }
            print(table(["kernel", "dtype", "normal 8x16x7x7", "tiny 2x3x1x1", "offset 1e4", "constant → β"],
                        figures.map { [$0.kernel, $0.dtype, f($0.normalUlps), f($0.tinyUlps), f($0.offsetUlps),
                                       $0.constantExactlyBeta ? "exact" : "NOT exact"] }))
            print("\nNormwise error max|y − ref| ÷ ulp(max|ref|) in the kernel's storage format, worst of \(trials) seeded inputs.")
        }
    }
}
