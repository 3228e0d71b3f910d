/// The arrays of every operation: the one place that says what a case of each operation holds.
extension Operation {
    /// Inputs then outputs, in the order reports and requests list them. The first storage output
    /// is the operation's primary output (``primaryOutput``).
    public var arrays: [ArraySpec] {
        typealias A = ArraySpec
        let x = A.input("x", .storage, .tensor, from: .data(stream: "x"))
        let parameters = [A.input("gamma", .parameter, .channels, from: .gamma), A.input("beta", .parameter, .channels, from: .beta)]
        let running = [A.input("running_mean", .parameter, .channels, from: .runningMean),
                       A.input("running_var", .parameter, .channels, from: .runningVariance)]
        let global = [A.input("mean", .parameter, .channels, from: .globalMean),
                      A.input("var", .parameter, .channels, from: .globalVariance)]
        let dy = A.input("dy", .storage, .tensor, from: .upstreamGradient)
        let gradients = [A.output("dx", .storage, .tensor), A.output("dgamma", .parameter, .channels),
                         A.output("dbeta", .parameter, .channels)]
        // A direction (spec §12): its x-part like x, its γ and β parts per channel.
        func direction(_ d: String) -> [ArraySpec] {
            [A.input("\(d)_x", .storage, .tensor, from: .direction(stream: "\(d)_x")),
             A.input("\(d)_gamma", .parameter, .channels, from: .direction(stream: "\(d)_gamma")),
             A.input("\(d)_beta", .parameter, .channels, from: .direction(stream: "\(d)_beta"))]
        }
        let hvp = [A.output("hv_x", .storage, .tensor), A.output("hv_gamma", .parameter, .channels),
                   A.output("hv_beta", .parameter, .channels)]
        switch self {
        case .train:
            return [x] + parameters + running + [
                A.output("y", .storage, .tensor),
                A.output("batch_mean", .parameter, .channels, requiredInAudit: false),
                A.output("batch_var", .parameter, .channels, requiredInAudit: false),
                A.output("running_mean", .parameter, .channels), A.output("running_var", .parameter, .channels),
            ]
        case .infer:
            return [x] + parameters + global + [A.output("y", .storage, .tensor)]
        case .backwardTrain:
            return [x] + parameters + [dy] + gradients
        case .backwardInfer:
            return [x] + parameters + [dy] + global + gradients
        case .syncTrain:
            // The whole batch in and out (the ranks' tensors concatenated along N); the global
            // statistics and the running statistics every rank holds.
            return Operation.train.arrays
        case .syncBackward:
            return [x] + parameters + [dy] + [A.output("dx", .storage, .tensor), A.output("dgamma", .parameter, .gradientRows),
                                              A.output("dbeta", .parameter, .gradientRows)]
        case .trajectory:
            return [A.input("x", file: "x_steps.npy", .storage, .stepsTensor, from: .data(stream: "x")),
                    A.input("x_eval", .storage, .tensor, from: .data(stream: "x_eval"))] + parameters + running + [
                A.output("running_mean", .parameter, .stepsChannels), A.output("running_var", .parameter, .stepsChannels),
                A.output("y_eval", .storage, .tensor),
            ]
        case .epoch:
            // x: the batches concatenated along N (the case's partition cuts them).
            return [x, A.input("x_eval", .storage, .tensor, from: .data(stream: "x_eval"))] + parameters + running + [
                A.output("running_mean", .parameter, .stepsChannels), A.output("running_var", .parameter, .stepsChannels),
                A.output("y_eval", .storage, .tensor),
            ]
        case .hvpTrain:
            return [x] + parameters + [dy] + direction("v") + hvp
        case .hvpInfer:
            return [x] + parameters + [dy] + global + direction("v") + hvp
        case .d2Train:
            return [x] + parameters + direction("v") + direction("w") + [A.output("d2y", .storage, .tensor)]
        case .d3Train:
            return [x] + parameters + direction("v") + direction("w") + [A.output("d3y", .storage, .tensor)]
        }
    }

    public var inputs: [ArraySpec] { arrays.filter { $0.role == .input } }
    public var outputs: [ArraySpec] { arrays.filter { $0.role == .output } }

    public func input(_ name: String) -> ArraySpec? { inputs.first { $0.name == name } }
    public func output(_ name: String) -> ArraySpec? { outputs.first { $0.name == name } }

    /// The output whose normwise error reports quote (y, dx, y_eval, hv_x, d2y, d3y): the first storage output.
    public var primaryOutput: ArraySpec? { outputs.first { $0.element == .storage } }

    /// The operation runs training steps with a running-statistics update (it takes initial
    /// running statistics): the single-value policy and the cumulative average apply to it.
    public var updatesRunningStatistics: Bool { inputs.contains { $0.source == .runningMean } }

    /// The operation runs `steps` training steps (a trajectory, an epoch); others have steps = 1.
    public var hasSteps: Bool { arrays.contains { $0.extent == .stepsTensor || $0.extent == .stepsChannels } }
    /// Its x stacks `steps` batches of the case's shape (a trajectory); an epoch's x is one tensor.
    public var stacksSteps: Bool { arrays.contains { $0.extent == .stepsTensor } }
}
