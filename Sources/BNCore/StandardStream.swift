#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text to a standard stream (or any descriptor) with write(2). Where the reader has gone — a
/// pipe closed by `head -1`, with SIGPIPE ignored — the write returns EPIPE to the caller;
/// Foundation's `FileHandle.write` trapped there instead (exit 132, a Swift backtrace: an audit's
/// progress lines into `2>&1 | head -1`).
public enum StandardStream {
    /// Writes all of `text` to `fd`, retrying after EINTR and short writes. Returns 0, or the
    /// errno that stopped it (EPIPE: the reader is gone).
    @discardableResult
    public static func write(_ text: String, to fd: Int32) -> Int32 {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { b in
                #if canImport(Glibc)
                Glibc.write(fd, b.baseAddress! + off, b.count - off)
                #else
                Darwin.write(fd, b.baseAddress! + off, b.count - off)
                #endif
            }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            off += n
        }
        return 0
    }
}
