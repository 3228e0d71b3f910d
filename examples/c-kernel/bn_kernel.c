/*
 * A plain C batch normalization kernel behind the bnspec kernel ABI (bnspec/bnspec_kernel.h):
 * two-pass statistics (mean, then Σ(x − μ)²), float32 arithmetic for f32, f16 and bf16 data
 * (double for f64), every op, dtype and layout of the ABI, running statistics with any batch
 * weight (so also the cumulative average), PyTorch's defaults where the caller asks for them
 * (eps 1e-5, batch weight 0.1, unbiased running variance, one value per channel refused).
 *
 * Compile-time switches (CMakeLists.txt builds each as its own library):
 *   -DBN_BUG=BN_BUG_EPS_OUTSIDE_SQRT   r = 1/(√σ² + eps) instead of 1/√(σ² + eps)
 *   -DBN_BUG=BN_BUG_ONE_PASS_VARIANCE  σ² = E[x²] − E[x]² in float32 (cancels on offset data)
 *   -DBN_BUG=BN_BUG_SEGFAULT           a write through a bad pointer on one case: training on
 *                                      a 1-D problem with D1 = 33 and eps = 1e-5
 *   -DBN_BUG=BN_BUG_UNKNOWN_CODE       every train call returns 7, not an ABI return code (the
 *                                      other entry points are right: they must still be audited)
 *   -DBN_RUNNING_STATISTICS=0          declare no running statistics (as a kernel whose framework
 *                                      keeps them): the audit judges y and the batch statistics only
 *   -DBNSPEC_KERNEL_PREFIX=demo_       export demo_bnspec_kernel_… (audit --symbol-prefix demo_)
 */
#include <bnspec/bnspec_kernel.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BN_BUG_NONE 0
#define BN_BUG_EPS_OUTSIDE_SQRT 1
#define BN_BUG_ONE_PASS_VARIANCE 2
#define BN_BUG_SEGFAULT 3
#define BN_BUG_UNKNOWN_CODE 4
#ifndef BN_BUG
#define BN_BUG BN_BUG_NONE
#endif
#ifndef BN_RUNNING_STATISTICS
#define BN_RUNNING_STATISTICS 1
#endif

#if BN_BUG == BN_BUG_NONE
#define BN_NAME "c-kernel"
#elif BN_BUG == BN_BUG_EPS_OUTSIDE_SQRT
#define BN_NAME "c-kernel (bug: eps outside sqrt)"
#elif BN_BUG == BN_BUG_ONE_PASS_VARIANCE
#define BN_NAME "c-kernel (bug: one-pass variance)"
#elif BN_BUG == BN_BUG_SEGFAULT
#define BN_NAME "c-kernel (bug: segfault on one case)"
#elif BN_BUG == BN_BUG_UNKNOWN_CODE
#define BN_NAME "c-kernel (bug: train returns 7)"
#endif

/* ---- Storage conversions (round to nearest even, as IEEE 754 and bfloat16 define) ---- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu, bits;
    if (exponent == 0) {  /* zero or subnormal: mantissa · 2⁻²⁴, exact in float */
        float f = (float)mantissa * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exponent == 31) bits = sign | 0x7F800000u | (mantissa << 13);
    else bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u); /* NaN, Inf */
    if (ax >= 0x477FF000u) return sign | 0x7C00u;                                /* ≥ 65520: Inf */
    if (ax < 0x38800000u) {                                                      /* < 2⁻¹⁴: subnormal */
        float a;
        memcpy(&a, &ax, sizeof a);
        return sign | (uint16_t)rintf(a * 0x1p24f); /* exact scaling, then ties to even */
    }
    uint32_t r = ax - 0x38000000u; /* rebias the exponent by 127 − 15 */
    r += 0xFFFu + ((r >> 13) & 1u);
    return sign | (uint16_t)(r >> 13);
}

static float bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)(0x7FC0u | ((x >> 16) & 0x8000u));
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/* ---- Problem geometry ---- */

typedef struct {
    int64_t n, c, s; /* batch, channels, spatial size */
    int32_t layout;
} geometry;

