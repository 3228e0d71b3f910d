import BNCore
import CBNKernels

// How the fused kernels cut their work and call the memory passes of CBNKernels (C,
// compiled per instruction-set level; the arithmetic contract is in CBNKernels.h).
// Nothing here changes a value: the cut decides only which thread computes what, and
// when; each channel's sums always add the same terms in the same order.

extension StorageElement {
    /// The CBNKernels code of this storage format.
    static var storageCode: Int32 {
        switch dtype {
        case .f16: Int32(BN_STORAGE_F16)
        case .bf16: Int32(BN_STORAGE_BF16)
        default: Int32(BN_STORAGE_F32)
        }
    }
}

/// The memory passes for one storage format at one instruction-set level.
struct Passes {
    let table: bn_passes

    init<S: StorageElement>(_: S.Type, isa: KernelISA) {
        table = bn_passes_get(Int32(min(isa, .supported).rawValue), S.storageCode).pointee
    }

    /// One storage value widened (exactly) as the passes widen it.
    func widen<S: StorageElement>(_ p: UnsafePointer<S>) -> Double {
        var f: Float = 0
        table.widen(p, &f, 1)
        return Double(f)
    }
}

/// A per-channel result (μ, σ², running statistics, dγ, dβ) rounded once to Float; a
/// NaN becomes the canonical quiet NaN, as the passes' outputs do (which NaN payload a
/// sum of several NaNs carries depends on instruction order, CBNKernels `narrow`).
@inline(__always) func statistic(_ v: Double) -> Float { v.isNaN ? .nan : Float(v) }

/// Per-channel Double arrays of one kernel call: pivots, and the coefficients of the
/// output pass (y = (x − mean)·scale + shift, or dx = a·dy + b + k·(x − mean)).
struct ChannelWorkspace {
    let pivot, mean, scale, shift, b, k: UnsafeMutablePointer<Double>
    private let base: UnsafeMutablePointer<Double>

    init(channels C: Int) {
        base = .allocate(capacity: 6 * C)
        base.initialize(repeating: 0, count: 6 * C)
        pivot = base; mean = base + C; scale = base + 2 * C; shift = base + 3 * C; b = base + 4 * C; k = base + 5 * C
    }

    func deallocate() { base.deallocate() }
}

/// Whether outputs are written with non-temporal stores: when the output tensor is
/// larger than ``streamingBytes`` (it could not stay in cache anyway).
func streams<S: StorageElement>(_ shape: Shape, _: S.Type) -> Bool {
    shape.elementCount * MemoryLayout<S>.stride > streamingBytes
}

/// 32 MiB: the last-level cache of the machines this was measured on (like glibc's
/// memcpy, which switches to non-temporal stores above a fraction of that size).
public let streamingBytes = 32 << 20

/// How an NCHW call is cut: `size` adjacent channels per work item, `groups` items,
/// run on `threads` threads (each a contiguous range of items).
///
/// A group's statistics pass reads its channels' runs (sample by sample, in memory
/// order); its output pass then re-reads them while they are still in this core's L2
/// cache, so x (and dy) comes from memory once. Groups are therefore sized to half the
/// L2 (``groupBudgetBytes``), and made small enough that every thread gets one.
/// A channel larger than the budget is still one group: its second read then comes
/// from L3 or memory.
struct ChannelGroups {
    let size: Int, groups: Int, threads: Int

    init(_ shape: Shape, bytesPerValue: Int, threads: Int) {
        let C = shape.channels
        self.threads = usefulThreads(threads, elements: shape.elementCount, items: C)
        let perChannel = max(1, shape.perChannelCount * bytesPerValue)
        let fit = max(1, groupBudgetBytes / perChannel)
        size = min(fit, (C + self.threads - 1) / self.threads)
        groups = (C + size - 1) / size
    }

    func channels(_ g: Int, of C: Int) -> Range<Int> { (g * size)..<min(C, g * size + size) }
}

/// Bytes of input one NCHW channel group may span: half the L2 cache (the other half
/// holds what the prefetchers bring and the output lines in flight); 512 KiB when the
/// system does not say.
let groupBudgetBytes: Int = {
    let l2 = bn_l2_cache_bytes()
    return l2 > 0 ? l2 / 2 : 512 << 10
}()

/// Scratch of one NCHW statistics call over `channels` channels: the lane accumulators
/// and the four sums per channel (CBNKernels.h, `nchw_sums`).
func withSumsScratch<R>(channels: Int, _ body: (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> R) -> R {
    let acc = channels * 4 * Int(BN_ACC_DOUBLES)
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: acc + 4 * channels) { buf in
        body(buf.baseAddress!, buf.baseAddress! + acc)
    }
}
