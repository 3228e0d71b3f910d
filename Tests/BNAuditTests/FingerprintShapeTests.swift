import BNAudit
import BNGolden
import Foundation
import Testing

/// The fingerprint names an inference form or a variance algorithm only when the error has that
/// form's shape (spec/AUDIT.md §4; an outside red team's, 2026-12-05: a 12-bit rsqrt and an
/// unbiased normalisation were read as "folded", and under the rsqrt's error floor a one-pass
/// variance as "updating", a Welford one as "two_pass").
@Suite struct FingerprintShapeTests {
    /// The inference probe's data (x = 1e4 + N(0, 1), μ = 1e4 + 0.3, σ² = 1, γ = 1.7, β = 0.1,
    /// eps 1e-5, 64 × 4), y computed in float32 by `kernel(x, μ, s, β)`; the reference in Double.
    static func form(_ kernel: (Float, Float, Float, Float) -> Float) -> Fingerprint.Finding {
        var r = SpecRandom("test/inference-form")
        let C = 4, eps = 1e-5
        let x = (0..<(64 * C)).map { _ in Double(Float(1e4 + r.normal())) }
        let mu = Double(Float(1e4 + 0.3)), s = 1.7 / (1 + eps).squareRoot()
        let reference = x.map { ($0 - mu) * s + 0.1 }
        let y = x.map { Double(kernel(Float($0), Float(mu), Float(s), 0.1)) }
        return Fingerprint.inferenceForm(y: y, reference: reference, z: x.map { ($0 - mu) * s }, channels: C, muS: abs(mu * s),
                                         probe: .init(x: x, mean: mu, gamma: 1.7, beta: 0.1, variance: 1, eps: eps))
    }

    @Test func directAndFoldedAreNamed() {
        #expect(Self.form { x, m, s, b in (x - m) * s + b }.value == Fingerprint.accurateInferenceForm)
        let folded = Self.form { x, m, s, b in x * s + (b - m * s) }
        #expect(folded.value == "folded", "\(folded.evidence)")
        let fma = Self.form { x, m, s, b in (x * s).addingProduct(1, b - m * s) }
        #expect(fma.value == "folded", "\(fma.evidence)")
        // A fold in float64 rounded once is as accurate as the direct form: not named `direct` alone
        // (round G's float64 fold).
        let wide = Self.form { x, m, s, b in Float(Double(x) * Double(s) + (Double(b) - Double(m) * Double(s))) }
        #expect(wide.value == Fingerprint.accurateInferenceForm, "\(wide.evidence)")
    }

    /// A reciprocal square root good to 12 bits (relative error 2⁻¹²) and the unbiased variance
    /// (n/(n − 1) = 64/63) scale y − β: thousands of ulps, but growing with x − μ.
    @Test func scaleErrorsAreNotFolding() {
        for (name, k) in [("12-bit rsqrt", Float(1 + 0x1p-12)), ("unbiased", Float((63.0 / 64).squareRoot()))] {
            let f = Self.form { x, m, s, b in (x - m) * (s * k) + b }
            #expect(f.value == "undetermined" && f.evidence.contains("grows with x − μ"), "\(name): \(f.value) — \(f.evidence)")
            let both = Self.form { x, m, s, b in x * (s * k) + (b - m * (s * 1.0)) }
            #expect(both.value == "undetermined", "\(name), folded with the bias unscaled: \(both.evidence)")
        }
    }

    /// An error the same at every element of a channel — a mean one float32 ulp off, or a shift —
    /// is within folding's bound and flat in x − μ, but it lacks folding's rounding noise: not
    /// folding (an outside red team's constant mean error had been read as folded).
    @Test func aConstantErrorIsNotFolding() {
        let mean = Self.form { x, m, s, b in (x - m.nextUp) * s + b }
        #expect(mean.value == "undetermined" && mean.evidence.contains("same at every element"), "\(mean.value) — \(mean.evidence)")
        let shift = Self.form { x, m, s, b in (x - m) * s + (b + 1e-3) }
        #expect(shift.value == "undetermined" && shift.evidence.contains("same at every element"), "\(shift.value) — \(shift.evidence)")
        // Folded with that mean is still folded: the noise is there.
        let folded = Self.form { x, m, s, b in x * s + (b - m.nextUp * s) }
        #expect(folded.value == "folded", "\(folded.evidence)")
    }

