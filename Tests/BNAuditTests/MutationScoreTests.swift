import BNAudit
import BNCalibration
import Testing

/// The audit's mutation score (issue #6): every deliberately buggy adapter fails, with its
/// own bug named as the most frequent likely cause; the honest adapter passes. Needs a
/// Python with NumPy (tools/setup.sh makes one; BNSPEC_PYTHON overrides).
@Suite(.serialized) struct MutationScoreTests {
    @Test func pythonWithNumPyIsAvailable() {
        #expect(AuditSupport.has("numpy"), "no NumPy for \(AuditSupport.python): run bash tools/setup.sh (or set BNSPEC_PYTHON)")
    }

    @Test func honestNumPyAdapterPasses() throws {
        guard AuditSupport.has("numpy") else { return }
        let r = try AuditSupport.audit("tools/adapters/numpy_bn.py")
        #expect(r.failed == 0, "\(r.results.filter { $0.status == .failed }.map { "\($0.caseID): \($0.detail)" }.prefix(3))")
        #expect(r.passed > 20)
    }

    static let mutants: [(String, CalibrationKernel.Mutation)] = [
        ("one-pass-variance", .onePassVariance), ("eps-outside-sqrt", .epsOutsideSqrt),
        ("unbiased-normalization", .unbiasedNormalization), ("wrong-running-estimator", .wrongRunningEstimator),
        ("momentum-swapped", .momentumSwapped), ("running-not-updated", .runningNotUpdated),
        ("per-sample-statistics", .perSampleStatistics), ("gamma-beta-swapped", .gammaBetaSwapped),
        ("nhwc-off-by-one", .channelsLastOffByOne), ("backward-missing-mean-term", .backwardMissingMeanTerm),
        ("backward-missing-xhat-term", .backwardMissingXhatTerm), ("inference-uses-batch-statistics", .inferenceUsesBatchStatistics),
        ("fp16-accumulation", .fp16Accumulation), ("nan-to-zero", .nanToZero),
    ]

    @Test(arguments: mutants.map(\.0))
    func mutantIsCaughtWithItsCause(bug: String) throws {
        guard AuditSupport.has("numpy") else { return }
        let mutation = Self.mutants.first { $0.0 == bug }!.1
        let r = try AuditSupport.audit("tools/adapters/numpy_mutant.py \(bug)")
        #expect(r.failed > 0, "mutant \(bug) escaped the audit")
        let top = r.causes.max { $0.value < $1.value }?.key
        #expect(top == CauseFinder.descriptions[mutation], "mutant \(bug): causes \(r.causes)")
    }
}
