import BNCore
import Foundation

/// One tensor handed to a kernel library: `count` elements in the storage format of `dtype`
/// (bfloat16 and float16 as UInt16 bit patterns), followed by a guard zone.
///
/// The host fills outputs with NaN before a call (an element the kernel never writes reads
/// back as NaN, never as a plausible 0) and checks afterwards that the guard zone is intact
/// (no write past the end) and that inputs are byte-for-byte unchanged (no write to a
/// `const` argument).
final class HostBuffer {
    let dtype: DType
    let count: Int
    let pointer: UnsafeMutableRawPointer
    /// Bytes after the last element that a kernel must not touch.
    static let guardBytes = 256
    static let guardByte: UInt8 = 0xA5

    /// A buffer of `count` NaNs.
    init(dtype: DType, count: Int) {
        self.dtype = dtype; self.count = count
        let bytes = count * dtype.byteWidth + Self.guardBytes
        pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        for i in 0..<count { store(.nan, at: i) }
        (pointer + count * dtype.byteWidth).initializeMemory(as: UInt8.self, repeating: Self.guardByte, count: Self.guardBytes)
    }

    /// A buffer holding `values`, each rounded to `dtype` (exact for values read from a file of that dtype).
    convenience init(dtype: DType, values: [Double]) {
        self.init(dtype: dtype, count: values.count)
        for (i, v) in values.enumerated() { store(v, at: i) }
    }

    deinit { pointer.deallocate() }

    func store(_ v: Double, at i: Int) {
        switch dtype {
        case .f64: pointer.storeBytes(of: v, toByteOffset: i * 8, as: Double.self)
        case .f32: pointer.storeBytes(of: Float(v), toByteOffset: i * 4, as: Float.self)
        case .f16: pointer.storeBytes(of: Float16(v).bitPattern, toByteOffset: i * 2, as: UInt16.self)
        case .bf16: pointer.storeBytes(of: BFloat16.bits(Float(v)), toByteOffset: i * 2, as: UInt16.self)
        }
    }

    /// The elements widened exactly to Double.
    var values: [Double] {
        (0..<count).map { i in
            switch dtype {
            case .f64: return pointer.load(fromByteOffset: i * 8, as: Double.self)
            case .f32: return Double(pointer.load(fromByteOffset: i * 4, as: Float.self))
            case .f16: return Double(Float16(bitPattern: pointer.load(fromByteOffset: i * 2, as: UInt16.self)))
            case .bf16: return Double(BFloat16.float(pointer.load(fromByteOffset: i * 2, as: UInt16.self)))
            }
        }
    }

    /// The element bytes (to check later that an input was not written).
    func snapshot() -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: pointer, count: count * dtype.byteWidth))
    }

    func matches(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { memcmp($0.baseAddress!, pointer, bytes.count) == 0 }
    }

    /// Whether the guard zone after the last element is as it was filled.
    var guardIntact: Bool {
        let g = UnsafeRawBufferPointer(start: pointer + count * dtype.byteWidth, count: Self.guardBytes)
        return g.allSatisfy { $0 == Self.guardByte }
    }
}
