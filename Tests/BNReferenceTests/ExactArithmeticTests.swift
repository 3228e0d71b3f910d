import BigInt
import Foundation
import BNCore
import BNGolden
import BNReference
import Testing

/// The pieces behind correct rounding, each against the output oracle: the long
/// accumulator is exact, the surd rounding (fallback) and the certified enclosure (fast
/// path) give the nearest Double, and the oracle's own decision is right on known values.
@Suite struct ExactArithmeticTests {

    /// Law: a large tensor's channels, spread over the cores, are each visited exactly once, and
    /// the caller's fallback counter reaches the worker threads (`Reference.forEachChannel`).
    @Test func channelsOnAllCoresAreVisitedOnceAndCounted() {
        let counter = FallbackCounter(), channels = 37
        var seen = [Int](repeating: 0, count: channels)
        seen.withUnsafeMutableBufferPointer { s in
            Reference.$exactFallbacks.withValue(counter) {
                Reference.forEachChannel(channels, elements: Reference.parallelElements) { c in
                    s[c] += 1
                    Reference.exactFallbacks?.increment()
                    usleep(500)     // long enough that a second thread takes its share
                }
            }
        }
        #expect(seen == [Int](repeating: 1, count: channels))
        #expect(counter.count == channels)
    }
    typealias F = ExactOracle.Fraction

    /// Doubles across the whole range: subnormal to near overflow, both signs, with
    /// exact cancellations.
    static func wideDoubles(_ r: inout SpecRandom, _ n: Int, exponents: ClosedRange<Int> = -1074...1000) -> [Double] {
        var v: [Double] = []
        while v.count < n {
            let e = exponents.lowerBound + r.int(below: exponents.count)
            let x = Double(sign: r.next() & 1 == 0 ? .plus : .minus, exponent: e, significand: 1 + r.uniform())
            v.append(x)
            if r.int(below: 4) == 0 { v.append(-x) }
        }
        return v
    }

    @Test func oracleDecidesTheNearestDoubleOnKnownValues() {
        func rational(_ p: Int, _ q: Int) -> ExactOracle.Real { .init(F(BigInt(p), den: BigInt(q))) }
        #expect(ExactOracle.isNearest(1.0 / 3.0, to: rational(1, 3)))
        #expect(!ExactOracle.isNearest((1.0 / 3.0).nextUp, to: rational(1, 3)))
        #expect(!ExactOracle.isNearest((1.0 / 3.0).nextDown, to: rational(1, 3)))
        // Ties to even: 2^53 + 1 → 2^53, 2^53 + 3 → 2^53 + 4.
        #expect(ExactOracle.isNearest(9007199254740992, to: .init(F(BigInt(9007199254740993)))))
        #expect(!ExactOracle.isNearest(9007199254740994, to: .init(F(BigInt(9007199254740993)))))
        #expect(ExactOracle.isNearest(9007199254740996, to: .init(F(BigInt(9007199254740995)))))
        // Subnormal grid, signed zero and overflow.
        let tiny = F(1, exponent: -1075)              // half the smallest subnormal: tie to +0
        #expect(ExactOracle.isNearest(0, to: .init(tiny)) && !ExactOracle.isNearest(5e-324, to: .init(tiny)))
        #expect(ExactOracle.isNearest(-0.0, to: .init(-tiny)) && !ExactOracle.isNearest(0.0, to: .init(-tiny)))
        #expect(ExactOracle.isNearest(0.0, to: .init(.zero)) && !ExactOracle.isNearest(-0.0, to: .init(.zero)))
        #expect(ExactOracle.isNearest(5e-324, to: .init(F(3, exponent: -1076))))
        #expect(ExactOracle.isNearest(.infinity, to: .init(F(BigInt(1) << 1024) - F(BigInt(1) << 970))))
        #expect(ExactOracle.isNearest(.greatestFiniteMagnitude, to: .init(F(BigInt(1) << 1024) - F(BigInt(1) << 970) - F(1))))
        // Square roots: √2 = 2/√2 and 1/√(1/4) = 2 (rational) and −3/√9 = −1.
        #expect(ExactOracle.isNearest(2.0.squareRoot(), to: .init(.zero, plus: F(2), overSquareRootOf: F(2))))
        #expect(!ExactOracle.isNearest(2.0.squareRoot().nextUp, to: .init(.zero, plus: F(2), overSquareRootOf: F(2))))
        #expect(ExactOracle.isNearest(2, to: .init(.zero, plus: .one, overSquareRootOf: F(1, exponent: -2))))
        #expect(ExactOracle.isNearest(-1, to: .init(.zero, plus: F(-3), overSquareRootOf: F(9))))
        #expect(ExactOracle.nearest(.init(.zero, plus: F(2), overSquareRootOf: F(2))) == 2.0.squareRoot())
        #expect(ExactOracle.nearest(rational(-7, 10)) == -0.7)
        #expect(ExactOracle.nearest(.init(F(BigInt(1) << 1024))) == .infinity)
    }

