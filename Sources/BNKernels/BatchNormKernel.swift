import BNCore

/// Outputs of a training step: forward with batch statistics plus the running update.
public struct TrainingOutput: Sendable {
    public var y: [Double]
    public var batchMean: [Double]
    /// Biased batch variance (what the step normalised with).
    public var batchVariance: [Double]
    public var runningMean: [Double]
    public var runningVariance: [Double]
    public init(y: [Double], batchMean: [Double], batchVariance: [Double], runningMean: [Double], runningVariance: [Double]) {
        self.y = y; self.batchMean = batchMean; self.batchVariance = batchVariance
        self.runningMean = runningMean; self.runningVariance = runningVariance
    }
}

public struct GradientOutput: Sendable {
    public var dx: [Double], dGamma: [Double], dBeta: [Double]
    public init(dx: [Double], dGamma: [Double], dBeta: [Double]) { self.dx = dx; self.dGamma = dGamma; self.dBeta = dBeta }
}

/// Whether a kernel is an implementation under test or a calibration mutant that
/// the tolerance model must catch.
public enum KernelRole: Sendable, Equatable {
    case implementation
    /// An honest calibration kernel: must pass every case.
    case honestCalibration
    /// A deliberately wrong kernel: must fail at least one case. The text names the bug.
    case mutant(String)
}

/// The interface every BN implementation that `bnspec verify` runs provides.
///
/// Arrays are passed as Double holding values already representable in the case's
/// storage type (widening is exact); a kernel converts them to its compute type,
/// computes, and returns its results widened back. Parameters follow the case's
/// layout conventions (per-channel arrays of length C).
public protocol BatchNormKernel: Sendable {
    var name: String { get }
    var role: KernelRole { get }
    /// Storage types the kernel handles.
    var dtypes: Set<DType> { get }

    func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
               runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput
    func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
               mean: [Double], variance: [Double]) throws -> [Double]
    func backwardTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                       eps: Double) throws -> GradientOutput
    func backwardInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                       eps: Double, mean: [Double], variance: [Double]) throws -> GradientOutput
}

/// A kernel that also runs synchronized BN (spec/SPEC.md §11): the batch split across the ranks
/// of `partition` (each rank's block of samples along N), statistics exchanged between them.
/// Arrays are the whole batch (the ranks' tensors concatenated in rank order), as for
/// ``BatchNormKernel``. `bnspec verify` runs the synchronized golden cases on kernels that
/// conform and answer ``runsSynchronized``; the others skip them.
public protocol SynchronizedBatchNormKernel: BatchNormKernel {
    /// Whether this kernel runs the synchronized operations (a calibration kernel whose mutation
    /// is a single-device bug does not).
    var runsSynchronized: Bool { get }
    /// A synchronized training step: y of the whole batch, the global batch statistics and the
    /// running statistics every rank holds afterwards.
    func syncTrain(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition, gamma: [Double],
                   beta: [Double], eps: Double, runningMean: [Double], runningVariance: [Double], step: Int,
                   rule: RunningUpdateRule) throws -> TrainingOutput
    /// A synchronized training backward: dx of the whole batch; dγ and dβ as K rows of C values in
    /// rank order (`.local`, flattened) or one row (`.global`).
    func syncBackward(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, partition: BatchPartition,
                      reduction: GradientReduction, gamma: [Double], eps: Double) throws -> GradientOutput
}

/// Thrown by a kernel for an operation it does not implement: the case is skipped, not failed
/// (`bnspec verify`, the in-process audit).
public struct UnsupportedOperation: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A kernel that also computes the higher-order derivatives of spec/SPEC.md §12 (the `hvp-train`,
/// `hvp-infer`, `d2-train` and `d3-train` cases); `bnspec verify` skips those cases for a kernel
/// that is not one. Arrays as in ``BatchNormKernel``; a direction's x-part is in the case's
/// storage dtype and layout, its γ and β parts per channel.
public protocol HigherOrderKernel: BatchNormKernel {
    /// H·v of L = ⟨dy, y⟩ in (x, γ, β) along v, batch statistics functions of x (spec §12.3).
    func hvpTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                  direction v: DerivativeDirection) throws -> HessianVectorProduct
    /// H·v of L = ⟨dy, y⟩ along v with the given statistics (spec §12.5).
    func hvpInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                  mean: [Double], variance: [Double], direction v: DerivativeDirection) throws -> HessianVectorProduct
    /// D²y[v, w], training mode (spec §12.2).
    func d2Train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                 _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double]
    /// D³y[v, v, w], training mode (spec §12.2).
    func d3Train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                 _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double]
}
