/// Text from outside bnspec (an adapter's messages, its stderr, its hello) shown on a terminal or
/// written into a report: control characters would move the cursor, recolour or clear the
/// terminal, or make JUnit XML invalid (XML 1.0 forbids most of C0).
extension StringProtocol {
    /// This text with every C0 control character (U+0000–U+001F), DEL and every C1 control
    /// (U+0080–U+009F) written as a visible `\xNN` (escape: `\x1b`), and the noncharacters U+FFFE
    /// and U+FFFF, which XML 1.0's Char production also excludes, as `\xfffe`, `\xffff` (an outside
    /// red team's JUnit failed to parse); tabs kept, and newlines kept when `keepNewlines`. Also
    /// escaped: the line and paragraph separators U+2028, U+2029 (a line break in many viewers)
    /// and the bidirectional controls U+200E, U+200F, U+202A–U+202E, U+2066–U+2069, which reorder
    /// what a reader sees ("Trojan Source": an adapter's name or message could show a verdict
    /// other than the one written; an outside red team's).
    public func escapingControlCharacters(keepNewlines: Bool = false) -> String {
        var out = String.UnicodeScalarView()
        for u in unicodeScalars {
            let v = u.value
            let control = v < 0x20 || (0x7F...0x9F).contains(v) || v == 0xFFFE || v == 0xFFFF
                || v == 0x200E || v == 0x200F || (0x2028...0x202E).contains(v) || (0x2066...0x2069).contains(v)
            if !control || v == 0x09 || (keepNewlines && v == 0x0A) { out.append(u); continue }
            for c in "\\x" + String(v, radix: 16, uppercase: false).leftPadded(2) { out.append(contentsOf: c.unicodeScalars) }
        }
        return String(out)
    }

    func leftPadded(_ n: Int) -> String { count >= n ? String(self) : String(repeating: "0", count: n - count) + self }
}
