import BNCore
import CBNStream

/// The running-statistics update a training kernel applies in the same pass:
/// `mean ← (1 − w)·mean + w·μ_B`, `variance ← (1 − w)·variance + w·v_B`, with w the
/// batch weight of the profile's convention (``RunningUpdateRule/batchWeight(step:)``)
/// and v_B the profile's estimator (biased Σ/n or unbiased Σ/(n − 1)). Computed in
/// Double, rounded once to Float.
public struct RunningUpdate {
    public var mean: UnsafeMutablePointer<Float>
    public var variance: UnsafeMutablePointer<Float>
    public var batchWeight: Double
    public var estimator: VarianceEstimator
    public var singleValue: SingleValuePolicy
    public init(mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>, batchWeight: Double,
                estimator: VarianceEstimator, singleValue: SingleValuePolicy) {
        self.mean = mean; self.variance = variance; self.batchWeight = batchWeight
        self.estimator = estimator; self.singleValue = singleValue
    }
}

/// BNSpec's fused Float32 batch normalization: statistics, normalisation, affine,
/// optional ReLU and the running update in the fewest passes over memory, on any
/// number of threads with bit-identical results.
///
/// **Passes.** Training forward reads x twice and writes y once: a statistics pass and
/// a normalising pass, each walking memory in order (NCHW: a thread's channel range,
/// sample by sample; NHWC/NC: row blocks). Inference reads x once. Backward reads
/// (x, dy) twice and writes dx once.
///
/// **Accuracy contract.** Storage values are widened exactly; statistics are pivot
/// sums in Double (``PivotSums``), so μ and σ² carry relative errors of order n·2⁻⁵³;
/// each output is computed in Double as (x − μ)·(γ/√(σ² + ε)) + β and rounded once
/// to Float (and once more to Float16/bfloat16 storage). Hence |y − y_ref| ≤ ½ ulp(y)
/// + O(n·2⁻⁵³)·|γ x̂| per element — the accuracy figures of `bnspec accuracy`. A
/// constant channel gives x − μ = 0 exactly and therefore y = β exactly (or NaN when
/// ε = 0, as the spec requires: 0·∞).
///
/// **Determinism.** Work is cut into channels (NCHW) or a row-count-determined number
/// of row blocks (NHWC/NC) whose partial sums are combined in block order; the
/// decomposition never depends on `threads`, so 1 and N threads give identical bits.
///
/// **Edge cases.** n = N·H·W = 0 throws; NaN/Inf propagate through the sums per IEEE
/// rules; one value per channel yields σ² = 0 (and, for an unbiased running estimator,
/// the profile's ``SingleValuePolicy``).
public enum FusedBatchNorm {
    /// Training forward with batch statistics. `savedMean`/`savedVariance` receive μ_B
    /// and the biased σ²_B (Float), `running` is updated when given.
    public static func trainingForward<S: StorageElement>(
        x: UnsafePointer<S>, y: UnsafeMutablePointer<S>, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Double, relu: Bool = false,
        savedMean: UnsafeMutablePointer<Float>, savedVariance: UnsafeMutablePointer<Float>,
        running: RunningUpdate? = nil, threads: Int = 1
    ) throws {
        let n = shape.perChannelCount, C = shape.channels
        let stream = streams(shape, S.self)
        guard n > 0 else { throw BNError.invalidArgument("batch normalization needs at least one value per channel (N·H·W = 0)") }
        if let r = running, n == 1, r.estimator == .unbiased, r.singleValue == .error {
            throw BNError.singleValuePerChannel(profile: "kernel")
        }
        let nd = Double(n)
        func finish(_ c: Int, pivot: Double, _ t: PivotSums) -> ChannelAffine {
            // Clamp rounding below zero but let NaN through (max(0, NaN) would be 0):
            // a non-finite value must poison its channel's statistics (spec §4).
            let m2raw = t.q - t.s * t.s / nd, m2 = m2raw < 0 ? 0 : m2raw
            let mean = pivot + t.s / nd, v = m2 / nd
            savedMean[c] = Float(mean); savedVariance[c] = Float(v)
            if let r = running {
                let vr: Double
                switch (r.estimator, n) {
                case (.biased, _): vr = v
                case (.unbiased, 1): vr = r.singleValue == .nan ? .nan : v
                case (.unbiased, _): vr = m2 / Double(n - 1)
                }
                let w = r.batchWeight
                r.mean[c] = Float((1 - w) * Double(r.mean[c]) + w * mean)
                r.variance[c] = Float((1 - w) * Double(r.variance[c]) + w * vr)
            }
            return ChannelAffine(mean: mean, scale: Double(gamma[c]) / (v + eps).squareRoot(), shift: Double(beta[c]))
        }
        switch layout {
        case .nchw:
            let HW = shape.spatialSize, N = shape.batch
            let G = channelGroup(shape, threads: threads), groups = (C + G - 1) / G
            parallelFor(groups, threads: threads) { grp in
                let cs = (grp * G)..<min(C, grp * G + G)
                var sums = [PivotSums](repeating: PivotSums(), count: cs.count)
                let pivots = cs.map { Double(S.widen(x[$0 * HW])) }
                for b in 0..<N {  // statistics: the group's runs in memory order
                    for (j, c) in cs.enumerated() { addSums(x + (b * C + c) * HW, count: HW, pivot: pivots[j], into: &sums[j]) }
                }
                let affine = cs.enumerated().map { j, c in finish(c, pivot: pivots[j], sums[j]) }
                for b in 0..<N {  // normalisation: the same runs again, now from cache
                    for (j, c) in cs.enumerated() {
                        let off = (b * C + c) * HW
                        applyRun(x + off, y + off, count: HW, affine[j], relu: relu, stream: stream)
                    }
                }
            }
            if stream { bn_stream_fence() }
        case .nhwc, .nc:
            let rows = shape.batch * shape.spatialSize, blocks = rowBlocks(rows: rows)
            let work = RowWorkspace(channels: C, blocks: blocks, partials: 2)
            work.setPivots(x)
            let piv = work.pivot, part = work.partials
            parallelFor(blocks, threads: threads) { b in
                sumsRows(x, nil, mask: nil, rows: rowRange(block: b, blocks: blocks, rows: rows), channels: C, pivot: piv,
                         s: part + b * 2 * C, q: part + b * 2 * C + C, g: nil, h: nil)
            }
            let totals = work.reduce()
            for c in 0..<C {
                var t = PivotSums(); t.s = totals[c]; t.q = totals[C + c]
                work.store(c, finish(c, pivot: piv[c], t))
            }
            applyAffineRows(x, y, rows: rows, blocks: blocks, work: work, relu: relu, threads: threads)
            work.deallocate()
        }
    }

