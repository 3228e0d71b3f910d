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
/// Synchronized BN's formula models are judged the same way (an outside red team's, round F: a
/// backward dividing by K'·n_k, its forward right, was named "statistics averaged with equal
/// weights" on a near-constant case where the two means coincide; a dx with only Σdy local was
/// named "Σdy and Σdy·x̂ not all-reduced" on the two cases where x̂ carries nothing).
///
/// A passing case contradicts too: a formula bug acts on every case of its path, so a case of the
/// same operation, layout and storage type that passes, where the model's prediction misses by
/// more than ``far`` tolerances, shows the bug is not there (round F: a merge started from an empty
/// rank 0's NaN was named "an empty rank's 0/0 included", which would make NaN of the passing cases
/// whose empty rank is not the first).
///
/// Since round G the plain formula models of a whole tensor are judged alike (eps outside the
/// root, γ and β swapped or not applied, the backward's missing terms and γ), and the
/// higher-order ones (constant statistics, no γ–x cross terms, r′'s sign), and since 2026-12-06 the
/// epoch models (a running update that assumes one batch size). Only these models are judged so: other models' causes stand on their own cases, since
/// their bugs' other cases can be unexplained for honest reasons — a model that reproduces the
/// outputs but departs from the reference by under ``Diagnosis/informative`` τ names nothing
/// (the `eps-outside-sqrt` mutant's Keras-profile cases, eps 10⁻³, are such), and precision
/// models fit where their rounding shows (the float16 sum alone is judged, by a majority of its
/// operation's failures: ``byMajority``); vector tails, the running update, poisoning and the
/// one-pass growth have audit-wide checks of their own.
enum ModelConsistency {
    /// The models this check judges, by a key and the phrase that names them in a cause.
    static let phrases: [(key: String, mark: String)] = [
        ("unbiased", "normalises with the unbiased variance"), ("neighbour", "statistics and parameters of channel c"),
        ("unweighted", "averaged with equal weights 1/K'"), ("emptyNaN", "an empty rank's 0/0 included"),
        ("unreducedDx", "Σdy and Σdy·x̂ are not all-reduced"),
        // Round G (2026-12-05): bugs of the last channel alone were named these whole-tensor causes
        // on the non-finite cases, whose other channels are NaN in the reference and show nothing;
        // |γ| in dx was named "omits γ" on a case with γ ≈ −1. Their finite cases contradict them.
        ("epsOutside", "eps added outside the square root"), ("swap", "γ and β swapped"), ("noAffine", "γ and β not applied"),
        ("noMeanTerm", "backward misses the −mean(dy) term"), ("noXhatTerm", "backward misses the −x̂·mean(dy·x̂) term"),
        ("noGamma", "backward omits γ in dx"),
        // Round G: PyTorch's `hessian` H·v, unexplained on every well-conditioned hvp-train case, was
        // named "constant statistics" on a near-constant one (var ≪ eps), where that model and the
        // real mistake coincide. The higher-order formula models act on every case of their path too.
        ("hoConstantStatistics", "higher derivatives treat the batch mean and inverse std as constants"),
        ("hoNoGammaX", "higher derivatives miss the γ–x cross terms"), ("hoRPrimeSign", "derivative of 1/√(σ² + ε) has the wrong sign"),
        // Round I: a variance 1 % too large everywhere was named "batch_var returned Bessel-corrected"
        // on an n = 100 case whose y passes (σ² ≪ ε); an inference with the batch mean and the given
        // variance "the batch's own statistics" on N = 1 cases, where y = β under both. Their other
        // cases of the same operation and layout contradict them.
        ("besselBatchVar", "batch_var returned Bessel-corrected"),
        ("inferBatchStatistics", "inference normalises with the batch's own statistics"),
        // 2026-12-06: a running variance whose Bessel factor takes the previous batch's count, or the
        // largest count so far, was named "the first batch's at every step" on the epochs of
        // 3 + 3 + 1 and 4 + 4 + 2 samples, where those coincide; the epoch of 1 + 4 + 4 (failing,
        // or passing where the largest count is the honest one) contradicts it. An epoch model acts
        // on every epoch case of its path, as a formula does.
        ("epochFirstBatchBessel", "Bessel factor n/(n − 1) is the first batch's"),
        ("epochSamplesWeight", "weights each batch by its samples"),
        // 2026-12-06: Σx accumulated sequentially in bfloat16 was named "accumulated in float16" on
        // the one case where only a 34-value channel is finite, while the model missed 325 other
        // failing training cases far. A precision model is judged by a majority (``byMajority``).
        ("float16Sum", "Σx accumulated in float16"),
        // Round J (2026-12-06): a synchronized y normalised with the rank's own mean (and the global
        // variance) was named "each rank normalises with its own batch statistics" on spread:1e-5
        // cases, where var ≪ eps makes the two coincide; a running variance Bessel-corrected with
        // n/K "with a rank's own count" on partitions where a rank holds n/K samples; statistics
        // over (N, H) alone "per spatial position" on H = 1 cases. The other partitions, and the
        // cases with H > 1, contradict them.
        ("unsynchronized", "each rank normalises with its own batch statistics"),
        ("localBessel", "Bessel-corrected with a rank's own count"),
        ("perSpatial", "statistics per spatial position"),
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

    /// The keys of the judged models whose prediction misses this case (failing, or passing: see
    /// the type's comment) by more than ``far`` tolerances, and by more than a tenth of the
    /// implementation's own error, on a well-conditioned case; a key with several models (the
    /// unweighted statistics and their derivative) only when every one of them that applies misses.
    static func contradicted(_ p: DiagnosisProblem) -> [String] {
        // A non-finite value against a finite one is infinitely far.
        func distance(_ a: [String: [Double]], _ b: [String: [Double]]) -> Double {
            a.keys.reduce(0) { worst, name in
                guard let x = a[name], let y = b[name], x.count == y.count else { return worst }
                return zip(x, y).reduce(worst) { w, e in
                    e.0.isFinite && e.1.isFinite ? max(w, abs(e.0 - e.1)) : e.0.isFinite != e.1.isFinite ? .infinity : w
                }
            }
        }
        // Only a well-conditioned case (every channel's |μ|/σ ≤ 10) contradicts: where κ is large
        // a model's prediction from the exact statistics and the bug's own rounded ones part by
        // more than either's distance from the reference shows (the neighbour-channel mutant on a
        // two-value channel at κ ≈ 100: y = −278 for 0.5).
        let s = p.trainingStatistics
        guard !s.mean.isEmpty, zip(s.mean, s.variance).allSatisfy({ $1 > 0 && abs($0) <= 10 * $1.squareRoot() }) else { return [] }
        let ownError = distance(p.got, p.expected)
        var missedBy: [String: Bool] = [:]  // key → every applying model of it misses
        for m in Diagnosis.models(for: p.spec.op) {
            guard let key = keys(m.cause).first, let predicted = m.predict(p), !predicted.isEmpty else { continue }
            let misses = p.misfit(predicted) > far && distance(predicted, p.got) > 0.1 * ownError
            missedBy[key] = (missedBy[key] ?? true) && misses
        }
        return missedBy.filter(\.value).keys.sorted()
    }

    /// The models whose bug acts on every case of their operation whatever its layout and storage
    /// type: the epoch models, a running update of per-channel statistics (held in float32 or wider
    /// for every storage type). Any case of the operation, failing or passing, contradicts them.
    static let operationWide: Set<String> = ["epochFirstBatchBessel", "epochSamplesWeight"]

    /// Precision models, whose prediction (one summation order) can miss some failing cases of the
    /// real bug far (another order: the `fp16-accumulation` mutant is named on 273 training cases
    /// and 48 others are unexplained): withdrawn only when more failing cases of the operation,
    /// unexplained with finite data, contradict the model than the cases it is named on — unless
    /// the named case returned a non-finite value where the reference's is finite, the overflow of
    /// a 16-bit accumulator that the model reproduces (MLX on the fp16-probe case).
    static let byMajority: Set<String> = ["float16Sum"]

    /// A case's operation, from its id.
    static func operation(_ id: String) -> Substring { id.split(separator: ".").first ?? Substring(id) }

    /// The path a case takes through an implementation, from its id (`op.data.shape.layout.dtype…`):
    /// `op.layout.dtype`, where a passing case contradicts a formula model (a bug of one dtype's
    /// kernel alone leaves the other dtypes' cases passing, which contradict nothing; failures:
    /// ``sharesFormula(_:_:)``).
    static func path(_ id: String) -> String {
        let f = id.split(separator: ".")
        guard f.count >= 5 else { return id }
        return "\(f[0]).\(f[3]).\(f[4])"
    }

    /// Whether an unexplained failure `other` can contradict a formula model named on `id`: the
    /// same operation, and the same layout (any storage type) or the same storage type (any
    /// layout). A formula acts on every layout alike; a layout's own kernel with a bug of its own
    /// leaves the other layouts passing, which contradict only on their own path. Round J
    /// (2026-12-06): a variance Bessel-corrected over the batch dimension N, N/(N − 1), was named
    /// "the unbiased variance" on 40 NC cases, where N is the count, while its 217 NCHW and NHWC
    /// failures of the same storage types were unexplained.
    static func sharesFormula(_ id: String, _ other: String) -> Bool {
        let a = id.split(separator: "."), b = other.split(separator: ".")
        guard a.count >= 5, b.count >= 5 else { return id == other }
        return a[0] == b[0] && (a[3] == b[3] || a[4] == b[4])
    }

    /// Withdraws a judged cause when, for every model it names, an unexplained failure of the
    /// same operation and layout or storage type with finite data (``sharesFormula(_:_:)``), or a
    /// passing case of the same operation, layout and storage type, misses that model's prediction
    /// by more than ``far``.
    static func withdrawContradicted(_ results: inout [AuditResult]) {
        // The open failures as the cases named them, before any withdrawal.
        let open = results.indices.filter { results[$0].isNumericFailure && results[$0].finiteData && results[$0].likelyCause == nil }
        let passing = results.indices.filter { results[$0].status == .passed }
        // For the models judged by majority: the cases each is named on, per operation, before any withdrawal.
        var namedOn: [String: Int] = [:]
        for r in results { for key in keys(r.likelyCause) where byMajority.contains(key) { namedOn["\(key) \(operation(r.caseID))", default: 0] += 1 } }
        for i in results.indices {
            let named = keys(results[i].likelyCause)
            guard !named.isEmpty, let cause = results[i].likelyCause else { continue }
            let minePath = path(results[i].caseID)
            func contradicts(_ j: Int, _ key: String) -> Bool { (results[j].contradictedModels ?? []).contains(key) }
            let mineOperation = operation(results[i].caseID)
            // Every model the cause names must be contradicted (an "either … or …" cause stands while one does).
            var majority: (against: Int, named: Int)? = nil
            let against = named.sorted().compactMap { key -> Int? in
                if byMajority.contains(key) {
                    // An overflow the model reproduces (float16's 65504: MLX on the fp16-probe case) is its signature.
                    guard !results[i].nonFiniteWhereFinite else { return nil }
                    let contra = open.filter { operation(results[$0].caseID) == mineOperation && contradicts($0, key) }
                    let fits = namedOn["\(key) \(mineOperation)", default: 0]
                    guard contra.count > fits, let j = contra.first else { return nil }
                    majority = (contra.count, fits)
                    return j
                }
                return operationWide.contains(key)
                    ? (open + passing).first { operation(results[$0].caseID) == mineOperation && contradicts($0, key) }
                    : open.first { sharesFormula(results[i].caseID, results[$0].caseID) && contradicts($0, key) }
                        ?? passing.first { path(results[$0].caseID) == minePath && contradicts($0, key) }
            }
            guard against.count == named.count, let j = against.first else { continue }
            if let m = majority, named.count == 1 {
                results[i].evidence.append("cause withdrawn: «\(cause)» fits this case, but \(m.against) failing cases of the same operation, "
                    + "unexplained with finite data, are missed by the model by more than \(Int(far)) tolerances, against \(m.named) it fits; "
                    + "e.g. \(results[j].caseID) (\(results[j].detail.prefix(160)))")
                results[i].likelyCause = nil
                continue
            }
            let same = named.isSubset(of: operationWide) ? "of the same operation" : nil
            let how = results[j].status == .passed
                ? "\(same ?? "of the same operation, layout and storage type"), passes, and the model misses it by more than \(Int(far)) tolerances"
                : "\(same ?? "of the same operation and layout or storage type"), fails with finite data and the model misses it by more than \(Int(far)) tolerances (\(results[j].detail.prefix(160)))"
            results[i].evidence.append("cause withdrawn: «\(cause)» fits this case, but \(results[j].caseID), \(how)")
            results[i].likelyCause = nil
        }
    }
}
