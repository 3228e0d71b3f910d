import BNCore

/// Bug models of the forward pass (spec/AUDIT.md §5). Each predicts every output it changes,
/// exactly, from the case's inputs; a model explains a failure only when the implementation's
/// outputs match the prediction within tolerance everywhere.
enum ForwardModels {
    /// A model that changes y only, through the per-channel statistics it normalises with.
    static func y(_ cause: String, _ f: @escaping @Sendable (DiagnosisProblem) -> [Double]?) -> BugModel {
        BugModel(cause: cause) { p in f(p).map { ["y": $0] } }
    }

    /// Round G's: inference (and training) replacing NaN and ±Inf in x by 0.
    static let nonFiniteAsZero = "NaN and ±Inf in x taken as 0 (x's non-finite values replaced before normalising)"
    /// An outside red team's: a 16-bit training normalising with the batch mean rounded to its storage format.
    static let meanRoundedToStorage = "normalises with the batch mean rounded to the 16-bit storage format (the returned statistics right)"

    /// Where the reference's y is NaN or ±Inf, the fit (finite elements) does not compare: a model
    /// of what happens to x's non-finite values must there return what the implementation did
    /// (round J: the outputs' NaN and ±Inf written as 0 were named "x taken as 0" on the
    /// nonfinite-params inference, where γ = 0 makes the two agree on every finite element while
    /// the model's β differs from the returned 0 at the NaN's own elements). 16-bit storage: 1 %.
    static func agreesWhereReferenceIsNonFinite(_ p: DiagnosisProblem, _ predicted: [Double]) -> Bool {
        guard let got = p.got["y"], let ref = p.expected["y"], got.count == predicted.count, ref.count == predicted.count else { return true }
        for i in ref.indices where !ref[i].isFinite {
            let a = predicted[i], b = got[i]
            if a.isNaN != b.isNaN || a.isFinite != b.isFinite || (a.isInfinite && a != b) { return false }
            if a.isFinite && abs(a - b) > 1e-2 * max(1, abs(a)) { return false }
        }
        return true
    }

    typealias Formula = @Sendable (DiagnosisProblem, [Double], [Double], [Double]) -> [Double]?
    static let shared: [(String, Formula)] = [
        ("eps added outside the square root: y uses 1/(σ + ε)", { p, x, m, v in
            p.normalized(x, mean: m, scale: { 1 / (v[$0].squareRoot() + p.eps) }) }),
        ("normalises with the unbiased variance M2/(n − 1) instead of M2/n", { p, x, m, v in
            p.n > 1 ? p.normalized(x, mean: m, scale: { p.invStd(v[$0] * p.bessel) }) : nil }),
        ("γ and β swapped", { p, x, m, v in
            p.normalized(x, mean: m, scale: { p.invStd(v[$0]) }, gamma: p.beta, beta: p.gamma) }),
        ("γ and β not applied (y = x̂)", { p, x, m, v in
            p.normalized(x, mean: m, scale: { p.invStd(v[$0]) }, gamma: .init(repeating: 1, count: p.channels),
                         beta: .init(repeating: 0, count: p.channels)) }),
        ("channel c normalised with the statistics and parameters of channel c + 1 (an index off by one)", { p, x, m, v in
            p.channels > 1 ? p.normalized(x, mean: m, scale: { p.invStd(v[$0]) }, channelOf: { ($0 + 1) % p.channels }) : nil }),
        ("channel c normalised with the statistics and parameters of channel c − 1 (an index off by one)", { p, x, m, v in
            p.channels > 1 ? p.normalized(x, mean: m, scale: { p.invStd(v[$0]) }, channelOf: { ($0 + p.channels - 1) % p.channels }) : nil }),
        ("the output is written in the other layout's element order (NCHW ↔ NHWC)", { p, x, m, v in
            guard p.spec.layout != .nc, p.shape.spatialSize > 1 else { return nil }
            let y = p.normalized(x, mean: m, scale: { p.invStd(v[$0]) })
            // The right y, written in the other layout's order (its buffer read as this layout).
            let other: Layout = p.spec.layout == .nchw ? .nhwc : .nchw
            return y.relayout(p.shape, from: p.spec.layout, to: other)
        }),
    ]

