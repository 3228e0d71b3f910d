import BNCore
import BNGolden
import BNReference
import Testing

/// Backward against central finite differences of the forward pass, in Double.
/// The loss is L = Σ w·y with fixed random weights w, so dL/dy = w.
@Suite struct GradientTests {
    static let shapes: [(Shape, Layout)] = [
        (shape(2, 3, 1, 1), .nchw), (shape(2, 2, 3), .nchw), (shape(3, 2, 2, 2), .nhwc),
        (shape(4, 3), .nc), (shape(2, 1, 2, 3), .nhwc),
    ]

    /// Central difference with step h, error O(h²·f''') + O(u·|L|/h).
    static func numericGradient(_ f: ([Double]) throws -> Double, at x: [Double], h: Double) rethrows -> [Double] {
        var g = [Double](repeating: 0, count: x.count)
        for i in x.indices {
            var xp = x, xm = x
            xp[i] += h; xm[i] -= h
            g[i] = (try f(xp) - f(xm)) / (2 * h)
        }
        return g
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    static func expectClose(_ a: [Double], _ b: [Double], _ what: String) {
        let scale = max(1, b.map(abs).max() ?? 0)
        for i in a.indices {
            #expect(abs(a[i] - b[i]) <= 1e-6 * scale, "\(what)[\(i)]: analytic \(a[i]) vs numeric \(b[i])")
        }
    }

    @Test(arguments: shapes.indices)
    func trainingBackwardMatchesFiniteDifferences(_ k: Int) throws {
        let (s, layout) = Self.shapes[k]
        let x = randomTensor(s, seed: "grad/x/\(k)", offset: 0.5, spread: 2)
        let w = randomTensor(s, seed: "grad/w/\(k)")
        var r = SpecRandom("grad/p/\(k)")
        let gamma = (0..<s.channels).map { _ in 0.5 + r.uniform() }
        let beta = (0..<s.channels).map { _ in r.normal() }
        let eps = 1e-3
        let fwd = try Reference.trainingForward(x, shape: s, layout: layout, gamma: gamma, beta: beta, eps: eps)
        let g = try Reference.trainingBackward(x, dy: w, shape: s, layout: layout, gamma: gamma,
                                               mean: fwd.mean, invStd: fwd.invStd)
        let loss = { (x: [Double], gm: [Double], bt: [Double]) throws -> Double in
            Self.dot(w, try Reference.trainingForward(x, shape: s, layout: layout, gamma: gm, beta: bt, eps: eps).y)
        }
        Self.expectClose(g.dx, try Self.numericGradient({ try loss($0, gamma, beta) }, at: x, h: 1e-5), "dx")
        Self.expectClose(g.dGamma, try Self.numericGradient({ try loss(x, $0, beta) }, at: gamma, h: 1e-5), "dgamma")
        Self.expectClose(g.dBeta, try Self.numericGradient({ try loss(x, gamma, $0) }, at: beta, h: 1e-5), "dbeta")
    }

    @Test(arguments: shapes.indices)
    func inferenceBackwardMatchesFiniteDifferences(_ k: Int) throws {
        let (s, layout) = Self.shapes[k]
        let x = randomTensor(s, seed: "igrad/x/\(k)", offset: -1, spread: 3)
        let w = randomTensor(s, seed: "igrad/w/\(k)")
        var r = SpecRandom("igrad/p/\(k)")
        let gamma = (0..<s.channels).map { _ in 0.5 + r.uniform() }
        let beta = (0..<s.channels).map { _ in r.normal() }
        let mean = (0..<s.channels).map { _ in r.normal() }
        let variance = (0..<s.channels).map { _ in 0.2 + r.uniform() }
        let eps = 1e-5
        let g = try Reference.inferenceBackward(x, dy: w, shape: s, layout: layout, gamma: gamma,
                                                mean: mean, variance: variance, eps: eps)
        let loss = { (x: [Double], gm: [Double], bt: [Double]) throws -> Double in
            Self.dot(w, try Reference.inferenceForward(x, shape: s, layout: layout, mean: mean, variance: variance,
                                                       gamma: gm, beta: bt, eps: eps))
        }
        Self.expectClose(g.dx, try Self.numericGradient({ try loss($0, gamma, beta) }, at: x, h: 1e-5), "dx")
        Self.expectClose(g.dGamma, try Self.numericGradient({ try loss(x, $0, beta) }, at: gamma, h: 1e-5), "dgamma")
        Self.expectClose(g.dBeta, try Self.numericGradient({ try loss(x, gamma, $0) }, at: beta, h: 1e-5), "dbeta")
    }
}
