import BNCore
import BNKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One timed configuration, as `bnspec bench --json` prints it.
///
/// `seconds` and `memcpy_seconds` are medians over `repeats` interleaved runs (kernel,
/// then memcpy of the same input bytes within the kernel's own buffers, alternately, so
/// both see the same machine state and the same cache contents); `ratio` = seconds ÷ memcpy_seconds is the figure to read on a shared
/// machine — absolute times drift, the ratio much less. `gb_per_s` counts each input
/// tensor read once and the output written once.
public struct BenchResult: Codable, Sendable {
    public var series: String
    public var kernel: String
    public var mode: String
    public var layout: String
    public var shape: [Int]
    public var threads: Int
    public var dtype: String
    public var seconds: Double
    public var memcpySeconds: Double
    public var ratio: Double
    public var gbPerSecond: Double
    public var repeats: Int
    /// Fastest kernel run ÷ fastest memcpy run: on a busy machine the least disturbed
    /// pair, a check on `ratio` (medians).
    public var minRatio: Double

    public init(series: String, kernel: String, mode: String, layout: String, shape: [Int], threads: Int, dtype: String,
                seconds: Double, memcpySeconds: Double, ratio: Double, gbPerSecond: Double, repeats: Int, minRatio: Double) {
        self.series = series; self.kernel = kernel; self.mode = mode; self.layout = layout; self.shape = shape
        self.threads = threads; self.dtype = dtype; self.seconds = seconds; self.memcpySeconds = memcpySeconds
        self.ratio = ratio; self.gbPerSecond = gbPerSecond; self.repeats = repeats; self.minRatio = minRatio
    }
    enum CodingKeys: String, CodingKey {
        case series, kernel, mode, layout, shape, threads, dtype, seconds, ratio, repeats
        case memcpySeconds = "memcpy_seconds", gbPerSecond = "gb_per_s", minRatio = "min_ratio"
    }
}

extension BenchResult {
    /// One configuration measured in several rounds (`bnspec bench --rounds`): the median
    /// of each round's median time, memcpy time and ratio, the least `min_ratio`, and all
    /// the repeats. A disturbance that lasts less than a round moves one round's figure,
    /// not the combined one.
    public static func combining(_ rounds: [BenchResult]) -> BenchResult {
        precondition(!rounds.isEmpty, "combining no rounds")
        var r = rounds[0]
        guard rounds.count > 1 else { return r }
        r.seconds = BenchRunner.median(rounds.map(\.seconds))
        r.memcpySeconds = BenchRunner.median(rounds.map(\.memcpySeconds))
        r.ratio = BenchRunner.median(rounds.map(\.ratio))
        r.gbPerSecond = BenchRunner.median(rounds.map(\.gbPerSecond))
        r.minRatio = rounds.map(\.minRatio).min()!
        r.repeats = rounds.map(\.repeats).reduce(0, +)
        return r
    }
}

/// Times workloads against memcpy of the same bytes.
public struct BenchRunner: Sendable {
    /// Minimum total time spent on one configuration (kernel runs only).
    public var minSeconds: Double
    public var minRepeats: Int
    public var maxRepeats: Int
    public init(minSeconds: Double = 0.3, minRepeats: Int = 5, maxRepeats: Int = 200) {
        self.minSeconds = minSeconds; self.minRepeats = minRepeats; self.maxRepeats = maxRepeats
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    public func measure(_ w: BenchWorkload, series: String = "main") -> BenchResult {
        func copy() { for c in w.copies { memcpy(c.destination, c.source, c.bytes) } }
        // Warm-up: touches every page the kernel and the copies use.
        w.run(); copy()
        var kt = [Double](), mt = [Double]()
        var spent = 0.0
        while kt.count < maxRepeats && (kt.count < minRepeats || spent < minSeconds) {
            let t0 = Self.now(); w.run()
            let t1 = Self.now(); copy()
            let t2 = Self.now()
            kt.append(t1 - t0); mt.append(t2 - t1); spent += t1 - t0
        }
        let k = Self.median(kt), m = Self.median(mt)
        let tensorBytes = Double(w.shape.elementCount * w.dtype.byteWidth)
        let moved = tensorBytes * (w.mode.isBackward ? 3 : 2)
        return BenchResult(series: series, kernel: w.kernel, mode: w.mode.rawValue, layout: w.layout.rawValue,
                           shape: w.shape.dimensions, threads: w.threads, dtype: w.dtype.rawValue, seconds: k,
                           memcpySeconds: m, ratio: k / m, gbPerSecond: moved / k / 1e9, repeats: kt.count,
                           minRatio: kt.min()! / mt.min()!)
    }
}