    /// Inference forward: y = (x − mean)·γ/√(variance + ε) + β with the given statistics.
    public static func inferenceForward<S: StorageElement>(
        x: UnsafePointer<S>, y: UnsafeMutablePointer<S>, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        eps: Double, relu: Bool = false, threads: Int = 1
    ) {
        let C = shape.channels
        let stream = streams(shape, S.self)
        func affine(_ c: Int) -> ChannelAffine {
            ChannelAffine(mean: Double(mean[c]), scale: Double(gamma[c]) / (Double(variance[c]) + eps).squareRoot(),
                          shift: Double(beta[c]))
        }
        switch layout {
        case .nchw:
            // No statistics to gather: walk all runs in memory order, cut into fixed blocks.
            let HW = shape.spatialSize, runs = shape.batch * C, blocks = rowBlocks(rows: runs)
            let affines = (0..<C).map(affine)
            parallelFor(blocks, threads: threads) { blk in
                for run in rowRange(block: blk, blocks: blocks, rows: runs) {
                    applyRun(x + run * HW, y + run * HW, count: HW, affines[run % C], relu: relu, stream: stream)
                }
            }
            if stream { bn_stream_fence() }
        case .nhwc, .nc:
            let rows = shape.batch * shape.spatialSize, blocks = rowBlocks(rows: rows)
            let work = RowWorkspace(channels: C, blocks: 0, partials: 0)
            for c in 0..<C { work.store(c, affine(c)) }
            applyAffineRows(x, y, rows: rows, blocks: blocks, work: work, relu: relu, threads: threads)
            work.deallocate()
        }
    }

