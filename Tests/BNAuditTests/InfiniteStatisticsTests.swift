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

    /// A training step from running statistics holding NaN and ±Inf (stats-nonfinite: channel 0's
    /// mean NaN, 1's variance NaN, 2's variance +Inf, 3's mean −Inf): the update (1 − w)·r + w·b
    /// keeps each (the reference); rearranged as r − w·(r − b) (TensorFlow's assign_moving_average)
    /// an infinite r gives ∞ − ∞ = NaN. Both honest: NaN passes beside the infinity there; a NaN r
    /// must stay NaN, and a finite value (an update restarted from 0 and 1) fails everywhere.
    @Test(arguments: ["train.stats-nonfinite.4x8x3x3.NCHW.f32.pytorch.eps1e-05.m0.1",
                      "train.stats-nonfinite.12x8.NC.f16.pytorch.eps1e-05.m0.1",
                      "sync-train.stats-nonfinite.8x8x2x2.NHWC.f32.pytorch.eps1e-05.m0.1.p4+4"])
    func rearrangedRunningUpdateOfAnInfiniteStatisticIsHonest(id: String) throws {
        let c = try #require(try AuditSupport.cases(id).first)
        let rm = c.inputs["running_mean"]!.values, rv = c.inputs["running_var"]!.values
        let em = c.expected["running_mean"]!.values, ev = c.expected["running_var"]!.values
        #expect(rm[0].isNaN && rv[1].isNaN && rv[2] == .infinity && rm[3] == -.infinity)
        #expect(em[0].isNaN && ev[1].isNaN && ev[2] == .infinity && em[3] == -.infinity)
        func verdict(_ name: String, _ ch: Int, _ v: Double) -> CaseResult.Status {
            var out = c.expected.mapValues(\.values)
            out[name]![ch] = v
            return CaseJudge.judge(c, outputs: out, name: "rearranged").status
        }
        #expect(CaseJudge.judge(c, outputs: c.expected.mapValues(\.values), name: "reference").status == .passed)
        #expect(verdict("running_mean", 3, .nan) == .passed)
        #expect(verdict("running_var", 2, .nan) == .passed)
        #expect(verdict("running_mean", 3, .infinity) == .failed)
        #expect(verdict("running_var", 2, -.infinity) == .failed)
        #expect(verdict("running_mean", 0, 0) == .failed)
        #expect(verdict("running_mean", 0, .infinity) == .failed)
        #expect(verdict("running_var", 1, 1) == .failed)
        #expect(verdict("running_mean", 3, -1e30) == .failed)
        #expect(verdict("running_var", 2, 1) == .failed)
    }
}
