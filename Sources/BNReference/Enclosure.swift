import BigInt
import RealModule

/// A real number known to lie within `radius` of the double-double `head + tail`:
/// the reference's fast, certified path to correctly rounded outputs.
///
/// Every operation returns a new enclosure of the exact result of the operation on the
/// exact operands. The radius is computed *a posteriori* from the values actually
/// produced (Rump's style of running error bound):
/// - TwoSum and TwoProduct (``Augmented``) are error-free; `head + tail` of every result
///   is renormalised with TwoSum, so `head` is the nearest Double to `head + tail`.
/// - Every other floating-point operation z = RN(ζ) errs by |ζ − z| ≤ u·|z| + η/4, with
///   u = 2⁻⁵³ and η = 2⁻¹⁰⁷⁰ covering a subnormal result (a sum is exact in that range).
///   The bound adds this for each such operation, plus the propagated radii
///   (|a·b − ã·b̃| ≤ |ã|·r_b + |b̃|·r_a + r_a·r_b) and the dropped tail·tail product.
/// - ``correctlyRounded`` inflates the radius by 2⁻⁴⁰ for the roundings of the bound
///   itself and answers only when the whole interval rounds to one Double.
///
/// Exact zeros stay exact (a product with an exact zero, a TwoSum of tailless operands)
/// and round to +0. Overflow makes a head infinite or NaN, and ``correctlyRounded`` then
/// answers nil; so does an inexact result within η of zero (the sign of a zero and the
/// subnormal grid are left to the exact path). A nil answer is never wrong — the caller
/// re-evaluates exactly.
public struct Enclosure: Sendable, Equatable {
    public var head: Double
    public var tail: Double
    public var radius: Double

    @usableFromInline static let u = 0x1p-53
    @usableFromInline static let eta = 0x1p-1070

    @inlinable public init(head: Double, tail: Double, radius: Double) {
        self.head = head; self.tail = tail; self.radius = radius
    }

    /// A Double, exactly.
    @inlinable public init(_ x: Double) { self.init(head: x, tail: 0, radius: 0) }

    @inlinable public static prefix func - (a: Enclosure) -> Enclosure {
        Enclosure(head: -a.head, tail: -a.tail, radius: a.radius)
    }

    @inlinable public static func + (a: Enclosure, b: Enclosure) -> Enclosure {
        let (s, e) = Augmented.sum(a.head, b.head)
        if a.tail == 0 && b.tail == 0 {     // one error-free TwoSum
            return Enclosure(head: s, tail: e, radius: a.radius + b.radius)
        }
        let t = a.tail + b.tail
        let e2 = e + t
        let (h, l) = Augmented.sum(s, e2)
        return Enclosure(head: h, tail: l, radius: a.radius + b.radius + (u * (t.magnitude + e2.magnitude) + eta))
    }

    @inlinable public static func - (a: Enclosure, b: Enclosure) -> Enclosure { a + (-b) }

    @inlinable public static func * (a: Enclosure, b: Enclosure) -> Enclosure {
        if a.isExactZero || b.isExactZero { return Enclosure(0) }
        let (p, pe) = Augmented.product(a.head, b.head)
        let c1 = a.head * b.tail
        let c = c1.addingProduct(a.tail, b.head)
        let t = pe + c
        let (h, l) = Augmented.sum(p, t)
        let am = a.head.magnitude + a.tail.magnitude, bm = b.head.magnitude + b.tail.magnitude
        let rounding = u * (c1.magnitude + c.magnitude + t.magnitude) + a.tail.magnitude * b.tail.magnitude + 4 * eta
        let propagated = am * b.radius + bm * a.radius + a.radius * b.radius
        return Enclosure(head: h, tail: l, radius: propagated + rounding)
    }

    /// The nearest Double to the enclosed real when the enclosure proves it (every point
    /// of [head + tail − radius, head + tail + radius] has that nearest Double); nil otherwise.
    @inlinable var isExactZero: Bool { head == 0 && tail == 0 && radius == 0 }

    @inlinable public var correctlyRounded: Double? {
        let r = head
        if r == 0 { return isExactZero ? 0 : nil }      // an exact zero is +0
        guard r.isFinite, r.magnitude < .greatestFiniteMagnitude else { return nil }
        let R = radius * (1 + 0x1p-40)
        let up = r.nextUp - r, down = r - r.nextDown
        guard tail + R < up * (0.5 - 0x1p-50), R - tail < down * (0.5 - 0x1p-50) else { return nil }
        return r
    }
}

extension Enclosure {
    /// Encloses a rational: its first 106 bits, exactly, with a radius of one unit in the
    /// 106th bit (zero when those bits are the whole value). Infinite radius when the value
    /// is outside the range where those bits are Doubles (|value| ≳ 2^1000 or ≲ 2^−900):
    /// the exact path takes over there.
    package init(_ r: Rational) {
        if r.isZero { self.init(0); return }
        let (n, e, exact) = r.leadingBits(106)
        self.init(floor: n, exponent: e, negative: r.signum < 0, exact: exact)
    }

    /// Encloses ±[n, n + 1)·2^e (±n·2^e when `exact`), keeping n's leading 106 bits.
    init(floor n: BigUInt, exponent e: Int, negative: Bool, exact: Bool = false) {
        let drop = Swift.max(0, n.bitWidth - 106)
        let m = n >> drop, unit = e + drop
        guard unit >= -1000 + 53, unit + 106 <= 1000 else {
            self.init(head: .nan, tail: .nan, radius: .infinity); return
        }
        let hi = m >> 53, lo = m & ((BigUInt(1) << 53) - 1)
        let h = Double(sign: .plus, exponent: unit + 53, significand: Double(UInt64(hi)))
        let l = Double(sign: .plus, exponent: unit, significand: Double(UInt64(lo)))
        let (s, t) = Augmented.sum(h, l)
        let whole = exact && (drop == 0 || n.trailingZeroBitCount >= drop)
        let radius = whole ? 0 : Double(sign: .plus, exponent: unit, significand: 1)
        self.init(head: negative ? -s : s, tail: negative ? -t : t, radius: radius)
    }

    /// Encloses 1/√v for a rational v > 0: ⌊2^k/√v⌋ by an integer square root (exact), to 106 bits.
    static func inverseSquareRoot(_ v: Rational) -> Enclosure {
        let (root, k) = Rational.inverseSquareRootFloor(p: v.num.magnitude, q: v.den.magnitude, bits: 107)
        return Enclosure(floor: root, exponent: -k, negative: false)
    }
}
