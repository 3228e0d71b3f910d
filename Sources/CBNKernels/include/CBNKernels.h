#ifndef CBNKERNELS_H
#define CBNKERNELS_H

// The memory passes of BNSpec's fused batch normalization (spec/SPEC.md §9), in C so
// that one source can be compiled for several instruction sets in one binary and the
// best one chosen at run time — without any compiler flag in Package.swift.
//
// Each pass exists for three instruction-set levels (BN_ISA_*) and three storage
// formats (BN_STORAGE_*). All nine variants are compiled from the same source
// (passes_template.h) and perform the same IEEE-754 binary64 operations in the same order:
// exact widening, subtraction, addition and fused multiply-add (explicit; contraction
// of a·b + c is off), one rounding to float32 (and one more to the 16-bit format).
// Their results are therefore bit-identical; `PathEquivalenceTests` checks it.
//
// Layout vocabulary: an NCHW tensor is N·C *runs* of HW contiguous values (run
// r = b·C + c belongs to channel c); an NHWC/NC tensor is `rows` rows of C values.

/// Instruction-set levels. Higher levels are used only when the CPU and OS support them.
enum {
    BN_ISA_BASELINE = 0,  ///< the compiler's default target (x86-64: SSE2; fma() from libm)
    BN_ISA_AVX2 = 1,      ///< AVX2 + FMA + F16C
    BN_ISA_AVX512 = 2,    ///< AVX-512 F/DQ/BW/VL (+ AVX2, FMA, F16C)
};

/// Storage formats of x, y, dy, dx.
enum {
    BN_STORAGE_F32 = 0,   ///< float
    BN_STORAGE_F16 = 1,   ///< IEEE binary16 bits (uint16), round to nearest even
    BN_STORAGE_BF16 = 2,  ///< bfloat16 bits (uint16), round to nearest even
};

/// Accumulator doubles per sum and channel that the NCHW steps need as scratch.
#define BN_ACC_DOUBLES 17

/// Values of each tensor per tile of the NHWC/NC output passes in cache (8 KiB of
/// float32: a tile of x, dy and dx stays in L1).
#define BN_TILE_ELEMENTS 2048
/// Values of each tensor per tile of the NHWC/NC statistics (32 KiB of float32: x and
/// dy of a tile stay in L2). A column chunk loads its sums (up to 40 vectors with dy,
/// more than the registers) once per tile and stores them once, so a longer tile spends
/// less on them; the row order of every channel's sum is the same for any tile.
#define BN_SUMS_TILE_ELEMENTS 8192

// `nan_free` (the output passes of training and backward): channels whose outputs the
// caller has proven cannot be NaN — every x (and masked d) of the channel finite, and its
// coefficients finite with |mean| ≤ 2^1000 (FusedBatchNorm+NaNFree.swift) — skip the NaN
// test of each output. It is the identity there, so the bits are the same either way;
// NULL or 0 tests every output.

