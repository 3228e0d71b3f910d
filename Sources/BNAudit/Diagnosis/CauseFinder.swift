import BNCalibration
import BNCore
import BNGolden

/// Names the likely cause of a failure by matching known bug signatures: the outputs of
/// each calibration mutant (``BNCalibration/CalibrationKernel/Mutation``) are computed on the same case; a
/// mutant explains the failure when the returned outputs are, element by element, within
/// tolerance of the mutant's or at least four times closer to them than to the
/// reference. Patterns that no formula reproduces exactly are recognised from the data
/// (non-finite values replaced; errors only on large offsets). spec/AUDIT.md §5.
public enum CauseFinder {
    public static let descriptions: [CalibrationKernel.Mutation: String] = [
        .onePassVariance: "variance computed in one pass (E[x²] − E[x]²) in float32",
        .epsOutsideSqrt: "eps added outside the square root",
        .unbiasedNormalization: "normalises with the unbiased variance (n − 1)",
        .momentumSwapped: "momentum convention inverted",
        .wrongRunningEstimator: "running variance uses the other estimator (biased vs unbiased)",
        .runningNotUpdated: "running statistics not updated",
        .perSampleStatistics: "statistics per sample instead of per channel",
        .gammaBetaSwapped: "γ and β swapped",
        .channelsLastOffByOne: "channels-last indexing off by one channel",
        .backwardMissingMeanTerm: "backward misses the −mean(dy) term",
        .backwardMissingXhatTerm: "backward misses the −x̂·mean(dy·x̂) term",
        .inferenceUsesBatchStatistics: "inference uses batch statistics instead of the running statistics",
        .fp16Accumulation: "sum accumulated in float16",
        .nanToZero: "NaN turned into 0",
    ]

    /// `budget`: the case's tolerance budget when the caller has it.
    public static func cause(_ c: GoldenStore.LoadedCase, got: [String: [Double]], budget given: ToleranceBudget? = nil) -> String? {
        guard let budget = try? given ?? ToleranceBudget(c) else { return nil }
        for m in CalibrationKernel.Mutation.allCases where descriptions[m] != nil {
            guard let mut = try? CaseJudge.run(c, CalibrationKernel(m)) else { continue }
            var explains = true, differs = false
            for (name, g) in got {
                guard let mv = mut[name], let ref = c.expected[name]?.values, let tol = budget[output: name],
                      mv.count == g.count, ref.count == g.count else { continue }
                for i in g.indices {
                    let a = g[i], b = mv[i], e = ref[i]
                    if a.isNaN || b.isNaN || e.isNaN {
                        if a.isNaN != b.isNaN { explains = false; break }
                        if a.isNaN != e.isNaN { differs = true }
                        continue
                    }
                    let dm = abs(a - b), dr = abs(a - e)
                    if dr > tol[i] { differs = true }
                    if !(dm <= tol[i] || dm * 4 <= dr) { explains = false; break }
                }
                if !explains { break }
            }
            if explains && differs { return descriptions[m] }
        }
        // Data patterns.
        for (name, g) in got {
            guard let ref = c.expected[name]?.values, ref.count == g.count else { continue }
            let lost = zip(g, ref).filter { $1.isNaN && !$0.isNaN }
            if !lost.isEmpty {
                return lost.allSatisfy { $0.0 == 0 } ? descriptions[.nanToZero]! : "non-finite input values replaced (NaN or Inf turned into a number)"
            }
        }
        let d = c.spec.data
        if d.hasPrefix("offset") || d == "near-constant" || d.hasPrefix("huge") || d == "fp16-probe" || d.hasPrefix("nist") {
            return "statistics lose precision on data with a large offset (one-pass E[x²] − E[x]² or low-precision accumulation)"
        }
        switch c.spec.dtype {
        case .f16, .bf16: return "statistics, parameters or arithmetic kept in the 16-bit storage format instead of float32"
        case .f64: return "float64 results less accurate than a float64 algorithm allows (float32-grade or one-pass arithmetic)"
        case .f32: return nil
        }
    }
}
