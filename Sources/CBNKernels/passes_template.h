// The passes for one storage format, included by isa_*.c once per format after
// vector.h. The including file defines:
//   ST             element type (float, or uint16_t bits)
//   LOAD8(p)       8 elements at p (any alignment) → f8, exact
//   STORE8(p, v)   f8 → 8 elements at p, round to nearest even (a kernel output: its
//                  NaNs are canonical, or with RAW_OUTPUTS made canonical by STORE8)
//   CONVERT8(p, v) as STORE8 for any f8
//   STREAM8(p, v)  as STORE8 with a non-temporal hint; p aligned to 8 elements
//   LOAD16_EO(p, e, o)  optional: the 16 elements at p as two f8, exact: e the elements
//                  0, 2, …, 14 and o the elements 1, 3, …, 15 (bfloat16: one load and two
//                  integer operations for 16 values, where two LOAD8 take four). The
//                  in-cache loops over 16 elements then work on even/odd lanes, with their
//                  accumulators and per-channel coefficients relabelled (`evens`, `odds`,
//                  vector.h), so every lane adds the same elements in the same order
//   STORE16_EO(p, e, o)  with LOAD16_EO, optional: outputs in the even/odd form → the 16
//                  elements at p: the bits of STORE8 on each interleaved half (bfloat16 at
//                  AVX512_BF16: a class test per half and one conversion for 16 outputs). The
//                  loops over pairs of vectors are unrolled by pragma: clang left the
//                  even/odd form's loop rolled, its coefficients on the stack
//   PASS(name)     the name of this (level, format) variant of a function
//   TABLE          the name of the bn_passes table to define
// and may define
//   PAIR_STREAMED_RUNS  the streamed (out-of-cache) training step sums and writes two runs
//                  in one loop (run_apply_sums): float32, where it measured faster; the
//                  16-bit formats measured slower with it (same bits either way)
//   RAW_OUTPUTS    outputs reach STORE8/STREAM8 as the plain float conversion, NaNs not
//                  yet canonical: stores that test each vector anyway (for subnormals)
//                  canonicalise them in the same test
//
// Every output element is computed by the same lane-wise double operations whichever
// loop (16 at a time, 8 at a time, partial tail, streaming or not) handles it, so the
// loop structure never changes a value; the sums follow the lane order documented in
// CBNKernels.h.

#define ALIGN_BYTES (8 * (long)sizeof(ST))
/// Two output vectors a, b to p and p + 8 with non-temporal stores: as STREAM8 twice
/// unless the including file gives a wider store (float32: one 64-byte store; bfloat16 at
/// AVX512_BF16: one conversion of both and one 32-byte store).
#ifndef STREAM16
#define STREAM16(p, a, b) (STREAM8(p, a), STREAM8((p) + 8, b))
#define STREAM16_DEFAULT
#endif
#ifdef PAIR_STREAMED_RUNS
#define PAIRED 1
#else
#define PAIRED 0
#endif

/// A kernel output d8 → the f8 that STORE8 and STREAM8 receive. `nf` (a constant in
/// every loop): the caller has proven the output is not a NaN (`nan_free`,
/// CBNKernels.h), so `narrow`'s NaN test would change nothing and is skipped; or nf is
/// WATCH (the affine passes), see below.
#ifdef RAW_OUTPUTS
#define OUTPUT(r, nf) __builtin_convertvector((r), f8)
#else
#define OUTPUT(r, nf) ((nf) ? __builtin_convertvector((r), f8) : narrow(r))
#endif

/// nf = WATCH: the outputs of an affine pass not proven NaN-free (inference; training
/// channels the proof refused) skip the NaN test, and each is folded into a watch vector
/// w = fma(0, o, w), which stays ±0 unless some o is a NaN or ±∞ (0·∞ = NaN). A pass run
/// so returns whether w stayed clean (`watch`, `watch_clean` in vector.h); when it did not, the caller runs it again with the
/// test (nf = 0), which writes the same bits over every output. So the result is that of
/// nf = 0 on any data: where no output is a NaN the test changes nothing; ±∞ outputs only
/// cost the second run. One single-width FMA per 8 outputs replaces the test's compare and
/// blend (in cache, fused inference 0.276 → 0.240 ms: spec §9.4). With
/// RAW_OUTPUTS the stores canonicalise NaNs themselves: nothing to watch (WATCHED_NF = 0).
#define WATCH 2
#ifdef RAW_OUTPUTS
#define WATCHED_NF 0
#else
#define WATCHED_NF WATCH
#endif

/// Copies n < 8 elements with constant-size copies (inlined moves, not a memcpy call:
/// run tails are frequent in small tensors).
BN_INLINE void PASS(copy_few)(ST *dst, const ST *src, long n) {
    switch (n) {
    case 7: memcpy(dst, src, 7 * sizeof(ST)); break;
    case 6: memcpy(dst, src, 6 * sizeof(ST)); break;
    case 5: memcpy(dst, src, 5 * sizeof(ST)); break;
    case 4: memcpy(dst, src, 4 * sizeof(ST)); break;
    case 3: memcpy(dst, src, 3 * sizeof(ST)); break;
    case 2: memcpy(dst, src, 2 * sizeof(ST)); break;
    case 1: memcpy(dst, src, 1 * sizeof(ST)); break;
    default: break;
    }
}

/// The first n < 8 elements at p, zero-padded (never reads past p + n).
BN_INLINE f8 PASS(load_part)(const ST *p, long n) {
    ST buf[8] = {0};
    PASS(copy_few)(buf, p, n);
    return LOAD8(buf);
}
BN_INLINE void PASS(store_part)(ST *p, f8 v, long n) {
    ST buf[8];
    STORE8(buf, v);
    PASS(copy_few)(p, buf, n);
}

/// Elements from p to the next boundary of `vectors` output vectors (1 or 2; 2: a whole
/// 64-byte non-temporal store of float32, STREAM16), at most n.
BN_INLINE long PASS(to_boundary)(const ST *p, long n, long vectors) {
    long head = (long)((-(uintptr_t)p) & (uintptr_t)(vectors * ALIGN_BYTES - 1)) / (long)sizeof(ST);
    return head < n ? head : n;
}

// ---- NCHW: runs of HW values of one channel ----

