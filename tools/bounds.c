// Machine bounds for the speed goals of `bnspec bench` (issue 20): what this machine's
// memory system and floating-point units allow, as ratios to memcpy of the same bytes
// measured in the same run — the unit of `bnspec bench`.
//
//   tools/bounds.sh [--json]          (builds this file with the CBNKernels sources)
//
// For each bench shape (float32, 1 thread):
//   memcpy         glibc memcpy of x into y (the denominator of every ratio; rows reading dy
//                  then also copy dy into y), within the shape's own buffers as in
//                  `bnspec bench`, so that an in-cache shape stays in cache for both
//   read           one pass reading x (AVX sum), no writes
//   write          one pass writing y (non-temporal above 32 MiB, as the kernels)
//   traffic:train  the memory traffic of the training kernel without its arithmetic,
//                  cut and pipelined as the kernel is (channel groups: one in cache,
//                  L2-sized out of cache): what its access pattern alone costs.
//   traffic:2read  read all of x, then read x again and write y (NHWC training: every
//                  row is needed before any output).
//   traffic:copy   read x and write y with the kernels' stores (ordinary in cache: each
//                  line of y read for ownership first): inference's traffic.
//   traffic:2read-back  the same for NHWC backward: x and dy read twice (side by side, as
//                  the kernel reads them), dx written (ratio to memcpy of x and dy, as kernel:back).
//   traffic:1read-back-blocked  NHWC backward reading x and dy once from memory instead:
//                  blocks of 16 channels (one cache line a row), each block's sums and then
//                  its dx while its lines are in cache: strided 64-byte reads.
//   compute:train  the kernel's own passes (CBNKernels, best level) on an L1-resident
//                  tensor, scaled to the shape: the arithmetic bound of fused training
//   compute:infer / compute:back   the same for inference and backward.
// Two cores, in-cache shape (32x64x28x28): the speed-up that splitting work in two halves
// on two threads gives over one thread doing both halves (a persistent second thread, so
// no start-up is timed) for memcpy of x (what the shared cache and memory allow) and for
// the fused training passes on L1-resident data (what the cores' arithmetic allows):
// the bound of the threaded speed-up goal (measured up to 3 times while below 1.3, the
// largest kept: a busy second core only lowers it).
// And, independent of shape, the double-precision FMA and float→double conversion
// throughput of one core (AVX-512 lanes per ns) against which the compute bounds can
// be checked: stats + apply need about 8 vector operations per 8 elements.
//
// Times are medians over interleaved repetitions (like bnspec bench), also reported as
// thread CPU time, which a busy machine disturbs less than wall time.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <immintrin.h>
#include "CBNKernels.h"

static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static double median(double *v, int n) { qsort(v, n, sizeof *v, cmp); return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; }

typedef void (*work_fn)(void *ctx);

/// glibc's memcpy through a volatile pointer, so the compiler cannot drop a copy whose
/// destination is never read.
static void *(*volatile copy_bytes)(void *, const void *, size_t) = memcpy;



/// Times `count` functions and the memcpy of their inputs (`copy_inputs`, `copies[i]` tensors) round-robin — each function run
/// followed by its memcpy — until each function has ≥ min_s and ≥ 9 runs. Per function:
/// the median over rounds of (function time ÷ the memcpy time measured right after it),
/// wall and thread CPU time: adjacent runs share the machine's state, which on a busy
/// machine matters more than anything else.
enum { MAXR = 400, MAX_ROWS = 24 };  // rounds per row; rows per shape (the fixed ones and BOUNDS_GROUPS')
static void copy_inputs(void *ctx, int copies);
static void interleaved(int count, work_fn *fn, void **ctx, const int *copies, double min_s,
                        double (*out)[4]) {
    static double r[MAX_ROWS][4][MAXR];
    double spent[MAX_ROWS] = {0};
    for (int f = 0; f < count; f++) { fn[f](ctx[f]); copy_inputs(ctx[f], copies[f]); }
    int n = 0;
    for (;;) {
        int more = n < 9;
        for (int f = 0; f < count; f++) more |= spent[f] < min_s;
        if (!more || n == MAXR) break;
        for (int f = 0; f < count; f++) {
            // Each wall interval holds only its work: the thread-CPU clock is a system call
            // (clock_read_ns: about 0.5 us on the 2-core VM, half a 40 KB memcpy), so it is read outside them.
            double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
            fn[f](ctx[f]);
            double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID), w1b = now(CLOCK_MONOTONIC);
            copy_inputs(ctx[f], copies[f]);
            double w2 = now(CLOCK_MONOTONIC), c2 = now(CLOCK_THREAD_CPUTIME_ID);
            r[f][0][n] = w1 - w0; r[f][1][n] = (w1 - w0) / (w2 - w1b); r[f][2][n] = c1 - c0; r[f][3][n] = (c1 - c0) / (c2 - c1);
            spent[f] += w1 - w0;
        }
        n++;
    }
    for (int f = 0; f < count; f++) for (int k = 0; k < 4; k++) out[f][k] = median(r[f][k], n);
}

typedef struct { float *x, *y, *dy; long N, C, HW; long group; int stream; double *pivot, *mean, *scale, *shift, *acc, *out;
                 uint16_t *h, *hy, *b, *by; unsigned char *nan_free; } shape_ctx;

/// The memcpy every row is timed against, within the shape's own buffers as in `bnspec
/// bench` (an in-cache shape stays in cache for both): x into y, then dy into y for the
/// rows that read dy (no tensor beyond the kernel's x, dy and output).
static void copy_inputs(void *p, int copies) {
    shape_ctx *s = p; size_t bytes = (size_t)(s->N * s->C * s->HW) * 4;
    copy_bytes(s->y, s->x, bytes);
    if (copies > 1) copy_bytes(s->y, s->dy, bytes);
}
/// memcpy itself as a row: its ratio to the adjacent memcpy shows the noise floor (≈ 1).
static void copy_x(void *p) { copy_inputs(p, 1); }

