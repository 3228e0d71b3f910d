import BNAudit
import BNCore
import BNKernels
import Testing

/// BN folding (issue #4; law 13 of issue #5): folded and unfolded layers agree within
/// the bound, for several seeds; a classic folding bug does not.
@Suite struct FoldingTests {
    @Test(arguments: ["fold-check", "a", "b", "c", "d"])
    func foldedAndUnfoldedLayersAgree(seed: String) throws {
        for r in try FoldingCheck(seed: seed).run() {
            #expect(r.passed, "\(r.layer): folded \(r.foldedRatio), unfolded \(r.unfoldedRatio), agreement \(r.agreementRatio)")
        }
    }

    @Test func foldingThatForgetsTheMeanFails() throws {
        let wrong = FoldingCheck { w, b, o, g, beta, mean, v, eps in
            try BatchNormFolding.fold(weights: w, bias: b, outChannels: o, gamma: g, beta: beta,
                                      mean: [Float](repeating: 0, count: mean.count), variance: v, eps: eps)
        }
        #expect(try wrong.run().allSatisfy { !$0.passed })
    }

    @Test func foldingFormulaOnOneChannel() throws {
        // s = 2/√(3 + 1) = 1; W' = W, b' = (b − μ)·1 + β.
        let f = try BatchNormFolding.fold(weights: [1, -2], bias: [0.5], outChannels: 1, gamma: [2], beta: [0.25], mean: [1.5],
                                          variance: [3], eps: 1)
        #expect(f.weights == [1, -2] && f.bias == [-0.75])
    }

    @Test func badFoldingInputIsAnError() {
        #expect(throws: BNError.self) {
            try BatchNormFolding.fold(weights: [1, 2, 3], bias: nil, outChannels: 2, gamma: [1, 1], beta: [0, 0], mean: [0, 0],
                                      variance: [1, 1], eps: 1e-5)
        }
        #expect(throws: BNError.self) {
            try BatchNormFolding.fold(weights: [1, 2], bias: nil, outChannels: 2, gamma: [1], beta: [0, 0], mean: [0, 0],
                                      variance: [1, 1], eps: 1e-5)
        }
        #expect(throws: BNError.self) {
            try BatchNormFolding.fold(weights: [1, 2], bias: nil, outChannels: 2, gamma: [1, 1], beta: [0, 0], mean: [0, 0],
                                      variance: [0, 1], eps: 0)
        }
    }
}
