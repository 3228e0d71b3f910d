import BNCore
import BNReference

/// The per-element tolerance τ of every output of a case (spec/SPEC.md §5.2), composed per
/// operation from the terms of ``ToleranceModel`` and one ``CaseAnalysis`` of the case's data.
///
/// Each operation has one composition function below (``Composition``); each term is named as
/// in SPEC §5.2 (τ_y, τ_μ, τ_σ², τ_R', τ_dβ, τ_dγ, τ_dx). The storage rounding of storage
/// outputs (f16/bf16) is included; the judge rounds an implementation's storage outputs
/// (``ArraySpec/Element/storage``) to the storage format before comparing.
public struct ToleranceBudget: Sendable {
    /// Output name → τ per element (same length as the expected output).
    public var tolerances: [String: [Double]]
    /// Non-finite values spec §5.3 also accepts at an element (output name → element → values):
    /// for a channel whose input holds ±Inf (and no NaN), NaN in place of the mean's infinity and
    /// NaN or +Inf in place of the variance's NaN, for the batch and the running statistics, and
    /// NaN in place of a backward's infinite dγ or dβ (``allowCompensatedInfinities(_:)``).
    /// Written to golden/ as `allowed_<out>.json` (``files(_:)``).
    public var alternatives: [String: [Int: [Double]]] = [:]
    /// The natural scale of each element of the higher-order outputs (spec §5.4, §12.6): S, the
    /// sum of the moduli of the closed form's monomials. ``resolution(_:analysis:)`` divides τ by it.
    public var scales: [String: [Double]] = [:]

    public subscript(output name: String) -> [Double]? { tolerances[name] }

    /// The budget of a validated case; `analysis` when the caller already has it.
    /// Throws (never traps) when an input or expected output it reads is missing or short.
    public init(_ c: GoldenStore.LoadedCase, analysis: CaseAnalysis? = nil) throws {
        let a = try analysis ?? CaseAnalysis(c)
        let t = try Composition(c, a)
        switch c.spec.op {
        case .train: tolerances = try t.train()
        case .infer: tolerances = try t.infer()
        case .backwardTrain: tolerances = try t.backward(batchStatistics: true)
        case .backwardInfer: tolerances = try t.backward(batchStatistics: false)
        case .trajectory, .epoch: tolerances = try t.trajectory()
        case .syncTrain: tolerances = try t.train()
        case .syncBackward: tolerances = try t.backward(batchStatistics: true)
        case .hvpTrain, .hvpInfer, .d2Train, .d3Train:
            let h = try t.higherOrder()
            tolerances = h.mapValues(\.tau); scales = h.mapValues(\.magnitude)
        }
        pinNonFinite(c)
        allowCompensatedInfinities(c)
        if c.spec.op == .train || c.spec.op == .syncTrain, let batch = a.batches.first {
            for ch in batch.holdsInfinity.indices where batch.holdsInfinity[ch] {
                for name in ["batch_mean", "running_mean"] { alternatives[name, default: [:]][ch] = [.nan] }
                for name in ["batch_var", "running_var"] { alternatives[name, default: [:]][ch] = [.nan, .infinity] }
            }
            allowRearrangedRunningUpdate(c)
        }
    }

    /// The running update r' = (1 − w)·r + w·b from an infinite r (and a finite b, 0 < w < 1) is
    /// that infinity in IEEE arithmetic; rearranged as r − w·(r − b) (TensorFlow's
    /// `assign_moving_average`) it is ∞ − ∞ = NaN. Both honest: NaN is accepted beside the
    /// reference's infinity (spec §5.3). A NaN r gives NaN either way, and any finite answer fails.
    mutating func allowRearrangedRunningUpdate(_ c: GoldenStore.LoadedCase) {
        // The initial value is the input of the same name as the output.
        for name in ["running_mean", "running_var"] {
            guard let r = c.inputs[name]?.values, let ref = c.expected[name]?.values, r.count == ref.count else { continue }
            for ch in r.indices where r[ch].isInfinite && ref[ch] == r[ch] && !(alternatives[name]?[ch]?.contains { $0.isNaN } ?? false) {
                alternatives[name, default: [:]][ch, default: []].append(.nan)
            }
        }
    }
}