    /// A fold evaluated with one FMA, y = fma(x, s, β − μ·s) (PyTorch's CPU inference), has an
    /// error constant within a channel too — but every element is reproduced: folded. The same
    /// FMA fold with the mean one ulp off is not reproduced: undetermined.
    @Test func aFoldWithAnFMAIsFolded() {
        for bias in [{ (m: Float, s: Float, b: Float) in b - m * s }, { (m: Float, s: Float, b: Float) in b.addingProduct(-m, s) }] {
            let f = Self.form { x, m, s, b in bias(m, s, b).addingProduct(x, s) }
            #expect(f.value == "folded" && f.evidence.contains("fma(x, s, c)"), "\(f.value) — \(f.evidence)")
            let off = Self.form { x, m, s, b in bias(m.nextUp, s, b).addingProduct(x, s) }
            #expect(off.value == "undetermined" && off.evidence.contains("same at every element"), "\(off.value) — \(off.evidence)")
        }
    }

    /// Noise well above folding's rounding (10⁻² in y) is not folding.
    @Test func noiseBeyondFoldingsRoundingIsNotFolding() {
        var r = SpecRandom("test/noise")
        let f = Self.form { x, m, s, b in (x - m) * s + b + Float(0.01 * r.normal()) }
        #expect(f.value == "undetermined" && f.evidence.contains("exceeds folding's rounding"), "\(f.evidence)")
    }

    static let kappas: [Double] = [4, 4, 16, 16, 64, 64, 256, 256]
    static func points(floor: Double, growth: (Double) -> Double) -> [VarianceGrowth.Point] {
        kappas.enumerated().map { i, k in VarianceGrowth.Point(kappa: k, error: floor * (i % 2 == 0 ? 1 : 1.3) + growth(k) * (i % 2 == 0 ? 1.4 : 0.8)) }
    }

    /// Under a floor of 5·10⁻⁴ (a 12-bit rsqrt) neither a one-pass nor a Welford variance is read;
    /// without it each is; an honest two-pass variance's flat errors of ~10⁻⁶ are not a floor.
    @Test func aKappaIndependentFloorLeavesTheAlgorithmUndetermined() {
        let n = 1024, u = 0x1p-24
        let onePass = { (k: Double) in 32 * u * k * k }, welford = { (k: Double) in 32 * u * k }
        for (name, g) in [("one-pass", onePass), ("Welford", welford)] {
            let floored = VarianceGrowth.fitAboveFloor(Self.points(floor: 5e-4, growth: g), values: n, roundoff: u)
            #expect(floored.algorithm == "undetermined" && floored.evidence.contains("κ-independent error"), "\(name): \(floored.algorithm) — \(floored.evidence)")
        }
        #expect(VarianceGrowth.fitAboveFloor(Self.points(floor: 1e-9, growth: onePass), values: n, roundoff: u).algorithm == "one_pass")
        #expect(VarianceGrowth.fitAboveFloor(Self.points(floor: 1e-9, growth: welford), values: n, roundoff: u).algorithm == "updating")
        let flat = VarianceGrowth.fitAboveFloor(Self.points(floor: 1e-6) { _ in 0 }, values: n, roundoff: u)
        #expect(flat.algorithm == "two_pass" && !flat.evidence.contains("κ-independent"), "\(flat.evidence)")
    }

    /// A κ² growth whose eight errors are all of one sign is a bias (the variance about a mean
    /// off by μ/(n − 1): an outside red team's, read "one_pass"); mixed signs stay one-pass.
    @Test func oneSignedGrowthIsABias() {
        let u = 0x1p-24
        let grow = { (sign: (Int) -> Double) in
            Self.kappas.enumerated().map { i, k in VarianceGrowth.Point(kappa: k, error: 32 * u * k * k * (i % 2 == 0 ? 1.4 : 0.8), sign: sign(i)) }
        }
        let biased = VarianceGrowth.fitAboveFloor(grow { _ in 1 }, values: 1024, roundoff: u)
        #expect(biased.algorithm == "biased" && biased.evidence.contains("too large in all 8 channels") && !biased.evidence.contains("either side"), "\(biased.evidence)")
        #expect(VarianceGrowth.fitAboveFloor(grow { $0 % 3 == 0 ? -1 : 1 }, values: 1024, roundoff: u).algorithm == "one_pass")
    }
}
