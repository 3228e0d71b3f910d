import BNCore
import BNGolden

/// What a failing case's outputs reveal about the implementation (spec/AUDIT.md §5).
///
/// The diagnosis fits models of what the implementation may have computed to the outputs it
/// returned, and always reports the fitted figures as evidence. It names a cause only when a
/// model, with its fitted parameters, reproduces every returned output within the case's
/// tolerance while the reference does not; otherwise the cause is nil ("unexplained"). A
/// wrong cause sends a user hunting in the wrong place, so a model that explains only some
/// outputs names nothing.
public struct Diagnosis: Codable, Sendable, Equatable {
    /// The explained cause, or nil: unexplained.
    public var cause: String?
    /// Fitted figures, one line each, in the order they were measured.
    public var evidence: [String]

    public init(cause: String?, evidence: [String]) { self.cause = cause; self.evidence = evidence }
}

/// Everything a diagnosis looks at: the case (re-targeted to the audited profile), the
/// outputs the implementation returned, and the per-element tolerances of the judge.
public struct DiagnosisProblem: Sendable {
    /// The case and its inputs never change after `init`: the training statistics computed from
    /// them are kept (``trainingStatistics``), shared by every copy.
    public let spec: CaseSpec
    public let inputs: [String: [Double]]
    public var expected: [String: [Double]]
    public var got: [String: [Double]]
    public var tolerance: [String: [Double]]
    /// Outputs stored in the case's storage dtype (rounded before comparison).
    public var storageOutputs: Set<String>
    /// Non-finite values the spec also accepts (output → element → values).
    public var alternatives: [String: [Int: [Double]]]
    /// The tolerances and the primary output's resolution (spec §5.4) the case would have for
    /// an implementation computing with unit roundoff u; nil when they cannot be computed.
    public var budgetAt: (@Sendable (Double) -> (tolerance: [String: [Double]], resolution: Double?)?)?

    public init(spec: CaseSpec, inputs: [String: [Double]], expected: [String: [Double]], got: [String: [Double]],
                tolerance: [String: [Double]], storageOutputs: Set<String>, alternatives: [String: [Int: [Double]]] = [:],
                budgetAt: (@Sendable (Double) -> (tolerance: [String: [Double]], resolution: Double?)?)? = nil,
                statisticsOfX known: (mean: [Double], variance: [Double])? = nil) {
        self.spec = spec; self.inputs = inputs; self.expected = expected; self.got = got
        self.tolerance = tolerance; self.storageOutputs = storageOutputs; self.alternatives = alternatives
        self.budgetAt = budgetAt
        if let known { _ = statisticsOfX.value { known } }
    }

    /// The exact batch statistics of x (``batchStatistics(_:)``), given to `init` by a caller
    /// that has them or computed on first use (dozens of models read them).
    let statisticsOfX = Once<(mean: [Double], variance: [Double])>()

    var shape: Shape { (try? spec.shapeValue()) ?? (try! Shape(batch: 1, channels: 1)) }
    var n: Int { shape.perChannelCount }
    package var channels: Int { shape.channels }

    /// Linear indices of channel c in storage order.
    package func indices(_ c: Int) -> [Int] {
        var out: [Int] = []
        for seg in spec.layout.segments(channel: c, shape: shape) {
            var i = seg.offset
            for _ in 0..<seg.count { out.append(i); i += seg.stride }
        }
        return out
    }

