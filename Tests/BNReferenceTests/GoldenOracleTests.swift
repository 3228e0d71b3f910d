import BNCore
import BNGolden
import BNReference
import BNReferenceChecks
import Foundation
import Testing

/// Spec §7's guarantee, checked on the committed golden/ by ``GoldenOracle`` (exact rationals
/// and a symbolic square root; BNReferenceChecks, no reference code): every element of every
/// output is the nearest Double to the exact real value, or §4's non-finite value.
///
/// The whole folder is `bnspec oracle` (CI runs it on the release build: ~30 s, against ~18 min
/// for BigInt in a debug build); here, in the debug build, every case of at most 20 KB — every
/// operation, layout and storage type — and the oracle's power to fail.
@Suite struct GoldenOracleTests {
    static let golden = Checkout.root(from: URL(fileURLWithPath: #filePath))!.appendingPathComponent("golden")
    static let smallCaseBytes = 20_000

    @Test func everySmallGoldenCaseIsCorrectlyRounded() throws {
        let manifest = try GoldenStore.manifest(Self.golden)
        let ids = manifest.cases.filter { GoldenStore.caseBytes(Self.golden, id: $0) <= Self.smallCaseBytes }
        let specs = try ids.map { try GoldenStore.loadCase(Self.golden, id: $0, manifest: manifest).spec }
        // The subset is no corner: every operation, layout and storage type of the suite is in it.
        let all = try manifest.cases.map { try GoldenStore.loadCase(Self.golden, id: $0, manifest: manifest).spec }
        #expect(Set(specs.map(\.op)) == Set(all.map(\.op)))
        #expect(Set(specs.map(\.layout)) == Set(all.map(\.layout)))
        #expect(Set(specs.map(\.dtype)) == Set(all.map(\.dtype)))
        let sweep = try GoldenOracle.sweep(golden: Self.golden, ids: ids, threads: 2)
        print(sweep.summary + " (cases of at most \(Self.smallCaseBytes) bytes; the whole folder: bnspec oracle)")
        #expect(sweep.cases == ids.count && ids.count * 2 > manifest.cases.count)
        #expect(sweep.failureCount == 0, "\(sweep.failureCount) golden elements are not what the oracle derives, e.g. \(sweep.failures.prefix(5).map(\.line))")
        #expect(sweep.correctlyRounded > 100_000 && sweep.nonFinite > 1000)
    }

    /// The oracle fails what is one ulp off, a finite value where §4 gives NaN, and an output of the
    /// wrong size, naming the element and the correctly rounded value; the thread count changes nothing.
    @Test func oneUlpOffIsFoundAndNamed() throws {
        let manifest = try GoldenStore.manifest(Self.golden)
        let id = "train.normal.2x3x1x1.NCHW.f32.pytorch.eps1e-05.m0.1"
        let c = try GoldenStore.loadCase(Self.golden, id: id, manifest: manifest)
        #expect(try GoldenOracle.check(c).failureCount == 0)
        var moved = c
        let y = c.expected["y"]!.values[4]
        moved.expected["y"]!.values[4] = y.nextUp
        let s = try GoldenOracle.check(moved)
        #expect(s.failures == [GoldenOracle.Failure(caseID: id, output: "y", index: 4, golden: "\(y.nextUp)",
                                                    oracle: "\(y) (nearest to the exact value)")])
        #expect(s.failedCases == [id])
        var nan = c
        nan.expected["batch_var"]!.values[1] = .nan
        #expect(try GoldenOracle.check(nan).failures.map(\.line) == ["\(id) batch_var[1]: golden nan, oracle \(c.expected["batch_var"]!.values[1]) (nearest to the exact value)"])
        let poisoned = "train.nonfinite.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"
        var p = try GoldenStore.loadCase(Self.golden, id: poisoned, manifest: manifest)
        let ys = p.expected["y"]!.values
        let k = try #require(ys.firstIndex(where: { $0.isNaN }))
        p.expected["y"]!.values[k] = 0
        #expect(try GoldenOracle.check(p).failures.map(\.line) == ["\(poisoned) y[\(k)]: golden 0.0, oracle nan (§4)"])
        var short = c
        short.expected["running_mean"]!.values.removeLast()
        #expect(try GoldenOracle.check(short).failures.map(\.line) == ["\(id) running_mean: golden 2 values, oracle 3 values"])
        let ids = Array(manifest.cases.prefix(40))
        #expect(try GoldenOracle.sweep(golden: Self.golden, ids: ids, threads: 1) == GoldenOracle.sweep(golden: Self.golden, ids: ids, threads: 3))
    }

    /// The exact re-evaluation is the rare exception: over the default suite's ~276,000
    /// output elements it runs for a few dozen (printed), not for the bulk of the data.
    @Test func exactFallbackIsRare() throws {
        let cases = try Catalog.load(Self.golden.deletingLastPathComponent().appendingPathComponent("spec/catalog.txt"))
            .cases[Catalog.defaultSuite]!
        let counter = FallbackCounter()
        try Reference.$exactFallbacks.withValue(counter) {
            for spec in cases { _ = try Generator.expected(spec, try Generator.inputs(spec)) }
        }
        print("exact fallbacks over the default suite: \(counter.count)")
        #expect(counter.count <= 300, "\(counter.count) elements needed the exact path")
    }
}
