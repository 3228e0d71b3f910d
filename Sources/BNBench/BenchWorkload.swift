import BNCore
import BNKernels
import Foundation

/// One kernel × mode × layout × shape × thread count, with its buffers allocated and
/// filled, ready to be timed by `bnspec bench`. `run()` executes exactly the kernel
/// on raw buffers (no conversion, no allocation); `copies` are the memcpys of its input
/// tensors that the benchmark times as the baseline, within the kernel's own buffers:
/// x into y (for backward, x and then dy into dx), so that kernel and memcpy work on the
/// same memory — the same working set — and an in-cache shape stays in cache for both.
public final class BenchWorkload {
    public enum Mode: String, CaseIterable, Sendable, Codable {
        case training, inference, backward
        /// Backward with the statistics given (the running mean and variance: a frozen or
        /// evaluated BN): dx = γr·dy, and dγ, dβ. On request only, not in the default set.
        case backwardInfer = "backward-infer"
        /// The modes `bnspec bench` times when none is named (those of the goals).
        public static let defaults: [Mode] = [.training, .inference, .backward]
        /// Whether the kernel reads dy and writes dx (its baseline copies x and dy).
        public var isBackward: Bool { self == .backward || self == .backwardInfer }
    }
    public static let kernelNames = ["scalar", "simd", "fused", "threaded", "fused-float16", "fused-bfloat16"]

    public let kernel: String, mode: Mode, layout: Layout, shape: Shape, threads: Int, dtype: DType
    /// A memcpy of the baseline: `bytes` from `source` to `destination`.
    public struct Copy {
        public let source: UnsafeRawPointer, destination: UnsafeMutableRawPointer, bytes: Int
    }
    /// The baseline memcpys: x → y; for backward x → dx, then dy → dx (no tensor beyond
    /// the kernel's three: with a fourth, the in-cache backward memcpy ran partly out of
    /// L3 and flattered the ratio; spec/SPEC.md §9.4).
    public let copies: [Copy]
    /// Bytes of the input tensors (x, and dy for backward): what `copies` move.
    public var copyBytes: Int { copies.reduce(0) { $0 + $1.bytes } }
    public let run: () -> Void
    private let release: () -> Void

    deinit { release() }

    /// Allocates and fills the buffers. `threads` applies to `threaded` only.
    public init(kernel: String, mode: Mode, layout: Layout, shape: Shape, threads: Int) throws {
        self.kernel = kernel; self.mode = mode; self.layout = layout; self.shape = shape
        let t = kernel == "threaded" ? max(1, threads) : 1
        self.threads = t
        let count = shape.elementCount
        let w: Workload
        switch kernel {
        case "scalar":
            dtype = .f32
            w = Self.scalar(mode, layout, shape, count)
        case "simd":
            dtype = .f32
            w = Self.simd(mode, layout, shape, count)
        case "fused", "threaded":
            dtype = .f32
            w = Self.fused(Float.self, mode, layout, shape, count, threads: t)
        case "fused-float16":
            dtype = .f16
            w = Self.fused(Float16.self, mode, layout, shape, count, threads: 1)
        case "fused-bfloat16":
            dtype = .bf16
            w = Self.fused(BFloat16Bits.self, mode, layout, shape, count, threads: 1)
        default:
            throw BNError.invalidArgument("unknown kernel '\(kernel)' (expected one of \(Self.kernelNames.joined(separator: ", ")))")
        }
        run = w.run; release = w.release
        let bytes = count * dtype.byteWidth
        copies = mode.isBackward
            ? [Copy(source: w.x, destination: w.y, bytes: bytes), Copy(source: w.dy, destination: w.y, bytes: bytes)]
            : [Copy(source: w.x, destination: w.y, bytes: bytes)]
    }

    /// A kernel's closure, its release, and its tensors (x, y or dx, dy).
    struct Workload {
        let run: () -> Void, release: () -> Void
        let x: UnsafeRawPointer, y: UnsafeMutableRawPointer, dy: UnsafeRawPointer
    }

    /// Deterministic data, roughly N(0, 1) per channel (a cheap LCG: data values do not
    /// change the speed of these kernels, only the need to touch every page does).
    static func fill<S: StorageElement>(_ p: UnsafeMutablePointer<S>, _ count: Int, seed: UInt64) {
        var s = seed
        for i in 0..<count {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(s >> 40) * 0x1p-24  // [0, 1)
            p[i] = S.narrow((u - 0.5) * 3.4)
        }
    }

