import BNCore
import BNGolden
import BNReference
import Foundation

/// Probes of synchronized BN (spec/AUDIT.md §4), run when the adapter lists `sync-train`: how the
/// engine weights the ranks, its variance algorithm across ranks, Bessel's n, where dγ/dβ are
/// summed, eps, and whether the exchange loses the variance under eps (the invstd round trip).
extension Fingerprint {
    public struct SynchronizedFindings: Encodable, Sendable {
        public var countWeighting: Finding, varianceAlgorithm: Finding, bessel: Finding, gradientReduction: Finding
        public var eps: Finding, varianceExchange: Finding
        enum CodingKeys: String, CodingKey {
            case countWeighting = "count_weighting", varianceAlgorithm = "variance_algorithm", bessel = "bessel_n"
            case gradientReduction = "gradient_reduction", eps, varianceExchange = "variance_exchange"
        }
    }

    /// The conventions the single-device probes found, which the synchronized ones read their
    /// answers with.
    struct SingleDevice {
        var batchWeight: Double, eps: Double
        /// eps inside the square root (true), outside (false), or undetermined (nil).
        var epsInside: Bool?
        var runningStatistics: Bool
    }

    /// One synchronized probe: `op` over `partition` (and `grad_reduction` for sync-backward).
    mutating func syncProbe(_ op: String, shape: [Int], partition: [Int], inputs: [String: [Double]], reduction: String? = nil)
        throws -> (outputs: [String: [Double]]?, refusal: String?)
    {
        var extra: [String: Any] = ["partition": partition]
        if let r = reduction { extra["grad_reduction"] = r }
        return try probe(op, shape: shape, inputs: inputs, extra: extra)
    }

    static func unanswered(_ r: String?) -> Finding {
        Finding(value: r?.hasPrefix("unsupported") == true ? "unsupported" : "refused", evidence: "the adapter answered: \((r ?? "no output").prefix(200))")
    }

    mutating func synchronizedProbes(_ single: SingleDevice) throws -> SynchronizedFindings {
        SynchronizedFindings(countWeighting: try countWeighting(), varianceAlgorithm: try syncVarianceAlgorithm(single),
                             bessel: try bessel(single), gradientReduction: try gradientReduction(single), eps: try syncEps(single),
                             varianceExchange: try varianceExchange(single))
    }

    /// Count weighting: partition [1, 3, 5, 7, 2], 16 channels, every rank's values of a channel
    /// equal to a random a_{k,c}; the mean each channel was normalised with (the returned batch mean,
    /// else the centre of y = (a_k − μ)·r) is fitted as Σ w_k·a_{k,c} by least squares over the
    /// channels. Five ranks: an all-reduce over the largest power of two ≤ K (an outside red team's,
    /// round F, read "counts" over [1, 3, 5, 7]) gives rank 4 the weight 0.
    mutating func countWeighting() throws -> Finding {
        let part = [1, 3, 5, 7, 2], C = 16, N = part.reduce(0, +)
        var r = SpecRandom("fingerprint/sync-weights")
        let a = (0..<part.count).map { _ in (0..<C).map { _ in Double(Float(4 * r.normal())) } }
        var x = [Double](), rankOf = [Int]()
        for (k, n) in part.enumerated() { for _ in 0..<n { x += a[k]; rankOf.append(k) } }
        let ones = [Double](repeating: 1, count: C), zeros = [Double](repeating: 0, count: C)
        let p = try syncProbe("sync-train", shape: [N, C, 1, 1], partition: part,
                              inputs: ["x": x, "gamma": ones, "beta": zeros, "running_mean": zeros, "running_var": ones])
        guard let out = p.outputs, let y = out["y"], y.count == x.count else { return Self.unanswered(p.refusal) }
        var used = out["batch_mean"] ?? []
        if used.count != C {
            used = (0..<C).map { c in
                let idx = (0..<N).map { $0 * C + c }
                guard let (s, b) = Fits.affine(idx.map { x[$0] }, idx.map { y[$0] }), s != 0 else { return .nan }
                return -b / s
            }
        }
        let rows = (0..<C).map { c in (0..<part.count).map { a[$0][c] } }
        guard used.allSatisfy(\.isFinite), let w = Fits.leastSquares(rows, used) else {
            return Finding(value: "unknown", evidence: "partition \(part): the mean used per channel could not be read (\(Fits.list(used)))")
        }
        let counts = part.map { Double($0) / Double(N) }, equal = part.map { _ in 1 / Double(part.count) }
        func near(_ v: [Double]) -> Bool { zip(w, v).allSatisfy { abs($0 - $1) <= 1e-3 } }
        let residual: Double = (0..<C).map { (c: Int) -> Double in
            var fitted = 0.0
            for (wk, ak) in zip(w, rows[c]) { fitted += wk * ak }
            return Swift.abs(fitted - used[c])
        }.max() ?? .nan
        let value = near(counts) ? "counts" : (near(equal) ? "equal" : "other")
        return Finding(value: value, evidence: "partition \(part), rank k's values of channel c all a_{k,c}: mean used = Σ w_k·a_k fitted over \(C) channels, w = \(w.map(Self.fmt)) (residual \(Self.fmt(residual))); counts n_k/n = \(counts.map(Self.fmt)), equal 1/K = \(Self.fmt(1 / Double(part.count)))")
    }