    @Test func longAccumulatorIsExact() {
        var r = SpecRandom("exact/long-accumulator")
        for n in [1, 2, 10, 300] {
            for _ in 0..<30 {
                let v = Self.wideDoubles(&r, n), w = Self.wideDoubles(&r, v.count, exponents: -1074...1023)
                let sums = LongAccumulator(.sums), products = LongAccumulator(.products)
                for (a, b) in zip(v, w) { sums.add(a); products.addProduct(a, b) }
                let s = sums.value, p = products.value
                let exactSum = ExactOracle.sum(v), exactProducts = zip(v, w).reduce(F.zero) { $0 + F($1.0) * F($1.1) }
                #expect((F(s.integer, exponent: s.exponent) - exactSum).sign == 0, "Σx of \(v.prefix(4))…")
                #expect((F(p.integer, exponent: p.exponent) - exactProducts).sign == 0, "Σa·b of \(v.prefix(4))…")
            }
        }
    }

    /// The exact fallback: β + c/√v rounded through integer square roots, against the
    /// oracle's bisection — on random values, rational roots and exact midpoints (ties).
    @Test func surdRoundingIsTheNearestDouble() {
        var r = SpecRandom("exact/surd")
        for k in 0..<400 {
            let beta = Self.wideDoubles(&r, 1, exponents: -1060...1000)[0]
            let c = Self.wideDoubles(&r, 1, exponents: -200...200)[0]
            var v = Self.wideDoubles(&r, 1, exponents: -300...300)[0].magnitude
            var rBeta = Rational(beta), rC = Rational(c)
            switch k % 4 {
            case 1:                                  // a perfect square v = s², β + c/s an exact midpoint
                let root = Double(1 + r.int(below: 100)); v = root * root
                let d = Double(sign: .plus, exponent: r.int(below: 60), significand: 1 + r.uniform())
                rBeta = Rational(d); rC = Rational(d.ulp / 2) * Rational(root)
            case 2:                                                                                // an exact midpoint
                let d = Double(sign: .plus, exponent: r.int(below: 60), significand: 1 + r.uniform())
                rBeta = Rational(d) + Rational(d.nextUp); rBeta = rBeta * Rational(BigInt(1), BigInt(2))
                rC = .zero
            case 3: rBeta = Rational(BigInt(3)) / Rational(BigInt(7))                                // non-dyadic rational part
            default: break
            }
            let got = Rational.roundedSurd(rC, plus: rBeta, over: Rational(v))
            let exact = ExactOracle.Real(F(rBeta.num, den: rBeta.den), plus: F(rC.num, den: rC.den), overSquareRootOf: F(v))
            #expect(ExactOracle.isNearest(got, to: exact), "β=\(beta) c=\(c) v=\(v) case \(k % 4): \(got) vs \(ExactOracle.nearest(exact))")
        }
    }

