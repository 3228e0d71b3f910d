import ArgumentParser
import BNReferenceChecks
import Foundation

/// `bnspec nist`: accuracy of the reference's statistics on the NIST StRD datasets.
struct Nist: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "LREs of the reference's mean and sd (n − 1) on the nine NIST StRD univariate datasets, beside GSL's.")

    @Flag(help: "Print a JSON array, one object per dataset.")
    var json = false

    func run() throws {
        try BNSpec.run {
            let rows = try NISTReport.rows()
            if json { try printJSON(rows); return }
            print("NIST StRD univariate: log relative error (digits) of mean and sd (n − 1); exact = \(String(format: "%.2f", exactLRE)) (half a binary64 ulp)")
            print("GSL \(GSL.version) beside BNSpec's reference\n")
            print(table(["dataset", "n", "difficulty", "certified mean", "certified sd", "LRE mean", "LRE sd", "GSL LRE mean", "GSL LRE sd"],
                        rows.map { r in
                            [r.dataset, "\(r.n)", r.difficulty, "\(r.certified_mean)", "\(r.certified_sd)",
                             f(r.lre_mean), f(r.lre_sd), f(r.gsl_lre_mean), f(r.gsl_lre_sd)]
                        }))
        }
    }
    func f(_ x: Double) -> String { String(format: "%.2f", x) }
}
