/// A cause that a bug model fits on one case stands only if the bug's other cases agree with it.
///
/// The unbiased variance in the normalisation and the statistics and parameters of a
/// neighbouring channel are formula bugs that act on every case of one operation and layout, in
/// any storage type. When a case of that operation and layout fails with finite data and
/// nothing explains it, the model does not describe the implementation: it fitted the named case
/// by accident (an outside red team's, 2026-12-05: y·1/(σ + √ε) was named "the unbiased variance"
/// on a bfloat16 case, whose tolerance held the 0.5 % difference, while its float32 and float16
/// copies were unexplained; γ and β of channel c + 1, the statistics right, were named "the statistics
/// and parameters of channel c ± 1" on NIST cases whose two channels hold the same data). The
/// cause is withdrawn, with the unexplained case as evidence — when the model's prediction misses
/// that case by more than ``far`` tolerances (``contradicted(_:)``, computed case by case).
///
/// Only these two models are judged so: other models' causes stand on their own cases, since
/// their bugs' other cases can be unexplained for honest reasons — a model that reproduces the
/// outputs but departs from the reference by under ``Diagnosis/informative`` τ names nothing
/// (the `eps-outside-sqrt` mutant's Keras-profile cases, eps 10⁻³, are such), and precision
/// models fit where their rounding shows; vector tails, the running update, poisoning and the
/// one-pass growth have audit-wide checks of their own.
enum ModelConsistency {
    /// The models this check judges, by a key and the phrase that names them in a cause.
    static let phrases: [(key: String, mark: String)] = [
        ("unbiased", "normalises with the unbiased variance"), ("neighbour", "statistics and parameters of channel c"),
    ]

    /// The judged models a cause names.
    static func keys(_ cause: String?) -> Set<String> {
        guard let cause else { return [] }
        return Set(phrases.filter { cause.contains($0.mark) }.map(\.key))
    }

    /// How far a model's prediction must miss a failing case (its worst error ÷ tolerance) to
    /// contradict it: a model that misses by a few τ may be the bug under some rounding the
    /// model leaves out (the unbiased-variance mutant on offset data, κ ≈ 100, misses by ~1).
    static let far = 10.0

    /// The keys of the judged models whose prediction misses this failing case by more than
    /// ``far`` tolerances (models that do not apply to it are left out).
    ///
    ///
    /// And by more than a tenth of the implementation's own error, on a well-conditioned case.
    static func contradicted(_ p: DiagnosisProblem) -> [String] {
        func distance(_ a: [String: [Double]], _ b: [String: [Double]]) -> Double {
            a.keys.reduce(0) { worst, name in
                guard let x = a[name], let y = b[name], x.count == y.count else { return worst }
                return zip(x, y).filter { $0.isFinite && $1.isFinite }.reduce(worst) { max($0, abs($1.0 - $1.1)) }
            }
        }
        // Only a well-conditioned case (every channel's |μ|/σ ≤ 10) contradicts: where κ is large
        // a model's prediction from the exact statistics and the bug's own rounded ones part by
        // more than either's distance from the reference shows (the neighbour-channel mutant on a
        // two-value channel at κ ≈ 100: y = −278 for 0.5).
        let s = p.trainingStatistics
        guard !s.mean.isEmpty, zip(s.mean, s.variance).allSatisfy({ $1 > 0 && abs($0) <= 10 * $1.squareRoot() }) else { return [] }
        let ownError = distance(p.got, p.expected)
        let missed = Diagnosis.models(for: p.spec.op).compactMap { m -> String? in
            guard let key = keys(m.cause).first, let predicted = m.predict(p), !predicted.isEmpty else { return nil }
            return p.misfit(predicted) > far && distance(predicted, p.got) > 0.1 * ownError ? key : nil
        }
        return Set(missed).sorted()
    }

    /// The cases a formula bug acts on alike, from a case id (`op.data.shape.layout.dtype…`): one
    /// operation and layout, every storage type (the formula is the same; a bug of one dtype's
    /// kernel alone leaves the other dtypes' cases passing, which contradict nothing).
    static func path(_ id: String) -> String {
        let f = id.split(separator: ".")
        return f.count >= 4 ? "\(f[0]).\(f[3])" : id
    }

    /// Withdraws a judged cause when, for every model it names, an unexplained failure of the
    /// same operation and layout with finite data misses that model's prediction by more than ``far``.
    static func withdrawContradicted(_ results: inout [AuditResult]) {
        // The open failures as the cases named them, before any withdrawal.
        let open = results.indices.filter { results[$0].isNumericFailure && results[$0].finiteData && results[$0].likelyCause == nil }
        for i in results.indices {
            let named = keys(results[i].likelyCause)
            guard !named.isEmpty, let cause = results[i].likelyCause else { continue }
            let mine = path(results[i].caseID)
            // Every model the cause names must be contradicted (an "either … or …" cause stands while one does).
            let against = named.sorted().compactMap { key in
                open.first { j in path(results[j].caseID) == mine && (results[j].contradictedModels ?? []).contains(key) }
            }
            guard against.count == named.count, let j = against.first else { continue }
            results[i].evidence.append("cause withdrawn: «\(cause)» fits this case, but \(results[j].caseID), of the same operation "
                + "and layout, fails with finite data and the model misses it by more than \(Int(far)) tolerances (\(results[j].detail.prefix(160)))")
            results[i].likelyCause = nil
        }
    }
}