/// Adds the run's Σu, Σu² (and Σd, Σd·u when dy is given) into the channel's lane
/// accumulators `acc` (4 × BN_ACC_DOUBLES: 16 lanes + tail per sum).
BN_INLINE void PASS(run_sums)(const ST *p, const ST *dy, const ST *mask, long n, double pivot, double *acc, int first,
                              const ST *next, const ST *next_dy) {
    const d8 pv = splat(pivot);
    d8 s0 = 0, s1 = 0, q0 = 0, q1 = 0, g0 = 0, g1 = 0, h0 = 0, h1 = 0;
    // A run shorter than 8 values adds to the tails only: a later run's lanes are left as
    // they are, not loaded and stored back (N·C runs of HW = 1 spent most of their time on
    // those 16 vector moves).
    const int lanes_kept = n < 8 && !first;
    if (first) {  // the channel's first run: the accumulators start from zero
        acc[16] = acc[33] = acc[50] = acc[67] = 0;
    } else if (!lanes_kept) {
        s0 = loadd(acc); s1 = loadd(acc + 8); q0 = loadd(acc + 17); q1 = loadd(acc + 25);
        if (dy) { g0 = loadd(acc + 34); g1 = loadd(acc + 42); h0 = loadd(acc + 51); h1 = loadd(acc + 59); }
    }
    long i = 0;
#ifdef LOAD16_EO
    if (n >= 16) {  // lane j of the even (odd) accumulators is lane 2j (2j + 1) of the pair
        d8 sE = evens(s0, s1), sO = odds(s0, s1), qE = evens(q0, q1), qO = odds(q0, q1);
        d8 gE = evens(g0, g1), gO = odds(g0, g1), hE = evens(h0, h1), hO = odds(h0, h1);
        for (; i + 16 <= n; i += 16) {
            PREFETCH(next + i); if (dy) PREFETCH(next_dy + i);
            f8 xe, xo; LOAD16_EO(p + i, xe, xo);
            d8 a = wide(xe) - pv, b = wide(xo) - pv;
            sE += a; sO += b;
            qE = fma8(a, a, qE); qO = fma8(b, b, qO);
            if (dy) {
                f8 de, dO; LOAD16_EO(dy + i, de, dO);
                d8 da = wide(de), db = wide(dO);
                if (mask) {
                    f8 me, mo; LOAD16_EO(mask + i, me, mo);
                    da = zero_where(da, wide(me) <= 0); db = zero_where(db, wide(mo) <= 0);
                }
                gE += da; gO += db;
                hE = fma8(da, a, hE); hO = fma8(db, b, hO);
            }
        }
        s0 = interleave_lo(sE, sO); s1 = interleave_hi(sE, sO); q0 = interleave_lo(qE, qO); q1 = interleave_hi(qE, qO);
        g0 = interleave_lo(gE, gO); g1 = interleave_hi(gE, gO); h0 = interleave_lo(hE, hO); h1 = interleave_hi(hE, hO);
    }
#endif
    for (; i + 16 <= n; i += 16) {
        PREFETCH(next + i); if (dy) PREFETCH(next_dy + i);
        d8 a = wide(LOAD8(p + i)) - pv, b = wide(LOAD8(p + i + 8)) - pv;
        s0 += a; s1 += b;
        q0 = fma8(a, a, q0); q1 = fma8(b, b, q1);
        if (dy) {
            d8 da = wide(LOAD8(dy + i)), db = wide(LOAD8(dy + i + 8));
            if (mask) {
                da = zero_where(da, wide(LOAD8(mask + i)) <= 0);
                db = zero_where(db, wide(LOAD8(mask + i + 8)) <= 0);
            }
            g0 += da; g1 += db;
            h0 = fma8(da, a, h0); h1 = fma8(db, b, h1);
        }
    }
    if (i + 8 <= n) {
        d8 a = wide(LOAD8(p + i)) - pv;
        s0 += a; q0 = fma8(a, a, q0);
        if (dy) {
            d8 da = wide(LOAD8(dy + i));
            if (mask) da = zero_where(da, wide(LOAD8(mask + i)) <= 0);
            g0 += da; h0 = fma8(da, a, h0);
        }
        i += 8;
    }
    if (i < n) {  // fewer than 8 left: one by one into the tails
        long m = n - i;
        d8 a = wide(PASS(load_part)(p + i, m)) - pv, da = 0;
        if (dy) {
            da = wide(PASS(load_part)(dy + i, m));
            if (mask) da = zero_where(da, wide(PASS(load_part)(mask + i, m)) <= 0);
        }
        for (long j = 0; j < m; j++) {
            acc[16] += a[j]; acc[33] = __builtin_fma(a[j], a[j], acc[33]);
            if (dy) { acc[50] += da[j]; acc[67] = __builtin_fma(da[j], a[j], acc[67]); }
        }
    }
    if (lanes_kept) return;
    stored(acc, s0); stored(acc + 8, s1); stored(acc + 17, q0); stored(acc + 25, q1);
    if (dy) { stored(acc + 34, g0); stored(acc + 42, g1); stored(acc + 51, h0); stored(acc + 59, h1); }
}

/// The statistics of channels [s0, s1) over sample b's runs (contiguous in memory).
BN_INLINE void PASS(sample_sums)(const ST *x, const ST *dy, const ST *mask, long b, long N, long C, long HW, long s0, long s1,
                                 const double *pivot, double *acc) {
    for (long c = s0; c < s1; c++) {
        long off = (b * C + c) * HW;
        // The next run of this walk, fetched while this one is summed: runs are short and
        // far apart, where the hardware prefetchers start late.
        long next = c + 1 < s1 ? off + HW : b + 1 < N ? ((b + 1) * C + s0) * HW : off;
        PASS(run_sums)(x + off, dy ? dy + off : 0, mask ? mask + off : 0, HW, pivot[c], acc + (c - s0) * 4 * BN_ACC_DOUBLES, b == 0,
                       x + next, dy ? dy + next : 0);
    }
}

/// The sums of each channel from its lane accumulators (order in CBNKernels.h): 4 with
/// dy, else Σu, Σu² and two zeros.
BN_INLINE void PASS(finish_sums)(const double *acc, long channels, int with_dy, double *out) {
    for (long j = 0; j < channels; j++) {
        for (int k = 0; k < 4; k++) {
            const double *a = acc + (j * 4 + k) * BN_ACC_DOUBLES;
            out[4 * j + k] = k < 2 || with_dy ? tree(loadd(a) + loadd(a + 8)) + a[16] : 0;
        }
    }
}

/// y = fma(x − m, k, b), ReLU'd when asked; with nf = WATCH folded into *w.
BN_INLINE f8 PASS(affine)(f8 x, d8 m, d8 k, d8 b, const int relu, const int nf, f8 *w) {
    d8 r = fma8(wide(x) - m, k, b);
    if (relu) r = zero_where(r, r < 0);
    const f8 o = OUTPUT(r, nf);
    if (nf == WATCH) *w = watch(*w, o);
    return o;
}

/// Returns 0 when nf = WATCH saw a NaN or ±∞ output (the run is to be done again with
/// nf = 0), else 1.
BN_INLINE int PASS(run_apply)(const ST *x, ST *y, long n, double mean, double scale, double shift, const int relu,
                              const int stream, const int nf) {
    const d8 m = splat(mean), k = splat(scale), b = splat(shift);
    f8 w = 0, w1 = 0;  // two watch chains: one FMA's latency per vector would hold the loop
    long i = 0;
    if (stream) {
        long head = (long)((-(uintptr_t)y) & (uintptr_t)(ALIGN_BYTES - 1)) / (long)sizeof(ST);
        if (head > n) head = n;
        if (head > 0) { PASS(store_part)(y, PASS(affine)(PASS(load_part)(x, head), m, k, b, relu, nf, &w), head); i = head; }
#ifndef STREAM16_DEFAULT
        // A wider store of two vectors (float32: 64 bytes; bfloat16 at AVX512_BF16: one
        // conversion and 32 bytes) from a boundary of two vectors.
        if (i + 16 <= n && PASS(to_boundary)(y + i, n - i, 2) != 0) { STREAM8(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu, nf, &w)); i += 8; }
        for (; i + 16 <= n; i += 16)
            STREAM16(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu, nf, &w), PASS(affine)(LOAD8(x + i + 8), m, k, b, relu, nf, &w1));
#endif
        for (; i + 8 <= n; i += 8) STREAM8(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu, nf, &w));
    } else {
#ifdef STORE16_EO
        for (; i + 16 <= n; i += 16) {  // one coefficient set: the even/odd form needs no relabelling
            f8 xe, xo; LOAD16_EO(x + i, xe, xo);
            STORE16_EO(y + i, PASS(affine)(xe, m, k, b, relu, nf, &w), PASS(affine)(xo, m, k, b, relu, nf, &w));
        }
#endif
        for (; i + 16 <= n; i += 16) {
            STORE8(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu, nf, &w));
            STORE8(y + i + 8, PASS(affine)(LOAD8(x + i + 8), m, k, b, relu, nf, &w1));
        }
        for (; i + 8 <= n; i += 8) STORE8(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu, nf, &w));
    }
    if (i < n) PASS(store_part)(y + i, PASS(affine)(PASS(load_part)(x + i, n - i), m, k, b, relu, nf, &w), n - i);
    return nf != WATCH || watch_clean(watch(w, w1));
}

