import BNCore
import Foundation

/// A NumPy `.npy` array (format version 1.0/2.0/3.0, little-endian, C order) as
/// BNSpec reads and writes it: the values widened to Double, the dtype they were
/// stored in, and the shape.
///
/// Writing is deterministic: the same array gives the same bytes (header padded
/// with spaces to a multiple of 64 bytes, as NumPy does), and every NaN is written as the
/// format's canonical NaN (``DType/canonicalNaNBits``, SPEC §6.3) whatever its sign and payload.
public struct NPYArray: Equatable, Sendable {
    public var dtype: DType
    public var shape: [Int]
    /// Values widened exactly to Double (bfloat16/float16/float32 → Double is exact).
    public var values: [Double]

    public init(dtype: DType, shape: [Int], values: [Double]) {
        self.dtype = dtype; self.shape = shape; self.values = values
    }

    /// Memory limit for one array when reading (elements); a header declaring more is refused
    /// before anything is allocated.
    public static let maxElements = 1 << 28

    // MARK: Writing

    public func encoded() -> Data {
        let dims = shape.map(String.init).joined(separator: ", ")
        let shapeText = shape.count == 1 ? "(\(dims),)" : "(\(dims))"
        var header = "{'descr': '\(dtype.npyDescr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let hlen = UInt16(header.utf8.count)
        out.append(contentsOf: [UInt8(hlen & 0xFF), UInt8(hlen >> 8)])
        out.append(contentsOf: Array(header.utf8))
        out.reserveCapacity(out.count + values.count * dtype.byteWidth)
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        for v in values {
            if v.isNaN {
                switch dtype {
                case .f64: append(dtype.canonicalNaNBits)
                case .f32: append(UInt32(dtype.canonicalNaNBits))
                case .f16, .bf16: append(UInt16(dtype.canonicalNaNBits))
                }
                continue
            }
            switch dtype {
            case .f64: append(v.bitPattern)
            case .f32: append(Float(v).bitPattern)
            case .f16: append(Float16(v).bitPattern)
            case .bf16: append(BFloat16.bits(Float(v)))
            }
        }
        return out
    }

    // MARK: Reading

    /// Parses `.npy` bytes. `name` is used in error messages.
    /// - Throws: ``BNError/file(path:reason:)`` naming what is wrong: magic, version,
    ///   header, dtype, byte order, Fortran order, shape, or a size that does not match.
    /// `bfloat16`: `<u2` is accepted as bfloat16 bit patterns. The bytes are read in place (no
    /// copy: an array may be 2 GiB).
    public static func decode(_ data: Data, name: String, bfloat16 isBF16: Bool = false) throws -> NPYArray {
        try data.withUnsafeBytes { try decode(raw: $0, name: name, bfloat16: isBF16) }
    }

    /// The longest header accepted: a header is a short Python dict; a longer one is refused before it is read.
    public static let maxHeaderBytes = 1 << 20

