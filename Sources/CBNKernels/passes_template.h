// The passes for one storage format, included by isa_*.c once per format after
// vector.h. The including file defines:
//   ST             element type (float, or uint16_t bits)
//   LOAD8(p)       8 elements at p (any alignment) → f8, exact
//   STORE8(p, v)   f8 → 8 elements at p, round to nearest even
//   STREAM8(p, v)  as STORE8 with a non-temporal hint; p aligned to 8 elements
//   PASS(name)     the name of this (level, format) variant of a function
//   TABLE          the name of the bn_passes table to define
//
// Every output element is computed by the same lane-wise double operations whichever
// loop (16 at a time, 8 at a time, partial tail, streaming or not) handles it, so the
// loop structure never changes a value; the sums follow the lane order documented in
// CBNKernels.h.

#define ALIGN_BYTES (8 * (long)sizeof(ST))

/// The first n < 8 elements at p, zero-padded (never reads past p + n).
BN_INLINE f8 PASS(load_part)(const ST *p, long n) {
    ST buf[8] = {0};
    memcpy(buf, p, (size_t)n * sizeof(ST));
    return LOAD8(buf);
}
BN_INLINE void PASS(store_part)(ST *p, f8 v, long n) {
    ST buf[8];
    STORE8(buf, v);
    memcpy(p, buf, (size_t)n * sizeof(ST));
}

// ---- NCHW: runs of HW values of one channel ----

/// Adds the run's Σu, Σu² (and Σd, Σd·u when dy is given) into the channel's lane
/// accumulators `acc` (4 × BN_ACC_DOUBLES: 16 lanes + tail per sum).
BN_INLINE void PASS(run_sums)(const ST *p, const ST *dy, const ST *mask, long n, double pivot, double *acc) {
    const d8 pv = splat(pivot);
    d8 s0 = loadd(acc), s1 = loadd(acc + 8), q0 = loadd(acc + 17), q1 = loadd(acc + 25);
    d8 g0 = 0, g1 = 0, h0 = 0, h1 = 0;
    if (dy) { g0 = loadd(acc + 34); g1 = loadd(acc + 42); h0 = loadd(acc + 51); h1 = loadd(acc + 59); }
    long i = 0;
    for (; i + 16 <= n; i += 16) {
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
    stored(acc, s0); stored(acc + 8, s1); stored(acc + 17, q0); stored(acc + 25, q1);
    if (dy) { stored(acc + 34, g0); stored(acc + 42, g1); stored(acc + 51, h0); stored(acc + 59, h1); }
}

BN_INLINE void PASS(group_sums)(const ST *x, const ST *dy, const ST *mask, long N, long C, long HW, long c0, long c1,
                                const double *pivot, double *acc) {
    for (long b = 0; b < N; b++) {
        for (long c = c0; c < c1; c++) {
            long off = (b * C + c) * HW;
            PASS(run_sums)(x + off, dy ? dy + off : 0, mask ? mask + off : 0, HW, pivot[c], acc + (c - c0) * 4 * BN_ACC_DOUBLES);
        }
    }
}

static void PASS(nchw_sums)(const void *xv, const void *dyv, const void *maskv, long N, long C, long HW, long c0, long c1,
                            const double *pivot, double *acc, double *out) {
    const ST *x = xv, *dy = dyv, *mask = maskv;
    memset(acc, 0, (size_t)(c1 - c0) * 4 * BN_ACC_DOUBLES * sizeof(double));
    // Specialised calls (constant null pointers) so the inner loops carry no test.
    if (!dy) PASS(group_sums)(x, 0, 0, N, C, HW, c0, c1, pivot, acc);
    else if (!mask) PASS(group_sums)(x, dy, 0, N, C, HW, c0, c1, pivot, acc);
    else PASS(group_sums)(x, dy, mask, N, C, HW, c0, c1, pivot, acc);
    for (long j = 0; j < c1 - c0; j++) {
        for (int k = 0; k < 4; k++) {
            const double *a = acc + (j * 4 + k) * BN_ACC_DOUBLES;
            out[4 * j + k] = tree(loadd(a) + loadd(a + 8)) + a[16];
        }
    }
}

/// y = fma(x − m, k, b), ReLU'd when asked, over one run.
BN_INLINE f8 PASS(affine)(f8 x, d8 m, d8 k, d8 b, const int relu) {
    d8 r = fma8(wide(x) - m, k, b);
    if (relu) r = zero_where(r, r < 0);
    return narrow(r);
}

BN_INLINE void PASS(run_apply)(const ST *x, ST *y, long n, double mean, double scale, double shift, const int relu,
                               const int stream) {
    const d8 m = splat(mean), k = splat(scale), b = splat(shift);
    long i = 0;
    if (stream) {
        long head = (long)((-(uintptr_t)y) & (uintptr_t)(ALIGN_BYTES - 1)) / (long)sizeof(ST);
        if (head > n) head = n;
        if (head > 0) { PASS(store_part)(y, PASS(affine)(PASS(load_part)(x, head), m, k, b, relu), head); i = head; }
        for (; i + 8 <= n; i += 8) STREAM8(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu));
    } else {
        for (; i + 16 <= n; i += 16) {
            f8 u = PASS(affine)(LOAD8(x + i), m, k, b, relu), v = PASS(affine)(LOAD8(x + i + 8), m, k, b, relu);
            STORE8(y + i, u); STORE8(y + i + 8, v);
        }
        for (; i + 8 <= n; i += 8) STORE8(y + i, PASS(affine)(LOAD8(x + i), m, k, b, relu));
    }
    if (i < n) PASS(store_part)(y + i, PASS(affine)(PASS(load_part)(x + i, n - i), m, k, b, relu), n - i);
}

