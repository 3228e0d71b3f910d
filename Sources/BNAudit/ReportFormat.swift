import BNCore
import BNGolden
import Foundation

/// The JSON reports bnspec writes (spec/AUDIT.md §6): each names its `schema` (a versioned name,
/// bumped when a key changes meaning or goes away), the `bnspec_version` that wrote it and, when
/// it read golden vectors, `golden_sha256`, the SHA-256 of that golden folder's manifest.json.
///
/// Numbers are JSON numbers. Non-finite values, everywhere, are the strings `"inf"`, `"-inf"` and
/// `"nan"` (``encoder()``): a worst ratio of a NaN where a number was expected is `"inf"`.
public enum ReportFormat {
    /// The version of bnspec (the CLI's `--version`, reports' `bnspec_version`).
    public static let bnspecVersion = "0.1.0"
    public static let auditSchema = "bnspec-audit-report/1"
    public static let verifySchema = "bnspec-verify-report/1"
    public static let fingerprintSchema = "bnspec-fingerprint/1"

    /// Pretty, key-sorted JSON with the non-finite convention.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    /// Reads what ``encoder()`` writes.
    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// SHA-256 (hex) of `golden/manifest.json`; it lists every file's SHA-256, so it names the
    /// golden vectors exactly.
    public static func goldenSHA256(_ golden: URL) throws -> String {
        SHA256.hex(try FileRead.data(golden.appendingPathComponent(Manifest.fileName), limit: FileRead.textLimit))
    }

    /// The schema of a JSON report (nil when `data` is no JSON object or has none).
    public static func schema(of data: Data) -> String? {
        (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["schema"] as? String
    }
}