    static func decode(raw bytes: UnsafeRawBufferPointer, name: String, bfloat16 isBF16: Bool) throws -> NPYArray {
        func fail(_ r: String) -> BNError { .file(path: name, reason: r) }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("not an NPY file (bad magic)")
        }
        let major = bytes[6]
        let headerLen: Int, start: Int
        switch major {
        case 1: headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated NPY header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default: throw fail("unsupported NPY format version \(major)")
        }
        guard headerLen <= Self.maxHeaderBytes else {
            throw fail("NPY header of \(headerLen) bytes (more than the \(Self.maxHeaderBytes >> 20) MiB this reader accepts; NumPy writes under 1 KiB)")
        }
        guard start + headerLen <= bytes.count else { throw fail("truncated NPY header (\(headerLen) bytes declared, \(bytes.count - start) in the file)") }
        guard let header = String(bytes: bytes[start..<(start + headerLen)], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail("NPY header is not text")
        }
        // A key given twice is read differently by different readers (NumPy takes the last): refused.
        for key in ["descr", "fortran_order", "shape"] where header.components(separatedBy: "'\(key)':").count > 2 {
            throw fail("NPY header gives '\(key)' twice")
        }
        // The three keys NumPy writes and nothing else (NumPy refuses others too): an extra key is
        // read by no reader the same way (an outside red team's `'evil': __import__('os')`).
        let keys = Self.keys(header)
        if let extra = keys.first(where: { !["descr", "fortran_order", "shape"].contains($0) }) {
            throw fail("NPY header has a key '\(extra.prefix(40))' besides 'descr', 'fortran_order' and 'shape'")
        }
        guard let descr = field(header, "descr") else { throw fail("NPY header has no 'descr'") }
        let dtype: DType
        switch descr {
        case "<f8": dtype = .f64
        case "<f4": dtype = .f32
        case "<f2": dtype = .f16
        case "<u2": dtype = .bf16
        case ">f8", ">f4", ">f2", ">u2": throw fail("big-endian dtype '\(descr)' is not supported (write little-endian)")
        default: throw fail("unsupported dtype '\(descr)' (expected <f8, <f4, <f2, or <u2 for bfloat16)")
        }
        if descr == "<u2" && !isBF16 { throw fail("dtype <u2 is only accepted where the case declares bfloat16") }
        guard let fo = field(header, "fortran_order") else { throw fail("NPY header has no 'fortran_order'") }
        guard fo == "False" else { throw fail("Fortran-order arrays are not supported (save C-order)") }
        guard let shapeText = field(header, "shape") else { throw fail("NPY header has no 'shape'") }
        let dimsText = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        var shape: [Int] = []
        for part in dimsText.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { throw fail("bad dimension '\(t)' in shape \(shapeText)") }
            shape.append(d)
        }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, p <= maxElements else {
                throw fail("declared shape \(shapeText) exceeds the limit of \(maxElements) elements")
            }
            count = p
        }
        let body = start + headerLen
        let needed = count * dtype.byteWidth
        guard bytes.count - body == needed else {
            throw fail("data holds \(bytes.count - body) bytes but shape \(shapeText) of \(descr) needs \(needed)")
        }
        var values = [Double](repeating: 0, count: count)
        do {
            let raw = bytes
            for i in 0..<count {
                let o = body + i * dtype.byteWidth
                switch dtype {
                case .f64: values[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
                case .f32: values[i] = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self))))
                case .f16: values[i] = Double(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
                case .bf16: values[i] = Double(BFloat16.float(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
                }
            }
        }
        return NPYArray(dtype: dtype, shape: shape, values: values)
    }

    /// `limit`: the largest file read (bytes); a larger one is refused before it is read.
    public static func read(_ url: URL, bfloat16: Bool = false, limit: Int = FileRead.npyLimit) throws -> NPYArray {
        try decode(try FileRead.data(url, limit: min(limit, FileRead.npyLimit)), name: url.path, bfloat16: bfloat16)
    }

    /// The quoted names before a ':' in a Python dict literal header (its keys).
    static func keys(_ header: String) -> [String] {
        var out: [String] = [], quoted: String? = nil, last: String? = nil
        for ch in header {
            if var q = quoted {
                if ch == "'" { last = q; quoted = nil } else { q.append(ch); quoted = q }
                continue
            }
            switch ch {
            case "'": quoted = ""
            case ":": if let k = last { out.append(k) }; last = nil
            case " ": break
            default: last = nil
            }
        }
        return out
    }

    /// The value text of `'key': value` in a Python dict literal header.
    static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        var rest = header[r.upperBound...].drop(while: { $0 == " " })
        if rest.first == "'" {
            rest = rest.dropFirst()
            return rest.firstIndex(of: "'").map { String(rest[..<$0]) }
        }
        if rest.first == "(" {
            return rest.firstIndex(of: ")").map { String(rest[...$0]) }
        }
        let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) ?? rest.endIndex
        return String(rest[..<end]).trimmingCharacters(in: .whitespaces)
    }
}