extension ToleranceBudget {
    /// Per channel: whether x, dy (tensors) or a per-channel input — the given statistics (an
    /// inference's, or the running statistics a training step starts from), γ, β — holds ±Inf,
    /// and whether it holds NaN.
    static func nonFiniteChannels(_ c: GoldenStore.LoadedCase, _ s: Shape) -> (inf: [Bool], nan: [Bool], inParameters: [Bool]) {
        let C = s.channels, S = s.spatialSize
        var inf = [Bool](repeating: false, count: C), nan = inf, inParameters = inf
        func mark(_ ch: Int, _ v: Double) { if v.isNaN { nan[ch] = true } else { inf[ch] = true } }
        for k in ["x", "dy"] {
            guard let t = c.inputs[k]?.values, t.count == s.elementCount else { continue }
            for i in t.indices where !t[i].isFinite { mark(c.spec.layout == .nchw ? (i / S) % C : i % C, t[i]) }
        }
        for k in ["mean", "var", "gamma", "beta", "running_mean", "running_var"] {
            guard let t = c.inputs[k]?.values, t.count == C else { continue }
            for i in t.indices where !t[i].isFinite { mark(i, t[i]); inParameters[i] = true }
        }
        return (inf, nan, inParameters)
    }

    /// dγ and dβ of a backward are sums over a channel; where its x or dy (or a given statistic)
    /// holds ±Inf (and no NaN) the IEEE sum is ±Inf, and a compensated (Kahan) sum's correction
    /// forms Inf − Inf = NaN: both honest, so NaN is accepted beside the reference's ±Inf there
    /// (spec §5.3; an outside red team's Kahan backward failed 18 non-finite cases, round I, 2026-12-05).
    mutating func allowCompensatedInfinities(_ c: GoldenStore.LoadedCase) {
        guard [.backwardTrain, .backwardInfer, .syncBackward].contains(c.spec.op), let s = try? c.spec.shapeValue() else { return }
        let (inf, nan, _) = Self.nonFiniteChannels(c, s), C = s.channels
        for name in ["dgamma", "dbeta"] {
            guard let ref = c.expected[name]?.values, ref.count % C == 0 else { continue }
            for i in ref.indices where ref[i].isInfinite && inf[i % C] && !nan[i % C] {
                alternatives[name, default: [:]][i] = [.nan]
            }
        }
        // A given mean of ±Inf with finite x, dy and variance (inference backward): dγ = r·Σdy·(x − μ)
        // summed term by term is NaN (infinite terms of both signs), rearranged as r·(Σdy·x − μ·Σdy)
        // it is the infinity of −μ·Σdy — both honest (Keras gives the second; it failed 9 cases), so
        // that infinity is accepted beside the reference's NaN.
        if c.spec.op == .backwardInfer, let mean = c.inputs["mean"]?.values, let v = c.inputs["var"]?.values,
           let x = c.inputs["x"]?.values, let dy = c.inputs["dy"]?.values, let ref = c.expected["dgamma"]?.values,
           mean.count == C, v.count == C, ref.count == C, x.count == dy.count {
            for ch in 0..<C where mean[ch].isInfinite && v[ch].isFinite && v[ch] + c.spec.eps > 0 && ref[ch].isNaN {
                var sum = 0.0, finite = true
                for seg in c.spec.layout.segments(channel: ch, shape: s) {
                    for k in 0..<seg.count {
                        let i = seg.offset + k * seg.stride
                        finite = finite && dy[i].isFinite && x[i].isFinite; sum += dy[i]
                    }
                }
                let rearranged = -mean[ch] * sum
                if finite && rearranged.isInfinite { alternatives["dgamma", default: [:]][ch] = [rearranged] }
            }
        }
    }

