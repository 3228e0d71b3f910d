import BNAudit
import MyBatchNorm
import Testing

/// The same BN with a classic bug, the variance as E[x²] − E[x]² in one pass: these tests fail on
/// the cases that expose it, each naming the cause and the line that reruns it.
let onePassAudit = Result {
    try Audit(profile: .pytorch, rerun: "swift test --filter OnePassBatchNormAudit")
        .run(operations: operations(MyBatchNorm(onePassVariance: true), name: "MyBatchNorm (one-pass variance)"))
}

@Suite struct OnePassBatchNormAudit {
    @Test(arguments: try Audit.caseIDs())
    func goldenCase(_ id: String) throws { try expectPasses(onePassAudit, id) }
}
