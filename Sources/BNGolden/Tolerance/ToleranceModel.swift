import BNCore
import BNReference
import Foundation

/// The tolerance model of spec/SPEC.md §5 ("bnspec-tolerance-2"): a per-element error bound
/// that holds for every honest implementation — any statistics algorithm of the class of §5.1
/// (two-pass, updating/Welford, merge trees of (n, μ, M2), pivot-shifted one pass, with
/// compensated or wider accumulation, with or without gradual underflow) computing with unit
/// roundoff u (float32: 2⁻²⁴; float64: 2⁻⁵³), storing outputs in a format of unit roundoff u_s.
///
/// Statistics (per channel, ``ChannelData`` figures of the data):
/// - mean: δμ = u·(max((n + 2)·mean|x|, n·(mean|x − μ| + a)) + 2·max|x|)·(1 + nu) + (n + 4)·t;
/// - variance: δv = ((n + 5)·u·v + max(min(B₁, B₂), P))·(1 + nu) + 2·lg·δμ² + 2·max|x − μ|·t + 5t,
///   with the merge-tree terms B₁, B₂ and the pivot term P of §5.1;
/// - inverse std: relative ρ = 1/√(1 − δv/(v + ε)) − 1 + 3u (+∞ when δv ≥ v + ε);
/// - output: |δy| ≤ K·( |γ|·r·(δμ + u·(|x| + |μ|)) + |γ|·|x̂|·ρ + u·(|γ x̂| + |β| + |γ|·r·|μ|) ) + storage
///   (the last term: the folded form's shift β − μ·γ·r, rounded in any grouping),
/// with K = ``safety`` covering the constant number of roundings each term hides, and t the
/// compute format's smallest normal number (a flushed subnormal errs by less).
public struct ToleranceModel: Sendable {
    public static let name = "bnspec-tolerance-2"
    /// Multiplier for the constant-count roundings in each term.
    public static let safety = 2.0

    public var u: Double
    public var storage: DType
    /// The compute format's smallest normal number: the absolute error of a rounding in the
    /// subnormal range, or of a flush to zero (FTZ/DAZ arithmetic is honest, §5.1).
    public var tiny: Double

    public init(_ spec: CaseSpec) {
        self.init(computeRoundoff: spec.tolerance.computeRoundoff, storage: spec.dtype)
    }

    /// A model for arithmetic of unit roundoff `u` (2⁻²⁴ or 2⁻⁵³ — or coarser, for the
    /// diagnosis' precision evidence) storing in `storage`.
    public init(computeRoundoff u: Double, storage: DType) {
        self.u = u; self.storage = storage
        tiny = u < 0x1p-30 ? Double.leastNormalMagnitude : Double(Float.leastNormalMagnitude)
    }

    /// Error bounds of the batch statistics of one channel.
    public struct StatBounds: Sendable {
        public var mean: Double       // |δμ|
        public var variance: Double   // |δv| (biased)
        public init(mean: Double, variance: Double) { self.mean = mean; self.variance = variance }
    }

    /// The per-channel figures of the data that the statistics bounds depend on (spec §5.1).
    public struct ChannelData: Sendable {
        public var n: Int
        /// max|x|, mean|x|.
        public var maxAbs: Double, meanAbs: Double
        /// max|x − μ|, mean|x − μ|.
        public var maxDev: Double, meanAbsDev: Double
        /// max(|x_first − μ|, |x_last − μ|): the deviation of a customary pivot (the channel's
        /// first or last value in logical order, the same element in every layout).
        public var pivotDev: Double

        public init(n: Int, maxAbs: Double, meanAbs: Double, maxDev: Double, meanAbsDev: Double, pivotDev: Double) {
            self.n = n; self.maxAbs = maxAbs; self.meanAbs = meanAbs; self.maxDev = maxDev
            self.meanAbsDev = meanAbsDev; self.pivotDev = pivotDev
        }

