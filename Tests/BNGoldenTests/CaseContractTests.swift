import BNAudit
import BNCore
import BNGolden
import BNReference
import Foundation
import Testing

/// The case contract (issue #15): an operation's arrays are one table, and the golden files,
/// the generator, the audit's requests and required outputs agree with it; re-targeting a
/// case to a profile carries the batch weight w exactly.
@Suite struct CaseContractTests {
    static let golden = GoldenSuiteTests.golden

    /// Every committed case.json lists exactly its operation's inputs and outputs (or no outputs
    /// for a refusal), with the table's file names: the committed golden/ and the table agree.
    @Test func committedCasesListTheirOperationsArrays() throws {
        let manifest = try GoldenStore.manifest(Self.golden)
        #expect(manifest.cases.count >= 150)
        for id in manifest.cases {
            let path = Self.golden.appendingPathComponent("\(id)/case.json")
            let spec = try GoldenStore.decodeCase(try Data(contentsOf: path), path: path.path)
            #expect(spec.inputs == Dictionary(uniqueKeysWithValues: spec.op.inputs.map { ($0.name, $0.file) }), "\(id)")
            let outputs = Dictionary(uniqueKeysWithValues: spec.op.outputs.map { ($0.name, $0.file) })
            #expect(spec.outputs == (spec.expectError == nil ? outputs : [:]), "\(id)")
        }
    }