/// run_apply of a run not proven NaN-free: watched, and again with the test when the watch
/// saw a NaN or ±∞ (WATCH).
BN_INLINE void PASS(run_apply_unproven)(const ST *x, ST *y, long n, double mean, double scale, double shift, const int relu,
                                        const int stream) {
    if (!PASS(run_apply)(x, y, n, mean, scale, shift, relu, stream, WATCHED_NF)) PASS(run_apply)(x, y, n, mean, scale, shift, relu, stream, 0);
}

/// Out of cache, training (with PAIR_STREAMED_RUNS): run x → y's streamed outputs
/// (run_apply with stream) and run p's Σu, Σu² (run_sums without dy) in one loop over
/// both, 16 values of each per step, so that the write stream and the read stream of
/// memory run side by side, as in memcpy, rather than one pass at a time. The outputs
/// are run_apply's, element by element, and the lane accumulators receive the same terms
/// in the same order as in run_sums (its 16-value loop; run_sums itself then finishes the
/// rest from the stored lanes), so the bits are those of the two passes one after the
/// other (NCHWSumsTests.streamedTrainingStepIsTheTwoPasses).
BN_INLINE void PASS(run_apply_sums)(const ST *x, ST *y, long n, double mean, double scale, double shift, const int relu,
                                    const int nf, const ST *p, long np, double pivot, double *acc, int first, const ST *next) {
    const d8 m = splat(mean), k = splat(scale), b = splat(shift), pv = splat(pivot);
    f8 w = 0;  // unused: nf is 0 or 1 here
    long i = (long)((-(uintptr_t)y) & (uintptr_t)(ALIGN_BYTES - 1)) / (long)sizeof(ST), j = 0;
    if (i > n) i = n;
    if (i > 0) PASS(store_part)(y, PASS(affine)(PASS(load_part)(x, i), m, k, b, relu, nf, &w), i);
    d8 s0 = 0, s1 = 0, q0 = 0, q1 = 0;
    if (first) acc[16] = acc[33] = acc[50] = acc[67] = 0;
    else { s0 = loadd(acc); s1 = loadd(acc + 8); q0 = loadd(acc + 17); q1 = loadd(acc + 25); }
    for (; i + 16 <= n && j + 16 <= np; i += 16, j += 16) {
        PREFETCH(next + j);
        d8 u = wide(LOAD8(p + j)) - pv, v = wide(LOAD8(p + j + 8)) - pv;
        STREAM8(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu, nf, &w));
        s0 += u; s1 += v;
        q0 = fma8(u, u, q0); q1 = fma8(v, v, q1);
        STREAM8(y + i + 8, PASS(affine)(LOAD8(x + i + 8), m, k, b, relu, nf, &w));
    }
    stored(acc, s0); stored(acc + 8, s1); stored(acc + 17, q0); stored(acc + 25, q1);
    PASS(run_apply)(x + i, y + i, n - i, mean, scale, shift, relu, 1, nf);  // y + i is aligned: no head
    PASS(run_sums)(p + j, 0, 0, np - j, pivot, acc, 0, next + j, 0);
}

#define DISPATCH_RELU_STREAM(call_with)                     \
    if (relu) { if (stream) call_with(1, 1) else call_with(1, 0) } \
    else { if (stream) call_with(0, 1) else call_with(0, 0) }

static void PASS(runs_apply)(const void *xv, void *yv, long C, long HW, long r0, long r1, const double *mean,
                             const double *scale, const double *shift, int relu, int stream) {
    const ST *x = xv; ST *y = yv;
#define CALL(R, S) { for (long r = r0; r < r1; r++) { long c = r % C; \
        PASS(run_apply_unproven)(x + r * HW, y + r * HW, HW, mean[c], scale[c], shift[c], R, S); } }
    DISPATCH_RELU_STREAM(CALL)
#undef CALL
}

/// k·(x − m) with the term exactly 0 where k = 0: the inference-mode backward (k = 0,
/// dx = a·d) must not turn a NaN or ±Inf x into a NaN dx (0·NaN), since its dx does not
/// depend on x (an outside red team's backward zeroing non-finite x, 2026-12-05, showed our
/// kernels gave NaN there). Where k = 0 in training, x − m is finite or m is NaN (and a too).
BN_INLINE d8 PASS(x_term)(f8 x, d8 m, d8 k) { return zero_where(wide(x) - m, k == 0); }

/// dx = fma(k, x − m, fma(a, d, b)), d = dy masked where mask ≤ 0.
BN_INLINE f8 PASS(grad)(f8 x, f8 dy, const ST *mask, long i, d8 m, d8 a, d8 b, d8 k, const int nf) {
    d8 d = wide(dy);
    if (mask) d = zero_where(d, wide(LOAD8(mask + i)) <= 0);
    return OUTPUT(fma8(k, PASS(x_term)(x, m, k), fma8(a, d, b)), nf);
}

BN_INLINE void PASS(run_gradient)(const ST *x, const ST *dy, const ST *mask, ST *dx, long n, double mean, double a,
                                  double b, double k, const int stream, const int nf) {
    const d8 m8 = splat(mean), a8 = splat(a), b8 = splat(b), k8 = splat(k);
    long i = 0;
#define PARTIAL(at, len) { f8 mk = mask ? PASS(load_part)(mask + (at), len) : (f8)0; \
        d8 d = wide(PASS(load_part)(dy + (at), len)); if (mask) d = zero_where(d, wide(mk) <= 0); \
        PASS(store_part)(dx + (at), OUTPUT(fma8(k8, PASS(x_term)(PASS(load_part)(x + (at), len), m8, k8), fma8(a8, d, b8)), nf), len); }
    if (stream) {
        long head = (long)((-(uintptr_t)dx) & (uintptr_t)(ALIGN_BYTES - 1)) / (long)sizeof(ST);
        if (head > n) head = n;
        if (head > 0) { PARTIAL(0, head) i = head; }
#define GRAD_AT(at) PASS(grad)(LOAD8(x + (at)), LOAD8(dy + (at)), mask, at, m8, a8, b8, k8, nf)
#ifndef STREAM16_DEFAULT
        // Two vectors per store from a boundary of two vectors, as in run_apply.
        if (i + 16 <= n && PASS(to_boundary)(dx + i, n - i, 2) != 0) { STREAM8(dx + i, GRAD_AT(i)); i += 8; }
        for (; i + 16 <= n; i += 16) STREAM16(dx + i, GRAD_AT(i), GRAD_AT(i + 8));
#endif
        for (; i + 8 <= n; i += 8) STREAM8(dx + i, GRAD_AT(i));
#undef GRAD_AT
    } else {
        for (; i + 8 <= n; i += 8) STORE8(dx + i, PASS(grad)(LOAD8(x + i), LOAD8(dy + i), mask, i, m8, a8, b8, k8, nf));
    }
    if (i < n) PARTIAL(i, n - i)
#undef PARTIAL
}

// The NCHW walk of a training step, software-pipelined over channel groups: for each
// sample, the output pass over the current group's runs (which the statistics pass
// brought into cache), then the statistics pass over the next group's runs (from
// memory). Memory reads and output writes then overlap, as in memcpy, and the lines
// the output pass has finished with are the ones the statistics pass replaces. With
// PAIR_STREAMED_RUNS, out of cache, the i-th output run and the i-th statistics run of
// a sample share one loop (run_apply_sums), so the two streams overlap within the loop
// too; the runs of the larger group left over then run alone.

