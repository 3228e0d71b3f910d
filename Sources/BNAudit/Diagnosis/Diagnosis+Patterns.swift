import BNCore
import Foundation

/// Models that do not depend on the operation: how non-finite values are handled, where in
/// the tensor the wrong elements lie, and the precision the arithmetic was done in.
enum Patterns {
    /// The reference outputs with `transform` applied to every element.
    static func mapped(_ p: DiagnosisProblem, _ transform: @escaping (Double) -> Double) -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for name in p.got.keys { if let e = p.expected[name] { out[name] = e.map(transform) } }
        return out
    }

    /// The reference with `transform` applied to the tensor outputs (y, dx, y_eval) only.
    static func mappedTensors(_ p: DiagnosisProblem, _ transform: @escaping (Double) -> Double) -> [String: [Double]] {
        mapped(p, transform).filter { ($0.value.count == p.shape.elementCount) }
    }

    /// Withdrawn across an audit when a case of the same operation on finite data fails too (Audit).
    static let poisonCause = "a NaN or infinity in one channel poisons every channel"

    static let models: [BugModel] = [
        BugModel(cause: "NaN turned into 0") { p in
            p.expected.values.contains { $0.contains { $0.isNaN } } ? mapped(p) { $0.isNaN ? 0 : $0 } : nil
        },
        BugModel(cause: "NaN turned into 0") { p in
            p.expected.values.contains { $0.contains { $0.isNaN } } ? mappedTensors(p) { $0.isNaN ? 0 : $0 } : nil
        },
        BugModel(cause: "infinities clamped to the largest finite value") { p in
            let big = p.spec.dtype == .f64 ? Double.greatestFiniteMagnitude : Double(Float.greatestFiniteMagnitude)
            return p.expected.values.contains { $0.contains { $0.isInfinite } } ? mapped(p) { $0.isInfinite ? ($0 > 0 ? big : -big) : $0 } : nil
        },
        BugModel(cause: poisonCause) { p in
            guard p.inputs["x"]?.contains(where: { !$0.isFinite }) == true else { return nil }
            return mapped(p) { _ in .nan }
        },
    ]

    /// A structural cause: every wrong element lies in the tail channels of a vector loop
    /// (``VectorTail``), or from a power-of-two position of each channel on, and every such
    /// channel or position is wrong. Nil when the failures have no such shape.
    static func location(_ p: DiagnosisProblem) -> String? {
        let (failingChannels, positions, tensorOutputs) = failures(p)
        guard !failingChannels.isEmpty else { return nil }
        if let tail = VectorTail.cause(p) { return tail }
        if tensorOutputs > 0, let first = positions.min(), first >= 256, first & (first - 1) == 0 {
            let n = p.n
            let expected = n - first
            let perChannel = Dictionary(grouping: positions, by: { $0 }).count
            if perChannel == expected {
                return "every element from position \(first) = 2^\(first.trailingZeroBitCount) of a channel on is wrong (an index or counter that overflows there)"
            }
        }
        return nil
    }

    /// The channels with an element beyond tolerance in any output, the in-channel positions
    /// of the failing elements of tensor outputs, and how many tensor outputs fail.
    static func failures(_ p: DiagnosisProblem) -> (channels: Set<Int>, positions: [Int], tensorOutputs: Int) {
        let C = p.channels
        var failingChannels = Set<Int>()
        var positions: [Int] = []
        var tensorOutputs = 0
        for name in p.got.keys {
            let f = p.failing(name)
            guard let count = p.got[name]?.count, !f.isEmpty else { continue }
            if count == C || count == C * p.spec.steps || count == C * p.spec.gradientRows {
                for i in f { failingChannels.insert(i % C) }
            } else {
                tensorOutputs += 1
                let fs = Set(f)
                for c in 0..<C {
                    for (k, i) in p.indices(c).enumerated() where fs.contains(i) { failingChannels.insert(c); positions.append(k) }
                }
            }
        }
        return (failingChannels, positions, tensorOutputs)
    }

    /// Evidence only: whether the outputs would pass the tolerance model at a lower
    /// precision (float16, bfloat16; float32 for a float64 case). Never a cause: an unstable
    /// algorithm in full precision produces errors of the same size (one pass at κ = 20 and
    /// float16 arithmetic cannot be told apart on one case).
    static func precision(_ p: DiagnosisProblem) -> [String] {
        guard let at = p.budgetAt else { return [] }
        let candidates: [(Double, String)] = p.spec.dtype == .f64
            ? [(0x1p-24, "float32"), (0x1p-11, "float16")] : [(0x1p-11, "float16"), (0x1p-8, "bfloat16")]
        var lines: [String] = []
        for (u, name) in candidates {
            guard let b = at(u) else { continue }
            var q = p
            q.tolerance = b.tolerance
            lines.append("tolerance model at u = 2^\(Int(log2(u))) (\(name) arithmetic): worst error ÷ tolerance \(Fits.fmt(q.misfit([:]))), primary-output resolution \(Fits.fmt(b.resolution ?? .infinity))")
        }
        return lines
    }

    /// Evidence only: when the returned batch statistics reproduce y and the running statistics,
    /// the fault lies in the statistics alone — their errors are reported. (An error that only
    /// fits within a lower precision's bound is no cause: other bugs' errors fall there too, as
    /// the red-team set showed with a mean over n − 1 values.)
    static func statistics(_ p: DiagnosisProblem) -> [String] {
        guard p.spec.op == .train || p.spec.op == .syncTrain, let m = p.got["batch_mean"], let v = p.got["batch_var"], m.count == p.channels,
              v.count == p.channels, let tm = p.tolerance["batch_mean"] else { return [] }
        let (mu, va) = p.trainingStatistics
        guard mu.count == p.channels else { return [] }
        var predicted = ["y": p.normalized(p.input("x"), mean: m, scale: { p.invStd(v[$0]) })]
        if let w = p.weight(step: 1), p.input("running_mean").count == p.channels {
            predicted["running_mean"] = p.blend(p.input("running_mean"), m, w)
            predicted["running_var"] = p.blend(p.input("running_var"), p.runningVarianceTerm(v), w)
        }
        predicted["batch_mean"] = m; predicted["batch_var"] = v
        guard p.explains(predicted) else { return [] }
        let meanErr = (0..<p.channels).map { abs(m[$0] - mu[$0]) / max(tm[$0], 1e-300) }
        let varErr = (0..<p.channels).map { va[$0] > 0 ? abs(v[$0] - va[$0]) / va[$0] : .nan }
        return ["y and the running statistics are consistent with the returned batch statistics: the error is in the statistics (batch mean error ÷ tolerance \(Fits.list(meanErr)); batch variance relative error \(Fits.list(varErr)))"]
    }
}