    /// A non-finite reference in a channel whose input x or dy, or whose given statistics, γ or β,
    /// hold NaN or ±Inf is a defined value (spec §4), not an unresolvable one: its τ is set to 0, so
    /// the judge checks it exactly (with the §5.3 alternatives) instead of skipping it as τ > the
    /// format's range (§5.4). Where the non-finite value is a per-channel input, a finite reference
    /// whose τ is not finite is pinned too: IEEE gives it exactly (a variance of +Inf: y = β, dx = 0).
    /// (dy since 2026-12-05: a backward zeroing a NaN dy passed, its dβ's τ being NaN → unjudged;
    /// the given statistics since round I's NaN-masking inference.)
    mutating func pinNonFinite(_ c: GoldenStore.LoadedCase) {
        guard let s = try? c.spec.shapeValue(), !c.spec.op.hasSteps else { return }
        let (inf, nan, inParameters) = Self.nonFiniteChannels(c, s)
        guard inf.contains(true) || nan.contains(true) else { return }
        let C = s.channels, S = s.spatialSize
        for (name, tol) in tolerances {
            guard let ref = c.expected[name]?.values, ref.count == tol.count else { continue }
            var t = tol
            for i in ref.indices where !ref[i].isFinite || !t[i].isFinite {
                // A tensor element's channel by the layout; a per-channel output's (C values, or K rows
                // of C for a synchronized backward's local dγ/dβ) by its position in the row.
                let tensor = ref.count == s.elementCount
                guard tensor || ref.count % C == 0 else { continue }
                let ch = tensor ? (c.spec.layout == .nchw ? (i / S) % C : i % C) : i % C
                if inf[ch] || nan[ch], !ref[i].isFinite || inParameters[ch] { t[i] = 0 }
            }
            tolerances[name] = t
        }
    }

    /// How finely a case judges its primary output (spec §5.4): the median over the output's
    /// elements with a finite reference of τ ÷ the element's natural scale — |γ| for y (x̂ has
    /// unit spread), |γ|·r·rms(dy) for dx (r from the given statistics, or the batch's), and for
    /// the higher-order outputs S, the sum of the moduli of the closed form's monomials at the
    /// element (``scales``; elements with S = 0 are exact zeros and left out). Below 1 an answer
    /// that ignores the data (y = β, y = 0, dx = γ·r·dy, a derivative of 0) fails at most elements;
    /// at 1 or above the case judges nothing. Nil when there is nothing finite to judge.
    public func resolution(_ c: GoldenStore.LoadedCase, analysis: CaseAnalysis? = nil) throws -> Double? {
        guard c.spec.expectError == nil, let primary = c.spec.op.primaryOutput?.name,
              let tol = tolerances[primary], let ref = c.expected[primary]?.values else { return nil }
        let s = try c.spec.shapeValue(), layout = c.spec.layout
        let gamma = c.inputs["gamma"]?.values ?? []
        guard gamma.count == s.channels, tol.count == ref.count else { return nil }
        var ratios: [Double] = []
        if let scale = scales[primary], scale.count == ref.count {
            for i in ref.indices where ref[i].isFinite && scale[i] > 0 { ratios.append(tol[i] / scale[i]) }
            return median(ratios)
        }
        // The batch statistics only for a training dx (analysed here when the caller has none).
        var a = analysis
        ratios.reserveCapacity(ref.count)
        var idx: [Int] = []
        for ch in 0..<s.channels {
            idx.removeAll(keepingCapacity: true)
            for seg in layout.segments(channel: ch, shape: s) { for k in 0..<seg.count { idx.append(seg.offset + k * seg.stride) } }
            var scale = abs(gamma[ch])
            if primary == "dx", let dy = c.inputs["dy"]?.values, dy.count == ref.count {
                let rmsDy = (idx.reduce(0.0) { $0 + dy[$1] * dy[$1] } / Double(idx.count)).squareRoot()
                let v: Double
                if let given = c.inputs["var"]?.values[ch] { v = given } else {
                    if a == nil { a = try CaseAnalysis(c) }
                    v = a!.batches[0].biasedVariance[ch]
                }
                scale *= rmsDy / (v + c.spec.eps).squareRoot()
            }
            ref.withUnsafeBufferPointer { r in tol.withUnsafeBufferPointer { t in
                for i in idx where r[i].isFinite { ratios.append(scale > 0 ? t[i] / scale : .infinity) }
            }}
        }
        return median(ratios)
    }