    /// Backward. Training mode (`statistics == nil`): gradients through the batch
    /// statistics, dx = γr·(dy − mean(dy) − x̂·mean(dy·x̂)). Inference mode
    /// (`statistics` = running mean and variance): dx = γr·dy. dγ = Σdy·x̂, dβ = Σdy.
    /// With `reluOutput` (the forward output of the fused BN+ReLU), dy is first masked
    /// to 0 where that output is ≤ 0.
    public static func backward<S: StorageElement>(
        x: UnsafePointer<S>, dy: UnsafePointer<S>, dx: UnsafeMutablePointer<S>, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, eps: Double, statistics: (mean: UnsafePointer<Float>, variance: UnsafePointer<Float>)? = nil,
        reluOutput: UnsafePointer<S>? = nil, dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
        threads: Int = 1
    ) throws {
        let n = shape.perChannelCount, C = shape.channels
        let stream = streams(shape, S.self)
        guard n > 0 else { throw BNError.invalidArgument("batch normalization needs at least one value per channel (N·H·W = 0)") }
        let nd = Double(n)
        /// Per-channel (mean, a, b, k) of dx = a·dy + b + k·(x − mean); also writes dγ, dβ.
        func coefficients(_ c: Int, pivot: Double, _ t: PivotSums) -> (Double, Double, Double, Double) {
            let g = Double(gamma[c])
            if let st = statistics {
                let r = 1 / (Double(st.variance[c]) + eps).squareRoot()
                dBeta[c] = Float(t.g); dGamma[c] = Float(r * t.h)  // pivot = mean: h = Σdy(x − μ)
                return (pivot, g * r, 0, 0)
            }
            let mOff = t.s / nd, m2raw = t.q - t.s * mOff, v = (m2raw < 0 ? 0 : m2raw) / nd
            let r = 1 / (v + eps).squareRoot()
            let hc = t.h - mOff * t.g  // Σdy·(x − μ)
            let dg = r * hc
            dBeta[c] = Float(t.g); dGamma[c] = Float(dg)
            let k = g * r
            return (pivot + mOff, k, -k * t.g / nd, -k * r * dg / nd)
        }
        func pivotOf(_ c: Int, first: Int) -> Double {
            statistics.map { Double($0.mean[c]) } ?? Double(S.widen(x[first]))
        }
        switch layout {
        case .nchw:
            let HW = shape.spatialSize, N = shape.batch
            let G = channelGroup(shape, threads: threads), groups = (C + G - 1) / G
            parallelFor(groups, threads: threads) { grp in
                let cs = (grp * G)..<min(C, grp * G + G)
                var sums = [PivotSums](repeating: PivotSums(), count: cs.count)
                let pivots = cs.map { pivotOf($0, first: $0 * HW) }
                for b in 0..<N {
                    for (j, c) in cs.enumerated() {
                        let off = (b * C + c) * HW
                        addSums(x + off, dy + off, mask: reluOutput.map { $0 + off }, count: HW, pivot: pivots[j], into: &sums[j])
                    }
                }
                let coef = cs.enumerated().map { j, c in coefficients(c, pivot: pivots[j], sums[j]) }
                for b in 0..<N {
                    for (j, c) in cs.enumerated() {
                        let off = (b * C + c) * HW, (m, a, bb, k) = coef[j]
                        gradientRun(x + off, dy + off, mask: reluOutput.map { $0 + off }, dx + off, count: HW, mean: m, a: a, b: bb, k: k,
                                    stream: stream)
                    }
                }
            }
            if stream { bn_stream_fence() }
        case .nhwc, .nc:
            let rows = shape.batch * shape.spatialSize, blocks = rowBlocks(rows: rows)
            let work = RowWorkspace(channels: C, blocks: blocks, partials: 4)
            for c in 0..<C { work.pivot[c] = pivotOf(c, first: c) }
            let piv = UnsafePointer(work.pivot), part = work.partials
            parallelFor(blocks, threads: threads) { b in
                let base = part + b * 4 * C
                sumsRows(x, dy, mask: reluOutput, rows: rowRange(block: b, blocks: blocks, rows: rows), channels: C, pivot: piv,
                         s: base, q: base + C, g: base + 2 * C, h: base + 3 * C)
            }
            let totals = work.reduce()
            let extra = UnsafeMutablePointer<Double>.allocate(capacity: 2 * C)
            defer { extra.deallocate() }
            for c in 0..<C {
                var t = PivotSums(); t.s = totals[c]; t.q = totals[C + c]; t.g = totals[2 * C + c]; t.h = totals[3 * C + c]
                let (m, a, b, k) = coefficients(c, pivot: piv[c], t)
                work.mean[c] = m; work.scale[c] = a; extra[c] = b; extra[C + c] = k
            }
            let m = UnsafePointer(work.mean), a = UnsafePointer(work.scale), b = UnsafePointer(extra), k = UnsafePointer(extra + C)
            parallelFor(blocks, threads: threads) { blk in
                gradientRows(x, dy, mask: reluOutput, dx, rows: rowRange(block: blk, blocks: blocks, rows: rows), channels: C,
                             mean: m, a: a, b: b, k: k)
            }
            work.deallocate()
        }
    }
}