    /// max over outputs and elements of |got − predicted| ÷ tolerance for the outputs the
    /// implementation returned (predicted outputs default to the reference).
    func misfit(_ predicted: [String: [Double]]) -> Double {
        var worst = 0.0
        for (name, g) in got {
            guard var tol = tolerance[name] else { continue }
            let p = predicted[name] ?? expected[name] ?? []
            // A 16-bit storage output's rounding is bounded about the reference (spec §5.2); a model
            // that predicts other values is owed the same rounding about its own prediction.
            // τ holds u_s·|y_ref| (spec §5.2): about a prediction it is u_s·|prediction|, so the
            // difference is added where the prediction is larger — no more (an extra 2·u_s·|prediction|
            // had let a second bug of 0.3–0.6 % hide behind a named one, an outside red team found).
            if predicted[name] != nil, storageOutputs.contains(name), spec.dtype == .f16 || spec.dtype == .bf16, p.count == tol.count,
               let ref = expected[name], ref.count == tol.count {
                tol = tol.indices.map { i in
                    let grow = p[i].isFinite && ref[i].isFinite ? max(0, abs(p[i]) - abs(ref[i])) : 0
                    return tol[i] + spec.dtype.storageRoundoff * grow
                }
            }
            // Where a model predicts a finite value and the reference is NaN or ±Inf, τ is the
            // reference's (0 where the input defines it, §5.4): the prediction is owed the bound of a
            // finite element, the largest of the output's (round G's x-as-0 inference was otherwise
            // held to τ = 0 at the very elements its cause changes).
            if predicted[name] != nil, let ref = expected[name], ref.count == tol.count, p.count == tol.count {
                let finiteTau = tol.indices.filter { ref[$0].isFinite && tol[$0].isFinite }.map { tol[$0] }.max()
                if let t = finiteTau {
                    for i in tol.indices where p[i].isFinite && !ref[i].isFinite { tol[i] = t }
                }
            }
            let alt = predicted[name] == nil ? (alternatives[name] ?? [:]) : [:]
            let limit = spec.dtype == .f64 ? Double.greatestFiniteMagnitude : Double(Float.greatestFiniteMagnitude)
            let (r, _, _, _) = CaseJudge.worst(g, p, tol, storage: storageOutputs.contains(name) ? spec.dtype : nil, limit: limit,
                                         alternatives: { alt[$0] ?? [] })
            worst = max(worst, r)
        }
        return worst
    }

    /// True when the model's outputs match every returned output within tolerance.
    func explains(_ predicted: [String: [Double]]) -> Bool { misfit(predicted) <= 1 }

    /// How far a model's outputs lie from the reference: the largest |predicted − reference| ÷ τ
    /// over the outputs the implementation returned (+∞ where they differ in a non-finite value).
    func deviation(_ predicted: [String: [Double]]) -> Double {
        var worst = 0.0
        for name in got.keys {
            guard let pr = predicted[name], let e = expected[name], let tol = tolerance[name] else { continue }
            let alt = alternatives[name] ?? [:]
            let limit = spec.dtype == .f64 ? Double.greatestFiniteMagnitude : Double(Float.greatestFiniteMagnitude)
            let (r, _, _, _) = CaseJudge.worst(pr, e, tol, storage: storageOutputs.contains(name) ? spec.dtype : nil, limit: limit,
                                         alternatives: { alt[$0] ?? [] })
            worst = max(worst, r)
        }
        return worst
    }

    /// The elements of `name` outside tolerance (indices).
    func failing(_ name: String) -> [Int] {
        guard let g = got[name], let e = expected[name], let t = tolerance[name], g.count == e.count else { return [] }
        let alt = alternatives[name] ?? [:]
        let limit = spec.dtype == .f64 ? Double.greatestFiniteMagnitude : Double(Float.greatestFiniteMagnitude)
        return g.indices.filter { i in
            CaseJudge.worst([g[i]], [e[i]], [t[i]], storage: storageOutputs.contains(name) ? spec.dtype : nil, limit: limit,
                            alternatives: { _ in alt[i] ?? [] }).ratio > 1
        }
    }
}

/// A model of a bug: its name (the cause) and the outputs it predicts for a case, or nil when
/// it does not apply to the case.
struct BugModel: Sendable {
    var cause: String
    var predict: @Sendable (DiagnosisProblem) -> [String: [Double]]?
    /// The cause with fitted figures filled in (e.g. the eps the outputs imply), when it has them.
    var describe: (@Sendable (DiagnosisProblem) -> String)? = nil
    /// A model with a fitted parameter (any eps, any weight): tried only when no specific
    /// model explains the outputs, since it also reproduces their special cases.
    var generic = false

