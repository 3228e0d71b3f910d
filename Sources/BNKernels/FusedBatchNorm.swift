import BNCore
import CBNKernels

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
/// a normalising pass (NCHW: per group of channels sized to stay in L2, so the second
/// read is from cache — ``ChannelGroups``; NHWC/NC: row blocks, then all rows).
/// Inference reads x once. Backward reads (x, dy) twice and writes dx once. The passes
/// are C (`CBNKernels`), compiled for several instruction sets and chosen at run time
/// (``KernelISA``); every level gives the same bits.
///
/// **Accuracy contract.** Storage values are widened exactly; statistics are pivot
/// sums in Double (CBNKernels.h), so μ and σ² carry relative errors of order n·2⁻⁵³;
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
/// rules, and every NaN result is the canonical quiet NaN (which NaN an operation
/// returns from several NaN operands depends on instruction order, so payloads are not
/// carried); one value per channel yields σ² = 0 (and, for an unbiased running
/// estimator, the profile's ``SingleValuePolicy``).
///
/// The generic entry points are inlinable shells over one non-generic implementation
/// per operation (the memory passes take untyped pointers and a ``StorageFormat``), so
/// a caller in another module pays no unspecialised generic code.
public enum FusedBatchNorm {
    /// Training forward with batch statistics. `savedMean`/`savedVariance` receive μ_B
    /// and the biased σ²_B (Float), `running` is updated when given.
    @inlinable
    public static func trainingForward<S: StorageElement>(
        x: UnsafePointer<S>, y: UnsafeMutablePointer<S>, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Double, relu: Bool = false,
        savedMean: UnsafeMutablePointer<Float>, savedVariance: UnsafeMutablePointer<Float>,
        running: RunningUpdate? = nil, threads: Int = 1, isa: KernelISA = .selected
    ) throws {
        try training(StorageFormat(S.self), x: UnsafeRawPointer(x), y: UnsafeMutableRawPointer(y), shape: shape, layout: layout,
                     gamma: gamma, beta: beta, eps: eps, relu: relu, savedMean: savedMean, savedVariance: savedVariance,
                     running: running, threads: threads, isa: isa)
    }

    /// Inference forward: y = (x − mean)·γ/√(variance + ε) + β with the given statistics.
    @inlinable
    public static func inferenceForward<S: StorageElement>(
        x: UnsafePointer<S>, y: UnsafeMutablePointer<S>, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        eps: Double, relu: Bool = false, threads: Int = 1, isa: KernelISA = .selected
    ) {
        inference(StorageFormat(S.self), x: UnsafeRawPointer(x), y: UnsafeMutableRawPointer(y), shape: shape, layout: layout,
                  gamma: gamma, beta: beta, mean: mean, variance: variance, eps: eps, relu: relu, threads: threads, isa: isa)
    }

    /// Backward. Training mode (`statistics == nil`): gradients through the batch
    /// statistics, dx = γr·(dy − mean(dy) − x̂·mean(dy·x̂)). Inference mode
    /// (`statistics` = running mean and variance): dx = γr·dy. dγ = Σdy·x̂, dβ = Σdy.
    /// With `reluOutput` (the forward output of the fused BN+ReLU), dy is first masked
    /// to 0 where that output is ≤ 0.
    @inlinable
    public static func backward<S: StorageElement>(
        x: UnsafePointer<S>, dy: UnsafePointer<S>, dx: UnsafeMutablePointer<S>, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, eps: Double, statistics: (mean: UnsafePointer<Float>, variance: UnsafePointer<Float>)? = nil,
        reluOutput: UnsafePointer<S>? = nil, dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
        threads: Int = 1, isa: KernelISA = .selected
    ) throws {
        try backward(StorageFormat(S.self), x: UnsafeRawPointer(x), dy: UnsafeRawPointer(dy), dx: UnsafeMutableRawPointer(dx),
                     shape: shape, layout: layout, gamma: gamma, eps: eps, statistics: statistics,
                     reluOutput: reluOutput.map(UnsafeRawPointer.init), dGamma: dGamma, dBeta: dBeta, threads: threads, isa: isa)
    }