/// Whether outputs are written with non-temporal stores: when the output tensor is
/// larger than ``streamingBytes`` (it could not stay in cache anyway).
func streams<S: StorageElement>(_ shape: Shape, _: S.Type) -> Bool {
    shape.elementCount * MemoryLayout<S>.stride > streamingBytes
}

/// 32 MiB: the last-level cache of the machines this was measured on (like glibc's
/// memcpy, which switches to non-temporal stores above a fraction of that size).
public let streamingBytes = 32 << 20

/// Channels per NCHW work item: the channels split into one contiguous range per
/// thread. Each pass then walks its range sample by sample — G adjacent channels of a
/// sample are one contiguous stretch of memory — so every thread streams long runs.
///
/// Measured (`bnspec bench`, 64×256×56×56, 1 thread, with and without non-temporal
/// output stores): groups of 1–16 MB sized so that the second pass would re-read x from
/// the 32 MiB L3 were slower (1.8–2.8× memcpy) than one group per thread (1.6×): on
/// these machines shorter runs cost the stream prefetcher more than the re-read from
/// DRAM, and the Double arithmetic of the two passes is itself ≈ 1.2× memcpy time. The grouping never changes
/// a channel's arithmetic (its runs are still summed in sample order), so results are
/// bit-identical for any thread count.
func channelGroup(_ shape: Shape, threads: Int) -> Int {
    let t = max(1, min(threads, shape.channels))
    return (shape.channels + t - 1) / t
}

/// Scratch memory of an NHWC/NC pass: per-channel pivots and affine coefficients, and
/// `partials` Double sums per channel for each row block.
struct RowWorkspace {
    let channels: Int, blocks: Int, partialCount: Int
    let pivot: UnsafeMutablePointer<Double>
    let mean: UnsafeMutablePointer<Double>, scale: UnsafeMutablePointer<Double>, shift: UnsafeMutablePointer<Double>
    let partials: UnsafeMutablePointer<Double>

    init(channels C: Int, blocks: Int, partials: Int) {
        channels = C; self.blocks = blocks; partialCount = partials
        pivot = .allocate(capacity: C); pivot.initialize(repeating: 0, count: C)
        mean = .allocate(capacity: C); scale = .allocate(capacity: C); shift = .allocate(capacity: C)
        self.partials = .allocate(capacity: max(1, blocks * partials * C))
        self.partials.initialize(repeating: 0, count: max(1, blocks * partials * C))
    }

    func store(_ c: Int, _ a: ChannelAffine) { mean[c] = a.mean; scale[c] = a.scale; shift[c] = a.shift }

    /// Pivot of each channel: its first value (row 0).
    func setPivots<S: StorageElement>(_ x: UnsafePointer<S>) {
        for c in 0..<channels { pivot[c] = Double(S.widen(x[c])) }
    }

    /// Sums the blocks' partials in block order (a fixed reduction tree).
    func reduce() -> [Double] {
        var out = [Double](repeating: 0, count: partialCount * channels)
        for b in 0..<blocks {
            let base = partials + b * partialCount * channels
            for j in 0..<(partialCount * channels) { out[j] += base[j] }
        }
        return out
    }

    func deallocate() {
        pivot.deallocate(); mean.deallocate(); scale.deallocate(); shift.deallocate(); partials.deallocate()
    }
}