    /// A tensor of `count` values, 64-byte aligned as the memcpy buffers it is compared with
    /// (and as PyTorch, ONNX Runtime and oneDNN allocate tensors); the kernels take any
    /// alignment (their tests run every offset), but malloc's 16-byte alignment splits every
    /// other vector access across two cache lines, which memcpy avoids by aligning itself.
    static func buffer<S: StorageElement>(_: S.Type, _ count: Int, seed: UInt64) -> UnsafeMutablePointer<S> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<S>.stride, alignment: 64)
            .bindMemory(to: S.self, capacity: count)
        fill(p, count, seed: seed)
        return p
    }

    static func deallocateTensor<S>(_ p: UnsafeMutablePointer<S>) { UnsafeMutableRawPointer(p).deallocate() }

    static func params(_ C: Int) -> (gamma: [Float], beta: [Float], mean: [Float], variance: [Float]) {
        ((0..<C).map { 1 + Float($0 % 7) * 0.01 }, (0..<C).map { Float($0 % 5) * 0.1 },
         (0..<C).map { Float($0 % 3) * 0.01 }, (0..<C).map { 1 + Float($0 % 11) * 0.02 })
    }

    static func scalar(_ mode: Mode, _ layout: Layout, _ shape: Shape, _ count: Int) -> Workload {
        let x = buffer(Float.self, count, seed: 1), y = buffer(Float.self, count, seed: 2), dy = buffer(Float.self, count, seed: 3)
        let k = ScalarKernel(), p = params(shape.channels)
        let xb = UnsafeBufferPointer(start: x, count: count), yb = UnsafeMutableBufferPointer(start: y, count: count)
        let dyb = UnsafeBufferPointer(start: dy, count: count)
        let rule = try! RunningUpdateRule(profile: .pytorch)
        var rm = p.mean, rv = p.variance
        let run: () -> Void
        switch mode {
        case .training:
            run = { _ = try? k.trainingForward(xb, yb, shape: shape, layout: layout, gamma: p.gamma, beta: p.beta, eps: 1e-5,
                                               runningMean: &rm, runningVariance: &rv, step: 1, rule: rule) }
        case .inference:
            run = { k.inferenceForward(xb, yb, shape: shape, layout: layout, gamma: p.gamma, beta: p.beta, eps: 1e-5, mean: p.mean,
                                       variance: p.variance) }
        case .backward: run = { _ = k.backward(xb, dyb, yb, shape: shape, layout: layout, gamma: p.gamma, eps: 1e-5) }
        case .backwardInfer: run = { _ = k.backward(xb, dyb, yb, shape, layout, p.gamma, 1e-5, (p.mean, p.variance)) }
        }
        return Workload(run: run, release: { Self.deallocateTensor(x); Self.deallocateTensor(y); Self.deallocateTensor(dy) },
                        x: UnsafeRawPointer(x), y: UnsafeMutableRawPointer(y), dy: UnsafeRawPointer(dy))
    }

    static func simd(_ mode: Mode, _ layout: Layout, _ shape: Shape, _ count: Int) -> Workload {
        let x = buffer(Float.self, count, seed: 1), y = buffer(Float.self, count, seed: 2), dy = buffer(Float.self, count, seed: 3)
        let p = params(shape.channels)
        let run: () -> Void
        switch mode {
        case .training: run = { SIMDBatchNorm.trainingForward(x: x, y: y, shape: shape, layout: layout, gamma: p.gamma, beta: p.beta, eps: 1e-5) }
        case .inference:
            run = { SIMDBatchNorm.inferenceForward(x: x, y: y, shape: shape, layout: layout, gamma: p.gamma, beta: p.beta,
                                                   mean: p.mean, variance: p.variance, eps: 1e-5) }
        case .backward:
            run = { _ = SIMDBatchNorm.backward(x: x, dy: dy, dx: y, shape: shape, layout: layout, gamma: p.gamma, eps: 1e-5, statistics: nil) }
        case .backwardInfer:
            run = { _ = SIMDBatchNorm.backward(x: x, dy: dy, dx: y, shape: shape, layout: layout, gamma: p.gamma, eps: 1e-5,
                                               statistics: (p.mean, p.variance)) }
        }
        return Workload(run: run, release: { Self.deallocateTensor(x); Self.deallocateTensor(y); Self.deallocateTensor(dy) },
                        x: UnsafeRawPointer(x), y: UnsafeMutableRawPointer(y), dy: UnsafeRawPointer(dy))
    }

    static func fused<S: StorageElement>(_: S.Type, _ mode: Mode, _ layout: Layout, _ shape: Shape, _ count: Int,
                                         threads: Int) -> Workload {
        let x = buffer(S.self, count, seed: 1), y = buffer(S.self, count, seed: 2), dy = buffer(S.self, count, seed: 3)
        let C = shape.channels, p = params(C)
        let f = UnsafeMutablePointer<Float>.allocate(capacity: 8 * C)
        for c in 0..<C {
            f[c] = p.gamma[c]; f[C + c] = p.beta[c]; f[2 * C + c] = p.mean[c]; f[3 * C + c] = p.variance[c]
            f[4 * C + c] = 0; f[5 * C + c] = 0; f[6 * C + c] = 0; f[7 * C + c] = 1
        }
        let update = RunningUpdate(mean: f + 6 * C, variance: f + 7 * C, batchWeight: 0.1, estimator: .unbiased, singleValue: .error)
        let run: () -> Void
        switch mode {
        case .training:
            run = { try? FusedBatchNorm.trainingForward(x: x, y: y, shape: shape, layout: layout, gamma: f, beta: f + C, eps: 1e-5,
                                                        savedMean: f + 4 * C, savedVariance: f + 5 * C, running: update, threads: threads) }
        case .inference:
            run = { FusedBatchNorm.inferenceForward(x: x, y: y, shape: shape, layout: layout, gamma: f, beta: f + C, mean: f + 2 * C,
                                                    variance: f + 3 * C, eps: 1e-5, threads: threads) }
        case .backwardInfer:
            run = { try? FusedBatchNorm.backward(x: x, dy: dy, dx: y, shape: shape, layout: layout, gamma: f, eps: 1e-5,
                                                 statistics: (UnsafePointer(f + 2 * C), UnsafePointer(f + 3 * C)), dGamma: f + 4 * C, dBeta: f + 5 * C,
                                                 threads: threads) }
        case .backward:
            run = { try? FusedBatchNorm.backward(x: x, dy: dy, dx: y, shape: shape, layout: layout, gamma: f, eps: 1e-5,
                                                 dGamma: f + 4 * C, dBeta: f + 5 * C, threads: threads) }
        }
        return Workload(run: run, release: { Self.deallocateTensor(x); Self.deallocateTensor(y); Self.deallocateTensor(dy); f.deallocate() },
                        x: UnsafeRawPointer(x), y: UnsafeMutableRawPointer(y), dy: UnsafeRawPointer(dy))
    }
}
