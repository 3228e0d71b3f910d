import BNCore

/// How large a family's values get, so that a catalog cannot ask for inputs that overflow their
/// storage dtype: `offset:1e308` or `huge:1e39` in float32 would store ±∞ for every value, and
/// every implementation would "pass" a case that tests nothing.
extension DataFamily {
    /// An upper bound on |x| for the family's values before rounding, nil when none depends on a
    /// parameter (the others stay below 10³). ``SpecRandom/normal()`` lies in [−6, 6]:
    /// `offset:K` ±K(1 + U/2) + N ≤ 1.5K + 6; `huge:K` ±K(1 + U) + min(10⁻³K, 10¹⁷)·N ≤ 2K + 0.006K.
    static func magnitudeBound(_ family: String) -> Double? {
        let parts = split(family)
        guard parts.count == 2, let k = Double(parts[1]) else { return nil }
        switch parts[0] {
        case "offset": return 1.5 * k + 6
        case "huge": return 2 * k + Swift.min(1e-3 * k, 1e17) * 6
        default: return nil
        }
    }

    /// ``validate(_:)``, and every value of the family is finite in `dtype` (SPEC §6.2).
    public static func validate(_ family: String, dtype: DType) throws {
        try validate(family)
        let largest: Double
        switch dtype {
        case .f64: largest = .greatestFiniteMagnitude
        case .f32: largest = Double(Float.greatestFiniteMagnitude)
        case .f16: largest = Double(Float16.greatestFiniteMagnitude)
        case .bf16: largest = Double(BFloat16.float(0x7F7F))
        }
        if let m = magnitudeBound(family), !(m <= largest) {
            throw BNError.invalidArgument("family \(family) has values up to \(m), beyond the largest finite \(dtype.rawValue) (\(largest)): the inputs would be stored as ±inf")
        }
    }
}