__attribute__((target("avx2"))) static void read_x(void *p) {
    shape_ctx *s = p; long n = s->N * s->C * s->HW;
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(s->x + i)); b = _mm256_add_ps(b, _mm256_loadu_ps(s->x + i + 8));
        c = _mm256_add_ps(c, _mm256_loadu_ps(s->x + i + 16)); d = _mm256_add_ps(d, _mm256_loadu_ps(s->x + i + 24));
    }
    volatile float sink = ((float *)&a)[0] + ((float *)&b)[1] + ((float *)&c)[2] + ((float *)&d)[3]; (void)sink;
}

__attribute__((target("avx2"))) static void write_range(float *y, long n, int stream) {
    __m256 v = _mm256_set1_ps(1.5f);
    long i = 0;
    if (stream) { while (i < n && ((uintptr_t)(y + i) & 31)) y[i++] = 1.5f; for (; i + 8 <= n; i += 8) _mm256_stream_ps(y + i, v); }
    else for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, v);
    for (; i < n; i++) y[i] = 1.5f;
}

static void write_y(void *p) { shape_ctx *s = p; write_range(s->y, s->N * s->C * s->HW, s->stream); __atomic_thread_fence(__ATOMIC_SEQ_CST); }

__attribute__((target("avx2"))) static float sum_range(const float *x, long n) {
    __m256 a = _mm256_setzero_ps(), b = a;
    long i = 0;
    for (; i + 16 <= n; i += 16) { a = _mm256_add_ps(a, _mm256_loadu_ps(x + i)); b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8)); }
    float r = ((float *)&a)[0] + ((float *)&b)[0];
    for (; i < n; i++) r += x[i];
    return r;
}

__attribute__((target("avx2"))) static void copy_range(const float *x, float *y, long n, int stream) {
    long i = 0;
    if (stream) {
        while (i < n && ((uintptr_t)(y + i) & 31)) { y[i] = x[i]; i++; }
        for (; i + 8 <= n; i += 8) _mm256_stream_ps(y + i, _mm256_loadu_ps(x + i));
    } else for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_loadu_ps(x + i));
    for (; i < n; i++) y[i] = x[i];
}

/// The blocked training kernel's memory traffic without its arithmetic, pipelined as the
/// kernel is (CBNKernels `nchw_forward_step`): for each sample, copy the current group's
/// runs to y (the output pass), then read the next group's runs (the statistics pass).
static void traffic_train(void *p) {
    shape_ctx *s = p; volatile float sink = 0;
    long HW = s->HW, C = s->C;
    for (long g0 = -s->group; g0 < C; g0 += s->group) {
        long a0 = g0 < 0 ? 0 : g0, a1 = g0 < 0 ? 0 : (g0 + s->group < C ? g0 + s->group : C);
        long n0 = g0 + s->group, n1 = n0 + s->group < C ? n0 + s->group : C;
        if (n0 > C) n0 = C;
        for (long b = 0; b < s->N; b++) {
            if (a1 > a0) copy_range(s->x + (b * C + a0) * HW, s->y + (b * C + a0) * HW, (a1 - a0) * HW, s->stream);
            if (n1 > n0) sink += sum_range(s->x + (b * C + n0) * HW, (n1 - n0) * HW);
        }
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

__attribute__((target("avx2"))) static void add_range(const float *x, const float *d, float *y, long n, int stream) {
    long i = 0;
    if (stream) {
        while (i < n && ((uintptr_t)(y + i) & 31)) { y[i] = x[i] + d[i]; i++; }
        for (; i + 8 <= n; i += 8) _mm256_stream_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(d + i)));
    } else for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(d + i)));
    for (; i < n; i++) y[i] = x[i] + d[i];
}

/// Inference's traffic: read x, write y — with ordinary stores where the output stays in
/// cache (each line of y is first read for ownership), as any in-cache output must be
/// written; memcpy avoids that read (rep movsb).
static void traffic_copy(void *p) {
    shape_ctx *s = p; copy_range(s->x, s->y, s->N * s->C * s->HW, s->stream);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/// Reads x and dy side by side, as the statistics pass with dy does (row by row).
__attribute__((target("avx2"))) static float sum2_range(const float *x, const float *d, long n) {
    __m256 a = _mm256_setzero_ps(), b = a;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_add_ps(a, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i + 8)));
        b = _mm256_add_ps(b, _mm256_add_ps(_mm256_loadu_ps(d + i), _mm256_loadu_ps(d + i + 8)));
    }
    float r = ((float *)&a)[0] + ((float *)&b)[0];
    for (; i < n; i++) r += x[i] + d[i];
    return r;
}

