import BNCore

/// The data families of spec/SPEC.md §6: how a case's input values are made.
///
/// Every family draws from ``SpecRandom`` seeded with the case id plus a stream
/// name, and uses only +, −, ×, ÷ — so the values are the same on any IEEE-754
/// machine. Values are generated in Double, per channel, in the logical order
/// (n, c, spatial) → stored in the case's layout, then rounded once to the
/// storage dtype (``DType/quantize(_:)``).
public enum DataFamily {
    public static let names = ["normal", "uniform", "offset", "constant", "near-constant", "subnormal",
                               "huge", "fp16-probe", "exact", "nist", "nonfinite", "nonfinite-edges", "spread", "trend",
                               "params-edge", "stats-nonfinite", "outlier", "nonfinite-params"]

    /// The families whose x is `normal` and whose edge is in the per-channel inputs: γ and β
    /// (``parameters(channels:seed:dtype:family:)``), the given statistics (``givenStatisticsEdges(_:)``).
    static let parameterFamilies: Set<String> = ["params-edge", "stats-nonfinite"]

    /// `name[:parameter]` → [name] or [name, parameter]; never empty (`":"` → ["", ""]).
    static func split(_ family: String) -> [String] {
        family.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    }

    public static func validate(_ family: String) throws {
        let parts = split(family)
        guard names.contains(parts[0]) else {
            throw BNError.invalidArgument("unknown data family '\(family)' (known: \(names.joined(separator: ", ")))")
        }
        switch parts[0] {
        case "offset", "huge", "spread":
            guard parts.count == 2, let v = Double(parts[1]), v > 0, v.isFinite else {
                throw BNError.invalidArgument("family \(parts[0]) needs a finite positive magnitude, e.g. \(parts[0]):1e4")
            }
        case "nist":
            guard parts.count == 2, NISTDataset.names.contains(parts[1]) else {
                throw BNError.invalidArgument("family nist needs a dataset: nist:\(NISTDataset.names.joined(separator: "|"))")
            }
        default:
            guard parts.count == 1 else { throw BNError.invalidArgument("family \(parts[0]) takes no parameter") }
        }
    }

