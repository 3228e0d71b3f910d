/// The one NaN bit pattern BNSpec writes (spec/SPEC.md §6.3).
///
/// IEEE 754 leaves the sign and payload of a NaN produced by arithmetic unspecified: x86 gives
/// the negative quiet NaN (0xFFF8…) for ∞ − ∞ or 0·∞, Arm the positive one, and an optimiser may
/// fold an operation into a constant with either. Golden files and output digests must be the same
/// bits whatever built them, so every array BNSpec writes and every digest it computes replaces any
/// NaN by the positive quiet NaN with a zero payload.
extension DType {
    /// The canonical NaN of this storage format: float64 0x7FF8000000000000, float32 0x7FC00000,
    /// float16 0x7E00, bfloat16 0x7FC0 (the top half of the float32 one).
    public var canonicalNaNBits: UInt64 {
        switch self {
        case .f64: 0x7FF8_0000_0000_0000
        case .f32: 0x7FC0_0000
        case .f16: 0x7E00
        case .bf16: 0x7FC0
        }
    }
}

extension Double {
    /// The bit pattern, with every NaN (any sign, any payload) given as the canonical
    /// 0x7FF8000000000000: equal for two values iff they are the same number or both NaN.
    @inlinable public var canonicalBitPattern: UInt64 { isNaN ? 0x7FF8_0000_0000_0000 : bitPattern }
}
