import BNCore
import BNGolden
import BNKernels
import BNReference
import Foundation
import PropertyBased

/// Shared generators and helpers of the BN laws (issue #5).
///
/// Run counts: each law states its default (≥ 200 for the cheap ones); the environment
/// variable `BNSPEC_LAW_COUNT=N` raises every law to at least N runs for long local
/// runs (`BNSPEC_LAW_COUNT=5000 swift test --filter BNLawsTests`). A failing law prints
/// the shrunk input (shape, layout, family, eps, seed — enough to rebuild the tensor
/// with ``LawInput/x``) and swift-property-based's replay seed; use that seed locally,
/// never commit it.
enum Laws {
    static func count(_ base: Int) -> Int {
        let env = ProcessInfo.processInfo.environment["BNSPEC_LAW_COUNT"].flatMap { Int($0) } ?? 0
        return max(base, env)
    }

    /// Data families the laws draw from (spec §6.2), with NaN/Inf added by the laws that speak of them.
    static let families = ["normal", "uniform", "offset:1e2", "offset:1e4", "near-constant", "constant", "subnormal", "huge:1e20",
                           "exact"]
    /// Families on which float32 arithmetic is well-defined for every law (no subnormal or overflowing squares).
    static let floatFamilies = ["normal", "uniform", "offset:1e2", "offset:1e4", "near-constant", "constant", "exact"]
}

/// One generated BN input: shape, layout, data family, eps and a data seed.
struct LawInput: CustomStringConvertible, Sendable {
    var batch: Int, channels: Int, spatial: [Int]
    var layout: Layout
    var family: String
    var eps: Double
    var seed: Int

    var shape: Shape { try! Shape(batch: batch, channels: channels, spatial: spatial) }
    var description: String {
        "\(shape) \(layout.rawValue) data=\(family) eps=\(eps) seed=\(seed)"
    }

    /// The tensor: DataFamily's values for this family, rounded to `dtype`.
    func x(_ dtype: DType = .f32, stream: String = "x") -> [Double] {
        try! DataFamily.fill(family, shape: shape, layout: layout, dtype: dtype, seed: "law/\(seed)/\(stream)")
    }
    func parameters(_ dtype: DType = .f32) -> (gamma: [Double], beta: [Double]) {
        DataFamily.parameters(channels: channels, seed: "law/\(seed)/params", dtype: dtype)
    }
    func dy(_ dtype: DType = .f32) -> [Double] {
        try! DataFamily.fill("normal", shape: shape, layout: layout, dtype: dtype, seed: "law/\(seed)/dy")
    }

    /// Indices of channel c, in storage order.
    func indices(_ c: Int) -> [Int] {
        layout.segments(channel: c, shape: shape).flatMap { s in (0..<s.count).map { s.offset + $0 * s.stride } }
    }

    /// Generator over shapes with N ∈ 1…5 (N = 1, 2 frequent), C ∈ 1…11 (not multiples of
    /// the SIMD width), spatial none, 1×1 or up to 5×4, all layouts, the given families and eps.
    static func gen(families: [String] = Laws.floatFamilies, eps: [Double] = [1e-5, 1e-3, 0.1], minBatchValues: Int = 2)
        -> PropertyBased.Generator<LawInput, some SendableSequenceType>
    {
        zip(Gen.int(in: 1...5), Gen.int(in: 1...11), Gen.int(in: 0...5), Gen.int(in: 1...4), pick([Layout.nchw, .nhwc, .nc]),
            pick(families), pick(eps), Gen.int(in: 0...1_000_000))
            .map { n, c, h, w, layout, family, e, seed in
                var spatial = h == 0 ? [] : [h, w]
                var l = layout
                if l == .nc { spatial = [] }
                if spatial.isEmpty && l == .nhwc { l = .nc }
                var input = LawInput(batch: n, channels: c, spatial: spatial, layout: l, family: family, eps: e, seed: seed)
                // Keep at least `minBatchValues` values per channel.
                while input.batch * input.shape.spatialSize < minBatchValues { input.batch += 1 }
                return input
            }
    }
}

/// Float32 ulp of |v| (for kernel bounds).
func ulpF(_ v: Double) -> Double { Double(Float(abs(v)).ulp) }

/// Picks one of `values` (shrinking towards the first).
func pick<T: Sendable>(_ values: [T]) -> PropertyBased.Generator<T, some SendableSequenceType> {
    Gen.int(in: 0...(values.count - 1)).map { values[$0] }
}
