/// How a BN tensor's elements are ordered in memory.
///
/// - `nchw`: batch, channel, then the spatial dimensions (channel-first; any
///   number of spatial dimensions, including none).
/// - `nhwc`: batch, the spatial dimensions, then channel (channels-last).
/// - `nc`: batch, channel — the output of a linear layer; no spatial dims.
public enum Layout: String, CaseIterable, Codable, Sendable {
    case nchw = "NCHW"
    case nhwc = "NHWC"
    case nc = "NC"

    public init(parsing text: String) throws {
        guard let l = Layout(rawValue: text.uppercased()) else {
            throw BNError.invalidArgument("unknown layout '\(text)' (expected NCHW, NHWC or NC)")
        }
        self = l
    }
}

/// A strided run of one channel's elements: `count` values at
/// `offset, offset + stride, …` — GSL's `(data, stride, n)` triple.
public struct ChannelSegment: Equatable, Sendable {
    public var offset: Int
    public var stride: Int
    public var count: Int
    @inlinable public init(offset: Int, stride: Int, count: Int) {
        self.offset = offset; self.stride = stride; self.count = count
    }
}

extension Layout {
    /// The memory runs that hold channel `c`, in storage order.
    ///
    /// NCHW: one contiguous run of the spatial size per sample (N runs).
    /// NHWC and NC: one run of N × spatial values with stride C.
    /// Walking the runs in order visits memory linearly.
    @inlinable
    public func segments(channel c: Int, shape: Shape) -> [ChannelSegment] {
        let s = shape.spatialSize, C = shape.channels
        switch self {
        case .nchw:
            return (0..<shape.batch).map { ChannelSegment(offset: ($0 * C + c) * s, stride: 1, count: s) }
        case .nhwc, .nc:
            return [ChannelSegment(offset: c, stride: C, count: shape.batch * s)]
        }
    }

    /// Linear index of element (n, c, s) where s is the flattened spatial index.
    @inlinable
    public func index(n: Int, c: Int, s: Int, shape: Shape) -> Int {
        switch self {
        case .nchw: return (n * shape.channels + c) * shape.spatialSize + s
        case .nhwc, .nc: return (n * shape.spatialSize + s) * shape.channels + c
        }
    }

    /// The layout-specific shape (outer to inner) as an NPY file stores it.
    public func storageDimensions(_ shape: Shape) -> [Int] {
        switch self {
        case .nchw: return [shape.batch, shape.channels] + shape.spatial
        case .nhwc: return [shape.batch] + shape.spatial + [shape.channels]
        case .nc: return [shape.batch, shape.channels]
        }
    }
}

extension Array {
    /// Reorders a tensor from one layout to another (same logical shape).
    public func relayout(_ shape: Shape, from: Layout, to: Layout) -> [Element] {
        if from == to || shape.spatialSize == 1 && from != .nchw && to != .nchw { return self }
        var out = self
        for n in 0..<shape.batch {
            for c in 0..<shape.channels {
                for s in 0..<shape.spatialSize {
                    out[to.index(n: n, c: c, s: s, shape: shape)] = self[from.index(n: n, c: c, s: s, shape: shape)]
                }
            }
        }
        return out
    }
}