    /// The median (NaN sorted last); nil for no values.
    func median(_ values: [Double]) -> Double? { Self.median(values) }

    /// The element at index count/2 of `values` sorted stably by `<` with NaN last — the same
    /// bits, ±0 and NaN payloads included — found in O(n) (a selection on keys of the order, then
    /// the element of the selected equivalence class the stable sort would put there).
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let k = values.count / 2
        // One key per equivalence class of the sort's order: −0 and +0 equal, every NaN last.
        @inline(__always) func key(_ v: Double) -> UInt64 {
            if v.isNaN { return .max }
            let b = (v == 0 ? 0.0 : v).bitPattern
            return b >> 63 == 1 ? ~b : b | (1 << 63)
        }
        var keys = values.map(key)
        let target = keys.withUnsafeMutableBufferPointer { select($0, k) }
        // A stable sort puts the class's members in input order after the `below` smaller values.
        var below = 0
        for v in values where key(v) < target { below += 1 }
        var rank = k - below
        for v in values where key(v) == target {
            if rank == 0 { return v }
            rank -= 1
        }
        return nil   // unreachable: the class holds index k
    }

    /// The k-th smallest of `a` (quickselect, three-way partition; `a` is permuted).
    static func select(_ a: UnsafeMutableBufferPointer<UInt64>, _ k: Int) -> UInt64 {
        var lo = 0, hi = a.count - 1, rounds = 0
        while lo < hi {
            rounds += 1
            if rounds > 100 {   // pathological pivots: sort what is left
                var rest = UnsafeMutableBufferPointer(rebasing: a[lo...hi])
                rest.sort()
                return a[k]
            }
            let x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi]
            let p = max(min(x, y), min(max(x, y), z))
            var lt = lo, i = lo, gt = hi
            while i <= gt {
                let v = a[i]
                if v < p { a.swapAt(lt, i); lt += 1; i += 1 } else if v > p { a.swapAt(i, gt); gt -= 1 } else { i += 1 }
            }
            if k < lt { hi = lt - 1 } else if k > gt { lo = gt + 1 } else { return p }
        }
        return a[k]
    }
}

extension ToleranceBudget {
    /// The statistics terms of one channel (SPEC §5.1): max|x|, r = 1/√(v + ε), the bounds δμ, δv
    /// (zero for given statistics) and ρ, the relative error bound of r.
    struct ChannelTerms {
        var maxAbs: Double, r: Double, bounds: ToleranceModel.StatBounds, rho: Double
    }

    /// The composition of one case: its model, shape, parameters and analysis.
    struct Composition {
        let c: GoldenStore.LoadedCase, a: CaseAnalysis, m: ToleranceModel
        let K = ToleranceModel.safety, u: Double, s: Shape, layout: Layout, n: Int, C: Int, eps: Double
        private(set) var gamma: [Double] = [], beta: [Double] = []

        init(_ c: GoldenStore.LoadedCase, _ a: CaseAnalysis) throws {
            self.c = c; self.a = a; m = ToleranceModel(c.spec); u = m.u
            s = try c.spec.shapeValue(); layout = c.spec.layout; n = s.perChannelCount; C = s.channels; eps = c.spec.eps
            gamma = try input("gamma"); beta = try input("beta")
        }

        /// An input array, checked against its extent.
        func input(_ name: String) throws -> [Double] { try values(c.inputs[name], name, c.spec.op.input(name)) }
        /// The reference's output, checked against its extent.
        func reference(_ name: String) throws -> [Double] { try values(c.expected[name], "expected_\(name)", c.spec.op.output(name)) }
        func values(_ array: NPYArray?, _ name: String, _ spec: ArraySpec?) throws -> [Double] {
            guard let v = array?.values, let spec, v.count == spec.count(in: c.spec, shape: s) else {
                throw BNError.corrupt(path: c.spec.id, reason: "the tolerance needs '\(name)' with its full length")
            }
            return v
        }