    // MARK: the implementations (one per operation, storage given at run time)

    @usableFromInline
    package static func training(
        _ format: StorageFormat, x: UnsafeRawPointer, y: UnsafeMutableRawPointer, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Double, relu: Bool,
        savedMean: UnsafeMutablePointer<Float>, savedVariance: UnsafeMutablePointer<Float>,
        running: RunningUpdate?, threads: Int, isa: KernelISA, groupSize: Int? = nil, testEveryOutput: Bool = false
    ) throws {
        let n = shape.perChannelCount, C = shape.channels
        guard n > 0 else { throw BNError.invalidArgument("batch normalization needs at least one value per channel (N·H·W = 0)") }
        if let r = running, n == 1, r.estimator == .unbiased, r.singleValue == .error {
            throw BNError.singleValuePerChannel(profile: "kernel")
        }
        let passes = Passes(format, isa: isa), stream: Int32 = format.streams(shape) ? 1 : 0, rl: Int32 = relu ? 1 : 0
        let work = ChannelWorkspace(channels: C, statistics: layout == .nchw)
        defer { work.deallocate() }
        let nd = Double(n)
        /// μ, σ² and the running update of channel c from its pivot sums; stores the
        /// channel's output coefficients in `work`.
        func finish(_ c: Int, s: Double, q: Double) {
            // Clamp rounding below zero but let NaN through (max(0, NaN) would be 0):
            // a non-finite value must poison its channel's statistics (spec §4).
            let m2raw = q - s * s / nd, m2 = m2raw < 0 ? 0 : m2raw
            let mean = work.pivot[c] + s / nd, v = m2 / nd
            savedMean[c] = statistic(mean); savedVariance[c] = statistic(v)
            if let r = running {
                let vr: Double
                switch (r.estimator, n) {
                case (.biased, _): vr = v
                case (.unbiased, 1): vr = r.singleValue == .nan ? .nan : v
                case (.unbiased, _): vr = m2 / Double(n - 1)
                }
                let w = r.batchWeight
                r.mean[c] = statistic((1 - w) * Double(r.mean[c]) + w * mean)
                r.variance[c] = statistic((1 - w) * Double(r.variance[c]) + w * vr)
            }
            work.mean[c] = mean; work.scale[c] = Double(gamma[c]) / (v + eps).squareRoot(); work.shift[c] = Double(beta[c])
            work.nanFree[c] = !testEveryOutput && NaNFree.affine(sumOfSquares: q, mean: mean, scale: work.scale[c], shift: work.shift[c]) ? 1 : 0
        }
        switch layout {
        case .nchw:
            let HW = shape.spatialSize, N = shape.batch
            passes.pivots(x, stride: HW, count: C, into: work.pivot)
            let plan = ChannelGroups(shape, bytesPerValue: 2 * format.bytes, inputBytesPerValue: format.bytes,
                                     threads: threads, size: groupSize)
            parallelFor(plan.groups, threads: plan.threads) { range in
                // Pipelined: each step writes one group and sums the next (ChannelGroups).
                var next = plan.channels(range.lowerBound, of: C)
                passes.table.nchw_forward_step(x, y, N, C, HW, 0, 0, nil, nil, nil, rl, stream, nil, next.lowerBound, next.upperBound,
                                               work.pivot, work.accumulators(next.lowerBound), work.sums(next.lowerBound))
                for g in range {
                    let cs = next, out = work.sums(cs.lowerBound)
                    for c in cs { finish(c, s: out[4 * (c - cs.lowerBound)], q: out[4 * (c - cs.lowerBound) + 1]) }
                    next = g + 1 < range.upperBound ? plan.channels(g + 1, of: C) : cs.upperBound..<cs.upperBound
                    passes.table.nchw_forward_step(x, y, N, C, HW, cs.lowerBound, cs.upperBound, work.mean, work.scale, work.shift,
                                                   rl, stream, work.nanFree, next.lowerBound, next.upperBound, work.pivot,
                                                   work.accumulators(next.lowerBound), work.sums(next.lowerBound))
                }
            }
        case .nhwc, .nc:
            let rows = shape.batch * shape.spatialSize, blocks = rowBlocks(rows: rows)
            passes.pivots(x, stride: 1, count: C, into: work.pivot)
            let totals = rowSums(passes, x, nil, mask: nil, rows: rows, channels: C, pivot: work.pivot, sums: 2,
                                 threads: usefulThreads(threads, elements: shape.elementCount, items: blocks))
            for c in 0..<C { finish(c, s: totals[c], q: totals[C + c]) }
            let t = usefulThreads(threads, elements: shape.elementCount, items: rows), nanFree = work.allNaNFree(C)
            parallelFor(rows, threads: t) { r in
                passes.table.rows_apply(x, y, r.lowerBound, r.upperBound, C, work.mean, work.scale, work.shift, rl, stream, nanFree)
            }
        }
        if stream != 0 { bn_stream_fence() }
    }

