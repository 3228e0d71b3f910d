import BigInt
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
    /// The batch variance b is the rule's estimator (M2/n or M2/(n − 1)). With n = 1 and an
    /// unbiased estimator the ``SingleValuePolicy`` decides: `.error` throws, `.beta` uses
    /// the biased value 0, `.nan` uses 0/0 = NaN.
    ///
    /// Accuracy: each result is the correctly rounded value of the exact real
    /// (1 − w)·r + w·b, with r the given Double, b the exact batch statistic (when the
    /// moments come from ``ChannelMoments/compute(_:segments:)``; moments without exact
    /// values, e.g. merged ones, are taken at their Double values) and w exactly m, 1 − m
    /// (m the momentum's Double value) or the rational 1/k. A non-finite r or b follows
    /// IEEE arithmetic: ((1 − w)·r) + w·b with one FMA.
    public static func updateRunning(_ running: RunningStatistics, batch: [ChannelMoments],
                                     rule: RunningUpdateRule, profileName: String = "custom") throws -> RunningStatistics {
        guard running.mean.count == batch.count, running.variance.count == batch.count else {
            throw BNError.invalidArgument("running statistics have \(running.mean.count) channels, batch has \(batch.count)")
        }
        let k = running.steps + 1
        let w = rule.batchWeight(step: k)
        let (we, keep) = exactWeights(rule, step: k)
        var out = running
        out.steps = k
        for c in batch.indices {
            let m = batch[c]
            var bv: Double
            var exactVariance: Rational?
            if m.count == 1 && rule.estimator == .unbiased {
                switch rule.singleValue {
                case .error: throw BNError.singleValuePerChannel(profile: profileName)
                case .beta: bv = m.biasedVariance; exactVariance = m.exact.map { _ in .zero }
                case .nan: bv = .nan
                }
            } else {
                bv = m.variance(rule.estimator)
                if let e = m.exact {
                    exactVariance = e.m2 / Rational(rule.estimator == .biased ? e.count : e.count - 1)
                }
            }
            func update(_ r: Double, _ b: Double, _ exactB: Rational?) -> Double {
                guard r.isFinite, b.isFinite else { return blend(r, b, w) }
                return (keep * Rational(r) + we * (exactB ?? Rational(b))).rounded()
            }
            out.mean[c] = update(running.mean[c], m.mean, m.exact?.mean)
            out.variance[c] = update(running.variance[c], bv, exactVariance)
        }
        return out
    }

    /// The rule's exact weights (w, 1 − w) at step k: the momentum's Double value m
    /// gives w = m or 1 − m exactly; the cumulative average w = 1/k.
    static func exactWeights(_ rule: RunningUpdateRule, step k: Int) -> (Rational, Rational) {
        guard let m = rule.momentum else { return (Rational(BigInt(1), BigInt(k)), Rational(BigInt(k - 1), BigInt(k))) }
        let mr = Rational(m), rest = .one - mr
        return rule.weighting == .batch ? (mr, rest) : (rest, mr)
    }

    /// IEEE evaluation of (1 − w)·r + w·b (one FMA), for non-finite r or b.
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
