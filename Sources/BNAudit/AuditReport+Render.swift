import Foundation

extension AuditReport {
    /// `s` as XML attribute or element text: markup characters as entities, control characters
    /// (which XML 1.0 forbids, and which an adapter's text may hold) escaped as `\xNN`.
    static func xml(_ s: String) -> String {
        s.escapingControlCharacters(keepNewlines: true).replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// JUnit XML: one testsuite per case family, one testcase per case; failures carry the
    /// detail, the likely cause and the repro line.
    public func junit() -> String {
        let families = Dictionary(grouping: results, by: \.family).sorted { $0.key < $1.key }
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"bnspec audit \(Self.xml(implementation)) \(Self.xml(version)) (profile \(profile))\" tests=\"\(results.count)\" failures=\"\(failed)\" skipped=\"\(skipped)\">\n"
        for (family, rs) in families {
            let f = rs.filter { $0.status == .failed }.count, s = rs.filter { $0.status == .skipped }.count
            out += "  <testsuite name=\"\(Self.xml(family))\" tests=\"\(rs.count)\" failures=\"\(f)\" skipped=\"\(s)\">\n"
            for r in rs {
                out += "    <testcase classname=\"\(Self.xml(family))\" name=\"\(Self.xml(r.caseID))\""
                switch r.status {
                case .passed: out += "/>\n"
                case .skipped: out += ">\n      <skipped message=\"\(Self.xml(r.detail))\"/>\n    </testcase>\n"
                case .failed:
                    let msg = (r.likelyCause.map { "likely cause: \($0); " } ?? "") + r.detail
                    out += ">\n      <failure message=\"\(Self.xml(msg))\">repro: \(Self.xml(r.repro))</failure>\n    </testcase>\n"
                }
            }
            out += "  </testsuite>\n"
        }
        return out + "</testsuites>\n"
    }

    /// The terminal table: per family pass/fail/skip, worst ratio, likely causes; then one
    /// line per failure with its repro.
    public func table() -> [[String]] {
        Dictionary(grouping: results, by: \.family).sorted { $0.key < $1.key }.map { family, rs in
            let judged = rs.filter { $0.status != .skipped }
            let worst = judged.map(\.worstRatio).max() ?? 0
            let causes = Set(rs.compactMap(\.likelyCause)).sorted().joined(separator: "; ")
            return [family, "\(rs.filter { $0.status == .passed }.count)/\(judged.count)", "\(rs.count - judged.count)",
                    judged.isEmpty ? "-" : (worst.isFinite ? String(format: "%.3g", worst) : "∞"), causes]
        }
    }

    /// A self-contained HTML page with three SVG plots: error ÷ tolerance against the
    /// input's condition |μ|/σ (log–log, tolerance line at 1); pass/fail bars per family;
    /// histogram of the worst error in float32 ULPs.
    public func html() -> String {
        let judged = results.filter { $0.status != .skipped }
        func esc(_ s: String) -> String { Self.xml(s) }
        // Plot 1: scatter.
        let W = 640.0, H = 320.0, pad = 48.0
        func lx(_ v: Double) -> Double { log10(max(v, 1e-3)) }
        func ly(_ v: Double) -> Double { log10(min(max(v, 1e-6), 1e6)) }
        let xs = judged.map { lx($0.condition.isFinite ? $0.condition : 1e12) }
        let xmin = min(-3, xs.min() ?? -3), xmax = max(1, xs.max() ?? 1)
        func px(_ v: Double) -> Double { pad + (v - xmin) / (xmax - xmin) * (W - 2 * pad) }
        func py(_ v: Double) -> Double { H - pad - (v + 6) / 12 * (H - 2 * pad) }
        var scatter = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" role=\"img\" aria-label=\"error against condition\">"
        scatter += "<rect x=\"\(pad)\" y=\"\(pad)\" width=\"\(W - 2 * pad)\" height=\"\(H - 2 * pad)\" fill=\"#fafafa\" stroke=\"#999\"/>"
        scatter += "<line x1=\"\(pad)\" x2=\"\(W - pad)\" y1=\"\(py(0))\" y2=\"\(py(0))\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>"
        scatter += "<text x=\"\(W - pad - 4)\" y=\"\(py(0) - 4)\" text-anchor=\"end\" font-size=\"11\" fill=\"#c00\">tolerance</text>"
        for e in stride(from: -6, through: 6, by: 3) {
            scatter += "<text x=\"\(pad - 6)\" y=\"\(py(Double(e)) + 4)\" text-anchor=\"end\" font-size=\"10\">1e\(e)</text>"
        }
        for e in Int(xmin.rounded(.down))...Int(xmax.rounded(.up)) where e % 2 == 0 {
            scatter += "<text x=\"\(px(Double(e)))\" y=\"\(H - pad + 14)\" text-anchor=\"middle\" font-size=\"10\">1e\(e)</text>"
        }
        scatter += "<text x=\"\(W / 2)\" y=\"\(H - 8)\" text-anchor=\"middle\" font-size=\"12\">condition max |μ|/σ of the input</text>"
        scatter += "<text x=\"14\" y=\"\(H / 2)\" transform=\"rotate(-90 14 \(H / 2))\" text-anchor=\"middle\" font-size=\"12\">worst error ÷ tolerance</text>"
        for r in judged {
            let x = px(lx(r.condition.isFinite ? r.condition : 1e12)), y = py(ly(r.worstRatio.isFinite ? max(r.worstRatio, 1e-6) : 1e6))
            let color = r.status == .failed ? "#d62728" : "#1f77b4"
            scatter += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"3.5\" fill=\"\(color)\" fill-opacity=\"0.7\"><title>\(esc(r.caseID)): \(esc(r.detail))</title></circle>"
        }
        scatter += "</svg>"
        // Plot 2: bars per family.
        let fams = Dictionary(grouping: results, by: \.family).sorted { $0.key < $1.key }
        let bh = 16.0, bw = 360.0, labelW = 240.0
        var bars = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelW + bw + 140))\" height=\"\(Int(Double(fams.count) * (bh + 4) + 20))\" role=\"img\" aria-label=\"results per family\">"
        for (i, (family, rs)) in fams.enumerated() {
            let y = 10 + Double(i) * (bh + 4), n = Double(max(rs.count, 1))
            let p = Double(rs.filter { $0.status == .passed }.count), f = Double(rs.filter { $0.status == .failed }.count)
            let s = n - p - f
            bars += "<text x=\"\(labelW - 6)\" y=\"\(y + 12)\" text-anchor=\"end\" font-size=\"11\">\(esc(family))</text>"
            bars += "<rect x=\"\(labelW)\" y=\"\(y)\" width=\"\(bw * p / n)\" height=\"\(bh)\" fill=\"#2ca02c\"/>"
            bars += "<rect x=\"\(labelW + bw * p / n)\" y=\"\(y)\" width=\"\(bw * f / n)\" height=\"\(bh)\" fill=\"#d62728\"/>"
            bars += "<rect x=\"\(labelW + bw * (p + f) / n)\" y=\"\(y)\" width=\"\(bw * s / n)\" height=\"\(bh)\" fill=\"#bbb\"/>"
            bars += "<text x=\"\(labelW + bw + 6)\" y=\"\(y + 12)\" font-size=\"11\">\(Int(p))/\(Int(p + f))\(s > 0 ? " (\(Int(s)) skipped)" : "")</text>"
        }
        bars += "</svg>"
        // Plot 3: histogram of the normwise error in float32 ULPs (bins <½, <1, <2, … , ≥2²⁰).
        let edges: [Double] = [0.5, 1, 2, 4, 8, 16, 64, 256, 1024, 1_048_576]
        var counts = [Int](repeating: 0, count: edges.count + 1)
        for u in judged.compactMap(\.worstUlps) { counts[edges.firstIndex { u < $0 } ?? edges.count] += 1 }
        let labels = ["<½", "<1", "<2", "<4", "<8", "<16", "<64", "<256", "<1k", "<1M", "≥1M"]
        let cmax = Double(max(counts.max() ?? 1, 1)), hw = 40.0, hh = 160.0
        var hist = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(Double(counts.count) * hw + 40))\" height=\"\(Int(hh + 40))\" role=\"img\" aria-label=\"ULP histogram\">"
        for (i, c) in counts.enumerated() {
            let h = hh * Double(c) / cmax, x = 20 + Double(i) * hw
            hist += "<rect x=\"\(x + 4)\" y=\"\(10 + hh - h)\" width=\"\(hw - 8)\" height=\"\(h)\" fill=\"#9467bd\"><title>\(c) cases</title></rect>"
            hist += "<text x=\"\(x + hw / 2)\" y=\"\(hh + 24)\" text-anchor=\"middle\" font-size=\"10\">\(labels[i])</text>"
            if c > 0 { hist += "<text x=\"\(x + hw / 2)\" y=\"\(6 + hh - h)\" text-anchor=\"middle\" font-size=\"10\">\(c)</text>" }
        }
        hist += "</svg>"
        let failures = results.filter { $0.status == .failed }.prefix(200).map { r in
            "<tr><td><code>\(esc(r.caseID))</code></td><td>\(esc(r.likelyCause ?? "—"))</td><td>\(esc(r.detail))</td><td><code>\(esc(r.repro))</code></td></tr>"
        }.joined()
        let causeRows = causes.sorted { $0.value > $1.value }.map { "<li>\(esc($0.key)): \($0.value) cases</li>" }.joined()
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>BNSpec audit: \(esc(implementation)) \(esc(version))</title>
        <style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:12px}
        td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}.ok{color:#2ca02c}.bad{color:#d62728}</style></head>
        <body><h1>BNSpec audit: \(esc(implementation)) \(esc(version))</h1>
        <p>Profile <b>\(esc(profile))</b>, tolerance model <code>\(esc(tolerance))</code>.
        <span class="\(ok ? "ok" : "bad")"><b>\(passed) passed, \(failed) failed</b></span>, \(skipped) skipped (not supported by the implementation).</p>
        \(causeRows.isEmpty ? "" : "<h2>Likely causes</h2><ul>\(causeRows)</ul>")
        <h2>Error against the condition of the input</h2>\(scatter)
        <h2>Results per case family</h2>\(bars)
        <h2>Normwise error of the primary output in float32 ULPs: max|y − y_ref| ÷ ulp(max|y_ref|)</h2>\(hist)
        \(failures.isEmpty ? "" : "<h2>Failures</h2><table><tr><th>case</th><th>likely cause</th><th>detail</th><th>repro</th></tr>\(failures)</table>")
        </body></html>
        """
    }
}
