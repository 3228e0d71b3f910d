import BNCore

extension CaseSpec {
    /// The batches of x a case trains on, in step order, each with its shape: a trajectory's
    /// `steps` stacked batches of the case's shape; an epoch's partition of x along N (batch k:
    /// `partition[k]` consecutive samples, N being outermost in every layout); x itself for the
    /// other operations.
    public func trainingBatches<T>(_ x: [T]) throws -> [(values: [T], shape: Shape)] {
        let s = try shapeValue(), per = s.elementCount
        if op == .epoch {
            guard let batches = try partitionValue() else { throw BNError.corrupt(path: id, reason: "an epoch case needs its batches (partition)") }
            guard x.count == per else { throw BNError.corrupt(path: id, reason: "x holds \(x.count) values, the shape \(s) \(per)") }
            return batches.split(x, shape: s).enumerated().map { k, xk in (xk, batches.shape(rank: k, of: s)) }
        }
        let steps = op.stacksSteps ? self.steps : 1
        guard x.count == per * steps else {
            throw BNError.corrupt(path: id, reason: "x holds \(x.count) values, \(steps) × \(per) expected")
        }
        return (0..<steps).map { k in (Array(x[(k * per)..<((k + 1) * per)]), s) }
    }
}
