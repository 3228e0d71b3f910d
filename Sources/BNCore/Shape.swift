/// The logical shape of a BN input: N samples, C channels, and any number of
/// spatial dimensions (none for a linear layer's output).
///
/// BN reduces over everything but the channel: each channel has
/// ``perChannelCount`` = N × ∏ spatial values.
public struct Shape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var batch: Int
    public var channels: Int
    public var spatial: [Int]

    /// Creates a shape after checking that every dimension is positive and the
    /// element count fits in `Int`.
    public init(batch: Int, channels: Int, spatial: [Int] = []) throws {
        self.batch = batch; self.channels = channels; self.spatial = spatial
        try validate()
    }

    /// Parses `N,C[,D1,…]` or `NxCxHxW`; an empty dimension (`2x3x4x`, `2x3xx4`) is an error, not
    /// skipped (an outside red team's: `bench --shape 2x3x4x` ran 2x3x4).
    public init(parsing text: String) throws {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == "x" || $0 == "×" })
        let dims = parts.compactMap { Int($0.trimmingCharacters(in: " ")) }
        guard dims.count == parts.count, dims.count >= 2 else {
            throw BNError.invalidArgument("shape '\(text)' is not N,C[,spatial…] with integer dimensions")
        }
        try self.init(batch: dims[0], channels: dims[1], spatial: Array(dims.dropFirst(2)))
    }

    public func validate() throws {
        guard batch >= 0, channels > 0, spatial.allSatisfy({ $0 >= 0 }) else {
            let what = batch < 0 ? "a negative batch size N" : channels <= 0 ? "a negative or zero channel count C" : "a negative spatial size"
            throw BNError.invalidArgument("shape \(self) has \(what)")
        }
        // The product of the non-zero dimensions bounds every count derived from the shape
        // (spatialSize, perChannelCount, elementCount), even when N or a spatial size is 0
        // (0x3x2⁴⁰x2⁴⁰ has 0 elements, but its spatial size overflows; found by fuzz-catalog).
        var total = 1
        for d in [batch, channels] + spatial {
            let (p, o) = total.multipliedReportingOverflow(by: Swift.max(d, 1))
            guard !o else { throw BNError.invalidArgument("shape \(self) has more elements than fit in memory") }
            total = p
        }
    }

    /// ∏ spatial (1 when there are no spatial dimensions).
    @inlinable public var spatialSize: Int { spatial.reduce(1, *) }
    /// Values per channel that BN reduces over: N × spatialSize.
    @inlinable public var perChannelCount: Int { batch * spatialSize }
    @inlinable public var elementCount: Int { batch * channels * spatialSize }
    /// NCHW-ordered dimension list.
    public var dimensions: [Int] { [batch, channels] + spatial }

    public var description: String { dimensions.map(String.init).joined(separator: "x") }
}

extension StringProtocol {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
