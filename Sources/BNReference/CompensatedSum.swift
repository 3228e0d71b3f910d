import RealModule

/// A running sum in double-double (Ogita–Rump–Oishi "Sum2"/"Dot2").
///
/// Contract: |value − Σ exact| ≤ u·|Σ| + γ²ₙ₋₁·Σ|terms| with u = 2⁻⁵³ — as accurate as
/// summing in twice the working precision and rounding once. Used for the
/// reference's gradient reductions (Σdy, Σdy·x̂), where terms are finite.
public struct CompensatedSum: Sendable {
    public internal(set) var head = 0.0
    public internal(set) var tail = 0.0
    public init() {}

    public mutating func add(_ x: Double) {
        let (s, e) = Augmented.sum(head, x)
        head = s; tail += e
    }
    /// Adds a·b with the product's rounding error kept (TwoProduct).
    public mutating func addProduct(_ a: Double, _ b: Double) {
        let (p, pe) = Augmented.product(a, b)
        let (s, e) = Augmented.sum(head, p)
        head = s; tail += e + pe
    }
    @inlinable public var value: Double { head.isFinite ? head + tail : head }
}