#define DISPATCH_RELU_STREAM(call_with)                     \
    if (relu) { if (stream) call_with(1, 1) else call_with(1, 0) } \
    else { if (stream) call_with(0, 1) else call_with(0, 0) }

static void PASS(nchw_apply)(const void *xv, void *yv, long N, long C, long HW, long c0, long c1, const double *mean,
                             const double *scale, const double *shift, int relu, int stream) {
    const ST *x = xv; ST *y = yv;
#define CALL(R, S) { for (long b = 0; b < N; b++) for (long c = c0; c < c1; c++) { long off = (b * C + c) * HW; \
        PASS(run_apply)(x + off, y + off, HW, mean[c], scale[c], shift[c], R, S); } }
    DISPATCH_RELU_STREAM(CALL)
#undef CALL
}

static void PASS(runs_apply)(const void *xv, void *yv, long C, long HW, long r0, long r1, const double *mean,
                             const double *scale, const double *shift, int relu, int stream) {
    const ST *x = xv; ST *y = yv;
#define CALL(R, S) { for (long r = r0; r < r1; r++) { long c = r % C; \
        PASS(run_apply)(x + r * HW, y + r * HW, HW, mean[c], scale[c], shift[c], R, S); } }
    DISPATCH_RELU_STREAM(CALL)
#undef CALL
}

/// dx = fma(k, x − m, fma(a, d, b)), d = dy masked where mask ≤ 0.
BN_INLINE f8 PASS(grad)(f8 x, f8 dy, const ST *mask, long i, d8 m, d8 a, d8 b, d8 k) {
    d8 d = wide(dy);
    if (mask) d = zero_where(d, wide(LOAD8(mask + i)) <= 0);
    return narrow(fma8(k, wide(x) - m, fma8(a, d, b)));
}

