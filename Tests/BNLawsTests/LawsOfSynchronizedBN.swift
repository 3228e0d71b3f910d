import BNCore
import BNGolden
import BNReference
import PropertyBased
import Testing

/// Laws 21, 22 and 23: synchronized BN (spec §11) — any partition of the batch gives BN of
/// the concatenation; the order of the ranks and empty ranks change nothing.
@Suite struct LawsOfSynchronizedBN {
    /// A random partition of `batch` samples over 1…8 ranks (empty ranks and one-sample
    /// ranks included), from a seed.
    static func partition(batch: Int, seed: Int) -> BatchPartition {
        var r = SpecRandom("law-sync/partition/\(seed)")
        let K = 1 + r.int(below: 8)
        let cuts = (0..<(K - 1)).map { _ in r.int(below: batch + 1) }.sorted()
        let bounds = [0] + cuts + [batch]
        return try! BatchPartition(counts: (0..<K).map { bounds[$0 + 1] - bounds[$0] })
    }

    /// The law's tensors, parameters and a random partition of its batch.
    static func draw(_ input: LawInput, _ pseed: Int)
        -> (s: Shape, x: [Double], dy: [Double], g: [Double], b: [Double], p: BatchPartition) {
        let (g, b) = input.parameters()
        return (input.shape, input.x(), input.dy(), g, b, partition(batch: input.batch, seed: pseed))
    }

    /// Rank k's tensor gathered element by element through the layout's index map — an
    /// independent check of ``BatchPartition/split(_:shape:)``.
    static func gather(_ x: [Double], _ input: LawInput, _ p: BatchPartition, rank k: Int) -> [Double] {
        let s = input.shape, sk = p.shape(rank: k, of: s)
        var out = [Double](repeating: 0, count: sk.elementCount)
        for n in 0..<sk.batch {
            for c in 0..<s.channels {
                for j in 0..<s.spatialSize {
                    out[input.layout.index(n: n, c: c, s: j, shape: sk)] = x[input.layout.index(n: p.offsets[k] + n, c: c, s: j, shape: s)]
                }
            }
        }
        return out
    }

