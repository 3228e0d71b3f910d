import BNCore
import CBNKernels

// How the fused kernels cut their work and call the memory passes of CBNKernels (C,
// compiled per instruction-set level; the arithmetic contract is in CBNKernels.h).
// Nothing here changes a value: the cut decides only which thread computes what, and
// when; each channel's sums always add the same terms in the same order.

/// What the memory passes need to know of a storage type: its CBNKernels code and its
/// width in bytes.
@usableFromInline
package struct StorageFormat: Sendable {
    package let code: Int32, bytes: Int

    @inlinable package init<S: StorageElement>(_: S.Type) { self.init(dtype: S.dtype, bytes: MemoryLayout<S>.stride) }

    @usableFromInline package init(dtype: DType, bytes: Int) {
        code = switch dtype {
        case .f16: Int32(BN_STORAGE_F16)
        case .bf16: Int32(BN_STORAGE_BF16)
        default: Int32(BN_STORAGE_F32)
        }
        self.bytes = bytes
    }

    /// Whether outputs are written with non-temporal stores: when the output tensor is
    /// larger than ``streamingBytes`` (it could not stay in cache anyway).
    package func streams(_ shape: Shape) -> Bool { shape.elementCount * bytes > streamingBytes }
}

/// The memory passes for one storage format at one instruction-set level.
package struct Passes {
    package let table: bn_passes, format: StorageFormat

    package init(_ format: StorageFormat, isa: KernelISA) {
        table = bn_passes_get(Int32(min(isa, .supported).rawValue), format.code).pointee
        self.format = format
    }

    package init<S: StorageElement>(_: S.Type, isa: KernelISA) { self.init(StorageFormat(S.self), isa: isa) }

    /// pivot[c] = x[c · stride] widened (exactly) as the passes widen it, c < count.
    package func pivots(_ x: UnsafeRawPointer, stride: Int, count: Int, into pivot: UnsafeMutablePointer<Double>) {
        table.pivots(x, stride, count, pivot)
    }
}

/// A per-channel result (μ, σ², running statistics, dγ, dβ) rounded once to Float; a
/// NaN becomes the canonical quiet NaN, as the passes' outputs do (which NaN payload a
/// sum of several NaNs carries depends on instruction order, CBNKernels `narrow`).
@inline(__always) func statistic(_ v: Double) -> Float { v.isNaN ? .nan : Float(v) }

/// Per-channel Double arrays of one kernel call, in one allocation: pivots, the
/// coefficients of the output pass (y = (x − mean)·scale + shift, or
/// dx = a·dy + b + k·(x − mean)), and for NCHW statistics each channel's lane
/// accumulators and four sums (CBNKernels.h), so that a channel group starting at
/// channel c0 uses `accumulators(c0)` and `sums(c0)` whatever thread runs it; and per
/// channel whether its outputs are NaN-free (``NaNFree``, 1 or 0).
struct ChannelWorkspace {
    package let pivot, mean, scale, shift, b, k: UnsafeMutablePointer<Double>
    package let nanFree: UnsafeMutablePointer<UInt8>
    private let base: UnsafeMutablePointer<Double>, channels: Int

    package init(channels C: Int, statistics: Bool) {
        let count = 6 * C + (statistics ? C * (4 * Int(BN_ACC_DOUBLES) + 4) : 0)
        // One allocation: the doubles (every entry is written before it is read), then the flags.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Double>.stride + max(1, C),
                                                   alignment: MemoryLayout<Double>.alignment)
        base = raw.bindMemory(to: Double.self, capacity: count)
        channels = C
        pivot = base; mean = base + C; scale = base + 2 * C; shift = base + 3 * C; b = base + 4 * C; k = base + 5 * C
        nanFree = (raw + count * MemoryLayout<Double>.stride).bindMemory(to: UInt8.self, capacity: max(1, C))
        nanFree.initialize(repeating: 0, count: max(1, C))
    }

    /// Whether every channel's outputs are NaN-free (the row passes take one flag).
    package func allNaNFree(_ C: Int) -> Int32 { (0..<C).allSatisfy { nanFree[$0] != 0 } ? 1 : 0 }

    package func accumulators(_ c0: Int) -> UnsafeMutablePointer<Double> { base + 6 * channels + c0 * 4 * Int(BN_ACC_DOUBLES) }
    package func sums(_ c0: Int) -> UnsafeMutablePointer<Double> { base + 6 * channels + channels * 4 * Int(BN_ACC_DOUBLES) + 4 * c0 }

    package func deallocate() { UnsafeMutableRawPointer(base).deallocate() }
}

/// 32 MiB: the last-level cache of the machines this was measured on (like glibc's
/// memcpy, which switches to non-temporal stores above a fraction of that size).
public let streamingBytes = 32 << 20

/// How an NCHW call is cut: `size` adjacent channels per work item, `groups` items,
/// run on `threads` threads (each a contiguous range of items).
///
/// Out of cache (tensors larger than ``streamingBytes``), a group's statistics pass
/// reads its channels' runs (sample by sample, in memory order) and its output pass
/// re-reads them while they are still in this core's L2 cache, so x (and dy) comes from
/// memory once. The passes are pipelined: each step (CBNKernels `nchw_forward_step`)
/// writes group g's outputs and reads group g + 1's statistics sample by sample, so
/// memory reads and writes overlap as in memcpy, and about one group is live in cache at
/// a time. Such groups are sized to half the L2 (``groupBudgetBytes``); a channel larger
/// than that is still one group (part of its second read then comes from L3 or memory).
///
/// In cache, one group per thread: both passes then stream the thread's whole channel
/// range from L3, which measured faster than L2-sized groups (`tools/bounds.sh` with
/// BOUNDS_GROUPS: 32×64×28×28 training 1.3× memcpy with one group, 1.5× with 512 KiB
/// groups, 1.9× with 256 KiB; 64×256×56×56: 1.0–1.3× with one-channel groups, 1.2–1.5×
/// with one group — on a busy machine, so ranges; ratios to the memcpy baseline before
/// commit 6daa7dd, whose in-cache copy ran partly out of L3: compare the rows, not the
/// figures with today's bench).
///
/// The grouping never changes a channel's arithmetic (its runs are summed in sample
/// order whatever the group), so results are bit-identical for any thread count.
struct ChannelGroups {
    package let size: Int, groups: Int, threads: Int

    /// `bytesPerValue`: bytes of every tensor the call reads and writes, per element;
    /// `size` imposes the group size (tests: the grouping must not change a bit).
    package init(_ shape: Shape, bytesPerValue: Int, inputBytesPerValue: Int, threads: Int, size imposed: Int? = nil) {
        let C = shape.channels
        self.threads = usefulThreads(threads, elements: shape.elementCount, items: C)
        let perThread = (C + self.threads - 1) / self.threads
        if let imposed {
            size = max(1, min(imposed, C))
        } else if shape.elementCount * bytesPerValue <= streamingBytes {
            size = perThread
        } else {
            let perChannel = max(1, shape.perChannelCount * inputBytesPerValue)
            size = min(max(1, groupBudgetBytes / perChannel), perThread)
        }
        groups = (C + size - 1) / size
    }

    package func channels(_ g: Int, of C: Int) -> Range<Int> { (g * size)..<min(C, g * size + size) }
}

/// Bytes of input one out-of-cache NCHW channel group may span: half the L2 cache (the
/// other half holds the next group's lines as they arrive); 512 KiB when the system does
/// not say.
let groupBudgetBytes: Int = {
    let l2 = bn_l2_cache_bytes()
    return l2 > 0 ? l2 / 2 : 512 << 10
}()
