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
    @inlinable @inline(__always) public static func load8(_ p: UnsafePointer<Float16>) -> SIMD8<Float> {
        SIMD8<Float>(UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float16>.self))
    }
    @inlinable @inline(__always) public static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float16>) {
        UnsafeMutableRawPointer(p).storeBytes(of: SIMD8<Float16>(v), as: SIMD8<Float16>.self)
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
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }
    /// Round to nearest even on the bit pattern; NaN stays a quiet NaN of the same sign.
    @inlinable @inline(__always) public static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<BFloat16Bits>) {
        let b = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        let rounded = (b &+ 0x7FFF &+ ((b &>> 16) & 1)) &>> 16
        let quietNaN = (b &>> 16) & 0x8000 | 0x7FC0
        let out = rounded.replacing(with: quietNaN, where: v .!= v)
        UnsafeMutableRawPointer(p).storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: out), as: SIMD8<UInt16>.self)
    }
}
