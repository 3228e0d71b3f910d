import Dispatch

/// Runs `body(item)` for every item in 0..<count on up to `threads` threads.
///
/// Items are independent units of work (a channel, a fixed block of rows) whose
/// decomposition never depends on `threads`; each item is computed by one thread in
/// a fixed order, so results are bit-identical for any thread count.
@usableFromInline
func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    let t = max(1, min(threads, count))
    if t == 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let work = body
        DispatchQueue.concurrentPerform(iterations: t) { worker in
            var i = worker
            while i < count { work(i); i += t }
        }
    }
}

/// Number of row blocks an NHWC/NC pass is cut into. Fixed by the row count alone
/// (never by the thread count), so the reduction tree is the same for 1 or 64 threads.
@usableFromInline
func rowBlocks(rows: Int) -> Int { min(rows, 64) }

@usableFromInline
func rowRange(block b: Int, blocks: Int, rows: Int) -> Range<Int> {
    (rows * b / blocks)..<(rows * (b + 1) / blocks)
}