    /// The variance algorithm across ranks: the single-device probe's data (96 channels of
    /// κ + N(0, 1), κ ∈ {4, 16, 64, 256, 1024, 4096}, n = 1024) over four ranks of 256, the κ-growth fit of the
    /// variance y implies.
    mutating func syncVarianceAlgorithm(_ single: SingleDevice) throws -> Finding {
        let xv = Self.varianceProbeInput(), n7 = Self.varianceProbeValues, C7 = Self.varianceProbeKappas.count
        let ones = [Double](repeating: 1, count: C7), zeros = [Double](repeating: 0, count: C7)
        let p = try syncProbe("sync-train", shape: [n7, C7, 1, 1], partition: [256, 256, 256, 256],
                              inputs: ["x": xv, "gamma": ones, "beta": zeros, "running_mean": zeros, "running_var": ones])
        guard let y = p.outputs?["y"], y.count == xv.count else { return Self.unanswered(p.refusal) }
        let (growth, evidence) = try Self.varianceGrowth(x: xv, y: y, eps: max(single.eps, 0))
        return Finding(value: growth.algorithm, evidence: "x = κ + N(0, 1), n = \(n7) over partition [256, 256, 256, 256], \(Self.varianceProbeKappaSet): " + evidence)
    }

    /// Bessel's n: partition [3, 0, 4], four channels of N(0, 1), running variance 0 → w·f·σ² with
    /// the batch weight w of the single-device probe: f = n/(n − 1) = 7/6 (global n), 3/2 or 4/3 (a
    /// rank's own n), 1 (biased); anything else (K·n₀/(K·n₀ − 1) = 9/8 of an engine that assumes
    /// equal shards, or 6/5 of one that subtracts the empty ranks: round F read both "global_n"
    /// over [4, 4]) is "other". An engine whose empty rank makes the running variance NaN (an
    /// unweighted pmean's 0/0) is read again over [4, 4], the ranks equal so that equal weights
    /// give the same variance as counts (over [3, 4] Flax's read f = 0.96, "other"): f = 8/7
    /// global, 4/3 a rank's own, 1 biased.
    mutating func bessel(_ single: SingleDevice) throws -> Finding {
        guard single.runningStatistics, single.batchWeight.isFinite, single.batchWeight > 0 else {
            return Finding(value: "not provided", evidence: "no running statistics (or no batch weight) to read Bessel's factor from")
        }
        let C = 4
        var r = SpecRandom("fingerprint/sync-bessel")
        let all = (0..<(8 * C)).map { _ in Double(Float(r.normal())) }
        let zeros = [Double](repeating: 0, count: C), ones = [Double](repeating: 1, count: C)
        var note = ""
        for part in [[3, 0, 4], [4, 4]] {
            let N = part.reduce(0, +), x = Array(all.prefix(N * C))
            let ms = try Reference.moments(x, shape: try Shape(batch: N, channels: C, spatial: [1, 1]), layout: .nchw)
            let p = try syncProbe("sync-train", shape: [N, C, 1, 1], partition: part,
                                  inputs: ["x": x, "gamma": ones, "beta": zeros, "running_mean": zeros, "running_var": zeros])
            guard let rv = p.outputs?["running_var"], rv.count == C else { return Self.unanswered(p.refusal) }
            let f = (0..<C).map { rv[$0] / (single.batchWeight * ms[$0].biasedVariance) }
            if !f.allSatisfy(\.isFinite) && part.contains(0) {
                note = "over \(part) the running variance is not finite (\(rv.map(Self.fmt)): an empty rank's 0/0?); "
                continue
            }
            let fm = f.sorted()[C / 2]
            let local = Set(part.filter { $0 > 1 }).sorted().map { Double($0) / Double($0 - 1) }
            let global = Double(N) / Double(N - 1)
            let candidates: [(String, Double)] = [("global_n", global)] + local.map { ("local_n", $0) } + [("biased", 1)]
            let best = candidates.min { abs($0.1 - fm) < abs($1.1 - fm) }!
            return Finding(value: fm.isFinite && abs(best.1 - fm) <= 0.01 ? best.0 : "other",
                           evidence: note + "partition \(part), running variance 0 → \(rv.map(Self.fmt)) with batch weight \(Self.fmt(single.batchWeight)): factor of σ² fed f = \(f.map(Self.fmt)) (global n/(n − 1) = \(Self.fmt(global)), a rank's n_k/(n_k − 1) = \(local.map(Self.fmt).joined(separator: " or ")), biased 1)")
        }
        return Finding(value: "undetermined", evidence: note)
    }