    static var training: [BugModel] {
        let common = shared.map { name, f in
            y(name) { p in let s = p.trainingStatistics; return s.mean.isEmpty ? nil : f(p, p.input("x"), s.mean, s.variance) }
        }
        return common + [
            BugModel(cause: "Σx accumulated in float16: the batch mean is a float16 running sum ÷ n") { p in
                let s = p.float16SumStatistics
                guard !s.mean.isEmpty else { return nil }
                var out = ["y": p.normalized(p.input("x"), mean: s.mean, scale: { p.invStd(s.variance[$0]) }),
                           "batch_mean": s.mean, "batch_var": s.variance]
                if let w = p.weight(step: 1), p.input("running_mean").count == p.channels {
                    out["running_mean"] = p.blend(p.input("running_mean"), s.mean, w)
                    out["running_var"] = p.blend(p.input("running_var"), p.runningVarianceTerm(s.variance), w)
                }
                return out
            },
            // The protocol's batch_var is the biased M2/n under every profile; TF's fused op returns
            // the Bessel-corrected one (an outside red team's honest pass-through was unexplained).
            BugModel(cause: "batch_var returned Bessel-corrected, M2/(n − 1) (the protocol's batch_var is the biased M2/n)") { p in
                let s = p.trainingStatistics
                return s.mean.isEmpty || p.n < 2 ? nil : ["batch_var": s.variance.map { $0 * p.bessel }]
            },
            y("statistics per sample (over the spatial positions only), not over the batch") { p in
                p.shape.batch > 1 && p.shape.spatialSize > 1 ? p.groupedNormalization(p.input("x"), groups: p.perSample) : nil },
            y("statistics per spatial position (over the batch only), not over the spatial positions") { p in
                p.shape.batch > 1 && p.shape.spatialSize > 1 ? p.groupedNormalization(p.input("x"), groups: p.perPosition) : nil },
            // Round G (2026-12-05): an implementation replacing NaN and ±Inf in x by 0 before the
            // statistics; every output follows from that x.
            BugModel(cause: nonFiniteAsZero) { p in
                guard let x = p.nonFiniteXAsZero else { return nil }
                let s = p.batchStatistics(x)
                guard !s.mean.isEmpty else { return nil }
                let y = p.normalized(x, mean: s.mean, scale: { p.invStd(s.variance[$0]) })
                guard ForwardModels.agreesWhereReferenceIsNonFinite(p, y) else { return nil }
                var out = ["y": y, "batch_mean": s.mean, "batch_var": s.variance]
                if let w = p.weight(step: 1), p.input("running_mean").count == p.channels {
                    out["running_mean"] = p.blend(p.input("running_mean"), s.mean, w)
                    out["running_var"] = p.blend(p.input("running_var"), p.runningVarianceTerm(s.variance), w)
                }
                return out
            },
            // An outside red team's (mean16): a 16-bit kernel that keeps the batch mean in a buffer of
            // its storage format and normalises with that rounded mean; the variance (about the exact
            // mean) and the returned statistics are right. Where rounding leaves every mean as it is,
            // the model predicts the reference and is not tried.
            y(meanRoundedToStorage) { p in
                guard p.spec.dtype == .f16 || p.spec.dtype == .bf16 else { return nil }
                let s = p.trainingStatistics
                let rounded = s.mean.map { p.spec.dtype.quantize($0) }
                guard !s.mean.isEmpty, zip(rounded, s.mean).contains(where: { $0 != $1 && $0.isFinite }) else { return nil }
                return p.normalized(p.input("x"), mean: rounded, scale: { p.invStd(s.variance[$0]) })
            },
            y("training normalises with the running statistics instead of the batch statistics") { p in
                let m = p.input("running_mean"), v = p.input("running_var")
                return m.count == p.channels ? p.normalized(p.input("x"), mean: m, scale: { p.invStd(v[$0]) }) : nil },
            BugModel(cause: "normalises with another eps than the case's", generic: true, describe: Fits.epsCause) { p in
                guard let e = Fits.fittedEps(p), abs(e - p.eps) > 0.01 * max(p.eps, 1e-12),
                      Fits.variancesSpan(p.trainingStatistics.variance) else { return nil }
                let s = p.trainingStatistics
                return ["y": p.normalized(p.input("x"), mean: s.mean, scale: { 1 / (s.variance[$0] + e).squareRoot() })]
            },
        ]
    }

