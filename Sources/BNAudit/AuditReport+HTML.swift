import BNCore
import Foundation

/// The HTML page of an audit (`--html`): self-contained, inline SVG, no script.
///
/// - Error ÷ tolerance against the input's condition (log–log, tolerance line at 1), for the cases
///   judged by comparing numbers only: refusals, crashes, protocol faults, missing outputs and
///   skipped cases are not points (they have no error) and are listed in their own tables. A value
///   beyond the axes is drawn at the edge as a triangle pointing outwards (its value in the
///   tooltip), and a note counts them.
/// - Results per case family as stacked bars (passed, numeric failures, errors, skipped), the
///   families with the most failures first.
/// - The normwise error of the primary output in ulps of the case's storage format, one histogram
///   per storage dtype, passes and failures stacked.
/// - Tables: numeric failures (worst element as output[n, c, h, w], elements beyond tolerance, ratio,
///   repro), errors, and the skipped cases grouped by reason.
extension AuditReport {
    static let colors = (passed: "#1f77b4", failed: "#d62728", error: "#ff7f0e", skipped: "#bbbbbb", bar: "#2ca02c")

    public func html() -> String {
        func esc(_ s: String) -> String { Self.xml(s) }
        func num(_ v: Double) -> String { String(format: "%.1f", v) }
        /// A case id that may break after its dots (never inside a token).
        func id(_ s: String) -> String { esc(s).replacingOccurrences(of: ".", with: ".<wbr>") }
        let numeric = results.filter(\.hasNumbers)
        let errs = errors
        let skippedRs = results.filter { $0.status == .skipped }
        let c = Self.colors

        // Plot 1: error ÷ tolerance against condition.
        let W = 720.0, H = 360.0, left = 60.0, right = 24.0, top = 16.0, bottom = 46.0
        let finiteConditions = numeric.map(\.condition).filter { $0.isFinite && $0 > 0 }
        let xmin = -3.0, xmax = max(2.0, (finiteConditions.map { log10($0) }.max() ?? 2).rounded(.up))
        let ymin = -6.0, ymax = 6.0
        func px(_ e: Double) -> Double { left + (e - xmin) / (xmax - xmin) * (W - left - right) }
        func py(_ e: Double) -> Double { top + (ymax - e) / (ymax - ymin) * (H - top - bottom) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" role=\"img\" aria-label=\"error against condition\" font-family=\"system-ui,sans-serif\">"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(W - left - right)\" height=\"\(H - top - bottom)\" fill=\"none\" stroke=\"#999\"/>"
        for e in stride(from: ymin, through: ymax, by: 3) {
            svg += "<line x1=\"\(left)\" y1=\"\(num(py(e)))\" x2=\"\(W - right)\" y2=\"\(num(py(e)))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(num(py(e) + 4))\" text-anchor=\"end\" font-size=\"10\">1e\(Int(e))</text>"
        }
        for e in stride(from: xmin, through: xmax, by: 1) where Int(e) % 2 == 0 || xmax - xmin <= 8 {
            svg += "<text x=\"\(num(px(e)))\" y=\"\(num(H - bottom + 14))\" text-anchor=\"middle\" font-size=\"10\">1e\(Int(e))</text>"
        }
        svg += "<line x1=\"\(left)\" y1=\"\(num(py(0)))\" x2=\"\(W - right)\" y2=\"\(num(py(0)))\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>"
        svg += "<text x=\"\(W - right - 4)\" y=\"\(num(py(0) - 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#d62728\">tolerance</text>"
        svg += "<text x=\"\(num((left + W - right) / 2))\" y=\"\(num(H - 10))\" text-anchor=\"middle\" font-size=\"12\">condition of the input: max over channels of |μ|/σ</text>"
        svg += "<text x=\"14\" y=\"\(num(H / 2))\" transform=\"rotate(-90 14 \(num(H / 2)))\" text-anchor=\"middle\" font-size=\"12\">worst error ÷ tolerance</text>"
        var atZero = 0, atInfinity = 0, beyondTop = 0, constant = 0, belowLeft = 0
        for r in numeric {
            let color = r.status == .failed ? c.failed : c.passed
            var x = r.condition > 0 && r.condition.isFinite ? log10(r.condition) : (r.condition > 0 ? xmax : xmin)
            var y = r.worstRatio > 0 ? (r.worstRatio.isFinite ? log10(r.worstRatio) : ymax) : ymin
            var shape: String? = nil  // the direction of a clamped point
            if r.worstRatio == 0 { atZero += 1; shape = "down" } else if !r.worstRatio.isFinite { atInfinity += 1; shape = "up" }
            else if y > ymax { beyondTop += 1; shape = "up" } else if y < ymin { atZero += 1; shape = "down" }
            if !r.condition.isFinite { constant += 1; shape = shape ?? "right" } else if r.condition > 0 && x < xmin { belowLeft += 1; shape = shape ?? "left" }
            else if r.condition == 0 { belowLeft += 1; shape = shape ?? "left" }
            x = min(max(x, xmin), xmax); y = min(max(y, ymin), ymax)
            let cx = px(x), cy = py(y)
            let tip = "<title>\(esc(r.caseID)): error ÷ tolerance \(Self.ratioText(r.worstRatio)), condition \(Self.ratioText(r.condition))\(r.detail.isEmpty ? "" : " — " + esc(r.detail))</title>"
            switch shape {
            case "up": svg += "<path d=\"M\(num(cx)) \(num(cy - 1)) l-5 9 h10 z\" fill=\"\(color)\" fill-opacity=\"0.8\">\(tip)</path>"
            case "down": svg += "<path d=\"M\(num(cx)) \(num(cy + 1)) l-5 -9 h10 z\" fill=\"\(color)\" fill-opacity=\"0.8\">\(tip)</path>"
            case "right": svg += "<path d=\"M\(num(cx + 1)) \(num(cy)) l-9 -5 v10 z\" fill=\"\(color)\" fill-opacity=\"0.8\">\(tip)</path>"
            case "left": svg += "<path d=\"M\(num(cx - 1)) \(num(cy)) l9 -5 v10 z\" fill=\"\(color)\" fill-opacity=\"0.8\">\(tip)</path>"
            default: svg += "<circle cx=\"\(num(cx))\" cy=\"\(num(cy))\" r=\"3.5\" fill=\"\(color)\" fill-opacity=\"0.7\">\(tip)</circle>"
            }
        }
        svg += "</svg>"
        func legendItem(_ color: String, _ text: String, shape: String = "circle") -> String {
            let mark = shape == "circle" ? "<svg width=\"12\" height=\"12\"><circle cx=\"6\" cy=\"6\" r=\"4\" fill=\"\(color)\"/></svg>"
                : (shape == "tri" ? "<svg width=\"12\" height=\"12\"><path d=\"M6 1 l-5 9 h10 z\" fill=\"\(color)\"/></svg>"
                   : "<svg width=\"14\" height=\"12\"><rect x=\"1\" y=\"1\" width=\"12\" height=\"10\" fill=\"\(color)\"/></svg>")
            return "<span class=\"key\">\(mark) \(esc(text))</span>"
        }
        var notes: [String] = []
        if atZero > 0 { notes.append("\(atZero) with an error of 0 (or below 1e\(Int(ymin)) × tolerance) at the bottom edge") }
        if atInfinity > 0 { notes.append("\(atInfinity) with a non-finite value where a finite one was expected, or the other way round (∞ × tolerance), at the top edge") }
        if beyondTop > 0 { notes.append("\(beyondTop) beyond 1e\(Int(ymax)) × tolerance at the top edge") }
        if constant > 0 { notes.append("\(constant) with a constant channel (condition ∞) at the right edge") }
        if belowLeft > 0 { notes.append("\(belowLeft) with a condition below 1e\(Int(xmin)) (zero-mean data) at the left edge") }
        let notPlotted = "Not plotted (no error to plot): \(errs.count) error\(errs.count == 1 ? "" : "s") (refusals, crashes, protocol faults, missing outputs) and \(skippedRs.count) skipped case\(skippedRs.count == 1 ? "" : "s"); see the tables below."
        let scatterBlock = "<div class=\"legend\">\(legendItem(c.passed, "passed"))\(legendItem(c.failed, "failed"))\(legendItem("#555", "clamped to the edge (value in the tooltip)", shape: "tri"))</div>\(svg)"
            + "<p class=\"note\">\(numeric.count) cases judged by comparing numbers. " + (notes.isEmpty ? "" : "Clamped: " + notes.joined(separator: "; ") + ". ") + notPlotted + "</p>"

        // Plot 2: results per family, most failures first.
        let fams = familiesByFailures()
        let bh = 16.0, bw = 360.0, labelW = 250.0, legendH = 0.0
        var bars = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelW + bw + 260))\" height=\"\(Int(Double(fams.count) * (bh + 4) + 16 + legendH))\" role=\"img\" aria-label=\"results per family\" font-family=\"system-ui,sans-serif\">"
        for (i, (family, rs)) in fams.enumerated() {
            let y = 8 + legendH + Double(i) * (bh + 4), n = Double(max(rs.count, 1))
            let p = Double(rs.filter { $0.status == .passed }.count)
            let e = Double(rs.filter { $0.status == .failed && $0.fault?.isError == true }.count)
            let f = Double(rs.filter { $0.status == .failed }.count) - e
            let s = n - p - f - e
            bars += "<text x=\"\(labelW - 6)\" y=\"\(num(y + 12))\" text-anchor=\"end\" font-size=\"11\">\(esc(family))</text>"
            var x = labelW
            for (count, color, what) in [(p, c.bar, "passed"), (f, c.failed, "failed"), (e, c.error, "errors"), (s, c.skipped, "skipped")] where count > 0 {
                bars += "<rect x=\"\(num(x))\" y=\"\(num(y))\" width=\"\(num(bw * count / n))\" height=\"\(bh)\" fill=\"\(color)\"><title>\(esc(family)): \(Int(count)) \(what)</title></rect>"
                x += bw * count / n
            }
            let label = p + f + e == 0 ? "\(Int(s)) skipped"
                : "\(Int(p))/\(Int(p + f + e)) passed" + (f > 0 ? ", \(Int(f)) failed" : "") + (e > 0 ? ", \(Int(e)) error\(e == 1 ? "" : "s")" : "") + (s > 0 ? ", \(Int(s)) skipped" : "")
            bars += "<text x=\"\(labelW + bw + 6)\" y=\"\(num(y + 12))\" font-size=\"11\">\(label)</text>"
        }
        bars += "</svg>"
        let barsBlock = "<div class=\"legend\">\(legendItem(c.bar, "passed", shape: "box"))\(legendItem(c.failed, "failed (numbers)", shape: "box"))\(legendItem(c.error, "error (refusal, crash, protocol fault, missing output)", shape: "box"))\(legendItem(c.skipped, "skipped", shape: "box"))</div>\(bars)"

