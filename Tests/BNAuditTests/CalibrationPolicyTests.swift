import BNAudit
import BNCalibration
import BNCore
import BNGolden
import BNKernels
import Foundation
import Testing

/// Where `bnspec verify` runs the calibration kernels (spec/SPEC.md §5.5): a mutant is skipped
/// only where its code is the honest one (``MutationReach``, checked bit for bit here), and a run
/// where calibration kernels were not requested says so and is not failed for it.
@Suite struct CalibrationPolicyTests {
    static let root: URL = Checkout.root(from: URL(fileURLWithPath: #filePath))!
    static var golden: URL { root.appendingPathComponent("golden") }

    static var mutants: [any BatchNormKernel] {
        CalibrationKernel.all.filter { $0.mutation != .foldedInference } + HigherOrderCalibrationKernel.all
    }

    /// The honest computation of an operation, as the mutants' code would be without their bug:
    /// the unmutated loops for the single-device operations (a synchronized bug's kernel runs them
    /// as is), the two-pass Chan chain for the synchronized ones, the honest closed forms for the
    /// higher-order ones.
    static func honest(_ op: BNGolden.Operation) -> any BatchNormKernel {
        op.isSynchronized || op.isHigherOrder ? HonestKernel(.twoPass) : CalibrationKernel(.syncLocalBessel)
    }

    /// One golden case per (operation, layout, dtype): 1 to a few hundred elements each.
    static func sample() throws -> [GoldenStore.LoadedCase] {
        let manifest = try GoldenStore.manifest(golden)
        var seen = Set<String>(), out: [GoldenStore.LoadedCase] = []
        for id in manifest.cases {
            let c = try GoldenStore.loadCase(golden, id: id, manifest: manifest)
            let key = "\(c.spec.op.rawValue) \(c.spec.layout.rawValue) \(c.spec.dtype.rawValue) \(c.spec.expectError == nil)"
            if c.spec.expectError == nil, seen.insert(key).inserted { out.append(c) }
        }
        return out
    }

    /// Law: where the reach table skips a mutant, running it anyway gives the honest computation's
    /// output bits (so no case could have caught it there); and every mutant runs on some case of
    /// each operation its reach names.
    @Test func aMutantIsSkippedExactlyWhereItsCodeIsTheHonestOne() throws {
        let cases = try Self.sample()
        #expect(cases.count > 20)
        var ranOn: [String: Set<KernelEntry>] = [:]
        for c in cases {
            let expectedBits = CaseResult.outputDigest(try CaseJudge.run(c, Self.honest(c.spec.op)))
            for k in Self.mutants {
                let implemented = (k as! any ReachDeclaring).implemented
                let entries = CaseJudge.entries(c.spec.op)
                guard entries.isSubset(of: implemented) else {
                    #expect(CaseJudge.unreachable(c.spec, k)?.hasPrefix("not implemented by the kernel") == true)
                    continue
                }
                if let why = CaseJudge.unreachable(c.spec, k) {
                    #expect(why.hasPrefix("cannot be caught here: the mutation changes only"))
                    let r = CaseJudge.judge(c, kernel: k)
                    #expect(r.status == .skipped && r.detail == why && !r.detail.contains("\n"))
                    let bits = CaseResult.outputDigest(try CaseJudge.run(c, k))
                    #expect(bits == expectedBits, "\(k.name) is skipped on \(c.spec.id) but its outputs differ from the honest ones")
                } else {
                    ranOn[k.name, default: []].formUnion(entries)
                    #expect(CaseJudge.judge(c, kernel: k).status != .skipped, "\(k.name) on \(c.spec.id)")
                }
            }
        }
        for k in Self.mutants {
            let reach = (k as! any ReachDeclaring).reach!
            #expect(reach.entries.isSubset(of: ranOn[k.name] ?? []), "\(k.name) never ran on \(reach.entries.subtracting(ranOn[k.name] ?? []))")
        }
    }

    @Test func theReasonNamesWhatTheMutationChanges() {
        let spec = try! Catalog.makeCase(.train, ["shape": "4x3x5x5", "layout": "NCHW"])
        #expect(CaseJudge.unreachable(spec, CalibrationKernel(.backwardMissingMeanTerm))
                == "cannot be caught here: the mutation changes only dx of backward-train")
        #expect(CaseJudge.unreachable(spec, CalibrationKernel(.channelsLastOffByOne))
                == "cannot be caught here: the mutation changes only the forward's channel indexing of train, infer in NHWC/NC")
        #expect(CaseJudge.unreachable(spec, CalibrationKernel(.onePassVariance)) == nil)
        #expect(CaseJudge.unreachable(spec, CalibrationKernel(.foldedInference)) == nil)   // honest: runs everywhere
        #expect(CaseJudge.unreachable(spec, HonestKernel(.welford)) == nil)
    }

