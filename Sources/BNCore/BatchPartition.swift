/// How one batch of N samples is split across K ranks (devices or processes) for
/// synchronized batch normalization (spec/SPEC.md §11).
///
/// Rank k holds the `counts[k]` consecutive samples that start at sample
/// `offsets[k] = counts[0] + … + counts[k − 1]`; the ranks' tensors concatenated in
/// rank order along N are the global batch. A count may be 0 (an empty rank) and
/// the counts need not be equal. N is the outermost dimension of every layout
/// (NCHW, NHWC, NC), so rank k's elements are one contiguous range of the global
/// tensor (``elementRange(rank:of:)``).
public struct BatchPartition: Hashable, Codable, Sendable, CustomStringConvertible {
    /// Samples per rank, in rank order.
    public let counts: [Int]

    /// - Throws: when there is no rank or a count is negative.
    public init(counts: [Int]) throws {
        guard !counts.isEmpty else { throw BNError.invalidArgument("a partition needs at least one rank") }
        guard counts.allSatisfy({ $0 >= 0 }) else {
            throw BNError.invalidArgument("partition \(counts.map(String.init).joined(separator: "+")) has a negative count")
        }
        var total = 0
        for c in counts {
            let (s, o) = total.addingReportingOverflow(c)
            guard !o else { throw BNError.invalidArgument("partition counts overflow") }
            total = s
        }
        self.counts = counts
    }

    /// Parses `3+1+0+4` or `3,1,0,4` (samples per rank).
    public init(parsing text: String) throws {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "+" || $0 == "," })
        let counts = parts.compactMap { Int($0.trimmingCharacters(in: " ")) }
        guard !parts.isEmpty, counts.count == parts.count else {
            throw BNError.invalidArgument("partition '\(text)' is not a list of sample counts such as 3+1+0+4")
        }
        try self.init(counts: counts)
    }

    /// `ranks` ranks over `batch` samples, as even as possible: the first
    /// `batch mod ranks` ranks hold one sample more.
    public static func even(batch: Int, ranks: Int) throws -> BatchPartition {
        guard ranks >= 1, batch >= 0 else {
            throw BNError.invalidArgument("an even partition needs ranks ≥ 1 and batch ≥ 0 (got \(ranks), \(batch))")
        }
        return try BatchPartition(counts: (0..<ranks).map { batch / ranks + ($0 < batch % ranks ? 1 : 0) })
    }

    /// K, the number of ranks (empty ones included).
    public var ranks: Int { counts.count }
    /// N, the global batch: the sum of the counts.
    public var batch: Int { counts.reduce(0, +) }
    /// First sample of each rank in the global batch.
    public var offsets: [Int] {
        var o = 0
        return counts.map { c in defer { o += c }; return o }
    }

    /// Throws unless the counts add up to `shape.batch`.
    public func validate(for shape: Shape) throws {
        guard batch == shape.batch else {
            throw BNError.invalidArgument("partition \(self) holds \(batch) samples but the batch has \(shape.batch)")
        }
    }

    /// Rank k's own shape: `counts[k]` samples, the global channels and spatial dimensions.
    public func shape(rank k: Int, of shape: Shape) -> Shape {
        var s = shape
        s.batch = counts[k]
        return s
    }

    /// Rank k's elements in the global tensor (any layout: N is outermost).
    public func elementRange(rank k: Int, of shape: Shape) -> Range<Int> {
        let perSample = shape.channels * shape.spatialSize
        let start = offsets[k] * perSample
        return start..<(start + counts[k] * perSample)
    }

    /// The global tensor cut into the ranks' tensors (rank order; empty arrays for empty ranks).
    public func split<T>(_ global: [T], shape: Shape) -> [[T]] {
        (0..<ranks).map { Array(global[elementRange(rank: $0, of: shape)]) }
    }

    /// `3+1+0+4`.
    public var description: String { counts.map(String.init).joined(separator: "+") }
}