    /// The generator makes every input of the table, with the dtype, NPY shape and length the
    /// table gives, for every operation and storage dtype.
    @Test(arguments: BNGolden.Operation.allCases)
    func generatorMakesTheTablesInputs(op: BNGolden.Operation) throws {
        for dtype in DType.allCases {
            let spec = try Catalog.makeCase(op, ["shape": "2x3x2x2", "dtype": dtype.short]
                                            .merging(op == .epoch ? ["batches": "1+1"] : ["steps": "3"]) { $1 })
            let s = try spec.shapeValue()
            let inputs = try Generator.inputs(spec)
            #expect(Set(inputs.keys) == Set(op.inputs.map(\.name)))
            for a in op.inputs {
                let arr = try #require(inputs[a.name])
                #expect(arr.dtype == a.dtype(in: spec) && arr.shape == a.dimensions(in: spec, shape: s), "\(op) \(dtype) \(a.name)")
                #expect(arr.values.count == a.count(in: spec, shape: s))
            }
            let expected = try Generator.expected(spec, inputs)
            #expect(Set(expected.keys) == Set(op.outputs.map(\.name)))
            for a in op.outputs { #expect(expected[a.name]?.values.count == a.count(in: spec, shape: s), "\(op) \(a.name)") }
        }
    }

    /// What the table says, checked against the specification's prose (SPEC §6.3, AUDIT.md §2).
    @Test func tableStatesTheSpecifiedArrays() {
        #expect(BNGolden.Operation.train.outputs.filter(\.requiredInAudit).map(\.name) == ["y", "running_mean", "running_var"])
        #expect(BNGolden.Operation.trajectory.input("x")?.file == "x_steps.npy" && Operation.trajectory.input("x")?.extent == .stepsTensor)
        #expect(BNGolden.Operation.trajectory.output("running_mean")?.extent == .stepsChannels)
        #expect(BNGolden.Operation.allCases.map { $0.primaryOutput?.name } == ["y", "y", "dx", "dx", "y_eval", "y_eval", "y", "dx", "hv_x", "hv_x", "d2y", "d3y"])
        #expect(BNGolden.Operation.allCases.filter(\.updatesRunningStatistics) == [.train, .trajectory, .epoch, .syncTrain])
        #expect(BNGolden.Operation.allCases.filter(\.isSynchronized) == [.syncTrain, .syncBackward])
        #expect(BNGolden.Operation.syncTrain.arrays == BNGolden.Operation.train.arrays)
        #expect(BNGolden.Operation.syncBackward.outputs.map { "\($0.name):\($0.extent)" } == ["dx:tensor", "dgamma:gradientRows", "dbeta:gradientRows"])
        #expect(BNGolden.Operation.allCases.filter(\.isHigherOrder) == [.hvpTrain, .hvpInfer, .d2Train, .d3Train])
        #expect(BNGolden.Operation.d3Train.inputs.map(\.name) == ["x", "gamma", "beta", "v_x", "v_gamma", "v_beta", "w_x", "w_gamma", "w_beta"])
        #expect(BNGolden.Operation.hvpInfer.outputs.map(\.name) == ["hv_x", "hv_gamma", "hv_beta"])
        #expect(BNGolden.Operation.allCases.filter(\.hasSteps) == [.trajectory, .epoch])
        #expect(BNGolden.Operation.allCases.filter(\.stacksSteps) == [.trajectory])
        #expect(BNGolden.Operation.allCases.filter(\.hasPartition) == [.epoch, .syncTrain, .syncBackward])
        #expect(BNGolden.Operation.epoch.input("x")?.extent == .tensor && Operation.epoch.output("running_var")?.extent == .stepsChannels)
        for op in BNGolden.Operation.allCases {
            #expect(op.outputs.allSatisfy { $0.file == "expected_\($0.name).npy" })
            #expect(Set(op.arrays.map { "\($0.role)/\($0.name)" }).count == op.arrays.count, "\(op): a name twice")
        }
    }

    func goldenCase(_ id: String) throws -> GoldenStore.LoadedCase {
        try GoldenStore.loadCase(Self.golden, id: id, manifest: try GoldenStore.manifest(Self.golden))
    }

    /// mlx (pytorch's convention) momentum 0.1 audited as keras: w stays 0.1 exactly (a string round trip through
    /// keras' momentum 0.9 gave 1 − 0.9 = 0.09999999999999998), the adapter is sent the w the
    /// reference used, and the expected outputs are the reference's with that w.
    @Test func retargetingCarriesTheBatchWeightExactly() throws {
        let golden = try goldenCase("train.normal.4x3x5x5.NCHW.f32.mlx.eps1e-05.m0.1")
        let ac = try AuditCase(golden, profile: .keras)
        let spec = ac.loaded.spec
        #expect(spec.batchWeight?.bitPattern == (0.1).bitPattern && spec.momentum == 0.9 && spec.profile == "keras")
        #expect(try spec.rule().batchWeight(step: 1).bitPattern == (0.1).bitPattern)
        let req = ac.request(inputDir: URL(fileURLWithPath: "/in"), outputDir: URL(fileURLWithPath: "/out"), profile: .keras)
        #expect((req["batch_weight"] as? Double)?.bitPattern == (0.1).bitPattern && req["momentum"] as? Double == 0.9)
        // The expected running variance, computed here from the reference's pieces with w = 0.1 and
        // keras' biased estimator.
        let s = try spec.shapeValue()
        let moments = try Reference.moments(golden.inputs["x"]!.values, shape: s, layout: spec.layout)
        let keras = try RunningUpdateRule(weighting: .batch, momentum: 0.1, estimator: .biased, singleValue: .beta)
        let start = RunningStatistics(mean: golden.inputs["running_mean"]!.values, variance: golden.inputs["running_var"]!.values)
        let want = try Reference.updateRunning(start, batch: moments, rule: keras)
        #expect(ac.loaded.expected["running_var"]!.values.map(\.bitPattern) == want.variance.map(\.bitPattern))
        // The checks above can fail: converting keras' momentum back gives another weight
        // (0.09999999999999998). Since the reference rounds the running update correctly, that
        // ulp of w need not change the rounded outputs, so the weight itself is what is checked.
        let drifted = try RunningUpdateRule(weighting: .running, momentum: 0.9, estimator: .biased, singleValue: .beta)
        #expect(drifted.batchWeight(step: 1).bitPattern != (0.1).bitPattern)
    }

    /// Under conventions that give the same reference outputs (same estimator and single-value
    /// policy) the golden files are used as they are; otherwise the reference recomputes them.
    @Test func sameConventionsReadTheGoldenFiles() throws {
        var golden = try goldenCase("train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1")
        golden.expected["y"]!.values[0] += 1  // marks the golden file: recomputation would undo it
        for (profile, reused) in [(ConventionProfile.pytorch, true), (.mlx, true), (.keras, false), (.paper, true)] {
            let r = try golden.retargeted(to: profile)
            #expect((r.expected["y"] == golden.expected["y"]) == reused, "\(profile.name)")
            #expect(r.spec.id == golden.spec.id && r.inputs == golden.inputs)
        }
    }

    /// The request names the dtype of every array (additive `dtypes` field): storage arrays in
    /// the case's dtype, parameters and statistics in float32.
    @Test func requestNamesEachArraysDtype() throws {
        let golden = try goldenCase("train.normal.4x3x5x5.NCHW.bf16.pytorch.eps1e-05.m0.1")
        let ac = try AuditCase(golden, profile: .pytorch)
        let req = ac.request(inputDir: URL(fileURLWithPath: "/in"), outputDir: URL(fileURLWithPath: "/out"), profile: .pytorch)
        let dtypes = try #require(req["dtypes"] as? [String: String])
        #expect(dtypes == ["x": "bfloat16", "gamma": "float32", "beta": "float32", "running_mean": "float32", "running_var": "float32",
                           "y": "bfloat16", "batch_mean": "float32", "batch_var": "float32"])
        #expect(ac.requiredOutputs == ["y", "running_mean", "running_var"])
    }

    /// A synchronized case (spec §11): its partition and gradient reduction are in case.json and
    /// the id, dγ/dβ are [K, C] under local reduction and [C] under global, re-targeting keeps
    /// both, and the adapter request carries them (spec/AUDIT.md §3.1).
    @Test func synchronizedCasesCarryTheirPartitionAndReduction() throws {
        let local = try Catalog.makeCase(.syncBackward, ["shape": "8x3x2x2", "partition": "3+1+0+4"])
        #expect(local.id.hasSuffix(".p3+1+0+4.local") && local.partition == [3, 1, 0, 4] && local.gradReduction == .local)
        let s = try local.shapeValue()
        #expect(local.op.output("dgamma")!.dimensions(in: local, shape: s) == [4, 3])
        let global = try Catalog.makeCase(.syncBackward, ["shape": "8x3x2x2", "ranks": "4", "grad_reduction": "global"])
        #expect(global.partition == [2, 2, 2, 2] && global.op.output("dbeta")!.dimensions(in: global, shape: s) == [3])
        let train = try Catalog.makeCase(.syncTrain, ["shape": "5x3"])
        #expect(train.partition == [3, 2] && train.gradReduction == nil && train.id.hasSuffix(".p3+2"))
        // case.json round trip, and re-targeting keeps both.
        let decoded = try JSONDecoder().decode(CaseSpec.self, from: try JSONEncoder().encode(local))
        #expect(decoded.partition == local.partition && decoded.gradReduction == .local)
        let keras = try local.retargeted(to: .keras)
        #expect(keras.partition == [3, 1, 0, 4] && keras.gradReduction == .local && keras.profile == "keras")
        // A single-device case.json has neither key (its bytes are unchanged).
        let plain = String(decoding: try JSONEncoder().encode(try Catalog.makeCase(.train, [:])), as: UTF8.self)
        #expect(!plain.contains("partition") && !plain.contains("grad_reduction"))
        // The expected outputs have the table's extents; the local rows add up to the global ones.
        let inputs = try Generator.inputs(local)
        let rows = try Generator.expected(local, inputs)["dgamma"]!
        let whole = try Generator.expected(global, try Generator.inputs(global))
        #expect(rows.shape == [4, 3] && rows.values[6..<9].allSatisfy { $0 == 0 })  // rank 2 is empty
        let g2 = try Generator.expected(try Catalog.makeCase(.syncBackward, ["shape": "8x3x2x2", "partition": "3+1+0+4", "grad_reduction": "global"]), inputs)
        for c in 0..<3 {
            let sum = (0..<4).reduce(0.0) { $0 + rows.values[$1 * 3 + c] }
            #expect(abs(sum - g2["dgamma"]!.values[c]) <= 1e-12 * (1 + abs(sum)))
        }
        #expect(whole["dgamma"]!.shape == [3])
        // The request.
        let golden = GoldenStore.LoadedCase(spec: local, inputs: inputs, expected: try Generator.expected(local, inputs))
        let req = try AuditCase(golden, profile: .pytorch).request(inputDir: URL(fileURLWithPath: "/in"), outputDir: URL(fileURLWithPath: "/out"),
                                                                 profile: .pytorch)
        #expect(req["op"] as? String == "sync-backward" && req["partition"] as? [Int] == [3, 1, 0, 4] && req["grad_reduction"] as? String == "local")
        let plainReq = try AuditCase(try goldenCase("train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"), profile: .pytorch)
            .request(inputDir: URL(fileURLWithPath: "/in"), outputDir: URL(fileURLWithPath: "/out"), profile: .pytorch)
        #expect(plainReq["partition"] == nil && plainReq["grad_reduction"] == nil)
    }

    /// Bad synchronized cases are one-line errors before anything computes: catalog keys on the
    /// wrong operation, a partition that does not add up to N, both partition and ranks, a
    /// case.json without its partition or with a wrong one, a local case whose dγ has C values.
    @Test func badSynchronizedCasesAreRefused() throws {
        for (op, keys) in [(BNGolden.Operation.train, ["partition": "2+2"]), (.syncTrain, ["shape": "4x3", "partition": "2+1"]),
                           (.syncTrain, ["partition": "2+2", "ranks": "2"]), (.syncTrain, ["grad_reduction": "local"]),
                           (.syncBackward, ["grad_reduction": "sum"]), (.syncTrain, ["ranks": "0"]), (.syncTrain, ["partition": "2+-1"])] {
            #expect(throws: BNError.self, "\(op) \(keys)") { try Catalog.makeCase(op, keys) }
        }
        var spec = try Catalog.makeCase(.syncBackward, ["shape": "8x3x2x2", "partition": "3+1+0+4"])
        for bad in [nil, [3, 1, 0, 3], [], [8, -1, 1]] as [[Int]?] {
            var s = spec; s.partition = bad
            #expect(throws: BNError.self, "partition \(String(describing: bad))") { try s.validate() }
        }
        var noReduction = spec; noReduction.gradReduction = nil
        #expect(throws: BNError.self) { try noReduction.validate() }
        var plain = try Catalog.makeCase(.train, [:]); plain.partition = [4]
        #expect(throws: BNError.self) { try plain.validate() }
        // Loading checks the rows: a [C] dgamma where the local case implies [K, C].
        let inputs = try Generator.inputs(spec)
        var expected = try Generator.expected(spec, inputs)
        expected["dgamma"] = NPYArray(dtype: .f64, shape: [3], values: [1, 2, 3])
        expected["dbeta"] = NPYArray(dtype: .f64, shape: [3], values: [1, 2, 3])
        #expect(throws: BNError.self) {
            try GoldenStore.LoadedCase(spec: spec, inputs: inputs, expected: expected).validateArrays(dtypes: true, path: "t")
        }
        spec.gradReduction = .global
        #expect(throws: Never.self) {
            try GoldenStore.LoadedCase(spec: spec, inputs: inputs, expected: expected).validateArrays(dtypes: true, path: "t")
        }
    }

    /// An epoch's batches (spec §2): given, adding up to N, each with two values per channel or
    /// more, `steps` their count; and only for an epoch.
    @Test func badEpochsAreRefused() throws {
        for (op, keys) in [(BNGolden.Operation.epoch, ["shape": "7x3x2x2"]), (.epoch, ["shape": "7x3x2x2", "batches": "3+3"]),
                           (.epoch, ["shape": "7x3", "batches": "3+3+1"]), (.epoch, ["shape": "7x3x2x2", "batches": "3+4+0"]),
                           (.epoch, ["shape": "7x3x2x2", "batches": "3+3+1", "steps": "2"]),
                           (.epoch, ["shape": "7x3x2x2", "batches": "3+3+1", "partition": "3+3+1"]),
                           (.trajectory, ["shape": "7x3x2x2", "batches": "3+3+1"]), (.train, ["batches": "2+2"])] {
            #expect(throws: BNError.self, "\(op) \(keys)") { try Catalog.makeCase(op, keys) }
        }
        let spec = try Catalog.makeCase(.epoch, ["shape": "7x3x2x2", "batches": "3+3+1"])
        #expect(spec.steps == 3 && spec.partition == [3, 3, 1] && spec.id.hasSuffix(".k3.p3+3+1"), "\(spec.id)")
        for bad in [nil, [3, 3], [4, 3, 0], [3, 3, 2]] as [[Int]?] {
            var s = spec; s.partition = bad
            #expect(throws: BNError.self, "partition \(String(describing: bad))") { try s.validate() }
        }
        var steps = spec; steps.steps = 2
        #expect(throws: BNError.self) { try steps.validate() }
    }

    /// An epoch of K batches of one size is the trajectory of those K batches: the same running
    /// statistics after every step and the same y_eval, bit for bit (one reached through the
    /// partition of x along N, the other through the stacked steps).
    @Test(arguments: ["NCHW", "NHWC"])
    func anEpochOfEqualBatchesIsATrajectory(layout: String) throws {
        let epoch = try Catalog.makeCase(.epoch, ["shape": "6x3x2x2", "batches": "2+2+2", "layout": layout])
        let trajectory = try Catalog.makeCase(.trajectory, ["shape": "2x3x2x2", "steps": "3", "layout": layout])
        var inputs = try Generator.inputs(epoch)
        let stacked = try Generator.inputs(trajectory)
        inputs["x"] = NPYArray(dtype: stacked["x"]!.dtype, shape: inputs["x"]!.shape, values: stacked["x"]!.values)
        for k in ["gamma", "beta", "running_mean", "running_var"] { inputs[k] = stacked[k] }
        // x_eval: the trajectory's (one batch) repeated to the epoch's N, so y_eval's first third is the trajectory's.
        let xe = stacked["x_eval"]!.values
        inputs["x_eval"] = NPYArray(dtype: stacked["x_eval"]!.dtype, shape: inputs["x_eval"]!.shape, values: xe + xe + xe)
        let e = try Generator.expected(epoch, inputs), t = try Generator.expected(trajectory, stacked)
        #expect(e["running_mean"]!.values == t["running_mean"]!.values)
        #expect(e["running_var"]!.values == t["running_var"]!.values)
        #expect(Array(e["y_eval"]!.values.prefix(xe.count)) == t["y_eval"]!.values)
        // Unequal batches change the Bessel factors: the last step's running variance differs.
        var uneven = epoch; uneven.partition = [3, 2, 1]
        let u = try Generator.expected(uneven, inputs)
        #expect(u["running_var"]!.values != e["running_var"]!.values)
    }
}