    static var inference: [BugModel] {
        shared.map { name, f in y(name) { p in f(p, p.input("x"), p.input("mean"), p.input("var")) } } + [
            y(nonFiniteAsZero) { p in
                p.nonFiniteXAsZero.map { p.normalized($0, mean: p.input("mean"), scale: { p.invStd(p.input("var")[$0]) }) }
                    .flatMap { ForwardModels.agreesWhereReferenceIsNonFinite(p, $0) ? $0 : nil } },
            y("inference normalises with the batch's own statistics instead of the given running statistics") { p in
                let s = p.trainingStatistics
                return s.mean.isEmpty ? nil : p.normalized(p.input("x"), mean: s.mean, scale: { p.invStd(s.variance[$0]) }) },
            BugModel(cause: "normalises with another eps than the case's", generic: true, describe: Fits.epsCause) { p in
                guard let e = Fits.fittedEps(p), abs(e - p.eps) > 0.01 * max(p.eps, 1e-12),
                      Fits.variancesSpan(p.input("var")) else { return nil }
                let v = p.input("var")
                return ["y": p.normalized(p.input("x"), mean: p.input("mean"), scale: { 1 / (v[$0] + e).squareRoot() })]
            },
        ]
    }
}

/// Bug models of the running-statistics update.
enum RunningModels {
    /// The causes these models name for a single case's running update; an audit-wide fit of the
    /// weights (``WeightFit``) may replace them with the rule that holds across cases.
    static var weightCauses: [String] {
        ["momentum convention inverted", "running statistics not updated", "the update replaces the running statistics",
         "running statistics updated with batch weight"]
    }

    /// Predicts running_mean and running_var with batch weight `w` and batch variance term `bv`.
    static func update(_ p: DiagnosisProblem, w: Double, varianceTerm: ([Double]) -> [Double]) -> [String: [Double]]? {
        let s = p.trainingStatistics
        let rm = p.input("running_mean"), rv = p.input("running_var")
        guard !s.mean.isEmpty, rm.count == p.channels else { return nil }
        return ["running_mean": p.blend(rm, s.mean, w), "running_var": p.blend(rv, varianceTerm(s.variance), w)]
    }

