import Foundation

/// The speed goals of issue 20, checked on one `bnspec bench` run: each goal's measured
/// figure (the worst configuration when a goal spans several), met or MISSED, and —
/// when `tools/bounds.sh --json` output of the same session is given — the machine's
/// bound for it, so that a MISSED goal shows whether the machine allows it.
///
/// Ratios are `bnspec bench` ratios (median kernel time ÷ median memcpy time of the
/// kernel's input bytes, interleaved). "In cache" means x + y ≤ 32 MiB
/// (``BenchGoals/cacheBytes``). Goals comparing two configurations of the same shape and
/// mode that copy the same bytes (NHWC against NCHW, threaded against fused) divide their
/// ratios: each time is taken relative to the memcpy measured beside it, so a change of
/// the machine's state between the two configurations (on a shared 2-core host the
/// in-cache memcpy moved by up to 45 % from one configuration to the next) cancels; the
/// quotient of the times is printed beside it. 16-bit against float32 compares times per
/// element (their memcpys copy different bytes); against ONNX Runtime, ratios.
public struct BenchGoal: Codable, Sendable {
    public var goal: String
    /// "≤" or "≥".
    public var comparison: String
    public var limit: Double
    /// The measured figure, nil when the run lacks the configurations.
    public var measured: Double?
    /// The configuration the figure comes from (the worst one), or why it is missing.
    public var configuration: String
    /// "met", "MISSED" or "not measured".
    public var status: String
    /// The machine's bound for this figure (tools/bounds.sh), and what it is.
    public var bound: Double?
    public var boundNote: String?

    enum CodingKeys: String, CodingKey {
        case goal, comparison, limit, measured, configuration, status, bound
        case boundNote = "bound_note"
    }
}

/// Another implementation's speed measured in the same session: a row of
/// `tools/bench_frameworks.py --json` ("speed").
public struct PeerSpeed: Codable, Sendable {
    public var kernel: String, version: String, mode: String, layout: String, shape: [Int], ratio: Double
    public init(kernel: String, version: String, mode: String, layout: String, shape: [Int], ratio: Double) {
        self.kernel = kernel; self.version = version; self.mode = mode; self.layout = layout; self.shape = shape; self.ratio = ratio
    }
}

/// The figures of `tools/bounds.sh --json` that bound the goals (see tools/bounds.c).
public struct MachineBounds: Codable, Sendable {
    public struct Row: Codable, Sendable {
        public var shape: String, what: String
        public var ratio: Double?
        public init(shape: String, what: String, ratio: Double?) { self.shape = shape; self.what = what; self.ratio = ratio }
    }
    /// Least time per element of the double-precision arithmetic (instruction mix, one
    /// core): training (statistics + output), inference (output), backward (statistics
    /// with dy + gradient).
    public struct PerElement: Codable, Sendable {
        public var training: Double, inference: Double, backward: Double
        public init(training: Double, inference: Double, backward: Double) {
            self.training = training; self.inference = inference; self.backward = backward
        }
    }
    /// Speed-up of two threads over one on the in-cache shape, each doing half the work:
    /// memcpy (the shared cache and memory) and the training passes on L1-resident data
    /// (the cores' arithmetic).
    public struct TwoThreads: Codable, Sendable {
        public var memcpy: Double, trainingL1: Double
        public init(memcpy: Double, trainingL1: Double) { self.memcpy = memcpy; self.trainingL1 = trainingL1 }
        enum CodingKeys: String, CodingKey { case memcpy, trainingL1 = "training_l1" }
    }
    public var shapes: [Row]
    public var instructionNsPerElement: PerElement
    public var twoThreadSpeedup: TwoThreads?
    public init(shapes: [Row], instructionNsPerElement: PerElement, twoThreadSpeedup: TwoThreads?) {
        self.shapes = shapes; self.instructionNsPerElement = instructionNsPerElement; self.twoThreadSpeedup = twoThreadSpeedup
    }

    enum CodingKeys: String, CodingKey {
        case shapes
        case instructionNsPerElement = "instruction_ns_per_element"
        case twoThreadSpeedup = "two_thread_speedup"
    }