    /// Law 21 — synchronized BN over any partition (uneven, one-sample and empty ranks)
    /// equals single-device BN of the concatenation: y, statistics, running update, dx and
    /// global dγ/dβ bit for bit (the definition, §11.2); each rank's moments are those of its
    /// own samples; the honest merge of the ranks' rounded (n, μ, M2) is within
    /// ``ChannelMoments/mergeBound(_:merged:)`` of the global statistics; the local dγ/dβ rows
    /// are each rank's own sums and add up to the global ones.
    @Test func synchronizedEqualsSingleDeviceOfTheConcatenation() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen(families: Laws.families, minBatchValues: 1),
                            Gen.int(in: 0...1_000_000), pick(["pytorch", "keras", "flax"])) { input, pseed, profileName in
            let (s, x, dy, g, b, p) = Self.draw(input, pseed)
            let profile = try ConventionProfile.named(profileName)
            let rule = try RunningUpdateRule(profile: profile)
            let running = RunningStatistics(mean: b, variance: g.map { $0 * $0 })
            let what = "law 21: \(input) partition \(p) \(profileName)"
            if s.perChannelCount == 1 && rule.singleValue == .error {
                // One value per channel *globally*: the profile's policy, whatever the split.
                #expect(throws: BNError.singleValuePerChannel(profile: profileName), "\(what)") {
                    try Reference.synchronizedTrainingStep(x, shape: s, layout: input.layout, partition: p, gamma: g, beta: b,
                                                           eps: input.eps, running: running, rule: rule, profileName: profileName)
                }
                return
            }
            let (sync, next) = try Reference.synchronizedTrainingStep(x, shape: s, layout: input.layout, partition: p, gamma: g,
                                                                      beta: b, eps: input.eps, running: running, rule: rule,
                                                                      profileName: profileName)
            let (single, nextSingle) = try Reference.trainingStep(x, shape: s, layout: input.layout, gamma: g, beta: b, eps: input.eps,
                                                                  running: running, rule: rule, profileName: profileName)
            #expect(bits(sync.global.y) == bits(single.y), "\(what) y")
            #expect(bits(sync.global.mean + sync.global.variance + sync.global.invStd)
                    == bits(single.mean + single.variance + single.invStd), "\(what) statistics")
            #expect(bits(next.mean + next.variance) == bits(nextSingle.mean + nextSingle.variance), "\(what) running")
            #expect(p.split(sync.global.y, shape: s).enumerated().allSatisfy { bits($0.element) == bits(sync.y(rank: $0.offset)) })

            for k in 0..<p.ranks {
                let xk = Self.gather(x, input, p, rank: k)
                #expect(bits(xk) == bits(p.split(x, shape: s)[k]), "\(what) rank \(k) slice")
                if p.counts[k] == 0 { #expect(sync.rankMoments[k] == nil); continue }
                let own = try Reference.moments(xk, shape: p.shape(rank: k, of: s), layout: input.layout)
                #expect(sync.rankMoments[k] == own, "\(what) rank \(k) moments")
            }
            for c in 0..<s.channels where single.moments[c].mean.isFinite && single.moments[c].m2.isFinite {
                let parts = sync.rankMoments.compactMap { $0?[c] }
                let merged = sync.mergedMoments[c], whole = single.moments[c]
                let bound = ChannelMoments.mergeBound(parts, merged: merged)
                // The whole batch's own rounding (≤ 1 ulp of the exact value) is added to the merge's bound.
                #expect(abs(merged.mean - whole.mean) <= bound.mean + whole.mean.ulp, "\(what) merged mean c=\(c)")
                #expect(abs(merged.m2 - whole.m2) <= bound.m2 + whole.m2.ulp, "\(what) merged M2 c=\(c): \(merged.m2) vs \(whole.m2)")
            }

            // Backward.
            let bw = try Reference.trainingBackward(x, dy: dy, shape: s, layout: input.layout, gamma: g, mean: single.mean,
                                                    invStd: single.invStd)
            let global = try Reference.synchronizedTrainingBackward(x, dy: dy, shape: s, layout: input.layout, partition: p, gamma: g,
                                                                    mean: sync.global.mean, invStd: sync.global.invStd,
                                                                    reduction: .global)
            let local = try Reference.synchronizedTrainingBackward(x, dy: dy, shape: s, layout: input.layout, partition: p, gamma: g,
                                                                   mean: sync.global.mean, invStd: sync.global.invStd,
                                                                   reduction: .local)
            #expect(bits(global.dx) == bits(bw.dx) && bits(local.dx) == bits(bw.dx), "\(what) dx")
            #expect(global.dGamma == [bw.dGamma] && global.dBeta == [bw.dBeta], "\(what) global dγ, dβ")
            #expect(local.dGamma.count == p.ranks && local.dBeta.count == p.ranks, "\(what) local rows")
            let u = 0x1p-53
            for c in 0..<s.channels where single.invStd[c].isFinite && single.mean[c].isFinite {
                var sumAbsG = 0.0, sumAbsB = 0.0
                for k in 0..<p.ranks {
                    // Rank k's own sums, computed here with plain Double loops.
                    let xk = Self.gather(x, input, p, rank: k), dyk = Self.gather(dy, input, p, rank: k)
                    let sk = p.shape(rank: k, of: s)
                    var g0 = 0.0, b0 = 0.0, ag = 0.0, ab = 0.0
                    for n in 0..<sk.batch {
                        for j in 0..<s.spatialSize {
                            let i = input.layout.index(n: n, c: c, s: j, shape: sk)
                            let t = dyk[i] * (xk[i] - single.mean[c]) * single.invStd[c]
                            g0 += t; b0 += dyk[i]; ag += abs(t); ab += abs(dyk[i])
                        }
                    }
                    // x̂ here carries u·(|x| + |μ|)·r per element (x − μ rounded), the sums n·u.
                    let n = Double(sk.perChannelCount)
                    let xErr = 4 * u * ((xk.map(abs).max() ?? 0) + abs(single.mean[c])) * single.invStd[c]
                    #expect(abs(local.dGamma[k][c] - g0) <= 4 * (n + 1) * u * ag + ab * xErr, "\(what) local dγ rank \(k) c=\(c)")
                    #expect(abs(local.dBeta[k][c] - b0) <= 4 * (n + 1) * u * ab, "\(what) local dβ rank \(k) c=\(c)")
                    if p.counts[k] == 0 { #expect(local.dGamma[k][c] == 0 && local.dBeta[k][c] == 0) }
                    sumAbsG += ag; sumAbsB += ab
                }
                // Each local row is rounded once from a compensated sum; adding K of them rounds K − 1 times more.
                let K = Double(p.ranks)
                let lg = local.dGamma.reduce(0.0) { $0 + $1[c] }, lb = local.dBeta.reduce(0.0) { $0 + $1[c] }
                #expect(abs(lg - bw.dGamma[c]) <= 2 * (K + 1) * u * sumAbsG + 1e-300, "\(what) Σ local dγ = global, c=\(c)")
                #expect(abs(lb - bw.dBeta[c]) <= 2 * (K + 1) * u * sumAbsB + 1e-300, "\(what) Σ local dβ = global, c=\(c)")
            }
        }
    }

    /// Law 22 — permuting the ranks (each rank keeps its samples; the global batch is the
    /// blocks in the new order) changes nothing: the ranks' moments are the same values; the
    /// global and merged statistics are each within 1 ulp of the same order-free exact value,
    /// so ≤ 2 ulp apart; every rank's training y moves with it bit for bit (correctly rounded from
    /// the exact statistics), and with the same saved statistics its inference y, local dγ and dβ
    /// move with it bit for bit, while dx differs only by the reordering of the compensated
    /// global sums Σdy, Σdy·x̂ (≤ 2u·|Σ| + 2n²u²·Σ|terms| each, CompensatedSum's contract).
    @Test func permutingRanksChangesNothing() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen(families: Laws.families, minBatchValues: 2),
                            Gen.int(in: 0...1_000_000)) { input, pseed in
            let (s, x, dy, g, b, p) = Self.draw(input, pseed)
            var r = SpecRandom("law-sync/perm/\(pseed)")
            var order = Array(0..<p.ranks)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, r.int(below: i + 1)) }
            let q = try BatchPartition(counts: order.map { p.counts[$0] })
            let xb = p.split(x, shape: s), dyb = p.split(dy, shape: s)
            let xq = order.flatMap { xb[$0] }, dyq = order.flatMap { dyb[$0] }
            let what = "law 22: \(input) partition \(p) order \(order)"

            let a = try Reference.synchronizedTrainingForward(x, shape: s, layout: input.layout, partition: p, gamma: g, beta: b,
                                                              eps: input.eps)
            let c2 = try Reference.synchronizedTrainingForward(xq, shape: s, layout: input.layout, partition: q, gamma: g, beta: b,
                                                               eps: input.eps)
            for (j, k) in order.enumerated() { #expect(c2.rankMoments[j] == a.rankMoments[k], "\(what) rank moments") }
            for c in 0..<s.channels {
                let m1 = a.global.moments[c], m2 = c2.global.moments[c], g1 = a.mergedMoments[c], g2 = c2.mergedMoments[c]
                #expect(ulpDistance(m1.mean, m2.mean) <= 2 && ulpDistance(m1.biasedVariance, m2.biasedVariance) <= 2,
                        "\(what) global statistics c=\(c)")
                #expect(ulpDistance(g1.mean, g2.mean) <= 2 && ulpDistance(g1.biasedVariance, g2.biasedVariance) <= 2,
                        "\(what) merged statistics c=\(c)")
            }
            // The same saved statistics on the permuted batch.
            let yq = try Reference.inferenceForward(xq, shape: s, layout: input.layout, mean: a.global.mean,
                                                    variance: a.global.variance, gamma: g, beta: b, eps: input.eps)
            let ba = try Reference.synchronizedTrainingBackward(x, dy: dy, shape: s, layout: input.layout, partition: p, gamma: g,
                                                                mean: a.global.mean, invStd: a.global.invStd, reduction: .local)
            let bq = try Reference.synchronizedTrainingBackward(xq, dy: dyq, shape: s, layout: input.layout, partition: q, gamma: g,
                                                                mean: a.global.mean, invStd: a.global.invStd, reduction: .local)
            let u = 0x1p-53, n = Double(s.perChannelCount)
            let single = try Reference.trainingBackward(x, dy: dy, shape: s, layout: input.layout, gamma: g, mean: a.global.mean,
                                                        invStd: a.global.invStd)
            for (j, k) in order.enumerated() {
                // Training y is correctly rounded from the exact (order-free) statistics (§7): bit for bit.
                #expect(bits(c2.y(rank: j)) == bits(a.y(rank: k)), "\(what) y of rank \(k)")
                // Inference with the same saved statistics: the same rounding of the same values.
                #expect(bits(q.split(yq, shape: s)[j]) == bits(p.split(try Reference.inferenceForward(x, shape: s, layout: input.layout,
                    mean: a.global.mean, variance: a.global.variance, gamma: g, beta: b, eps: input.eps), shape: s)[k]), "\(what) inference y of rank \(k)")
                #expect(bits(bq.dGamma[j]) == bits(ba.dGamma[k]) && bits(bq.dBeta[j]) == bits(ba.dBeta[k]), "\(what) local rank \(k)")
                let dxa = p.split(ba.dx, shape: s)[k], dxq = q.split(bq.dx, shape: s)[j]
                let sk = p.shape(rank: k, of: s)
                for c in 0..<s.channels where a.global.invStd[c].isFinite {
                    let mu = a.global.mean[c], r0 = a.global.invStd[c], kc = abs(g[c]) * r0
                    let idx = input.indices(c)
                    let sumAbsDy = idx.reduce(0.0) { $0 + abs(dy[$1]) }
                    let sumAbsT = idx.reduce(0.0) { $0 + abs(dy[$1] * (x[$1] - mu) * r0) }
                    let dB = 2 * u * abs(single.dBeta[c]) + 2 * n * n * u * u * sumAbsDy
                    let dG = 2 * u * abs(single.dGamma[c]) + 2 * n * n * u * u * sumAbsT
                    for seg in input.layout.segments(channel: c, shape: sk) {
                        for t in 0..<seg.count {
                            let i = seg.offset + t * seg.stride
                            let xh = abs(xb[k][i] - mu) * r0
                            let tol = kc * (dB + xh * dG) / n + 2 * dxa[i].ulp + 1e-300
                            #expect(abs(dxa[i] - dxq[i]) <= tol || (dxa[i].isNaN && dxq[i].isNaN),
                                    "\(what) dx rank \(k) c=\(c): \(dxa[i]) vs \(dxq[i])")
                        }
                    }
                }
            }
        }
    }

    /// Law 23 — empty ranks change nothing: inserting ranks with no samples anywhere leaves
    /// every output bit for bit as it was (the concatenation is the same), merged statistics
    /// included; an empty rank's local dγ and dβ are 0.
    @Test func emptyRanksChangeNothing() async {
        await propertyCheck(count: Laws.count(200), input: LawInput.gen(families: Laws.families, minBatchValues: 1),
                            Gen.int(in: 0...1_000_000)) { input, pseed in
            let (s, x, dy, g, b, p) = Self.draw(input, pseed)
            var r = SpecRandom("law-sync/empty/\(pseed)")
            var counts = p.counts, kept: [Int] = Array(0..<p.ranks)
            for _ in 0..<(1 + r.int(below: 3)) {
                let at = r.int(below: counts.count + 1)
                counts.insert(0, at: at); kept = kept.map { $0 >= at ? $0 + 1 : $0 }
            }
            let q = try BatchPartition(counts: counts)
            let what = "law 23: \(input) partition \(p) → \(q)"
            let a = try Reference.synchronizedTrainingForward(x, shape: s, layout: input.layout, partition: p, gamma: g, beta: b, eps: input.eps)
            let e = try Reference.synchronizedTrainingForward(x, shape: s, layout: input.layout, partition: q, gamma: g, beta: b, eps: input.eps)
            #expect(bits(a.global.y) == bits(e.global.y), "\(what) y")
            #expect(a.mergedMoments == e.mergedMoments, "\(what) merged")
            for (k, j) in kept.enumerated() { #expect(a.rankMoments[k] == e.rankMoments[j], "\(what) rank \(k)") }
            let ba = try Reference.synchronizedTrainingBackward(x, dy: dy, shape: s, layout: input.layout, partition: p, gamma: g,
                                                                mean: a.global.mean, invStd: a.global.invStd, reduction: .local)
            let be = try Reference.synchronizedTrainingBackward(x, dy: dy, shape: s, layout: input.layout, partition: q, gamma: g,
                                                                mean: e.global.mean, invStd: e.global.invStd, reduction: .local)
            #expect(bits(ba.dx) == bits(be.dx), "\(what) dx")
            for j in 0..<q.ranks {
                if let k = kept.firstIndex(of: j) {
                    #expect(bits(ba.dGamma[k]) == bits(be.dGamma[j]) && bits(ba.dBeta[k]) == bits(be.dBeta[j]), "\(what) local rank \(j)")
                } else {
                    #expect(be.dGamma[j].allSatisfy { $0 == 0 } && be.dBeta[j].allSatisfy { $0 == 0 }, "\(what) empty rank \(j)")
                }
            }
        }
    }

    /// Bad partitions are refused with one line naming the partition.
    @Test func partitionsThatDoNotFitTheBatchAreRefused() throws {
        let s = try Shape(batch: 4, channels: 2)
        let x = [Double](repeating: 1, count: 8)
        #expect(throws: BNError.invalidArgument("partition 1+2 holds 3 samples but the batch has 4")) {
            try Reference.synchronizedTrainingForward(x, shape: s, layout: .nc, partition: BatchPartition(counts: [1, 2]), eps: 1e-5)
        }
        #expect(throws: BNError.self) { try BatchPartition(counts: [2, -1]) }
        #expect(throws: BNError.self) { try BatchPartition(counts: []) }
        #expect(throws: BNError.self) { try BatchPartition(parsing: "2+x") }
        #expect(try BatchPartition(parsing: "3+1+0+4").counts == [3, 1, 0, 4])
        #expect(try BatchPartition(parsing: "3,1").counts == [3, 1])
        #expect(try BatchPartition.even(batch: 10, ranks: 4).counts == [3, 3, 2, 2])
    }
}

/// Bit patterns (NaN-safe equality of Double arrays).
private func bits(_ a: [Double]) -> [UInt64] { a.map(\.bitPattern) }

/// Distance in ulps along the ordered bit patterns (as in the reference tests).
private func ulpDistance(_ a: Double, _ b: Double) -> UInt64 {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN ? 0 : .max }
    if a == b { return 0 }
    func ordered(_ x: Double) -> Int64 { let v = Int64(bitPattern: x.bitPattern); return v < 0 ? Int64.min - v : v }
    let d = ordered(a).subtractingReportingOverflow(ordered(b))
    return d.overflow ? .max : d.partialValue.magnitude
}
