import RealModule

/// Double-word arithmetic for the higher-order derivatives (``Reference`` +HigherOrder):
/// the accurate algorithms of Joldes, Muller & Popescu, "Tight and rigorous error bounds
/// for basic building blocks of double-word arithmetic", ACM TOMS 44(2), 2017. With
/// u = 2⁻⁵³ and no underflow or overflow, each result r of an exact value z satisfies
/// |r − z| ≤ c·u²·|z| with c = 3 (DW + DW, their Alg. 6), 2 (DW + FP, Alg. 4),
/// 4 (DW × DW, Alg. 12 with FMA) and 2 (DW × FP, Alg. 9).
///
/// A non-finite head propagates like IEEE arithmetic on the heads (the tail becomes 0).
extension DoubleDouble {
    /// The exact product a·b (TwoProduct with FMA).
    @inlinable public static func product(_ a: Double, _ b: Double) -> DoubleDouble {
        let (p, e) = Augmented.product(a, b)
        return DoubleDouble(p, p.isFinite ? e : 0)
    }

    @inlinable public init(_ a: Double) { self.init(a, 0) }

    @inlinable public static prefix func - (a: DoubleDouble) -> DoubleDouble {
        var r = a
        r.head = -a.head; r.tail = -a.tail
        return r
    }

    /// DW + DW, relative error ≤ 3u² (JMP17 Alg. 6, "AccurateDWPlusDW").
    @inlinable public static func + (x: DoubleDouble, y: DoubleDouble) -> DoubleDouble {
        let (sh, sl) = Augmented.sum(x.head, y.head)
        guard sh.isFinite else { return DoubleDouble(sh, 0) }
        let (th, tl) = Augmented.sum(x.tail, y.tail)
        let v = DoubleDouble(sh, sl + th)
        return DoubleDouble(v.head, tl + v.tail)
    }

    /// DW + FP, relative error ≤ 2u² (JMP17 Alg. 4).
    @inlinable public static func + (x: DoubleDouble, y: Double) -> DoubleDouble {
        let (sh, sl) = Augmented.sum(x.head, y)
        guard sh.isFinite else { return DoubleDouble(sh, 0) }
        return DoubleDouble(sh, x.tail + sl)
    }

    /// DW × DW with FMA, relative error ≤ 4u² (JMP17 Alg. 12, "DWTimesDW3").
    @inlinable public static func * (x: DoubleDouble, y: DoubleDouble) -> DoubleDouble {
        let (ch, cl1) = Augmented.product(x.head, y.head)
        guard ch.isFinite else { return DoubleDouble(ch, 0) }
        let tl0 = x.tail * y.tail
        let tl1 = tl0.addingProduct(x.head, y.tail)
        let cl2 = tl1.addingProduct(x.tail, y.head)
        return DoubleDouble(ch, cl1 + cl2)
    }

    /// DW × FP with FMA, relative error ≤ 2u² (JMP17 Alg. 9, "DWTimesFP3").
    @inlinable public static func * (x: DoubleDouble, y: Double) -> DoubleDouble {
        let (ch, cl1) = Augmented.product(x.head, y)
        guard ch.isFinite else { return DoubleDouble(ch, 0) }
        return DoubleDouble(ch, cl1.addingProduct(x.tail, y))
    }

    /// Multiplication by 2^k for any integer k (both words scaled; exact unless a word
    /// leaves the normal range).
    @inlinable public func scaled(byPowerOfTwo k: Int) -> DoubleDouble {
        DoubleDouble(Double(sign: .plus, exponent: k, significand: head),
                     Double(sign: .plus, exponent: k, significand: tail))
    }

    /// 1/√self for self > 0: one Newton step r₁ = r₀ + r₀·(1 − self·r₀²)/2 from
    /// r₀ = 1/√head (correctly rounded sqrt, one division: |r₀/r − 1| ≤ 2u), with the
    /// residual 1 − self·r₀² evaluated in double-word arithmetic. The step squares r₀'s
    /// relative error (≤ 6u² after it) and adds the residual's ≤ 5u², so
    /// |result − 1/√self| ≤ 16u²·(1/√self). self = 0 gives +Inf, self < 0 or NaN gives NaN,
    /// self = +Inf gives 0 (as 1/√ on the head).
    public var reciprocalSquareRoot: DoubleDouble {
        let r0 = 1 / head.squareRoot()
        guard r0.isFinite, r0 != 0 else { return DoubleDouble(r0, 0) }
        let t = (self * r0) * r0                   // self·r₀² ≈ 1
        let h = (-t + 1).value                    // 1 − self·r₀², |h| ≲ 4u
        return DoubleDouble(r0, r0 * h / 2)
    }
}
