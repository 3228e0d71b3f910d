import BNCore

/// Explicit-SIMD Float32 batch normalization: the textbook two-pass algorithm
/// (Σx, then Σ(x − μ)², then y = (x − μ)·k + β with k = γ/√(σ² + ε)), vectorised by
/// hand (SIMD16<Float> along an NCHW run, SIMD8<Float> along NHWC/NC channels) and
/// accumulating in Float. Memory is walked linearly.
///
/// **Accuracy contract.** That of any float32 two-pass BN: |δμ| ≤ n·u·max|x| in the
/// worst case (16 interleaved partial sums make the typical error ≈ √(n/16)·u·σ), the
/// variance error (n + 2)·u·σ² + δμ², and a few roundings per output — inside the
/// tolerance model (spec §5) by construction, but not the ½-ulp of ``FusedBatchNorm``.
/// Single-threaded; the passes do not fuse statistics with normalisation.
public enum SIMDBatchNorm {
    /// Per-channel (μ, Σ(x − μ)²) of a training batch.
    static func statistics(_ x: UnsafePointer<Float>, shape: Shape, layout: Layout) -> ([Float], [Float]) {
        let C = shape.channels, n = Float(shape.perChannelCount)
        var mean = [Float](repeating: 0, count: C), m2 = [Float](repeating: 0, count: C)
        switch layout {
        case .nchw:
            for c in 0..<C {
                let m = runSum(x, c, shape) { $0 } / n
                mean[c] = m
                m2[c] = runSum(x, c, shape) { let d = $0 - SIMD16(repeating: m); return d * d }
            }
        case .nhwc, .nc:
            rowsSum(x, shape, into: &mean, { v, _ in v }, { v, _ in v })
            for c in 0..<C { mean[c] /= n }
            let mu = mean
            rowsSum(x, shape, into: &m2, { v, c in
                let d = v - mu.withUnsafeBufferPointer { SIMD8<Float>(UnsafeRawPointer($0.baseAddress! + c).loadUnaligned(as: SIMD8<Float>.self)) }
                return d * d
            }, { v, c in (v - mu[c]) * (v - mu[c]) })
        }
        return (mean, m2)
    }