    static let all: [BugModel] = [
        BugModel(cause: "momentum convention inverted: the running statistics take weight 1 − w for the batch") { p in
            guard let w = p.weight(step: 1), w != 0.5 else { return nil }
            return update(p, w: 1 - w, varianceTerm: p.runningVarianceTerm)
        },
        BugModel(cause: "running statistics not updated") { p in update(p, w: 0, varianceTerm: p.runningVarianceTerm) },
        BugModel(cause: "the update replaces the running statistics with the batch statistics (weight 1)") { p in
            guard let w = p.weight(step: 1), w != 1 else { return nil }
            return update(p, w: 1, varianceTerm: p.runningVarianceTerm)
        },
        BugModel(cause: "running variance uses the other estimator (biased vs unbiased)") { p in
            guard let w = p.weight(step: 1), let rule = try? p.spec.rule(), p.n > 1 else { return nil }
            return update(p, w: w, varianceTerm: { v in rule.estimator == .unbiased ? v : v.map { $0 * p.bessel } })
        },
        // Under an unbiased profile the term is s² = σ²·n/(n − 1): the text names the one fed (an
        // outside red team read "σ² + ε" beside evidence of s² + ε).
        BugModel(cause: "running variance fed σ² + ε (the normalisation's variance) instead of σ²", describe: { p in
            (try? p.spec.rule())?.estimator == .unbiased
                ? "running variance fed s² + ε (the unbiased batch variance plus the normalisation's ε) instead of s²"
                : "running variance fed σ² + ε (the normalisation's variance) instead of σ²"
        }) { p in
            guard let w = p.weight(step: 1) else { return nil }
            return update(p, w: w, varianceTerm: { v in p.runningVarianceTerm(v).map { $0 + p.eps } })
        },
        BugModel(cause: "running variance Bessel-corrected twice, (n/(n − 1))²") { p in
            guard let w = p.weight(step: 1), p.n > 1 else { return nil }
            return update(p, w: w, varianceTerm: { v in v.map { $0 * p.bessel * p.bessel } })
        },
        BugModel(cause: "running statistics updated with another batch weight than the case's", generic: true, describe: Fits.weightCause) { p in
            guard let w = Fits.fittedWeight(p), let w0 = p.weight(step: 1), abs(w - w0) > 1e-3 * max(w0, 1e-3) else { return nil }
            return update(p, w: w, varianceTerm: p.runningVarianceTerm)
        },
    ]

    /// Trajectory models (and an epoch's): the running statistics after every step and y_eval,
    /// recomputed with a modified weight schedule or running-variance term (given each batch's
    /// biased variances and its values per channel, n).
    static func trajectory(_ p: DiagnosisProblem, weight: (Int) -> Double?, varianceTerm: (([Double], Int) -> [Double])? = nil)
        -> [String: [Double]]?
    {
        guard let batches = try? p.spec.trainingBatches(p.input("x")) else { return nil }
        let C = p.channels
        var rm = p.input("running_mean"), rv = p.input("running_var")
        var allM: [Double] = [], allV: [Double] = []
        let param: (Double) -> Double = { p.spec.parameterDType.quantize($0) }
        for (k, batch) in batches.enumerated() {
            let s = p.batchStatistics(batch.values, shape: batch.shape), n = batch.shape.perChannelCount
            guard s.mean.count == C, let w = weight(k + 1) else { return nil }
            rm = p.blend(rm, s.mean, w).map(param)
            rv = p.blend(rv, varianceTerm?(s.variance, n) ?? p.runningVarianceTerm(s.variance, n: n), w).map(param)
            allM += rm; allV += rv
        }
        let y = p.normalized(p.input("x_eval"), mean: rm, scale: { p.invStd(rv[$0]) })
        return ["running_mean": allM, "running_var": allV, "y_eval": y]
    }