static void PASS(nchw_forward_step)(const void *xv, void *yv, long N, long C, long HW, long a0, long a1, const double *mean,
                                    const double *scale, const double *shift, int relu, int stream, const unsigned char *nan_free,
                                    long s0, long s1, const double *pivot, double *acc, double *out) {
    const ST *x = xv; ST *y = yv;
#define CALL(R, S) { for (long b = 0; b < N; b++) { \
        long c = a0, e = s0; \
        if (S && PAIRED) for (; c < a1 && e < s1; c++, e++) { /* out of cache: the runs of both groups in pairs */ \
            long off = (b * C + c) * HW, at = (b * C + e) * HW; \
            long next = e + 1 < s1 ? at + HW : b + 1 < N ? ((b + 1) * C + s0) * HW : at; \
            double *lanes = acc + (e - s0) * 4 * BN_ACC_DOUBLES; \
            if (nan_free && nan_free[c]) \
                PASS(run_apply_sums)(x + off, y + off, HW, mean[c], scale[c], shift[c], R, 1, x + at, HW, pivot[e], lanes, b == 0, x + next); \
            else PASS(run_apply_sums)(x + off, y + off, HW, mean[c], scale[c], shift[c], R, 0, x + at, HW, pivot[e], lanes, b == 0, x + next); } \
        for (; c < a1; c++) { long off = (b * C + c) * HW; \
            if (nan_free && nan_free[c]) PASS(run_apply)(x + off, y + off, HW, mean[c], scale[c], shift[c], R, S, 1); \
            else PASS(run_apply_unproven)(x + off, y + off, HW, mean[c], scale[c], shift[c], R, S); } \
        if (e < s1) PASS(sample_sums)(x, 0, 0, b, N, C, HW, e, s1, pivot, acc + (e - s0) * 4 * BN_ACC_DOUBLES); } }
    DISPATCH_RELU_STREAM(CALL)
#undef CALL
    if (s1 > s0) PASS(finish_sums)(acc, s1 - s0, 0, out);
}

static void PASS(nchw_backward_step)(const void *xv, const void *dyv, const void *maskv, void *dxv, long N, long C, long HW,
                                     long a0, long a1, const double *mean, const double *a, const double *b, const double *k,
                                     int stream, const unsigned char *nan_free, long s0, long s1, const double *pivot, double *acc,
                                     double *out) {
    const ST *x = xv, *dy = dyv, *mask = maskv; ST *dx = dxv;
#define CALL(MASK, S) { for (long n = 0; n < N; n++) { \
        for (long c = a0; c < a1; c++) { long off = (n * C + c) * HW; \
            if (nan_free && nan_free[c]) \
                PASS(run_gradient)(x + off, dy + off, MASK ? mask + off : 0, dx + off, HW, mean[c], a[c], b[c], k[c], S, 1); \
            else PASS(run_gradient)(x + off, dy + off, MASK ? mask + off : 0, dx + off, HW, mean[c], a[c], b[c], k[c], S, 0); } \
        PASS(sample_sums)(x, dy, MASK ? mask : 0, n, N, C, HW, s0, s1, pivot, acc); } }
    if (mask) { if (stream) CALL(1, 1) else CALL(1, 0) }
    else { if (stream) CALL(0, 1) else CALL(0, 0) }
#undef CALL
    if (s1 > s0) PASS(finish_sums)(acc, s1 - s0, 1, out);
}

// ---- NHWC / NC: rows of C values ----
//
// Statistics and in-cache outputs: the rows are cut into tiles (BN_SUMS_TILE_ELEMENTS
// values of each tensor for the statistics, 32 KiB of float32 that stay in L2;
// BN_TILE_ELEMENTS for the outputs, 8 KiB, so a tile of x, dy and dx stays in L1), and a
// tile is walked in column chunks of up to 8 vectors whose per-channel state (the sums,
// or the output coefficients) stays in registers over the tile's rows; for C ≤ 64 a
// chunk is a whole row and the walk is linear. Every channel still adds its rows in row
// order and outputs are element-wise, so the cut changes no value. Measured
// (tools/bounds.sh, nhwc:train, float32): 32×64×28×28 1.19 → 0.85 ms, 64×256×56×56
// 42 → 29 ms, against the former row-by-row walk with the state in L1. The statistics
// tile was 2048 values too; at 8192 a chunk loads and stores its sums a quarter as often
// (spec §9.4 has the A/B).
//
// Streaming outputs (out of cache) are written in memory order as one flat run aligned
// to the output, so that every vector is a whole non-temporal store whatever the
// buffer's alignment (a 16-byte-aligned output, as malloc gives, otherwise splits every
// other vector and falls back to ordinary stores: 64×256×56×56 inference 23–25 ms
// against 17 ms 64-byte-aligned).

/// Elements ahead of the current vector that the flat walks ask the cache for (8 KiB of
/// float32).
#define PREFETCH_AHEAD 2048
/// Largest C whose coefficients the flat streaming walk copies to the stack (wider rows
/// are streamed row by row, each aligned on its own).
#define FLAT_MAX_C 512
/// Whether rows of C channels take the flat walk in cache too (with ordinary stores):
/// C < 16 but for C = 8, where the tile walk spends a partial load and store on every
/// row (C < 8: all of it; 8 < C < 16: its last C − 8 channels). With the 16-value flat
/// walk this measured faster for C = 9–15 as well; C = 8 (a whole vector per row, no
/// partial) and C = 20–31 were no faster or mixed (spec §9.4 has the A/B).
#define FLAT_IN_CACHE(C) ((C) < 16 && (C) != 8)
#define ALIGNED64 __attribute__((aligned(64)))

/// Rows per tile of C-value rows, for tiles of `elements` values of each tensor
/// (BN_TILE_ELEMENTS for the output passes, BN_SUMS_TILE_ELEMENTS for the statistics).
BN_INLINE long PASS(tile_rows)(long C, long elements) { return C >= elements ? 1 : elements / C; }

/// Whether vector v of a chunk starts a cache line (chunks start at multiples of 8
/// elements of a row; the hint is only a hint: a line asked twice or a line missed costs
/// time, never a value).
#define LINE_START(v) ((8 * (v) * (long)sizeof(ST)) % 64 == 0)

/// Runs CHUNK(V) over the channels of a tile from c: chunks of W vectors, then one chunk
/// of the remaining whole vectors; leaves c at the first of the last C mod 8 channels.
#define CHUNKS(W, CHUNK)                                                                  \
    for (; c + 8 * (W) <= C; c += 8 * (W)) CHUNK(W);                                      \
    switch ((C - c) / 8) {                                                                \
    case 7: CHUNK(7); break; case 6: CHUNK(6); break; case 5: CHUNK(5); break;           \
    case 4: CHUNK(4); break; case 3: CHUNK(3); break; case 2: CHUNK(2); break;           \
    case 1: CHUNK(1); break; default: break;                                              \
    }                                                                                     \
    c += (C - c) / 8 * 8;

/// Loads `lanes` ≤ 8 doubles at p, zero-padded.
BN_INLINE d8 PASS(loadd_part)(const double *p, long lanes) {
    if (lanes == 8) return loadd(p);
    double t[8] = {0};
    copy_few_d(t, p, lanes);
    return loadd(t);
}

/// The sums of the last m < 8 channels of each row (columns [0, m) from x, which points at
/// the first of them in row 0) over `rows` rows, held in registers across the rows: each
/// channel adds its rows in row order, as in `chunk_sums`. A row's m values are loaded as
/// 8 — the rest from the next row, in lanes that are never stored — wherever those 8 lie
/// inside the `rows` rows; the last rows load their m values alone. (A per-row pass with
/// the sums in memory had spent 62 % of a 64×3×56×56 NHWC step, `perf record`.)
BN_INLINE void PASS(tail_sums)(const ST *x, const ST *dy, const ST *mask, long rows, long C, long m, const double *pivot,
                               double *s, double *q, double *g, double *h, const int xs) {
    const d8 p = PASS(loadd_part)(pivot, m);
    d8 sv = xs ? PASS(loadd_part)(s, m) : (d8)0, qv = xs ? PASS(loadd_part)(q, m) : (d8)0, gv = 0, hv = 0;
    if (dy) { gv = PASS(loadd_part)(g, m); hv = PASS(loadd_part)(h, m); }
    // Rows r whose 8 values from column 0 end inside the rows: r·C + 8 ≤ rows·C − (C − m).
    const long last = rows * C - (C - m) - 8;
    long whole = last < 0 ? 0 : last / C + 1;
    if (whole > rows) whole = rows;
    for (long r = 0; r < rows; r++) {
        const long o = r * C;
        const int w = r < whole;
        d8 u = wide(w ? LOAD8(x + o) : PASS(load_part)(x + o, m)) - p;
        if (xs) { sv += u; qv = fma8(u, u, qv); }
        if (dy) {
            d8 d = wide(w ? LOAD8(dy + o) : PASS(load_part)(dy + o, m));
            if (mask) d = zero_where(d, wide(w ? LOAD8(mask + o) : PASS(load_part)(mask + o, m)) <= 0);
            gv += d; hv = fma8(d, u, hv);
        }
    }
    double t[4][8];
    stored(t[0], sv); stored(t[1], qv); stored(t[2], gv); stored(t[3], hv);
    if (xs) { copy_few_d(s, t[0], m); copy_few_d(q, t[1], m); }
    if (dy) { copy_few_d(g, t[2], m); copy_few_d(h, t[3], m); }
}

