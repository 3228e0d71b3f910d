import BNAudit
import BNCalibration
import BNCore
import BNGolden
import BNKernels
import Testing

/// The higher-order operations (spec §12) through the in-process audit: the honest kernels
/// (every statistics algorithm) pass every higher-order golden case in float32 and float64; each
/// calibration mutant of ``HigherOrderCalibrationKernel`` fails, and the diagnosis names its own
/// cause and never another (its Double bug model reproduces the float32/float64 mutant within τ);
/// a kernel without the operations is skipped, not failed.
@Suite struct HigherOrderAuditTests {
    func audit() throws -> Audit {
        Audit(profile: .pytorch, cases: try AuditSupport.higherOrderCases(), goldenDir: AuditSupport.golden, reproBase: "swift test")
    }

    @Test(arguments: HonestKernel.Statistics.allCases)
    func honestKernelsPass(statistics: HonestKernel.Statistics) throws {
        let r = try audit().run(kernel: HonestKernel(statistics))
        #expect(r.failed == 0 && r.skipped == 0, "\(r.results.filter { $0.status != .passed }.prefix(3))")
        #expect(r.passed >= 60)
    }

    @Test(arguments: HigherOrderCalibrationKernel.Mutation.allCases)
    func mutantIsCaughtWithItsCause(mutation: HigherOrderCalibrationKernel.Mutation) throws {
        let r = try audit().run(kernel: HigherOrderCalibrationKernel(mutation))
        #expect(r.failed >= 20, "\(mutation): \(r.failed) failures")
        let named = r.causes.filter { $0.key != "unexplained" }
        let top = named.max { $0.value < $1.value }?.key ?? "unexplained"
        #expect(top.hasPrefix(mutation.expectedCause), "\(mutation): most frequent cause \(top); causes \(r.causes)")
        for cause in named.keys { #expect(cause.hasPrefix(mutation.expectedCause), "\(mutation): wrong cause \(cause)") }
        // Every failure shows the fits of the three models as evidence, and a repro line.
        for f in r.results where f.status == .failed {
            #expect(f.evidence.contains { $0.hasPrefix("worst |returned − model| ÷ tolerance per model") }, "\(f.caseID)")
            #expect(f.repro.contains(f.caseID))
        }
    }

    @Test func kernelWithoutTheOperationsIsSkipped() throws {
        let r = try audit().run(kernel: ScalarKernel())
        #expect(r.skipped == r.results.count && r.failed == 0)
    }
}
