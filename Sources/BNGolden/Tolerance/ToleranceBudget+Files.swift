import BNCore
import Foundation

/// The budget as golden/ stores it beside each expected output, so that the vectors stand alone
/// (golden/README.md): `tolerance_<out>.npy` and, where the spec accepts other non-finite values,
/// `allowed_<out>.json`. The stored rule is the judge's (``BNAudit/CaseJudge``) in a form that
/// needs no tolerance model:
///
/// - an element whose tolerance is +Inf is not judged (its bound exceeds the compute format's
///   largest finite value, or is NaN: unresolvable in that format, spec/SPEC.md §5.4);
/// - otherwise an expected NaN needs a NaN, an expected ±Inf the same infinity (or a value of
///   `allowed_<out>.json` for that element), and a finite expected value |got − expected| ≤ tolerance —
///   or, for a storage output, the infinity that expected ± tolerance rounds to in the case's dtype
///   (a reference within τ of the format's overflow, spec §5.3).
///
/// Storage outputs (y, dx, y_eval) are compared after rounding the answer to the case's dtype.
extension ToleranceBudget {
    /// The largest bound the compute format of a `dtype` case resolves: its largest finite value
    /// (float64 for float64 cases, float32 for the others).
    public static func resolvableLimit(_ dtype: DType) -> Double {
        dtype == .f64 ? .greatestFiniteMagnitude : Double(Float.greatestFiniteMagnitude)
    }

    /// The stored tolerance of every element of output `name`: τ where the judge compares with τ,
    /// +Inf where it does not judge the element (τ above ``resolvableLimit(_:)``, or NaN; the judge
    /// skips exactly the τ that are not ≤ the limit). Nil for an output the budget does not cover.
    public func storedTolerance(_ name: String, dtype: DType) -> [Double]? {
        let limit = Self.resolvableLimit(dtype)
        return tolerances[name]?.map { t in t <= limit ? t : .infinity }
    }

    /// `allowed_<out>.json` of output `name`, nil when the spec accepts no other value anywhere.
    public func allowedFile(_ name: String) throws -> Data? {
        guard let alts = alternatives[name], !alts.isEmpty else { return nil }
        let file = AllowedValues(output: name, elements: alts.keys.sorted().map { .init(index: $0, values: alts[$0]!) })
        let enc = Generator.encoder()
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try enc.encode(file) + Data("\n".utf8)
    }

    /// The files of a case's budget, relative to its folder: `tolerance_<out>.npy` (float64, the
    /// shape of `expected_<out>.npy`) for every output, and `allowed_<out>.json` where it applies.
    public func files(_ c: GoldenStore.LoadedCase) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for (name, expected) in c.expected {
            guard let t = storedTolerance(name, dtype: c.spec.dtype), t.count == expected.values.count else {
                throw BNError.corrupt(path: c.spec.id, reason: "no tolerance of output '\(name)' with its full length")
            }
            files["tolerance_\(name).npy"] = NPYArray(dtype: .f64, shape: expected.shape, values: t).encoded()
            if let allowed = try allowedFile(name) { files["allowed_\(name).json"] = allowed }
        }
        return files
    }
}

/// `allowed_<out>.json`: per element (flat index in the output's storage order), the values the
/// spec accepts besides the expected one. Non-finite values are the strings "nan", "inf", "-inf".
public struct AllowedValues: Codable, Sendable, Equatable {
    public struct Element: Codable, Sendable, Equatable {
        public var index: Int
        public var values: [Double]
    }
    public var format = "bnspec-allowed-1"
    public var output: String
    public var elements: [Element]

    public init(output: String, elements: [Element]) { self.output = output; self.elements = elements }
}
