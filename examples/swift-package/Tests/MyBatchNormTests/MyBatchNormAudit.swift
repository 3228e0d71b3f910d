import BNAudit
import BNCore
import BNKernels
import MyBatchNorm
import Testing

/// MyBatchNorm as BNSpec's in-process audit calls it: each operation gets a case's arrays
/// (Double holding values of the storage dtype) and returns its results; arithmetic in Float,
/// or in Double for float64 data.
func operations(_ bn: MyBatchNorm, name: String) -> BatchNormOperations {
    BatchNormOperations(
        name: name,
        train: { a in a.dtype == .f64 ? try train(bn, a, Double.self) : try train(bn, a, Float.self) },
        infer: { a in a.dtype == .f64 ? infer(bn, a, Double.self) : infer(bn, a, Float.self) },
        backwardTrain: { a in a.dtype == .f64 ? backward(bn, a, Double.self, training: true) : backward(bn, a, Float.self, training: true) },
        backwardInfer: { a in a.dtype == .f64 ? backward(bn, a, Double.self, training: false) : backward(bn, a, Float.self, training: false) })
}

extension BatchNormOperations.Arguments {
    var myLayout: MyBatchNorm.Layout {
        MyBatchNorm.Layout(n: shape.batch, c: shape.channels, spatial: shape.spatialSize, channelsLast: layout != .nchw)
    }
}

/// A case's values in T (exact: they are values of the storage dtype), and results back in Double.
func cast<T: BinaryFloatingPoint>(_ v: [Double]) -> [T] { var out: [T] = []; for x in v { out.append(T(x)) }; return out }
func widen<T: BinaryFloatingPoint>(_ v: [T]) -> [Double] { var out: [Double] = []; for x in v { out.append(Double(x)) }; return out }

func train<T: BinaryFloatingPoint>(_ bn: MyBatchNorm, _ a: BatchNormOperations.Arguments, _: T.Type) throws -> TrainingOutput {
    var rm: [T] = cast(a.runningMean), rv: [T] = cast(a.runningVariance)
    let o = try bn.forwardTraining(cast(a.x) as [T], a.myLayout, gamma: cast(a.gamma), beta: cast(a.beta), eps: T(a.eps),
                                   momentum: T(a.rule.batchWeight(step: a.step)), runningMean: &rm, runningVariance: &rv)
    return TrainingOutput(y: widen(o.y), batchMean: widen(o.mean), batchVariance: widen(o.variance),
                          runningMean: widen(rm), runningVariance: widen(rv))
}

func infer<T: BinaryFloatingPoint>(_ bn: MyBatchNorm, _ a: BatchNormOperations.Arguments, _: T.Type) -> [Double] {
    widen(bn.forwardInference(cast(a.x) as [T], a.myLayout, gamma: cast(a.gamma), beta: cast(a.beta), eps: T(a.eps),
                              mean: cast(a.mean), variance: cast(a.variance)))
}

func backward<T: BinaryFloatingPoint>(_ bn: MyBatchNorm, _ a: BatchNormOperations.Arguments, _: T.Type, training: Bool) -> GradientOutput {
    let g = bn.backward(cast(a.x) as [T], dy: cast(a.dy), a.myLayout, gamma: cast(a.gamma), eps: T(a.eps),
                        statistics: training ? nil : (cast(a.mean), cast(a.variance)))
    return GradientOutput(dx: widen(g.dx), dGamma: widen(g.dGamma), dBeta: widen(g.dBeta))
}

/// The verdict on one case as a test: a failure records the cause, the detail and the repro line.
func expectPasses(_ audit: Result<AuditReport, any Error>, _ id: String) throws {
    let result = try #require(try audit.get()[case: id])
    if result.status == .skipped { withKnownIssue { Issue.record("skipped: \(result.detail)") }; return }
    #expect(result.status == .passed, "\(result)")
}

/// One audit of MyBatchNorm over BNSpec's golden suite against PyTorch's conventions, run once and
/// shared by the per-case tests.
let myAudit = Result {
    try Audit(profile: .pytorch, rerun: "swift test --filter MyBatchNormAudit").run(operations: operations(MyBatchNorm(), name: "MyBatchNorm"))
}

@Suite struct MyBatchNormAudit {
    @Test(arguments: try Audit.caseIDs())
    func goldenCase(_ id: String) throws { try expectPasses(myAudit, id) }
}
