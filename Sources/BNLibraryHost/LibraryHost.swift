import BNCore
import BNGolden
import CBNKernelABI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Serves the adapter protocol bnspec-adapter/1 (spec/AUDIT.md §3) on stdin/stdout for a kernel
/// library loaded through the C ABI (spec/AUDIT.md §7): `bnspec library-host PATH`, the child
/// process through which `bnspec audit --library PATH` runs the golden suite.
///
/// The library runs in this process only, so a crash or hang in it ends this process, never
/// the audit: the audit's adapter client reports the case and starts a fresh host for the next
/// one. A crash prints one line naming the signal, the entry point and the case (the last line
/// of stderr, which the audit quotes).
///
/// Answers: `result` (outputs written as NPY into the request's output_dir), `unsupported`
/// (outside the library's supports table, or BNSPEC_UNSUPPORTED), `error` (BNSPEC_REFUSED or
/// BNSPEC_FAILED, with the kernel's message), `fault` (a fault of the kernel the host detects —
/// a write to an input, a write before the start or past the end of an output, an unknown return
/// code — or a request it cannot serve: the case fails as a protocol fault, never passes as a
/// refusal, and the host serves the next case).
public struct LibraryHost {
    let library: KernelLibrary

    /// Loads and checks the library. Throws a one-line error naming what is wrong.
    public init(path: String, symbolPrefix: String) throws {
        // Before dlopen: a crash in the library's constructors is reported as such (one line),
        // not as the Swift runtime's backtrace (an outside red team's: "Backtrace took 0.01s").
        bnspec_host_install_crash_report()
        // Loaded, or refused (no such file, not a library, a missing symbol): an exit from here on is
        // the host's own, until a call (a refusal had also printed "the kernel called exit in a
        // constructor", which no constructor had done: an outside red team's, round J).
        defer { bnspec_host_set_kernel_running(0) }
        library = try KernelLibrary(path: path, symbolPrefix: symbolPrefix)
    }

    /// One line: name, version, ABI and what the supports table names.
    public var summary: String {
        let s = supports
        return "\(library.name) \(library.version) (bnspec kernel ABI \(BNSPEC_KERNEL_ABI_VERSION)): ops \((s["ops"] as? [String] ?? []).joined(separator: ",")); dtypes \((s["dtypes"] as? [String] ?? []).joined(separator: ",")); layouts \((s["layouts"] as? [String] ?? []).joined(separator: ",")); running statistics \(library.keepsRunningStatistics ? "yes" : "no"); cumulative \(library.cumulativeAverage ? "yes" : "no")"
    }

    /// The protocol's `supports` object: the union of the supports table (a case outside the
    /// table itself is answered `unsupported`).
    var supports: [String: Any] {
        var ops: [String] = [], dtypes = Set<DType>(), layouts = Set<Layout>()
        for op in KernelLibrary.Op.allCases {
            var any = false
            for d in DType.allCases { for l in Layout.allCases where library.supports(op, d, l) { any = true; dtypes.insert(d); layouts.insert(l) } }
            if any { ops.append(op.name) }
        }
        if library.keepsRunningStatistics, trajectoryPossible() { ops += ["trajectory", "epoch"] }
        return ["ops": ops, "dtypes": DType.allCases.filter(dtypes.contains).map(\.rawValue),
                "layouts": Layout.allCases.filter(layouts.contains).map(\.rawValue),
                "cumulative": library.cumulativeAverage, "running_statistics": library.keepsRunningStatistics]
    }

    func trajectoryPossible() -> Bool {
        DType.allCases.contains { d in Layout.allCases.contains { l in library.supports(.train, d, l) && library.supports(.infer, d, l) } }
    }

    /// Sends file descriptor 1 to stderr and returns a copy of the original stdout, on which
    /// only protocol lines are written. Call it before the library is loaded: its constructors
    /// run in `dlopen` and may print (a banner), and those writes must not reach the protocol.
    /// A watchdog thread that ends this process (exit status 1, stderr one line) once bnspec is
    /// gone: checked at once and then every 0.2 s. `bnspec` is the process `parent` names (bnspec
    /// passes its pid as `--parent-pid`), else this process's parent at start. Gone: no such
    /// process, or a zombie (/proc/PID/stat state Z or X), or this process's parent changed (it
    /// turns to the reaper when bnspec dies). With the pid given, a bnspec that died before this
    /// host started is seen too: getppid() alone would have recorded the reaper as the parent
    /// and never fired (an outside red team's: a host started as bnspec was killed ran on).
    public static func endWithParent(_ given: pid_t? = nil) {
        let start = getppid()
        let parent = given ?? start
        @Sendable func gone() -> Bool {
            if getppid() != start { return true }
            if let stat = try? String(contentsOfFile: "/proc/\(parent)/stat", encoding: .utf8) {
                // pid (comm) state …: the state follows the last ')' (comm may hold spaces or parentheses).
                guard let close = stat.lastIndex(of: ")") else { return false }
                let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
                return state == "Z" || state == "X"
            }
            return kill(parent, 0) != 0 && errno == ESRCH
        }
        if parent <= 1 || gone() { exitOrphaned(parent) }
        Thread.detachNewThread {
            while true {
                usleep(200_000)
                if gone() { exitOrphaned(parent) }
            }
        }
    }

