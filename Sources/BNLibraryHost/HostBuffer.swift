import BNCore
import Foundation

/// One tensor handed to a kernel library: `count` elements in the storage format of `dtype`
/// (bfloat16 and float16 as UInt16 bit patterns), between two guard zones.
///
/// The host fills outputs with NaN before a call (an element the kernel never writes reads
/// back as NaN, never as a plausible 0) and checks afterwards that the guard zones are intact
/// (no write just before the first element or past the last one) and that inputs are
/// byte-for-byte unchanged (no write to a `const` argument).
///
/// Layout (its own mapping, page-aligned): `reserveBytes` inaccessible, a page of guard bytes,
/// the elements from a page boundary, guard bytes to the next page boundary and one more page,
/// `reserveBytes` inaccessible. A stray write within a page of either end is reported by name; one
/// further out, up to `reserveBytes`, faults and fails the case as a crash in the entry point.
final class HostBuffer {
    let dtype: DType
    let count: Int
    let pointer: UnsafeMutableRawPointer
    /// The whole mapping, and where the writable part starts and how long it is.
    private let base: UnsafeMutableRawPointer, mapped: Int, front: Int, writable: Int
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    /// Inaccessible bytes before and after the guard zones.
    static let reserveBytes = 64 << 10
    static let guardByte: UInt8 = 0xA5

    /// A buffer of `count` NaNs.
    init(dtype: DType, count: Int) {
        self.dtype = dtype; self.count = count
        let page = Self.page
        let data = count * dtype.byteWidth
        let back = (data + page - 1) / page * page - data + page
        front = Self.reserveBytes + page
        writable = page + data + back
        mapped = Self.reserveBytes + writable + Self.reserveBytes
        guard let m = mmap(nil, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED,
              mprotect(m + Self.reserveBytes, writable, PROT_READ | PROT_WRITE) == 0 else {
            fatalError("library-host: cannot map \(mapped) bytes for a buffer (errno \(errno))")
        }
        base = m
        pointer = m + front
        (m + Self.reserveBytes).initializeMemory(as: UInt8.self, repeating: Self.guardByte, count: writable)
        for i in 0..<count { store(.nan, at: i) }
    }

    /// A buffer holding `values`, each rounded to `dtype` (exact for values read from a file of that dtype).
    convenience init(dtype: DType, values: [Double]) {
        self.init(dtype: dtype, count: values.count)
        for (i, v) in values.enumerated() { store(v, at: i) }
    }

    deinit { munmap(base, mapped) }

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

    /// Whether the guard zone before the first element is as it was filled.
    var frontIntact: Bool {
        UnsafeRawBufferPointer(start: base + Self.reserveBytes, count: Self.page).allSatisfy { $0 == Self.guardByte }
    }

    /// Whether the guard zone after the last element is as it was filled.
    var backIntact: Bool {
        let data = count * dtype.byteWidth
        return UnsafeRawBufferPointer(start: pointer + data, count: writable - Self.page - data).allSatisfy { $0 == Self.guardByte }
    }
}
