import BNCore

/// Running (global) statistics: per-channel mean and variance, plus how many
/// training steps have been folded in (for the cumulative average).
public struct RunningStatistics: Sendable, Equatable, Codable {
    public var mean: [Double]
    public var variance: [Double]
    public var steps: Int

    /// The conventional initial state: mean 0, variance 1, no steps.
    public init(channels: Int) {
        mean = .init(repeating: 0, count: channels)
        variance = .init(repeating: 1, count: channels)
        steps = 0
    }
    public init(mean: [Double], variance: [Double], steps: Int = 0) {
        self.mean = mean; self.variance = variance; self.steps = steps
    }
}

extension Reference {
    /// One running-statistics update: r ← (1 − w)·r + w·b per channel, where w is
    /// the rule's weight of the batch statistic at step k = steps + 1 (m, 1 − m, or 1/k).
    ///
    /// The batch variance b is the rule's estimator (M2/n or M2/(n − 1)), rounded once.
    /// With n = 1 and an unbiased estimator the ``SingleValuePolicy`` decides: `.error`
    /// throws, `.beta` uses the biased value 0, `.nan` uses 0/0 = NaN.
    ///
    /// Accuracy: (1 − w)·r + w·b evaluated with one FMA: ≤ 1.5 ulp. w = 0 keeps r and
    /// w = 1 replaces it with b exactly (for finite r: 0·r = 0).
    public static func updateRunning(_ running: RunningStatistics, batch: [ChannelMoments],
                                     rule: RunningUpdateRule, profileName: String = "custom") throws -> RunningStatistics {
        guard running.mean.count == batch.count, running.variance.count == batch.count else {
            throw BNError.invalidArgument("running statistics have \(running.mean.count) channels, batch has \(batch.count)")
        }
        let k = running.steps + 1
        let w = rule.batchWeight(step: k)
        var out = running
        out.steps = k
        for c in batch.indices {
            let m = batch[c]
            var bv: Double
            if m.count == 1 && rule.estimator == .unbiased {
                switch rule.singleValue {
                case .error: throw BNError.singleValuePerChannel(profile: profileName)
                case .beta: bv = m.biasedVariance
                case .nan: bv = .nan
                }
            } else {
                bv = m.variance(rule.estimator)
            }
            out.mean[c] = blend(running.mean[c], m.mean, w)
            out.variance[c] = blend(running.variance[c], bv, w)
        }
        return out
    }

    @inlinable static func blend(_ r: Double, _ b: Double, _ w: Double) -> Double {
        ((1 - w) * r).addingProduct(w, b)
    }

    /// A training step under a profile's rule: forward with batch statistics, then
    /// the running update. Throws when the profile refuses n = 1.
    public static func trainingStep(_ x: [Double], shape: Shape, layout: Layout,
                                    gamma: [Double]?, beta: [Double]?, eps: Double,
                                    running: RunningStatistics, rule: RunningUpdateRule,
                                    profileName: String) throws -> (TrainingForwardResult, RunningStatistics) {
        if shape.perChannelCount == 1 && rule.singleValue == .error {
            throw BNError.singleValuePerChannel(profile: profileName)
        }
        let fwd = try trainingForward(x, shape: shape, layout: layout, gamma: gamma, beta: beta, eps: eps)
        let next = try updateRunning(running, batch: fwd.moments, rule: rule, profileName: profileName)
        return (fwd, next)
    }
}
