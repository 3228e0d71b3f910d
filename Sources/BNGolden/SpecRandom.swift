/// The data generator specified in spec/SPEC.md §6, reproducible bit for bit on
/// any IEEE-754 machine: it uses only integer arithmetic and the floating-point
/// operations +, −, ×, ÷ (no libm transcendentals).
///
/// - Seeding: `seed = FNV-1a-64(UTF-8 bytes of the seed string)`.
/// - Stream: SplitMix64 (Steele, Lea & Flood 2014): state += 0x9E3779B97F4A7C15, then
///   z = (z ^ (z >> 30))·0xBF58476D1CE4E5B9, z = (z ^ (z >> 27))·0x94D049BB133111EB, z ^ (z >> 31).
/// - ``uniform()``: (next >> 11)·2⁻⁵³ ∈ [0, 1), exact.
/// - ``normal()``: Irwin–Hall with 12 uniforms, Σu − 6: mean 0, variance 1, support
///   [−6, 6]. Not exactly Gaussian — BN's laws do not need Gaussianity, and this keeps
///   the generator free of log/exp so any language reproduces the same bits.
public struct SpecRandom: Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }
    public init(_ seed: String) { state = Self.fnv1a64(seed) }

    /// FNV-1a, 64-bit: offset basis 0xCBF29CE484222325, prime 0x100000001B3.
    public static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in [a, b).
    public mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * uniform() }

    /// Approximately standard normal (Irwin–Hall, 12 terms), summed left to right.
    public mutating func normal() -> Double {
        var s = 0.0
        for _ in 0..<12 { s += uniform() }
        return s - 6
    }

    /// Uniform integer in 0..<n (n > 0), by rejection (unbiased).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let r = next()
            if r < limit { return Int(r % bound) }
        }
    }

    /// A uniformly random sign.
    public mutating func sign() -> Double { next() & 1 == 0 ? 1 : -1 }
}
