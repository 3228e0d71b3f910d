import BNCore
import Foundation

/// The case catalog: a plain text file (spec/catalog.txt) that lists golden cases.
///
/// Format, one directive per line (`#` starts a comment):
///
///     suite NAME                       — following lines belong to suite NAME
///     OP key=value key=value …         — OP is an ``Operation`` (train, infer, backward-train,
///                                        backward-infer, trajectory, epoch, sync-train, sync-backward,
///                                        hvp-train, hvp-infer, d2-train, d3-train)
///
/// A value with commas expands: the line stands for the cartesian product of its
/// lists. Keys: `shape` (N x C [x spatial…]), `layout` (NCHW, NHWC, NC), `dtype`
/// (f32, f16, bf16, f64), `data` (a family, spec/SPEC.md §6), `profile`, `eps`
/// (a number or `default`), `momentum` (a number, `default` or `cumulative`), `steps`; for the
/// synchronized operations (spec/SPEC.md §11) `partition` (samples per rank, `3+1+0+4`) or
/// `ranks` (K ranks, the batch split as evenly as possible: ``BNCore/BatchPartition/even(batch:ranks:)``),
/// and for sync-backward `grad_reduction` (`local`, `global`); for an epoch `batches` (samples
/// per batch in step order, `3+3+1`: its steps).
/// Omitted keys take: layout=NCHW dtype=f32 data=normal profile=pytorch
/// eps=default momentum=default steps=1, ranks=2 and grad_reduction=local.
public struct Catalog: Sendable {
    public var cases: [String: [CaseSpec]]  // suite → cases, in file order

    public static let defaultSuite = "default"