/// The sums of channels [0, 8V) over `rows` rows, held in registers across the rows: the
/// additions of `tail_sums`, in the same row order. Asks for the same columns `ahead`
/// elements further on (the next tile) as it goes.
BN_INLINE void PASS(chunk_sums)(const ST *x, const ST *dy, const ST *mask, long rows, long C, long ahead,
                                const double *pivot, double *s, double *q, double *g, double *h, const int V, const int xs) {
    d8 p[8], sv[8], qv[8], gv[8], hv[8];
    for (int v = 0; v < V; v++) {
        p[v] = loadd(pivot + 8 * v); sv[v] = xs ? loadd(s + 8 * v) : (d8)0; qv[v] = xs ? loadd(q + 8 * v) : (d8)0;
        gv[v] = dy ? loadd(g + 8 * v) : (d8)0; hv[v] = dy ? loadd(h + 8 * v) : (d8)0;
    }
#ifdef LOAD16_EO
    // Pairs of vectors (v, v + 1) in the even/odd form: channels 8v + 2j in lane j of v,
    // 8v + 2j + 1 in lane j of v + 1; an odd V's last vector as it is.
#define RELABEL(A, F, G) { d8 t = F(A[v], A[v + 1]); A[v + 1] = G(A[v], A[v + 1]); A[v] = t; }
    for (int v = 0; v + 2 <= V; v += 2) {
        RELABEL(p, evens, odds) if (xs) { RELABEL(sv, evens, odds) RELABEL(qv, evens, odds) }
        if (dy) { RELABEL(gv, evens, odds) RELABEL(hv, evens, odds) }
    }
    const int W = V / 2 * 2;
#else
    const int W = 0;
#endif
    for (long r = 0; r < rows; r++) {
        const ST *xr = x + r * C, *dr = dy ? dy + r * C : 0, *mr = mask ? mask + r * C : 0;
#ifdef LOAD16_EO
#pragma clang loop unroll(full)
        for (int v = 0; v < W; v += 2) {
            if (LINE_START(v)) { PREFETCH(xr + 8 * v + ahead); if (dy) PREFETCH(dr + 8 * v + ahead); if (mask) PREFETCH(mr + 8 * v + ahead); }
            if (LINE_START(v + 1)) {
                PREFETCH(xr + 8 * v + 8 + ahead); if (dy) PREFETCH(dr + 8 * v + 8 + ahead); if (mask) PREFETCH(mr + 8 * v + 8 + ahead);
            }
            f8 xe, xo; LOAD16_EO(xr + 8 * v, xe, xo);
            d8 ue = wide(xe) - p[v], uo = wide(xo) - p[v + 1];
            if (xs) {
                sv[v] += ue; sv[v + 1] += uo;
                qv[v] = fma8(ue, ue, qv[v]); qv[v + 1] = fma8(uo, uo, qv[v + 1]);
            }
            if (dy) {
                f8 de, dO; LOAD16_EO(dr + 8 * v, de, dO);
                d8 d0 = wide(de), d1 = wide(dO);
                if (mask) {
                    f8 me, mo; LOAD16_EO(mr + 8 * v, me, mo);
                    d0 = zero_where(d0, wide(me) <= 0); d1 = zero_where(d1, wide(mo) <= 0);
                }
                gv[v] += d0; gv[v + 1] += d1;
                hv[v] = fma8(d0, ue, hv[v]); hv[v + 1] = fma8(d1, uo, hv[v + 1]);
            }
        }
#endif
        for (int v = W; v < V; v++) {
            if (LINE_START(v)) { PREFETCH(xr + 8 * v + ahead); if (dy) PREFETCH(dr + 8 * v + ahead); if (mask) PREFETCH(mr + 8 * v + ahead); }
            d8 u = wide(LOAD8(xr + 8 * v)) - p[v];
            if (xs) { sv[v] += u; qv[v] = fma8(u, u, qv[v]); }
            if (dy) {
                d8 d = wide(LOAD8(dr + 8 * v));
                if (mask) d = zero_where(d, wide(LOAD8(mr + 8 * v)) <= 0);
                gv[v] += d; hv[v] = fma8(d, u, hv[v]);
            }
        }
    }
#ifdef LOAD16_EO
    for (int v = 0; v + 2 <= V; v += 2) {
        if (xs) { RELABEL(sv, interleave_lo, interleave_hi) RELABEL(qv, interleave_lo, interleave_hi) }
        if (dy) { RELABEL(gv, interleave_lo, interleave_hi) RELABEL(hv, interleave_lo, interleave_hi) }
    }
#endif
    for (int v = 0; v < V; v++) {
        if (xs) { stored(s + 8 * v, sv[v]); stored(q + 8 * v, qv[v]); }
        if (dy) { stored(g + 8 * v, gv[v]); stored(h + 8 * v, hv[v]); }
    }
}

/// Sums of rows [r0, r1), tile by tile, in chunks of 8 vectors: 24 live vectors without dy; with
/// dy 40, more than AVX-512's 32 registers, so some spill (chunks of 4 or 6 vectors with dy were
/// faster on L2-resident data but not from memory, in an ad-hoc A/B, so the chunk stays 8).
BN_INLINE void PASS(rows_sums_impl)(const ST *x, const ST *dy, const ST *mask, long r0, long r1, long C,
                                    const double *pivot, double *s, double *q, double *g, double *h, const int xs) {
    if (C <= 0) return;
    const long T = PASS(tile_rows)(C, BN_SUMS_TILE_ELEMENTS);
    for (long t0 = r0; t0 < r1; t0 += T) {
        const long rows = r1 - t0 < T ? r1 - t0 : T, o = t0 * C, ahead = T * C;
        const ST *xt = x + o, *dt = dy ? dy + o : 0, *mt = mask ? mask + o : 0;
        long c = 0;
#define CHUNK(V) PASS(chunk_sums)(xt + c, dt ? dt + c : 0, mt ? mt + c : 0, rows, C, ahead, pivot + c, xs ? s + c : 0, xs ? q + c : 0, \
                                  dy ? g + c : 0, dy ? h + c : 0, V, xs)
        CHUNKS(8, CHUNK)
#undef CHUNK
        if (c < C)
            PASS(tail_sums)(xt + c, dt ? dt + c : 0, mt ? mt + c : 0, rows, C, C - c, pivot + c, xs ? s + c : 0, xs ? q + c : 0, dy ? g + c : 0,
                            dy ? h + c : 0, xs);
    }
}

static void PASS(rows_sums)(const void *xv, const void *dyv, const void *maskv, long r0, long r1, long C,
                            const double *pivot, double *s, double *q, double *g, double *h) {
    const ST *x = xv, *dy = dyv, *mask = maskv;
    if (!dy) PASS(rows_sums_impl)(x, 0, 0, r0, r1, C, pivot, s, q, 0, 0, 1);
    else if (!mask) PASS(rows_sums_impl)(x, dy, 0, r0, r1, C, pivot, s, q, g, h, 1);
    else PASS(rows_sums_impl)(x, dy, mask, r0, r1, C, pivot, s, q, g, h, 1);
}


