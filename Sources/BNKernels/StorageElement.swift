import BNCore

/// A tensor element type the optimized kernels read and write: values are
/// widened to Float on load and rounded (to nearest even) on store; parameters and
/// accumulation are never in the storage type.
///
/// Contract: `load` is exact (every storage value is a Float); `store` rounds once
/// from Float. A kernel that computes in Double rounds Double → Float → storage;
/// for Float16/bfloat16 that is two roundings, which can differ from one correct
/// rounding only when the Double lies within 2⁻²⁴ relative of a storage midpoint
/// (error still ≤ u_s·(1 + 2⁻¹³)·|y|, inside the tolerance model's storage term).
public protocol StorageElement: Sendable {
    static var dtype: DType { get }
    static func widen(_ v: Self) -> Float
    static func narrow(_ v: Float) -> Self
    static func load8(_ p: UnsafePointer<Self>) -> SIMD8<Float>
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Self>)
}

extension Float: StorageElement {
    public static var dtype: DType { .f32 }
    @inlinable @inline(__always) public static func widen(_ v: Float) -> Float { v }
    @inlinable @inline(__always) public static func narrow(_ v: Float) -> Float { v }
    @inlinable @inline(__always) public static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inlinable @inline(__always) public static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}

#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
extension Float16: StorageElement {
    public static var dtype: DType { .f16 }
    @inlinable @inline(__always) public static func widen(_ v: Float16) -> Float { Float(v) }
    @inlinable @inline(__always) public static func narrow(_ v: Float) -> Float16 { Float16(v) }
    // Lane-by-lane conversions: LLVM turns them into vcvtph2ps / vcvtps2ph (F16C) inline,
    // where the generic SIMD conversion initializers stayed out-of-line calls.
    @inlinable @inline(__always) public static func load8(_ p: UnsafePointer<Float16>) -> SIMD8<Float> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float16>.self)
        return SIMD8<Float>(Float(h[0]), Float(h[1]), Float(h[2]), Float(h[3]), Float(h[4]), Float(h[5]), Float(h[6]), Float(h[7]))
    }
    @inlinable @inline(__always) public static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float16>) {
        let h = SIMD8<Float16>(Float16(v[0]), Float16(v[1]), Float16(v[2]), Float16(v[3]), Float16(v[4]), Float16(v[5]),
                               Float16(v[6]), Float16(v[7]))
        UnsafeMutableRawPointer(p).storeBytes(of: h, as: SIMD8<Float16>.self)
    }
}
#endif

/// A bfloat16 value as its bit pattern (the top 16 bits of a float32).
public struct BFloat16Bits: StorageElement, Equatable {
    public var bits: UInt16
    @inlinable public init(bits: UInt16) { self.bits = bits }
    public static var dtype: DType { .bf16 }
    @inlinable @inline(__always) public static func widen(_ v: BFloat16Bits) -> Float { BFloat16.float(v.bits) }
    @inlinable @inline(__always) public static func narrow(_ v: Float) -> BFloat16Bits { BFloat16Bits(bits: BFloat16.bits(v)) }
    @inlinable @inline(__always) public static func load8(_ p: UnsafePointer<BFloat16Bits>) -> SIMD8<Float> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt16>.self)
        let w = SIMD8<UInt32>(UInt32(h[0]), UInt32(h[1]), UInt32(h[2]), UInt32(h[3]), UInt32(h[4]), UInt32(h[5]), UInt32(h[6]),
                              UInt32(h[7]))
        return unsafeBitCast(w &<< 16, to: SIMD8<Float>.self)
    }
    /// Round to nearest even on the bit pattern; NaN stays a quiet NaN of the same sign.
    @inlinable @inline(__always) public static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<BFloat16Bits>) {
        let b = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        let rounded = (b &+ 0x7FFF &+ ((b &>> 16) & 1)) &>> 16
        let quietNaN = (b &>> 16) & 0x8000 | 0x7FC0
        let out = rounded.replacing(with: quietNaN, where: v .!= v)
        let h = SIMD8<UInt16>(UInt16(truncatingIfNeeded: out[0]), UInt16(truncatingIfNeeded: out[1]), UInt16(truncatingIfNeeded: out[2]),
                              UInt16(truncatingIfNeeded: out[3]), UInt16(truncatingIfNeeded: out[4]), UInt16(truncatingIfNeeded: out[5]),
                              UInt16(truncatingIfNeeded: out[6]), UInt16(truncatingIfNeeded: out[7]))
        UnsafeMutableRawPointer(p).storeBytes(of: h, as: SIMD8<UInt16>.self)
    }
}