    public static func parse(_ text: String, source: String = "catalog") throws -> Catalog {
        var suites: [String: [CaseSpec]] = [:]
        var seen = Set<String>()
        var suite = defaultSuite
        for (number, raw) in text.components(separatedBy: "\n").enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            let words = line.split(separator: " ").map(String.init)
            let where_ = "\(source):\(number + 1)"
            if words[0] == "suite" {
                guard words.count == 2 else { throw BNError.corrupt(path: where_, reason: "'suite' takes one name") }
                suite = words[1]; continue
            }
            guard let op = Operation(rawValue: words[0]) else {
                throw BNError.corrupt(path: where_, reason: "unknown operation '\(words[0])'")
            }
            var fields: [(String, [String])] = []
            for w in words.dropFirst() {
                let kv = w.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, !kv[1].isEmpty else { throw BNError.corrupt(path: where_, reason: "expected key=value, got '\(w)'") }
                guard Self.keys.contains(kv[0]) else {
                    throw BNError.corrupt(path: where_, reason: "unknown key '\(kv[0])' (known: \(Self.keys.sorted().joined(separator: ", ")))")
                }
                // A repeated key would trap Dictionary(uniqueKeysWithValues:) below (found by fuzz-catalog).
                guard !fields.contains(where: { $0.0 == kv[0] }) else {
                    throw BNError.corrupt(path: where_, reason: "key '\(kv[0])' given twice")
                }
                fields.append((kv[0], kv[1].split(separator: ",").map(String.init)))
            }
            for combo in product(fields) {
                let spec: CaseSpec
                do { spec = try makeCase(op, Dictionary(uniqueKeysWithValues: combo)) } catch let e as BNError {
                    throw BNError.corrupt(path: where_, reason: e.reason)
                }
                guard seen.insert(spec.id).inserted else {
                    throw BNError.corrupt(path: where_, reason: "case \(spec.id) is listed twice")
                }
                suites[suite, default: []].append(spec)
            }
        }
        return Catalog(cases: suites)
    }

    static let keys: Set<String> = ["shape", "layout", "dtype", "data", "profile", "eps", "momentum", "steps", "partition", "ranks",
                                    "grad_reduction", "batches"]

    static func product(_ fields: [(String, [String])]) -> [[(String, String)]] {
        fields.reduce([[]]) { acc, f in acc.flatMap { prefix in f.1.map { prefix + [(f.0, $0)] } } }
    }

    /// Builds a case from one combination of catalog values.
    public static func makeCase(_ op: Operation, _ f: [String: String]) throws -> CaseSpec {
        let shape = try Shape(parsing: f["shape"] ?? "4x3x5x5")
        let layout = try Layout(parsing: f["layout"] ?? (shape.spatial.isEmpty ? "NC" : "NCHW"))
        if layout == .nc && !shape.spatial.isEmpty { throw BNError.invalidArgument("layout NC takes no spatial dims") }
        let dtype = try DType(parsing: f["dtype"] ?? "f32")
        let data = f["data"] ?? "normal"
        try DataFamily.validate(data, dtype: dtype)
        try DataFamily.validate(data, for: op)
        let profile = try ConventionProfile.named(f["profile"] ?? "pytorch")
        let eps: Double
        switch f["eps"] ?? "default" {
        case "default": eps = profile.defaultEps
        case let t:
            guard let v = Double(t), v >= 0, v.isFinite else { throw BNError.invalidArgument("eps '\(t)' must be a number ≥ 0") }
            eps = v
        }
        let momentum: Double?
        switch f["momentum"] ?? "default" {
        case "default": momentum = profile.defaultMomentum
        case "cumulative": momentum = nil
        case let t:
            guard let v = Double(t), v >= 0, v <= 1 else { throw BNError.invalidArgument("momentum '\(t)' must be in [0, 1]") }
            momentum = v
        }
        guard var steps = Int(f["steps"] ?? "1"), steps >= 1, steps <= 1000 else {
            throw BNError.invalidArgument("steps must be an integer in 1…1000")
        }
        try CaseSpec.checkCaseLimits(shape, steps: op.stacksSteps ? steps : 1)
        var (partition, reduction) = try synchronization(op, f, shape: shape)
        if op == .epoch {
            partition = try epochBatches(f, shape: shape)
            steps = partition!.ranks
        }
        let id = CaseSpec.canonicalID(op: op, data: data, shape: shape.description, layout: layout, dtype: dtype, profile: profile.name,
                                      eps: eps, momentum: momentum, steps: steps, partition: partition?.description, reduction: reduction)
        try GoldenStore.checkCaseID(id)
        return CaseSpec(id: id, op: op, shape: shape, layout: layout, dtype: dtype, data: data, profile: profile, eps: eps,
                        batchWeight: momentum.map(profile.momentumWeighting.batchWeight(momentum:)), momentum: momentum,
                        steps: steps, partition: partition, gradReduction: reduction, repro: "bnspec verify --case \(id)")
    }

    /// The partition (`partition=3+1+0+4`, or `ranks=K`: an even split; default 2 ranks) and the
    /// gradient reduction (`grad_reduction=local|global`, default local, sync-backward only) of a
    /// synchronized case; none for the other operations, which refuse these keys.
    static func synchronization(_ op: Operation, _ f: [String: String], shape: Shape) throws -> (BatchPartition?, GradientReduction?) {
        if op != .epoch, f["batches"] != nil { throw BNError.invalidArgument("key 'batches' applies to epoch only") }
        guard op.isSynchronized else {
            for k in ["partition", "ranks", "grad_reduction"] where f[k] != nil {
                throw BNError.invalidArgument("key '\(k)' applies to sync-train and sync-backward only")
            }
            return (nil, nil)
        }
        let partition: BatchPartition
        switch (f["partition"], f["ranks"]) {
        case (let text?, nil): partition = try BatchPartition(parsing: text)
        case (nil, let k):
            guard let ranks = Int(k ?? "2"), (1...CaseSpec.maxRanks).contains(ranks) else {
                throw BNError.invalidArgument("ranks must be an integer in 1…\(CaseSpec.maxRanks)")
            }
            partition = try BatchPartition.even(batch: shape.batch, ranks: ranks)
        default: throw BNError.invalidArgument("give either partition or ranks, not both")
        }
        guard partition.ranks <= CaseSpec.maxRanks else { throw BNError.invalidArgument("a partition has at most \(CaseSpec.maxRanks) ranks") }
        try partition.validate(for: shape)
        guard op.outputs.contains(where: { $0.extent == .gradientRows }) else {
            if f["grad_reduction"] != nil { throw BNError.invalidArgument("key 'grad_reduction' applies to sync-backward only") }
            return (partition, nil)
        }
        guard let reduction = GradientReduction(rawValue: f["grad_reduction"] ?? "local") else {
            throw BNError.invalidArgument("grad_reduction must be local or global")
        }
        return (partition, reduction)
    }

    /// An epoch's batches, `batches=3+3+1` (samples per batch, in step order; they add up to N):
    /// required, and `steps` is their count.
    static func epochBatches(_ f: [String: String], shape: Shape) throws -> BatchPartition {
        guard let text = f["batches"] else { throw BNError.invalidArgument("an epoch needs batches=… (samples per batch, such as 3+3+1)") }
        let batches = try BatchPartition(parsing: text)
        try CaseSpec.checkEpoch(batches, shape: shape)
        if let s = f["steps"], Int(s) != batches.ranks {
            throw BNError.invalidArgument("an epoch's steps are its batches (\(batches.ranks)), not \(s)")
        }
        return batches
    }

    public static func load(_ url: URL) throws -> Catalog {
        let data = try FileRead.data(url, limit: FileRead.textLimit)
        guard let text = String(data: data, encoding: .utf8) else {
            throw BNError.corrupt(path: url.path, reason: "the catalog is not UTF-8 text")
        }
        return try parse(text, source: url.lastPathComponent)
    }
}
