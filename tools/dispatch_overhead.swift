// What a parallel call costs through Dispatch on this machine, the measurement behind
// the kernels' worker pool (Sources/CBNKernels/pool.c, spec §9.3): two pieces of
// `work` µs each (a busy wait), through DispatchQueue.concurrentPerform, back to back
// and after a single-threaded memcpy of 4 MiB (about what an in-cache bench does
// between two kernel calls). Ideal: `work` µs.
//   swiftc -O tools/dispatch_overhead.swift -o .build/dispatch_overhead && .build/dispatch_overhead [work-µs]
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
func spin(_ seconds: Double) { let t = now(); while now() - t < seconds {} }

let work = (CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) : nil) ?? 75
let bytes = 4 << 20
let src = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), dst = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
memset(src, 1, bytes); memset(dst, 2, bytes)
print("two pieces of \(work) µs through DispatchQueue.concurrentPerform (ideal \(work) µs), 301 calls each:")
for gap in [false, true] {
    var t = [Double]()
    for _ in 0..<301 {
        if gap { memcpy(dst, src, bytes) }
        let t0 = now()
        DispatchQueue.concurrentPerform(iterations: 2) { _ in spin(work * 1e-6) }
        t.append(now() - t0)
    }
    t.sort()
    func us(_ s: Double) -> String { String(Double(Int(s * 1e7)) / 10) }
    let label = gap ? "after a 4 MiB memcpy" : "back to back"
    print("  \(label): median \(us(t[150])) µs (10th percentile \(us(t[30])), 90th \(us(t[270])))")
}
