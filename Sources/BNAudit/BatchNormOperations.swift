import BNCore
import BNGolden
import BNKernels

/// A batch normalization given as closures, one per operation, for an in-process audit
/// (``Audit/run(operations:progress:)``, spec/AUDIT.md §8). Only the operations supplied are run:
/// the cases of the others are reported as skipped (a trajectory needs `train` and `infer`).
/// ``init(_:version:)`` makes one from a ``BNKernels/BatchNormKernel``, which supplies all four
/// first-order operations, and the higher-order ones (spec/SPEC.md §12) when it is a
/// ``BNKernels/HigherOrderKernel``.
///
/// The arrays are those of ``BNKernels/BatchNormKernel``: Double holding values representable in
/// the case's storage dtype (widening is exact); results are rounded to the storage dtype before
/// they are judged. A closure throws ``Unsupported`` for a case it does not handle (skipped) and
/// any other error to refuse it (a pass where the profile requires a refusal, a failure elsewhere).
public struct BatchNormOperations: Sendable {
    /// The arguments of one call.
    public struct Arguments: Sendable {
        public var x: [Double]
        /// The upstream gradient ∂L/∂y (backward operations; empty otherwise).
        public var dy: [Double]
        public var shape: Shape, layout: Layout, dtype: DType
        public var gamma: [Double], beta: [Double], eps: Double
        /// The statistics to normalise with (inference and backward-infer; empty otherwise).
        public var mean: [Double], variance: [Double]
        /// The running statistics before a training step (empty otherwise) and the step's number
        /// (1-based; trajectories count up).
        public var runningMean: [Double], runningVariance: [Double], step: Int
        /// The running update of the audited profile for this case: w = `rule.batchWeight(step: step)`,
        /// `rule.estimator`, `rule.singleValue` (what a training step with one value per channel does).
        public var rule: RunningUpdateRule
        /// The directions of a higher-order operation (spec §12): v for H·v, v and w for D²y[v, w]
        /// and D³y[v, v, w]; empty otherwise.
        public var v = DerivativeDirection(x: [], gamma: [], beta: [])
        public var w = DerivativeDirection(x: [], gamma: [], beta: [])
    }

    /// Thrown by an operation for a case it does not handle: the case is skipped, not failed.
    public typealias Unsupported = UnsupportedOperation

    public var name: String, version: String
    public var dtypes: Set<DType>, layouts: Set<Layout>
    /// false: the implementation keeps no running statistics (its framework does, spec/AUDIT.md §3):
    /// trajectory cases are skipped and train cases are judged without running_mean/running_var.
    public var runningStatistics: Bool
    public var train: (@Sendable (Arguments) throws -> TrainingOutput)?
    public var infer: (@Sendable (Arguments) throws -> [Double])?
    public var backwardTrain: (@Sendable (Arguments) throws -> GradientOutput)?
    public var backwardInfer: (@Sendable (Arguments) throws -> GradientOutput)?
    /// The higher-order operations (spec §12): H·v in training and inference mode (arguments'
    /// `v`, and `dy`), D²y[v, w] and D³y[v, v, w] (arguments' `v`, `w`).
    public var hvpTrain: (@Sendable (Arguments) throws -> HessianVectorProduct)?
    public var hvpInfer: (@Sendable (Arguments) throws -> HessianVectorProduct)?
    public var d2Train: (@Sendable (Arguments) throws -> [Double])?
    public var d3Train: (@Sendable (Arguments) throws -> [Double])?

    public init(name: String, version: String = "in-process", dtypes: Set<DType> = Set(DType.allCases),
                layouts: Set<Layout> = Set(Layout.allCases), runningStatistics: Bool = true,
                train: (@Sendable (Arguments) throws -> TrainingOutput)? = nil,
                infer: (@Sendable (Arguments) throws -> [Double])? = nil,
                backwardTrain: (@Sendable (Arguments) throws -> GradientOutput)? = nil,
                backwardInfer: (@Sendable (Arguments) throws -> GradientOutput)? = nil,
                hvpTrain: (@Sendable (Arguments) throws -> HessianVectorProduct)? = nil,
                hvpInfer: (@Sendable (Arguments) throws -> HessianVectorProduct)? = nil,
                d2Train: (@Sendable (Arguments) throws -> [Double])? = nil,
                d3Train: (@Sendable (Arguments) throws -> [Double])? = nil) {
        self.name = name; self.version = version; self.dtypes = dtypes; self.layouts = layouts
        self.runningStatistics = runningStatistics
        self.train = train; self.infer = infer; self.backwardTrain = backwardTrain; self.backwardInfer = backwardInfer
        self.hvpTrain = hvpTrain; self.hvpInfer = hvpInfer; self.d2Train = d2Train; self.d3Train = d3Train
    }

    /// The operations of `kernel`, for its dtypes and every layout: all four first-order ones,
    /// and the higher-order ones when it is a ``BNKernels/HigherOrderKernel``.
    public init(_ kernel: any BatchNormKernel, version: String = "in-process") {
        self.init(name: kernel.name, version: version, dtypes: kernel.dtypes,
                  train: { a in
                      try kernel.train(a.x, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, beta: a.beta, eps: a.eps,
                                       runningMean: a.runningMean, runningVariance: a.runningVariance, step: a.step, rule: a.rule)
                  },
                  infer: { a in
                      try kernel.infer(a.x, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, beta: a.beta, eps: a.eps,
                                       mean: a.mean, variance: a.variance)
                  },
                  backwardTrain: { a in
                      try kernel.backwardTrain(a.x, dy: a.dy, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, eps: a.eps)
                  },
                  backwardInfer: { a in
                      try kernel.backwardInfer(a.x, dy: a.dy, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma,
                                               eps: a.eps, mean: a.mean, variance: a.variance)
                  })
        guard let h = kernel as? any HigherOrderKernel else { return }
        hvpTrain = { a in
            try h.hvpTrain(a.x, dy: a.dy, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, eps: a.eps, direction: a.v)
        }
        hvpInfer = { a in
            try h.hvpInfer(a.x, dy: a.dy, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, eps: a.eps,
                           mean: a.mean, variance: a.variance, direction: a.v)
        }
        d2Train = { a in try h.d2Train(a.x, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, eps: a.eps, a.v, a.w) }
        d3Train = { a in try h.d3Train(a.x, shape: a.shape, layout: a.layout, dtype: a.dtype, gamma: a.gamma, eps: a.eps, a.v, a.w) }
    }

