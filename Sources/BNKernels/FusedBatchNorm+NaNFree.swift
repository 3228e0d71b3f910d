// When the output passes may skip their NaN test (CBNKernels `nan_free`).
//
// Every output of the fused kernels is rounded to float and then has its NaNs replaced by
// the canonical quiet NaN (CBNKernels `narrow`: a compare and a blend per 8 outputs, a
// third of the output arithmetic of training). For a channel whose outputs provably
// cannot be NaN that replacement is the identity, and the passes skip it: the bits are
// the same, only the instruction count differs (tools/bounds.sh: the instruction mix of
// both forms).

/// Whether a channel's outputs provably cannot be NaN, from the sums its statistics pass
/// already computed and its output coefficients.
///
/// **Inputs finite.** With u = x − pivot widened to Double, the pass sums Σu² (every
/// term ≥ 0) and, for backward, Σd (d = dy masked to +0 where the mask is ≤ 0, the same
/// d the gradient pass uses). A sum with a ±∞ or NaN term is ±∞ or NaN (∞ absorbs every
/// finite term; only ∞ − ∞ gives NaN), so a finite Σu² means every x of the channel is
/// finite (and the pivot too), and a finite Σd every d. A sum that overflows only makes
/// the answer "no", never a wrong "yes".
///
/// **Arithmetic finite.** With x finite (|x| < 2¹²⁸) and |mean| ≤ 2¹⁰⁰⁰, x − mean is
/// finite. An FMA of finite operands is its exact, finite value rounded: finite or ±∞,
/// never NaN. Training: y = fma(x − mean, scale, shift) with finite scale and shift.
/// Backward: dx = fma(k, x − mean, t), t = fma(a, d, b) finite or ±∞, and a finite
/// product plus ±∞ is ±∞. ReLU selects +0 or the value, and double → float rounding of a
/// non-NaN is not NaN. So no output is NaN.
///
/// Inference has no statistics pass, so it cannot know its inputs are finite: its
/// outputs are always tested.
package enum NaNFree {
    /// Training forward: y = fma(x − mean, scale, shift).
    @inline(__always)
    package static func affine(sumOfSquares q: Double, mean: Double, scale: Double, shift: Double) -> Bool {
        q.isFinite && finiteMean(mean) && scale.isFinite && shift.isFinite
    }

    /// Backward: dx = fma(k, x − mean, fma(a, d, b)); `sumOfGradients` is Σd.
    @inline(__always)
    package static func gradient(sumOfSquares q: Double, sumOfGradients g: Double, mean: Double, a: Double, b: Double, k: Double) -> Bool {
        q.isFinite && g.isFinite && finiteMean(mean) && a.isFinite && b.isFinite && k.isFinite
    }

    @inline(__always) package static func finiteMean(_ m: Double) -> Bool { m.isFinite && abs(m) <= 0x1p1000 }
}
