import BNCore
import BNReference

/// The tolerance model of spec/SPEC.md §5 ("bnspec-tolerance-1"): a per-element
/// error bound for an implementation that computes in unit roundoff u (float32:
/// 2⁻²⁴; float64: 2⁻⁵³) and stores outputs in a format of unit roundoff u_s.
///
/// It is a forward-error bound built from the problem's condition and the
/// worst-case accumulation error of an honest algorithm:
/// - mean: |δμ| ≤ n·u·max|x| (recursive summation in any order, Wilkinson), 0 for
///   exact-statistics data;
/// - variance (two-pass): |δv| ≤ (n + 2)·u·v + δμ² + 4·tiny;
/// - inverse std: relative ρ = δv/(2(v + eps)) + 3u;
/// - output: |δy| ≤ K·( |γ|·r·(δμ + u·(|x| + |μ|)) + |γ|·|x̂|·ρ + u·(|γ x̂| + |β|) ) + storage,
/// with K = ``safety`` covering the constant number of roundings each term hides.
public struct ToleranceModel: Sendable {
    public static let name = "bnspec-tolerance-1"
    /// Multiplier for the constant-count roundings in each term.
    public static let safety = 2.0

    public var u: Double
    public var storage: DType
    public var tiny: Double
    public var exactStatistics: Bool

    public init(_ spec: CaseSpec) {
        u = spec.tolerance.computeRoundoff
        storage = spec.dtype
        tiny = spec.dtype.computeTiny
        exactStatistics = spec.tolerance.exactStatistics
    }

    /// Error bounds of the batch statistics of one channel.
    public struct StatBounds: Sendable {
        public var mean: Double       // |δμ|
        public var variance: Double   // |δv| (biased)
    }

    public func statBounds(n: Int, maxAbs: Double, variance v: Double) -> StatBounds {
        let nn = Double(n)
        let dm = exactStatistics ? 0 : nn * u * maxAbs + nn * tiny
        let dv = (exactStatistics ? 2 * u * v : (nn + 2) * u * v) + dm * dm + 4 * tiny
        return StatBounds(mean: dm, variance: dv)
    }

    /// Relative error bound of r = 1/sqrt(v + eps).
    ///
    /// The bound is first-order in δv/(v + eps); when δv reaches v + eps itself the
    /// computed variance may be 0 (or twice the truth) and r anything from r/√2 to
    /// +Inf, so no finite bound on the outputs exists: ρ is +Inf and the elements that
    /// depend on r are unresolvable in the compute format (spec §5.4).
    public func rho(_ b: StatBounds, variance v: Double, eps: Double) -> Double {
        b.variance >= v + eps ? .infinity : b.variance / (2 * (v + eps)) + 3 * u
    }

    /// Bound on the error of x̂ = (x − μ)·r for one element (before γ).
    public func xhatError(x: Double, mean: Double, r: Double, xhat: Double, bounds b: StatBounds, rho: Double) -> Double {
        rho.isInfinite ? .infinity : r * (b.mean + u * (abs(x) + abs(mean))) + abs(xhat) * rho + u * abs(xhat)
    }

    /// Adds the output-storage rounding to a compute-precision bound.
    public func stored(_ tol: Double, reference: Double) -> Double {
        guard storage == .f16 || storage == .bf16 else { return tol }
        // One rounding to the storage format: ≤ u_s·|y| (doubled for the rounding of a
        // value already off by tol), plus the format's subnormal quantum.
        let quantum: Double = storage == .f16 ? 0x1p-24 : Double(Float.leastNonzeroMagnitude)
        return tol + 2 * storage.storageRoundoff * abs(reference) + quantum
    }
}