/// One instruction-set level × storage format: the passes. Pointer arguments typed
/// `void *` point to elements of the storage format. Per-channel arrays (`pivot`,
/// `mean`, `scale`, …) have C entries, indexed by channel.
typedef struct bn_passes {
    /// One step of an NCHW training forward pass, pipelined over channel groups: for each
    /// sample b in order, first the output pass over channels [a0, a1) —
    /// y = fma(x − mean[c], scale[c], shift[c]) in double, rounded once to float (and to
    /// storage), negative results +0 with `relu`, non-temporal stores where aligned with
    /// `stream` (same values), channel c NaN-free when nan_free && nan_free[c] — then the
    /// statistics of channels [s0, s1): with
    /// u = x − pivot[c], out[4(c − s0) + 0..1] = Σu, Σu² (2..3: 0). Either range may be
    /// empty. Lane order of the sums, fixed: each run adds u[i] for i < 16·⌊HW/16⌋ into
    /// lane i mod 16, then 8 more (if present) into lanes 0–7, then the rest one by one into
    /// a tail; lanes persist across the channel's runs; the result is
    /// tree(lanes 0–7 + lanes 8–15) + tail, tree(v) = ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)).
    /// `acc`: scratch of (s1 − s0) · 4 · BN_ACC_DOUBLES doubles.
    void (*nchw_forward_step)(const void *x, void *y, long N, long C, long HW, long a0, long a1, const double *mean,
                              const double *scale, const double *shift, int relu, int stream, const unsigned char *nan_free,
                              long s0, long s1, const double *pivot, double *acc, double *out);
    /// The same for backward: dx = fma(k[c], x − mean[c], fma(a[c], d, b[c])) over channels
    /// [a0, a1), d = dy (0 where mask ≤ 0 when `mask` is given; `nan_free` as above); then
    /// the sums of channels [s0, s1): Σu, Σu², Σd, Σd·u.
    void (*nchw_backward_step)(const void *x, const void *dy, const void *mask, void *dx, long N, long C, long HW, long a0,
                               long a1, const double *mean, const double *a, const double *b, const double *k, int stream,
                               const unsigned char *nan_free, long s0, long s1, const double *pivot, double *acc, double *out);
    /// The output pass of `nchw_forward_step` over the runs [r0, r1) in memory order (run r:
    /// channel r mod C): inference.
    void (*runs_apply)(const void *x, void *y, long C, long HW, long r0, long r1, const double *mean,
                       const double *scale, const double *shift, int relu, int stream);
    /// Rows [r0, r1) of an NHWC/NC tensor: for every channel c, adds u = x − pivot[c] to
    /// s[c] and fma(u, u, ·) to q[c] one row at a time, in row order (and d, fma(d, u, ·)
    /// to g[c], h[c] when dy is given).
    void (*rows_sums)(const void *x, const void *dy, const void *mask, long r0, long r1, long C, const double *pivot,
                      double *s, double *q, double *g, double *h);
    /// `nchw_forward_step`'s output arithmetic over rows [r0, r1), channel innermost;
    /// `nan_free` ≠ 0: every channel is NaN-free.
    void (*rows_apply)(const void *x, void *y, long r0, long r1, long C, const double *mean, const double *scale,
                       const double *shift, int relu, int stream, int nan_free);
    /// `nchw_backward_step`'s output arithmetic over rows [r0, r1), channel innermost;
    /// `nan_free` as for `rows_apply`.
    void (*rows_gradient)(const void *x, const void *dy, const void *mask, void *dx, long r0, long r1, long C,
                          const double *mean, const double *a, const double *b, const double *k, int stream, int nan_free);
    /// Backward with the statistics given (the coefficients do not depend on the sums):
    /// the g and h of `rows_sums` with dy over rows [r0, r1) (Σd, Σd·u; Σu and Σu² are not
    /// computed), and `rows_gradient` over the same rows with nan_free 0 — the same bits —
    /// in one walk of tiles of BN_SUMS_TILE_ELEMENTS values, each tile's gradient written
    /// while its x and dy are in cache (read from memory once, not twice).
    void (*rows_sums_gradient)(const void *x, const void *dy, const void *mask, void *dx, long r0, long r1, long C,
                               const double *pivot, double *g, double *h, const double *mean, const double *a, const double *b,
                               const double *k, int stream);
    /// out[c] = x[c · stride] widened (exactly) to double, for c < count: the pivots.
    void (*pivots)(const void *x, long stride, long count, double *out);
    /// Converts `count` values of the storage format to float (exact) and back (one
    /// rounding, to nearest even); the conversions every pass uses, for tests.
    void (*widen)(const void *src, float *dst, long count);
    void (*narrow)(const float *src, void *dst, long count);
} bn_passes;

/// The passes of instruction-set level `isa` (clamped to what this build compiled) for
/// storage `storage`. At the AVX-512 level, bfloat16 outputs are narrowed with
/// vcvtneps2bf16 where the CPU also has AVX512_BF16 (isa_avx512bf16.c: the same bits). Calling a level the CPU does not support is undefined: use
/// `bn_isa_supported`.
const bn_passes *bn_passes_get(int isa, int storage);

/// The highest level this CPU and operating system support (x86-64: CPUID and XGETBV;
/// other architectures: BN_ISA_BASELINE, which there is the compiler's own vector code).
int bn_isa_supported(void);

/// Size in bytes of the per-core L2 cache (0 when the system does not say).
long bn_l2_cache_bytes(void);

/// Orders the non-temporal stores before anything that follows (they are weakly ordered).
static inline __attribute__((always_inline)) void bn_stream_fence(void) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/// One piece of a parallel job (pool.c).
typedef void (*bn_piece_fn)(void *ctx, long piece);

/// Runs `fn(ctx, p)` for every p in [0, pieces) and returns 0 when all have finished:
/// piece 0 on the calling thread, piece i ≥ 1 on the pool's worker i — the same thread
/// at every call, so a piece's data stays in that core's caches from one call to the
/// next. Idle workers spin for 1 ms, then sleep. Returns -1 without running anything
/// when another caller holds the pool or threads cannot be started (the caller then
/// runs the pieces some other way).
int bn_pool_run(long pieces, bn_piece_fn fn, void *ctx);

#endif
