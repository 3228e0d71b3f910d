import BNCore

extension ArraySpec {
    /// The logical coordinates of the element at flat (C-order, storage) index `index` of this
    /// array in `spec`, named: `n=1, c=2, h=0, w=3` for a tensor in any layout (NHWC and NC are
    /// turned back into the logical order n, c, spatial…), `c=2` for a per-channel array, with a
    /// leading `step=k` (1-based) for a trajectory's stacked arrays. Nil when out of range.
    public func coordinates(ofFlat index: Int, in spec: CaseSpec) -> String? {
        guard let s = try? spec.shapeValue(), index >= 0, index < count(in: spec, shape: s) else { return nil }
        let per = extent == .stepsTensor ? s.elementCount : (extent == .stepsChannels ? s.channels : Int.max)
        let step = extent == .stepsTensor || extent == .stepsChannels ? "step=\(index / per + 1), " : ""
        let i = extent == .stepsTensor || extent == .stepsChannels ? index % per : index
        switch extent {
        case .channels, .stepsChannels:
            return "\(step)c=\(i)"
        case .gradientRows:  // [K, C] rows per rank (local reduction) or [C] (global)
            return spec.gradientRows == 1 ? "c=\(i)" : "rank=\(i / s.channels), c=\(i % s.channels)"
        case .tensor, .stepsTensor:
            let dims = spec.layout.storageDimensions(s)
            var rest = i, storage = [Int](repeating: 0, count: dims.count)
            for d in dims.indices.reversed() { storage[d] = rest % dims[d]; rest /= dims[d] }
            // Logical order: n, c, spatial…
            let logical: [Int]
            switch spec.layout {
            case .nchw, .nc: logical = storage
            case .nhwc: logical = [storage[0], storage[storage.count - 1]] + storage[1..<(storage.count - 1)]
            }
            let spatialNames = [[], ["h"], ["h", "w"], ["d", "h", "w"]]
            let names = ["n", "c"] + (s.spatial.count < spatialNames.count ? spatialNames[s.spatial.count]
                                                                            : s.spatial.indices.map { "s\($0)" })
            return step + zip(names, logical).map { "\($0)=\($1)" }.joined(separator: ", ")
        }
    }
}