/// NHWC backward: read x and dy side by side (statistics), then read both again and write dx.
static void traffic_2read_back(void *p) {
    shape_ctx *s = p; long n = s->N * s->C * s->HW; volatile float sink = sum2_range(s->x, s->dy, n); (void)sink;
    add_range(s->x, s->dy, s->y, n, s->stream);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/// The alternative to reading x and dy twice in NHWC backward: channel blocks of one
/// cache line (16 values) per row, each block's lines of x and dy read for its sums and
/// then again, from cache while the block's 2·rows lines fit it, with dx written: one
/// read of each from memory, in 64-byte pieces a row (C values) apart. Needs C a multiple
/// of 16 (the bench shapes).
__attribute__((target("avx2"))) static void traffic_blocked_back(void *p) {
    shape_ctx *s = p; const long rows = s->N * s->HW, C = s->C;
    float sink = 0;
    for (long c0 = 0; c0 + 16 <= C; c0 += 16) {
        __m256 a = _mm256_setzero_ps(), b = a;
        for (long r = 0; r < rows; r++) {
            const float *x = s->x + r * C + c0, *d = s->dy + r * C + c0;
            _mm_prefetch((const char *)(x + 16 * C), _MM_HINT_T0); _mm_prefetch((const char *)(d + 16 * C), _MM_HINT_T0);
            a = _mm256_add_ps(a, _mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8)));
            b = _mm256_add_ps(b, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_loadu_ps(d + 8)));
        }
        sink += ((float *)&a)[0] + ((float *)&b)[0];
        for (long r = 0; r < rows; r++) {
            const float *x = s->x + r * C + c0, *d = s->dy + r * C + c0;
            float *y = s->y + r * C + c0;
            const __m256 y0 = _mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(d)), y1 = _mm256_add_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(d + 8));
            if (s->stream) { _mm256_stream_ps(y, y0); _mm256_stream_ps(y + 8, y1); } else { _mm256_storeu_ps(y, y0); _mm256_storeu_ps(y + 8, y1); }
        }
    }
    volatile float keep = sink; (void)keep;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void traffic_2read(void *p) {
    shape_ctx *s = p; long n = s->N * s->C * s->HW; volatile float sink = sum_range(s->x, n); (void)sink;
    copy_range(s->x, s->y, n, s->stream);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/// The fused training kernel's C passes with Swift's orchestration reduced to the
/// coefficient arithmetic (what FusedBatchNorm.trainingForward does per group), for
/// float32 (P) or, on the 16-bit copies of the data, float16 and bfloat16.
static const bn_passes *P, *P32, *P16, *PB16;
static void kernel_train(void *p) {
    shape_ctx *s = p; double n = (double)(s->N * s->HW);
    long g0 = 0, g1 = s->group < s->C ? s->group : s->C;
    P->nchw_forward_step(s->x, s->y, s->N, s->C, s->HW, 0, 0, 0, 0, 0, 0, s->stream, 0, g0, g1, s->pivot, s->acc, s->out);
    while (g0 < s->C) {
        for (long c = g0; c < g1; c++) {
            double sm = s->out[4 * (c - g0)], q = s->out[4 * (c - g0) + 1], v = (q - sm * sm / n) / n;
            s->mean[c] = s->pivot[c] + sm / n; s->scale[c] = 1 / __builtin_sqrt(v + 1e-5); s->shift[c] = 0.1;
        }
        long n0 = g1, n1 = g1 + s->group < s->C ? g1 + s->group : s->C;
        P->nchw_forward_step(s->x, s->y, s->N, s->C, s->HW, g0, g1, s->mean, s->scale, s->shift, 0, s->stream, s->nan_free, n0, n1, s->pivot,
                             s->acc, s->out);
        g0 = n0; g1 = n1;
    }
    bn_stream_fence();
}
static void kernel_infer(void *p) {
    shape_ctx *s = p;
    P->runs_apply(s->x, s->y, s->C, s->HW, 0, s->N * s->C, s->mean, s->scale, s->shift, 0, s->stream);
    bn_stream_fence();
}
static void kernel_back(void *p) {
    shape_ctx *s = p;
    long g0 = 0, g1 = s->group < s->C ? s->group : s->C;
    P->nchw_backward_step(s->x, s->dy, 0, s->y, s->N, s->C, s->HW, 0, 0, 0, 0, 0, 0, s->stream, 0, g0, g1, s->pivot, s->acc, s->out);
    while (g0 < s->C) {
        long n0 = g1, n1 = g1 + s->group < s->C ? g1 + s->group : s->C;
        P->nchw_backward_step(s->x, s->dy, 0, s->y, s->N, s->C, s->HW, g0, g1, s->mean, s->scale, s->shift, s->scale, s->stream, s->nan_free, n0,
                              n1, s->pivot, s->acc, s->out);
        g0 = n0; g1 = n1;
    }
    bn_stream_fence();
}

/// NHWC training: 64 row blocks of statistics, then the output pass over all rows (the
/// tensor is read as N·H·W rows of C channels).
static void kernel_nhwc_train(void *p) {
    shape_ctx *s = p; long rows = s->N * s->HW, C = s->C, blocks = rows < 64 ? rows : 64;
    for (long b = 0; b < blocks; b++) {
        memset(s->acc, 0, 2 * C * sizeof(double));
        P->rows_sums(s->x, 0, 0, rows * b / blocks, rows * (b + 1) / blocks, C, s->pivot, s->acc, s->acc + C, 0, 0);
    }
    P->rows_apply(s->x, s->y, 0, rows, C, s->mean, s->scale, s->shift, 0, s->stream, 1);
    bn_stream_fence();
}
/// NHWC backward as the kernel cuts it: the sums with dy over min(rows, 64) row blocks,
/// then the gradient pass (x and dy are read twice).
static void kernel_nhwc_back(void *p) {
    shape_ctx *s = p; long rows = s->N * s->HW, C = s->C, blocks = rows < 64 ? rows : 64;
    for (long b = 0; b < blocks; b++) {
        memset(s->out, 0, 4 * C * sizeof(double));
        P->rows_sums(s->x, s->dy, 0, rows * b / blocks, rows * (b + 1) / blocks, C, s->pivot, s->out, s->out + C, s->out + 2 * C,
                     s->out + 3 * C);
    }
    P->rows_gradient(s->x, s->dy, 0, s->y, 0, rows, C, s->mean, s->scale, s->shift, s->scale, s->stream, 1);
    bn_stream_fence();
}
static void kernel_nhwc_infer(void *p) {
    shape_ctx *s = p;
    P->rows_apply(s->x, s->y, 0, s->N * s->HW, s->C, s->mean, s->scale, s->shift, 0, s->stream, 0);
    bn_stream_fence();
}

/// Training on the float16 / bfloat16 copies (same values rounded): time per element
/// against the float32 kernel is the 16-bit goal.
static void kernel_train_16(shape_ctx *s, const bn_passes *p, uint16_t *x, uint16_t *y) {
    shape_ctx t = *s; t.x = (float *)x; t.y = (float *)y; t.stream = (long)s->N * s->C * s->HW * 2 > (32l << 20);
    const bn_passes *saved = P; P = p; kernel_train(&t); P = saved;
}
static void kernel_train_f16(void *v) { shape_ctx *s = v; kernel_train_16(s, P16, s->h, s->hy); }
static void kernel_train_bf16(void *v) { shape_ctx *s = v; kernel_train_16(s, PB16, s->b, s->by); }

static shape_ctx make(long N, long C, long HW, long group_bytes) {
    shape_ctx s = {0};
    long n = N * C * HW;
    s.N = N; s.C = C; s.HW = HW;
    s.x = aligned_alloc(64, n * 4); s.y = aligned_alloc(64, n * 4); s.dy = aligned_alloc(64, n * 4);
    uint64_t r = 1;
    for (long i = 0; i < n; i++) { r = r * 6364136223846793005u + 1442695040888963407u; s.x[i] = (float)(r >> 40) * 0x1p-24f - 0.5f; s.dy[i] = s.x[i] * 0.5f; s.y[i] = 0; }
    s.h = aligned_alloc(64, n * 2); s.hy = aligned_alloc(64, n * 2); s.b = aligned_alloc(64, n * 2); s.by = aligned_alloc(64, n * 2);
    P16->narrow(s.x, s.h, n); PB16->narrow(s.x, s.b, n);
    s.pivot = calloc(C, 8); s.mean = calloc(C, 8); s.scale = calloc(C, 8); s.shift = calloc(C, 8);
    s.nan_free = malloc(C); memset(s.nan_free, 1, C);  // the data are finite: as FusedBatchNorm decides (NaNFree)
    for (long c = 0; c < C; c++) { s.pivot[c] = s.x[c * HW]; s.scale[c] = 1.01; s.mean[c] = 0.01; }
    long per = N * HW * 4;
    s.group = group_bytes / per > 0 ? group_bytes / per : 1;
    if (s.group > C) s.group = C;
    s.acc = calloc(C * 4 * BN_ACC_DOUBLES, 8); s.out = calloc(4 * C, 8);
    s.stream = n * 4 > (32l << 20);
    return s;
}

/// Nanoseconds one read of `clock` takes (median of 21 runs of 10,000 reads, wall time): the
/// thread-CPU clock is a system call where the monotonic one is not (vDSO), which is why the
/// timings here keep it out of short intervals.
static double clock_read_ns(clockid_t clock) {
    double t[21];
    for (int r = 0; r < 21; r++) {
        double a = now(CLOCK_MONOTONIC);
        for (int i = 0; i < 10000; i++) (void)now(clock);
        t[r] = (now(CLOCK_MONOTONIC) - a) * 1e9 / 10000;
    }
    return median(t, 21);
}

/// Nanoseconds per element of `fn` on an L1-resident shape (the minimum over 125 timings
/// of 16 calls each). Reading the thread-CPU clock is a system call (about 0.5 us on this
/// VM, a fifth of one call of the training passes on 8192 values); timed one call at a
/// time, it added 10-20 % to these figures.
static double per_element(work_fn fn, long N, long C, long HW) {
    shape_ctx s = make(N, C, HW, 1 << 30);
    s.stream = 0;
    double best = 1e9;
    const int calls = 16;
    for (int rep = 0; rep < 125; rep++) {
        double c0 = now(CLOCK_THREAD_CPUTIME_ID);
        for (int k = 0; k < calls; k++) fn(&s);
        double c1 = now(CLOCK_THREAD_CPUTIME_ID);
        if (c1 - c0 < best) best = c1 - c0;
    }
    return best * 1e9 / ((double)calls * (double)(N * C * HW));
}

__attribute__((target("avx512f"))) static double fma_per_ns(void) {
    __m512d a[8]; for (int i = 0; i < 8; i++) a[i] = _mm512_set1_pd(1.0 + i * 1e-3);
    const __m512d m = _mm512_set1_pd(0.999999), c = _mm512_set1_pd(1e-7);
    long iters = 20000000; double best = 1e9;
    for (int t = 0; t < 5; t++) {
        double c0 = now(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < iters; i++) for (int j = 0; j < 8; j++) a[j] = _mm512_fmadd_pd(a[j], m, c);
        double c1 = now(CLOCK_THREAD_CPUTIME_ID); if (c1 - c0 < best) best = c1 - c0;
    }
    double s = 0; for (int j = 0; j < 8; j++) s += _mm512_reduce_add_pd(a[j]);
    volatile double sink = s; (void)sink;
    return iters * 8.0 * 8.0 / (best * 1e9);  // double lanes per ns
}

__attribute__((target("avx512f"))) static double cvt_per_ns(void) {
    __m256 a[8]; for (int i = 0; i < 8; i++) a[i] = _mm256_set1_ps(1.0f + i);
    __m512d acc = _mm512_setzero_pd();
    long iters = 20000000; double best = 1e9;
    for (int t = 0; t < 5; t++) {
        double c0 = now(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < iters; i++) {
            for (int j = 0; j < 8; j++) { __m512d d = _mm512_cvtps_pd(a[j]); a[j] = _mm512_cvtpd_ps(d); }
        }
        double c1 = now(CLOCK_THREAD_CPUTIME_ID); if (c1 - c0 < best) best = c1 - c0;
    }
    for (int j = 0; j < 8; j++) acc = _mm512_add_pd(acc, _mm512_cvtps_pd(a[j]));
    volatile double sink = _mm512_reduce_add_pd(acc); (void)sink;
    return iters * 8.0 * 8.0 * 2 / (best * 1e9);  // conversions (lanes) per ns, both directions
}

/// The instruction mix of the double-precision algorithm, registers only (no memory,
/// 4 independent chains of 8 elements, one loop branch per 32 elements): the least time
/// this core needs for the kernels' arithmetic whatever the memory does (thread CPU
/// time: a busy machine does not inflate it). AVX-512; 0 elsewhere. Per 8 elements:
///   stats:    vcvtps2pd, vsubpd, vaddpd, vfmadd231pd                 (Σu, Σu²)
///   apply_watched:   vcvtps2pd, vsubpd, vfmadd213pd, vcvtpd2ps, and one vfmadd231ps (ymm)
///                    into a watch vector (two chains): outputs not proven NaN-free, on
///                    finite data (the NaN test they replaced: vcmpunordps, masked move)
///   stats4:   2 vcvtps2pd, vsubpd, 2 vaddpd, 2 vfmadd231pd           (Σu, Σu², Σd, Σd·u)
///   apply_finite:    vcvtps2pd, vsubpd, vfmadd213pd, vcvtpd2ps (outputs proven NaN-free)
///   gradient_finite: 2 vcvtps2pd, vsubpd, 2 vfmadd, vcvtpd2ps
/// Training and backward skip the NaN test on channels proven NaN-free (FusedBatchNorm+NaNFree;
/// the bench data are finite); inference (not proven NaN-free) watches its outputs instead
/// of testing them (passes_template.h, WATCH), and on finite data never runs again.
#define ZERO_ALL "vpxord %%zmm0, %%zmm0, %%zmm0\n" "vpxord %%zmm1, %%zmm1, %%zmm1\n" "vpxord %%zmm2, %%zmm2, %%zmm2\n" "vpxord %%zmm3, %%zmm3, %%zmm3\n" "vpxord %%zmm4, %%zmm4, %%zmm4\n" "vpxord %%zmm5, %%zmm5, %%zmm5\n" "vpxord %%zmm6, %%zmm6, %%zmm6\n" "vpxord %%zmm7, %%zmm7, %%zmm7\n" "vpxord %%zmm8, %%zmm8, %%zmm8\n" "vpxord %%zmm9, %%zmm9, %%zmm9\n" "vpxord %%zmm10, %%zmm10, %%zmm10\n" "vpxord %%zmm11, %%zmm11, %%zmm11\n" "vpxord %%zmm12, %%zmm12, %%zmm12\n" "vpxord %%zmm13, %%zmm13, %%zmm13\n" "vpxord %%zmm14, %%zmm14, %%zmm14\n" "vpxord %%zmm15, %%zmm15, %%zmm15\n" "vpxord %%zmm16, %%zmm16, %%zmm16\n" "vpxord %%zmm17, %%zmm17, %%zmm17\n" "vpxord %%zmm18, %%zmm18, %%zmm18\n" "vpxord %%zmm19, %%zmm19, %%zmm19\n" "vpxord %%zmm20, %%zmm20, %%zmm20\n" "vpxord %%zmm21, %%zmm21, %%zmm21\n" "vpxord %%zmm22, %%zmm22, %%zmm22\n" "vpxord %%zmm23, %%zmm23, %%zmm23\n" "vpxord %%zmm24, %%zmm24, %%zmm24\n" "vpxord %%zmm25, %%zmm25, %%zmm25\n" "vpxord %%zmm26, %%zmm26, %%zmm26\n" "vpxord %%zmm27, %%zmm27, %%zmm27\n" "vpxord %%zmm28, %%zmm28, %%zmm28\n" "vpxord %%zmm29, %%zmm29, %%zmm29\n" "vpxord %%zmm30, %%zmm30, %%zmm30\n" "vpxord %%zmm31, %%zmm31, %%zmm31\n"
#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"
#define MIX_LOOP(name, body) \
    __attribute__((target("avx512f,avx512vl"))) static double name(void) { \
        double best = 1e9; long iters = 2000000; \
        for (int t = 0; t < 7; t++) { \
            __asm__ volatile(ZERO_ALL ::: CLOBBERS); /* no denormal or NaN operands */ \
            double c0 = now(CLOCK_THREAD_CPUTIME_ID); \
            for (long i = 0; i < iters; i++) __asm__ volatile(body ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "memory"); \
            double c1 = now(CLOCK_THREAD_CPUTIME_ID); if (c1 - c0 < best) best = c1 - c0; \
        } \
        return best * 1e9 / (iters * 32.0); }
MIX_LOOP(mix_stats, "vcvtps2pd %%ymm0, %%zmm16\n vsubpd %%zmm15, %%zmm16, %%zmm16\n vaddpd %%zmm16, %%zmm1, %%zmm1\n vfmadd231pd %%zmm16, %%zmm16, %%zmm2\n" "vcvtps2pd %%ymm0, %%zmm17\n vsubpd %%zmm15, %%zmm17, %%zmm17\n vaddpd %%zmm17, %%zmm3, %%zmm3\n vfmadd231pd %%zmm17, %%zmm17, %%zmm4\n" "vcvtps2pd %%ymm0, %%zmm18\n vsubpd %%zmm15, %%zmm18, %%zmm18\n vaddpd %%zmm18, %%zmm5, %%zmm5\n vfmadd231pd %%zmm18, %%zmm18, %%zmm6\n" "vcvtps2pd %%ymm0, %%zmm19\n vsubpd %%zmm15, %%zmm19, %%zmm19\n vaddpd %%zmm19, %%zmm7, %%zmm7\n vfmadd231pd %%zmm19, %%zmm19, %%zmm8\n")
MIX_LOOP(mix_stats4, "vcvtps2pd %%ymm0, %%zmm16\n vcvtps2pd %%ymm0, %%zmm20\n vsubpd %%zmm15, %%zmm16, %%zmm16\n vaddpd %%zmm16, %%zmm1, %%zmm1\n" "vaddpd %%zmm20, %%zmm24, %%zmm24\n vfmadd231pd %%zmm16, %%zmm16, %%zmm5\n vfmadd231pd %%zmm20, %%zmm16, %%zmm28\n" "vcvtps2pd %%ymm0, %%zmm17\n vcvtps2pd %%ymm0, %%zmm21\n vsubpd %%zmm15, %%zmm17, %%zmm17\n vaddpd %%zmm17, %%zmm2, %%zmm2\n" "vaddpd %%zmm21, %%zmm25, %%zmm25\n vfmadd231pd %%zmm17, %%zmm17, %%zmm6\n vfmadd231pd %%zmm21, %%zmm17, %%zmm29\n" "vcvtps2pd %%ymm0, %%zmm18\n vcvtps2pd %%ymm0, %%zmm22\n vsubpd %%zmm15, %%zmm18, %%zmm18\n vaddpd %%zmm18, %%zmm3, %%zmm3\n" "vaddpd %%zmm22, %%zmm26, %%zmm26\n vfmadd231pd %%zmm18, %%zmm18, %%zmm7\n vfmadd231pd %%zmm22, %%zmm18, %%zmm30\n" "vcvtps2pd %%ymm0, %%zmm19\n vcvtps2pd %%ymm0, %%zmm23\n vsubpd %%zmm15, %%zmm19, %%zmm19\n vaddpd %%zmm19, %%zmm4, %%zmm4\n" "vaddpd %%zmm23, %%zmm27, %%zmm27\n vfmadd231pd %%zmm19, %%zmm19, %%zmm8\n vfmadd231pd %%zmm23, %%zmm19, %%zmm31\n")

MIX_LOOP(mix_apply_watched, "vcvtps2pd %%ymm0, %%zmm16\n vsubpd %%zmm15, %%zmm16, %%zmm16\n vfmadd213pd %%zmm14, %%zmm13, %%zmm16\n vcvtpd2ps %%zmm16, %%ymm16\n vfmadd231ps %%ymm12, %%ymm16, %%ymm1\n" "vcvtps2pd %%ymm0, %%zmm17\n vsubpd %%zmm15, %%zmm17, %%zmm17\n vfmadd213pd %%zmm14, %%zmm13, %%zmm17\n vcvtpd2ps %%zmm17, %%ymm17\n vfmadd231ps %%ymm12, %%ymm17, %%ymm2\n" "vcvtps2pd %%ymm0, %%zmm18\n vsubpd %%zmm15, %%zmm18, %%zmm18\n vfmadd213pd %%zmm14, %%zmm13, %%zmm18\n vcvtpd2ps %%zmm18, %%ymm18\n vfmadd231ps %%ymm12, %%ymm18, %%ymm1\n" "vcvtps2pd %%ymm0, %%zmm19\n vsubpd %%zmm15, %%zmm19, %%zmm19\n vfmadd213pd %%zmm14, %%zmm13, %%zmm19\n vcvtpd2ps %%zmm19, %%ymm19\n vfmadd231ps %%ymm12, %%ymm19, %%ymm2\n")
MIX_LOOP(mix_apply_finite, "vcvtps2pd %%ymm0, %%zmm16\n vsubpd %%zmm15, %%zmm16, %%zmm16\n vfmadd213pd %%zmm14, %%zmm13, %%zmm16\n vcvtpd2ps %%zmm16, %%ymm16\n" "vcvtps2pd %%ymm0, %%zmm17\n vsubpd %%zmm15, %%zmm17, %%zmm17\n vfmadd213pd %%zmm14, %%zmm13, %%zmm17\n vcvtpd2ps %%zmm17, %%ymm17\n" "vcvtps2pd %%ymm0, %%zmm18\n vsubpd %%zmm15, %%zmm18, %%zmm18\n vfmadd213pd %%zmm14, %%zmm13, %%zmm18\n vcvtpd2ps %%zmm18, %%ymm18\n" "vcvtps2pd %%ymm0, %%zmm19\n vsubpd %%zmm15, %%zmm19, %%zmm19\n vfmadd213pd %%zmm14, %%zmm13, %%zmm19\n vcvtpd2ps %%zmm19, %%ymm19\n")
MIX_LOOP(mix_gradient_finite, "vcvtps2pd %%ymm0, %%zmm16\n vcvtps2pd %%ymm0, %%zmm20\n vsubpd %%zmm15, %%zmm16, %%zmm16\n" "vfmadd213pd %%zmm14, %%zmm13, %%zmm20\n vfmadd231pd %%zmm13, %%zmm16, %%zmm20\n vcvtpd2ps %%zmm20, %%ymm20\n" "vcvtps2pd %%ymm0, %%zmm17\n vcvtps2pd %%ymm0, %%zmm21\n vsubpd %%zmm15, %%zmm17, %%zmm17\n" "vfmadd213pd %%zmm14, %%zmm13, %%zmm21\n vfmadd231pd %%zmm13, %%zmm17, %%zmm21\n vcvtpd2ps %%zmm21, %%ymm21\n" "vcvtps2pd %%ymm0, %%zmm18\n vcvtps2pd %%ymm0, %%zmm22\n vsubpd %%zmm15, %%zmm18, %%zmm18\n" "vfmadd213pd %%zmm14, %%zmm13, %%zmm22\n vfmadd231pd %%zmm13, %%zmm18, %%zmm22\n vcvtpd2ps %%zmm22, %%ymm22\n" "vcvtps2pd %%ymm0, %%zmm19\n vcvtps2pd %%ymm0, %%zmm23\n vsubpd %%zmm15, %%zmm19, %%zmm19\n" "vfmadd213pd %%zmm14, %%zmm13, %%zmm23\n vfmadd231pd %%zmm13, %%zmm19, %%zmm23\n vcvtpd2ps %%zmm23, %%ymm23\n")

// ---- two cores ----

typedef struct { work_fn fn; void *ctx; } job;
static job second_job;
static int second_go, second_done;  // accessed with __atomic builtins

static void *second_thread(void *unused) {
    (void)unused;
    for (;;) {
        while (!__atomic_load_n(&second_go, __ATOMIC_ACQUIRE)) _mm_pause();
        __atomic_store_n(&second_go, 0, __ATOMIC_RELAXED);
        second_job.fn(second_job.ctx);
        __atomic_store_n(&second_done, 1, __ATOMIC_RELEASE);
    }
    return 0;
}

/// fn(a) here and fn(b) on the second thread at once; returns when both are done.
static void both(work_fn fn, void *a, void *b) {
    second_job = (job){fn, b};
    __atomic_store_n(&second_done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&second_go, 1, __ATOMIC_RELEASE);
    fn(a);
    while (!__atomic_load_n(&second_done, __ATOMIC_ACQUIRE)) _mm_pause();
}

typedef struct { const void *src; void *dst; size_t bytes; shape_ctx *l1; } half;
static void copy_half(void *p) { half *h = p; copy_bytes(h->dst, h->src, h->bytes); }
/// The training passes over an L1-resident shape, 16 times (its half of the work).
static void train_half(void *p) { half *h = p; for (int i = 0; i < 16; i++) kernel_train(h->l1); }

/// Median speed-up (1-thread time of both halves ÷ 2-thread wall time), interleaved.
static double speedup(work_fn fn, half *a, half *b, double min_s) {
    enum { M = 201 };
    double r[M], spent = 0; int n = 0;
    fn(a); fn(b); both(fn, a, b);
    while (n < M && (n < 15 || spent < min_s)) {
        double t0 = now(CLOCK_MONOTONIC); fn(a); fn(b);
        double t1 = now(CLOCK_MONOTONIC); both(fn, a, b);
        double t2 = now(CLOCK_MONOTONIC);
        r[n++] = (t1 - t0) / (t2 - t1); spent += t2 - t0;
    }
    return median(r, n);
}

/// `speedup`, measured again (up to 3 times in all) while it reads below 1.3: another
/// process on the shared host can hold the second core for a whole measurement (run 9
/// of docs/speed read 1.00), and that only ever lowers the figure, so the largest of
/// the attempts is what the machine allows.
static double best_speedup(work_fn fn, half *a, half *b, double min_s) {
    double best = speedup(fn, a, b, min_s);
    for (int attempt = 1; attempt < 3 && best < 1.3; attempt++) {
        double again = speedup(fn, a, b, min_s);
        if (again > best) best = again;
    }
    return best;
}

int main(int argc, char **argv) {
    int json = argc > 1 && strcmp(argv[1], "--json") == 0;
    const char *env = getenv("BNSPEC_CPU");
    int isa = bn_isa_supported();
    if (env && strcmp(env, "baseline") == 0) isa = 0;
    if (env && strcmp(env, "avx2") == 0 && isa > 1) isa = 1;
    P = P32 = bn_passes_get(isa, BN_STORAGE_F32);
    P16 = bn_passes_get(isa, BN_STORAGE_F16); PB16 = bn_passes_get(isa, BN_STORAGE_BF16);
    long budget = bn_l2_cache_bytes() > 0 ? bn_l2_cache_bytes() / 2 : 512 << 10;
    if (getenv("BOUNDS_GROUP_BYTES")) budget = atol(getenv("BOUNDS_GROUP_BYTES"));
    double min_s = getenv("BOUNDS_MIN_SECONDS") ? atof(getenv("BOUNDS_MIN_SECONDS")) : 0.3;

    // Arithmetic per element, from L1 (32 KiB of x: 1×8×32×32).
    double train_ns = per_element(kernel_train, 1, 8, 1024), infer_ns = per_element(kernel_infer, 1, 8, 1024);
    double back_ns = per_element(kernel_back, 1, 4, 1024);
    double fma = isa >= 2 ? fma_per_ns() : 0, cvt = isa >= 2 ? cvt_per_ns() : 0;
    // Instruction-mix bounds, ns per element (AVX-512 only).
    // Training and backward: the NaN-free forms (the bench data are finite); inference tests.
    double ms = isa >= 2 ? mix_stats() : 0, ma = isa >= 2 ? mix_apply_watched() : 0, ms4 = isa >= 2 ? mix_stats4() : 0,
           maf = isa >= 2 ? mix_apply_finite() : 0, mgf = isa >= 2 ? mix_gradient_finite() : 0;

    long shapes[][4] = {{32, 64, 28, 28}, {64, 256, 56, 56}, {1, 16, 25, 25}};
    double thread_clock = clock_read_ns(CLOCK_THREAD_CPUTIME_ID), mono_clock = clock_read_ns(CLOCK_MONOTONIC);
    if (json) printf("{\"isa\": %d, \"l2_bytes\": %ld, \"group_budget_bytes\": %ld, \"fma_lanes_per_ns\": %.3f, \"cvt_lanes_per_ns\": %.3f, "
                     "\"clock_read_ns\": {\"thread_cputime\": %.1f, \"monotonic\": %.1f}, "
                     "\"compute_ns_per_element\": {\"training\": %.4f, \"inference\": %.4f, \"backward\": %.4f}, "
                     "\"instruction_ns_per_element\": {\"training\": %.4f, \"inference\": %.4f, \"backward\": %.4f}, \"shapes\": [",
                     isa, bn_l2_cache_bytes(), budget, fma, cvt, thread_clock, mono_clock, train_ns, infer_ns, back_ns, ms + maf, ma, ms4 + mgf);
    else printf("level %d, L2 %ld B, group budget %ld B; 1 core: %.2f FMA lanes/ns, %.2f conversions/ns; "
                "one clock read: thread-CPU %.1f ns, monotonic %.1f ns\n"
                "ns per element: kernels from L1 training %.3f, inference %.3f, backward %.3f; "
                "their instruction mix alone %.3f, %.3f, %.3f\n\n%-14s %-14s %10s %10s %10s %10s\n",
                isa, bn_l2_cache_bytes(), budget, fma, cvt, thread_clock, mono_clock, train_ns, infer_ns, back_ns, ms + maf, ma, ms4 + mgf,
                "shape", "what", "wall ms", "cpu ms", "x memcpy", "cpu ratio");
    for (int k = 0; k < 3; k++) {
        long N = shapes[k][0], C = shapes[k][1], HW = shapes[k][2] * shapes[k][3], n = N * C * HW;
        shape_ctx s = make(N, C, HW, budget);
        struct { const char *name; work_fn fn; int copies; long group; } rows[MAX_ROWS] = {
            {"memcpy", copy_x, 1, budget}, {"read", read_x, 1, budget}, {"write", write_y, 1, budget},
            {"traffic:train", traffic_train, 1, budget}, {"traffic:2read", traffic_2read, 1, budget},
            {"traffic:2read-back", traffic_2read_back, 2, budget}, {"traffic:1read-back-blocked", traffic_blocked_back, 2, budget},
            {"traffic:copy", traffic_copy, 1, budget},
            {"kernel:train", kernel_train, 1, budget}, {"kernel:infer", kernel_infer, 1, budget}, {"kernel:back", kernel_back, 2, budget},
            {"nhwc:train", kernel_nhwc_train, 1, budget}, {"nhwc:infer", kernel_nhwc_infer, 1, budget},
            {"nhwc:back", kernel_nhwc_back, 2, budget},
            {"f16:train", kernel_train_f16, 1, budget}, {"bf16:train", kernel_train_bf16, 1, budget},
        };
        int R = 16;
        // BOUNDS_GROUPS=b1,b2,…: extra rows timing the training and backward kernels with
        // those channel-group budgets (bytes), the sweep behind ChannelGroups.
        char sweep_names[MAX_ROWS][40];
        if (getenv("BOUNDS_GROUPS")) {
            char *list = strdup(getenv("BOUNDS_GROUPS"));
            for (char *tok = strtok(list, ","); tok && R + 2 <= MAX_ROWS; tok = strtok(0, ",")) {
                long g = atol(tok);
                snprintf(sweep_names[R], 40, "train g=%ldK", g >> 10);
                rows[R] = (typeof(rows[0])){sweep_names[R], kernel_train, 1, g}; R++;
                snprintf(sweep_names[R], 40, "back g=%ldK", g >> 10);
                rows[R] = (typeof(rows[0])){sweep_names[R], kernel_back, 2, g}; R++;
            }
        }
        work_fn fns[MAX_ROWS]; void *ctxs[MAX_ROWS]; int copies[MAX_ROWS]; shape_ctx ss[MAX_ROWS]; double t[MAX_ROWS][4];
        for (int r = 0; r < R; r++) {
            ss[r] = s; fns[r] = rows[r].fn; ctxs[r] = &ss[r]; copies[r] = rows[r].copies;
            // As ChannelGroups: one group when every tensor of the call fits the 32 MiB cache
            // (x, y; x, dy, dx for backward), else groups of the budget (at least a channel).
            long per = N * HW * 4 * (rows[r].copies);
            ss[r].group = rows[r].group / per > 0 ? rows[r].group / per : 1;
            if (rows[r].group == budget && n * 4 * (rows[r].copies + 1) <= (32l << 20)) ss[r].group = C;
            if (ss[r].group > C) ss[r].group = C;
        }
        char name[32]; snprintf(name, sizeof name, "%ldx%ldx%ldx%ld", N, C, shapes[k][2], shapes[k][3]);
        interleaved(R, fns, ctxs, copies, min_s, t);
        double memcpy_ms = t[0][0] * 1e3;
        for (int r = 0; r < R; r++) {
            if (json) printf("%s{\"shape\": \"%s\", \"what\": \"%s\", \"seconds\": %.6g, \"ratio\": %.4f, \"cpu_seconds\": %.6g, "
                             "\"cpu_ratio\": %.4f}", (k || r) ? ", " : "", name, rows[r].name, t[r][0], t[r][1], t[r][2], t[r][3]);
            else printf("%-14s %-14s %10.3f %10.3f %10.2f %10.2f\n", name, rows[r].name, t[r][0] * 1e3, t[r][2] * 1e3, t[r][1], t[r][3]);
        }
        double per_ns = memcpy_ms * 1e6 / n;  // memcpy ns per element
        if (json) printf(", {\"shape\": \"%s\", \"what\": \"compute\", \"training_ratio\": %.4f, \"inference_ratio\": %.4f, \"backward_ratio\": %.4f, "
                         "\"instruction_training_ratio\": %.4f, \"instruction_inference_ratio\": %.4f, \"instruction_backward_ratio\": %.4f}",
                         name, train_ns / per_ns, infer_ns / per_ns, back_ns / (2 * per_ns), (ms + maf) / per_ns, ma / per_ns,
                         (ms4 + mgf) / (2 * per_ns));
        else printf("%-14s %-14s compute bound (÷ memcpy): kernels from L1 training %.2f, inference %.2f, backward %.2f; "
                    "instruction mix %.2f, %.2f, %.2f\n\n", name, "", train_ns / per_ns, infer_ns / per_ns, back_ns / (2 * per_ns),
                    (ms + maf) / per_ns, ma / per_ns, (ms4 + mgf) / (2 * per_ns));
        free(s.x); free(s.y); free(s.dy); free(s.h); free(s.hy); free(s.b); free(s.by); free(s.nan_free);
    }
    // Two cores (in-cache shape; the L1 shapes of the compute half: 1×8×32×32 each).
    double copy2 = 0, train2 = 0;
    {
        pthread_t t;
        if (pthread_create(&t, 0, second_thread, 0) == 0) {
            long n = 32l * 64 * 28 * 28;
            char *src = aligned_alloc(64, n * 4), *dst = aligned_alloc(64, n * 4);
            memset(src, 1, n * 4); memset(dst, 2, n * 4);
            shape_ctx l1a = make(1, 8, 1024, 1 << 30), l1b = make(1, 8, 1024, 1 << 30);
            l1a.stream = l1b.stream = 0;
            half a = {src, dst, (size_t)n * 2, &l1a}, b = {src + n * 2, dst + n * 2, (size_t)n * 2, &l1b};
            copy2 = best_speedup(copy_half, &a, &b, min_s);
            train2 = best_speedup(train_half, &a, &b, min_s);
        }
    }
    if (json) printf("], \"two_thread_speedup\": {\"memcpy\": %.4f, \"training_l1\": %.4f}}\n", copy2, train2);
    else printf("two threads, speed-up over one (32x64x28x28): memcpy %.2f, training passes from L1 %.2f\n", copy2, train2);
    return 0;
}