    /// Values for a tensor of `shape` in `layout`, already rounded to `dtype`.
    public static func fill(_ family: String, shape: Shape, layout: Layout, dtype: DType, seed: String) throws -> [Double] {
        try validate(family)
        let parts = split(family)
        let name = parts[0], param = parts.count > 1 ? parts[1] : ""
        var r = SpecRandom(seed)
        let n = shape.perChannelCount, C = shape.channels
        var out = [Double](repeating: 0, count: shape.elementCount)
        let nist: [Double] = name == "nist" ? try NISTDataset.load(param).values : []
        for c in 0..<C {
            // Per-channel location and scale, so channels differ.
            let loc = r.normal(), scale = 0.5 + r.uniform()
            let values: [Double]
            switch parameterFamilies.contains(name) ? "normal" : name {
            case "normal": values = (0..<n).map { _ in loc + scale * r.normal() }
            case "uniform": values = (0..<n).map { _ in loc + scale * r.uniform(-1.7320508075688772, 1.7320508075688772) }
            case "offset":
                // |offset| / spread = the parameter: offset·(1 + U/2)·sign + N(0, 1).
                let o = Double(param)! * (1 + r.uniform() / 2) * r.sign()
                values = (0..<n).map { _ in o + r.normal() }
            case "spread":
                // Spread K about a small mean, K·(loc/10 + scale·N(0, 1)): for small K the variance is far
                // below eps (K = 1e-5: σ² ≈ 1e-10) while the data stay well conditioned (|μ|/σ ≈ 0.1) —
                // where sending 1/√(σ² + ε) instead of σ² loses the variance (spec §11.4 (c)).
                let k = Double(param)!
                values = (0..<n).map { _ in k * (loc / 10 + scale * r.normal()) }
            case "trend":
                // normal plus a ramp over the channel's logical order, scale·(2k/(n − 1) − 1): the
                // two halves of a batch differ in mean by about the scale, so statistics over part
                // of the rows (a dropped block of a split reduction) are off by far more than the
                // roundoff of a long channel, which on iid data they are not (an outside red team's:
                // half-batch statistics passed every n > 32768 float32 case at 0.51 of τ).
                let step = n > 1 ? 2 / Double(n - 1) : 0
                values = (0..<n).map { k in loc + scale * (r.normal() + (Double(k) * step - 1)) }
            case "outlier":
                // normal, plus one value per channel far out, at a drawn position: loc ± scale·(20 + 20U).
                // With n ≥ 512 values its |x̂| is about 15–25 (at most √(n − 1)); on normal data |x̂|
                // stays below about 4.4, where a training kernel that saturates x̂ at ±8 passed every
                // case (an outside red team's). |x| ≤ 6 + 1.5·40: inside float16's range.
                var v = (0..<n).map { _ in loc + scale * r.normal() }
                let far = (20 + 20 * r.uniform()) * r.sign()
                v[r.int(below: n)] = loc + scale * far
                values = v
            case "constant":
                let v = loc * 4
                values = Array(repeating: v, count: n)
            case "near-constant":
                // Variance ~1e-6 relative to the squared mean: a few distinct float32 values.
                let v = 1 + r.uniform()
                values = (0..<n).map { _ in v + v * 0x1p-20 * Double(r.int(below: 5) - 2) }
            case "subnormal":
                // float32 subnormals (< 2^-126): x = 2^-130·(1 + U)·sign.
                values = (0..<n).map { _ in 0x1p-130 * (1 + r.uniform()) * r.sign() }
            case "huge":
                // |x| ≈ parameter (1e20 … 1e30): x² overflows float32; spread ≤ 1e17 keeps
                // (x − μ)² finite in float32 where it is resolvable at all.
                let o = Double(param)! * (1 + r.uniform()) * r.sign()
                let spread = Swift.min(abs(o) * 1e-3, 1e17)
                values = (0..<n).map { _ in o + spread * r.normal() }
            case "fp16-probe":
                // |x| ≈ 300: with n ≥ 219 a float16 running sum exceeds 65504.
                values = (0..<n).map { _ in 300 + 10 * loc + 8 * r.normal() }
            case "exact":
                values = exactFill(n: n, center: Double(r.int(below: 9) - 4), &r)
            case "nonfinite":
                // Standard normal, except one NaN in channel 0 and one +Inf in channel 1:
                // those channels' outputs are NaN (spec §4), the others are untouched.
                var v = (0..<n).map { _ in loc + scale * r.normal() }
                if c == 0 { v[n / 2] = .nan }
                if c == 1 { v[n / 3] = .infinity }
                values = v
            case "nonfinite-edges":
                // Standard normal, with a non-finite value at a channel's first or last element
                // (in memory and logical order alike), cycling over channels: NaN first, NaN last,
                // +Inf first, −Inf last, none. Catches a pivot or a vector tail that mishandles them.
                var v = (0..<n).map { _ in loc + scale * r.normal() }
                switch c % 5 {
                case 0: v[0] = .nan
                case 1: v[n - 1] = .nan
                case 2: v[0] = .infinity
                case 3: v[n - 1] = -.infinity
                default: break
                }
                values = v
            case "nonfinite-params":
                // `params-edge`'s γ and β with a non-finite x in the channels of its edges: a NaN in
                // channel 0 (γ = 0) and 2 (γ = 2⁻¹⁰⁰), +Inf in 1 (γ = 0, β = 0), −Inf in 3 (γ = −1.25):
                // 0·NaN is NaN, so y is NaN there (spec §4), not β (round J: a kernel that writes
                // y = β wherever γ = 0 passed every case; no case had γ = 0 and a non-finite x).
                var v = (0..<n).map { _ in loc + scale * r.normal() }
                switch c {
                case 0: v[n / 2] = .nan
                case 1: v[0] = .infinity
                case 2: v[n - 1] = .nan
                case 3: v[n / 2] = -.infinity
                default: break
                }
                values = v
            case "nist":
                // Consecutive values of the dataset, starting at a per-channel offset.
                let start = r.int(below: nist.count)
                values = (0..<n).map { nist[(start + $0) % nist.count] }
            default: fatalError("unreachable: validated family \(name)")
            }
            var k = 0
            for b in 0..<shape.batch {
                for s in 0..<shape.spatialSize {
                    out[layout.index(n: b, c: c, s: s, shape: shape)] = dtype.quantize(values[k]); k += 1
                }
            }
        }
        return out
    }

