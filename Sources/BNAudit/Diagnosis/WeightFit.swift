import Foundation

/// How the batch weight an implementation actually used in the running update depends on the
/// weight each case asked for, fitted across an audit's training cases. One case cannot tell a
/// fixed weight of 0.1 from an inverted momentum on a case whose w is 0.9, nor "updated twice"
/// from "replaced" when w is 0.999; across cases with different w the rule shows (spec/AUDIT.md §5).
public struct WeightFit: Codable, Sendable, Equatable {
    /// The rule that fits every case: "w" (correct), "1 − w", "1 − (1 − w)²", "constant", or nil.
    public var rule: String?
    public var evidence: String
    /// The fitted weight when the rule is "constant" (the median used weight).
    public var constant: Double?

    /// One observation: the case's batch weight and the one the returned running mean implies.
    public struct Point: Sendable, Equatable {
        public var asked: Double, used: Double
        public init(asked: Double, used: Double) { self.asked = asked; self.used = used }
    }

    /// The candidate rules, in the order they are tried; each maps the asked weight to the used one.
    static let rules: [(String, String, @Sendable (Double, Double) -> Double)] = [
        ("w", "the case's weight", { w, _ in w }),
        ("1 − w", "the momentum convention inverted: the batch takes weight 1 − w", { w, _ in 1 - w }),
        ("1 − (1 − w)²", "the running update applied twice per step: weight 1 − (1 − w)²", { w, _ in 1 - (1 - w) * (1 - w) }),
        ("0", "the running statistics are never updated", { _, _ in 0 }),
        ("1", "the running statistics are replaced by the batch statistics", { _, _ in 1 }),
        ("constant", "a fixed batch weight whatever the case asks", { _, c in c }),
    ]

    /// Fits the rules; one is chosen only when it matches every point (to 10⁻³ relative) and
    /// the points ask for at least two different weights, and no other rule does.
    public static func fit(_ pts: [Point]) -> WeightFit? {
        let use = pts.filter { $0.asked.isFinite && $0.used.isFinite }
        let asked = Set(use.map(\.asked))
        guard use.count >= 2, asked.count >= 2 else { return nil }
        let c = use.map(\.used).sorted()[use.count / 2]
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-3 * max(abs(b), 1e-3) }
        var fitting = rules.filter { _, _, f in use.allSatisfy { close($0.used, f($0.asked, c)) } }
        // A constant 0 or 1 is the more specific rule.
        if fitting.count == 2, fitting.contains(where: { $0.0 == "constant" }) { fitting.removeAll { $0.0 == "constant" } }
        let points = use.prefix(6).map { String(format: "w %.4g → %.4g", $0.asked, $0.used) }.joined(separator: ", ")
        let evidence = "running-mean batch weight used against the case's, over \(use.count) training cases (\(points)\(use.count > 6 ? ", …" : ""))"
        guard fitting.count == 1 else { return WeightFit(rule: nil, evidence: evidence + ": no single rule fits") }
        let (name, text, _) = fitting[0]
        return WeightFit(rule: name, evidence: evidence + ": fits \(name == "constant" ? String(format: "a constant %.4g", c) : name) (\(text))",
                         constant: name == "constant" ? c : nil)
    }

    /// The cause the fitted rule names for a failure of the running statistics, nil for "w".
    public var cause: String? {
        switch rule {
        case "1 − w": "momentum convention inverted: the running statistics take weight 1 − w for the batch (across this audit)"
        case "1 − (1 − w)²": "the running update is applied twice per step (across this audit the batch weight is 1 − (1 − w)²)"
        case "constant": "the running update uses a fixed batch weight\(constant.map { String(format: " %.4g", $0) } ?? ""), whatever the momentum asks (across this audit)"
        case "0": "running statistics not updated (across this audit)"
        case "1": "the update replaces the running statistics with the batch statistics (across this audit)"
        default: nil
        }
    }
}
