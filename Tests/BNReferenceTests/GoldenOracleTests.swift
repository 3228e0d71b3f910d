import BNCore
import BNGolden
import BNReference
import Foundation
import Testing

/// Spec §7's guarantee, checked on the committed golden/: every element of every output of
/// every case is the nearest Double to the exact real value (``GoldenOracle``, exact
/// rationals and a symbolic square root), or §4's non-finite value.
@Suite struct GoldenOracleTests {
    static let golden = Checkout.root(from: URL(fileURLWithPath: #filePath))!.appendingPathComponent("golden")

    @Test func everyGoldenElementIsCorrectlyRounded() throws {
        let manifest = try GoldenStore.manifest(Self.golden)
        var checked = 0, nonFinite = 0, outputs = 0
        var failures: [String] = []
        for id in manifest.cases {
            let c = try GoldenStore.loadCase(Self.golden, id: id, manifest: manifest)
            let expected = try GoldenOracle.expectations(c)
            #expect(Set(expected.keys) == Set(c.expected.keys), "\(id): outputs \(c.expected.keys.sorted()) vs oracle \(expected.keys.sorted())")
            for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
                guard let got = c.expected[name]?.values else { continue }
                #expect(got.count == want.count, "\(id) \(name): \(got.count) values, oracle \(want.count)")
                outputs += 1
                for (i, (g, e)) in zip(got, want).enumerated() {
                    if case .nonFinite = e { nonFinite += 1 } else { checked += 1 }
                    if !e.holds(for: g) {
                        var detail = "\(id) \(name)[\(i)] = \(g)"
                        if case .exact(let v) = e, failures.count < 20 { detail += ", nearest to the exact value: \(ExactOracle.nearest(v))" }
                        failures.append(detail)
                    }
                }
            }
        }
        print("golden oracle: \(manifest.cases.count) cases, \(outputs) outputs, \(checked) elements correctly rounded, \(nonFinite) non-finite by §4, \(failures.count) failures")
        #expect(failures.isEmpty, "\(failures.count) golden elements are not the correctly rounded value, e.g. \(failures.prefix(5))")
        #expect(checked > 250_000)
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