        /// SPEC §5.1 per channel, from the batch's max|x| and the statistics v normalises with;
        /// `batchStatistics`: computed by the implementation (δμ, δv bounded), else given (0).
        /// A synchronized case's batch statistics: the synchronized bound (SPEC §5.2, §11.4) from the
        /// global channel and the ranks' parts.
        func channelTerms(_ batch: CaseAnalysis.Batch, mean: [Double], variance: [Double], batchStatistics: Bool) -> [ChannelTerms] {
            (0..<C).map { ch in
                let mx = batch.data[ch].maxAbs, v = variance[ch]
                let bounds = !batchStatistics ? ToleranceModel.StatBounds(mean: 0, variance: 0)
                    : c.spec.op.isSynchronized
                    ? m.synchronizedStatBounds(batch.data[ch], mean: mean[ch], variance: v, ranks: a.rankParts(channel: ch), eps: eps)
                    : m.statBounds(batch.data[ch], variance: v)
                return ChannelTerms(maxAbs: mx, r: 1 / (v + eps).squareRoot(), bounds: bounds, rho: m.rho(bounds, variance: v, eps: eps))
            }
        }

        /// τ_y = K·(|γ|·e + u·(|γ x̂| + |β| + |γ|·r·|μ|)) per element, plus the storage rounding. The
        /// last term is the folded form's shift t = β − μ·γ·r, rounded as an intermediate:
        /// u·|t| ≤ u·(|β| + |γ|·r·|μ|) (round J: PyTorch's `fuse_conv_bn_weights` grouping,
        /// t = ((−μ)·r)·γ + β, erred by 4.06·u·|μ·s| at x ≈ μ against 4.00 without it; SPEC §5.2).
        func tauY(_ x: [Double], mean: [Double], terms: [ChannelTerms], reference y: [Double]) -> [Double] {
            var t = [Double](repeating: 0, count: x.count)
            for ch in 0..<C {
                let g = abs(gamma[ch]), bt = abs(beta[ch]), inf = terms[ch]
                for seg in layout.segments(channel: ch, shape: s) {
                    for k in 0..<seg.count {
                        let i = seg.offset + k * seg.stride
                        let xh = (x[i] - mean[ch]) * inf.r
                        let e = m.xhatError(x: x[i], mean: mean[ch], r: inf.r, xhat: xh, bounds: inf.bounds, rho: inf.rho)
                        t[i] = m.stored(K * (g * e + u * (g * abs(xh) + bt + g * inf.r * abs(mean[ch]))), reference: y[i])
                    }
                }
            }
            return t
        }

        /// τ_R' for R' = (1 − w)·R + w·b (SPEC §5.2): the error carried in R and b, plus the
        /// roundings of either honest form — (1 − w)·R + w·b: 3u on (1 − w)|R|, 2u on w|b|;
        /// R + w·(b − R): (1 + w)u on |R|, 3u on w|b| — and of w itself, held as w or as 1 − m
        /// (|δw| ≤ u, times |b − R|).
        func tauRunning(previous: [Double], previousTau: [Double], batch: [Double], batchTau: [Double], w: Double) -> [Double] {
            (0..<C).map { ch in
                let r = abs(previous[ch]), bb = abs(batch[ch]), d = abs(batch[ch] - previous[ch])
                let rounding = max(3 * (1 - w), 1 + w) * r + 3 * w * bb + d
                return (1 - w) * previousTau[ch] + w * batchTau[ch] + K * u * rounding
            }
        }

        /// τ of the batch mean fed to the running mean: the batch mean's own tolerance,
        /// K·(δμ + u|μ|) — a batch mean the judge accepts must give a running mean it accepts.
        func runningMeanTau(_ terms: [ChannelTerms], mean: [Double]) -> [Double] {
            (0..<C).map { K * (terms[$0].bounds.mean + u * abs(mean[$0])) }
        }

