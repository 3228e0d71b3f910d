import BigInt

/// An exact sum of Doubles, or of products of two Doubles, in one long fixed-point
/// integer (Kulisch's accumulator).
///
/// Every finite Double is m·2^e with an integer |m| < 2^53 and e ≥ −1074, and a product
/// of two is m·2^e with |m| < 2^106 and e ≥ −2148. The accumulator holds the running sum
/// as an integer in units of 2^−1074 (sums) or 2^−2148 (products), split into 32-bit
/// digits kept in Int64 words (carry-save: a digit absorbs 2^31 additions before its
/// carries are propagated, which ``add(_:)`` does on its own when due).
///
/// Contract: for finite operands the result ``value`` is the exact real sum, whatever
/// the magnitudes (subnormal to near overflow) and the order — no rounding ever happens.
/// Cost: a few integer operations per term (no branch on the data's range); the
/// accumulator itself is about 0.6 KiB (sums) or 1.1 KiB (products).
package final class LongAccumulator {
    package enum Kind { case sums, products }

    /// Exponent of the least significant bit of digit 0.
    package let base: Int
    package let count: Int
    private let digits: UnsafeMutablePointer<Int64>
    private var pending = 0

    package init(_ kind: Kind) {
        // Sums reach 2^1024·n, products 2^2048·n; 64 bits of headroom for n and spill digits.
        base = kind == .sums ? -1074 : -2148
        let top = kind == .sums ? 1024 + 64 : 2048 + 64
        count = (top - base) / 32 + 6
        digits = .allocate(capacity: count)
        digits.initialize(repeating: 0, count: count)
    }
    deinit { digits.deallocate() }

    /// (|m|, e, negative) with x = ±m·2^e; x finite and non-zero.
    @inline(__always)
    private static func split(_ x: Double) -> (UInt64, Int, Bool) {
        let biased = Int(x.exponentBitPattern)
        let frac = x.significandBitPattern
        let m = biased == 0 ? frac : frac | (1 << 52)
        return (m, (biased == 0 ? 1 : biased) - 1075, x.sign == .minus)
    }

    /// Adds ±(hi·2^64 + lo)·2^e, hi < 2^42.
    @inline(__always)
    private func place(_ hi: UInt64, _ lo: UInt64, _ e: Int, _ negative: Bool) {
        let o = e - base
        let k = o >> 5, sh = UInt64(o & 31)
        // The 128-bit magnitude shifted left by sh < 32 spans at most 160 bits: 5 digits.
        let w0 = lo &<< sh
        let w1 = (hi &<< sh) | ((lo &>> 1) &>> (63 &- sh))
        let w2 = (hi &>> 1) &>> (63 &- sh)
        let d = digits + k
        let mask: UInt64 = 0xFFFF_FFFF
        if negative {
            d[0] &-= Int64(w0 & mask); d[1] &-= Int64(w0 >> 32)
            d[2] &-= Int64(w1 & mask); d[3] &-= Int64(w1 >> 32); d[4] &-= Int64(w2)
        } else {
            d[0] &+= Int64(w0 & mask); d[1] &+= Int64(w0 >> 32)
            d[2] &+= Int64(w1 & mask); d[3] &+= Int64(w1 >> 32); d[4] &+= Int64(w2)
        }
        pending += 1
        if pending == 1 << 30 { propagateCarries() }
    }

    /// Adds x exactly. Precondition: the accumulator is of kind `.sums`; x is finite.
    @inline(__always)
    package func add(_ x: Double) {
        if x == 0 { return }
        let (m, e, neg) = Self.split(x)
        place(0, m, e, neg)
    }

    /// Adds a·b exactly. Precondition: kind `.products`; a and b finite.
    @inline(__always)
    package func addProduct(_ a: Double, _ b: Double) {
        if a == 0 || b == 0 { return }
        let (ma, ea, na) = Self.split(a), (mb, eb, nb) = Self.split(b)
        let (hi, lo) = ma.multipliedFullWidth(by: mb)
        place(hi, lo, ea + eb, na != nb)
    }

    /// Makes every digit but the last lie in [0, 2^32); the last carries the sign.
    private func propagateCarries() {
        for k in 0..<(count - 1) {
            let c = digits[k] >> 32
            digits[k] &-= c << 32
            digits[k + 1] &+= c
        }
        pending = 0
    }

    /// The exact sum.
    package var rational: Rational {
        let v = value
        return Rational(integer: v.integer, exponent: v.exponent)
    }

    /// The exact sum as integer·2^exponent (the integer odd, or zero).
    package var value: (integer: BigInt, exponent: Int) {
        propagateCarries()
        var negative = false
        if digits[count - 1] < 0 {
            negative = true
            for k in 0..<count { digits[k] = -digits[k] }
            propagateCarries()
        }
        defer {
            if negative {   // restore, so that `value` may be read again and adding may go on
                for k in 0..<count { digits[k] = -digits[k] }
                propagateCarries()
            }
        }
        guard let low = (0..<count).first(where: { digits[$0] != 0 }) else { return (0, 0) }
        let high = (0..<count).last { digits[$0] != 0 }!
        var words: [UInt] = []
        var k = low
        while k <= high {
            let lo = UInt(UInt32(truncatingIfNeeded: digits[k]))
            let hi = k + 1 <= high ? UInt(UInt32(truncatingIfNeeded: digits[k + 1])) : 0
            words.append(lo | hi << 32)
            k += 2
        }
        var magnitude = BigUInt(words: words)
        let tz = magnitude.trailingZeroBitCount
        magnitude >>= tz
        return (BigInt(sign: negative ? .minus : .plus, magnitude: magnitude), base + 32 * low + tz)
    }
}