    @usableFromInline
    package static func inference(
        _ format: StorageFormat, x: UnsafeRawPointer, y: UnsafeMutableRawPointer, shape: Shape, layout: Layout,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        eps: Double, relu: Bool, threads: Int, isa: KernelISA
    ) {
        let C = shape.channels
        let passes = Passes(format, isa: isa), stream: Int32 = format.streams(shape) ? 1 : 0, rl: Int32 = relu ? 1 : 0
        let work = ChannelWorkspace(channels: C, statistics: false)
        defer { work.deallocate() }
        for c in 0..<C {
            work.mean[c] = Double(mean[c]); work.scale[c] = Double(gamma[c]) / (Double(variance[c]) + eps).squareRoot()
            work.shift[c] = Double(beta[c])
        }
        switch layout {
        case .nchw:
            // No statistics: the runs in memory order, one contiguous range per thread.
            let HW = shape.spatialSize, runs = shape.batch * C
            parallelFor(runs, threads: usefulThreads(threads, elements: shape.elementCount, items: runs)) { r in
                passes.table.runs_apply(x, y, C, HW, r.lowerBound, r.upperBound, work.mean, work.scale, work.shift, rl, stream)
            }
        case .nhwc, .nc:
            let rows = shape.batch * shape.spatialSize
            parallelFor(rows, threads: usefulThreads(threads, elements: shape.elementCount, items: rows)) { r in
                passes.table.rows_apply(x, y, r.lowerBound, r.upperBound, C, work.mean, work.scale, work.shift, rl, stream, 0)
            }
        }
        if stream != 0 { bn_stream_fence() }
    }

