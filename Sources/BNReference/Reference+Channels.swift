import Dispatch
import Foundation

extension Reference {
    /// Tensors of at least this many values have their channels spread over the cores.
    package static let parallelElements = 1 << 20

    /// Calls `body(c)` for every channel c of a tensor of `elements` values: in order on this
    /// thread for a small tensor, else the channels cut into one contiguous range per core. Each
    /// channel is computed whole by one thread with the same operations in the same order, so the
    /// results are bit-identical for any core count; `body` must write only channel c's outputs.
    /// The caller's ``exactFallbacks`` counter is carried to the worker threads.
    package static func forEachChannel(_ channels: Int, elements: Int, _ body: (Int) -> Void) {
        let threads = elements >= parallelElements ? min(channels, ProcessInfo.processInfo.activeProcessorCount) : 1
        if threads <= 1 {
            for c in 0..<channels { body(c) }
            return
        }
        let counter = exactFallbacks
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let work = body
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                $exactFallbacks.withValue(counter) {
                    for c in (channels * w / threads)..<(channels * (w + 1) / threads) { work(c) }
                }
            }
        }
    }
}