BN_INLINE void PASS(run_gradient)(const ST *x, const ST *dy, const ST *mask, ST *dx, long n, double mean, double a,
                                  double b, double k, const int stream) {
    const d8 m8 = splat(mean), a8 = splat(a), b8 = splat(b), k8 = splat(k);
    long i = 0;
#define PARTIAL(at, len) { f8 mk = mask ? PASS(load_part)(mask + (at), len) : (f8)0; \
        d8 d = wide(PASS(load_part)(dy + (at), len)); if (mask) d = zero_where(d, wide(mk) <= 0); \
        PASS(store_part)(dx + (at), narrow(fma8(k8, wide(PASS(load_part)(x + (at), len)) - m8, fma8(a8, d, b8))), len); }
    if (stream) {
        long head = (long)((-(uintptr_t)dx) & (uintptr_t)(ALIGN_BYTES - 1)) / (long)sizeof(ST);
        if (head > n) head = n;
        if (head > 0) { PARTIAL(0, head) i = head; }
        for (; i + 8 <= n; i += 8) STREAM8(dx + i, PASS(grad)(LOAD8(x + i), LOAD8(dy + i), mask, i, m8, a8, b8, k8));
    } else {
        for (; i + 8 <= n; i += 8) STORE8(dx + i, PASS(grad)(LOAD8(x + i), LOAD8(dy + i), mask, i, m8, a8, b8, k8));
    }
    if (i < n) PARTIAL(i, n - i)
#undef PARTIAL
}

static void PASS(nchw_gradient)(const void *xv, const void *dyv, const void *maskv, void *dxv, long N, long C, long HW,
                                long c0, long c1, const double *mean, const double *a, const double *b, const double *k,
                                int stream) {
    const ST *x = xv, *dy = dyv, *mask = maskv; ST *dx = dxv;
#define CALL(MASK, S) { for (long n = 0; n < N; n++) for (long c = c0; c < c1; c++) { long off = (n * C + c) * HW; \
        PASS(run_gradient)(x + off, dy + off, MASK ? mask + off : 0, dx + off, HW, mean[c], a[c], b[c], k[c], S); } }
    if (mask) { if (stream) CALL(1, 1) else CALL(1, 0) }
    else { if (stream) CALL(0, 1) else CALL(0, 0) }
#undef CALL
}

// ---- NHWC / NC: rows of C values ----
//
// Rows are taken ROWS_AT_ONCE at a time (a few KiB: stays in L1) and, within them, the
// channels a vector of 8 at a time, the per-channel accumulators or coefficients held
// in registers across those rows. Each channel's sums still add the rows in row order.

#define ROWS_AT_ONCE 16

/// Sums of channels [c, c + lanes) (lanes ≤ 8) over rows [r0, r1).
BN_INLINE void PASS(col_sums)(const ST *x, const ST *dy, const ST *mask, long r0, long r1, long C, long c, long lanes,
                              const double *pivot, double *s, double *q, double *g, double *h) {
    d8 pv, sv, qv, gv = 0, hv = 0;
    if (lanes == 8) {
        pv = loadd(pivot + c); sv = loadd(s + c); qv = loadd(q + c);
        if (dy) { gv = loadd(g + c); hv = loadd(h + c); }
    } else {
        double t[5][8] = {{0}};
        memcpy(t[0], pivot + c, (size_t)lanes * 8); memcpy(t[1], s + c, (size_t)lanes * 8); memcpy(t[2], q + c, (size_t)lanes * 8);
        if (dy) { memcpy(t[3], g + c, (size_t)lanes * 8); memcpy(t[4], h + c, (size_t)lanes * 8); }
        pv = loadd(t[0]); sv = loadd(t[1]); qv = loadd(t[2]); gv = loadd(t[3]); hv = loadd(t[4]);
    }
    for (long r = r0; r < r1; r++) {
        long o = r * C + c;
        d8 u = wide(lanes == 8 ? LOAD8(x + o) : PASS(load_part)(x + o, lanes)) - pv;
        sv += u; qv = fma8(u, u, qv);
        if (dy) {
            d8 d = wide(lanes == 8 ? LOAD8(dy + o) : PASS(load_part)(dy + o, lanes));
            if (mask) d = zero_where(d, wide(lanes == 8 ? LOAD8(mask + o) : PASS(load_part)(mask + o, lanes)) <= 0);
            gv += d; hv = fma8(d, u, hv);
        }
    }
    if (lanes == 8) {
        stored(s + c, sv); stored(q + c, qv);
        if (dy) { stored(g + c, gv); stored(h + c, hv); }
    } else {
        double t[4][8];
        stored(t[0], sv); stored(t[1], qv); stored(t[2], gv); stored(t[3], hv);
        memcpy(s + c, t[0], (size_t)lanes * 8); memcpy(q + c, t[1], (size_t)lanes * 8);
        if (dy) { memcpy(g + c, t[2], (size_t)lanes * 8); memcpy(h + c, t[3], (size_t)lanes * 8); }
    }
}