    @usableFromInline
    package static func backward(
        _ format: StorageFormat, x: UnsafeRawPointer, dy: UnsafeRawPointer, dx: UnsafeMutableRawPointer, shape: Shape,
        layout: Layout, gamma: UnsafePointer<Float>, eps: Double,
        statistics: (mean: UnsafePointer<Float>, variance: UnsafePointer<Float>)?, reluOutput: UnsafeRawPointer?,
        dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>, threads: Int, isa: KernelISA,
        groupSize: Int? = nil, testEveryOutput: Bool = false
    ) throws {
        let n = shape.perChannelCount, C = shape.channels
        guard n > 0 else { throw BNError.invalidArgument("batch normalization needs at least one value per channel (N·H·W = 0)") }
        let passes = Passes(format, isa: isa), stream: Int32 = format.streams(shape) ? 1 : 0
        let work = ChannelWorkspace(channels: C, statistics: layout == .nchw)
        defer { work.deallocate() }
        let nd = Double(n)
        /// With the statistics given: their r = 1/√(σ² + ε), and (mean, a, b, k) = (μ, γr, 0, 0)
        /// stored in `work`, which do not depend on the sums (the pivot is μ).
        func given(_ c: Int, _ st: (mean: UnsafePointer<Float>, variance: UnsafePointer<Float>)) -> Double {
            let r = 1 / (Double(st.variance[c]) + eps).squareRoot()
            work.mean[c] = work.pivot[c]; work.scale[c] = Double(gamma[c]) * r; work.b[c] = 0; work.k[c] = 0
            return r
        }
        /// dx = a·dy + b + k·(x − mean) of channel c from its sums (s, q, g, h about the
        /// pivot); writes dγ, dβ and stores (mean, a, b, k) in `work` (a in `scale`).
        func store(_ c: Int, _ s: Double, _ q: Double, _ g: Double, _ h: Double) {
            let gm = Double(gamma[c]), pivot = work.pivot[c]
            if let st = statistics {
                let r = given(c, st)
                dBeta[c] = statistic(g); dGamma[c] = statistic(r * h)  // pivot = mean: h = Σdy(x − μ)
                return
            }
            let mOff = s / nd, m2raw = q - s * mOff, v = (m2raw < 0 ? 0 : m2raw) / nd
            let r = 1 / (v + eps).squareRoot()
            let hc = h - mOff * g  // Σdy·(x − μ)
            let dg = r * hc
            dBeta[c] = statistic(g); dGamma[c] = statistic(dg)
            let k = gm * r
            work.mean[c] = pivot + mOff; work.scale[c] = k; work.b[c] = -k * g / nd; work.k[c] = -k * r * dg / nd
        }
        /// `store`, and whether the channel's outputs are NaN-free.
        func coefficients(_ c: Int, _ s: Double, _ q: Double, _ g: Double, _ h: Double) {
            store(c, s, q, g, h)
            work.nanFree[c] = !testEveryOutput && NaNFree.gradient(sumOfSquares: q, sumOfGradients: g, mean: work.mean[c],
                                                                   a: work.scale[c], b: work.b[c], k: work.k[c]) ? 1 : 0
        }
        switch layout {
        case .nchw:
            let HW = shape.spatialSize, N = shape.batch
            if let st = statistics { for c in 0..<C { work.pivot[c] = Double(st.mean[c]) } } else { passes.pivots(x, stride: HW, count: C, into: work.pivot) }
            let inputs = format.bytes * (reluOutput == nil ? 2 : 3)
            let plan = ChannelGroups(shape, bytesPerValue: inputs + format.bytes, inputBytesPerValue: inputs, threads: threads,
                                     size: groupSize)
            parallelFor(plan.groups, threads: plan.threads) { range in
                var next = plan.channels(range.lowerBound, of: C)
                passes.table.nchw_backward_step(x, dy, reluOutput, dx, N, C, HW, 0, 0, nil, nil, nil, nil, stream, nil, next.lowerBound,
                                                next.upperBound, work.pivot, work.accumulators(next.lowerBound), work.sums(next.lowerBound))
                for grp in range {
                    let cs = next, out = work.sums(cs.lowerBound)
                    for c in cs {
                        let o = out + 4 * (c - cs.lowerBound)
                        coefficients(c, o[0], o[1], o[2], o[3])
                    }
                    next = grp + 1 < range.upperBound ? plan.channels(grp + 1, of: C) : cs.upperBound..<cs.upperBound
                    passes.table.nchw_backward_step(x, dy, reluOutput, dx, N, C, HW, cs.lowerBound, cs.upperBound, work.mean,
                                                    work.scale, work.b, work.k, stream, work.nanFree, next.lowerBound, next.upperBound,
                                                    work.pivot,
                                                    work.accumulators(next.lowerBound), work.sums(next.lowerBound))
                }
            }
        case .nhwc, .nc:
            let rows = shape.batch * shape.spatialSize, blocks = rowBlocks(rows: rows)
            let sumThreads = usefulThreads(threads, elements: shape.elementCount, items: blocks)
            if let st = statistics {
                // The coefficients do not depend on the sums: each tile's gradient is written
                // right after its sums, while its x and dy are in cache (one read from memory).
                // The outputs are tested for NaN (no proof without the sums): the same bits.
                for c in 0..<C { work.pivot[c] = Double(st.mean[c]); _ = given(c, st) }
                let gradient = RowGradient(dx: dx, mean: work.mean, a: work.scale, b: work.b, k: work.k, stream: stream)
                let totals = rowSums(passes, x, dy, mask: reluOutput, rows: rows, channels: C, pivot: work.pivot, sums: 4,
                                     threads: sumThreads, gradient: gradient)
                for c in 0..<C { store(c, totals[c], totals[C + c], totals[2 * C + c], totals[3 * C + c]) }
                break
            }
            passes.pivots(x, stride: 1, count: C, into: work.pivot)
            let totals = rowSums(passes, x, dy, mask: reluOutput, rows: rows, channels: C, pivot: work.pivot, sums: 4, threads: sumThreads)
            for c in 0..<C { coefficients(c, totals[c], totals[C + c], totals[2 * C + c], totals[3 * C + c]) }
            let nanFree = work.allNaNFree(C)
            parallelFor(rows, threads: usefulThreads(threads, elements: shape.elementCount, items: rows)) { r in
                passes.table.rows_gradient(x, dy, reluOutput, dx, r.lowerBound, r.upperBound, C, work.mean, work.scale, work.b,
                                           work.k, stream, nanFree)
            }
        }
        if stream != 0 { bn_stream_fence() }
    }

