import BNCore
import BNGolden
import BNReference
import PropertyBased
import Testing

/// Laws 2, 3 and 4: invariances of batch normalization under permutation, shift and scale.
/// Shapes come from the generator; tensor values from SpecRandom seeded by a generated
/// integer, so a failing input is reproducible from the printed seed.
@Suite struct LawsOfInvariance {
    static let dims = Gen.int(in: 1...4)
    static let seeds = Gen.int(in: 0...1_000_000)

    static func sample(_ n: Int, _ c: Int, _ h: Int, _ seed: Int, offset: Double = 0) -> (Shape, [Double]) {
        let s = try! Shape(batch: n, channels: c, spatial: [h, 2])
        var r = SpecRandom(seed: UInt64(seed))
        return (s, (0..<s.elementCount).map { _ in offset + (1 + r.uniform()) * r.normal() })
    }

    static func close(_ a: [Double], _ b: [Double], rel: Double) -> Bool {
        let scale = max(1, a.map(abs).max() ?? 0)
        return zip(a, b).allSatisfy { abs($0 - $1) <= rel * scale }
    }

    /// Law 3 — shift invariance: BN(x + c_channel) = BN(x).
    @Test func shiftInvariance() async {
        await propertyCheck(count: Laws.count(200), input: Self.dims, Self.dims, Self.dims, Self.seeds) { n, c, h, seed in
            let (s, x) = Self.sample(n + 1, c, h, seed)
            var r = SpecRandom(seed: UInt64(seed) &+ 1)
            let shifts = (0..<c).map { _ in 100 * r.normal() }
            var shifted = x
            for ch in 0..<c {
                for seg in Layout.nchw.segments(channel: ch, shape: s) {
                    for k in 0..<seg.count { shifted[seg.offset + k] += shifts[ch] }
                }
            }
            let a = try Reference.trainingForward(x, shape: s, layout: .nchw, eps: 1e-3).y
            let b = try Reference.trainingForward(shifted, shape: s, layout: .nchw, eps: 1e-3).y
            // x + c is rounded once per element: error ≲ u·|c|/σ in x̂.
            #expect(Self.close(a, b, rel: 1e-11), "shape \(s) seed \(seed)")
        }
    }

    /// Law 4 — scale invariance: BN(a·x) with eps·a² equals BN(x); a < 0 flips x̂.
    @Test func scaleInvariance() async {
        await propertyCheck(count: Laws.count(200), input: Self.dims, Self.dims, Self.seeds, Gen.int(in: -20...20)) { n, c, seed, k in
            let (s, x) = Self.sample(n + 1, c, 3, seed)
            let a = Double(sign: k < 0 ? .minus : .plus, exponent: abs(k) % 7, significand: 1.5)
            let base = try Reference.trainingForward(x, shape: s, layout: .nchw, eps: 1e-3).y
            let scaled = try Reference.trainingForward(x.map { a * $0 }, shape: s, layout: .nchw, eps: 1e-3 * a * a).y
            #expect(Self.close(base.map { a < 0 ? -$0 : $0 }, scaled, rel: 1e-13), "a = \(a), shape \(s) seed \(seed)")
        }
    }

    /// Law 2 — permuting the batch permutes the output; the statistics do not change (bit for bit:
    /// the reference's sums are exact, so order cannot matter).
    @Test func batchPermutation() async {
        await propertyCheck(count: Laws.count(200), input: Self.dims, Self.dims, Self.seeds) { n, c, seed in
            let (s, x) = Self.sample(n + 1, c, 2, seed, offset: 1e6)
            let block = c * s.spatialSize
            let order = Array((0..<s.batch).reversed())
            let permuted = order.flatMap { b in x[(b * block)..<((b + 1) * block)] }
            let f = try Reference.trainingForward(x, shape: s, layout: .nchw, eps: 1e-5)
            let g = try Reference.trainingForward(permuted, shape: s, layout: .nchw, eps: 1e-5)
            #expect(f.mean == g.mean && f.variance == g.variance, "shape \(s) seed \(seed)")
            let back = (0..<s.batch).flatMap { b in g.y[(order.firstIndex(of: b)! * block)..<((order.firstIndex(of: b)! + 1) * block)] }
            #expect(back == f.y)
        }
    }
}
