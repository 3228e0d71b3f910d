import Foundation
import BNCore

/// One of the nine NIST StRD univariate reference datasets, with its certified
/// mean and standard deviation (denominator n − 1).
///
/// The `.dat` files are byte-for-byte NIST copies, shipped as package resources
/// (Sources/BNGolden/Resources/nist-strd). Certified values were computed by NIST
/// in 500-digit arithmetic and rounded to 15 significant digits, or are exact by
/// construction (NumAcc1–4).
public struct NISTDataset: Sendable {
    public var name: String
    public var values: [Double]
    public var certifiedMean: Double
    public var certifiedSD: Double
    /// NIST's difficulty level from the file header ("Lower", "Average", "Higher").
    public var difficulty: String

    /// The nine datasets in NIST's order of difficulty.
    public static let names = ["PiDigits", "Lottery", "Lew", "Mavro", "Michelso",
                               "NumAcc1", "NumAcc2", "NumAcc3", "NumAcc4"]

    /// Loads every dataset from the package resources.
    public static func loadAll() throws -> [NISTDataset] {
        try names.map(load)
    }

    public static func load(_ name: String) throws -> NISTDataset {
        guard let url = Bundle.module.url(forResource: name, withExtension: "dat", subdirectory: "nist-strd") else {
            throw BNError.file(path: "nist-strd/\(name).dat", reason: "NIST dataset not found in the package resources")
        }
        return try parse(contentsOf: url, name: name)
    }

    /// Parses a NIST StRD univariate file: header lines 1–60 (certified values on
    /// the `ybar:` and `s:` lines), then one observation per line.
    public static func parse(contentsOf url: URL, name: String) throws -> NISTDataset {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw BNError.file(path: url.path, reason: "cannot read the file as UTF-8 text")
        }
        let lines = text.replacingOccurrences(of: "\r", with: "").components(separatedBy: "\n")
        guard lines.count > 60 else { throw BNError.corrupt(path: url.path, reason: "fewer than 61 lines") }
        func certified(_ key: String) throws -> Double {
            guard let line = lines.prefix(60).first(where: { $0.contains(key) }),
                  let tail = line.components(separatedBy: key).last,
                  let v = Double(tail.split(separator: " ").first ?? "") else {
                throw BNError.corrupt(path: url.path, reason: "no certified value '\(key)' in the header")
            }
            return v
        }
        let difficulty = lines.prefix(60).first(where: { $0.contains("Level of Difficulty") })
            .map { $0.components(separatedBy: ":").last!.trimmingCharacters(in: .whitespaces)
                    .components(separatedBy: " ").first ?? "" } ?? "Lower"
        var values: [Double] = []
        for (i, line) in lines.dropFirst(60).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let v = Double(t) else {
                throw BNError.corrupt(path: url.path, reason: "line \(61 + i) is not a number: '\(t)'")
            }
            values.append(v)
        }
        return NISTDataset(name: name, values: values, certifiedMean: try certified(" ybar:"),
                           certifiedSD: try certified(" s:"), difficulty: difficulty)
    }
}
