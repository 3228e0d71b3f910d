/// A user's batch normalization: the library under test. It knows nothing of BNSpec; the tests
/// (Tests/MyBatchNormTests) adapt it to BNSpec's in-process audit.
///
/// Tensors are flat arrays of n × c × spatial values, channels first (NCHW) or last (NHWC, NC);
/// the arithmetic is in T (Float for float32 data, Double for float64). Statistics take two
/// passes per channel, Σx then Σ(x − μ)²; the running update is PyTorch's:
/// r ← (1 − m)·r + m·b with the unbiased batch variance.
public struct MyBatchNorm: Sendable {
    public struct Layout: Sendable {
        public var n: Int, c: Int, spatial: Int, channelsLast: Bool
        public init(n: Int, c: Int, spatial: Int, channelsLast: Bool) {
            self.n = n; self.c = c; self.spatial = spatial; self.channelsLast = channelsLast
        }
        /// The flat indices of channel `ch`, in memory order.
        func indices(_ ch: Int) -> [Int] {
            var out: [Int] = []
            out.reserveCapacity(n * spatial)
            for b in 0..<n {
                for s in 0..<spatial { out.append(channelsLast ? (b * spatial + s) * c + ch : (b * c + ch) * spatial + s) }
            }
            return out
        }
    }

    public struct SingleValueError: Error, CustomStringConvertible {
        public var description: String { "Expected more than 1 value per channel when training" }
    }

    /// The classic bug the example's second test suite shows BNSpec catching: the variance as
    /// E[x²] − E[x]² in one pass, which cancels catastrophically when |μ| ≫ σ.
    public var onePassVariance: Bool

    public init(onePassVariance: Bool = false) { self.onePassVariance = onePassVariance }

    /// Per-channel mean and biased variance.
    public func statistics<T: BinaryFloatingPoint>(_ x: [T], _ layout: Layout) -> (mean: [T], variance: [T]) {
        var mean: [T] = [], variance: [T] = []
        let count = T(layout.n * layout.spatial)
        for ch in 0..<layout.c {
            let idx = layout.indices(ch)
            var s: T = 0, ss: T = 0
            for i in idx { s += x[i]; if onePassVariance { ss += x[i] * x[i] } }
            let m = s / count
            if onePassVariance {
                variance.append(ss / count - m * m)
            } else {
                var d2: T = 0
                for i in idx { d2 += (x[i] - m) * (x[i] - m) }
                variance.append(d2 / count)
            }
            mean.append(m)
        }
        return (mean, variance)
    }

    /// Training forward: y with the batch statistics, which it returns, and the running update
    /// with weight `momentum` of the batch statistic.
    public func forwardTraining<T: BinaryFloatingPoint>(_ x: [T], _ layout: Layout, gamma: [T], beta: [T], eps: T, momentum: T,
                                                        runningMean: inout [T], runningVariance: inout [T]) throws
        -> (y: [T], mean: [T], variance: [T]) {
        let count = layout.n * layout.spatial
        guard count > 1 else { throw SingleValueError() }
        let (mean, variance) = statistics(x, layout)
        let y = forwardInference(x, layout, gamma: gamma, beta: beta, eps: eps, mean: mean, variance: variance)
        for ch in 0..<layout.c {
            runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mean[ch]
            runningVariance[ch] = (1 - momentum) * runningVariance[ch] + momentum * variance[ch] * T(count) / T(count - 1)
        }
        return (y, mean, variance)
    }

    /// Inference forward with given statistics: y = γ·(x − μ)/√(σ² + ε) + β.
    public func forwardInference<T: BinaryFloatingPoint>(_ x: [T], _ layout: Layout, gamma: [T], beta: [T], eps: T,
                                                         mean: [T], variance: [T]) -> [T] {
        var y = [T](repeating: 0, count: x.count)
        for ch in 0..<layout.c {
            let inv = 1 / (variance[ch] + eps).squareRoot()
            for i in layout.indices(ch) { y[i] = gamma[ch] * (x[i] - mean[ch]) * inv + beta[ch] }
        }
        return y
    }

    /// Backward: (dx, dγ, dβ). Training mode (`statistics` nil) differentiates through the batch
    /// statistics; inference mode takes the given ones as constants.
    public func backward<T: BinaryFloatingPoint>(_ x: [T], dy: [T], _ layout: Layout, gamma: [T], eps: T,
                                                 statistics given: (mean: [T], variance: [T])? = nil) -> (dx: [T], dGamma: [T], dBeta: [T]) {
        let (mean, variance) = given ?? statistics(x, layout)
        let count = T(layout.n * layout.spatial)
        var dx = [T](repeating: 0, count: x.count), dGamma: [T] = [], dBeta: [T] = []
        for ch in 0..<layout.c {
            let idx = layout.indices(ch), inv = 1 / (variance[ch] + eps).squareRoot()
            var sdy: T = 0, sdyxhat: T = 0
            for i in idx { sdy += dy[i]; sdyxhat += dy[i] * (x[i] - mean[ch]) * inv }
            for i in idx {
                dx[i] = given == nil
                    ? gamma[ch] * inv * (dy[i] - sdy / count - (x[i] - mean[ch]) * inv * sdyxhat / count)
                    : gamma[ch] * inv * dy[i]
            }
            dGamma.append(sdyxhat); dBeta.append(sdy)
        }
        return (dx, dGamma, dBeta)
    }
}