    func row(_ shape: [Int], _ what: String) -> Row? {
        shapes.first { $0.shape == shape.map(String.init).joined(separator: "x") && $0.what == what }
    }

    /// The arithmetic bound of a result: the instruction mix's time for its elements ÷
    /// the memcpy time measured beside it in the bench run.
    func arithmetic(_ r: BenchResult) -> Double? {
        guard instructionNsPerElement.training > 0 else { return nil }  // measured at the AVX-512 level only
        let ns = switch r.mode {
        case "training": instructionNsPerElement.training
        case "inference": instructionNsPerElement.inference
        default: instructionNsPerElement.backward
        }
        return ns * 1e-9 * Double(r.shape.reduce(1, *)) / r.memcpySeconds
    }
}

public enum BenchGoals {
    /// Bytes of x + y up to which a shape counts as in cache (the L3 of the machines
    /// measured is 32 MiB).
    public static let cacheBytes = 32 << 20

    package static func inCache(_ r: BenchResult) -> Bool {
        let width = r.dtype == "float32" ? 4 : 2
        return r.shape.reduce(1, *) * width * 2 <= cacheBytes
    }

    static func name(_ r: BenchResult) -> String {
        "\(r.kernel) \(r.mode) \(r.layout) \(r.shape.map(String.init).joined(separator: "x"))" + (r.threads > 1 ? " \(r.threads) threads" : "")
    }

