import BNCore

// The memory passes of the fused kernels. Every pass walks memory linearly: an NCHW
// channel as its N contiguous runs of H·W values, an NHWC/NC block of rows as one
// contiguous run of rows × C values. Arithmetic is in Double (8 lanes, widened from
// the storage type on load), which is free in a memory-bound kernel and makes the
// statistics exact to a few Double ulps (spec/SPEC.md §6 derives the resulting error).

@usableFromInline typealias D8 = SIMD8<Double>

extension UnsafePointer where Pointee == Double {
    @inline(__always) func load8(_ i: Int) -> D8 { UnsafeRawPointer(self + i).loadUnaligned(as: D8.self) }
}
extension UnsafeMutablePointer where Pointee == Double {
    @inline(__always) func load8(_ i: Int) -> D8 { UnsafeRawPointer(self + i).loadUnaligned(as: D8.self) }
    @inline(__always) func store8(_ v: D8, _ i: Int) { UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: D8.self) }
}

/// Sums about a pivot p of one channel: s = Σ(x − p), q = Σ(x − p)², and for the
/// backward pass g = Σdy, h = Σdy·(x − p).
///
/// x − p is exact in Double for any two Float values whose exponents differ by less
/// than 29; the squares and products of such differences are exact in Double up to one
/// rounding each. With p a sample of the channel, q − s²/n has relative error
/// O(n·2⁻⁵³·(1 + (μ − p)²/σ²)) — the classic shifted-data bound (Chan, Golub &
/// LeVeque 1983) — far below float32 resolution for any data a float32 BN meets.
@usableFromInline
struct PivotSums {
    @usableFromInline var s = 0.0, q = 0.0, g = 0.0, h = 0.0
    @usableFromInline init() {}
}

@usableFromInline
struct ChannelAffine {
    /// y = (x − mean)·scale + shift, in Double, rounded once to Float.
    @usableFromInline var mean: Double, scale: Double, shift: Double
}

extension FusedBatchNorm {
    // MARK: NCHW: one channel, N contiguous runs

    @inline(__always)
    static func sumsNCHW<S: StorageElement>(_ x: UnsafePointer<S>, channel c: Int, shape: Shape, pivot: Double) -> PivotSums {
        let N = shape.batch, C = shape.channels, HW = shape.spatialSize
        let pv = D8(repeating: pivot)
        var s0 = D8(), s1 = D8(), q0 = D8(), q1 = D8()
        var st = 0.0, qt = 0.0
        for b in 0..<N {
            let p = x + (b * C + c) * HW
            var i = 0
            while i + 16 <= HW {
                let u = D8(S.load8(p + i)) - pv, v = D8(S.load8(p + i + 8)) - pv
                s0 += u; q0 += u * u; s1 += v; q1 += v * v
                i += 16
            }
            if i + 8 <= HW { let u = D8(S.load8(p + i)) - pv; s0 += u; q0 += u * u; i += 8 }
            while i < HW { let d = Double(S.widen(p[i])) - pivot; st += d; qt += d * d; i += 1 }
        }
        var r = PivotSums()
        r.s = (s0 + s1).sum() + st
        r.q = (q0 + q1).sum() + qt
        return r
    }

