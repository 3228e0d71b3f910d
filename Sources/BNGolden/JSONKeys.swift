import Foundation

/// Repeated keys in JSON text. JSON decoders keep one of two equal keys of an object silently (the
/// last, in Foundation's), so a manifest listing a file twice with two hashes would be read as
/// whichever came last; ``firstDuplicate(in:)`` finds such a key first.
enum JSONKeys {
    /// The first key that occurs twice in one object of `data` (escapes decoded, so `"a"` and
    /// `"\u0061"` are the same key), or nil. Does not validate the JSON (the decoder does); total on
    /// any bytes (fuzzed by tools/fuzz through ``GoldenStore/decodeManifest(_:path:)``).
    static func firstDuplicate(in data: Data) -> String? {
        // Per open object: its keys so far, and whether the next string is a key.
        var objects: [(keys: Set<String>, expectingKey: Bool)?] = []  // nil: an array
        let bytes = [UInt8](data)
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "{"): objects.append((keys: [], expectingKey: true))
            case UInt8(ascii: "["): objects.append(nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): if !objects.isEmpty { objects.removeLast() }
            case UInt8(ascii: ","): if let top = objects.last, top != nil { objects[objects.count - 1]!.expectingKey = true }
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < bytes.count && bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                if let top = objects.last, let frame = top, frame.expectingKey {
                    let token = Data(bytes[start..<min(i + 1, bytes.count)])
                    let key = (try? JSONSerialization.jsonObject(with: token, options: .fragmentsAllowed)) as? String
                        ?? String(decoding: token, as: UTF8.self)
                    if frame.keys.contains(key) { return key }
                    objects[objects.count - 1]!.keys.insert(key)
                    objects[objects.count - 1]!.expectingKey = false
                }
            default: break
            }
            i += 1
        }
        return nil
    }
}
