import Foundation

/// A value computed on first use and kept, safe to share between threads and between copies
/// of the value type holding it (a reference: every copy sees the one value). The closure runs
/// at most once per `Once` that completes it; a second thread asking meanwhile waits for it.
final class Once<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value?

    func value(_ make: () -> Value) -> Value {
        lock.lock()
        defer { lock.unlock() }
        if let v = stored { return v }
        let v = make()
        stored = v
        return v
    }
}