/// The output pass over channels [0, 8V) of `rows` rows, the coefficients in registers.
BN_INLINE void PASS(chunk_apply)(const ST *x, ST *y, long rows, long C, long ahead, const double *mean, const double *scale,
                                 const double *shift, const int V, const int relu, const int nf, f8 *watched) {
    f8 w = *watched, w1 = 0;  // two watch chains (even and odd vectors)
    d8 m[8], k[8], b[8];
    for (int v = 0; v < V; v++) { m[v] = loadd(mean + 8 * v); k[v] = loadd(scale + 8 * v); b[v] = loadd(shift + 8 * v); }
#ifdef STORE16_EO
    for (int v = 0; v + 2 <= V; v += 2) { RELABEL(m, evens, odds) RELABEL(k, evens, odds) RELABEL(b, evens, odds) }
#endif
    for (long r = 0; r < rows; r++) {
        const ST *xr = x + r * C; ST *yr = y + r * C;
#ifdef STORE16_EO
        int v = 0;
#pragma clang loop unroll(full)
        for (; v + 2 <= V; v += 2) {
            if (LINE_START(v)) PREFETCH(xr + 8 * v + ahead);
            if (LINE_START(v + 1)) PREFETCH(xr + 8 * v + 8 + ahead);
            f8 xe, xo; LOAD16_EO(xr + 8 * v, xe, xo);
            STORE16_EO(yr + 8 * v, PASS(affine)(xe, m[v], k[v], b[v], relu, nf, &w), PASS(affine)(xo, m[v + 1], k[v + 1], b[v + 1], relu, nf, &w));
        }
        if (v < V) {
            if (LINE_START(v)) PREFETCH(xr + 8 * v + ahead);
            STORE8(yr + 8 * v, PASS(affine)(LOAD8(xr + 8 * v), m[v], k[v], b[v], relu, nf, v % 2 ? &w1 : &w));
        }
#else
        for (int v = 0; v < V; v++) {
            if (LINE_START(v)) PREFETCH(xr + 8 * v + ahead);
            STORE8(yr + 8 * v, PASS(affine)(LOAD8(xr + 8 * v), m[v], k[v], b[v], relu, nf, v % 2 ? &w1 : &w));
        }
#endif
    }
    *watched = watch(w, w1);
}

/// The period of the flat walks' coefficient copies: the least multiple of C that is ≥ 16.
BN_INLINE long PASS(flat_period)(long C) { return C >= 16 ? C : C * ((16 + C - 1) / C); }

/// The first n ≤ 8 elements at p, and the store of n ≤ 8: `load_part` and `store_part`
/// (n < 8 only: they stay without a test on the NCHW run tails) with a whole vector at 8.
BN_INLINE f8 PASS(load_upto8)(const ST *p, long n) { return n == 8 ? LOAD8(p) : PASS(load_part)(p, n); }
BN_INLINE void PASS(store_upto8)(ST *p, f8 v, long n) { if (n == 8) STORE8(p, v); else PASS(store_part)(p, v, n); }

/// Streaming (or in cache with FLAT_IN_CACHE), C ≤ FLAT_MAX_C: rows [r0, r1) as one flat
/// run, 16 values a step from a boundary of two output vectors (non-temporal stores when
/// `stream`: STREAM16, one 64-byte store of float32), the head and tail up to 8 at a
/// time. The values at channel phase c take their coefficients from e[c .. c + 16),
/// e[j] = coefficient[j mod C] for j < L + 16 (L = `flat_period`), so a step needs no
/// wrap test inside it (its values may straddle rows); c stays in [0, L). Each step asks
/// for the input lines PREFETCH_AHEAD elements on: with three or four coefficient loads
/// per vector the hardware prefetchers alone fell behind (spec §9.4: `tools/bounds.sh`
/// row nhwc:infer against kernel:infer). 16 values a step with one unconditional
/// prefetch replaced 8 with a line-start test and a loop over segments of the period,
/// which for small C ran a segment of one or two vectors (spec §9.4 has the A/B).
BN_INLINE f8 PASS(rows_apply_flat)(const ST *x, ST *y, long r0, long r1, long C, const double *mean, const double *scale,
                                   const double *shift, const int relu, const int stream, const int nf) {
    f8 w = 0, w1 = 0;  // two watch chains
    double em[FLAT_MAX_C + 16] ALIGNED64, ek[FLAT_MAX_C + 16] ALIGNED64, eb[FLAT_MAX_C + 16] ALIGNED64;
    const long L = PASS(flat_period)(C);
    for (long j = 0; j < L + 16; j++) { long cj = j % C; em[j] = mean[cj]; ek[j] = scale[cj]; eb[j] = shift[cj]; }
    long i = r0 * C, end = r1 * C, c = 0;
#define PART(count) { const long h = (count) < 8 ? (count) : 8; \
        PASS(store_upto8)(y + i, PASS(affine)(PASS(load_upto8)(x + i, h), loadd(em + c), loadd(ek + c), loadd(eb + c), relu, nf, &w), h); \
        i += h; c += h; if (c >= L) c -= L; }
    const long aligned = i + PASS(to_boundary)(y + i, end - i, 2);
    while (i < aligned) PART(aligned - i)
    for (; i + 16 <= end; i += 16) {
        PREFETCH(x + i + PREFETCH_AHEAD);
        const f8 o0 = PASS(affine)(LOAD8(x + i), loadd(em + c), loadd(ek + c), loadd(eb + c), relu, nf, &w);
        const f8 o1 = PASS(affine)(LOAD8(x + i + 8), loadd(em + c + 8), loadd(ek + c + 8), loadd(eb + c + 8), relu, nf, &w1);
        if (stream) STREAM16(y + i, o0, o1); else { STORE8(y + i, o0); STORE8(y + i + 8, o1); }
        c += 16; if (c >= L) c -= L;
    }
    while (i < end) PART(end - i)
#undef PART
    return watch(w, w1);
}

/// Streaming, wide rows: each row aligned on its own (its partial head and tail are at
/// most 2 of ≥ 64 vectors).
BN_INLINE f8 PASS(rows_apply_wide)(const ST *x, ST *y, long r0, long r1, long C, const double *mean, const double *scale,
                                   const double *shift, const int relu, const int nf) {
    f8 w = 0;
    for (long r = r0; r < r1; r++) {
        const ST *xr = x + r * C; ST *yr = y + r * C;
        long c = PASS(to_boundary)(yr, C, 1);
        if (c > 0)
            PASS(store_part)(yr, PASS(affine)(PASS(load_part)(xr, c), PASS(loadd_part)(mean, c), PASS(loadd_part)(scale, c),
                                              PASS(loadd_part)(shift, c), relu, nf, &w), c);
        for (; c + 8 <= C; c += 8)
            STREAM8(yr + c, PASS(affine)(LOAD8(xr + c), loadd(mean + c), loadd(scale + c), loadd(shift + c), relu, nf, &w));
        if (c < C)
            PASS(store_part)(yr + c, PASS(affine)(PASS(load_part)(xr + c, C - c), PASS(loadd_part)(mean + c, C - c),
                                                  PASS(loadd_part)(scale + c, C - c), PASS(loadd_part)(shift + c, C - c), relu, nf, &w), C - c);
    }
    return w;
}

