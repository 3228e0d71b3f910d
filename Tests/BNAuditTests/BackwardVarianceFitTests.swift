import BNAudit
import BNCore
import BNGolden
import Testing

/// `Fits.backwardVariancePoints`: the variance a training backward's dx was normalised with,
/// read off its scale, and offered to the audit's one-pass attribution only when that variance
/// alone explains every output (spec/AUDIT.md §5). The gradients are computed here in Double from
/// the backward formula, with the batch mean and a chosen variance v′ or mean μ′.
@Suite struct BackwardVarianceFitTests {
    static let ids = ["backward-train.normal.16x10.NC.f32.pytorch.eps1e-05.m0.1",
                      "sync-backward.normal.8x3x2x2.NCHW.f32.pytorch.eps1e-05.m0.1.p2+2+2+2.global"]

    /// dx, dγ, dβ of the training backward normalised with (μ_c + shift·σ_c, v_c·(1 + δ)).
    static func gradients(_ p: DiagnosisProblem, delta: Double, shift: Double) -> [String: [Double]] {
        let x = p.input("x"), dy = p.input("dy")
        var dx = [Double](repeating: 0, count: x.count), dg: [Double] = [], db: [Double] = []
        for c in 0..<p.channels {
            let idx = p.indices(c), n = Double(idx.count)
            let mu = idx.reduce(0) { $0 + x[$1] } / n
            let v = idx.reduce(0) { $0 + (x[$1] - mu) * (x[$1] - mu) } / n
            let m = mu + shift * v.squareRoot(), r = 1 / (v * (1 + delta) + p.eps).squareRoot()
            let sdy = idx.reduce(0) { $0 + dy[$1] }, sdyx = idx.reduce(0) { $0 + dy[$1] * (x[$1] - m) * r }
            for i in idx { dx[i] = p.gamma[c] * r * (dy[i] - sdy / n - (x[i] - m) * r * sdyx / n) }
            dg.append(sdyx); db.append(sdy)
        }
        return ["dx": dx, "dgamma": dg, "dbeta": db]
    }

    static func problem(_ id: String, delta: Double, shift: Double) throws -> DiagnosisProblem {
        let c = try #require(try AuditSupport.cases(id).first { $0.spec.id == id }, "golden case \(id) missing: run bnspec generate")
        let b = try ToleranceBudget(c)
        let reference = try CaseJudge.diagnosisProblem(c, got: [:], budget: b)
        return try CaseJudge.diagnosisProblem(c, got: gradients(reference, delta: delta, shift: shift), budget: b)
    }

    @Test(arguments: ids)
    func theVarianceDxWasNormalisedWithIsReadOffItsScale(id: String) throws {
        for delta in [0.25, -0.1, 3.0] {
            let pts = Fits.backwardVariancePoints(try Self.problem(id, delta: delta, shift: 0))
            #expect(!pts.isEmpty, "\(id): v′ = v·(1 + \(delta)) not recognised")
            for pt in pts { #expect(abs(pt.error - abs(delta)) <= 1e-6 * abs(delta), "\(id): fitted \(pt.error), made \(abs(delta))") }
        }
        // The exact backward: v′ = v to rounding.
        let exact = Fits.backwardVariancePoints(try Self.problem(id, delta: 0, shift: 0))
        #expect(!exact.isEmpty && exact.allSatisfy { $0.error <= 1e-9 }, "\(id): \(exact.map(\.error))")
    }

    /// A wrong mean (μ + σ/2) with a wrong variance is not a wrong variance alone: no points.
    @Test(arguments: ids)
    func aWrongMeanIsNotCalledAWrongVariance(id: String) throws {
        #expect(Fits.backwardVariancePoints(try Self.problem(id, delta: 0.25, shift: 0.5)).isEmpty)
    }
}
