import BNCore
import BNGolden
import BNReference

/// Distance in units in the last place between two Doubles, counted along the
/// ordered bit patterns (so it is exact across binades and through subnormals).
/// Equal infinities are 0 apart; NaN against anything is Int.max.
func ulpDistance(_ a: Double, _ b: Double) -> UInt64 {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN ? 0 : .max }
    if a == b { return 0 }
    func ordered(_ x: Double) -> Int64 {
        let bits = Int64(bitPattern: x.bitPattern)
        return bits < 0 ? Int64.min - bits : bits
    }
    let d = ordered(a).subtractingReportingOverflow(ordered(b))
    return d.overflow ? .max : d.partialValue.magnitude
}

/// Random tensor for tests: standard normal × spread + offset.
func randomTensor(_ shape: Shape, seed: String, offset: Double = 0, spread: Double = 1) -> [Double] {
    var r = SpecRandom(seed)
    return (0..<shape.elementCount).map { _ in offset + spread * r.normal() }
}

func shape(_ dims: Int...) -> Shape {
    try! Shape(batch: dims[0], channels: dims[1], spatial: Array(dims.dropFirst(2)))
}

/// The values of channel c, gathered in storage order.
func channelValues(_ x: [Double], _ s: Shape, _ layout: Layout, _ c: Int) -> [Double] {
    var out: [Double] = []
    for seg in layout.segments(channel: c, shape: s) {
        for k in 0..<seg.count { out.append(x[seg.offset + k * seg.stride]) }
    }
    return out
}

func moments(of values: [Double]) -> ChannelMoments {
    values.withUnsafeBufferPointer {
        ChannelMoments.compute($0, segments: [ChannelSegment(offset: 0, stride: 1, count: values.count)])
    }
}