    /// Where dγ and dβ are summed: sync-backward over [2, 6] asking for each rank's own sums
    /// ("local", [K, C]): rows equal to each rank's Σdy·x̂, Σdy → local; every row the global sums →
    /// all-reduced. An adapter that returns only global sums is reported as such.
    mutating func gradientReduction(_ single: SingleDevice) throws -> Finding {
        let part = [4, 4], C = 3, N = 8
        var r = SpecRandom("fingerprint/sync-grad")
        let x = (0..<(N * C)).map { _ in Double(Float(r.normal())) }, dy = (0..<(N * C)).map { _ in Double(Float(r.normal())) }
        let g = [1.5, 0.75, 1.25], b = [0.1, -0.2, 0.3]
        let p = try syncProbe("sync-backward", shape: [N, C, 1, 1], partition: part, inputs: ["x": x, "dy": dy, "gamma": g, "beta": b],
                              reduction: "local")
        guard let rows = p.outputs?["dbeta"], let rowsG = p.outputs?["dgamma"] else {
            if let q = try? syncProbe("sync-backward", shape: [N, C, 1, 1], partition: part, inputs: ["x": x, "dy": dy, "gamma": g, "beta": b],
                                      reduction: "global"), q.outputs?["dbeta"] != nil {
                return Finding(value: "global", evidence: "the adapter returns only the all-reduced sums (local: \((p.refusal ?? "").prefix(120)))")
            }
            return Self.unanswered(p.refusal)
        }
        let s = try Shape(batch: N, channels: C, spatial: [1, 1]), bp = try BatchPartition(counts: part)
        let f = try Reference.synchronizedTrainingForward(x, shape: s, layout: .nchw, partition: bp, gamma: g, beta: b, eps: max(single.eps, 0))
        let local = try Reference.synchronizedTrainingBackward(x, dy: dy, shape: s, layout: .nchw, partition: bp, gamma: g,
                                                               mean: f.global.mean, invStd: f.global.invStd, reduction: .local)
        let wantLocal = local.dBeta.flatMap { $0 } + local.dGamma.flatMap { $0 }
        let total = (0..<C).map { c in local.dBeta.reduce(0) { $0 + $1[c] } } + (0..<C).map { c in local.dGamma.reduce(0) { $0 + $1[c] } }
        let wantGlobal = (0..<part.count).flatMap { _ in Array(total[0..<C]) } + (0..<part.count).flatMap { _ in Array(total[C...]) }
        let got = rows + rowsG
        func dist(_ w: [Double]) -> Double { got.count == w.count ? zip(got, w).map { abs($0 - $1) }.max()! : .infinity }
        let dl = dist(wantLocal), dg = dist(wantGlobal)
        let value = dl <= 1e-4 ? "local" : (dg <= 1e-4 ? "all_reduced" : "other")
        return Finding(value: value, evidence: "sync-backward over \(part) asking for each rank's sums: max |row − own sums| = \(Self.fmt(dl)), max |row − global sums| = \(Self.fmt(dg)) (dβ rows \(rows.map(Self.fmt)))")
    }