    /// Whether the operations a case of `op` calls are all supplied.
    func supplies(_ op: Operation) -> Bool {
        switch op {
        case .train: train != nil
        case .infer: infer != nil
        case .backwardTrain: backwardTrain != nil
        case .backwardInfer: backwardInfer != nil
        case .trajectory, .epoch: train != nil && infer != nil
        case .syncTrain, .syncBackward: false  // synchronized BN runs through an adapter (spec/AUDIT.md §3.1)
        case .hvpTrain: hvpTrain != nil
        case .hvpInfer: hvpInfer != nil
        case .d2Train: d2Train != nil
        case .d3Train: d3Train != nil
        }
    }

    /// The operations as a kernel for one case (whose running-update rule the non-training calls
    /// also carry), so that the case runs exactly as `bnspec verify` runs a kernel (``CaseJudge``).
    func kernel(rule: RunningUpdateRule) -> some BatchNormKernel { Bound(operations: self, rule: rule) }

    private struct Bound: HigherOrderKernel {
        let operations: BatchNormOperations, rule: RunningUpdateRule
        var name: String { operations.name }
        var role: KernelRole { .implementation }
        var dtypes: Set<DType> { operations.dtypes }

        func call<R>(_ f: (@Sendable (Arguments) throws -> R)?, _ a: Arguments) throws -> R {
            guard let f else { throw Unsupported("operation not supplied") }
            return try f(a)
        }
        func train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                   runningMean: [Double], runningVariance: [Double], step: Int, rule: RunningUpdateRule) throws -> TrainingOutput {
            try call(operations.train, Arguments(x: x, dy: [], shape: shape, layout: layout, dtype: dtype, gamma: gamma, beta: beta, eps: eps,
                                                 mean: [], variance: [], runningMean: runningMean, runningVariance: runningVariance,
                                                 step: step, rule: rule))
        }
        func infer(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], beta: [Double], eps: Double,
                   mean: [Double], variance: [Double]) throws -> [Double] {
            try call(operations.infer, Arguments(x: x, dy: [], shape: shape, layout: layout, dtype: dtype, gamma: gamma, beta: beta, eps: eps,
                                                 mean: mean, variance: variance, runningMean: [], runningVariance: [], step: 1, rule: rule))
        }
        func backwardTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                           eps: Double) throws -> GradientOutput {
            try call(operations.backwardTrain, Arguments(x: x, dy: dy, shape: shape, layout: layout, dtype: dtype, gamma: gamma, beta: [],
                                                         eps: eps, mean: [], variance: [], runningMean: [], runningVariance: [],
                                                         step: 1, rule: rule))
        }
        func backwardInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double],
                           eps: Double, mean: [Double], variance: [Double]) throws -> GradientOutput {
            try call(operations.backwardInfer, Arguments(x: x, dy: dy, shape: shape, layout: layout, dtype: dtype, gamma: gamma, beta: [],
                                                         eps: eps, mean: mean, variance: variance, runningMean: [], runningVariance: [],
                                                         step: 1, rule: rule))
        }
        func arguments(_ x: [Double], dy: [Double], _ shape: Shape, _ layout: Layout, _ dtype: DType, _ gamma: [Double], _ eps: Double,
                       mean: [Double] = [], variance: [Double] = [], _ v: DerivativeDirection,
                       _ w: DerivativeDirection = DerivativeDirection(x: [], gamma: [], beta: [])) -> Arguments {
            var a = Arguments(x: x, dy: dy, shape: shape, layout: layout, dtype: dtype, gamma: gamma, beta: [], eps: eps,
                              mean: mean, variance: variance, runningMean: [], runningVariance: [], step: 1, rule: rule)
            a.v = v; a.w = w
            return a
        }
        func hvpTrain(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                      direction v: DerivativeDirection) throws -> HessianVectorProduct {
            try call(operations.hvpTrain, arguments(x, dy: dy, shape, layout, dtype, gamma, eps, v))
        }
        func hvpInfer(_ x: [Double], dy: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                      mean: [Double], variance: [Double], direction v: DerivativeDirection) throws -> HessianVectorProduct {
            try call(operations.hvpInfer, arguments(x, dy: dy, shape, layout, dtype, gamma, eps, mean: mean, variance: variance, v))
        }
        func d2Train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                     _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double] {
            try call(operations.d2Train, arguments(x, dy: [], shape, layout, dtype, gamma, eps, v, w))
        }
        func d3Train(_ x: [Double], shape: Shape, layout: Layout, dtype: DType, gamma: [Double], eps: Double,
                     _ v: DerivativeDirection, _ w: DerivativeDirection) throws -> [Double] {
            try call(operations.d3Train, arguments(x, dy: [], shape, layout, dtype, gamma, eps, v, w))
        }
    }
}