    /// The fast path: whenever an enclosure answers, its answer is the nearest Double to
    /// the exact value of the same expression (products and sums with cancellation).
    @Test func enclosureAnswersOnlyWhenRight() {
        var r = SpecRandom("exact/enclosure")
        var answered = 0
        for k in 0..<3000 {
            let e = k % 3 == 0 ? -1070...(-900) : -60...60
            let a = Self.wideDoubles(&r, 1, exponents: e)[0], b = Self.wideDoubles(&r, 1, exponents: e)[0]
            let c = Self.wideDoubles(&r, 1, exponents: -60...60)[0]
            // (a − c)·b + c·(1/3 as a rational enclosure): cancellation when a ≈ c.
            let third = Enclosure(Rational(BigInt(1), BigInt(3)))
            let near = k % 5 == 0 ? c.nextUp : a
            let value = (Enclosure(near) - Enclosure(c)) * Enclosure(b) + Enclosure(c) * third
            let exact = ExactOracle.Real((F(near) - F(c)) * F(b) + F(c) * F(1, den: 3))
            if let got = value.correctlyRounded {
                answered += 1
                #expect(ExactOracle.isNearest(got, to: exact), "(\(near) − \(c))·\(b) + \(c)/3: \(got) vs \(ExactOracle.nearest(exact))")
            }
        }
        #expect(answered > 1500, "the fast path answered only \(answered) of 3000")
    }

    /// Data where the double-double path cannot decide — offset/spread beyond 2^52 (the
    /// enclosure of a non-dyadic mean is too wide) — goes through the exact path, and the
    /// results are still the nearest Doubles; exact zeros stay exact (+0).
    @Test func referenceFallbackIsExercisedAndRight() throws {
        let s = try Shape(batch: 3, channels: 2), eps = 1e-5
        let x: [Double] = [0x1p70, 0x1p70 + 0x1p18, 0x1p70 + 0x1p19, 0x1p70 - 0x1p18, 0x1p70 + 0x1p20, 0x1p70 + 0x1p21]
        let dy: [Double] = [0.5, -1.25, 2, 0.125, 3, -0.75], g = [1.5, -0.75], b = [0.25, 2]
        let counter = FallbackCounter()
        let (t, bw) = try Reference.$exactFallbacks.withValue(counter) {
            (try Reference.trainingForward(x, shape: s, layout: .nc, gamma: g, beta: b, eps: eps),
             try Reference.trainingBackward(x, dy: dy, shape: s, layout: .nc, gamma: g, eps: eps))
        }
        #expect(counter.count > 0, "no element took the exact path")
        for c in 0..<2 {
            let idx = [c, c + 2, c + 4], xs = idx.map { x[$0] }
            let st = ExactOracle.ChannelStatistics(xs), v = st.biasedVariance + F(eps)
            let tb = ExactOracle.trainingBackward(x: xs, dy: idx.map { dy[$0] }, mean: st.mean, radicand: v, gamma: g[c])
            for (k, i) in idx.enumerated() {
                #expect(ExactOracle.isNearest(t.y[i], to: ExactOracle.normalized(x[i], mean: st.mean, radicand: v, gamma: g[c], beta: b[c])))
                #expect(ExactOracle.isNearest(bw.dx[i], to: tb.dx[k]), "dx[\(i)] = \(bw.dx[i]) vs \(ExactOracle.nearest(tb.dx[k]))")
            }
        }
        // One value per channel: dx = γ·r·(dy − dy − 0) = 0 exactly (kept exact by the enclosures), +0.
        let single = try Reference.trainingBackward([3, -2], dy: [0.5, 4], shape: Shape(batch: 1, channels: 2), layout: .nc,
                                                    gamma: [2, 1], eps: eps)
        #expect(single.dx.allSatisfy { $0 == 0 && $0.sign == .plus } && single.dGamma == [0, 0] && single.dBeta == [0.5, 4])
        // γ = 0, β = 0 and dy = 0 are exact zeros too.
        let zero = try Reference.inferenceBackward([1, 2], dy: [0, -0.0], shape: Shape(batch: 1, channels: 2), layout: .nc,
                                                   gamma: [2, 0], mean: [0.5, 1], variance: [1, 3], eps: eps)
        #expect(zero.dx.allSatisfy { $0 == 0 && $0.sign == .plus })
    }
}
