import BNCore
import BNKernels

/// The honest kernels also compute the higher-order derivatives (spec/SPEC.md §12) from the
/// closed forms (``HigherOrderClosedForm``) in T, with their own statistics algorithm and
/// summation: every one of them must pass every higher-order golden case.
extension HonestKernel: ClosedFormHigherOrderKernel {
    public func loops<T: BinaryFloatingPoint>(_: T.Type, _ shape: Shape, _ layout: Layout, _ eps: Double) -> HigherOrderLoops<T> {
        HigherOrderLoops(shape: shape, layout: layout, eps: T(eps), variation: .honest,
                         statistics: { self.moments($0) }, sum: { self.sum($0) })
    }
}