    static let trajectory: [BugModel] = [
        BugModel(cause: "momentum convention inverted: the running statistics take weight 1 − w for the batch") { p in
            guard p.spec.momentum != nil, let w = p.weight(step: 1), w != 0.5 else { return nil }
            return trajectory(p, weight: { _ in 1 - w })
        },
        BugModel(cause: "running statistics not updated") { p in trajectory(p, weight: { _ in 0 }) },
        BugModel(cause: "running variance uses the other estimator (biased vs unbiased)") { p in
            guard let rule = try? p.spec.rule(), p.n > 1 else { return nil }
            return trajectory(p, weight: { p.weight(step: $0) },
                              varianceTerm: { v, n in rule.estimator == .unbiased ? v : v.map { $0 * DiagnosisProblem.bessel(n) } })
        },
        BugModel(cause: "cumulative average counter resets periodically", generic: true, describe: Fits.periodCause) { p in
            guard p.spec.momentum == nil, let period = Fits.cumulativePeriod(p) else { return nil }
            return trajectory(p, weight: { k in 1 / Double((k - 1) % period + 1) })
        },
        BugModel(cause: "cumulative average weight 1/(k + 1) instead of 1/k (the counter starts at 1)") { p in
            guard p.spec.momentum == nil else { return nil }
            return trajectory(p, weight: { 1 / Double($0 + 1) })
        },
        BugModel(cause: "inference after training normalises with the last batch's statistics") { p in
            guard let base = trajectory(p, weight: { p.weight(step: $0) }), let last = try? p.spec.trainingBatches(p.input("x")).last
            else { return nil }
            let s = p.batchStatistics(last.values, shape: last.shape)
            guard s.mean.count == p.channels else { return nil }
            var out = base
            out["y_eval"] = p.normalized(p.input("x_eval"), mean: s.mean, scale: { p.invStd(s.variance[$0]) })
            return out
        },
    ]

    /// Epoch models (batches of different sizes, spec/SPEC.md §2): what a running update that
    /// assumes one batch size does.
    static let epoch: [BugModel] = [
        BugModel(cause: "the running variance's Bessel factor n/(n − 1) is the first batch's at every step") { p in
            guard let rule = try? p.spec.rule(), rule.estimator == .unbiased, let batches = try? p.spec.trainingBatches(p.input("x")),
                  let first = batches.first?.shape.perChannelCount, batches.contains(where: { $0.shape.perChannelCount != first })
            else { return nil }
            return trajectory(p, weight: { p.weight(step: $0) }, varianceTerm: { v, _ in v.map { $0 * DiagnosisProblem.bessel(first) } })
        },
        BugModel(cause: "the cumulative average weights each batch by its samples (n_k / Σ n) instead of 1/k per step") { p in
            guard p.spec.momentum == nil, let batches = try? p.spec.trainingBatches(p.input("x")),
                  Set(batches.map(\.shape.batch)).count > 1 else { return nil }
            let counts = batches.map { Double($0.shape.batch) }
            return trajectory(p, weight: { k in counts[k - 1] / counts[..<k].reduce(0, +) })
        },
    ]
}

/// Bug models of the backward pass.
enum BackwardModels {
    /// dx = a·(dy − b·Σdy/n − k·x̂·Σdy·x̂/n) with a = γ·s, and dγ, dβ, for the statistics
    /// (μ, s) of each channel.
    static func gradients(_ p: DiagnosisProblem, mean: [Double], scale: [Double], meanTerm: Double = 1, xhatTerm: Double = 1,
                          useGamma: Bool = true) -> [String: [Double]] {
        let x = p.input("x"), dy = p.input("dy"), n = Double(p.n)
        var dx = [Double](repeating: 0, count: x.count), dg: [Double] = [], db: [Double] = []
        for c in 0..<p.channels {
            let idx = p.indices(c)
            var sdy = 0.0, sdyx = 0.0
            for i in idx { sdy += dy[i]; sdyx += dy[i] * (x[i] - mean[c]) * scale[c] }
            let a = (useGamma ? p.gamma[c] : 1) * scale[c]
            for i in idx {
                dx[i] = a * (dy[i] - meanTerm * sdy / n - xhatTerm * (x[i] - mean[c]) * scale[c] * sdyx / n)
            }
            dg.append(sdyx); db.append(sdy)
        }
        // A synchronized backward with local reduction returns dγ, dβ per rank (spec §11.3).
        if p.spec.gradientRows > 1, let part = p.partition {
            let rows = SynchronizedModels.gradients(p, part, reduced: true) { _, c in (mean[c], scale[c]) }
            return ["dx": dx, "dgamma": rows["dgamma"]!, "dbeta": rows["dbeta"]!]
        }
        return ["dx": dx, "dgamma": dg, "dbeta": db]
    }

