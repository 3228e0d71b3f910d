import BNCore
import BNGolden
import BNReference
import Foundation

/// The golden oracle over a folder (`bnspec oracle`, spec §7): every element of every output of
/// every selected case must be the nearest Double to the exact real value (``GoldenOracle``) or
/// §4's non-finite value; the case must have exactly the outputs, and the element counts, that the
/// oracle derives. Cases run on `threads` threads; the report is the same for any thread count
/// (results are kept per case and joined in manifest order).
extension GoldenOracle {
    /// One element (or one output) that is not what the oracle derives.
    public struct Failure: Codable, Sendable, Equatable {
        public var caseID: String
        public var output: String
        /// The element's index in the output; nil for a missing, extra or wrong-sized output.
        public var index: Int?
        /// What golden/ holds, and what the oracle derives (the nearest Double to the exact value,
        /// or §4's non-finite value), as text.
        public var golden: String
        public var oracle: String

        public init(caseID: String, output: String, index: Int?, golden: String, oracle: String) {
            self.caseID = caseID; self.output = output; self.index = index; self.golden = golden; self.oracle = oracle
        }

        public var line: String {
            "\(caseID) \(output)\(index.map { "[\($0)]" } ?? ""): golden \(golden), oracle \(oracle)"
        }
    }

    /// The tally of a sweep: per-case failures are kept up to ``Sweep/keptPerCase`` (all are counted).
    public struct Sweep: Codable, Sendable, Equatable {
        public static let keptPerCase = 5
        public var cases = 0
        public var outputs = 0
        /// Finite elements proved to be the correctly rounded value.
        public var correctlyRounded = 0
        /// Elements whose §4 value is NaN or ±Inf, matched by class.
        public var nonFinite = 0
        public var failureCount = 0
        public var failures: [Failure] = []
        /// The cases with a failure (manifest order).
        public var failedCases: [String] = []

        public var summary: String {
            "golden oracle: \(cases) cases, \(outputs) outputs, \(correctlyRounded) elements correctly rounded, \(nonFinite) non-finite by §4, \(failureCount) failures"
        }

        mutating func add(_ other: Sweep) {
            cases += other.cases; outputs += other.outputs; correctlyRounded += other.correctlyRounded
            nonFinite += other.nonFinite; failureCount += other.failureCount
            failures += other.failures; failedCases += other.failedCases
        }
    }

    /// Checks one loaded case against the oracle.
    public static func check(_ c: GoldenStore.LoadedCase) throws -> Sweep {
        let id = c.spec.id
        var s = Sweep(cases: 1)
        func fail(_ f: Failure) {
            s.failureCount += 1
            if s.failures.count < Sweep.keptPerCase { s.failures.append(f) }
        }
        let expected = try expectations(c)
        for name in Set(c.expected.keys).subtracting(expected.keys).sorted() {
            fail(Failure(caseID: id, output: name, index: nil, golden: "present", oracle: "no such output"))
        }
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            guard let got = c.expected[name]?.values else {
                fail(Failure(caseID: id, output: name, index: nil, golden: "missing", oracle: "\(want.count) values")); continue
            }
            s.outputs += 1
            if got.count != want.count {
                fail(Failure(caseID: id, output: name, index: nil, golden: "\(got.count) values", oracle: "\(want.count) values")); continue
            }
            for (i, (g, e)) in zip(got, want).enumerated() {
                if case .nonFinite = e { s.nonFinite += 1 } else { s.correctlyRounded += 1 }
                guard !e.holds(for: g) else { continue }
                let oracle: String
                switch e {
                case .exact(let v): oracle = "\(ExactOracle.nearest(v)) (nearest to the exact value)"
                case .nonFinite(let v): oracle = "\(v) (§4)"
                }
                fail(Failure(caseID: id, output: name, index: i, golden: "\(g)", oracle: oracle))
            }
        }
        if s.failureCount > 0 { s.failedCases = [id] }
        return s
    }

    /// Checks the cases `ids` of the golden folder `dir` on `threads` threads (≥ 1); `progress` is
    /// called, on one thread at a time, with the number of cases done. A case that cannot be read
    /// (a corrupt file, a hash that does not match the manifest) is an error: the first such case
    /// in manifest order is thrown, after every thread has stopped.
    public static func sweep(golden dir: URL, ids: [String], threads: Int,
                             progress: @escaping @Sendable (_ done: Int, _ current: String?) -> Void = { _, _ in }) throws -> Sweep {
        let manifest = try GoldenStore.manifest(dir)
        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var next = 0, done = 0
            var results: [Result<Sweep, Error>?]
            init(_ n: Int) { results = Array(repeating: nil, count: n) }
        }
        let shared = Shared(ids.count)
        // Largest cases first, so that no thread is left with a large case at the end.
        let bytes = ids.map { GoldenStore.caseBytes(dir, id: $0) }
        let order = ids.indices.sorted { (bytes[$0], $1) > (bytes[$1], $0) }
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, ids.count))) { _ in
            while true {
                shared.lock.lock()
                guard shared.next < order.count else { shared.lock.unlock(); return }
                let k = order[shared.next]; shared.next += 1
                shared.lock.unlock()
                let r = Result { try check(try GoldenStore.loadCase(dir, id: ids[k], manifest: manifest)) }
                shared.lock.lock()
                shared.results[k] = r; shared.done += 1
                progress(shared.done, shared.next < order.count ? ids[order[shared.next]] : nil)
                shared.lock.unlock()
            }
        }
        var total = Sweep()
        for r in shared.results { total.add(try r!.get()) }
        return total
    }
}
