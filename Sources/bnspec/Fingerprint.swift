import ArgumentParser
import BNAudit
import BNCore
import Foundation

/// `bnspec fingerprint`: infer a framework's BN conventions by black-box probes.
struct Fingerprint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Infer a BN implementation's conventions through its adapter, with the evidence for each.")
    @Option(help: "Adapter command (JSON-lines protocol, spec/AUDIT.md).") var adapter: String?
    @Option(help: "Kernel library implementing the C ABI (spec/AUDIT.md §7); it runs in a child process.") var library: String?
    @Option(help: "Prefix of the library's bnspec_kernel_… symbols (with --library).") var symbolPrefix = ""
    @Option(help: "Seconds an adapter may take for one probe (inf: no limit).") var caseTimeout: Double = 120
    @Option(help: "Seconds an adapter may take to start (inf: no limit).") var startTimeout: Double = 180
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (adapter == nil) != (library == nil) else { throw BNSpec.usageError("give exactly one of --adapter CMD or --library PATH") }
        if !(caseTimeout > 0 && startTimeout > 0) { throw BNSpec.usageError("timeouts must be positive") }
        try LibraryRoute.checkSymbolPrefix(symbolPrefix)
    }

    func run() throws {
        try BNSpec.run {
            Cleanup.installSignalHandlers()  // before the library's load check: a signal during it ends the check's group too
            let adapter = try library.map { try LibraryRoute.adapterCommand(library: $0, symbolPrefix: symbolPrefix, timeout: startTimeout) } ?? self.adapter!
            Cleanup.adoptOrphans()
            let scratch = try Cleanup.makeScratch("fingerprint")
            defer { Cleanup.removeScratch(scratch) }
            let client = AdapterClient(command: adapter, caseTimeout: caseTimeout, startTimeout: startTimeout, totalTimeout: 3600)
            var fp = BNAudit.Fingerprint(client: client, scratch: scratch)
            let r = try fp.run()
            if json { return print(String(decoding: try ReportFormat.encoder().encode(r), as: UTF8.self)) }
            print("BNSpec fingerprint — \(r.implementation) \(r.version)\n")
            let rows: [(String, BNAudit.Fingerprint.Finding)] = [
                ("momentum weights", r.momentumWeights), ("default momentum", r.momentum), ("default eps", r.eps),
                ("running variance", r.runningVariance), ("eps placement", r.epsPlacement),
                ("one value per channel", r.singleValuePerChannel), ("fp16 statistics", r.fp16Statistics),
                ("inference form", r.inferenceForm), ("variance algorithm", r.varianceAlgorithm), ("closest profile", r.closestProfile),
            ]
            let sync: [(String, BNAudit.Fingerprint.Finding)] = r.synchronized.map { s in [
                ("sync count weighting", s.countWeighting), ("sync variance algorithm", s.varianceAlgorithm), ("sync Bessel n", s.bessel),
                ("sync dγ/dβ reduction", s.gradientReduction), ("sync eps", s.eps), ("sync variance exchange", s.varianceExchange),
            ] } ?? []
            for (k, f) in rows + sync { print("\(k.padding(toLength: 24, withPad: " ", startingAt: 0)) \(f.value)\n\(String(repeating: " ", count: 25))evidence: \(f.evidence)") }
        }
    }
}