    static func exitOrphaned(_ parent: pid_t) -> Never {
        StandardStream.write("library-host: bnspec (pid \(parent)) is gone; ending\n", to: 2)
        _exit(1)
    }

    public static func divertStdout() -> Int32 {
        fflush(nil)  // all C streams (nothing of ours is buffered yet)
        let protocolOut = dup(1)
        dup2(2, 1)
        return protocolOut
    }

    /// Runs the protocol loop until stdin ends or `bye`, writing protocol lines to `protocolOut`
    /// (``divertStdout()``); the kernel's own stdout writes go to stderr.
    public func serve(protocolOut: Int32) {
        signal(SIGPIPE, SIG_IGN)
        bnspec_host_install_crash_report()
        while let line = readLine() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard let req = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
                Self.fail("bad request line (not a JSON object): \(text.prefix(120))")
            }
            let reply: [String: Any]
            switch req["type"] as? String {
            case "hello":
                reply = ["type": "hello", "protocol": "bnspec-adapter/1", "name": library.name, "version": library.version,
                         "supports": supports]
            case "bye": return
            case "case":
                let id = req["id"] as? String ?? ""
                // A fault of the kernel the host detected fails this case (a "fault" reply, never a
                // refusal) and the host serves on: its buffers are made afresh for every case, so
                // the next case is unharmed. It used to end the host, and after five such cases in
                // a row the audit gave up on the library, failing entry points never called (an
                // outside red team's: train_f32 returning -1 failed 82 good infer/backward cases).
                do { reply = try handle(req).json(id: id) } catch {
                    reply = ["type": "fault", "id": id,
                             "message": "library-host: " + (error.message.contains(id) ? error.message : "case \(id): \(error.message)")]
                }
            default:
                reply = ["type": "error", "id": req["id"] as? String ?? NSNull(), "message": "unknown request type \(req["type"] ?? "none")"]
            }
            guard var data = try? JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys, .withoutEscapingSlashes]) else {
                Self.fail("cannot encode the reply")
            }
            data.append(0x0A)
            let ok = data.withUnsafeBytes { b -> Bool in
                var off = 0
                while off < b.count {
                    let n = write(protocolOut, b.baseAddress! + off, b.count - off)
                    if n <= 0 { return false }
                    off += n
                }
                return true
            }
            if !ok { return }  // the audit went away
        }
    }

    /// Ends the host with one stderr line: the audit reports it against the case.
    static func fail(_ message: String) -> Never {
        StandardStream.write("\nlibrary-host: \(message)\n", to: 2)
        exit(3)
    }

    // MARK: One case

    enum Reply {
        case result([String: String]), unsupported(String), error(String)
        func json(id: String) -> [String: Any] {
            switch self {
            case .result(let o): ["type": "result", "id": id, "outputs": o]
            case .unsupported(let m): ["type": "unsupported", "id": id, "message": m]
            case .error(let m): ["type": "error", "id": id, "message": m]
            }
        }
    }

    struct HostFailure: Error { var message: String }

    /// The request's fields, parsed and checked.
    struct Request {
        var id: String, op: String, dtype: DType, parameterDType: DType, layout: Layout, shape: [Int]
        var problem: bnspec_problem
        var cumulative: Bool, step: Int, steps: Int
        /// An epoch's batches (samples per step), nil for the other operations.
        var batches: [Int]?
        var inputs: [String: String], outputs: Set<String>?, outputDir: URL

        init(_ r: [String: Any]) throws(HostFailure) {
            func need<T>(_ k: String, _ t: T.Type) throws(HostFailure) -> T {
                guard let v = r[k] as? T else { throw HostFailure(message: "request without a valid '\(k)'") }
                return v
            }
            id = try need("id", String.self); op = try need("op", String.self)
            guard let d = try? DType(parsing: try need("dtype", String.self)), let l = try? Layout(parsing: try need("layout", String.self)) else {
                throw HostFailure(message: "unknown dtype or layout")
            }
            dtype = d; layout = l
            parameterDType = (r["parameter_dtype"] as? String).flatMap { try? DType(parsing: $0) } ?? (d == .f64 ? .f64 : .f32)
            shape = try need("shape", [Int].self)
            guard shape.count >= 2, shape.allSatisfy({ $0 >= 0 }) else { throw HostFailure(message: "shape \(shape) is not [N, C, spatial…]") }
            inputs = try need("inputs", [String: String].self)
            outputs = (r["outputs"] as? [String]).map(Set.init)
            outputDir = URL(fileURLWithPath: try need("output_dir", String.self))
            cumulative = r["cumulative"] as? Bool ?? false
            step = max(1, r["step"] as? Int ?? 1); steps = max(1, r["steps"] as? Int ?? 1)
            if op == "epoch" {
                guard let b = r["partition"] as? [Int], b.count == steps, b.allSatisfy({ $0 >= 1 }), b.reduce(0, +) == shape.first else {
                    throw HostFailure(message: "an epoch request needs its batches: partition, \(steps) counts ≥ 1 adding up to N")
                }
                batches = b
            }
            problem = bnspec_problem()
            problem.struct_size = UInt32(MemoryLayout<bnspec_problem>.size)
            problem.layout = KernelLibrary.code(l)
            problem.rank = Int32(shape.count)
            problem.eps = (r["eps"] as? Double) ?? .nan
            if cumulative { problem.batch_weight = 1 / Double(step) }
            else if let w = r["batch_weight"] as? Double { problem.batch_weight = w }
            else if let m = r["raw_momentum"] as? Double { problem.batch_weight = m }  // the ABI's momentum is the batch weight
            else { problem.batch_weight = .nan }
            switch r["variance_estimator"] as? String {
            case "biased": problem.running_variance = BNSPEC_VARIANCE_BIASED
            case "unbiased": problem.running_variance = BNSPEC_VARIANCE_UNBIASED
            default: problem.running_variance = BNSPEC_VARIANCE_DEFAULT
            }
            switch r["single_value"] as? String {
            case "error": problem.single_value = BNSPEC_SINGLE_VALUE_ERROR
            case "beta": problem.single_value = BNSPEC_SINGLE_VALUE_BETA
            case "nan": problem.single_value = BNSPEC_SINGLE_VALUE_NAN
            default: problem.single_value = BNSPEC_SINGLE_VALUE_DEFAULT
            }
            if shape.count <= Int(BNSPEC_MAX_RANK) {
                let s = shape
                withUnsafeMutableBytes(of: &problem.shape) { b in
                    for (i, v) in s.enumerated() { b.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) }
                }
            }
        }

        var channels: Int { shape[1] }
        var elements: Int { shape.reduce(1, *) }
    }

    func handle(_ raw: [String: Any]) throws(HostFailure) -> Reply {
        let r = try Request(raw)
        let ops: [KernelLibrary.Op]
        switch r.op {
        case "train": ops = [.train]
        case "infer": ops = [.infer]
        case "backward-train": ops = [.backwardTrain]
        case "backward-infer": ops = [.backwardInfer]
        case "trajectory", "epoch":
            guard library.keepsRunningStatistics else { return .unsupported("the library keeps no running statistics") }
            ops = [.train, .infer]
        default: return .unsupported("op \(r.op)")
        }
        for op in ops where !library.supports(op, r.dtype, r.layout) {
            return .unsupported("\(op.name) \(r.dtype.rawValue) \(r.layout.rawValue) is not in the library's supports table")
        }
        if r.shape.count > Int(BNSPEC_MAX_RANK) { return .unsupported("more than \(BNSPEC_MAX_RANK - 2) spatial dimensions") }
        if r.layout == .nc && r.shape.count != 2 { throw HostFailure(message: "layout NC with shape \(r.shape)") }
        if r.cumulative && ["train", "trajectory", "epoch"].contains(r.op) && library.keepsRunningStatistics && !library.cumulativeAverage {
            return .unsupported("cumulative running average")
        }
        var files: [String: (NPYArray, data: Bool)] = [:]
        for (name, path) in r.inputs {
            let isData = ["x", "dy", "x_eval"].contains(name)
            let want = isData ? r.dtype : r.parameterDType
            let a: NPYArray
            do { a = try NPYArray.read(URL(fileURLWithPath: path), bfloat16: want == .bf16) } catch {
                throw HostFailure(message: "input \(name): \(error)")
            }
            guard a.dtype == want else { throw HostFailure(message: "input \(name) is \(a.dtype.rawValue), the request says \(want.rawValue)") }
            let expected = isData ? (r.op == "trajectory" && name == "x" ? r.steps * r.elements : r.elements) : r.channels
            guard a.values.count == expected else {
                throw HostFailure(message: "input \(name) holds \(a.values.count) values, shape \(r.shape) needs \(expected)")
            }
            files[name] = (a, isData)
        }
        func input(_ name: String) throws(HostFailure) -> HostBuffer {
            guard let (a, isData) = files[name] else { throw HostFailure(message: "request without input '\(name)'") }
            return HostBuffer(dtype: isData ? r.dtype : r.parameterDType, values: a.values)
        }
        func npyShape(_ name: String) -> [Int] { files[name]?.0.shape ?? [] }
        let C = r.channels, pd = r.parameterDType
        var out: [String: (HostBuffer, [Int])] = [:]
        var problem = r.problem
        let running = library.keepsRunningStatistics

        switch r.op {
        case "train":
            let x = try input("x"), g = try input("gamma"), b = try input("beta")
            let rm = running ? try input("running_mean") : nil, rv = running ? try input("running_var") : nil
            let y = HostBuffer(dtype: r.dtype, count: r.elements), bm = HostBuffer(dtype: pd, count: C), bv = HostBuffer(dtype: pd, count: C)
            let st = try invoke(.train, r, &problem, [x, g, b, rm, rv, y, bm, bv], inputs: [("x", x), ("gamma", g), ("beta", b)])
            if st.code != BNSPEC_OK { return try answer(st, .train, r) }
            out = ["y": (y, npyShape("x")), "batch_mean": (bm, [C]), "batch_var": (bv, [C])]
            if let rm, let rv { out["running_mean"] = (rm, [C]); out["running_var"] = (rv, [C]) }
        case "infer":
            let x = try input("x"), g = try input("gamma"), b = try input("beta"), m = try input("mean"), v = try input("var")
            let y = HostBuffer(dtype: r.dtype, count: r.elements)
            let st = try invoke(.infer, r, &problem, [x, g, b, m, v, y], inputs: [("x", x), ("gamma", g), ("beta", b), ("mean", m), ("var", v)])
            if st.code != BNSPEC_OK { return try answer(st, .infer, r) }
            out = ["y": (y, npyShape("x"))]
        case "backward-train":
            let x = try input("x"), dy = try input("dy"), g = try input("gamma")
            let dx = HostBuffer(dtype: r.dtype, count: r.elements), dg = HostBuffer(dtype: pd, count: C), db = HostBuffer(dtype: pd, count: C)
            let st = try invoke(.backwardTrain, r, &problem, [x, dy, g, dx, dg, db], inputs: [("x", x), ("dy", dy), ("gamma", g)])
            if st.code != BNSPEC_OK { return try answer(st, .backwardTrain, r) }
            out = ["dx": (dx, npyShape("x")), "dgamma": (dg, [C]), "dbeta": (db, [C])]
        case "backward-infer":
            let x = try input("x"), dy = try input("dy"), g = try input("gamma"), m = try input("mean"), v = try input("var")
            let dx = HostBuffer(dtype: r.dtype, count: r.elements), dg = HostBuffer(dtype: pd, count: C), db = HostBuffer(dtype: pd, count: C)
            let st = try invoke(.backwardInfer, r, &problem, [x, dy, g, m, v, dx, dg, db],
                                inputs: [("x", x), ("dy", dy), ("gamma", g), ("mean", m), ("var", v)])
            if st.code != BNSPEC_OK { return try answer(st, .backwardInfer, r) }
            out = ["dx": (dx, npyShape("x")), "dgamma": (dg, [C]), "dbeta": (db, [C])]
        default:  // trajectory, epoch: `steps` training steps, then inference on x_eval with the running statistics
            guard let (xs, _) = files["x"] else { throw HostFailure(message: "request without input 'x'") }
            let g = try input("gamma"), b = try input("beta"), rm = try input("running_mean"), rv = try input("running_var")
            var means: [Double] = [], vars: [Double] = []
            // A trajectory's batches are stacked, each of the request's shape; an epoch's are
            // consecutive blocks of its partition's sample counts (N outermost), each call its own N.
            let perSample = r.shape.isEmpty ? 0 : r.elements / max(r.shape[0], 1)
            let sizes = r.batches ?? Array(repeating: r.shape[0], count: r.steps)
            var start = 0
            for (k, samples) in zip(1..., sizes) {
                let count = samples * perSample
                let x = HostBuffer(dtype: r.dtype, values: Array(xs.values[start..<start + count]))
                start += count
                let y = HostBuffer(dtype: r.dtype, count: count), bm = HostBuffer(dtype: pd, count: C), bv = HostBuffer(dtype: pd, count: C)
                if r.cumulative { problem.batch_weight = 1 / Double(k) }
                withUnsafeMutableBytes(of: &problem.shape) { $0.storeBytes(of: Int64(samples), toByteOffset: 0, as: Int64.self) }
                let st = try invoke(.train, r, &problem, [x, g, b, rm, rv, y, bm, bv], inputs: [("x", x), ("gamma", g), ("beta", b)], step: k)
                if st.code != BNSPEC_OK { return try answer(st, .train, r) }
                means += rm.values; vars += rv.values
            }
            withUnsafeMutableBytes(of: &problem.shape) { $0.storeBytes(of: Int64(r.shape[0]), toByteOffset: 0, as: Int64.self) }
            let xe = try input("x_eval"), y = HostBuffer(dtype: r.dtype, count: r.elements)
            let st = try invoke(.infer, r, &problem, [xe, g, b, rm, rv, y], inputs: [("x_eval", xe), ("gamma", g), ("beta", b), ("mean", rm), ("var", rv)])
            if st.code != BNSPEC_OK { return try answer(st, .infer, r) }
            out = ["running_mean": (HostBuffer(dtype: pd, values: means), [r.steps, C]),
                   "running_var": (HostBuffer(dtype: pd, values: vars), [r.steps, C]), "y_eval": (y, npyShape("x_eval"))]
        }
        // Only the outputs the case names (a fingerprint probe or a case expecting a refusal names
        // none: all of them).
        if let wanted = r.outputs, !wanted.isEmpty { out = out.filter { wanted.contains($0.key) } }
        do { try FileManager.default.createDirectory(at: r.outputDir, withIntermediateDirectories: true) } catch {
            throw HostFailure(message: "cannot create \(r.outputDir.path): \(error.localizedDescription)")
        }
        var paths: [String: String] = [:]
        for (name, (buffer, shape)) in out {
            let url = r.outputDir.appendingPathComponent("\(name).npy")
            do { try FileWrite.replace(NPYArray(dtype: buffer.dtype, shape: shape, values: buffer.values).encoded(), at: url.path) } catch {
                throw HostFailure(message: "\(error)")
            }
            paths[name] = url.path
        }
        return .result(paths)
    }

    /// Calls one entry point with the crash context set, then checks what the kernel must not do.
    func invoke(_ op: KernelLibrary.Op, _ r: Request, _ problem: inout bnspec_problem, _ args: [HostBuffer?],
                inputs: [(String, HostBuffer)], step: Int? = nil) throws(HostFailure) -> KernelLibrary.Status {
        let symbol = library.symbol(op, r.dtype)
        let at = "case \(r.id)\(step.map { ", step \($0)" } ?? "")"
        let before = inputs.map { $0.1.snapshot() }
        bnspec_host_set_context("in \(symbol) on \(at)")
        bnspec_host_set_kernel_running(1)
        let st = library.call(op, r.dtype, problem: &problem, args)
        bnspec_host_set_kernel_running(0)
        bnspec_host_set_context("in library-host after \(symbol) returned on \(at) (the kernel may have corrupted memory)")
        for ((name, b), bytes) in zip(inputs, before) where !b.matches(bytes) {
            throw HostFailure(message: "\(symbol) wrote to its input \(name) (declared const) on \(at)")
        }
        for (name, b) in zip(op.arguments, args) {
            guard let b else { continue }
            if !b.frontIntact { throw HostFailure(message: "\(symbol) wrote before the start of \(name) (\(b.count) elements) on \(at)") }
            if !b.backIntact { throw HostFailure(message: "\(symbol) wrote past the end of \(name) (\(b.count) elements) on \(at)") }
        }
        return st
    }

    /// The reply for a call that did not return BNSPEC_OK.
    func answer(_ st: KernelLibrary.Status, _ op: KernelLibrary.Op, _ r: Request) throws(HostFailure) -> Reply {
        let symbol = library.symbol(op, r.dtype)
        let m = st.message.isEmpty ? "(no message)" : st.message
        switch st.code {
        case BNSPEC_UNSUPPORTED: return .unsupported("\(symbol): \(m)")
        case BNSPEC_REFUSED: return .error("\(symbol) refused (BNSPEC_REFUSED): \(m)")
        case BNSPEC_FAILED: return .error("\(symbol) failed (BNSPEC_FAILED): \(m)")
        default: throw HostFailure(message: "\(symbol) returned \(st.code), not a bnspec_kernel.h return code, on case \(r.id)\(m.isEmpty ? "" : " (its message: \(m))")")
        }
    }
}
