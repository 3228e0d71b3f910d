import BNCore
import BNGolden
import BNKernels
import BNReference

/// The four accuracy figures of a kernel's training forward (issue #4, spec §6):
/// normwise error in ULPs of the kernel's storage format,
/// `max|y − y_ref| ÷ ulp(max|y_ref|)`, the worst over `trials` seeded inputs, on
/// - standard normal data, shape 8×16×7×7;
/// - a tiny batch, 2×3×1×1;
/// - a large offset, 1e4 + N(0, 1), shape 8×16×7×7;
/// and whether a constant channel gives exactly β (every element, every trial).
///
/// Inputs are drawn with the spec PRNG (``SpecRandom``) and rounded to the storage
/// format; y_ref is the Double reference on those rounded inputs. γ = 1, β = 0 for the
/// first three (so the figure is about normalisation, not the affine step); random γ, β
/// for the constant channel.
public struct AccuracyProbe: Sendable {
    public struct Figures: Codable, Sendable {
        public var kernel: String
        public var dtype: String
        public var normalUlps: Double
        public var tinyUlps: Double
        public var offsetUlps: Double
        public var constantExactlyBeta: Bool
        enum CodingKeys: String, CodingKey {
            case kernel, dtype
            case normalUlps = "normal_8x16x7x7_ulps", tinyUlps = "tiny_2x3x1x1_ulps", offsetUlps = "offset_1e4_ulps"
            case constantExactlyBeta = "constant_channel_exactly_beta"
        }
    }

    public var trials: Int
    public init(trials: Int = 10) { self.trials = trials }

    /// The dtype a kernel is measured in: its only dtype, or float32.
    public static func dtype(of kernel: any BatchNormKernel) -> DType {
        kernel.dtypes.count == 1 ? kernel.dtypes.first! : .f32
    }

    public func measure(_ kernel: any BatchNormKernel) throws -> Figures {
        let dtype = Self.dtype(of: kernel)
        var normal = 0.0, tiny = 0.0, offset = 0.0, exact = true
        for t in 0..<trials {
            normal = max(normal, try ulps(kernel, dtype, try Shape(batch: 8, channels: 16, spatial: [7, 7]), seed: "accuracy/normal/\(t)") { $0.normal() })
            tiny = max(tiny, try ulps(kernel, dtype, try Shape(batch: 2, channels: 3, spatial: [1, 1]), seed: "accuracy/tiny/\(t)") { $0.normal() })
            offset = max(offset, try ulps(kernel, dtype, try Shape(batch: 8, channels: 16, spatial: [7, 7]), seed: "accuracy/offset/\(t)") { 1e4 + $0.normal() })
            exact = try exact && constantIsBeta(kernel, dtype, seed: "accuracy/constant/\(t)")
        }
        return Figures(kernel: kernel.name, dtype: dtype.rawValue, normalUlps: normal, tinyUlps: tiny, offsetUlps: offset,
                       constantExactlyBeta: exact)
    }

    /// Normwise error in ULPs of one seeded input.
    func ulps(_ kernel: any BatchNormKernel, _ dtype: DType, _ shape: Shape, seed: String,
              _ draw: (inout SpecRandom) -> Double) throws -> Double {
        var r = SpecRandom(seed)
        let x = (0..<shape.elementCount).map { _ in dtype.quantize(draw(&r)) }
        let C = shape.channels
        let one = [Double](repeating: 1, count: C), zero = [Double](repeating: 0, count: C)
        let ref = try Reference.trainingForward(x, shape: shape, layout: .nchw, gamma: one, beta: zero, eps: 1e-5).y
        let rule = try RunningUpdateRule(profile: .pytorch)
        let y = try kernel.train(x, shape: shape, layout: .nchw, dtype: dtype, gamma: one, beta: zero, eps: 1e-5,
                                 runningMean: zero, runningVariance: one, step: 1, rule: rule).y
        let err = zip(y, ref).map { abs($0 - $1) }.max() ?? 0
        return err / Self.ulp(ref.map(abs).max() ?? 0, dtype)
    }

    /// True when every element of constant channels comes out exactly β.
    func constantIsBeta(_ kernel: any BatchNormKernel, _ dtype: DType, seed: String) throws -> Bool {
        var r = SpecRandom(seed)
        let shape = try Shape(batch: 8, channels: 16, spatial: [7, 7]), C = shape.channels
        let value = (0..<C).map { _ in dtype.quantize(r.normal() * 100) }
        let gamma = (0..<C).map { _ in dtype.quantize(0.5 + r.uniform()) }
        let beta = (0..<C).map { _ in dtype.quantize(r.normal()) }
        var x = [Double](repeating: 0, count: shape.elementCount)
        for i in x.indices { x[i] = value[(i / shape.spatialSize) % C] }
        let rule = try RunningUpdateRule(profile: .pytorch)
        let y = try kernel.train(x, shape: shape, layout: .nchw, dtype: dtype, gamma: gamma, beta: beta, eps: 1e-5,
                                 runningMean: [Double](repeating: 0, count: C), runningVariance: [Double](repeating: 1, count: C),
                                 step: 1, rule: rule).y
        return x.indices.allSatisfy { y[$0] == beta[($0 / shape.spatialSize) % C] }
    }

    /// The spacing of the storage format at |v|.
    static func ulp(_ v: Double, _ dtype: DType) -> Double {
        switch dtype {
        case .f64: return v.ulp
        case .f32: return Double(Float(v).ulp)
        case .f16: return Double(Float16(v).ulp)
        case .bf16: return Double(Float(BFloat16.float(BFloat16.bits(Float(v)))).ulp) * 65536
        }
    }
}