/// Returns 0 when nf = WATCH saw a NaN or ±∞ output (run it again with nf = 0), else 1.
BN_INLINE int PASS(rows_apply_impl)(const ST *x, ST *y, long r0, long r1, long C, const double *mean, const double *scale,
                                    const double *shift, const int relu, const int stream, const int nf) {
    f8 w = 0;
    if (C <= 0) return 1;
    if (stream || FLAT_IN_CACHE(C)) {
        if (C <= FLAT_MAX_C) w = PASS(rows_apply_flat)(x, y, r0, r1, C, mean, scale, shift, relu, stream, nf);
        else w = PASS(rows_apply_wide)(x, y, r0, r1, C, mean, scale, shift, relu, nf);
        return nf != WATCH || watch_clean(w);
    }
    const long T = PASS(tile_rows)(C, BN_TILE_ELEMENTS);
    for (long t0 = r0; t0 < r1; t0 += T) {
        const long rows = r1 - t0 < T ? r1 - t0 : T, ahead = T * C;
        const ST *xt = x + t0 * C; ST *yt = y + t0 * C;
        long c = 0;
#define CHUNK(V) PASS(chunk_apply)(xt + c, yt + c, rows, C, ahead, mean + c, scale + c, shift + c, V, relu, nf, &w)
        CHUNKS(8, CHUNK)
#undef CHUNK
        if (c < C) {
            const long lanes = C - c;
            const d8 m = PASS(loadd_part)(mean + c, lanes), k = PASS(loadd_part)(scale + c, lanes), b = PASS(loadd_part)(shift + c, lanes);
            for (long r = 0; r < rows; r++)
                PASS(store_part)(yt + r * C + c, PASS(affine)(PASS(load_part)(xt + r * C + c, lanes), m, k, b, relu, nf, &w), lanes);
        }
    }
    return nf != WATCH || watch_clean(w);
}

static void PASS(rows_apply)(const void *xv, void *yv, long r0, long r1, long C, const double *mean, const double *scale,
                             const double *shift, int relu, int stream, int nan_free) {
    const ST *x = xv; ST *y = yv;
#define CALL(R, S) { if (nan_free) PASS(rows_apply_impl)(x, y, r0, r1, C, mean, scale, shift, R, S, 1); \
                     else if (!PASS(rows_apply_impl)(x, y, r0, r1, C, mean, scale, shift, R, S, WATCHED_NF)) \
                         PASS(rows_apply_impl)(x, y, r0, r1, C, mean, scale, shift, R, S, 0); }
    DISPATCH_RELU_STREAM(CALL)
#undef CALL
}

/// dx over channels [c, c + lanes) of one row (lanes ≤ 8), coefficients at mean, a, b, k.
BN_INLINE f8 PASS(row_grad)(const ST *x, const ST *dy, const ST *mask, long lanes, const double *mean, const double *a,
                            const double *b, const double *k, const int nf) {
    f8 xv = lanes == 8 ? LOAD8(x) : PASS(load_part)(x, lanes);
    d8 d = wide(lanes == 8 ? LOAD8(dy) : PASS(load_part)(dy, lanes));
    if (mask) d = zero_where(d, wide(lanes == 8 ? LOAD8(mask) : PASS(load_part)(mask, lanes)) <= 0);
    d8 m8 = PASS(loadd_part)(mean, lanes), a8 = PASS(loadd_part)(a, lanes), b8 = PASS(loadd_part)(b, lanes), k8 = PASS(loadd_part)(k, lanes);
    return OUTPUT(fma8(k8, PASS(x_term)(xv, m8, k8), fma8(a8, d, b8)), nf);
}

/// The gradient pass over channels [0, 8V) of `rows` rows, the coefficients in registers.
BN_INLINE void PASS(chunk_gradient)(const ST *x, const ST *dy, const ST *mask, ST *dx, long rows, long C, long ahead,
                                    const double *mean, const double *a, const double *b, const double *k, const int V, const int nf) {
    d8 m8[8], a8[8], b8[8], k8[8];
    for (int v = 0; v < V; v++) { m8[v] = loadd(mean + 8 * v); a8[v] = loadd(a + 8 * v); b8[v] = loadd(b + 8 * v); k8[v] = loadd(k + 8 * v); }
    for (long r = 0; r < rows; r++) {
        const long o = r * C;
        for (int v = 0; v < V; v++) {
            const long i = o + 8 * v;
            if (LINE_START(v)) { PREFETCH(x + i + ahead); PREFETCH(dy + i + ahead); if (mask) PREFETCH(mask + i + ahead); }
            STORE8(dx + i, PASS(grad)(LOAD8(x + i), LOAD8(dy + i), mask, i, m8[v], a8[v], b8[v], k8[v], nf));
        }
    }
}

/// The coefficient tables of the flat gradient walk (`rows_apply_flat`): e[j] = the
/// channel (j mod C) coefficient for j < `flat_period`(C) + 16.
typedef struct { double m[FLAT_MAX_C + 16] ALIGNED64, a[FLAT_MAX_C + 16] ALIGNED64, b[FLAT_MAX_C + 16] ALIGNED64,
                        k[FLAT_MAX_C + 16] ALIGNED64; long L; } PASS(flat_gradient_table);

BN_INLINE void PASS(flat_gradient_fill)(PASS(flat_gradient_table) *e, long C, const double *mean, const double *a, const double *b,
                                        const double *k) {
    e->L = PASS(flat_period)(C);
    for (long j = 0; j < e->L + 16; j++) { long cj = j % C; e->m[j] = mean[cj]; e->a[j] = a[cj]; e->b[j] = b[cj]; e->k[j] = k[cj]; }
}

/// The flat gradient walk over elements [i, end) of whole rows (i a multiple of C), with
/// the tables of `flat_gradient_fill`: as `rows_apply_flat`.
BN_INLINE void PASS(flat_gradient_walk)(const ST *x, const ST *dy, const ST *mask, ST *dx, long i, long end,
                                        const PASS(flat_gradient_table) *e, long ahead, const int stream, const int nf) {
    const double *em = e->m, *ea = e->a, *eb = e->b, *ek = e->k;
    const long L = e->L;
    long c = 0;
#define PART(count) { const long h = (count) < 8 ? (count) : 8; \
        PASS(store_upto8)(dx + i, PASS(row_grad)(x + i, dy + i, mask ? mask + i : 0, h, em + c, ea + c, eb + c, ek + c, nf), h); \
        i += h; c += h; if (c >= L) c -= L; }
    const long aligned = i + PASS(to_boundary)(dx + i, end - i, 2);
    while (i < aligned) PART(aligned - i)
    for (; i + 16 <= end; i += 16) {
        PREFETCH(x + i + ahead); PREFETCH(dy + i + ahead); if (mask) PREFETCH(mask + i + ahead);
        const f8 o0 = PASS(grad)(LOAD8(x + i), LOAD8(dy + i), mask, i, loadd(em + c), loadd(ea + c), loadd(eb + c), loadd(ek + c), nf);
        const f8 o1 = PASS(grad)(LOAD8(x + i + 8), LOAD8(dy + i + 8), mask, i + 8, loadd(em + c + 8), loadd(ea + c + 8),
                                 loadd(eb + c + 8), loadd(ek + c + 8), nf);
        if (stream) STREAM16(dx + i, o0, o1); else { STORE8(dx + i, o0); STORE8(dx + i + 8, o1); }
        c += 16; if (c >= L) c -= L;
    }
    while (i < end) PART(end - i)
#undef PART
}

/// As `rows_apply_flat`.
BN_INLINE void PASS(rows_gradient_flat)(const ST *x, const ST *dy, const ST *mask, ST *dx, long r0, long r1, long C,
                                        const double *mean, const double *a, const double *b, const double *k, const int stream,
                                        const int nf) {
    PASS(flat_gradient_table) e;
    PASS(flat_gradient_fill)(&e, C, mean, a, b, k);
    PASS(flat_gradient_walk)(x, dy, mask, dx, r0 * C, r1 * C, &e, PREFETCH_AHEAD, stream, nf);
}

