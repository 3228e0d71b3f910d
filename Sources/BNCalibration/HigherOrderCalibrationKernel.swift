import BNCore
import BNKernels

/// The calibration mutants of the higher-order derivatives (spec/SPEC.md §12, §5.5): the
/// closed forms (``HigherOrderClosedForm``) in T with two-pass statistics and one classic
/// mistake each. The golden suite's higher-order cases must catch every one of them and the
/// audit's diagnosis must name its cause (``Mutation/expectedCause``). The honest side is
/// ``HonestKernel`` (every statistics algorithm). These kernels implement only the
/// higher-order operations: their first-order cases are skipped.
public struct HigherOrderCalibrationKernel: ClosedFormHigherOrderKernel {
    public enum Mutation: String, CaseIterable, Sendable {
        /// μ and 1/√(σ² + ε) treated as constants after the first differentiation.
        case constantStatistics = "hod-constant-statistics"
        /// The mixed γ–x terms dropped.
        case missingGammaXCross = "hod-missing-gamma-x-cross"
        /// The derivative of (σ² + ε)^(−1/2) taken with the wrong sign.
        case rPrimeSign = "hod-r-prime-sign"

        /// The start of the cause the audit's diagnosis names for this bug (spec/AUDIT.md §5).
        public var expectedCause: String {
            switch self {
            case .constantStatistics: "higher derivatives treat the batch mean and inverse std as constants"
            case .missingGammaXCross: "higher derivatives miss the γ–x cross terms"
            case .rPrimeSign: "derivative of 1/√(σ² + ε) has the wrong sign"
            }
        }

    }

    public let mutation: Mutation
    public init(_ mutation: Mutation) { self.mutation = mutation }

    /// Every higher-order calibration mutant, in ``Mutation`` order.
    public static var all: [HigherOrderCalibrationKernel] { Mutation.allCases.map(HigherOrderCalibrationKernel.init) }

    public var name: String { "calibration/\(mutation.rawValue)" }
    public var role: KernelRole { .mutant(mutation.rawValue) }
    public var dtypes: Set<DType> { Set(DType.allCases) }

    public func loops<T: BinaryFloatingPoint>(_: T.Type, _ shape: Shape, _ layout: Layout, _ eps: Double) -> HigherOrderLoops<T> {
        let variation: HigherOrderClosedForm<T>.Variation
        switch mutation {
        case .constantStatistics: variation = .constantStatistics
        case .missingGammaXCross: variation = .missingGammaXCross
        case .rPrimeSign: variation = .rPrimeSign
        }
        return HigherOrderLoops(shape: shape, layout: layout, eps: T(eps), variation: variation,
                                statistics: HonestKernel(.twoPass).moments, sum: { $0.reduce(0, +) })
    }

    // MARK: first-order operations: not implemented (skipped)

    public func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
        throw UnsupportedOperation("train: a higher-order calibration kernel")
    }
    public func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                      mean: [Double], variance: [Double]) throws -> [Double] {
        throw UnsupportedOperation("infer: a higher-order calibration kernel")
    }
    public func backwardTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double) throws -> GradientOutput {
        throw UnsupportedOperation("backward-train: a higher-order calibration kernel")
    }
    public func backwardInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                              eps: Double, mean: [Double], variance: [Double]) throws -> GradientOutput {
        throw UnsupportedOperation("backward-infer: a higher-order calibration kernel")
    }
}
