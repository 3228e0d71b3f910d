import BNCore
import BNGolden
import BNKernels

/// Checks BN folding (``BatchNormFolding``) end to end: a linear and a convolution
/// layer followed by inference BN, run unfolded (Float layer, then the fused BN
/// kernel) and folded (Float layer with W', b'), both against a Double reference of
/// the unfolded composition.
///
/// Error bounds per output (u = 2⁻²⁴, K = ``ToleranceModel/safety``, m = fan-in,
/// p = Σ_k |W_k·x_k| + |b|, s = γ/√(σ² + ε)):
/// - folded: K·(m + 3)·u·(|s|·p + |β| + |s·μ|) — m + 1 roundings of the Float dot
///   product and bias, one each in W' and b';
/// - unfolded: K·((m + 1)·u·|s|·p + u·|s|·(|z| + |μ|) + 3u·|y|) — the layer, then the
///   BN step (x − μ, the scale, the shift).
/// Folded and unfolded agree when |y_f − y_u| ≤ bound_f + bound_u.
public struct FoldingCheck: Sendable {
    public struct Result: Encodable, Sendable {
        public var layer: String
        public var outputs: Int
        /// Worst |y − y_ref| ÷ bound of each form, and of their disagreement.
        public var foldedRatio: Double
        public var unfoldedRatio: Double
        public var agreementRatio: Double
        public var passed: Bool { foldedRatio <= 1 && unfoldedRatio <= 1 && agreementRatio <= 1 }
        enum CodingKeys: String, CodingKey {
            case layer, outputs, passed
            case foldedRatio = "folded_ratio", unfoldedRatio = "unfolded_ratio", agreementRatio = "agreement_ratio"
        }
        public func encode(to e: any Encoder) throws {
            var c = e.container(keyedBy: CodingKeys.self)
            try c.encode(layer, forKey: .layer); try c.encode(outputs, forKey: .outputs); try c.encode(passed, forKey: .passed)
            try c.encode(foldedRatio, forKey: .foldedRatio); try c.encode(unfoldedRatio, forKey: .unfoldedRatio)
            try c.encode(agreementRatio, forKey: .agreementRatio)
        }
    }

    /// The folding under test (replaceable so a test can check that a wrong folding fails).
    public typealias Fold = @Sendable ([Float], [Float]?, Int, [Float], [Float], [Float], [Float], Double) throws
        -> BatchNormFolding.FoldedLayer
    public var fold: Fold
    public var seed: String

    public init(seed: String = "fold-check", fold: Fold? = nil) {
        self.seed = seed
        self.fold = fold ?? { try BatchNormFolding.fold(weights: $0, bias: $1, outChannels: $2, gamma: $3, beta: $4, mean: $5,
                                                        variance: $6, eps: $7) }
    }

    struct BN { var gamma, beta, mean, variance: [Float]; var eps: Double }

    func draw(_ r: inout SpecRandom, _ n: Int, _ f: (inout SpecRandom) -> Double) -> [Float] { (0..<n).map { _ in Float(f(&r)) } }

    func bn(_ r: inout SpecRandom, _ C: Int) -> BN {
        BN(gamma: draw(&r, C) { (0.5 + $0.uniform()) * $0.sign() }, beta: draw(&r, C) { $0.normal() },
           mean: draw(&r, C) { 0.5 * $0.normal() }, variance: draw(&r, C) { 0.5 + 1.5 * $0.uniform() }, eps: 1e-5)
    }