    /// The upstream gradient dy of a backward case whose x is `x()` (in `layout`; made only for `trend`), rounded to
    /// `dtype`: N(0, 1) for every family but `nonfinite` (a NaN in channel 2 when C ≥ 4) and `trend`, where per channel
    /// dy = a + b·(x − x̄) + N(0, 1)/2, a and b = ±(0.5 + U), x̄ = Σx/n (summed in logical
    /// order). With iid zero-mean dy, Σdy and Σdy·x̂ are O(√n): at n ≈ 4·10⁴ the two
    /// correction terms of dx, and dβ itself, lie below a float32 channel's roundoff bound,
    /// so a backward that drops them passed (an outside red team's); here they are O(n).
    public static func upstreamGradient(_ family: String, x: () throws -> [Double], shape: Shape, layout: Layout, dtype: DType,
                                        seed: String) rethrows -> [Double] {
        var r = SpecRandom(seed)
        if split(family)[0] == "nonfinite" {
            // N(0, 1) with one NaN in channel 2's dy when C ≥ 4 (channels 3… stay finite): a backward
            // that zeroes a non-finite dy shows in dx, dγ and dβ (x's NaN and +Inf are channels 0, 1).
            var out = (0..<shape.elementCount).map { _ in dtype.quantize(r.normal()) }
            if shape.channels >= 4 {
                let k = shape.perChannelCount / 2
                out[layout.index(n: k / shape.spatialSize, c: 2, s: k % shape.spatialSize, shape: shape)] = .nan
            }
            return out
        }
        guard split(family)[0] == "trend" else { return (0..<shape.elementCount).map { _ in dtype.quantize(r.normal()) } }
        let x = try x()
        var out = [Double](repeating: 0, count: shape.elementCount)
        for c in 0..<shape.channels {
            let a = (0.5 + r.uniform()) * r.sign(), b = (0.5 + r.uniform()) * r.sign()
            var sum = 0.0
            for n in 0..<shape.batch { for s in 0..<shape.spatialSize { sum += x[layout.index(n: n, c: c, s: s, shape: shape)] } }
            let mean = sum / Double(shape.perChannelCount)
            for n in 0..<shape.batch {
                for s in 0..<shape.spatialSize {
                    let i = layout.index(n: n, c: c, s: s, shape: shape)
                    out[i] = dtype.quantize(a + b * (x[i] - mean) + r.normal() / 2)
                }
            }
        }
        return out
    }

    /// benchdnn-style exact fill: pairs c ± j/16 (j ∈ 1…8), plus c itself when n is odd,
    /// shuffled. Every partial sum is a multiple of 1/16 below 2^11 in magnitude for
    /// n ≤ 2^6·… so float32 sums are exact in any order; the mean is exactly c and the
    /// variance Σ(j/16)²/n is exact when n is a power of two.
    static func exactFill(n: Int, center c: Double, _ r: inout SpecRandom) -> [Double] {
        var v: [Double] = []
        while v.count + 2 <= n {
            let a = Double(1 + r.int(below: 8)) / 16
            v.append(c + a); v.append(c - a)
        }
        if v.count < n { v.append(c) }
        for i in stride(from: v.count - 1, to: 0, by: -1) { v.swapAt(i, r.int(below: i + 1)) }
        return v
    }