    /// The goals evaluated on `results`; `peers` and `bounds` from the same session when given.
    public static func evaluate(_ results: [BenchResult], peers: [PeerSpeed]? = nil, bounds: MachineBounds? = nil) -> [BenchGoal] {
        // The goals are about the default modes (not backward-infer, timed on request).
        let modes = Set(BenchWorkload.Mode.defaults.map(\.rawValue))
        let main = results.filter { $0.series == "main" && modes.contains($0.mode) }
        func find(_ kernel: String, _ mode: String, _ layout: String, inCache: Bool?) -> [BenchResult] {
            main.filter { $0.kernel == kernel && $0.mode == mode && $0.layout == layout && (inCache == nil || Self.inCache($0) == inCache!) }
        }
        /// The result of `kernel` (or r's) in `layout` (or r's) for r's mode and shape.
        func twin(_ r: BenchResult, kernel: String? = nil, layout: String? = nil) -> BenchResult? {
            let k = kernel ?? r.kernel, l = layout ?? r.layout
            return main.first { $0.kernel == k && $0.mode == r.mode && $0.layout == l && $0.shape == r.shape }
        }
        var goals = [BenchGoal]()
        /// A goal over (figure, configuration, result), judged on the worst.
        func add(_ goal: String, _ cmp: String, _ limit: Double, _ figures: [(Double, String, BenchResult?)], missing: String,
                 bound: ((BenchResult) -> (Double, String)?)? = nil, fixedBound: (Double, String)? = nil) {
            guard !figures.isEmpty else {
                goals.append(BenchGoal(goal: goal, comparison: cmp, limit: limit, measured: nil, configuration: missing,
                                       status: "not measured", bound: nil, boundNote: nil))
                return
            }
            let worst = cmp == "≤" ? figures.max { $0.0 < $1.0 }! : figures.min { $0.0 < $1.0 }!
            let ok = cmp == "≤" ? worst.0 <= limit : worst.0 >= limit
            // The goal's bound is the most demanding configuration's: a "≤" goal over several
            // configurations is out of reach when any one's bound is beyond the limit.
            let each = figures.compactMap { f in f.2.flatMap { r in bound?(r) }.map { (value: $0, configuration: f.1) } }
            let top = cmp == "≤" ? each.max { $0.value.0 < $1.value.0 } : each.min { $0.value.0 < $1.value.0 }
            let b = top.map { $0.configuration == worst.1 ? $0.value : ($0.value.0, $0.value.1 + "; at " + $0.configuration) } ?? fixedBound
            goals.append(BenchGoal(goal: goal, comparison: cmp, limit: limit, measured: worst.0, configuration: worst.1,
                                   status: ok ? "met" : "MISSED", bound: b?.0, boundNote: b?.1))
        }
        func arithmetic(_ mode: String) -> (BenchResult) -> (Double, String)? {
            { r in bounds?.arithmetic(r).map { ($0, "instruction mix of the double-precision \(mode) arithmetic ÷ this run's memcpy") } }
        }
        func traffic(_ what: String, _ note: String) -> (BenchResult) -> (Double, String)? {
            { r in bounds?.row(r.shape, what)?.ratio.map { ($0, note + " ÷ memcpy, tools/bounds.sh") } }
        }
        let cacheOnly = "run without the in-cache shape"
        let outOnly = "run without the out-of-cache shape"
        /// The bound of fused `mode` in `layout` (1 thread): the larger of its arithmetic (the
        /// instruction mix) and the memory traffic every such kernel has — NCHW training out of
        /// cache: its channel-group pattern; NCHW training in cache and inference in either
        /// layout: x read and y written with the kernels' stores (in cache each line of y read
        /// for ownership first); NHWC training and backward: x (and dy) read twice, since every
        /// row is needed before the first output — for backward, or once in channel blocks of
        /// a cache line a row (`traffic:1read-back-blocked`) where that measures less (it has
        /// measured 2.5× the two reads, both in and out of cache). NCHW backward: the
        /// arithmetic alone.
        func fusedBound(_ mode: String, _ layout: String, inCache: Bool) -> (BenchResult) -> (Double, String)? {
            let pattern: (String, String)? = switch (layout, mode) {
            case ("NCHW", "training") where !inCache: ("traffic:train", "the kernel's memory traffic without arithmetic")
            case ("NCHW", "training"), (_, "inference"):
                ("traffic:copy", "one read of x and one write of y with the kernels' stores without arithmetic")
            case ("NCHW", _): nil
            case (_, "training"): ("traffic:2read", "two reads of x and one write of y without arithmetic")
            default: ("traffic:2read-back", "two reads of x and dy and one write of dx without arithmetic")
            }
            let own = arithmetic(mode), twice = pattern.map { traffic($0.0, $0.1) }
            let once = layout != "NCHW" && mode == "backward"
                ? traffic("traffic:1read-back-blocked", "one read of x and dy in 16-channel blocks and one write of dx without arithmetic")
                : nil
            let memory: ((BenchResult) -> (Double, String)?)? = twice.map { twice in
                { r in [twice(r), once?(r)].compactMap { $0 }.min { $0.0 < $1.0 } }
            }
            return { r in [own(r), memory?(r)].compactMap { $0 }.max { $0.0 < $1.0 } }
        }
        // Out of cache, NCHW, 1 thread.
        for (mode, limit) in [("training", 1.2), ("backward", 1.1), ("inference", 0.8)] {
            add("fused \(mode) NCHW, out of cache", "≤", limit,
                find("fused", mode, "NCHW", inCache: false).map { ($0.ratio, name($0), Optional($0)) }, missing: outOnly,
                bound: fusedBound(mode, "NCHW", inCache: false))
        }
        // In cache, NCHW, 1 thread.
        for (mode, limit) in [("training", 1.7), ("inference", 1.05), ("backward", 1.3)] {
            add("fused \(mode) NCHW, in cache", "≤", limit,
                find("fused", mode, "NCHW", inCache: true).map { ($0.ratio, name($0), Optional($0)) }, missing: cacheOnly,
                bound: fusedBound(mode, "NCHW", inCache: true))
        }
        // NHWC within 15 % of NCHW (out-of-cache training: the two-read bound instead).
        /// a ÷ b as ratios to their memcpys, named with the quotient of the times.
        func quotient(_ a: BenchResult, _ b: BenchResult, _ label: String) -> (Double, String) {
            (a.ratio / b.ratio, label + String(format: " (times: %.2f)", a.seconds / b.seconds))
        }
        let nhwc = main.filter { $0.kernel == "fused" && $0.layout == "NHWC" && !($0.mode == "training" && !inCache($0)) }
            .compactMap { r in twin(r, layout: "NCHW").map { n in let q = quotient(r, n, name(r) + " ÷ NCHW"); return (q.0, q.1, Optional(r)) } }
        // Bound: NHWC's own bound ÷ the NCHW figure (NHWC training and backward read their
        // inputs twice: every row is needed before the first output).
        add("fused NHWC time ÷ NCHW time, every mode (out-of-cache training: next row)", "≤", 1.15, nhwc, missing: "run without NHWC and NCHW",
            bound: { r in
                guard let nchw = twin(r, layout: "NCHW"), let b = fusedBound(r.mode, "NHWC", inCache: inCache(r))(r) else { return nil }
                return (b.0 / nchw.ratio, "NHWC's bound, " + String(format: "%.2f", b.0) + " (\(b.1)), ÷ the NCHW figure "
                        + String(format: "%.2f", nchw.ratio))
            })
        add("fused training NHWC, out of cache", "≤", 1.6,
            find("fused", "training", "NHWC", inCache: false).map { ($0.ratio, name($0), Optional($0)) }, missing: outOnly,
            bound: fusedBound("training", "NHWC", inCache: false))
        // Threads.
        let threaded = main.filter { $0.kernel == "threaded" }.compactMap { t in
            twin(t, kernel: "fused").map { f in let q = quotient(t, f, name(t) + " ÷ fused"); return (q.0, q.1, Optional<BenchResult>.none) }
        }
        add("threaded time ÷ fused time, every bench configuration", "≤", 1.0, threaded, missing: "run without threaded and fused")
        let speedup = main.filter { $0.kernel == "threaded" && $0.layout == "NCHW" && inCache($0) && $0.threads >= 2 }.compactMap { t in
            twin(t, kernel: "fused").map { f in let q = quotient(f, t, name(t) + " speed-up"); return (q.0, q.1, Optional<BenchResult>.none) }
        }
        add("threaded speed-up over fused, NCHW in cache, every mode", "≥", 1.6, speedup, missing: "run without threaded and fused in cache",
            fixedBound: bounds?.twoThreadSpeedup.map {
                ($0.memcpy, String(format: "two-thread speed-up of memcpy (training passes from L1: %.2f), tools/bounds.sh", $0.trainingL1))
            })
        // 16-bit storage: time per element against the float32 kernel.
        for kernel in ["fused-float16", "fused-bfloat16"] {
            let per = main.filter { $0.kernel == kernel }.compactMap { h in
                twin(h, kernel: "fused").map { (h.seconds / $0.seconds, name(h) + " ÷ fused float32", Optional<BenchResult>.none) }
            }
            add("\(kernel) time per element ÷ float32's, every configuration", "≤", 1.5, per, missing: "run without \(kernel) and fused")
        }
        // Small tensors (the scaling series' first shape).
        let small = results.filter { $0.series == "scaling" && $0.shape == [1, 16, 25, 25] }.map { ($0.ratio, name($0), Optional($0)) }
        add("fused training NCHW 1×16×25×25", "≤", 3, small, missing: "run with --no-scaling", bound: arithmetic("training"))
        // Against ONNX Runtime (tools/bench_frameworks.py in the same session). Bound: fused
        // training's own bound ÷ ONNX Runtime's ratio.
        for cache in [true, false] {
            let ort = (peers ?? []).filter { $0.kernel == "onnxruntime" && $0.mode == "training" && $0.layout == "NCHW" }
            func peer(_ f: BenchResult) -> PeerSpeed? { ort.first { $0.shape == f.shape } }
            let figures = find("fused", "training", "NCHW", inCache: cache).compactMap { f in
                peer(f).map { (f.ratio / $0.ratio, name(f) + " ÷ ONNX Runtime \($0.version)", Optional(f)) }
            }
            let own = fusedBound("training", "NCHW", inCache: cache)
            add("fused training ÷ ONNX Runtime training, \(cache ? "in" : "out of") cache", "≤", 0.5, figures,
                missing: peers == nil ? "no --peers: run tools/bench_frameworks.py --json in the same session" : "no ONNX Runtime row for the shape",
                bound: { f in
                    guard let p = peer(f), let b = own(f) else { return nil }
                    return (b.0 / p.ratio, "fused training's bound, " + String(format: "%.2f", b.0) + " (\(b.1)), ÷ ONNX Runtime's ratio "
                            + String(format: "%.2f", p.ratio))
                })
        }
        return goals
    }
}
