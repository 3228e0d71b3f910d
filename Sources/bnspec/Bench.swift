import ArgumentParser
import BNBench
import BNCore
import BNKernels
import Foundation

/// `bnspec bench`: times every kernel × mode × layout × shape against memcpy of the
/// same bytes, then how the fused kernel's cost grows with size, and checks the speed
/// goals (issue 20) on the run — with other frameworks' figures (`--peers`) and the
/// machine's bounds (`--bounds`) measured in the same session.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the kernels against memcpy of the same bytes (median of interleaved runs); check the speed goals.")

    @Option(name: .customLong("kernel"), help: "Kernels to time (repeatable; default: all).") var kernels: [String] = []
    @Option(name: .customLong("mode"), help: "training, inference, backward or backward-infer (backward with the running statistics given; repeatable; default: the first three).") var modes: [String] = []
    @Option(name: .customLong("layout"), help: "NCHW, NHWC or NC (repeatable; default: NCHW and NHWC).") var layouts: [String] = []
    @Option(name: .customLong("shape"), help: "Shapes NxCxHxW (repeatable; default: 32x64x28x28 and 64x256x56x56).")
    var shapes: [String] = []
    @Option(help: "Threads of the threaded kernel (default: all cores, at least 2).") var threads: Int?
    @Option(help: "Minimum seconds of kernel time per configuration.") var minTime = 0.3
    @Option(help: "Rounds over all configurations; each figure is the median of its rounds' (steadier on a shared machine).")
    var rounds = 1
    @Option(help: "JSON of tools/bench_frameworks.py --json from the same session: adds the goals against ONNX Runtime.")
    var peers: String?
    @Option(help: "JSON of tools/bounds.sh --json from the same session: adds the machine's bound to each goal.")
    var bounds: String?
    @Flag(help: "Only the in-cache shape and the fused kernels: a one-minute smoke run.") var quick = false
    @Flag(help: "Skip the size-scaling series.") var noScaling = false
    @Flag(help: "Print JSON (machine, results, goals) instead of tables.") var json = false

    /// What `--json` prints.
    struct Report: Encodable {
        var machine: Machine, results: [BenchResult], goals: [BenchGoal]
    }
    struct Machine: Encodable {
        var isa: String, cores: Int, threadedThreads: Int
        /// /proc/loadavg's 1-minute figure before and after the run: ratios taken above
        /// ~1.5 on a 2-core machine are disturbed by other work.
        var loadBefore: Double?, loadAfter: Double?
        enum CodingKeys: String, CodingKey {
            case isa, cores
            case threadedThreads = "threaded_threads", loadBefore = "load_before", loadAfter = "load_after"
        }
    }

    /// The bytes a bench run may allocate: the physical memory (and the address-space limit,
    /// `ulimit -v`, when lower), which the three tensors of a configuration must fit.
    static func memoryRoom() -> (bytes: Int, what: String) {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        var room = (bytes: pages > 0 && size > 0 ? pages * size : Int.max, what: "this machine's memory")
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max, limit.rlim_cur < UInt64(room.bytes) {
            room = (Int(limit.rlim_cur), "the address-space limit, ulimit -v,")
        }
        return room
    }

    static func load() -> Double? {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)).flatMap { Double($0.split(separator: " ").first ?? "") }
    }

    func readJSON<T: Decodable>(_ type: T.Type, _ path: String, what: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BNError.invalidArgument("cannot read \(what) file '\(path)'")
        }
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw BNError.invalidArgument("\(what) file '\(path)' is not the expected JSON (\(DecodingErrorText.brief(error)))")
        }
    }

    /// Numbers out of range are usage errors (exit 64), as for verify and accuracy; bounded
    /// before any timing: a run that could never end is refused, not started.
    func validate() throws {
        if let t = threads, !(1...256).contains(t) { throw BNSpec.usageError("--threads must be in 1…256 (got \(t))") }
        guard minTime > 0, minTime <= 3600 else { throw BNSpec.usageError("--min-time must be more than 0 and at most 3600 s (got \(minTime))") }
        guard (1...1000).contains(rounds) else { throw BNSpec.usageError("--rounds must be in 1…1000 (got \(rounds))") }
    }

    func run() throws {
        try BNSpec.run {
            let names = kernels.isEmpty ? (quick ? ["fused", "threaded"] : BenchWorkload.kernelNames) : kernels
            for k in names where !BenchWorkload.kernelNames.contains(k) {
                throw BNError.invalidArgument("unknown kernel '\(k)' (expected one of \(BenchWorkload.kernelNames.joined(separator: ", ")))")
            }
            let ms = try (modes.isEmpty ? BenchWorkload.Mode.defaults.map(\.rawValue) : modes).map { m in
                guard let mode = BenchWorkload.Mode(rawValue: m) else {
                    throw BNError.invalidArgument("unknown mode '\(m)' (expected training, inference, backward or backward-infer)")
                }
                return mode
            }
            let ls = try (layouts.isEmpty ? ["NCHW", "NHWC"] : layouts).map { try Layout(parsing: $0) }
            let ss = try (shapes.isEmpty ? (quick ? ["32x64x28x28"] : ["32x64x28x28", "64x256x56x56"]) : shapes)
                .map { try Shape(parsing: $0) }
            let t = threads ?? OptimizedKernel.defaultThreads
            for shape in ss where shape.perChannelCount == 0 {
                throw BNError.invalidArgument("shape \(shape) has no elements per channel (N·H·W = 0: batch statistics are undefined)")
            }
            // Three tensors per configuration (x, y or dx, dy): a shape this machine cannot hold
            // is one line now, not an allocation trap after earlier configurations ran (an
            // outside red team's: 10¹²-element shapes aborted with a backtrace).
            let room = Self.memoryRoom()
            for shape in ss {
                let (need, over) = shape.elementCount.multipliedReportingOverflow(by: 3 * MemoryLayout<Float>.stride)
                if over || need > room.bytes {
                    throw BNError.invalidArgument("shape \(shape) needs \(over ? "more than 2⁶³" : "\(need >> 20) MiB") of memory for its three float32 tensors (\(room.what) allows \(room.bytes >> 20) MiB)")
                }
            }
            struct PeerFile: Decodable { var speed: [PeerSpeed] }
            let peerRows = try peers.map { try readJSON(PeerFile.self, $0, what: "--peers").speed }
            let machineBounds = try bounds.map { try readJSON(MachineBounds.self, $0, what: "--bounds") }
            for shape in ss where ls.contains(.nc) && !shape.spatial.isEmpty {
                throw BNError.invalidArgument("layout NC takes a shape without spatial dimensions (NxC), got \(shape)")
            }
            let runner = BenchRunner(minSeconds: minTime)
            let terminal = isatty(STDERR_FILENO) != 0
            let loadBefore = Self.load()

            // The configurations, in order: every kernel × mode × layout × shape, then four
            // decades of size (fused training NCHW on 1 thread: time should grow linearly).
            var plan = [(label: String, series: String, make: () throws -> BenchWorkload)]()
            for shape in ss {
                for layout in ls {
                    for mode in ms {
                        for k in names {
                            plan.append(("\(k) \(mode.rawValue) \(layout.rawValue) \(shape)", "main", {
                                try BenchWorkload(kernel: k, mode: mode, layout: layout, shape: shape, threads: t)
                            }))
                        }
                    }
                }
            }
            if !noScaling {
                for batch in [1, 10, 100, 1000] {
                    let shape = try Shape(batch: batch, channels: 16, spatial: [25, 25])
                    plan.append(("scaling \(shape)", "scaling", {
                        try BenchWorkload(kernel: "fused", mode: .training, layout: .nchw, shape: shape, threads: 1)
                    }))
                }
            }
            var measured = [[BenchResult]](repeating: [], count: plan.count)
            for round in 1...rounds {
                for (i, p) in plan.enumerated() {
                    if terminal {
                        let r = rounds > 1 ? "round \(round)/\(rounds): " : ""
                        writeStderr("\rbench: \(r)\(p.label)            ")
                    }
                    measured[i].append(runner.measure(try p.make(), series: p.series))
                }
            }
            let results = measured.map(BenchResult.combining)
            if terminal { writeStderr("\r\u{1B}[K") }
            let machine = Machine(isa: KernelISA.selected.description, cores: ProcessInfo.processInfo.activeProcessorCount,
                                  threadedThreads: t, loadBefore: loadBefore, loadAfter: Self.load())
            let goals = BenchGoals.evaluate(results, peers: peerRows, bounds: machineBounds)
            if json { return try printJSON(Report(machine: machine, results: results, goals: goals)) }
            report(results, goals: goals, machine: machine)
        }
    }

    func report(_ results: [BenchResult], goals: [BenchGoal], machine: Machine) {
        func ms(_ s: Double) -> String { String(format: "%.3f", s * 1e3) }
        func load(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "?" }
        print("Kernels at the \(machine.isa) level (BNSPEC_CPU); \(machine.cores) cores; load average \(load(machine.loadBefore)) before, "
              + "\(load(machine.loadAfter)) after (above ~1.5 on 2 cores, other work disturbs the ratios).\n")
        let main = results.filter { $0.series == "main" }
        print(table(["kernel", "mode", "layout", "shape", "threads", "dtype", "median ms", "GB/s", "memcpy ms", "× memcpy", "min ×"],
                    main.map { [$0.kernel, $0.mode, $0.layout, $0.shape.map(String.init).joined(separator: "x"), "\($0.threads)",
                                $0.dtype, ms($0.seconds), String(format: "%.1f", $0.gbPerSecond), ms($0.memcpySeconds),
                                String(format: "%.2f", $0.ratio), String(format: "%.2f", $0.minRatio)] }))
        let scaling = results.filter { $0.series == "scaling" }
        if let first = scaling.first {
            print("\nScaling: fused training NCHW, 1 thread, C = 16, 25×25 (time per element should stay flat):")
            let base = first.seconds / Double(first.shape.reduce(1, *))
            print(table(["shape", "elements", "median ms", "ns/element", "vs smallest", "× memcpy"],
                        scaling.map { r in
                            let n = r.shape.reduce(1, *), per = r.seconds / Double(n)
                            return [r.shape.map(String.init).joined(separator: "x"), "\(n)", ms(r.seconds),
                                    String(format: "%.3f", per * 1e9), String(format: "%.2f", per / base),
                                    String(format: "%.2f", r.ratio)]
                        }))
        }
        let pairs = main.filter { $0.kernel == "threaded" }.compactMap { t -> [String]? in
            guard let one = main.first(where: { $0.kernel == "fused" && $0.mode == t.mode && $0.layout == t.layout && $0.shape == t.shape })
            else { return nil }
            return [t.mode, t.layout, t.shape.map(String.init).joined(separator: "x"), ms(one.seconds), ms(t.seconds),
                    "\(t.threads)", String(format: "%.2f", one.seconds / t.seconds), String(format: "%.2f", one.ratio / t.ratio)]
        }
        if !pairs.isEmpty {
            print("\n1 thread against \(pairs.first.map { $0[5] } ?? "2") threads (fused kernel, same run):")
            print(table(["mode", "layout", "shape", "1 thread ms", "threaded ms", "threads", "speed-up (times)", "speed-up (ratios: the goal)"], pairs))
        }
        print("\nGoals (issue 20), this run:")
        print(table(["goal", "limit", "measured", "bound", "status", "  worst configuration"],
                    goals.map { g in
                        [g.goal, "\(g.comparison) \(String(format: "%.2f", g.limit))", g.measured.map { String(format: "%.2f", $0) } ?? "–",
                         g.bound.map { String(format: "%.2f", $0) } ?? "", g.status, "  " + g.configuration]
                    }))
        if goals.contains(where: { $0.bound != nil }) {
            print("\nBound: the least ratio this machine allows for the figure (tools/bounds.sh of the same session): "
                  + Set(goals.compactMap(\.boundNote)).sorted().joined(separator: "; ") + ".")
        }
    }
}
