import BNAudit
import BNCore
import BNGolden
import Testing

/// The inference backward with a given mean of −Inf (stats-nonfinite, channel 3): dγ = r·Σdy·(x − μ)
/// summed term by term is NaN (infinite terms of both signs), the reference's value; rearranged as
/// r·(Σdy·x − μ·Σdy) it is the infinity of −μ·Σdy, which Keras gives. Both are honest: that infinity
/// passes beside NaN, the other infinity and a finite dγ fail (Keras had failed 9 cases on it).
@Suite struct InfiniteStatisticsTests {
    @Test(arguments: ["backward-infer.stats-nonfinite.4x8x3x3.NCHW.f32.pytorch.eps1e-05.m0.1",
                      "backward-infer.stats-nonfinite.12x8.NC.bf16.pytorch.eps1e-05.m0.1"])
    func rearrangedDGammaOfAnInfiniteMeanIsHonest(id: String) throws {
        let c = try #require(try AuditSupport.cases(id).first)
        let mean = c.inputs["mean"]!.values, dy = c.inputs["dy"]!.values, s = try c.spec.shapeValue()
        #expect(mean[3] == -.infinity && c.expected["dgamma"]!.values[3].isNaN)
        let sumDy = c.spec.layout.segments(channel: 3, shape: s).flatMap { g in (0..<g.count).map { dy[g.offset + $0 * g.stride] } }
            .reduce(0, +)
        let rearranged = -mean[3] * sumDy
        #expect(rearranged.isInfinite)
        func verdict(_ dg3: Double) -> CaseResult.Status {
            var out = c.expected.mapValues(\.values)
            out["dgamma"]![3] = dg3
            return CaseJudge.judge(c, outputs: out, name: "rearranged").status
        }
        #expect(verdict(.nan) == .passed)
        #expect(verdict(rearranged) == .passed)
        #expect(verdict(-rearranged) == .failed)
        #expect(verdict(0) == .failed)
    }
}