    init(cause: String, generic: Bool = false, describe: (@Sendable (DiagnosisProblem) -> String)? = nil,
         predict: @escaping @Sendable (DiagnosisProblem) -> [String: [Double]]?) {
        self.cause = cause; self.predict = predict; self.describe = describe; self.generic = generic
    }
}

extension Diagnosis {
    /// A model names a cause only when it predicts a failure of at least this many tolerances
    /// somewhere: a model that departs from the reference by a few τ is matched, within τ, by
    /// many other bugs as well (found by the red-team set: eps² inside the square root matched
    /// "eps outside" on a channel of variance 0.01).
    static let informative = 10.0

    /// Diagnoses a failing case: evidence from every fit, and the first model that explains
    /// all returned outputs, if any.
    public static func of(_ p: DiagnosisProblem) -> Diagnosis {
        var evidence = failingSummary(p)
        evidence += Fits.evidence(p)
        // Every specific model that reproduces the outputs; a fitted-parameter model (another
        // eps, another batch weight…) only when no specific one does. Two different causes that
        // both reproduce the outputs are both named: the data cannot tell them apart.
        var explained: [String] = []
        for generic in [false, true] where explained.isEmpty {
            for model in models(for: p.spec.op) where model.generic == generic {
                guard let predicted = model.predict(p), !predicted.isEmpty, p.explains(predicted),
                      p.deviation(predicted) >= Self.informative else { continue }
                let cause = model.describe?(p) ?? model.cause
                if !explained.contains(cause) { explained.append(cause) }
            }
        }
        if explained.count == 1 { return Diagnosis(cause: explained[0], evidence: evidence) }
        if explained.count > 1 {
            return Diagnosis(cause: "either " + explained.joined(separator: ", or ") + " (each reproduces the outputs)", evidence: evidence)
        }
        if let located = Patterns.location(p) { return Diagnosis(cause: located, evidence: evidence) }
        return Diagnosis(cause: nil, evidence: evidence + Patterns.statistics(p) + Patterns.precision(p))
    }

    /// Which outputs fail, how many elements, and in which channels.
    static func failingSummary(_ p: DiagnosisProblem) -> [String] {
        var out: [String] = []
        for name in p.got.keys.sorted() {
            let f = p.failing(name)
            guard !f.isEmpty, let total = p.got[name]?.count else { continue }
            let perChannel = total == p.channels || total == p.channels * p.spec.steps || total == p.channels * p.spec.gradientRows
            var chans = Set<Int>()
            if perChannel { for i in f { chans.insert(i % p.channels) } } else {
                for c in 0..<p.channels where !Set(p.indices(c)).isDisjoint(with: f) { chans.insert(c) }
            }
            let list = chans.sorted()
            let shown = list.count > 12 ? list.prefix(12).map(String.init).joined(separator: ", ") + ", …" : list.map(String.init).joined(separator: ", ")
            out.append("\(name): \(f.count) of \(total) elements outside tolerance, in channels [\(shown)] of \(p.channels)")
        }
        return out
    }

    static func models(for op: Operation) -> [BugModel] {
        var m = Patterns.models
        switch op {
        case .train: m += ForwardModels.training + RunningModels.all
        case .infer: m += ForwardModels.inference
        case .backwardTrain: m += BackwardModels.training
        case .backwardInfer: m += BackwardModels.inference
        case .trajectory: m += RunningModels.trajectory
        case .epoch: m += RunningModels.trajectory + RunningModels.epoch
        case .syncTrain: m += ForwardModels.training + RunningModels.all + SynchronizedModels.training
        case .syncBackward: m += BackwardModels.training + SynchronizedModels.backward
        case .hvpTrain, .hvpInfer, .d2Train, .d3Train: m += HigherOrderModels.all
        }
        return m
    }
}