    public func run() throws -> [Result] {
        var r = SpecRandom(seed)
        // Linear: 16 samples, 64 → 32.
        let (B, I, O) = (16, 64, 32)
        let x = draw(&r, B * I) { $0.normal() }, w = draw(&r, O * I) { $0.normal() / 8 }, b = draw(&r, O) { 0.1 * $0.normal() }
        let p = bn(&r, O)
        let lin = try compare("linear 16x64 → 32", x: x, w: w, b: b, p: p, shape: try Shape(batch: B, channels: O), fanIn: I) { ww, bb in
            BatchNormFolding.linear(x, batch: B, weights: ww, bias: bb, outChannels: O)
        } reference: {
            (0..<(B * O)).map { i in
                let n = i / O, o = i % O
                return ((0..<I).reduce(0.0) { $0 + Double(w[o * I + $1]) * Double(x[n * I + $1]) } + Double(b[o]),
                        (0..<I).reduce(0.0) { $0 + abs(Double(w[o * I + $1]) * Double(x[n * I + $1])) } + abs(Double(b[o])))
            }
        }
        // Convolution: 2 × 3 × 12 × 12, 3×3 kernel, 8 output channels.
        let (N, Ci, H, K, Co) = (2, 3, 12, 3, 8)
        let cx = draw(&r, N * Ci * H * H) { $0.normal() }, cw = draw(&r, Co * Ci * K * K) { $0.normal() / 5 }
        let cb = draw(&r, Co) { 0.1 * $0.normal() }, cp = bn(&r, Co)
        let oh = H - K + 1
        let zd = BatchNormFolding.conv2d(cx.map(Double.init), batch: N, inChannels: Ci, height: H, width: H,
                                         weights: cw.map(Double.init), bias: cb.map(Double.init), outChannels: Co, kernel: K)
        let za = BatchNormFolding.conv2d(cx.map { abs(Double($0)) }, batch: N, inChannels: Ci, height: H, width: H,
                                         weights: cw.map { abs(Double($0)) }, bias: cb.map { abs(Double($0)) }, outChannels: Co, kernel: K)
        let conv = try compare("conv 2x3x12x12 k3 → 8", x: cx, w: cw, b: cb, p: cp,
                               shape: try Shape(batch: N, channels: Co, spatial: [oh, oh]), fanIn: Ci * K * K) { ww, bb in
            BatchNormFolding.conv2d(cx, batch: N, inChannels: Ci, height: H, width: H, weights: ww, bias: bb, outChannels: Co, kernel: K)
        } reference: { Array(zip(zd, za)) }
        return [lin, conv]
    }

    /// `layer(W, b)` runs the Float layer; `reference()` gives (z, Σ|W x| + |b|) in Double per output.
    func compare(_ name: String, x: [Float], w: [Float], b: [Float], p: BN, shape: Shape, fanIn: Int,
                 layer: ([Float], [Float]) -> [Float], reference: () -> [(Double, Double)]) throws -> Result {
        let C = shape.channels
        let u = 0x1p-24, K = ToleranceModel.safety, m = Double(fanIn)
        let folded = try fold(w, b, C, p.gamma, p.beta, p.mean, p.variance, p.eps)
        let yf = layer(folded.weights, folded.bias)
        let z = layer(w, b)
        var yu = [Float](repeating: 0, count: z.count)
        z.withUnsafeBufferPointer { zp in yu.withUnsafeMutableBufferPointer { yp in
            FusedBatchNorm.inferenceForward(x: zp.baseAddress!, y: yp.baseAddress!, shape: shape, layout: shape.spatial.isEmpty ? .nc : .nchw,
                                            gamma: p.gamma, beta: p.beta, mean: p.mean, variance: p.variance, eps: p.eps)
        }}
        let ref = reference()
        var rf = 0.0, ru = 0.0, ra = 0.0
        for i in 0..<z.count {
            let c = shape.spatial.isEmpty ? i % C : (i / shape.spatialSize) % C
            let s = Double(p.gamma[c]) / (Double(p.variance[c]) + p.eps).squareRoot()
            let (zr, pr) = ref[i]
            let y = (zr - Double(p.mean[c])) * s + Double(p.beta[c])
            let bf = K * (m + 3) * u * (abs(s) * pr + abs(Double(p.beta[c])) + abs(s * Double(p.mean[c]))) + Double.leastNormalMagnitude
            let bu = K * ((m + 1) * u * abs(s) * pr + u * abs(s) * (abs(zr) + abs(Double(p.mean[c]))) + 3 * u * abs(y))
                + Double.leastNormalMagnitude
            rf = max(rf, abs(Double(yf[i]) - y) / bf)
            ru = max(ru, abs(Double(yu[i]) - y) / bu)
            ra = max(ra, abs(Double(yf[i]) - Double(yu[i])) / (bf + bu))
        }
        return Result(layer: name, outputs: z.count, foldedRatio: rf, unfoldedRatio: ru, agreementRatio: ra)
    }
}
