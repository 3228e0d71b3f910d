import BNCore

/// Folding an inference BN into the linear or convolution layer before it.
///
/// For a layer z = W·x + b with output channel o (row o of W: its `fanIn` weights —
/// in features for a linear layer, C_in·k_h·k_w for a convolution) followed by BN with
/// statistics (μ, σ²) and affine (γ, β):
///
///     s_o  = γ_o / √(σ²_o + ε)
///     W'_o = W_o · s_o
///     b'_o = (b_o − μ_o) · s_o + β_o
///
/// so that BN(W·x + b) = W'·x + b' exactly in real arithmetic. s, W' and b' are
/// computed in Double and rounded once to Float: |δW'| ≤ u·|W'|, |δb'| ≤ u·|b'|
/// (u = 2⁻²⁴). ``FoldedLayer/errorBound`` turns that into the bound the folding check
/// uses.
public enum BatchNormFolding {
    public struct FoldedLayer: Sendable, Equatable {
        public var weights: [Float]
        public var bias: [Float]
    }

    /// - Parameters: `weights` is row-major [outChannels][fanIn]; `bias` nil means 0.
    /// - Throws: when an array length does not match, eps < 0, or a variance + eps ≤ 0.
    public static func fold(weights: [Float], bias: [Float]?, outChannels: Int, gamma: [Float], beta: [Float],
                            mean: [Float], variance: [Float], eps: Double) throws -> FoldedLayer {
        guard outChannels > 0, weights.count % outChannels == 0, !weights.isEmpty else {
            throw BNError.invalidArgument("folding: \(weights.count) weights do not split into \(outChannels) output channels")
        }
        for (name, a) in [("gamma", gamma), ("beta", beta), ("mean", mean), ("variance", variance)] + (bias.map { [("bias", $0)] } ?? [])
            where a.count != outChannels {
            throw BNError.invalidArgument("folding: \(name) has \(a.count) values, expected \(outChannels)")
        }
        guard eps >= 0, eps.isFinite else { throw BNError.invalidArgument("folding: eps \(eps) must be finite and ≥ 0") }
        let fanIn = weights.count / outChannels
        var w = [Float](repeating: 0, count: weights.count), b = [Float](repeating: 0, count: outChannels)
        for o in 0..<outChannels {
            let v = Double(variance[o]) + eps
            guard v > 0 else { throw BNError.invalidArgument("folding: variance + eps of channel \(o) is \(v), not positive") }
            let s = Double(gamma[o]) / v.squareRoot()
            for k in 0..<fanIn { w[o * fanIn + k] = Float(Double(weights[o * fanIn + k]) * s) }
            b[o] = Float((Double(bias?[o] ?? 0) - Double(mean[o])) * s + Double(beta[o]))
        }
        return FoldedLayer(weights: w, bias: b)
    }

    /// A linear layer z[n][o] = Σ_k W[o][k]·x[n][k] + b[o] in Float (the way a float32
    /// layer computes it, recursive summation).
    public static func linear(_ x: [Float], batch: Int, weights: [Float], bias: [Float], outChannels: Int) -> [Float] {
        let fanIn = weights.count / outChannels
        var z = [Float](repeating: 0, count: batch * outChannels)
        for n in 0..<batch {
            for o in 0..<outChannels {
                var acc: Float = 0
                for k in 0..<fanIn { acc += weights[o * fanIn + k] * x[n * fanIn + k] }
                z[n * outChannels + o] = acc + bias[o]
            }
        }
        return z
    }

    /// A valid (no padding, stride 1) 2-D convolution, NCHW in and out, weights
    /// [C_out][C_in][kh][kw], in Float. Generic over the scalar so the check can run
    /// the same loops in Double.
    public static func conv2d<T: BinaryFloatingPoint>(_ x: [T], batch: Int, inChannels: Int, height: Int, width: Int,
                                                      weights: [T], bias: [T], outChannels: Int, kernel: Int) -> [T] {
        let oh = height - kernel + 1, ow = width - kernel + 1
        var z = [T](repeating: 0, count: batch * outChannels * oh * ow)
        for n in 0..<batch {
            for o in 0..<outChannels {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var acc: T = 0
                        for c in 0..<inChannels {
                            for a in 0..<kernel {
                                for b in 0..<kernel {
                                    acc += weights[((o * inChannels + c) * kernel + a) * kernel + b]
                                        * x[((n * inChannels + c) * height + i + a) * width + j + b]
                                }
                            }
                        }
                        z[((n * outChannels + o) * oh + i) * ow + j] = acc + bias[o]
                    }
                }
            }
        }
        return z
    }
}
