/// A cause that a bug model fits on one case stands only if the bug's other cases agree with it.
///
/// The unbiased variance in the normalisation and the statistics and parameters of a
/// neighbouring channel are formula bugs that act on every case of their kernel path — one
/// operation, one layout, one storage type. When a case of that path fails with finite data and
/// nothing explains it, the model does not describe the implementation: it fitted the named case
/// by accident (an outside red team's, 2026-12-05: y·1/(σ + √ε) was named "the unbiased variance"
/// on a bfloat16 case, whose tolerance held the 0.5 % difference, while other cases of that path
/// were unexplained; γ and β of channel c + 1, the statistics right, were named "the statistics
/// and parameters of channel c ± 1" on NIST cases whose two channels hold the same data). The
/// cause is withdrawn, with the unexplained case as evidence.
///
/// Only these two models are judged so: other models' causes stand on their own cases, since
/// their bugs' other cases can be unexplained for honest reasons — a model that reproduces the
/// outputs but departs from the reference by under ``Diagnosis/informative`` τ names nothing
/// (the `eps-outside-sqrt` mutant's Keras-profile cases, eps 10⁻³, are such), and precision
/// models fit where their rounding shows; vector tails, the running update, poisoning and the
/// one-pass growth have audit-wide checks of their own.
enum ModelConsistency {
    /// Whether `cause` names one of the models this check judges.
    static func judged(_ cause: String) -> Bool {
        cause.contains("normalises with the unbiased variance") || cause.contains("normalised with the statistics and parameters of channel c")
    }

    /// The kernel path of a case id (`op.data.shape.layout.dtype…`): operation, layout, dtype.
    static func path(_ id: String) -> String {
        let f = id.split(separator: ".")
        return f.count >= 5 ? "\(f[0]).\(f[3]).\(f[4])" : id
    }

    static func withdrawContradicted(_ results: inout [AuditResult]) {
        // The open failures as the cases named them, before any withdrawal.
        var open: [String: Int] = [:]
        for j in results.indices where results[j].isNumericFailure && results[j].finiteData && results[j].likelyCause == nil {
            open[path(results[j].caseID)] = open[path(results[j].caseID)] ?? j
        }
        for i in results.indices {
            guard let cause = results[i].likelyCause, judged(cause), let j = open[path(results[i].caseID)] else { continue }
            results[i].evidence.append("cause withdrawn: «\(cause)» fits this case, but \(results[j].caseID), of the same operation, "
                + "layout and dtype, fails with finite data and the model does not explain it (\(results[j].detail.prefix(160)))")
            results[i].likelyCause = nil
        }
    }
}
