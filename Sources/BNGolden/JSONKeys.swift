import Foundation

/// Repeated keys in JSON text. JSON decoders keep one of two equal keys of an object silently (the
/// last, in Foundation's), so a manifest listing a file twice with two hashes would be read as
/// whichever came last; ``firstDuplicate(in:)`` finds such a key first.
enum JSONKeys {
    /// The first key that occurs twice in one object of `data` (escapes decoded, so `"a"` and
    /// `"\u0061"` are the same key), or nil. Does not validate the JSON (the decoder does); total on
    /// any bytes (fuzzed by tools/fuzz through ``GoldenStore/decodeManifest(_:path:)``).
    ///
    /// Linear in the size of `data`: each open object's key set is mutated in place. (It used to
    /// be read into a local copy beside the mutation, so every key and every comma copied the
    /// whole set: quadratic in the keys of one object, 6,278 in golden/manifest.json's `files`.)
    static func firstDuplicate(in data: Data) -> String? {
        // One entry per open object or array: the object's keys so far (nil for an array), and
        // whether the next string of that object is a key.
        var keys: [Set<String>?] = []
        var expectingKey: [Bool] = []
        let bytes = [UInt8](data)
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "{"): keys.append([]); expectingKey.append(true)
            case UInt8(ascii: "["): keys.append(nil); expectingKey.append(false)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): if !keys.isEmpty { keys.removeLast(); expectingKey.removeLast() }
            case UInt8(ascii: ","): if let top = keys.indices.last, keys[top] != nil { expectingKey[top] = true }
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < bytes.count && bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                if let top = keys.indices.last, keys[top] != nil, expectingKey[top] {
                    let key = decodedKey(bytes[start..<min(i + 1, bytes.count)])
                    if keys[top]!.contains(key) { return key }
                    keys[top]!.insert(key)
                    expectingKey[top] = false
                }
            default: break
            }
            i += 1
        }
        return nil
    }

    /// A key token (with its quotes) as the string the decoder reads: a plain token (valid UTF-8,
    /// no escape, no control character) is its text between the quotes, as JSON defines it; any
    /// other token goes through JSONSerialization, and one it rejects is compared as its raw bytes.
    static func decodedKey(_ token: ArraySlice<UInt8>) -> String {
        if token.count >= 2, token.last == UInt8(ascii: "\"") {
            let inner = token.dropFirst().dropLast()
            if !inner.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x20 }),
               let text = String(validating: inner, as: UTF8.self) { return text }
        }
        let data = Data(token)
        return (try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed)) as? String
            ?? String(decoding: data, as: UTF8.self)
    }
}