    /// Σ f(x) over channel c's NCHW runs, 16 lanes at a time (tails padded with f's value on x = μ-free zeros excluded).
    @inline(__always)
    static func runSum(_ x: UnsafePointer<Float>, _ c: Int, _ shape: Shape, _ f: (SIMD16<Float>) -> SIMD16<Float>) -> Float {
        let N = shape.batch, C = shape.channels, HW = shape.spatialSize
        var acc = SIMD16<Float>(), tail: Float = 0
        for b in 0..<N {
            let p = x + (b * C + c) * HW
            var i = 0
            while i + 16 <= HW { acc += f(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)); i += 16 }
            while i < HW { tail += f(SIMD16(repeating: p[i]))[0]; i += 1 }
        }
        return acc.sum() + tail
    }

    /// out[c] += Σ_rows f(x[row, c…c+7], c), 8 channels at a time; the channels past the
    /// last multiple of 8 use the scalar `f1` (a vector `f` there would read past the
    /// per-channel arrays — found by AddressSanitizer, tools/sanitizers.sh).
    @inline(__always)
    static func rowsSum(_ x: UnsafePointer<Float>, _ shape: Shape, into out: inout [Float],
                        _ f: (SIMD8<Float>, Int) -> SIMD8<Float>, _ f1: (Float, Int) -> Float) {
        let C = shape.channels, rows = shape.batch * shape.spatialSize
        out.withUnsafeMutableBufferPointer { o in
            let acc = o.baseAddress!
            for r in 0..<rows {
                let p = x + r * C
                var c = 0
                while c + 8 <= C {
                    let s = UnsafeRawPointer(acc + c).loadUnaligned(as: SIMD8<Float>.self)
                        + f(UnsafeRawPointer(p + c).loadUnaligned(as: SIMD8<Float>.self), c)
                    UnsafeMutableRawPointer(acc + c).storeBytes(of: s, as: SIMD8<Float>.self)
                    c += 8
                }
                while c < C { acc[c] += f1(p[c], c); c += 1 }
            }
        }
    }

    /// y = x·k + b per channel (k, b already combined from γ, β, μ, σ²).
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, shape: Shape, layout: Layout,
                      mean: [Float], scale: [Float], beta: [Float]) {
        let C = shape.channels
        switch layout {
        case .nchw:
            let HW = shape.spatialSize
            for b in 0..<shape.batch {
                for c in 0..<C {
                    let off = (b * C + c) * HW
                    let m = SIMD16<Float>(repeating: mean[c]), k = SIMD16<Float>(repeating: scale[c]), bt = SIMD16<Float>(repeating: beta[c])
                    var i = 0
                    while i + 16 <= HW {
                        let v = (UnsafeRawPointer(x + off + i).loadUnaligned(as: SIMD16<Float>.self) - m) * k + bt
                        UnsafeMutableRawPointer(y + off + i).storeBytes(of: v, as: SIMD16<Float>.self)
                        i += 16
                    }
                    while i < HW { y[off + i] = (x[off + i] - mean[c]) * scale[c] + beta[c]; i += 1 }
                }
            }
        case .nhwc, .nc:
            let rows = shape.batch * shape.spatialSize
            mean.withUnsafeBufferPointer { mp in scale.withUnsafeBufferPointer { kp in beta.withUnsafeBufferPointer { bp in
                let m = mp.baseAddress!, k = kp.baseAddress!, bt = bp.baseAddress!
                for r in 0..<rows {
                    let o = r * C
                    var c = 0
                    while c + 8 <= C {
                        let v = (ld8(x + o + c) - ld8(m + c)) * ld8(k + c) + ld8(bt + c)
                        UnsafeMutableRawPointer(y + o + c).storeBytes(of: v, as: SIMD8<Float>.self)
                        c += 8
                    }
                    while c < C { y[o + c] = (x[o + c] - m[c]) * k[c] + bt[c]; c += 1 }
                }
            }}}
        }
    }

    @inline(__always) static func ld8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func ld8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Training forward; returns (μ_B, biased σ²_B, Σ(x − μ)²).
    @discardableResult
    public static func trainingForward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, shape: Shape, layout: Layout,
                                       gamma: [Float], beta: [Float], eps: Float) -> (mean: [Float], variance: [Float], m2: [Float]) {
        let (mean, m2) = statistics(x, shape: shape, layout: layout)
        let n = Float(shape.perChannelCount)
        let v = m2.map { $0 / n }
        let k = (0..<shape.channels).map { gamma[$0] / (v[$0] + eps).squareRoot() }
        apply(x, y, shape: shape, layout: layout, mean: mean, scale: k, beta: beta)
        return (mean, v, m2)
    }

    public static func inferenceForward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, shape: Shape, layout: Layout,
                                        gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Float) {
        let k = (0..<shape.channels).map { gamma[$0] / (variance[$0] + eps).squareRoot() }
        apply(x, y, shape: shape, layout: layout, mean: mean, scale: k, beta: beta)
    }

    /// Backward (training mode when `statistics` is nil); returns (dγ, dβ).
    public static func backward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, shape: Shape,
                                layout: Layout, gamma: [Float], eps: Float,
                                statistics given: (mean: [Float], variance: [Float])?) -> (dGamma: [Float], dBeta: [Float]) {
        let C = shape.channels, n = Float(shape.perChannelCount)
        let mean: [Float], r: [Float]
        if let given {
            mean = given.mean; r = given.variance.map { 1 / ($0 + eps).squareRoot() }
        } else {
            let (m, m2) = statistics(x, shape: shape, layout: layout)
            mean = m; r = m2.map { 1 / ($0 / n + eps).squareRoot() }
        }
        // Σdy and Σdy·(x − μ): SIMD over the same walks as the statistics.
        var sdy = [Float](repeating: 0, count: C), sdyx = [Float](repeating: 0, count: C)
        let total = shape.elementCount
        var i = 0
        switch layout {
        case .nchw:
            let HW = shape.spatialSize
            for b in 0..<shape.batch {
                for c in 0..<C {
                    let off = (b * C + c) * HW
                    var a = SIMD16<Float>(), h = SIMD16<Float>(), j = 0
                    let m = SIMD16<Float>(repeating: mean[c])
                    while j + 16 <= HW {
                        let d = UnsafeRawPointer(dy + off + j).loadUnaligned(as: SIMD16<Float>.self)
                        a += d; h += d * (UnsafeRawPointer(x + off + j).loadUnaligned(as: SIMD16<Float>.self) - m)
                        j += 16
                    }
                    var ta: Float = 0, th: Float = 0
                    while j < HW { ta += dy[off + j]; th += dy[off + j] * (x[off + j] - mean[c]); j += 1 }
                    sdy[c] += a.sum() + ta; sdyx[c] += h.sum() + th
                }
            }
        case .nhwc, .nc:
            sdy.withUnsafeMutableBufferPointer { ap in sdyx.withUnsafeMutableBufferPointer { hp in mean.withUnsafeBufferPointer { mp in
                let a = ap.baseAddress!, h = hp.baseAddress!, m = mp.baseAddress!
                while i < total {
                    var c = 0
                    while c + 8 <= C {
                        let d = ld8(dy + i + c)
                        UnsafeMutableRawPointer(a + c).storeBytes(of: ld8(a + c) + d, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(h + c).storeBytes(of: ld8(h + c) + d * (ld8(x + i + c) - ld8(m + c)), as: SIMD8<Float>.self)
                        c += 8
                    }
                    while c < C { a[c] += dy[i + c]; h[c] += dy[i + c] * (x[i + c] - m[c]); c += 1 }
                    i += C
                }
            }}}
        }
        let dGamma = (0..<C).map { sdyx[$0] * r[$0] }
        // dx = k·dy + b + kk·(x − μ): the same per-channel affine form for both modes, the last
        // term exactly 0 where kk = 0 (inference mode: dx does not depend on x, so a NaN or ±Inf x
        // must not make it NaN through 0·NaN).
        let k = (0..<C).map { gamma[$0] * r[$0] }
        let b = given == nil ? (0..<C).map { -k[$0] * sdy[$0] / n } : [Float](repeating: 0, count: C)
        let kk = given == nil ? (0..<C).map { -k[$0] * r[$0] * dGamma[$0] / n } : [Float](repeating: 0, count: C)
        switch layout {
        case .nchw:
            let HW = shape.spatialSize
            for bb in 0..<shape.batch {
                for c in 0..<C {
                    let off = (bb * C + c) * HW
                    let k16 = SIMD16<Float>(repeating: k[c]), b16 = SIMD16<Float>(repeating: b[c])
                    let kk16 = SIMD16<Float>(repeating: kk[c]), m16 = SIMD16<Float>(repeating: mean[c])
                    var j = 0
                    while j + 16 <= HW {
                        let d = UnsafeRawPointer(dy + off + j).loadUnaligned(as: SIMD16<Float>.self)
                        let xv = UnsafeRawPointer(x + off + j).loadUnaligned(as: SIMD16<Float>.self)
                        let term = kk[c] == 0 ? SIMD16<Float>() : kk16 * (xv - m16)
                        UnsafeMutableRawPointer(dx + off + j).storeBytes(of: k16 * d + b16 + term, as: SIMD16<Float>.self)
                        j += 16
                    }
                    while j < HW { dx[off + j] = k[c] * dy[off + j] + b[c] + (kk[c] == 0 ? 0 : kk[c] * (x[off + j] - mean[c])); j += 1 }
                }
            }
        case .nhwc, .nc:
            k.withUnsafeBufferPointer { kp in b.withUnsafeBufferPointer { bp in kk.withUnsafeBufferPointer { kkp in mean.withUnsafeBufferPointer { mp in
                let k = kp.baseAddress!, b = bp.baseAddress!, kk = kkp.baseAddress!, m = mp.baseAddress!
                var o = 0
                while o < total {
                    var c = 0
                    while c + 8 <= C {
                        let u = (ld8(x + o + c) - ld8(m + c)).replacing(with: 0, where: ld8(kk + c) .== 0)
                        let v = ld8(k + c) * ld8(dy + o + c) + ld8(b + c) + ld8(kk + c) * u
                        UnsafeMutableRawPointer(dx + o + c).storeBytes(of: v, as: SIMD8<Float>.self)
                        c += 8
                    }
                    while c < C { dx[o + c] = k[c] * dy[o + c] + b[c] + (kk[c] == 0 ? 0 : kk[c] * (x[o + c] - m[c])); c += 1 }
                    o += C
                }
            }}}}
        }
        return (dGamma, sdy)
    }
}
