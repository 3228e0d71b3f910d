/// The running-update causes across an audit. A case's running statistics can fit a bug model
/// that is not the bug: the biased estimator n and a count N·C·H·W, or (n/(n − 1))² and
/// n/(n − 2), agree within tolerance when n is large; "never updated" is exact on a
/// one-channel case whose only channel a loop over C − 1 channels skipped. Other cases of the
/// same audit tell them apart (an outside red team's four wrong causes). So a running-update
/// cause named anywhere (a case's model, a trajectory's or an epoch's, or the audit-wide weight rule) stands
/// only when every failing single-step training case whose running statistics fail is
/// reproduced, in its running statistics, by that model too; otherwise it is withdrawn
/// ("unexplained"), with the contradicting case's implied figures as evidence.
enum RunningConsistency {
    /// The running-update models by key, with the phrases that mark their causes (the models'
    /// own, the fitted-weight texts and ``WeightFit/cause``).
    static let phrases: [(key: String, marks: [String])] = [
        ("inverted", ["momentum convention inverted"]),
        ("not-updated", ["running statistics not updated"]),
        ("replaced", ["replaces the running statistics"]),
        ("estimator", ["running variance uses the other estimator"]),
        ("variance-plus-eps", ["running variance fed σ² + ε", "running variance fed s² + ε"]),
        ("bessel-twice", ["running variance Bessel-corrected twice"]),
        ("weight", ["running statistics updated with", "fixed batch weight", "applied twice per step"]),
        // An epoch's (``RunningModels/epoch``): right on every single-step case, so a failing
        // training case's running statistics contradict them (the running variance's Bessel factor
        // over N alone equals the first batch's at every step on an epoch of 1 + 4 + 4 samples of
        // four values: it had been named there).
        ("first-batch-bessel", ["Bessel factor n/(n − 1) is the first batch's"]),
        ("samples-weight", ["weights each batch by its samples"]),
    ]

    /// The keys of the running-update models a cause names (two for an "either … or …" cause).
    static func keys(_ cause: String?) -> Set<String> {
        guard let cause else { return [] }
        return Set(phrases.filter { $0.marks.contains(where: cause.contains) }.map(\.key))
    }

    /// A failing single-step training case whose running statistics fail: the keys of the
    /// models (``RunningModels/all``) whose running statistics match the returned ones within
    /// tolerance (the case's other outputs aside); nil for any other case.
    static func reproducing(_ p: DiagnosisProblem) -> [String]? {
        let names: Set<String> = ["running_mean", "running_var"]
        guard p.spec.op == .train, names.contains(where: { !p.failing($0).isEmpty }) else { return nil }
        var running = p
        running.got = p.got.filter { names.contains($0.key) }
        return RunningModels.all.compactMap { m -> String? in
            guard let predicted = m.predict(p), running.explains(predicted) else { return nil }
            return keys(m.cause).first
        }.sorted()
    }

    /// Withdraws every running-update cause some failing case contradicts (see the type's
    /// comment); returns the withdrawn keys with the contradicting case.
    @discardableResult
    static func withdrawContradicted(_ results: inout [AuditResult]) -> [String: String] {
        let witnesses = results.indices.filter { results[$0].status == .failed && results[$0].runningModels != nil }
        var against: [String: String] = [:]
        for i in results.indices where results[i].status == .failed {
            let named = keys(results[i].likelyCause)
            guard !named.isEmpty,
                  let j = witnesses.first(where: { $0 != i && named.isDisjoint(with: results[$0].runningModels ?? []) }) else { continue }
            let figures = results[j].evidence.filter { $0.hasPrefix("running mean:") || $0.hasPrefix("running variance:") }
            let reproduced = results[j].runningModels ?? []
            results[i].evidence.append("running-update cause withdrawn: «\(results[i].likelyCause ?? "")» fits this case, but "
                + "the running statistics of \(results[j].caseID) fail too and are not what it gives"
                + (reproduced.isEmpty ? " (no running-update model reproduces them)" : " (reproduced there by: \(reproduced.joined(separator: ", ")))")
                + (figures.isEmpty ? "" : "; there \(figures.joined(separator: "; "))"))
            for k in named { against[k] = results[j].caseID }
            results[i].likelyCause = nil
        }
        return against
    }
}
