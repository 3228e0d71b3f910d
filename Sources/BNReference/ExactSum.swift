import RealModule

/// An exact sum of Doubles, kept as a floating-point expansion
/// (Shewchuk 1997, "Adaptive Precision Floating-Point Arithmetic", GROW-EXPANSION
/// with zero elimination).
///
/// Contract:
/// - After any sequence of `add` calls on finite values whose partial sums do not
///   overflow, `components` are non-overlapping, ordered by increasing magnitude,
///   and their real sum equals the real sum of all added values *exactly*.
/// - The number of components is at most ~40 (the exponent range divided by 53)
///   and in practice 1–3, so `add` costs a few TwoSums.
/// - If a partial sum overflows, ``isFinite`` becomes false; callers fall back
///   to a scaled computation.
public struct ExactSum: Sendable {
    /// Non-overlapping components, smallest magnitude first.
    public internal(set) var components: [Double] = []

    public init() { components.reserveCapacity(4) }

    /// Adds `x` exactly.
    public mutating func add(_ x: Double) {
        var q = x
        var kept = 0
        for i in components.indices {
            let (s, e) = Augmented.sum(q, components[i])
            q = s
            if e != 0 { components[kept] = e; kept += 1 }
        }
        components.removeSubrange(kept...)
        if q != 0 || components.isEmpty { components.append(q) }
    }

    public var isFinite: Bool { components.allSatisfy(\.isFinite) }

    /// The sum as an unevaluated double-double `head + tail`, accurate to
    /// about 2⁻¹⁰⁴ relative (the components are summed smallest first, then
    /// renormalised so |tail| ≤ ulp(head)/2).
    public var doubleDouble: DoubleDouble {
        var hi = 0.0, lo = 0.0
        for c in components {
            let (s, e) = Augmented.sum(c, hi)
            hi = s; lo += e
        }
        return DoubleDouble(hi, lo)
    }
}

/// An unevaluated sum `head + tail` with |tail| ≤ ulp(head)/2 (after ``init(_:_:)``).
///
/// Only the operations BNSpec's reference needs, each stated with its accuracy.
public struct DoubleDouble: Sendable, Equatable {
    public var head: Double
    public var tail: Double

    /// Renormalises `a + b` so that `head` is the correctly rounded sum.
    @inlinable
    public init(_ a: Double, _ b: Double) {
        let (h, t) = Augmented.sum(a, b)
        head = h; tail = h.isFinite ? t : 0
    }

    @inlinable public var value: Double { head + tail }

    /// (head + tail) / d for an integer-valued Double `d` > 0, accurate to about
    /// 2⁻¹⁰⁴ relative: one Newton correction using the exact remainder
    /// fma(−q, d, head) (exact when no underflow occurs).
    @inlinable
    public func divided(by d: Double) -> DoubleDouble {
        let q = head / d
        guard q.isFinite, q != 0 || head != 0 else { return DoubleDouble(q, tail / d) }
        let r = head.addingProduct(-q, d) + tail
        return DoubleDouble(q, r / d)
    }

    /// Exact-ish difference of two double-doubles (error ≤ 2⁻¹⁰⁵·|result| + tails' rounding).
    @inlinable
    public static func - (a: DoubleDouble, b: DoubleDouble) -> DoubleDouble {
        let (s, e) = Augmented.sum(a.head, -b.head)
        return DoubleDouble(s, e + (a.tail - b.tail))
    }

    /// Multiplication by a power of two (exact unless it over- or underflows).
    @inlinable
    public func scaled(by powerOfTwo: Double) -> DoubleDouble {
        DoubleDouble(head * powerOfTwo, tail * powerOfTwo)
    }
}