        // Plot 3: ULP histograms per storage dtype, passes and failures stacked.
        let edges: [Double] = [0.5, 1, 2, 4, 8, 16, 64, 256, 1024, 1_048_576]
        let labels = ["<½", "<1", "<2", "<4", "<8", "<16", "<64", "<256", "<1k", "<1M", "≥1M"]
        let withUlps = numeric.filter { $0.worstUlps != nil }
        let dtypes = [DType.f32, .f64, .f16, .bf16].map(\.rawValue).filter { d in withUlps.contains { $0.dtype == d } }
            + Array(Set(withUlps.map(\.dtype)).subtracting(DType.allCases.map(\.rawValue))).sorted()
        var hists = ""
        for d in dtypes {
            var pass = [Int](repeating: 0, count: edges.count + 1), fail = pass
            for r in withUlps where r.dtype == d {
                let u = r.worstUlps!  // already in ulps of the case's storage format
                let bin = u.isNaN ? edges.count : (edges.firstIndex { u < $0 } ?? edges.count)
                if r.status == .failed { fail[bin] += 1 } else { pass[bin] += 1 }
            }
            let cmax = Double(max(zip(pass, fail).map { $0 + $1 }.max() ?? 1, 1)), hw = 36.0, hh = 120.0
            var h = "<figure><figcaption>\(esc(d.isEmpty ? "unknown dtype" : d)) cases: \(pass.reduce(0, +)) passed, \(fail.reduce(0, +)) failed</figcaption>"
            h += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(Double(labels.count) * hw + 20))\" height=\"\(Int(hh + 44))\" role=\"img\" aria-label=\"ULP histogram \(esc(d))\" font-family=\"system-ui,sans-serif\">"
            for i in labels.indices {
                let x = 10 + Double(i) * hw
                let hp = hh * Double(pass[i]) / cmax, hf = hh * Double(fail[i]) / cmax
                if pass[i] > 0 { h += "<rect x=\"\(num(x + 3))\" y=\"\(num(14 + hh - hp))\" width=\"\(num(hw - 6))\" height=\"\(num(hp))\" fill=\"\(c.passed)\"><title>\(pass[i]) passed</title></rect>" }
                if fail[i] > 0 { h += "<rect x=\"\(num(x + 3))\" y=\"\(num(14 + hh - hp - hf))\" width=\"\(num(hw - 6))\" height=\"\(num(hf))\" fill=\"\(c.failed)\"><title>\(fail[i]) failed</title></rect>" }
                let total = pass[i] + fail[i]
                if total > 0 { h += "<text x=\"\(num(x + hw / 2))\" y=\"\(num(10 + hh - hp - hf))\" text-anchor=\"middle\" font-size=\"10\">\(total)</text>" }
                h += "<text x=\"\(num(x + hw / 2))\" y=\"\(num(hh + 28))\" text-anchor=\"middle\" font-size=\"10\">\(labels[i])</text>"
            }
            h += "<line x1=\"10\" y1=\"\(num(14 + hh))\" x2=\"\(num(10 + Double(labels.count) * hw))\" y2=\"\(num(14 + hh))\" stroke=\"#999\"/></svg></figure>"
            hists += h
        }
        let histBlock = withUlps.isEmpty ? "<p class=\"note\">No case with a primary output to measure.</p>"
            : "<div class=\"legend\">\(legendItem(c.passed, "passed", shape: "box"))\(legendItem(c.failed, "failed", shape: "box"))</div><div class=\"hists\">\(hists)</div>"

        // Tables.
        let numericFailures = results.filter { $0.status == .failed && $0.fault?.isError != true }
        let failRows = numericFailures.prefix(300).map { r in
            let beyond = r.beyond.map { b in r.judged.map { "\(b) of \($0)" } ?? "\(b)" } ?? "—"
            return "<tr><td class=\"id\"><code>\(id(r.caseID))</code></td><td class=\"cause\">\(esc(r.likelyCause ?? "unexplained"))</td><td>\(esc(r.detail))\(evidence(r))</td><td class=\"n\">\(beyond)</td><td class=\"n\">\(Self.ratioText(r.worstRatio))</td><td><code>\(esc(r.repro))</code></td></tr>"
        }.joined()
        // The fitted figures a cause rests on, or that left it unexplained (spec/AUDIT.md §5).
        func evidence(_ r: AuditResult) -> String {
            r.evidence.isEmpty ? "" : "<details><summary>evidence</summary><ul>" + r.evidence.map { "<li>\(esc($0))</li>" }.joined() + "</ul></details>"
        }
        let errorCauses = errs.contains { $0.likelyCause != nil }
        let errorRows = errs.prefix(300).map { r in
            "<tr><td class=\"id\"><code>\(id(r.caseID))</code></td><td>\(esc(r.fault?.rawValue ?? ""))</td>"
                + (errorCauses ? "<td class=\"cause\">\(esc(r.likelyCause ?? "—"))</td>" : "")
                + "<td>\(esc(r.detail))\(evidence(r))</td><td><code>\(esc(r.repro))</code></td></tr>"
        }.joined()
        // Skips grouped by their reason: "not supported by the adapter: op backward-train" whatever the case's dtype and layout.
        var reasons: [String: [String]] = [:]
        for r in skippedRs {
            let prefix = "not supported by the adapter ("
            let reason = r.detail.hasPrefix(prefix) ? r.detail.components(separatedBy: "): ").dropFirst().first.map { "not supported by the adapter: \($0)" } ?? r.detail : r.detail
            reasons[reason, default: []].append(r.caseID)
        }
        let skipRows = reasons.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }.map { reason, ids in
            "<tr><td>\(esc(reason))</td><td class=\"n\">\(ids.count)</td><td><code>\(esc(ids.prefix(3).joined(separator: ", ")))\(ids.count > 3 ? ", …" : "")</code></td></tr>"
        }.joined()
        let causeRows = causes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "<li>\(esc($0.key)): \($0.value) case\($0.value == 1 ? "" : "s")</li>" }.joined()
        let more = { (n: Int) in n > 300 ? "<p class=\"note\">… \(n - 300) more in the JSON report.</p>" : "" }
        let meta = ["bnspec \(esc(bnspecVersion))", "report \(esc(schema))", goldenSHA256.map { "golden manifest SHA-256 <code>\($0.prefix(16))…</code>" },
                    shard.map { "shard \(esc($0))" }].compactMap { $0 }.joined(separator: " · ")
        let e = errs.count
        let kinds = "refusals, crashes, protocol faults, missing outputs"
        let errorsNote = e == 0 ? "" : (e == failed ? " (all errors: \(kinds))" : " (\(failed - e) on the numbers, \(e) error\(e == 1 ? "" : "s"): \(kinds))")
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>BNSpec audit: \(esc(implementation)) \(esc(version))</title>
        <style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1150px;color:#222}table{border-collapse:collapse;font-size:12px;width:100%}
        td.cause{min-width:13em}td code{word-break:break-all}td.id{min-width:15em}td.id code{word-break:normal}
        td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}td.n{text-align:right;white-space:nowrap}
        .ok{color:#2ca02c}.bad{color:#d62728}.note{font-size:12px;color:#555;max-width:720px}.meta{font-size:12px;color:#777}
        .legend{font-size:12px;margin:.3em 0}.key{margin-right:1.2em;white-space:nowrap}.key svg{vertical-align:middle}
        .hists{display:flex;flex-wrap:wrap;gap:1.5em}figure{margin:0}figcaption{font-size:12px;font-weight:600}h2{font-size:1.15em;margin-top:1.6em}</style></head>
        <body><h1>BNSpec audit: \(esc(implementation)) \(esc(version))</h1>
        <p>Profile <b>\(esc(profile))</b>, tolerance model <code>\(esc(tolerance))</code>.
        <span class="\(ok ? "ok" : "bad")"><b>\(passed) passed, \(failed) failed</b></span>\(errorsNote), \(skipped) skipped\(notRun > 0 ? " (\(notRun) not run after --maxfail)" : "").</p>
        <p class="meta">\(meta)</p>
        \(causeRows.isEmpty ? "" : "<h2>Likely causes of the failures</h2><ul>\(causeRows)</ul>")
        <h2>Error against the condition of the input</h2>\(scatterBlock)
        <h2>Results per case family (most failures first)</h2>\(barsBlock)
        <h2>Normwise error of the primary output (y, dx, y_eval) in ulps of the case's storage format: max|y − y_ref| ÷ ulp(max|y_ref|)</h2>\(histBlock)
        \(numericFailures.isEmpty ? "" : "<h2>Failures (\(numericFailures.count))</h2><table><tr><th>case</th><th>likely cause</th><th>worst element: output[n, c, h, w] = got, expected, tolerance</th><th>beyond tolerance</th><th>error ÷ tol</th><th>repro</th></tr>\(failRows)</table>\(more(numericFailures.count))")
        \(errs.isEmpty ? "" : "<h2>Errors: refusals, crashes, protocol faults, missing outputs (\(errs.count))</h2><table><tr><th>case</th><th>kind</th>\(errorCauses ? "<th>likely cause</th>" : "")<th>detail</th><th>repro</th></tr>\(errorRows)</table>\(more(errs.count))")
        \(skippedRs.isEmpty ? "" : "<h2>Skipped (\(skippedRs.count))</h2><table><tr><th>reason</th><th>cases</th><th>e.g.</th></tr>\(skipRows)</table>")
        </body></html>

        """
    }
}