    static func model(_ cause: String, _ f: @escaping @Sendable (DiagnosisProblem, [Double], [Double]) -> [String: [Double]]?) -> BugModel {
        BugModel(cause: cause) { p in
            let s = p.trainingStatistics
            return s.mean.isEmpty ? nil : f(p, s.mean, s.variance)
        }
    }

    static let training: [BugModel] = [
        BugModel(cause: "Σx accumulated in float16: the batch mean is a float16 running sum ÷ n") { p in
            let s = p.float16SumStatistics
            return s.mean.isEmpty ? nil : gradients(p, mean: s.mean, scale: s.variance.map(p.invStd))
        },
        model("backward misses the −mean(dy) term") { p, m, v in
            gradients(p, mean: m, scale: v.map(p.invStd), meanTerm: 0) },
        model("backward misses the −x̂·mean(dy·x̂) term (the variance's dependence on x)") { p, m, v in
            gradients(p, mean: m, scale: v.map(p.invStd), xhatTerm: 0) },
        model("training backward uses the inference formula (batch statistics treated as constants)") { p, m, v in
            gradients(p, mean: m, scale: v.map(p.invStd), meanTerm: 0, xhatTerm: 0) },
        model("backward's x̂·mean(dy·x̂) term has the wrong sign") { p, m, v in
            gradients(p, mean: m, scale: v.map(p.invStd), xhatTerm: -1) },
        model("backward omits γ in dx") { p, m, v in gradients(p, mean: m, scale: v.map(p.invStd), useGamma: false) },
        model("eps added outside the square root in the backward pass") { p, m, v in
            gradients(p, mean: m, scale: v.map { 1 / ($0.squareRoot() + p.eps) }) },
        model("backward normalises with the unbiased variance M2/(n − 1)") { p, m, v in
            p.n > 1 ? gradients(p, mean: m, scale: v.map { p.invStd($0 * p.bessel) }) : nil },
        model("dγ computed from x − μ without the 1/σ factor") { p, m, v in
            var g = gradients(p, mean: m, scale: v.map(p.invStd))
            let r = v.map(p.invStd)
            g["dgamma"] = g["dgamma"]!.enumerated().map { $1 / r[$0 % p.channels] }  // per channel, or per rank and channel
            return g
        },
        model("dγ and dβ swapped") { p, m, v in
            var g = gradients(p, mean: m, scale: v.map(p.invStd))
            (g["dgamma"], g["dbeta"]) = (g["dbeta"], g["dgamma"])
            return g
        },
    ]

    static let inference: [BugModel] = [
        BugModel(cause: "inference backward uses the batch's statistics instead of the given running statistics") { p in
            let s = p.trainingStatistics
            guard !s.mean.isEmpty else { return nil }
            return gradients(p, mean: s.mean, scale: s.variance.map(p.invStd), meanTerm: 0, xhatTerm: 0)
        },
        BugModel(cause: "inference backward uses the training formula (statistics treated as functions of x)") { p in
            gradients(p, mean: p.input("mean"), scale: p.input("var").map(p.invStd))
        },
        BugModel(cause: "eps added outside the square root in the backward pass") { p in
            gradients(p, mean: p.input("mean"), scale: p.input("var").map { 1 / ($0.squareRoot() + p.eps) }, meanTerm: 0, xhatTerm: 0)
        },
        BugModel(cause: "backward omits γ in dx") { p in
            gradients(p, mean: p.input("mean"), scale: p.input("var").map(p.invStd), meanTerm: 0, xhatTerm: 0, useGamma: false)
        },
        BugModel(cause: "dγ and dβ swapped") { p in
            var g = gradients(p, mean: p.input("mean"), scale: p.input("var").map(p.invStd), meanTerm: 0, xhatTerm: 0)
            (g["dgamma"], g["dbeta"]) = (g["dbeta"], g["dgamma"])
            return g
        },
    ]
}
