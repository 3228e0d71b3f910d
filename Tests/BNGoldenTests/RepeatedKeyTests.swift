import BNCore
import BNGolden
import Foundation
import Testing

/// A key twice in one JSON object is refused (a decoder would keep one of the two silently); the
/// same key in two objects, or as a value, is not. Keys compare as the decoder reads them.
@Suite struct RepeatedKeyTests {
    static let hash = String(repeating: "0", count: 64)

    /// A manifest of `files` (raw key tokens, quotes included) and `extra` (a raw JSON value the
    /// decoder ignores).
    static func manifest(files: [String], extra: String = "[]") -> Data {
        let entries = files.map { "\($0): \"\(hash)\"" }.joined(separator: ", ")
        return Data(("{\"format\": 1, \"suite\": \"s\", \"generator\": \"g\", \"cases\": [\"a\"], \"extra\": \(extra), "
            + "\"files\": {\(entries)}}").utf8)
    }

    /// The key the refusal names, or nil when the manifest decodes.
    static func repeated(_ data: Data) throws -> String? {
        do { _ = try GoldenStore.decodeManifest(data, path: "m.json"); return nil } catch let e as BNError {
            let text = e.description
            guard let r = text.range(of: "key '"), let end = text[r.upperBound...].range(of: "' appears twice") else {
                Issue.record("unexpected refusal: \(text)"); return nil
            }
            return String(text[r.upperBound..<end.lowerBound])
        }
    }

    @Test func distinctKeysPass() throws {
        let many = (0..<5000).map { "\"a/f\($0).npy\"" }
        #expect(try Self.repeated(Self.manifest(files: many)) == nil)
        // The same key in two objects, as a value, inside strings and nested: not repeated in one object.
        let extra = #"[{"k": 1}, {"k": {"k": "k"}}, {"a/f1.npy": "a/f1.npy", "x,\"y\"": "}", "z": ["{", "k"]}]"#
        #expect(try Self.repeated(Self.manifest(files: many, extra: extra)) == nil)
    }

    @Test func aKeyTwiceInOneObjectIsNamed() throws {
        let many = (0..<5000).map { "\"a/f\($0).npy\"" }
        #expect(try Self.repeated(Self.manifest(files: many + ["\"a/f4999.npy\""])) == "a/f4999.npy")
        #expect(try Self.repeated(Self.manifest(files: ["\"a/x.npy\"", "\"b\"", "\"a/x.npy\""])) == "a/x.npy")
        // In an object nested in an array that the decoder ignores.
        #expect(try Self.repeated(Self.manifest(files: ["\"a/x.npy\""], extra: #"[1, {"k": 1, "j": [2], "k": 3}]"#)) == "k")
    }

    /// Escapes are decoded, so a plain key and its escaped spelling are the same key, as the
    /// decoder reads them; so are canonically equivalent spellings (Swift's String equality, the
    /// decoder's dictionary keys).
    @Test(arguments: [
        (#""a/x.npy""#, #""\u0061/x.npy""#, "a/x.npy"),
        (#""a\/x.npy""#, #""a/x.npy""#, "a/x.npy"),
        ("\"\u{e9}.npy\"", #""\u00e9.npy""#, "\u{e9}.npy"),
        ("\"\u{e9}.npy\"", "\"e\u{301}.npy\"", "\u{e9}.npy"),
        (#""q\"uote""#, #""q\u0022uote""#, "q\"uote"),
    ])
    func spellingsOfOneKeyAreOneKey(first: String, second: String, key: String) throws {
        let named = try Self.repeated(Self.manifest(files: [first, "\"b\"", second]))
        #expect(named == key)
    }
}
