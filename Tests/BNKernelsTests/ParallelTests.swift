import CBNKernels
import Dispatch
import Foundation
import Testing
import BNKernels

/// `parallelFor` and the worker pool under it (pool.c): every item is run exactly once,
/// whether the pool runs the call, is busy with another caller (Dispatch then does),
/// has its workers spinning (back-to-back calls) or asleep (calls 3 ms apart); and a
/// piece runs on the same thread at every call the pool takes.
@Suite struct ParallelTests {
    /// Runs `parallelFor(count, threads:)` and returns how many times each item ran.
    static func visits(_ count: Int, threads: Int) -> [Int] {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(1, count))
        hits.initialize(repeating: 0, count: max(1, count))
        defer { hits.deallocate() }
        nonisolated(unsafe) let shared = hits
        parallelFor(count, threads: threads) { range in
            for i in range { shared[i] += 1 }  // ranges are disjoint: no two threads share an item
        }
        return Array(UnsafeBufferPointer(start: hits, count: count))
    }

    @Test func everyItemRunsOnceForAnyCountAndThreadCount() {
        for count in [0, 1, 2, 3, 7, 64, 1000] {
            for threads in [1, 2, 3, 4, 8, 300] {  // 300: more than the pool's 255 workers, so Dispatch runs it
                for call in 0..<50 {
                    if call % 10 == 9 { usleep(3000) }  // idle workers have gone to sleep: the call must wake them
                    let v = Self.visits(count, threads: threads)
                    #expect(v == [Int](repeating: 1, count: count), "count \(count), threads \(threads), call \(call)")
                }
            }
        }
    }

    @Test func concurrentAndNestedCallersEachRunEveryItemOnce() {
        // Four callers at once: one holds the pool, the others fall back to Dispatch; each
        // body also calls parallelFor from inside a piece (nested: the pool is busy).
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        failures.initialize(repeating: 0, count: 4)
        defer { failures.deallocate() }
        nonisolated(unsafe) let shared = failures
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for call in 0..<100 {
                let count = 5 + (caller * 31 + call) % 90
                let inner = UnsafeMutablePointer<Bool>.allocate(capacity: count)
                inner.initialize(repeating: false, count: count)
                defer { inner.deallocate() }
                nonisolated(unsafe) let innerShared = inner
                let outer = Self.visits(count, threads: 2 + call % 3)
                parallelFor(count, threads: 2) { range in
                    for i in range { innerShared[i] = Self.visits(7, threads: 2) == [Int](repeating: 1, count: 7) }
                }
                if outer != [Int](repeating: 1, count: count) || UnsafeBufferPointer(start: inner, count: count).contains(false) {
                    shared[caller] += 1
                }
            }
        }
        #expect(Array(UnsafeBufferPointer(start: failures, count: 4)) == [0, 0, 0, 0])
    }

    @Test func aPieceRunsOnTheSameThreadAtEveryCallThePoolTakes() {
        // seen[p]: the thread that ran piece p (0: the caller's; 1, 2: the workers').
        let seen = UnsafeMutablePointer<pthread_t>.allocate(capacity: 3)
        defer { seen.deallocate() }
        var first: [pthread_t]? = nil
        var taken = 0
        let deadline = Date().addingTimeInterval(10)
        while taken < 20 && Date() < deadline {
            let rc = bn_pool_run(3, { ctx, piece in
                ctx!.assumingMemoryBound(to: pthread_t.self)[piece] = pthread_self()
            }, seen)
            if rc != 0 { usleep(1000); continue }  // another test holds the pool
            taken += 1
            #expect(pthread_equal(seen[0], pthread_self()) != 0, "piece 0 runs on the caller")
            #expect(pthread_equal(seen[1], seen[2]) == 0, "the two workers are different threads")
            if let f = first {
                for piece in 1...2 {
                    #expect(pthread_equal(f[piece], seen[piece]) != 0, "piece \(piece) changed threads")
                }
            } else {
                first = [seen[0], seen[1], seen[2]]
            }
        }
        #expect(taken >= 20, "the pool took only \(taken) of the calls in 10 s")
    }
}