    /// `auto` runs calibration kernels on cases up to the limit and on larger ones only when named;
    /// `all` everywhere; `none` nowhere.
    @Test func calibrationRunsWhereRequested() {
        let limit = Verification.calibrationElementLimit
        #expect(limit >= 81_920 && limit < 32 * 64 * 28 * 28)   // above the default suite, below the large one
        #expect(Verification.notRequested(elements: limit, policy: .auto, named: false) == nil)
        #expect(Verification.notRequested(elements: limit + 1, policy: .auto, named: false)?
                    .contains("--calibration all") == true)
        #expect(Verification.notRequested(elements: limit + 1, policy: .auto, named: true) == nil)
        #expect(Verification.notRequested(elements: 1 << 30, policy: .all, named: false) == nil)
        #expect(Verification.notRequested(elements: 1, policy: .none, named: true) != nil)
    }

    /// A whole golden folder verified without the calibration kernels is not FAILED for the
    /// mutants it did not run, claims no catch, and says so plainly (terminal line, JSON notes);
    /// verified with them, the mutants its cases cannot catch fail the verdict as before.
    @Test func mutantsNotRunAreUncheckedNotFailed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-calibration-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = try Catalog.parse("train data=normal shape=4x3x5x5 layout=NCHW\n", source: "test").cases[Catalog.defaultSuite] ?? []
        try GoldenStore.write(try Generator.suiteFiles(cases, suite: Catalog.defaultSuite), to: dir, force: false)

        let none = try Verification.run(golden: dir, calibration: .none)
        let mutants = none.implementations.filter { $0.role == "mutant" }
        #expect(!mutants.isEmpty && mutants.allSatisfy { $0.unchecked && $0.failed == 0 && $0.notRequested == cases.count })
        #expect(none.ok)
        let calibration = none.implementations.filter { $0.role != "implementation" && $0.role != "reference" }
        #expect(calibration.allSatisfy(\.idle) && !none.closingLine.contains("caught"))
        #expect(none.closingLine.hasSuffix("; \(calibration.count) calibration kernels not run (--calibration all runs them)"), "\(none.closingLine)")
        #expect(none.notes?.first?.contains("--calibration all") == true)
        let json = String(decoding: try JSONEncoder().encode(none), as: UTF8.self)
        #expect(json.contains("\"not_requested\":true") && json.contains("\"notes\""))
        #expect(none.implementations.filter { $0.role == "implementation" }.allSatisfy { $0.failed == 0 && $0.passed + $0.skipped == cases.count && $0.notRequested == nil })

        let auto = try Verification.run(golden: dir)     // runs them: a train case cannot catch a backward bug
        #expect(!auto.ok && auto.notes == nil)
        let backward = auto.implementations.first { $0.name == "calibration/backward-missing-mean-term" }!
        #expect(backward.failed == 0 && !backward.unchecked && backward.skipped == cases.count)
    }

    /// `--exclude-implementation`: the reference left out runs every other implementation, with
    /// the same results as a run that keeps it; a calibration kernel excluded is gone, the others
    /// keep the `auto` policy (excluding is not naming); an unknown name, or nothing left, is refused.
    @Test func excludedImplementationsAreLeftOut() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-exclude-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = try Catalog.parse("train data=normal shape=4x3x5x5 layout=NCHW\n", source: "test").cases[Catalog.defaultSuite] ?? []
        try GoldenStore.write(try Generator.suiteFiles(cases, suite: Catalog.defaultSuite), to: dir, force: false)

        let all = try Verification.run(golden: dir)
        let noReference = try Verification.run(golden: dir, excluding: ["reference"])
        #expect(all.implementations.map(\.name).first == "reference")
        #expect(noReference.implementations.map(\.name) == Array(all.implementations.map(\.name).dropFirst()))
        #expect(!noReference.cases.contains { $0.implementation == "reference" })
        let kept = all.cases.filter { $0.implementation != "reference" }
        #expect(noReference.cases.map(\.implementation) == kept.map(\.implementation))
        #expect(zip(noReference.cases, kept).allSatisfy { $0.status == $1.status && $0.digest == $1.digest && $0.worstRatio == $1.worstRatio })

        let two = try Verification.run(golden: dir, only: ["fused", "calibration/one-pass-variance"], excluding: ["fused"])
        #expect(two.implementations.map(\.name) == ["calibration/one-pass-variance"])

        #expect(throws: BNError.self) { try Verification.run(golden: dir, excluding: ["no-such-kernel"]) }
        #expect(throws: BNError.self) { try Verification.run(golden: dir, only: ["fused"], excluding: ["fused"]) }
    }
}