/// Streaming, wide rows: as `rows_apply_wide`.
BN_INLINE void PASS(rows_gradient_wide)(const ST *x, const ST *dy, const ST *mask, ST *dx, long r0, long r1, long C,
                                        const double *mean, const double *a, const double *b, const double *k, const int nf) {
    for (long r = r0; r < r1; r++) {
        const long o = r * C;
        long c = PASS(to_boundary)(dx + o, C, 1);
        if (c > 0) PASS(store_part)(dx + o, PASS(row_grad)(x + o, dy + o, mask ? mask + o : 0, c, mean, a, b, k, nf), c);
        for (; c + 8 <= C; c += 8)
            STREAM8(dx + o + c, PASS(grad)(LOAD8(x + o + c), LOAD8(dy + o + c), mask, o + c, loadd(mean + c), loadd(a + c), loadd(b + c),
                                           loadd(k + c), nf));
        if (c < C)
            PASS(store_part)(dx + o + c, PASS(row_grad)(x + o + c, dy + o + c, mask ? mask + o + c : 0, C - c, mean + c, a + c, b + c, k + c,
                                                    nf), C - c);
    }
}

BN_INLINE void PASS(rows_gradient_impl)(const ST *x, const ST *dy, const ST *mask, ST *dx, long r0, long r1, long C,
                                        const double *mean, const double *a, const double *b, const double *k, const int stream,
                                        const int nf) {
    if (C <= 0) return;
    if (stream || FLAT_IN_CACHE(C)) {
        if (C <= FLAT_MAX_C) PASS(rows_gradient_flat)(x, dy, mask, dx, r0, r1, C, mean, a, b, k, stream, nf);
        else PASS(rows_gradient_wide)(x, dy, mask, dx, r0, r1, C, mean, a, b, k, nf);
        return;
    }
    const long T = PASS(tile_rows)(C, BN_TILE_ELEMENTS);
    for (long t0 = r0; t0 < r1; t0 += T) {
        const long rows = r1 - t0 < T ? r1 - t0 : T, o = t0 * C, ahead = T * C;
        long c = 0;
#define CHUNK(V) PASS(chunk_gradient)(x + o + c, dy + o + c, mask ? mask + o + c : 0, dx + o + c, rows, C, ahead, mean + c, a + c, \
                                      b + c, k + c, V, nf)
        CHUNKS(8, CHUNK)
#undef CHUNK
        if (c < C)
            for (long r = 0; r < rows; r++) {
                const long i = o + r * C + c;
                PASS(store_part)(dx + i, PASS(row_grad)(x + i, dy + i, mask ? mask + i : 0, C - c, mean + c, a + c, b + c, k + c, nf), C - c);
            }
    }
}

static void PASS(rows_gradient)(const void *xv, const void *dyv, const void *maskv, void *dxv, long r0, long r1, long C,
                                const double *mean, const double *a, const double *b, const double *k, int stream, int nan_free) {
    const ST *x = xv, *dy = dyv, *mask = maskv; ST *dx = dxv;
#define CALL(M, S) { if (nan_free) PASS(rows_gradient_impl)(x, dy, M, dx, r0, r1, C, mean, a, b, k, S, 1); \
                     else PASS(rows_gradient_impl)(x, dy, M, dx, r0, r1, C, mean, a, b, k, S, 0); }
    if (mask) { if (stream) CALL(mask, 1) else CALL(mask, 0) }
    else { if (stream) CALL(0, 1) else CALL(0, 0) }
#undef CALL
}

/// Backward with the statistics given: rows [r0, r1) tile by tile (BN_SUMS_TILE_ELEMENTS
/// values of each tensor), each tile's Σd and Σd·u added as `rows_sums` adds them (Σu and
/// Σu², which the statistics make unneeded, are not computed), then its gradient written
/// as `rows_gradient` writes it with nan_free 0, while the tile's x and dy are still in
/// cache: x and dy are read from memory once, not twice. The flat gradient walk asks for
/// the lines two tiles on (the statistics only one): the requests then go out in both
/// phases of a tile, not in its statistics alone, which left memory idle while the
/// gradient ran (spec §9.4).
BN_INLINE void PASS(rows_sums_gradient_impl)(const ST *x, const ST *dy, const ST *mask, ST *dx, long r0, long r1, long C,
                                             const double *pivot, double *g, double *h, const double *mean,
                                             const double *a, const double *b, const double *k, const int stream) {
    if (C <= 0) return;
    const long T = PASS(tile_rows)(C, BN_SUMS_TILE_ELEMENTS);
    const int flat = (stream || FLAT_IN_CACHE(C)) && C <= FLAT_MAX_C;
    PASS(flat_gradient_table) e;
    if (flat) PASS(flat_gradient_fill)(&e, C, mean, a, b, k);  // once, not per tile
    for (long t0 = r0; t0 < r1; t0 += T) {
        const long t1 = r1 - t0 < T ? r1 : t0 + T;
        PASS(rows_sums_impl)(x, dy, mask, t0, t1, C, pivot, 0, 0, g, h, 0);
        if (flat) PASS(flat_gradient_walk)(x, dy, mask, dx, t0 * C, t1 * C, &e, 2 * T * C, stream, 0);
        else PASS(rows_gradient_impl)(x, dy, mask, dx, t0, t1, C, mean, a, b, k, stream, 0);
    }
}

static void PASS(rows_sums_gradient)(const void *xv, const void *dyv, const void *maskv, void *dxv, long r0, long r1, long C,
                                     const double *pivot, double *g, double *h, const double *mean, const double *a, const double *b,
                                     const double *k, int stream) {
    const ST *x = xv, *dy = dyv, *mask = maskv; ST *dx = dxv;
#define CALL(M, S) PASS(rows_sums_gradient_impl)(x, dy, M, dx, r0, r1, C, pivot, g, h, mean, a, b, k, S);
    if (mask) { if (stream) CALL(mask, 1) else CALL(mask, 0) }
    else { if (stream) CALL(0, 1) else CALL(0, 0) }
#undef CALL
}

// ---- conversions, for tests ----

static void PASS(widen)(const void *srcv, float *dst, long count) {
    const ST *src = srcv;
    long i = 0;
    for (; i + 8 <= count; i += 8) { f8 v = LOAD8(src + i); memcpy(dst + i, &v, sizeof v); }
    if (i < count) { f8 v = PASS(load_part)(src + i, count - i); memcpy(dst + i, &v, (size_t)(count - i) * sizeof(float)); }
}

static void PASS(pivots)(const void *xv, long stride, long count, double *out) {
    const ST *x = xv;
    for (long c = 0; c < count; c++) out[c] = (double)PASS(load_part)(x + c * stride, 1)[0];
}

static void PASS(narrow)(const float *src, void *dstv, long count) {
    ST *dst = dstv;
    long i = 0;
    for (; i + 8 <= count; i += 8) { f8 v; memcpy(&v, src + i, sizeof v); CONVERT8(dst + i, v); }
    if (i < count) {
        f8 v = 0; ST buf[8];
        memcpy(&v, src + i, (size_t)(count - i) * sizeof(float));
        CONVERT8(buf, v);
        PASS(copy_few)(dst + i, buf, count - i);
    }
}

static const bn_passes TABLE = {
    PASS(nchw_forward_step), PASS(nchw_backward_step), PASS(runs_apply),
    PASS(rows_sums), PASS(rows_apply), PASS(rows_gradient), PASS(rows_sums_gradient), PASS(pivots), PASS(widen), PASS(narrow),
};

#undef ALIGN_BYTES
#ifdef STREAM16_DEFAULT
#undef STREAM16
#undef STREAM16_DEFAULT
#endif
#undef PAIRED
#undef OUTPUT
#undef WATCH
#undef WATCHED_NF
#undef DISPATCH_RELU_STREAM
#undef PREFETCH_AHEAD
#undef FLAT_MAX_C
#undef FLAT_IN_CACHE
#undef ALIGNED64
#undef LINE_START
#undef CHUNKS
#ifdef LOAD16_EO
#undef RELABEL
#endif