        /// τ of the batch variance fed to the running variance: the batch variance's tolerance
        /// K·(δv + u·v), times n/(n − 1) plus 2u·|b| for the Bessel factor's rounding when the
        /// estimator is unbiased.
        func runningVarianceTau(_ terms: [ChannelTerms], biased v: [Double], fed b: [Double], corr: Double) -> [Double] {
            (0..<C).map { K * (terms[$0].bounds.variance + u * abs(v[$0])) * corr + (corr == 1 ? 0 : 2 * u * abs(b[$0])) }
        }

        /// Bessel's factor n/(n − 1) of an unbiased running variance (1 otherwise).
        func besselFactor(_ rule: RunningUpdateRule, n: Int? = nil) -> Double {
            let n = n ?? self.n
            return rule.estimator == .unbiased && n > 1 ? Double(n) / Double(n - 1) : 1
        }

        /// train: τ_y, τ_μ = K·(δμ + u|μ|), τ_σ² = K·(δv + u·v), τ_R' for both running statistics.
        func train() throws -> [String: [Double]] {
            let x = try input("x"), batch = a.batches[0]
            let mean = batch.mean, variance = batch.biasedVariance
            let terms = channelTerms(batch, mean: mean, variance: variance, batchStatistics: true)
            let rule = try c.spec.rule(), w = rule.batchWeight(step: 1), corr = besselFactor(rule)
            let zeros = [Double](repeating: 0, count: C)
            return [
                "y": tauY(x, mean: mean, terms: terms, reference: try reference("y")),
                "batch_mean": (0..<C).map { K * (terms[$0].bounds.mean + u * abs(mean[$0])) },
                "batch_var": (0..<C).map { K * (terms[$0].bounds.variance + u * variance[$0]) },
                "running_mean": tauRunning(previous: try input("running_mean"), previousTau: zeros, batch: mean,
                                           batchTau: runningMeanTau(terms, mean: mean), w: w),
                "running_var": tauRunning(previous: try input("running_var"), previousTau: zeros, batch: variance.map { $0 * corr },
                                          batchTau: runningVarianceTau(terms, biased: variance, fed: variance.map { $0 * corr }, corr: corr), w: w),
            ]
        }

        /// infer: τ_y with the given statistics (δμ = δv = 0).
        func infer() throws -> [String: [Double]] {
            let x = try input("x"), mean = try input("mean"), variance = try input("var")
            let terms = channelTerms(a.batches[0], mean: mean, variance: variance, batchStatistics: false)
            return ["y": tauY(x, mean: mean, terms: terms, reference: try reference("y"))]
        }

        /// backward: τ_dβ = K·n·u·Σ|dy|; τ_dγ = K·(n·u·Σ|dy·x̂| + Σ|dy|·e + n·t·r);
        /// τ_dx (training) = K·|γ|·r·(2u·A + τ_dβ/n + |x̂|·τ_dγ/n + e·|dγ|/n + ρ·A), A = |dy| + |dβ|/n + |x̂·dγ|/n;
        /// τ_dx (inference) = K·|γ|·r·|dy|·(3u + ρ).
        func backward(batchStatistics batch: Bool) throws -> [String: [Double]] {
            let x = try input("x"), dy = try input("dy")
            let mean = try batch ? a.batches[0].mean : input("mean")
            let variance = try batch ? a.batches[0].biasedVariance : input("var")
            let terms = channelTerms(a.batches[0], mean: mean, variance: variance, batchStatistics: batch)
            // dγ and dβ over the whole batch (a synchronized case's local rows added up).
            let dg = rowSums(try reference("dgamma")), dbt = rowSums(try reference("dbeta")), refDx = try reference("dx"), nn = Double(n)
            var xhats = [Double](repeating: 0, count: x.count), errs = xhats
            var tdx = [Double](repeating: 0, count: x.count), tdg = [Double](), tdb = [Double]()
            for ch in 0..<C {
                let inf = terms[ch], g = abs(gamma[ch])
                var sumDy = 0.0, sumDyXh = 0.0, sumDyE = 0.0
                let segs = layout.segments(channel: ch, shape: s)
                for seg in segs {
                    for k in 0..<seg.count {
                        let i = seg.offset + k * seg.stride
                        let h = (x[i] - mean[ch]) * inf.r
                        let e = m.xhatError(x: x[i], mean: mean[ch], r: inf.r, xhat: h, bounds: inf.bounds, rho: inf.rho)
                        xhats[i] = h; errs[i] = e
                        sumDy += abs(dy[i]); sumDyXh += abs(dy[i] * h); sumDyE += abs(dy[i]) * e
                    }
                }
                let tb = K * nn * u * sumDy
                // + n·t·r: each product dy·(x − μ) can fall in the subnormal range (or be flushed),
                // an absolute error ≤ t, then scaled by r (spec §5.2; found by law 15).
                let tg = K * (nn * u * sumDyXh + sumDyE + nn * m.tiny * inf.r)
                tdb.append(tb); tdg.append(tg)
                for seg in segs { for k in 0..<seg.count {
                    let i = seg.offset + k * seg.stride, h = xhats[i], e = errs[i]
                    let t: Double
                    if batch {
                        let core = abs(dy[i]) + abs(dbt[ch]) / nn + abs(h * dg[ch]) / nn
                        t = K * g * inf.r * (2 * u * core + tb / nn + abs(h) * tg / nn + e * abs(dg[ch]) / nn + inf.rho * core)
                    } else {
                        t = K * g * inf.r * abs(dy[i]) * (3 * u + inf.rho)
                    }
                    // ρ = +Inf (spec §5.4): r is undetermined, so is every dx of the channel.
                    tdx[i] = inf.rho.isInfinite ? .infinity : m.stored(t, reference: refDx[i])
                } }
            }
            if c.spec.gradientRows > 1 { (tdg, tdb) = try localGradientRows(dy: dy, xhats: xhats, errs: errs, terms: terms) }
            return ["dx": tdx, "dgamma": tdg, "dbeta": tdb]
        }