        /// The figures of `values` (one channel, in logical order) about `mean`; NaN values are
        /// ignored (such a channel's outputs are NaN whatever the bound).
        public init(_ values: [Double], mean: Double) {
            var mx = 0.0, sa = 0.0, dv = 0.0, sd = 0.0, count = 0.0
            for x in values where !x.isNaN {
                mx = Swift.max(mx, abs(x)); sa += abs(x); dv = Swift.max(dv, abs(x - mean)); sd += abs(x - mean); count += 1
            }
            let n = Swift.max(count, 1)
            let ends = [values.first, values.last].compactMap { $0 }.filter { !$0.isNaN }.map { abs($0 - mean) }
            self.init(n: values.count, maxAbs: mx, meanAbs: sa / n, maxDev: dv, meanAbsDev: sd / n, pivotDev: ends.max() ?? 0)
        }
    }

    /// Bounds on the batch mean and biased variance that hold for every honest statistics
    /// algorithm (spec §5.1; derivations there, checked by `HonestStatisticsBoundTests`).
    public func statBounds(_ d: ChannelData, variance v: Double) -> StatBounds {
        let nn = Double(d.n), t = tiny, grow = 1 + nn * u
        // Mean: summation in any order, updating, merge trees: (n + 2)·u·mean|x| + 2u·max|x|;
        // pivot-shifted: n·u·(mean|x − μ| + a) + 2u·max|x|.
        let sums = (nn + 2) * d.meanAbs, pivotSums = nn * (d.meanAbsDev + d.pivotDev)
        let dm = u * (Swift.max(sums, pivotSums) + 2 * d.maxAbs) * grow + (nn + 4) * t
        // Variance: own roundings; merge trees (the smaller of B₁, B₂); the pivot's P; the
        // two-pass δμ² over a tree; flushed subnormals.
        let lg = Swift.max(1, log2(Swift.max(nn, 2))), a = d.pivotDev, sv = v.squareRoot()
        let mergeA = 2 * 2.0.squareRoot() * lg.squareRoot() * dm * sv
        let mergeB = (2.31 * nn * u * d.maxAbs + 8 * u * d.maxAbs * lg.squareRoot()) * grow * sv
        let pivot = (3 * nn + 4) * u * a * a + 2 * nn * u * a * d.meanAbsDev
        let own = (nn + 5) * u * v
        let dv = (own + Swift.max(Swift.min(mergeA, mergeB), pivot)) * grow + 2 * lg * dm * dm + 2 * d.maxDev * t + 5 * t
        return StatBounds(mean: dm, variance: dv)
    }

    /// Relative error bound of r = 1/√(v + ε).
    ///
    /// With δ = δv/(v + ε) < 1 the computed 1/√(v̂ + ε) lies within a factor 1/√(1 − δ) of the
    /// truth (exact, not first-order), plus 3u for the addition, square root and division.
    /// When δv reaches v + ε the computed variance may be 0 and r anything up to +Inf, so no
    /// finite bound exists: ρ = +Inf and the elements that depend on r are unresolvable in
    /// the compute format (spec §5.4).
    public func rho(_ b: StatBounds, variance v: Double, eps: Double) -> Double {
        let d = b.variance / (v + eps)
        return d >= 1 || !d.isFinite ? .infinity : (1 / (1 - d).squareRoot() - 1) + 3 * u
    }

    /// Bound on the error of x̂ = (x − μ)·r for one element (before γ).
    public func xhatError(x: Double, mean: Double, r: Double, xhat: Double, bounds b: StatBounds, rho: Double) -> Double {
        rho.isInfinite ? .infinity : r * (b.mean + u * (abs(x) + abs(mean))) + abs(xhat) * rho + u * abs(xhat)
    }

    /// Adds the output-storage rounding to a compute-precision bound: an answer a within τ of the
    /// exact value e, rounded to nearest in the storage format, is within
    /// |RNE(a) − a| + |a − e| ≤ u_s·(|e| + τ) + τ of it, plus half the format's smallest subnormal
    /// spacing in the subnormal range (2⁻²⁴ for float16, 2⁻¹³³ for bfloat16, counted whole).
    /// Rounding toward zero (truncation) errs by up to a whole ulp and is not honest.
    public func stored(_ tol: Double, reference: Double) -> Double {
        guard storage == .f16 || storage == .bf16 else { return tol }
        let quantum: Double = storage == .f16 ? 0x1p-24 : 0x1p-133
        return tol + storage.storageRoundoff * (abs(reference) + tol) + quantum
    }
}
