/// Words of a command line as a POSIX shell reads them back: a repro line must rerun exactly
/// its case, whatever the paths hold.
public enum Shell {
    /// `word` unchanged when it holds only characters no shell treats specially; otherwise in
    /// single quotes, each `'` written as `'\''`; with a control character, in ANSI-C quotes `$'…'`.
    /// The empty word is `''`.
    public static func quoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "@%+=:,./_-".unicodeScalars.contains(c)
        }
        if plain { return word }
        // A control character (a newline in a folder's name) would split the repro line: ANSI-C
        // quoting, $'…', which bash, zsh and ksh read (an outside red team's, round J).
        if word.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            var out = "$'"
            for c in word.unicodeScalars {
                switch c {
                case "\\": out += "\\\\"
                case "'": out += "\\'"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                default:
                    if c.value < 0x20 || c.value == 0x7F { out += "\\x" + (c.value < 0x10 ? "0" : "") + String(c.value, radix: 16) } else { out.unicodeScalars.append(c) }
                }
            }
            return out + "'"
        }
        return "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