        /// Per channel, the sum of the rows of a [rows, C] output (the output itself when one row).
        func rowSums(_ v: [Double]) -> [Double] {
            (0..<C).map { ch in stride(from: ch, to: v.count, by: C).reduce(0.0) { $0 + v[$1] } }
        }

        /// A synchronized backward's local dγ/dβ (SPEC §5.2, §11.3): rank k's sums over its own m_k
        /// values, τ_dβ = K·m_k·u·Σ_k|dy|, τ_dγ = K·(m_k·u·Σ_k|dy·x̂| + Σ_k|dy|·e + m_k·t·r) — the
        /// single-device bounds over the rank's elements, x̂ from the global statistics; an empty
        /// rank's rows are 0 exactly (τ = 0). Rows in rank order, [K, C] flattened.
        func localGradientRows(dy: [Double], xhats: [Double], errs: [Double], terms: [ChannelTerms]) throws -> ([Double], [Double]) {
            guard let p = try c.spec.partitionValue() else { throw BNError.corrupt(path: c.spec.id, reason: "no partition") }
            var tdg: [Double] = [], tdb: [Double] = []
            for k in 0..<p.ranks {
                let sk = p.shape(rank: k, of: s), start = p.elementRange(rank: k, of: s).lowerBound, mk = Double(p.counts[k] * s.spatialSize)
                for ch in 0..<C {
                    var sumDy = 0.0, sumDyXh = 0.0, sumDyE = 0.0
                    if p.counts[k] > 0 {
                        for seg in layout.segments(channel: ch, shape: sk) {
                            for j in 0..<seg.count {
                                let i = start + seg.offset + j * seg.stride
                                sumDy += abs(dy[i]); sumDyXh += abs(dy[i] * xhats[i]); sumDyE += abs(dy[i]) * errs[i]
                            }
                        }
                    }
                    tdb.append(K * mk * u * sumDy)
                    tdg.append(K * (mk * u * sumDyXh + sumDyE + mk * m.tiny * terms[ch].r))
                }
            }
            return (tdg, tdb)
        }