static void say(char *message, size_t size, const char *text) {
    if (message && size) snprintf(message, size, "%s", text);
}

static int32_t read_problem(const bnspec_problem *p, geometry *g, char *message, size_t size) {
    if (!p || p->struct_size < sizeof(bnspec_problem)) {
        say(message, size, "bnspec_problem older than this kernel's ABI");
        return BNSPEC_FAILED;
    }
    if (p->rank < 2 || p->rank > BNSPEC_MAX_RANK || (p->layout == BNSPEC_LAYOUT_NC && p->rank != 2)) {
        say(message, size, "shape rank outside [2, 8] (or NC with spatial dimensions)");
        return BNSPEC_UNSUPPORTED;
    }
    g->n = p->shape[0];
    g->c = p->shape[1];
    g->s = 1;
    for (int32_t i = 2; i < p->rank; i++) g->s *= p->shape[i];
    g->layout = p->layout;
    if (g->n * g->s == 0) {
        say(message, size, "a channel with no values: batch statistics are undefined");
        return BNSPEC_REFUSED;
    }
    return BNSPEC_OK;
}

/* Offset of element (sample b, channel c, spatial position k). */
static inline int64_t offset(const geometry *g, int64_t b, int64_t c, int64_t k) {
    return g->layout == BNSPEC_LAYOUT_NCHW ? (b * g->c + c) * g->s + k : (b * g->s + k) * g->c + c;
}

#if BN_BUG == BN_BUG_SEGFAULT
static volatile uintptr_t bad_address = 16; /* opaque to the compiler: a real invalid write */
static void crash_on_the_chosen_case(const bnspec_problem *p) {
    if (p->rank == 3 && p->shape[2] == 33 && p->eps == 1e-5) *(volatile float *)bad_address = 1.0f;
}
#else
#define crash_on_the_chosen_case(p) ((void)0)
#endif

/* ---- The four entry points, once per dtype (bn_kernel_impl.h) ---- */

#define BN_CAT2(a, b) a##b
#define BN_CAT(a, b) BN_CAT2(a, b)

#define SFX f32
#define T float
#define P float
#define A float
#define LOAD(v) (v)
#define STORE(a) (a)
#define SQRT sqrtf
#include "bn_kernel_impl.h"

#define SFX f16
#define T uint16_t
#define P float
#define A float
#define LOAD(v) half_to_float(v)
#define STORE(a) float_to_half(a)
#define SQRT sqrtf
#include "bn_kernel_impl.h"

#define SFX bf16
#define T uint16_t
#define P float
#define A float
#define LOAD(v) bf16_to_float(v)
#define STORE(a) float_to_bf16(a)
#define SQRT sqrtf
#include "bn_kernel_impl.h"

#define SFX f64
#define T double
#define P double
#define A double
#define LOAD(v) (v)
#define STORE(a) (a)
#define SQRT sqrt
#include "bn_kernel_impl.h"

/* ---- Description and supports table ---- */

int32_t bnspec_kernel_abi_version(void) { return BNSPEC_KERNEL_ABI_VERSION; }

int32_t bnspec_kernel_describe(bnspec_kernel_description *d, char *message, size_t size) {
    if (!d || d->struct_size < sizeof *d) {
        say(message, size, "bnspec_kernel_description older than this kernel's ABI");
        return BNSPEC_FAILED;
    }
    d->name = BN_NAME;
    d->version = "1.0";
#if BN_RUNNING_STATISTICS
    d->features = BNSPEC_FEATURE_RUNNING_STATISTICS | BNSPEC_FEATURE_CUMULATIVE_AVERAGE;
#else
    d->features = 0; /* train gets NULL running_mean/running_var and leaves them alone */
#endif
    return BNSPEC_OK;
}

int32_t bnspec_kernel_supports(int32_t op, int32_t dtype, int32_t layout) {
    return op >= 0 && op < BNSPEC_OP_COUNT && dtype >= 0 && dtype < BNSPEC_DTYPE_COUNT && layout >= 0 &&
           layout < BNSPEC_LAYOUT_COUNT;
}
