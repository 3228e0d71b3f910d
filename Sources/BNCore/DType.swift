

/// The element types a golden case stores, and how they map to NPY.
///
/// bfloat16 has no NPY dtype: it is stored as little-endian `<u2` bit patterns and
/// named `bfloat16` in the case JSON. Float16 is NPY's `<f2`.
public enum DType: String, Codable, CaseIterable, Sendable {
    case f64 = "float64", f32 = "float32", f16 = "float16", bf16 = "bfloat16"

    public init(parsing s: String) throws {
        switch s.lowercased() {
        case "f64", "float64", "double": self = .f64
        case "f32", "float32", "float": self = .f32
        case "f16", "float16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        default: throw BNError.invalidArgument("unknown dtype '\(s)' (expected f64, f32, f16 or bf16)")
        }
    }

    public var short: String {
        switch self { case .f64: "f64"; case .f32: "f32"; case .f16: "f16"; case .bf16: "bf16" }
    }
    public var npyDescr: String {
        switch self { case .f64: "<f8"; case .f32: "<f4"; case .f16: "<f2"; case .bf16: "<u2" }
    }
    public var byteWidth: Int {
        switch self { case .f64: 8; case .f32: 4; case .f16, .bf16: 2 }
    }
    /// Unit roundoff of the *storage* format (2^-p for p significand bits).
    public var storageRoundoff: Double {
        switch self { case .f64: 0x1p-53; case .f32: 0x1p-24; case .f16: 0x1p-11; case .bf16: 0x1p-8 }
    }
    /// Unit roundoff of the arithmetic an implementation of this storage type uses:
    /// float32 for f32/f16/bf16 (float32 accumulation), float64 for f64.
    public var computeRoundoff: Double { self == .f64 ? 0x1p-53 : 0x1p-24 }
    /// Smallest positive subnormal of the compute type.
    public var computeTiny: Double { self == .f64 ? Double.leastNonzeroMagnitude : Double(Float.leastNonzeroMagnitude) }

    /// Rounds a Double to this storage format (round to nearest even) and back.
    public func quantize(_ x: Double) -> Double {
        switch self {
        case .f64: return x
        case .f32: return Double(Float(x))
        case .f16: return Double(Float16(x))
        // bfloat16 data are defined as RNE(float32(x)): two specified roundings.
        case .bf16: return Double(BFloat16.float(BFloat16.bits(Float(x))))
        }
    }
}

/// bfloat16 as UInt16 bit patterns: the top half of a float32, rounded to nearest even.
public enum BFloat16 {
    /// Rounds a Float to bfloat16 bits (ties to even; NaN stays a quiet NaN).
    @inlinable public static func bits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 | UInt16(f.bitPattern >> 16 & 0x8000) }
        let b = f.bitPattern
        let rounded = b &+ 0x7FFF &+ ((b >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }
    @inlinable public static func float(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