    /// eps in synchronized mode: the single-device probe's x = ±a per channel over partition [1, 1],
    /// solved in the placement the single-device probe found (inside √ when it found none). The
    /// solved values must agree as there (``Fingerprint/epsConsistent(_:amps:)``) and be ≥ 0, else
    /// "undetermined" (round F: an engine with eps outside √ was read 6e-7 inside it, and engines
    /// with unsynchronized statistics −9e-5 and ∞).
    mutating func syncEps(_ single: SingleDevice) throws -> Finding {
        let amps = [0.003, 0.01, 0.03, 0.1], C = amps.count
        let x = amps + amps.map { -$0 }
        let ones = [Double](repeating: 1, count: C), zeros = [Double](repeating: 0, count: C)
        let p = try syncProbe("sync-train", shape: [2, C, 1, 1], partition: [1, 1],
                              inputs: ["x": x, "gamma": ones, "beta": zeros, "running_mean": zeros, "running_var": ones])
        guard let y = p.outputs?["y"], y.count == x.count else { return Self.unanswered(p.refusal) }
        let outside = single.epsInside == false
        let solved = amps.indices.map { outside ? amps[$0] / y[$0] - amps[$0] : amps[$0] * amps[$0] * (1 / (y[$0] * y[$0]) - 1) }
        let evidence = "x = ±a per channel over partition [1, 1]: eps solved as " + (outside ? "a/y − a (outside √, as on a single device)" : "a²(1/y² − 1)")
            + " = \(solved.map(Self.fmt)) (single device: \(Self.fmt(single.eps)))"
        let e = solved.sorted()[C / 2]
        guard Self.epsConsistent(solved, amps: amps), e >= -1e-6 else {
            return Finding(value: "undetermined", evidence: evidence + "; no one non-negative eps solves every channel")
        }
        let nice = Self.nearestCommonEps(e)
        return Finding(value: Self.fmt(abs(nice - e) <= 0.05 * max(nice, 1e-300) ? nice : max(e, 0)), evidence: evidence)
    }

    /// Whether the exchange keeps the variance under eps: centred data of variance v = 1e-8 … 1e-11
    /// (four channels, n = 256 over four ranks), running variance 0 → w·f·v̂: the relative error of
    /// v̂ against u·ε/v, the loss of sending r = 1/√(v + ε) and rebuilding v = (1/r)² − ε
    /// (spec §11.4 (c)); ≈ u (2⁻²⁴) for an exchange of the variance itself.
    mutating func varianceExchange(_ single: SingleDevice) throws -> Finding {
        guard single.runningStatistics, single.batchWeight > 0, single.eps > 0 else {
            return Finding(value: "not provided", evidence: "needs running statistics and eps > 0")
        }
        let vs = [1e-8, 1e-9, 1e-10, 1e-11], C = vs.count, N = 256
        var r = SpecRandom("fingerprint/sync-exchange")
        let x = (0..<(N * C)).map { i in Double(Float(vs[i % C].squareRoot() * r.normal())) }
        let zeros = [Double](repeating: 0, count: C), ones = [Double](repeating: 1, count: C)
        let p = try syncProbe("sync-train", shape: [N, C, 1, 1], partition: [64, 64, 64, 64],
                              inputs: ["x": x, "gamma": ones, "beta": zeros, "running_mean": zeros, "running_var": zeros])
        guard let rv = p.outputs?["running_var"], rv.count == C else { return Self.unanswered(p.refusal) }
        let ms = try Reference.moments(x, shape: try Shape(batch: N, channels: C, spatial: [1, 1]), layout: .nchw)
        // Bessel's factor is read off the answer itself: the nearest of biased, n/(n − 1) and a rank's n_k/(n_k − 1).
        let fed = (0..<C).map { rv[$0] / single.batchWeight }
        let err = (0..<C).map { c -> Double in
            let v = ms[c].biasedVariance
            return [1, Double(N) / Double(N - 1), 64.0 / 63].map { abs(fed[c] - v * $0) / v }.min()!
        }
        let predicted = (0..<C).map { 0x1p-24 * single.eps / ms[$0].biasedVariance }
        let ratio = zip(err, predicted).map { $0 / $1 }
        let lossy = err.last! > 1e-4 && ratio.sorted()[C / 2] > 0.05
        // The round trip's loss is bounded by a few u·ε/v (r = 1/√(v + ε) and (1/r)² each rounded
        // once, then ε subtracted: |δv| ≤ ~3u(v + ε)) and grows with ε/v: a larger error, or one
        // that does not grow tenfold from v = 1e-8 to 1e-11 (round F: running statistics from one
        // rank's own batch, 0.19 / 0.058 / 0.16 / 0.043, were read as the round trip), is another
        // loss, "undetermined".
        let follows = ratio.allSatisfy { $0 <= 4 } && err.last! >= 10 * err.first!
        let evidence = "centred data, v = \(vs.map(Self.fmt)), ε = \(Self.fmt(single.eps)), partition [64, 64, 64, 64]: relative error of the variance fed to the running variance \(err.map(Self.fmt)); u·ε/v = \(predicted.map(Self.fmt)) (the invstd round trip's loss, §11.4 (c))"
        if lossy && !follows {
            return Finding(value: "undetermined", evidence: evidence + "; the error does not follow u·ε/v (≤ 4 u·ε/v, and ≥ 10× larger at v = 1e-11 than at 1e-8): a loss other than the round trip")
        }
        return Finding(value: lossy ? "invstd_round_trip" : "exact", evidence: evidence)
    }
}