    /// The gradient pass that `rowSums` writes block by block with the sums (backward with
    /// the statistics given): dx = fma(k, x − mean, fma(a, d, b)) per channel.
    struct RowGradient {
        let dx: UnsafeMutableRawPointer, mean: UnsafePointer<Double>, a: UnsafePointer<Double>, b: UnsafePointer<Double>
        let k: UnsafePointer<Double>, stream: Int32
    }

    /// NHWC/NC statistics: the rows cut into ``rowBlocks(rows:)`` blocks (a number fixed
    /// by the shape), each block's per-channel sums from 0 in row order, then the
    /// blocks' partial sums added in block order. Returns `sums`·C totals (s, q[, g, h]).
    /// With `gradient` (and dy), each block's gradient is written in the same walk
    /// (`rows_sums_gradient`).
    static func rowSums(_ passes: Passes, _ x: UnsafeRawPointer, _ dy: UnsafeRawPointer?, mask: UnsafeRawPointer?, rows: Int,
                        channels C: Int, pivot: UnsafePointer<Double>, sums: Int, threads: Int,
                        gradient: RowGradient? = nil) -> [Double] {
        let blocks = rowBlocks(rows: rows)
        let part = UnsafeMutablePointer<Double>.allocate(capacity: max(1, blocks * sums * C))
        part.initialize(repeating: 0, count: max(1, blocks * sums * C))
        defer { part.deallocate() }
        parallelFor(blocks, threads: threads) { range in
            for b in range {
                let base = part + b * sums * C, r = rowRange(block: b, blocks: blocks, rows: rows)
                if let gr = gradient, let dy {
                    passes.table.rows_sums_gradient(x, dy, mask, gr.dx, r.lowerBound, r.upperBound, C, pivot, base + 2 * C, base + 3 * C,
                                                    gr.mean, gr.a, gr.b, gr.k, gr.stream)
                } else {
                    passes.table.rows_sums(x, dy, mask, r.lowerBound, r.upperBound, C, pivot, base, base + C,
                                           dy == nil ? nil : base + 2 * C, dy == nil ? nil : base + 3 * C)
                }
            }
        }
        var out = [Double](repeating: 0, count: sums * C)
        for b in 0..<blocks {
            let base = part + b * sums * C
            for j in 0..<(sums * C) { out[j] += base[j] }
        }
        return out
    }
}
