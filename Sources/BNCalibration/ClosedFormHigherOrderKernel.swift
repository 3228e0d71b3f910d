import BNCore
import BNKernels

/// A kernel whose higher-order operations are ``HigherOrderLoops`` in float32 or float64 (the
/// case's dtype) over the closed forms: the honest kernels and the calibration mutants differ
/// only in the loops they make (variation, statistics algorithm, summation).
public protocol ClosedFormHigherOrderKernel: HigherOrderKernel {
    /// The loops in T for a case.
    func loops<T: BinaryFloatingPoint>(_: T.Type, _ shape: Shape, _ layout: Layout, _ eps: Double) -> HigherOrderLoops<T>
}

extension ClosedFormHigherOrderKernel {
    public func hvpTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                         direction v: DerivativeDirection) throws -> HessianVectorProduct {
        dtype == .f64 ? loops(Double.self, shape, layout, eps).hvpTrain(x, dy: dy, gamma: gamma, v)
                      : loops(Float.self, shape, layout, eps).hvpTrain(x, dy: dy, gamma: gamma, v)
    }

    public func hvpInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                         mean: [Double], variance: [Double], direction v: DerivativeDirection) throws -> HessianVectorProduct {
        dtype == .f64 ? loops(Double.self, shape, layout, eps).hvpInfer(dy: dy, variance: variance, v)
                      : loops(Float.self, shape, layout, eps).hvpInfer(dy: dy, variance: variance, v)
    }

    public func d2Train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                        _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double] {
        dtype == .f64 ? loops(Double.self, shape, layout, eps).directional(x, gamma: gamma, v, w, third: false)
                      : loops(Float.self, shape, layout, eps).directional(x, gamma: gamma, v, w, third: false)
    }

    public func d3Train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                        _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double] {
        dtype == .f64 ? loops(Double.self, shape, layout, eps).directional(x, gamma: gamma, v, w, third: true)
                      : loops(Float.self, shape, layout, eps).directional(x, gamma: gamma, v, w, third: true)
    }
}
