import BNCore

/// The scalar kernel on raw Float32 buffers, for `bnspec bench`: the same loops as
/// ``ScalarKernel/train(_:shape:layout:dtype:gamma:beta:eps:runningMean:runningVariance:step:rule:)``
/// without the conversions from and to Double (non-generic entry points, so the
/// loops are specialised in this module rather than run generically across modules).
extension ScalarKernel {
    /// Training forward; updates the running statistics in place; returns (μ_B, σ²_B).
    public func trainingForward(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>, shape: Shape,
                                layout: Layout, gamma: [Float], beta: [Float], eps: Float, runningMean: inout [Float],
                                runningVariance: inout [Float], step: Int, rule: RunningUpdateRule) throws -> ([Float], [Float]) {
        try trainingForward(x, y, shape, layout, gamma, beta, eps, &runningMean, &runningVariance, step, rule)
    }

    public func inferenceForward(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>, shape: Shape,
                                 layout: Layout, gamma: [Float], beta: [Float], eps: Float, mean: [Float], variance: [Float]) {
        inferenceForward(x, y, shape, layout, gamma, beta, eps, mean, variance)
    }

    /// Backward in training mode; returns (dγ, dβ).
    public func backward(_ x: UnsafeBufferPointer<Float>, _ dy: UnsafeBufferPointer<Float>, _ dx: UnsafeMutableBufferPointer<Float>,
                         shape: Shape, layout: Layout, gamma: [Float], eps: Float) -> ([Float], [Float]) {
        backward(x, dy, dx, shape, layout, gamma, eps, nil)
    }
}