BN_INLINE void PASS(rows_sums_impl)(const ST *x, const ST *dy, const ST *mask, long r0, long r1, long C,
                                    const double *pivot, double *s, double *q, double *g, double *h) {
    for (long rr = r0; rr < r1; rr += ROWS_AT_ONCE) {
        long re = rr + ROWS_AT_ONCE < r1 ? rr + ROWS_AT_ONCE : r1;
        long c = 0;
        for (; c + 8 <= C; c += 8) PASS(col_sums)(x, dy, mask, rr, re, C, c, 8, pivot, s, q, g, h);
        if (c < C) PASS(col_sums)(x, dy, mask, rr, re, C, c, C - c, pivot, s, q, g, h);
    }
}

static void PASS(rows_sums)(const void *xv, const void *dyv, const void *maskv, long r0, long r1, long C,
                            const double *pivot, double *s, double *q, double *g, double *h) {
    const ST *x = xv, *dy = dyv, *mask = maskv;
    if (!dy) PASS(rows_sums_impl)(x, 0, 0, r0, r1, C, pivot, s, q, 0, 0);
    else if (!mask) PASS(rows_sums_impl)(x, dy, 0, r0, r1, C, pivot, s, q, g, h);
    else PASS(rows_sums_impl)(x, dy, mask, r0, r1, C, pivot, s, q, g, h);
}

/// Loads `lanes` ≤ 8 doubles at p, zero-padded.
BN_INLINE d8 PASS(loadd_part)(const double *p, long lanes) {
    if (lanes == 8) return loadd(p);
    double t[8] = {0};
    memcpy(t, p, (size_t)lanes * 8);
    return loadd(t);
}

BN_INLINE void PASS(put)(ST *p, f8 v, long lanes, const int stream) {
    if (lanes < 8) PASS(store_part)(p, v, lanes);
    else if (stream && ((uintptr_t)p & (uintptr_t)(ALIGN_BYTES - 1)) == 0) STREAM8(p, v);
    else STORE8(p, v);
}

BN_INLINE void PASS(rows_apply_impl)(const ST *x, ST *y, long r0, long r1, long C, const double *mean, const double *scale,
                                     const double *shift, const int relu, const int stream) {
    for (long rr = r0; rr < r1; rr += ROWS_AT_ONCE) {
        long re = rr + ROWS_AT_ONCE < r1 ? rr + ROWS_AT_ONCE : r1;
        for (long c = 0; c < C; c += 8) {
            long lanes = C - c < 8 ? C - c : 8;
            d8 m = PASS(loadd_part)(mean + c, lanes), k = PASS(loadd_part)(scale + c, lanes), b = PASS(loadd_part)(shift + c, lanes);
            for (long r = rr; r < re; r++) {
                long o = r * C + c;
                f8 v = lanes == 8 ? LOAD8(x + o) : PASS(load_part)(x + o, lanes);
                PASS(put)(y + o, PASS(affine)(v, m, k, b, relu), lanes, stream);
            }
        }
    }
}

