import BNAudit
import Foundation
import Testing

/// The fingerprint's variance-algorithm probe (spec/AUDIT.md §4) on y computed here in float32,
/// channel by channel, from the probe's own x: each statistic by this file's two-pass or Welford
/// loop, y in the direct form (x − μ)·s or folded, x·s + c (as TensorFlow's batch_normalization
/// and ONNX Runtime give it). The algorithm is read from how the error grows with κ, whatever
/// the form of y.
@Suite struct VarianceProbeTests {
    static let eps: Float = 1e-5

    /// Mean and biased variance of one channel in float32: two passes, or Welford's update.
    static func moments(_ x: [Float], welford: Bool) -> (mean: Float, variance: Float) {
        if welford {
            var m: Float = 0, m2: Float = 0
            for (k, v) in x.enumerated() { let d = v - m; m += d / Float(k + 1); m2 += d * (v - m) }
            return (m, m2 / Float(x.count))
        }
        let m = x.reduce(0, +) / Float(x.count)
        return (m, x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Float(x.count))
    }

    /// The probe's y (γ = 1, β = 0) from `moments`, direct or folded.
    static func y(welford: Bool, folded: Bool) -> (x: [Double], y: [Double]) {
        let x = Fingerprint.varianceProbeInput(), n = Fingerprint.varianceProbeValues, C = Fingerprint.varianceProbeKappas.count
        var y = [Double](repeating: 0, count: x.count)
        for c in 0..<C {
            let xs = (0..<n).map { Float(x[$0 * C + c]) }
            let (m, v) = moments(xs, welford: welford)
            let s = 1 / (v + eps).squareRoot(), shift = -m * s
            for i in 0..<n { y[i * C + c] = Double(folded ? xs[i] * s + shift : (xs[i] - m) * s) }
        }
        return (x, y)
    }

    @Test(arguments: [(false, false, "two_pass"), (false, true, "two_pass"), (true, false, "updating"), (true, true, "updating")])
    func theAlgorithmIsReadInEitherForm(welford: Bool, folded: Bool, expected: String) throws {
        let (x, y) = Self.y(welford: welford, folded: folded)
        let (growth, evidence) = try Fingerprint.varianceGrowth(x: x, y: y, eps: Double(Self.eps))
        #expect(growth.algorithm == expected, "\(evidence)")
        // A folded y's slope is blurred by its rounding (u·κ per element): the high-κ channels are read from the exact scale.
        #expect(evidence.contains("folded y = x·s + c") == folded, "\(evidence)")
        #expect(!evidence.contains("not measured"), "\(evidence)")
    }

    /// The scale of a folded channel is found exactly, with either rounding (two, or one FMA);
    /// y in the direct form is no fold.
    @Test func foldedScaleIsExact() {
        let xs = (0..<1024).map { Float(1024 + 0.001 * Double(($0 * 7919) % 2003) - 1) }
        let s: Float = 0.987654, c = -1024 * s
        for fma in [false, true] {
            let y = xs.map { Double(fma ? c.addingProduct($0, s) : $0 * s + c) }
            let a = s * (1 + 3e-6)   // a least-squares slope some 50 ulps off
            #expect(Fingerprint.foldedScale(x: xs.map(Double.init), y: y, near: Double(a), span: 64) == s)
        }
        // (A mean that is not a power of two: with μ = 1024, −μ·s is exact and the FMA fold is the direct form.)
        let m = Float(1023.37), direct = xs.map { Double(($0 - m) * s) }
        #expect(Fingerprint.foldedScale(x: xs.map(Double.init), y: direct, near: Double(s), span: 64) == nil)
    }
}
