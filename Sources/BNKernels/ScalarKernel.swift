import BNCore

/// The straightforward BN loops anyone would write: two passes per channel
/// (Σx, then Σ(x − μ)²), accumulating in the compute type T (Float for float32,
/// float16 and bfloat16 storage; Double for float64), memory walked in storage order.
///
/// It is BNSpec's baseline kernel and the honest kernel the tolerance model is calibrated
/// with (spec/SPEC.md §5.5): it must pass every golden case. Error: the recursive-summation
/// bounds of §5.1 (δμ ≤ n·u·max|x|, δv ≤ (n + 2)·u·v + δμ²), which the tolerance model assumes.
/// Its buggy variations live in BNCalibration.
public struct ScalarKernel: LoopKernel {
    public init() {}

    public var name: String { "scalar" }
    public var role: KernelRole { .implementation }

    // MARK: the loops (LoopKernel supplies the entry points)

    /// (mean, Σ(x − mean)²) in T: Σx, then the squared deviations from the computed mean.
    func stats<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ c: Int, _ shape: Shape, _ layout: Layout) -> (T, T) {
        var s: T = 0
        forEach(c, shape, layout) { s += x[$0] }
        let m = s / T(shape.perChannelCount)
        var ss: T = 0
        forEach(c, shape, layout) { let d = x[$0] - m; ss += d * d }
        return (m, ss)
    }

    func invStd<T: BinaryFloatingPoint>(_ v: T, _ eps: T) -> T { 1 / (v + eps).squareRoot() }

    /// Training forward on raw buffers; updates `rm`/`rv` in place and returns (μ_B, σ²_B).
    public func trainingForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
                                                 _ layout: Layout, _ gamma: [T], _ beta: [T], _ eps: T,
                                                 _ rm: inout [T], _ rv: inout [T], _ step: Int,
                                                 _ rule: RunningUpdateRule) throws -> ([T], [T]) {
        let n = shape.perChannelCount
        var bm = [T](), bv = [T]()
        let w: T = rule.batchWeight.map { T($0) } ?? 1 / T(step)
        for c in 0..<shape.channels {
            let (m, ss) = stats(x, c, shape, layout)
            let v = ss / T(n)
            let r = invStd(v, eps), g = gamma[c], b = beta[c]
            forEach(c, shape, layout) { i in y[i] = g * (x[i] - m) * r + b }
            let vRun: T
            if rule.estimator == .unbiased {
                if n > 1 { vRun = ss / T(n - 1) } else {
                    switch rule.singleValue {
                    case .error: throw BNError.singleValuePerChannel(profile: "kernel")
                    case .beta: vRun = v
                    case .nan: vRun = .nan
                    }
                }
            } else { vRun = v }
            bm.append(m); bv.append(v)
            rm[c] = (1 - w) * rm[c] + w * m
            rv[c] = (1 - w) * rv[c] + w * vRun
        }
        return (bm, bv)
    }

    public func inferenceForward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeMutableBufferPointer<T>, _ shape: Shape,
                                                  _ layout: Layout, _ gamma: [T], _ beta: [T], _ eps: T, _ mean: [T], _ variance: [T]) {
        for c in 0..<shape.channels {
            let m = mean[c], r = invStd(variance[c], eps), g = gamma[c], b = beta[c]
            forEach(c, shape, layout) { i in y[i] = g * (x[i] - m) * r + b }
        }
    }

    /// Backward on raw buffers (training mode when `given` is nil); returns (dγ, dβ).
    public func backward<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>, _ dy: UnsafeBufferPointer<T>, _ dx: UnsafeMutableBufferPointer<T>,
                                          _ shape: Shape, _ layout: Layout, _ gamma: [T], _ eps: T,
                                          _ given: ([T], [T])?) -> ([T], [T]) {
        let n = T(shape.perChannelCount)
        var dg = [T](), db = [T]()
        for c in 0..<shape.channels {
            let m: T, r: T
            if let (gm, gv) = given { m = gm[c]; r = invStd(gv[c], eps) } else {
                let (mm, ss) = stats(x, c, shape, layout)
                m = mm; r = invStd(ss / n, eps)
            }
            var sdy: T = 0, sdyx: T = 0
            forEach(c, shape, layout) { i in sdy += dy[i]; sdyx += dy[i] * (x[i] - m) * r }
            let k = gamma[c] * r
            if given != nil {
                forEach(c, shape, layout) { i in dx[i] = k * dy[i] }
            } else {
                let mdy = sdy / n, mdyx = sdyx / n
                forEach(c, shape, layout) { i in dx[i] = k * (dy[i] - mdy - (x[i] - m) * r * mdyx) }
            }
            dg.append(sdyx); db.append(sdy)
        }
        return (dg, db)
    }
}