static void PASS(rows_apply)(const void *xv, void *yv, long r0, long r1, long C, const double *mean, const double *scale,
                             const double *shift, int relu, int stream) {
    const ST *x = xv; ST *y = yv;
#define CALL(R, S) { PASS(rows_apply_impl)(x, y, r0, r1, C, mean, scale, shift, R, S); }
    DISPATCH_RELU_STREAM(CALL)
#undef CALL
}

BN_INLINE void PASS(rows_gradient_impl)(const ST *x, const ST *dy, const ST *mask, ST *dx, long r0, long r1, long C,
                                        const double *mean, const double *a, const double *b, const double *k, const int stream) {
    for (long rr = r0; rr < r1; rr += ROWS_AT_ONCE) {
        long re = rr + ROWS_AT_ONCE < r1 ? rr + ROWS_AT_ONCE : r1;
        for (long c = 0; c < C; c += 8) {
            long lanes = C - c < 8 ? C - c : 8;
            d8 m8 = PASS(loadd_part)(mean + c, lanes), a8 = PASS(loadd_part)(a + c, lanes);
            d8 b8 = PASS(loadd_part)(b + c, lanes), k8 = PASS(loadd_part)(k + c, lanes);
            for (long r = rr; r < re; r++) {
                long o = r * C + c;
                f8 xv = lanes == 8 ? LOAD8(x + o) : PASS(load_part)(x + o, lanes);
                d8 d = wide(lanes == 8 ? LOAD8(dy + o) : PASS(load_part)(dy + o, lanes));
                if (mask) d = zero_where(d, wide(lanes == 8 ? LOAD8(mask + o) : PASS(load_part)(mask + o, lanes)) <= 0);
                PASS(put)(dx + o, narrow(fma8(k8, wide(xv) - m8, fma8(a8, d, b8))), lanes, stream);
            }
        }
    }
}

static void PASS(rows_gradient)(const void *xv, const void *dyv, const void *maskv, void *dxv, long r0, long r1, long C,
                                const double *mean, const double *a, const double *b, const double *k, int stream) {
    const ST *x = xv, *dy = dyv, *mask = maskv; ST *dx = dxv;
    if (mask) { if (stream) PASS(rows_gradient_impl)(x, dy, mask, dx, r0, r1, C, mean, a, b, k, 1);
                else PASS(rows_gradient_impl)(x, dy, mask, dx, r0, r1, C, mean, a, b, k, 0); }
    else { if (stream) PASS(rows_gradient_impl)(x, dy, 0, dx, r0, r1, C, mean, a, b, k, 1);
           else PASS(rows_gradient_impl)(x, dy, 0, dx, r0, r1, C, mean, a, b, k, 0); }
}

// ---- conversions, for tests ----

static void PASS(widen)(const void *srcv, float *dst, long count) {
    const ST *src = srcv;
    long i = 0;
    for (; i + 8 <= count; i += 8) { f8 v = LOAD8(src + i); memcpy(dst + i, &v, sizeof v); }
    if (i < count) { f8 v = PASS(load_part)(src + i, count - i); memcpy(dst + i, &v, (size_t)(count - i) * sizeof(float)); }
}

static void PASS(narrow)(const float *src, void *dstv, long count) {
    ST *dst = dstv;
    long i = 0;
    for (; i + 8 <= count; i += 8) { f8 v; memcpy(&v, src + i, sizeof v); STORE8(dst + i, v); }
    if (i < count) { f8 v = 0; memcpy(&v, src + i, (size_t)(count - i) * sizeof(float)); PASS(store_part)(dst + i, v, count - i); }
}

static const bn_passes TABLE = {
    PASS(nchw_sums), PASS(nchw_apply), PASS(runs_apply), PASS(nchw_gradient),
    PASS(rows_sums), PASS(rows_apply), PASS(rows_gradient), PASS(widen), PASS(narrow),
};

#undef ALIGN_BYTES
#undef DISPATCH_RELU_STREAM
#undef ROWS_AT_ONCE
