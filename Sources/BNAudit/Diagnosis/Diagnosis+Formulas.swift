import BNCore
import BNReference

/// The BN formulas the bug models perturb, evaluated in Double from the case's inputs and
/// the reference statistics. A model's prediction is the reference outputs with the
/// outputs its bug changes replaced.
extension DiagnosisProblem {
    package func input(_ k: String) -> [Double] { inputs[k] ?? [] }
    package var gamma: [Double] { input("gamma") }
    var beta: [Double] { input("beta") }
    package var eps: Double { spec.eps }

    /// Exact batch statistics (mean, biased variance) of a batch x (of the case's shape unless
    /// given: an epoch's batches have their own), per channel.
    func batchStatistics(_ x: [Double], shape batchShape: Shape? = nil) -> (mean: [Double], variance: [Double]) {
        guard let ms = try? Reference.moments(x, shape: batchShape ?? shape, layout: spec.layout) else { return ([], []) }
        return (ms.map(\.mean), ms.map(\.biasedVariance))
    }

    /// Statistics with Σx accumulated sequentially in float16 (storage order), divided by n in
    /// float32, and the variance about that mean (the 16-bit-accumulation bug, modelled exactly
    /// for a sequential sum; another order is not reproduced and stays unexplained).
    var float16SumStatistics: (mean: [Double], variance: [Double]) {
        let x = input("x")
        // With n = 2 values a float16 running sum is one rounding of two rounded values: the batch mean merely
        // rounded to float16 gives the same outputs, so the mechanism is not told (a red team's).
        guard x.count == shape.elementCount, spec.dtype != .f64, n >= 3 else { return ([], []) }
        var mean: [Double] = [], variance: [Double] = []
        for c in 0..<channels {
            let idx = indices(c)
            var h: Float16 = 0
            for i in idx { h += Float16(Float(x[i])) }
            let m = Double(Float(h) / Float(n))
            mean.append(m)
            variance.append(idx.reduce(0.0) { $0 + (x[$1] - m) * (x[$1] - m) } / Double(n))
        }
        return (mean, variance)
    }

    /// x with its NaN and ±Inf replaced by 0; nil when x is finite (the model then says nothing).
    var nonFiniteXAsZero: [Double]? {
        let x = input("x")
        return x.contains { !$0.isFinite } ? x.map { $0.isFinite ? $0 : 0 } : nil
    }

    /// The training case's batch statistics (from x; single-step cases), computed once per problem.
    var trainingStatistics: (mean: [Double], variance: [Double]) { statisticsOfX.value { batchStatistics(input("x")) } }

    /// y = γ'·(x − μ)·s + β' per channel with s = scale(c).
    func normalized(_ x: [Double], mean: [Double], scale: (Int) -> Double, gamma g: [Double]? = nil, beta b: [Double]? = nil,
                    channelOf: (Int) -> Int = { $0 }) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        let gg = g ?? gamma, bb = b ?? beta
        for c in 0..<channels {
            let src = channelOf(c), s = scale(src), m = mean[src]
            for i in indices(c) { y[i] = gg[src] * (x[i] - m) * s + bb[src] }
        }
        return y
    }

    func invStd(_ v: Double) -> Double { 1 / (v + eps).squareRoot() }

    /// Statistics over other axes than BN's: per (sample, channel) or per (channel, position).
    func groupedNormalization(_ x: [Double], groups: (Int) -> [[Int]]) -> [Double] {
        var y = [Double](repeating: .nan, count: x.count)
        for c in 0..<channels {
            for g in groups(c) where !g.isEmpty {
                let m = g.reduce(0.0) { $0 + x[$1] } / Double(g.count)
                let v = g.reduce(0.0) { $0 + (x[$1] - m) * (x[$1] - m) } / Double(g.count)
                for i in g { y[i] = gamma[c] * (x[i] - m) * invStd(v) + beta[c] }
            }
        }
        return y
    }

    /// The indices of channel c split per sample (N groups of the spatial size).
    func perSample(_ c: Int) -> [[Int]] {
        let s = shape
        return (0..<s.batch).map { b in (0..<s.spatialSize).map { spec.layout.index(n: b, c: c, s: $0, shape: s) } }
    }

    /// The indices of channel c split per spatial position (groups of N).
    func perPosition(_ c: Int) -> [[Int]] {
        let s = shape
        return (0..<s.spatialSize).map { p in (0..<s.batch).map { spec.layout.index(n: $0, c: c, s: p, shape: s) } }
    }

    /// R' = (1 − w)·R + w·b per channel.
    /// Weight 0 keeps r and weight 1 takes b as they are: an update that never happens (or
    /// replaces) does not touch the other operand, so a NaN there (a non-finite channel's batch
    /// mean) is not in its result (it was, as 0·NaN, and "not updated" missed such a channel).
    func blend(_ r: [Double], _ b: [Double], _ w: Double) -> [Double] {
        if w == 0 { return r }
        if w == 1 { return b }
        return zip(r, b).map { (1 - w) * $0 + w * $1 }
    }

    /// The batch weight the case asks for at step k.
    func weight(step k: Int) -> Double? { try? spec.rule().batchWeight(step: k) }

    /// Bessel's factor n/(n − 1) (1 for n = 1).
    var bessel: Double { Self.bessel(n) }
    static func bessel(_ n: Int) -> Double { n > 1 ? Double(n) / Double(n - 1) : 1 }

    /// The running-variance batch term of the case's estimator.
    func runningVarianceTerm(_ biased: [Double]) -> [Double] { runningVarianceTerm(biased, n: n) }

    /// The running-variance batch term of the case's estimator for a batch of `n` values per
    /// channel (an epoch's batches differ).
    func runningVarianceTerm(_ biased: [Double], n batchN: Int) -> [Double] {
        guard let rule = try? spec.rule() else { return biased }
        let f = Self.bessel(batchN)
        return rule.estimator == .unbiased ? biased.map { $0 * f } : biased
    }
}
