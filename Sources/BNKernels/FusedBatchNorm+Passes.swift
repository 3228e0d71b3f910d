import BNCore
import CBNStream

// The memory passes of the fused kernels. Every pass walks memory linearly: an NCHW
// channel as its N contiguous runs of H·W values, an NHWC/NC block of rows as one
// contiguous run of rows × C values. Arithmetic is in Double (8 lanes, widened from
// the storage type on load), which is free in a memory-bound kernel and makes the
// statistics exact to a few Double ulps (spec/SPEC.md §6 derives the resulting error).

@usableFromInline typealias D8 = SIMD8<Double>

/// Float → Double lanes, written lane by lane so that LLVM emits two `vcvtps2pd`
/// inline (the generic SIMD conversion initializer was left as an out-of-line call).
@inline(__always) func wide(_ v: SIMD8<Float>) -> D8 {
    D8(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]), Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7]))
}
/// Double → Float lanes (round to nearest even), inline.
@inline(__always) func narrow(_ v: D8) -> SIMD8<Float> {
    SIMD8<Float>(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]))
}

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
    // MARK: NCHW: contiguous runs of H·W values of one channel

    /// Adds Σ(x − p) and Σ(x − p)² of one run into `t` (16 values per step: four
    /// independent 4-lane chains per sum hide the add latency without spilling the
    /// sixteen AVX registers).
    @inline(__always)
    static func addSums<S: StorageElement>(_ p: UnsafePointer<S>, count: Int, pivot: Double, into t: inout PivotSums) {
        let pv = D8(repeating: pivot)
        var s0 = D8(), s1 = D8(), q0 = D8(), q1 = D8()
        var i = 0
        while i + 16 <= count {
            let a = wide(S.load8(p + i)) - pv, b = wide(S.load8(p + i + 8)) - pv
            s0 += a; s1 += b
            q0 = q0.addingProduct(a, a); q1 = q1.addingProduct(b, b)
            i += 16
        }
        if i + 8 <= count { let a = wide(S.load8(p + i)) - pv; s0 += a; q0 = q0.addingProduct(a, a); i += 8 }
        var st = 0.0, qt = 0.0
        while i < count { let u = Double(S.widen(p[i])) - pivot; st += u; qt = qt.addingProduct(u, u); i += 1 }
        t.s += (s0 + s1).sum() + st
        t.q += (q0 + q1).sum() + qt
    }

    /// Adds the four backward sums of one run (dy masked by `mask` ≤ 0 when given).
    @inline(__always)
    static func addSums<S: StorageElement>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, mask: UnsafePointer<S>?, count: Int,
                                           pivot: Double, into t: inout PivotSums) {
        let pv = D8(repeating: pivot)
        var s0 = D8(), q0 = D8(), g0 = D8(), h0 = D8(), s1 = D8(), q1 = D8(), g1 = D8(), h1 = D8()
        var i = 0
        while i + 16 <= count {
            let a = wide(S.load8(x + i)) - pv, b = wide(S.load8(x + i + 8)) - pv
            var da = wide(S.load8(dy + i)), db = wide(S.load8(dy + i + 8))
            if let m = mask {
                da.replace(with: 0, where: wide(S.load8(m + i)) .<= 0); db.replace(with: 0, where: wide(S.load8(m + i + 8)) .<= 0)
            }
            s0 += a; q0 = q0.addingProduct(a, a); g0 += da; h0 = h0.addingProduct(da, a)
            s1 += b; q1 = q1.addingProduct(b, b); g1 += db; h1 = h1.addingProduct(db, b)
            i += 16
        }
        var st = 0.0, qt = 0.0, gt = 0.0, ht = 0.0
        while i < count {
            let u = Double(S.widen(x[i])) - pivot
            var d = Double(S.widen(dy[i]))
            if let m = mask, S.widen(m[i]) <= 0 { d = 0 }
            st += u; qt = qt.addingProduct(u, u); gt += d; ht = ht.addingProduct(d, u)
            i += 1
        }
        t.s += (s0 + s1).sum() + st; t.q += (q0 + q1).sum() + qt
        t.g += (g0 + g1).sum() + gt; t.h += (h0 + h1).sum() + ht
    }

    /// y = (x − mean)·scale + shift over one run, in Double, one rounding to Float.
    /// With `stream` (Float storage only), the output bypasses the cache
    /// (``bn_stream_store8``); the values are the same either way.
    @inline(__always)
    static func applyRun<S: StorageElement>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, count: Int, _ a: ChannelAffine,
                                            relu: Bool, stream: Bool = false) {
        let m8 = D8(repeating: a.mean), k8 = D8(repeating: a.scale), b8 = D8(repeating: a.shift)
        @inline(__always) func one(_ i: Int) {
            var v = a.shift.addingProduct(Double(S.widen(x[i])) - a.mean, a.scale)
            if relu && v < 0 { v = 0 }
            y[i] = S.narrow(Float(v))
        }
        @inline(__always) func eight(_ i: Int) -> SIMD8<Float> {
            var v = b8.addingProduct(wide(S.load8(x + i)) - m8, k8)
            if relu { v.replace(with: 0, where: v .< 0) }
            return narrow(v)
        }
        var i = 0
        if stream && S.self == Float.self {
            let yf = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
            while i < count && Int(bitPattern: yf + i) & 31 != 0 { one(i); i += 1 }
            while i + 8 <= count { bn_stream_store8(yf + i, eight(i)); i += 8 }
        } else {
            while i + 8 <= count { S.store8(eight(i), y + i); i += 8 }
        }
        while i < count { one(i); i += 1 }
    }

    /// dx = a·dy' + b + k·(x − mean) over one run, dy' = dy masked by the ReLU output
    /// when given; `stream` as in ``applyRun``.
    @inline(__always)
    static func gradientRun<S: StorageElement>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, mask: UnsafePointer<S>?,
                                               _ dx: UnsafeMutablePointer<S>, count: Int,
                                               mean: Double, a: Double, b: Double, k: Double, stream: Bool = false) {
        let m8 = D8(repeating: mean), a8 = D8(repeating: a), b8 = D8(repeating: b), k8 = D8(repeating: k)
        @inline(__always) func one(_ i: Int) {
            var d = Double(S.widen(dy[i]))
            if let m = mask, S.widen(m[i]) <= 0 { d = 0 }
            dx[i] = S.narrow(Float(b.addingProduct(a, d).addingProduct(k, Double(S.widen(x[i])) - mean)))
        }
        @inline(__always) func eight(_ i: Int) -> SIMD8<Float> {
            var d = wide(S.load8(dy + i))
            if let m = mask { d.replace(with: 0, where: wide(S.load8(m + i)) .<= 0) }
            return narrow(b8.addingProduct(a8, d).addingProduct(k8, wide(S.load8(x + i)) - m8))
        }
        var i = 0
        if stream && S.self == Float.self {
            let o = UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self)
            while i < count && Int(bitPattern: o + i) & 31 != 0 { one(i); i += 1 }
            while i + 8 <= count { bn_stream_store8(o + i, eight(i)); i += 8 }
        } else {
            while i + 8 <= count { S.store8(eight(i), dx + i); i += 8 }
        }
        while i < count { one(i); i += 1 }
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
                let u = wide(S.load8(p + c)) - pivot.load8(c)
                s.store8(s.load8(c) + u, c)
                q.store8(q.load8(c).addingProduct(u, u), c)
                if let dy, let g, let h {
                    var d = wide(S.load8(dy + r * C + c))
                    if let m = mask { d.replace(with: 0, where: wide(S.load8(m + r * C + c)) .<= 0) }
                    g.store8(g.load8(c) + d, c)
                    h.store8(h.load8(c).addingProduct(d, u), c)
                }
                c += 8
            }
            while c < C {
                let u = Double(S.widen(p[c])) - pivot[c]
                s[c] += u; q[c] = q[c].addingProduct(u, u)
                if let dy, let g, let h {
                    var d = Double(S.widen(dy[r * C + c]))
                    if let m = mask, S.widen(m[r * C + c]) <= 0 { d = 0 }
                    g[c] += d; h[c] = h[c].addingProduct(d, u)
                }
                c += 1
            }
        }
    }

    /// y = (x − mean)·scale + shift over all `rows`, with the coefficients stored in `work`,
    /// in `blocks` fixed row blocks shared among `threads` (NHWC/NC second pass).
    @inline(__always)
    static func applyAffineRows<S: StorageElement>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, rows: Int, blocks: Int,
                                                   work: RowWorkspace, relu: Bool, threads: Int) {
        let m = UnsafePointer(work.mean), k = UnsafePointer(work.scale), sh = UnsafePointer(work.shift), C = work.channels
        parallelFor(blocks, threads: threads) { b in
            applyRows(x, y, rows: rowRange(block: b, blocks: blocks, rows: rows), channels: C, mean: m, scale: k, shift: sh, relu: relu)
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
                var v = shift.load8(c).addingProduct(wide(S.load8(p + c)) - mean.load8(c), scale.load8(c))
                if relu { v.replace(with: 0, where: v .< 0) }
                S.store8(narrow(v), o + c)
                c += 8
            }
            while c < C {
                var v = shift[c].addingProduct(Double(S.widen(p[c])) - mean[c], scale[c])
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
                var d = wide(S.load8(dy + o + c))
                if let m = mask { d.replace(with: 0, where: wide(S.load8(m + o + c)) .<= 0) }
                let v = b.load8(c).addingProduct(a.load8(c), d).addingProduct(k.load8(c), wide(S.load8(x + o + c)) - mean.load8(c))
                S.store8(narrow(v), dx + o + c)
                c += 8
            }
            while c < C {
                var d = Double(S.widen(dy[o + c]))
                if let m = mask, S.widen(m[o + c]) <= 0 { d = 0 }
                dx[o + c] = S.narrow(Float(b[c].addingProduct(a[c], d).addingProduct(k[c], Double(S.widen(x[o + c])) - mean[c])))
                c += 1
            }
        }
    }
}
