import BNAudit
import BNCore
import BNGolden
import BNCalibration
import BNReference
import Testing

/// The statistics bounds of the tolerance model (spec §5.1) hold for every honest
/// algorithm on random and adversarial data, checked against the exact BigInt statistics.
@Suite struct HonestStatisticsBoundTests {
    struct Data: CustomStringConvertible {
        var name: String
        var values: [Double]
        var description: String { "\(name) n=\(values.count)" }
    }

    static func datasets(float: Bool) -> [Data] {
        var out: [Data] = []
        var r = SpecRandom("honest-bounds/\(float)")
        func q(_ x: Double) -> Double { float ? Double(Float(x)) : x }
        for n in [2, 3, 4, 5, 7, 16, 33, 100, 392, 1000, 4096] {
            for offset in [0.0, 3, 100, 1e4, 1e6] {
                let scale = 0.5 + r.uniform()
                let v = (0..<n).map { _ in q(offset + scale * r.normal()) }
                out.append(Data(name: "normal+\(offset)", values: v))
                out.append(Data(name: "sorted+\(offset)", values: v.sorted()))
                out.append(Data(name: "sorted-desc+\(offset)", values: v.sorted(by: >)))
                // An extreme first value: the worst pivot.
                var e = v; if let i = e.indices.max(by: { abs(e[$0] - offset) < abs(e[$1] - offset) }) { e.swapAt(0, i) }
                out.append(Data(name: "extreme-first+\(offset)", values: e))
                // Offset positives then negatives: partial sums as large as possible.
                let pos = v.filter { $0 >= offset }, neg = v.filter { $0 < offset }
                out.append(Data(name: "split+\(offset)", values: pos + neg))
            }
            let c = 1 + r.uniform()
            out.append(Data(name: "near-constant", values: (0..<n).map { _ in q(c + c * 0x1p-20 * Double(r.int(below: 5) - 2)) }))
            out.append(Data(name: "constant", values: Array(repeating: q(c * 3.7), count: n)))
            out.append(Data(name: "one-outlier", values: (0..<n).map { $0 == n / 2 ? q(1e3) : q(1 + 0.01 * r.normal()) }))
        }
        return out
    }

    @Test(arguments: [true, false])
    func everyHonestAlgorithmIsWithinTheStatisticsBounds(float: Bool) throws {
        let model = ToleranceModel(computeRoundoff: float ? 0x1p-24 : 0x1p-53, storage: float ? .f32 : .f64)
        var worst: [String: (Double, String)] = [:]
        for d in Self.datasets(float: float) {
            let exact = ExactOracle.statistics(d.values)
            let n = d.values.count
            let b = model.statBounds(ToleranceModel.ChannelData(d.values, mean: exact.mean), variance: exact.biasedVariance)
            for algo in HonestKernel.Statistics.allCases {
                let k = HonestKernel(algo)
                let (m, v): (Double, Double)
                if float {
                    let (mf, qf) = k.moments(d.values.map { Float($0) })
                    (m, v) = (Double(mf), Double(qf / Float(n)))
                } else {
                    let (md, qd) = k.moments(d.values)
                    (m, v) = (md, qd / Double(n))
                }
                let em = abs(m - exact.mean), ev = abs(v - exact.biasedVariance)
                #expect(em <= b.mean, "\(algo.rawValue) mean on \(d): error \(em) > bound \(b.mean)")
                #expect(ev <= b.variance, "\(algo.rawValue) variance on \(d): error \(ev) > bound \(b.variance)")
                for (key, e, bound) in [("\(algo.rawValue) mean", em, b.mean), ("\(algo.rawValue) var", ev, b.variance)] where bound > 0 {
                    if e / bound > (worst[key]?.0 ?? -1) { worst[key] = (e / bound, "\(d)") }
                }
            }
        }
        for k in worst.keys.sorted() { print("honest bound \(float ? "f32" : "f64") \(k): worst error ÷ bound \(worst[k]!.0) on \(worst[k]!.1)") }
    }
}