    @inline(__always)
    static func sumsNCHW<S: StorageElement>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, mask: UnsafePointer<S>?,
                                            channel c: Int, shape: Shape, pivot: Double) -> PivotSums {
        let N = shape.batch, C = shape.channels, HW = shape.spatialSize
        let pv = D8(repeating: pivot)
        var s8 = D8(), q8 = D8(), g8 = D8(), h8 = D8()
        var r = PivotSums()
        for b in 0..<N {
            let off = (b * C + c) * HW
            let p = x + off, e = dy + off
            var i = 0
            while i + 8 <= HW {
                let u = D8(S.load8(p + i)) - pv
                var d = D8(S.load8(e + i))
                if let m = mask { d.replace(with: 0, where: D8(S.load8(m + off + i)) .<= 0) }
                s8 += u; q8 += u * u; g8 += d; h8 += d * u
                i += 8
            }
            while i < HW {
                let u = Double(S.widen(p[i])) - pivot
                var d = Double(S.widen(e[i]))
                if let m = mask, S.widen(m[off + i]) <= 0 { d = 0 }
                r.s += u; r.q += u * u; r.g += d; r.h += d * u
                i += 1
            }
        }
        r.s += s8.sum(); r.q += q8.sum(); r.g += g8.sum(); r.h += h8.sum()
        return r
    }

    @inline(__always)
    static func applyNCHW<S: StorageElement>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, channel c: Int, shape: Shape,
                                             _ a: ChannelAffine, relu: Bool) {
        let N = shape.batch, C = shape.channels, HW = shape.spatialSize
        let m8 = D8(repeating: a.mean), k8 = D8(repeating: a.scale), b8 = D8(repeating: a.shift)
        for b in 0..<N {
            let off = (b * C + c) * HW
            let p = x + off, o = y + off
            var i = 0
            while i + 8 <= HW {
                var v = (D8(S.load8(p + i)) - m8) * k8 + b8
                if relu { v.replace(with: 0, where: v .< 0) }
                S.store8(SIMD8<Float>(v), o + i)
                i += 8
            }
            while i < HW {
                var v = (Double(S.widen(p[i])) - a.mean) * a.scale + a.shift
                if relu && v < 0 { v = 0 }
                o[i] = S.narrow(Float(v))
                i += 1
            }
        }
    }

    /// dx = a·dy' + b + k·(x − mean), dy' = dy masked by the ReLU output when given.
    @inline(__always)
    static func gradientNCHW<S: StorageElement>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, mask: UnsafePointer<S>?,
                                                _ dx: UnsafeMutablePointer<S>, channel c: Int, shape: Shape,
                                                mean: Double, a: Double, b: Double, k: Double) {
        let N = shape.batch, C = shape.channels, HW = shape.spatialSize
        let m8 = D8(repeating: mean), a8 = D8(repeating: a), b8 = D8(repeating: b), k8 = D8(repeating: k)
        for n in 0..<N {
            let off = (n * C + c) * HW
            var i = 0
            while i + 8 <= HW {
                var d = D8(S.load8(dy + off + i))
                if let m = mask { d.replace(with: 0, where: D8(S.load8(m + off + i)) .<= 0) }
                let v = a8 * d + b8 + k8 * (D8(S.load8(x + off + i)) - m8)
                S.store8(SIMD8<Float>(v), dx + off + i)
                i += 8
            }
            while i < HW {
                var d = Double(S.widen(dy[off + i]))
                if let m = mask, S.widen(m[off + i]) <= 0 { d = 0 }
                dx[off + i] = S.narrow(Float(a * d + b + k * (Double(S.widen(x[off + i])) - mean)))
                i += 1
            }
        }
    }

    // MARK: NHWC / NC: a block of rows, channels innermost

    /// Adds the block's pivot sums into s[0..<C], q[0..<C] (g, h when dy is given).
    @inline(__always)
    static func sumsRows<S: StorageElement>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>?, mask: UnsafePointer<S>?,
                                            rows: Range<Int>, channels C: Int, pivot: UnsafePointer<Double>,
                                            s: UnsafeMutablePointer<Double>, q: UnsafeMutablePointer<Double>,
                                            g: UnsafeMutablePointer<Double>?, h: UnsafeMutablePointer<Double>?) {
        for r in rows {
            let p = x + r * C
            var c = 0
            while c + 8 <= C {
                let u = D8(S.load8(p + c)) - pivot.load8(c)
                s.store8(s.load8(c) + u, c)
                q.store8(q.load8(c) + u * u, c)
                if let dy, let g, let h {
                    var d = D8(S.load8(dy + r * C + c))
                    if let m = mask { d.replace(with: 0, where: D8(S.load8(m + r * C + c)) .<= 0) }
                    g.store8(g.load8(c) + d, c)
                    h.store8(h.load8(c) + d * u, c)
                }
                c += 8
            }
            while c < C {
                let u = Double(S.widen(p[c])) - pivot[c]
                s[c] += u; q[c] += u * u
                if let dy, let g, let h {
                    var d = Double(S.widen(dy[r * C + c]))
                    if let m = mask, S.widen(m[r * C + c]) <= 0 { d = 0 }
                    g[c] += d; h[c] += d * u
                }
                c += 1
            }
        }
    }

    /// y = (x − mean)·scale + shift per channel, over a block of rows.
    @inline(__always)
    static func applyRows<S: StorageElement>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, rows: Range<Int>, channels C: Int,
                                             mean: UnsafePointer<Double>, scale: UnsafePointer<Double>, shift: UnsafePointer<Double>,
                                             relu: Bool) {
        for r in rows {
            let p = x + r * C, o = y + r * C
            var c = 0
            while c + 8 <= C {
                var v = (D8(S.load8(p + c)) - mean.load8(c)) * scale.load8(c) + shift.load8(c)
                if relu { v.replace(with: 0, where: v .< 0) }
                S.store8(SIMD8<Float>(v), o + c)
                c += 8
            }
            while c < C {
                var v = (Double(S.widen(p[c])) - mean[c]) * scale[c] + shift[c]
                if relu && v < 0 { v = 0 }
                o[c] = S.narrow(Float(v))
                c += 1
            }
        }
    }

    /// dx = a·dy' + b + k·(x − mean) per channel, over a block of rows.
    @inline(__always)
    static func gradientRows<S: StorageElement>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, mask: UnsafePointer<S>?,
                                                _ dx: UnsafeMutablePointer<S>, rows: Range<Int>, channels C: Int,
                                                mean: UnsafePointer<Double>, a: UnsafePointer<Double>,
                                                b: UnsafePointer<Double>, k: UnsafePointer<Double>) {
        for r in rows {
            let o = r * C
            var c = 0
            while c + 8 <= C {
                var d = D8(S.load8(dy + o + c))
                if let m = mask { d.replace(with: 0, where: D8(S.load8(m + o + c)) .<= 0) }
                let v = a.load8(c) * d + b.load8(c) + k.load8(c) * (D8(S.load8(x + o + c)) - mean.load8(c))
                S.store8(SIMD8<Float>(v), dx + o + c)
                c += 8
            }
            while c < C {
                var d = Double(S.widen(dy[o + c]))
                if let m = mask, S.widen(m[o + c]) <= 0 { d = 0 }
                dx[o + c] = S.narrow(Float(a[c] * d + b[c] + k[c] * (Double(S.widen(x[o + c])) - mean[c])))
                c += 1
            }
        }
    }
}
