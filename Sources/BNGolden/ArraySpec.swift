import BNCore

/// One array of a golden case: an input an implementation receives or an output it returns.
///
/// An operation's arrays are data (``Operation/arrays``), and everything that depends on them is
/// derived from that table: the case JSON's `inputs`/`outputs`, the generator's files, the checks
/// at load (length and NPY dtype of every array), the judge's storage rounding, the decoding of
/// returned bfloat16 outputs, the outputs an audit requires and the dtypes sent to an adapter.
public struct ArraySpec: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable {
        case input, output
    }

    /// The element type an implementation receives (input) or returns (output). Golden expected
    /// outputs are always float64 (``goldenDType(in:)``).
    public enum Element: String, Sendable, Hashable {
        /// The case's storage dtype (x, dy, y, dx): float64, float32, float16 or bfloat16.
        case storage
        /// The parameter dtype: float32, or float64 in a float64 case (γ, β, statistics).
        case parameter
    }

    /// How many values the array holds, and its NPY shape.
    public enum Extent: String, Sendable, Hashable {
        /// One value per tensor element, in the case's layout: N, C, spatial… (layout order).
        case tensor
        /// One value per channel: [C].
        case channels
        /// A trajectory's batches stacked: [steps] + the tensor's dimensions.
        case stepsTensor
        /// One value per channel after every step: [steps, C].
        case stepsChannels
        /// dγ or dβ of a synchronized backward (spec/SPEC.md §11.3): one row of C values per rank,
        /// [K, C] in rank order, under the case's `local` gradient reduction; one row, [C], under
        /// `global` (``CaseSpec/gradientRows``).
        case gradientRows
    }

    /// How the generator makes an input (spec/SPEC.md §6).
    public enum Source: Sendable, Hashable {
        /// Values of the case's data family (``DataFamily/fill(_:shape:layout:dtype:seed:)``) from the
        /// stream `"<id>/<stream>"`; a steps × tensor array takes `stream`, then `stream1`, `stream2`, …
        case data(stream: String)
        /// γ and β: ``DataFamily/parameters(channels:seed:dtype:family:)``, stream `"<id>/params"`.
        case gamma, beta
        /// Initial running statistics: ``DataFamily/runningStatistics(channels:seed:dtype:)``, stream `"<id>/running"`.
        case runningMean, runningVariance
        /// Inference statistics near the data's own (μ + 0.1·σ·N, σ²·U[0.5, 1.5)), stream `"<id>/global"`.
        case globalMean, globalVariance
        /// The upstream gradient dy: N(0, 1) rounded to the storage dtype, stream `"<id>/dy"`.
        case upstreamGradient
        /// A component of a derivative's direction (spec §12: v_x, v_gamma, v_beta, w_…): N(0, 1)
        /// rounded to the array's dtype, one value per element of its extent, stream `"<id>/<stream>"`.
        case direction(stream: String)
    }

    /// Logical name (the key in case.json's `inputs`/`outputs`, the adapter's output name).
    public var name: String
    /// File name in the case folder.
    public var file: String
    public var role: Role
    public var element: Element
    public var extent: Extent
    /// How the generator makes it (inputs); nil for outputs.
    public var source: Source?
    /// Whether an audit fails a case whose implementation does not return it (outputs; the others
    /// are judged when returned). Always false for inputs.
    public var requiredInAudit: Bool

    /// An input the generator makes from `source`.
    public static func input(_ name: String, file: String? = nil, _ element: Element, _ extent: Extent, from source: Source) -> ArraySpec {
        ArraySpec(name: name, file: file ?? "\(name).npy", role: .input, element: element, extent: extent, source: source,
                  requiredInAudit: false)
    }

    /// An output the reference computes, stored as `expected_<name>.npy` (float64).
    public static func output(_ name: String, _ element: Element, _ extent: Extent, requiredInAudit: Bool = true) -> ArraySpec {
        ArraySpec(name: name, file: "expected_\(name).npy", role: .output, element: element, extent: extent, source: nil,
                  requiredInAudit: requiredInAudit)
    }

    /// The dtype an implementation receives or returns in `spec`.
    public func dtype(in spec: CaseSpec) -> DType {
        element == .storage ? spec.dtype : spec.parameterDType
    }

    /// The dtype of the golden file: the input's own, float64 for an expected output.
    public func goldenDType(in spec: CaseSpec) -> DType {
        role == .input ? dtype(in: spec) : .f64
    }

    /// The NPY shape of the array in `spec` (logical `shape`, the case's layout and steps).
    public func dimensions(in spec: CaseSpec, shape: Shape) -> [Int] {
        switch extent {
        case .tensor: spec.layout.storageDimensions(shape)
        case .channels: [shape.channels]
        case .stepsTensor: [spec.steps] + spec.layout.storageDimensions(shape)
        case .stepsChannels: [spec.steps, shape.channels]
        case .gradientRows: spec.gradientRows == 1 ? [shape.channels] : [spec.gradientRows, shape.channels]
        }
    }

    /// The number of values the array holds in `spec`.
    public func count(in spec: CaseSpec, shape: Shape) -> Int {
        switch extent {
        case .tensor: shape.elementCount
        case .channels: shape.channels
        case .stepsTensor: spec.steps * shape.elementCount
        case .stepsChannels: spec.steps * shape.channels
        case .gradientRows: spec.gradientRows * shape.channels
        }
    }

    /// Whether a returned NPY file holds bfloat16 bit patterns (`<u2`): storage outputs of a bfloat16 case.
    public func isBFloat16(in spec: CaseSpec) -> Bool { dtype(in: spec) == .bf16 }
}