        /// The higher-order operations (spec §12.6, ``HigherOrderBound``): τ and the natural scale
        /// S of every output. hv_β is 0 for every honest implementation: τ = 0 (exact).
        func higherOrder() throws -> [String: HigherOrderBound.Output] {
            let x = try input("x"), op = c.spec.op
            func direction(_ d: String) throws -> DerivativeDirection {
                DerivativeDirection(x: try input("\(d)_x"), gamma: try input("\(d)_gamma"), beta: try input("\(d)_beta"))
            }
            let zero = HigherOrderBound.Output(tau: [Double](repeating: 0, count: C), magnitude: [Double](repeating: 0, count: C))
            func stored(_ o: HigherOrderBound.Output, _ name: String) throws -> HigherOrderBound.Output {
                let ref = try reference(name)
                return HigherOrderBound.Output(tau: o.tau.indices.map { m.stored(o.tau[$0], reference: ref[$0]) }, magnitude: o.magnitude)
            }
            if op == .hvpInfer {
                let h = HigherOrderBound.hvpInference(dy: try input("dy"), v: try direction("v"), variance: try input("var"),
                                                      shape: s, layout: layout, eps: eps, model: m)
                return ["hv_x": try stored(h.x, "hv_x"), "hv_gamma": h.gamma, "hv_beta": zero]
            }
            let b = HigherOrderBound(x: x, batch: a.batches[0], shape: s, layout: layout, eps: eps, model: m)
            switch op {
            case .hvpTrain:
                let h = b.hvp(dy: try input("dy"), v: try direction("v"), gamma: gamma)
                return ["hv_x": try stored(h.x, "hv_x"), "hv_gamma": h.gamma, "hv_beta": zero]
            case .d2Train:
                return ["d2y": try stored(b.d2(v: try direction("v"), w: try direction("w"), gamma: gamma), "d2y")]
            default:
                let v = try direction("v")
                return ["d3y": try stored(b.d3(u: v, v: v, w: try direction("w"), gamma: gamma), "d3y")]
            }
        }

        /// trajectory: τ_R' step by step (each step's batch bounds, the previous step's τ_R'),
        /// then τ_y of inference on x_eval with δμ = τ_R'(mean), δv = τ_R'(var).
        func trajectory() throws -> [String: [Double]] {
            let rule = try c.spec.rule()
            let rm = try reference("running_mean"), rv = try reference("running_var")
            var prevM = try input("running_mean"), prevV = try input("running_var")
            var tolM = [Double](repeating: 0, count: C), tolV = tolM
            var allM: [Double] = [], allV: [Double] = []
            // Each batch with its own n (an epoch's batches differ in size).
            for (k, batch) in a.batches.enumerated() {
                let terms = channelTerms(batch, mean: batch.mean, variance: batch.biasedVariance, batchStatistics: true)
                let w = rule.batchWeight(step: k + 1), corr = besselFactor(rule, n: batch.count)
                let bv = batch.moments.map { rule.estimator == .unbiased && batch.count > 1 ? $0.unbiasedVariance : $0.biasedVariance }
                tolM = tauRunning(previous: prevM, previousTau: tolM, batch: batch.mean, batchTau: runningMeanTau(terms, mean: batch.mean), w: w)
                tolV = tauRunning(previous: prevV, previousTau: tolV, batch: bv,
                                  batchTau: runningVarianceTau(terms, biased: batch.biasedVariance, fed: bv, corr: corr), w: w)
                prevM = Array(rm[(k * C)..<((k + 1) * C)]); prevV = Array(rv[(k * C)..<((k + 1) * C)])
                allM += tolM; allV += tolV
            }
            // Inference with running statistics that carry errors tolM/tolV.
            let xe = try input("x_eval")
            guard let evaluation = a.evaluation else { throw BNError.corrupt(path: c.spec.id, reason: "no analysis of x_eval") }
            var terms = channelTerms(evaluation, mean: prevM, variance: prevV, batchStatistics: false)
            for ch in 0..<C {
                terms[ch].bounds = ToleranceModel.StatBounds(mean: tolM[ch], variance: tolV[ch])
                terms[ch].rho = m.rho(terms[ch].bounds, variance: prevV[ch], eps: eps)
            }
            return ["running_mean": allM, "running_var": allV,
                    "y_eval": tauY(xe, mean: prevM, terms: terms, reference: try reference("y_eval"))]
        }
    }
}
