import BNCore

/// The tail of a vector loop over channels: in a channels-last layout a kernel that handles
/// channels w at a time and the last C mod w of them in a scalar tail, with the tail wrong.
///
/// One case names every width its failing channels fit (``widths(_:)``): with C = 17 and
/// channel 16 wrong, a 2-, 4-, 8- and 16-wide loop all leave channel 16 alone in their tail. The
/// audit narrows them with every case (``judge(_:)``): a width stands only if every failure
/// nothing else explains lies in its own tail, and no case that passed had a tail under it where
/// the loop runs (C at least the smallest failing case's, same operation, layout and dtype).
/// When several widths remain, all are named: the suite cannot tell them apart.
package enum VectorTail {
    package static let candidateWidths = [2, 4, 8, 16, 32, 64]

    /// The widths w for which the failing channels are exactly the tail [C − C mod w, C) of a
    /// loop (with C < w, every channel), each tail channel failing systematically
    /// (most elements of a tensor output, or its per-channel output); empty for NCHW, where no
    /// loop runs over channels.
    package static func widths(_ p: DiagnosisProblem) -> [Int] {
        let C = p.channels
        guard p.spec.layout != .nchw else { return [] }
        let failing = Patterns.failures(p).channels
        guard !failing.isEmpty else { return [] }
        // A tail channel whose expected tensor outputs are all NaN or ±∞ cannot show the fault.
        let mute = { (c: Int) in Self.mute(p, c) }
        let candidates = candidateWidths.filter { w in
            let tail = Set((C - C % w)..<C)  // C < w: every channel
            return C % w != 0 && failing.isSubset(of: tail) && tail.subtracting(failing).allSatisfy(mute)
        }
        guard !candidates.isEmpty else { return [] }
        let systematic = failing.allSatisfy { c in
            let idx = p.indices(c)
            let tensor = p.got.keys.contains { name in
                guard p.got[name]?.count == p.shape.elementCount else { return false }
                let f = Set(p.failing(name))
                return idx.filter { f.contains($0) }.count * 2 >= idx.count
            }
            return tensor || p.got.keys.contains { name in p.got[name]?.count == C && p.failing(name).contains(c) }
        }
        return systematic ? candidates : []
    }

    /// Whether channel c's expected tensor outputs are all NaN or ±∞ (it can show no fault).
    package static func mute(_ p: DiagnosisProblem, _ c: Int) -> Bool {
        let idx = p.indices(c)
        return p.expected.contains { $0.value.count == p.shape.elementCount }
            && p.expected.values.filter { $0.count == p.shape.elementCount }.allSatisfy { e in idx.allSatisfy { !e[$0].isFinite } }
    }

    /// The cause for one case: named only when at least two full vectors of the narrowest
    /// width are right, so that one stray failing channel is not taken for a tail — right where
    /// the reference is finite: channels whose expected outputs are all NaN or ±∞ show nothing
    /// (round G: a synchronized variance bug failing only channel 4 of a C = 5 non-finite-edges
    /// case, channels 0…3 NaN in the reference, had been named the tail of a vector loop).
    package static func cause(_ p: DiagnosisProblem) -> String? {
        let ws = widths(p)
        guard let w = ws.first, p.channels >= 2 * w else { return nil }
        let body = 0..<(p.channels - p.channels % w)
        guard body.filter({ !mute(p, $0) }).count >= 2 * w else { return nil }
        return cause(channels: p.channels, widths: ws)
    }

    package static func cause(channels C: Int, widths ws: [Int]) -> String {
        let k = C % ws[0]
        if k == C {  // C below every width: the loop never ran a full vector
            let list = ws.count == 1 ? "\(ws[0])-wide" : ws.map { "\($0)" }.dropLast().joined(separator: "-, ") + "- or \(ws.last!)-wide"
            return "every channel is wrong (with C = \(C) all of them are the tail of \(ws[0] == 8 ? "an" : "a") \(list) vector loop over channels, whose tail is wrong where C is larger)"
        }
        let article = ws[0] == 8 ? "an" : "a"
        let last = k == 1 ? "the last channel is wrong" : "the last \(k) channels are wrong"
        if ws.count == 1 {
            return "the last C mod \(ws[0]) = \(k) channel\(k == 1 ? " is" : "s are") wrong (the tail of \(article) \(ws[0])-wide vector loop over channels); channels 0…\(C - k - 1) are right"
        }
        let names = ws.map { "\($0)" }
        let list = names.dropLast().joined(separator: "-, ") + "- or " + names.last! + "-wide"
        return "\(last) (the tail of \(article) \(list) vector loop over channels: the cases cannot tell which); channels 0…\(C - k - 1) are right"
    }

    package static func isCause(_ cause: String?) -> Bool { cause?.contains("vector loop over channels") == true }

    /// What one case gives the audit-wide check.
    package struct Case {
        package var id: String
        /// Operation, layout and dtype: cases of one kernel path. Nil for NCHW.
        package var key: String?
        package var channels: Int
        package var passed: Bool
        /// A numeric failure that no model explains (or that is named a tail).
        package var open: Bool
        package var failing: [Int]
        package var widths: [Int]
        package init(id: String, key: String?, channels: Int, passed: Bool, open: Bool, failing: [Int], widths: [Int]) {
            self.id = id; self.key = key; self.channels = channels; self.passed = passed; self.open = open
            self.failing = failing; self.widths = widths
        }
    }

    /// Across an audit: the widths every open failure agrees with, and the first contradiction
    /// of each width ruled out (or the simpler bug left standing). `named` are the cases given a
    /// tail cause: the open failures that fit every remaining width, once some case has two full
    /// vectors of the narrowest right or two channel counts agree, and the cases rule out "every
    /// channel from k on" and "the last m channels".
    package static func judge(_ cases: [Case]) -> (widths: [Int], named: [Int], against: [String]) {
        let fitting = cases.indices.filter { cases[$0].open && !cases[$0].widths.isEmpty }
        guard !fitting.isEmpty else { return ([], [], []) }
        var against: [String] = []
        var smallest: [String: Int] = [:]  // per kernel path: the fewest channels where a tail failed
        for i in fitting { if let k = cases[i].key { smallest[k] = min(smallest[k] ?? .max, cases[i].channels) } }
        var remaining: [Int] = []
        let proposed = Set(fitting.flatMap { cases[$0].widths })
        widths: for w in candidateWidths where proposed.contains(w) {
            // Every open failure fails exactly this width's tail (with C < w, every channel).
            for c in cases where c.open && !c.widths.contains(w) {
                let place = c.key == nil ? "an NCHW case, where no loop runs over channels"
                    : c.channels < w ? "not all of its channels, which are all tail" : "not its last C mod \(w) = \(c.channels % w)"
                against.append("\(w)-wide: \(c.id) fails in channel\(c.failing.count == 1 ? "" : "s") \(span(c.failing)) of C = \(c.channels), \(place)")
                continue widths
            }
            for c in cases where c.passed && c.channels % w != 0 {
                guard let k = c.key, let from = smallest[k], c.channels >= from else { continue }
                against.append("\(w)-wide: \(c.id) passes with C = \(c.channels), whose last \(c.channels % w) channels such a loop leaves to its tail")
                continue widths
            }
            remaining.append(w)
        }
        guard let narrowest = remaining.first else { return ([], [], against) }
        let named = fitting.filter { i in remaining.allSatisfy(cases[i].widths.contains) }
        // Evidence of a loop: a case with a full vector right and two of them, or two channel
        // counts with one (every channel wrong where C is small is no loop's sign by itself).
        let strict = named.filter { cases[$0].channels >= narrowest }
        guard Set(strict.map { cases[$0].channels }).count >= 2 || strict.contains(where: { cases[$0].channels >= 2 * narrowest }) else {
            return (remaining, [], against)
        }
        // Two simpler bugs fail the same channels of these cases: every channel from a fixed index
        // k on, and the last m channels. The cases must rule both out: tails that start at different
        // channels, or a passing case (same path) with more than k channels; tails of different
        // lengths, or a passing case with at least the smallest failing C (an outside red team's:
        // β for γ from channel 8 on, in a backward whose cases have C = 10 and 15 only, was named
        // an 8-wide tail).
        let keys = Set(strict.compactMap { cases[$0].key })
        let passing = cases.filter { $0.passed && $0.key.map(keys.contains) == true }.map(\.channels)
        let starts = strict.map { cases[$0].channels - cases[$0].channels % narrowest }
        let lengths = strict.map { cases[$0].channels % narrowest }
        let k = starts.min()!, smallestC = strict.map { cases[$0].channels }.min()!
        let notFromK = Set(starts).count >= 2 || passing.contains { $0 > k }
        let notLastM = Set(lengths).count >= 2 || passing.contains { $0 >= smallestC }
        guard notFromK && notLastM else {
            against.append(notFromK
                ? "the last \(lengths[0]) channel\(lengths[0] == 1 ? "" : "s") of every failing case, whatever its C, fail as well as a tail does (no case tells them apart)"
                : "every channel from \(k) on fails as well as a tail does (no case tells them apart)")
            return (remaining, [], against)
        }
        return (remaining, named, against)
    }

    /// "8…11", or "8" for one channel.
    package static func span(_ channels: [Int]) -> String {
        guard let lo = channels.min(), let hi = channels.max() else { return "" }
        return lo == hi ? "\(lo)" : channels.count == hi - lo + 1 ? "\(lo)…\(hi)" : channels.map(String.init).joined(separator: ", ")
    }
}
