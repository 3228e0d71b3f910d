import BNCore
import BNKernels

/// A kernel entry point a golden case exercises (a trajectory case: `train` and `infer`).
public enum KernelEntry: String, CaseIterable, Sendable {
    case train, infer, backwardTrain = "backward-train", backwardInfer = "backward-infer"
    case syncTrain = "sync-train", syncBackward = "sync-backward"
    case hvpTrain = "hvp-train", hvpInfer = "hvp-infer", d2Train = "d2-train", d3Train = "d3-train"
}

/// Where a calibration mutant's code departs from the honest computation: the entry points whose
/// code the mutation changes, the layouts and compute types it changes them for. On any other case
/// the mutant computes exactly what the honest loops compute (same operations, same order), so no
/// case can tell it apart there: `bnspec verify` skips it with ``skipReason(entries:layout:dtype:)``.
/// Declared per mutation, next to it (``CalibrationKernel/Mutation/reach``,
/// ``HigherOrderCalibrationKernel/Mutation/reach``); a mutation that could differ anywhere
/// declares every entry point it implements.
public struct MutationReach: Sendable, Equatable {
    /// The entry points whose code the mutation changes.
    public var entries: Set<KernelEntry>
    /// The layouts it changes them for; nil: every layout.
    public var layouts: Set<Layout>? = nil
    /// It changes only float32 compute (float32, float16 and bfloat16 storage), not float64.
    public var floatComputeOnly = false
    /// Where the change is, for the skip reason ("the batch statistics").
    public var what: String

    public init(_ entries: Set<KernelEntry>, layouts: Set<Layout>? = nil, floatComputeOnly: Bool = false, what: String) {
        self.entries = entries; self.layouts = layouts; self.floatComputeOnly = floatComputeOnly; self.what = what
    }

    /// Nil when the mutant's code differs from the honest computation on a case that exercises
    /// `entries` in `layout` and `dtype`; else the one-line reason it cannot.
    public func skipReason(entries used: Set<KernelEntry>, layout: Layout, dtype: DType) -> String? {
        let order = KernelEntry.allCases
        func names(_ s: Set<KernelEntry>) -> String { order.filter(s.contains).map(\.rawValue).joined(separator: ", ") }
        var only = names(entries)
        if let l = layouts { only += " in " + Layout.allCases.filter(l.contains).map(\.rawValue).joined(separator: "/") }
        if floatComputeOnly { only += " with float32 compute" }
        let reason = "cannot be caught here: the mutation changes only \(what) of \(only)"
        if entries.isDisjoint(with: used) { return reason }
        if let l = layouts, !l.contains(layout) { return reason }
        if floatComputeOnly && dtype == .f64 { return reason }
        return nil
    }
}

/// A calibration kernel that declares the entry points it implements and where its bug can show
/// (``MutationReach``; nil for an honest one, which runs on every case it implements).
public protocol ReachDeclaring: BatchNormKernel {
    var implemented: Set<KernelEntry> { get }
    var reach: MutationReach? { get }
}

extension CalibrationKernel: ReachDeclaring {
    public var implemented: Set<KernelEntry> {
        Set([.train, .infer, .backwardTrain, .backwardInfer] + (runsSynchronized ? [.syncTrain, .syncBackward] : []))
    }
    public var reach: MutationReach? { mutation.reach }
}

extension HigherOrderCalibrationKernel: ReachDeclaring {
    public var implemented: Set<KernelEntry> { [.hvpTrain, .hvpInfer, .d2Train, .d3Train] }
    public var reach: MutationReach? { mutation.reach }
}

extension CalibrationKernel.Mutation {
    /// Where this mutation's code departs from the honest loops of ``CalibrationKernel`` (read off
    /// the `mutation ==` tests in its loops); nil for the honest ``foldedInference``. The
    /// synchronized bugs compute the single-device operations honestly; the single-device
    /// kernels do not run the synchronized ones at all (skipped as unsupported).
    /// `nan-to-zero` can differ on every case: finite inputs can overflow to a NaN output.
    public var reach: MutationReach? {
        let all: Set<KernelEntry> = [.train, .infer, .backwardTrain, .backwardInfer]
        switch self {
        case .foldedInference: return nil
        case .onePassVariance: return MutationReach([.train, .backwardTrain], what: "the batch statistics")
        case .epsOutsideSqrt: return MutationReach(all, what: "1/√(σ² + ε)")
        case .unbiasedNormalization: return MutationReach([.train], what: "the variance the forward normalises with")
        case .momentumSwapped: return MutationReach([.train], what: "the running-statistics update")
        case .wrongRunningEstimator: return MutationReach([.train], what: "the running-statistics update")
        case .runningNotUpdated: return MutationReach([.train], what: "the running-statistics update")
        case .perSampleStatistics: return MutationReach([.train], what: "the statistics the forward normalises with")
        case .gammaBetaSwapped: return MutationReach([.train, .infer], what: "the forward's γ and β")
        case .channelsLastOffByOne:
            return MutationReach([.train, .infer], layouts: Set(Layout.allCases.filter { $0 != .nchw }), what: "the forward's channel indexing")
        case .backwardMissingMeanTerm, .backwardMissingXhatTerm: return MutationReach([.backwardTrain], what: "dx")
        case .inferenceUsesBatchStatistics: return MutationReach([.infer], what: "the statistics inference normalises with")
        case .fp16Accumulation: return MutationReach([.train, .backwardTrain], floatComputeOnly: true, what: "Σx of the batch statistics")
        case .nanToZero: return MutationReach(all, what: "NaN outputs")
        case .syncUnweightedMean, .syncNoBetweenTerm: return MutationReach([.syncTrain, .syncBackward], what: "the exchanged statistics")
        case .syncLocalBessel: return MutationReach([.syncTrain], what: "the running variance")
        case .syncUnsynchronizedDx: return MutationReach([.syncBackward], what: "the all-reduce of the backward sums")
        }
    }
}

extension HigherOrderCalibrationKernel.Mutation {
    /// Where this mutation's closed form departs from the honest one (``HigherOrderClosedForm``):
    /// only the higher-order operations; the statistics variations not `hvp-infer`, whose
    /// statistics are given constants (``HigherOrderClosedForm/hvpInference``).
    public var reach: MutationReach {
        switch self {
        case .constantStatistics: MutationReach([.hvpTrain, .d2Train, .d3Train], what: "the derivatives of the batch statistics")
        case .rPrimeSign: MutationReach([.hvpTrain, .d2Train, .d3Train], what: "the derivative of 1/√(σ² + ε)")
        case .missingGammaXCross: MutationReach([.hvpTrain, .hvpInfer, .d2Train, .d3Train], what: "the γ–x cross terms")
        }
    }
}
