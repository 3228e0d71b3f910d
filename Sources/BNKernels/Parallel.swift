import CBNKernels
import Dispatch

/// Runs `body` over 0..<count cut into `threads` contiguous ranges, one per thread
/// (the calling thread's share included).
///
/// Items are independent units of work (a channel group, a fixed block of rows, a
/// range of runs) whose decomposition never depends on `threads`; each item is computed
/// by one thread in a fixed order, so results are bit-identical for any thread count.
/// Contiguous ranges keep each thread's memory accesses sequential.
///
/// The ranges run on the kernels' worker pool (`bn_pool_run`: range i on the same
/// thread at every call, no wake-up between back-to-back calls); when another thread
/// holds the pool, on Dispatch's.
@usableFromInline
package func parallelFor(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let t = max(1, min(threads, count))
    if t == 1 {
        if count > 0 { body(0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var job = ParallelJob(count: count, pieces: t, body: body)
        let ran = withUnsafeMutablePointer(to: &job) { p in
            bn_pool_run(t, { ctx, w in ctx!.assumingMemoryBound(to: ParallelJob.self).pointee.run(w) }, p) == 0
        }
        if !ran {
            nonisolated(unsafe) let work = job
            DispatchQueue.concurrentPerform(iterations: t) { w in work.run(w) }
        }
    }
}

/// One `parallelFor` call: piece w of `pieces` is the range count·w/pieces ..< count·(w+1)/pieces.
struct ParallelJob {
    let count: Int, pieces: Int, body: (Range<Int>) -> Void
    func run(_ w: Int) { body((count * w / pieces)..<(count * (w + 1) / pieces)) }
}

/// Threads worth starting for `elements` values cut into at most `items` pieces: one
/// per ``minElementsPerThread`` values (waking a thread costs about as much as a few
/// microseconds of streaming), never more than asked or than there are items.
package func usefulThreads(_ threads: Int, elements: Int, items: Int) -> Int {
    max(1, min(threads, items, elements / minElementsPerThread))
}

/// 64 Ki values: about 20 µs of work at memory speed, ten times a thread wake-up.
let minElementsPerThread = 1 << 16

/// Number of row blocks an NHWC/NC statistics pass is cut into. Fixed by the row count
/// alone (never by the thread count), so the reduction tree is the same for 1 or 64 threads.
@usableFromInline
func rowBlocks(rows: Int) -> Int { min(rows, 64) }

@usableFromInline
func rowRange(block b: Int, blocks: Int, rows: Int) -> Range<Int> {
    (rows * b / blocks)..<(rows * (b + 1) / blocks)
}
