import CBNDigest
import Foundation

/// SHA-256 (FIPS 180-4), used for the golden manifest's integrity hashes and the output digests.
/// Self-contained so the package needs no crypto dependency (CBNDigest: the CPU's SHA extensions
/// where present, chosen at run time, else portable C); checked against the FIPS test vectors,
/// and the two paths against each other, in the test suite.
public enum SHA256 {
    /// An incremental digest: feed bytes with ``update(_:)``, read the digest once with ``finalize()``.
    public struct Hasher {
        var state = bn_sha256()
        /// `portable`: the portable compression function whatever the CPU offers (tests).
        public init(portable: Bool = false) { bn_sha256_init(&state, portable ? 1 : 0) }
        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            bn_sha256_update(&state, base, bytes.count)
        }
        public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
            if let data = bytes as? Data { return data.withUnsafeBytes { update($0) } }
            if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
                Array(bytes).withUnsafeBytes { update($0) }
            }
        }
        /// The digest (32 bytes).
        public mutating func finalize() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 32)
            out.withUnsafeMutableBufferPointer { bn_sha256_final(&state, $0.baseAddress!) }
            return out
        }
    }

    /// Whether the CPU's SHA extensions compute the digests on this machine.
    public static var accelerated: Bool { bn_sha256_accelerated() != 0 }

    /// The digest of `bytes` as 64 lowercase hex digits.
    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        hex(digest: digest(bytes))
    }

    /// 32 digest bytes as 64 lowercase hex digits.
    public static func hex(digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8]()
        s.reserveCapacity(2 * digest.count)
        for b in digest { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }

    public static func digest<C: Collection>(_ input: C, portable: Bool = false) -> [UInt8] where C.Element == UInt8 {
        var h = Hasher(portable: portable)
        h.update(input)
        return h.finalize()
    }
}
