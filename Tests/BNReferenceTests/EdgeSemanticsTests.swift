import BNCore
import BNReference
import Testing

/// The reference's defined outcomes at the edges (spec/SPEC.md §4).
@Suite struct EdgeSemanticsTests {
    @Test func emptyChannelIsAClearError() {
        let s = shape(0, 3, 2, 2)
        #expect(throws: BNError.emptyChannel(channel: 0)) {
            try Reference.trainingForward([], shape: s, layout: .nchw, eps: 1e-5)
        }
    }

    @Test func shapeMismatchIsAnError() {
        #expect(throws: BNError.self) {
            try Reference.trainingForward([1, 2, 3], shape: shape(2, 2), layout: .nc, eps: 1e-5)
        }
        #expect(throws: BNError.self) { try Reference.trainingForward([1, 2], shape: shape(1, 2), layout: .nc, eps: -1) }
    }

    @Test func nanPropagatesToItsChannelOnly() throws {
        var x = randomTensor(shape(3, 2, 2), seed: "nan")
        x[0] = .nan  // channel 0 in NCHW
        let r = try Reference.trainingForward(x, shape: shape(3, 2, 2), layout: .nchw, eps: 1e-5)
        #expect(r.mean[0].isNaN && r.variance[0].isNaN)
        let c0 = channelValues(r.y, shape(3, 2, 2), .nchw, 0).allSatisfy { $0.isNaN }
        #expect(c0)
        let c1 = channelValues(r.y, shape(3, 2, 2), .nchw, 1).allSatisfy { $0.isFinite }
        #expect(c1)
    }

    @Test func infinityGivesInfiniteMeanAndNaNVariance() throws {
        let r = try Reference.trainingForward([1, .infinity, 2, 3], shape: shape(4, 1), layout: .nc, eps: 1e-5)
        #expect(r.mean[0] == .infinity)
        #expect(r.variance[0].isNaN)
        let mixed = try Reference.trainingForward([-.infinity, .infinity], shape: shape(2, 1), layout: .nc, eps: 1e-5)
        #expect(mixed.mean[0].isNaN)
    }

    @Test func zeroVarianceWithZeroEpsIsNaN() throws {
        let r = try Reference.trainingForward([2, 2, 2], shape: shape(3, 1), layout: .nc, beta: [0.5], eps: 0)
        #expect(r.variance[0] == 0 && r.invStd[0] == .infinity)
        let allNaN = r.y.allSatisfy { $0.isNaN }
        #expect(allNaN)
        let withEps = try Reference.trainingForward([2, 2, 2], shape: shape(3, 1), layout: .nc, beta: [0.5], eps: 1e-5)
        #expect(withEps.y == [0.5, 0.5, 0.5])  // constant channel: exactly β
    }

    @Test func singleValuePerChannelFollowsThePolicy() throws {
        let s = shape(1, 2)
        let x = [3.0, -4.0]
        let run = RunningStatistics(channels: 2)
        // error: PyTorch refuses.
        #expect(throws: BNError.singleValuePerChannel(profile: "pytorch")) {
            try Reference.trainingStep(x, shape: s, layout: .nc, gamma: nil, beta: [1, 2], eps: 1e-5, running: run,
                                       rule: try RunningUpdateRule(profile: .pytorch), profileName: "pytorch")
        }
        // beta: y = β, unbiased running variance falls back to 0 (TF fused op).
        let (f, next) = try Reference.trainingStep(x, shape: s, layout: .nc, gamma: nil, beta: [1, 2], eps: 1e-3,
                                                   running: run, rule: try RunningUpdateRule(profile: .tfFused, momentum: 0.5),
                                                   profileName: "tf-fused")
        #expect(f.y == [1, 2])
        #expect(next.variance == [0.5, 0.5] && next.mean == [1.5, -2])
        // nan: unbiased 0/0.
        let nanRule = try RunningUpdateRule(weighting: .batch, momentum: 0.1, estimator: .unbiased, singleValue: .nan)
        let (_, n2) = try Reference.trainingStep(x, shape: s, layout: .nc, gamma: nil, beta: nil, eps: 1e-3,
                                                 running: run, rule: nanRule, profileName: "custom")
        let varNaN = n2.variance.allSatisfy { $0.isNaN }
        #expect(varNaN)
    }

    @Test func momentumConventionsAndExtremes() throws {
        let x = [1.0, 2, 3, 4]  // mean 2.5, biased var 1.25, unbiased 5/3
        let m = try Reference.moments(x, shape: shape(4, 1), layout: .nc)
        let r0 = RunningStatistics(mean: [10], variance: [7])
        func step(_ w: MomentumWeighting, _ mom: Double?, _ e: VarianceEstimator) throws -> RunningStatistics {
            try Reference.updateRunning(r0, batch: m, rule: try RunningUpdateRule(weighting: w, momentum: mom, estimator: e, singleValue: .beta))
        }
        let s1 = try step(.batch, 0.1, .unbiased)
        #expect(s1.mean == [0.9 * 10 + 0.1 * 2.5])
        let s2 = try step(.running, 0.9, .biased)
        #expect(s2.variance == [0.9 * 7 + 0.1 * 1.25])
        let s3 = try step(.batch, 0, .biased)
        #expect(s3.mean == [10])        // keep
        let s4 = try step(.batch, 1, .unbiased)
        #expect(s4.variance == [5.0 / 3.0]) // replace
        let s5 = try step(.running, 1, .biased)
        #expect(s5.mean == [10])      // keep (Keras convention)
        let s6 = try step(.running, 0, .biased)
        #expect(s6.variance == [1.25]) // replace
        // cumulative: step 1 replaces, step 2 averages.
        let c1 = try step(.batch, nil, .biased)
        #expect(c1.mean == [2.5] && c1.steps == 1)
        let m2 = try Reference.moments([5, 5, 5, 5], shape: shape(4, 1), layout: .nc)
        let c2 = try Reference.updateRunning(c1, batch: m2, rule: try RunningUpdateRule(weighting: .batch, momentum: nil, estimator: .biased, singleValue: .beta))
        #expect(c2.mean == [3.75] && c2.variance == [0.625])
        #expect(throws: BNError.self) { try RunningUpdateRule(weighting: .batch, momentum: 1.5, estimator: .biased, singleValue: .beta) }
    }

    @Test func layoutsGiveBitIdenticalResults() throws {
        let s = shape(3, 5, 4, 3)
        let x = randomTensor(s, seed: "layout", offset: 100, spread: 0.1)
        let a = try Reference.trainingForward(x, shape: s, layout: .nchw, eps: 1e-5)
        let xh = x.relayout(s, from: .nchw, to: .nhwc)
        let b = try Reference.trainingForward(xh, shape: s, layout: .nhwc, eps: 1e-5)
        #expect(a.mean == b.mean && a.variance == b.variance)
        #expect(a.y.relayout(s, from: .nchw, to: .nhwc) == b.y)
    }
}