    /// Per-channel parameters: γ ∈ ±[0.5, 1.5), β ~ N(0, 1). For `params-edge` (any other
    /// family: these draws), channels 0–4 take (round I's γ = 0 and tiny-γ bugs had no case):
    /// 0: γ = 0 (y = β exactly; an in-place backward that recovers x̂ = (y − β)/γ divides by 0),
    /// 1: γ = 0, β = 0 (y = 0), 2: γ = 2⁻¹⁰⁰ (y = β within roundoff, dx ≈ 0), 3: γ = −1.25, β = 0,
    /// 4: γ = 1024, β = −0.5 (|y| ≈ 4·10³, inside float16's range); the others keep the draws, so
    /// that with C = 16 most channels judge y and dx at their natural scale (spec §5.4).
    /// `nonfinite-params` takes the same γ and β (its x is non-finite in channels 0–3).
    public static func parameters(channels: Int, seed: String, dtype: DType, family: String = "normal") -> (gamma: [Double], beta: [Double]) {
        var r = SpecRandom(seed)
        var g = (0..<channels).map { _ in dtype.quantize((0.5 + r.uniform()) * r.sign()) }
        var b = (0..<channels).map { _ in dtype.quantize(r.normal()) }
        if ["params-edge", "nonfinite-params"].contains(split(family)[0]) {
            let edges: [(Double, Double?)] = [(0, nil), (0, 0), (0x1p-100, nil), (-1.25, 0), (1024, -0.5)]
            for (c, e) in edges.enumerated() where c < channels {
                g[c] = e.0
                if let beta = e.1 { b[c] = beta }
            }
        }
        return (g, b)
    }

    /// The operations `stats-nonfinite` applies to: those given statistics — inference and its
    /// backward (the statistics they normalise with), one training step and its synchronized form
    /// (the running statistics they update).
    static let givenStatisticsOperations: [Operation] = [.infer, .backwardInfer, .train, .syncTrain]

    /// A family that applies to some operations only: `stats-nonfinite` to the operations given
    /// statistics (``givenStatisticsOperations``).
    public static func validate(_ family: String, for op: Operation) throws {
        guard split(family)[0] == "stats-nonfinite", !givenStatisticsOperations.contains(op) else { return }
        throw BNError.invalidArgument("data family stats-nonfinite applies to \(givenStatisticsOperations.map(\.rawValue).joined(separator: ", ")) (the operations given statistics), not \(op.rawValue)")
    }

    /// `stats-nonfinite`'s given statistics — those an inference (or its backward) normalises with,
    /// or the running statistics a training step starts from: channel 0's mean NaN, 1's variance
    /// NaN, 2's variance +Inf (inference: y = β exactly, dx = 0), 3's mean −Inf (inference: y = ±Inf),
    /// the others as drawn. Spec §4: the formulas in IEEE arithmetic (round I's inference that
    /// masked NaN statistics passed: every given statistic was finite; so did a running update
    /// that restarts from non-finite running statistics, until they were given to training too).
    static func givenStatisticsEdges(_ s: inout (mean: [Double], variance: [Double])) {
        let edges: [(mean: Double?, variance: Double?)] = [(.nan, nil), (nil, .nan), (nil, .infinity), (-.infinity, nil)]
        for (c, e) in edges.enumerated() where c < s.mean.count {
            if let m = e.mean { s.mean[c] = m }
            if let v = e.variance { s.variance[c] = v }
        }
    }

    /// Per-channel running statistics to start from: mean ~ N(0, 1)·0.5, var ∈ [0.5, 2).
    public static func runningStatistics(channels: Int, seed: String, dtype: DType) -> (mean: [Double], variance: [Double]) {
        var r = SpecRandom(seed)
        let m = (0..<channels).map { _ in dtype.quantize(0.5 * r.normal()) }
        let v = (0..<channels).map { _ in dtype.quantize(0.5 + 1.5 * r.uniform()) }
        return (m, v)
    }
}
