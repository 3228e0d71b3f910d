/// Words of a command line as a POSIX shell reads them back: a repro line must rerun exactly
/// its case, whatever the paths hold.
public enum Shell {
    /// `word` unchanged when it holds only characters no shell treats specially; otherwise in
    /// single quotes, each `'` written as `'\''`. The empty word is `''`.
    public static func quoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "@%+=:,./_-".unicodeScalars.contains(c)
        }
        return plain ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
