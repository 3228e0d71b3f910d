import CBNKernels
import Foundation

/// The instruction-set level the fused kernels' memory passes run at, chosen at run
/// time (the package is compiled for the toolchain's default target, with no flags).
///
/// Every level computes the same IEEE-754 operations in the same order, so results are
/// bit-identical whichever runs (`PathEquivalenceTests`); only the speed differs.
///
/// `BNSPEC_CPU` lowers the level for a process: `baseline`, `avx2`, `avx512` or
/// `native` (the default: the best the CPU has). Asking for more than the CPU has gives
/// what it has.
public enum KernelISA: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// The toolchain's default target (x86-64: SSE2, FMA through libm's fma()).
    case baseline = 0
    /// AVX2 + FMA + F16C.
    case avx2 = 1
    /// AVX-512 F/DQ/BW/VL.
    case avx512 = 2

    public static func < (a: KernelISA, b: KernelISA) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self { case .baseline: "baseline"; case .avx2: "avx2"; case .avx512: "avx512" }
    }

    /// The best level this CPU and OS support.
    public static let supported = KernelISA(rawValue: Int(bn_isa_supported())) ?? .baseline

    /// Every level this machine can run, lowest first.
    public static var available: [KernelISA] { allCases.filter { $0 <= supported } }

    /// Parses a `BNSPEC_CPU` value; nil for an unknown word.
    public static func requested(_ word: String) -> KernelISA? {
        switch word.lowercased() {
        case "baseline", "portable": .baseline
        case "avx2": .avx2
        case "avx512", "avx-512": .avx512
        case "native", "": supported
        default: nil
        }
    }

    /// The `BNSPEC_CPU` value when it names no level (the CLI reports it as an error).
    public static var environmentError: String? {
        guard let word = ProcessInfo.processInfo.environment["BNSPEC_CPU"], requested(word) == nil else { return nil }
        return "BNSPEC_CPU=\(word) (expected baseline, avx2, avx512 or native)"
    }

    /// The level the kernels use by default: `BNSPEC_CPU` if set (and known), at most
    /// ``supported``.
    public static let selected: KernelISA = {
        let asked = ProcessInfo.processInfo.environment["BNSPEC_CPU"].flatMap(requested) ?? supported
        return min(asked, supported)
    }()
}
