import Foundation

/// Progress of a long command on stderr. On a terminal: one line rewritten in place. Elsewhere (a
/// CI log): a plain line each time another 10 % of the cases is done or 10 s have passed since the
/// last line, whichever comes first — so an hour-long audit shows it is alive — and a last line
/// when all are done.
final class Progress {
    let label: String
    let tty: Bool
    let interval: Double
    let started = Date()
    var lastLine = Date()
    var lastDecile = 0

    init(_ label: String, interval: Double = 10) {
        self.label = label
        tty = isatty(2) != 0
        self.interval = interval
    }

    func write(_ s: String) { writeStderr(s) }

    /// `done` of `total` cases finished, `failed` of them failed (when known); `current`: the case being run.
    func update(done: Int, total: Int, failed: Int?, current: String?) {
        let elapsed = Date().timeIntervalSince(started)
        if tty {
            if let current { write("\r\u{1B}[K\(label): \(done + 1)/\(total) \(current.prefix(70))") } else { write("\r\u{1B}[K") }
            return
        }
        guard total > 0 else { return }
        let decile = done * 10 / total
        let due = Date().timeIntervalSince(lastLine) >= interval
        guard decile > lastDecile || due else { return }
        lastDecile = max(lastDecile, decile); lastLine = Date()
        let pct = Int((100 * Double(done) / Double(total)).rounded(.down))
        write("\(label): \(done)/\(total) cases (\(pct) %)\(failed.map { ", \($0) failed" } ?? ""), \(Int(elapsed)) s"
              + (current.map { done < total ? ", running \($0.prefix(80))" : "" } ?? "") + "\n")
    }
}
