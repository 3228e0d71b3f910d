/*
 * bnspec_kernel.h — the C ABI through which `bnspec audit --library PATH` audits a batch
 * normalization kernel in a shared library (spec/AUDIT.md §7).
 *
 * ABI version 1. A kernel library exports, with C linkage and an optional common symbol
 * prefix P (`--symbol-prefix P`; symbols are then named P##bnspec_kernel_…):
 *
 *   required   bnspec_kernel_abi_version   returns BNSPEC_KERNEL_ABI_VERSION it was built with
 *              bnspec_kernel_describe      name, version, features (running statistics, cumulative)
 *              bnspec_kernel_supports      which op × dtype × layout it implements
 *   per dtype  bnspec_kernel_{train,infer,backward_train,backward_infer}_{f32,f16,bf16,f64}
 *              — exactly those of the dtypes its supports table names.
 *
 * Tensors are dense, in the problem's layout, with no padding:
 *   NCHW  [N][C][D1]…[Dk]   (any number k ≥ 0 of spatial dimensions)
 *   NHWC  [N][D1]…[Dk][C]
 *   NC    [N][C]
 * Per-channel vectors (gamma, beta, means, variances, dgamma, dbeta) hold C values.
 *
 * Storage types: f32 → float; f64 → double; f16 → uint16_t IEEE 754 binary16 bit patterns;
 * bf16 → uint16_t bfloat16 bit patterns (the top half of a float32). Per-channel vectors are
 * float for f32, f16 and bf16 data, double for f64 data.
 *
 * Return codes and messages: every entry point returns BNSPEC_OK or one of the codes below
 * and, when it returns anything else, writes a NUL-terminated one-line reason of at most
 * `message_size` bytes (including the NUL) into `message` (per call: no global or
 * thread-local state). BNSPEC_UNSUPPORTED: outside what the library implements (the audit
 * skips the case); BNSPEC_REFUSED: the library rejects this input or convention, as a
 * framework raises an error (e.g. one value per channel in training with the "error"
 * policy: a pass where the profile expects a refusal, a failure elsewhere); BNSPEC_FAILED:
 * anything else (allocation, backend error), answered like a refusal, with its message.
 *
 * Entry points must not keep pointers past the call, must not write to const inputs or
 * outside an output, and may be called repeatedly in one process. bnspec's host fills
 * outputs with NaN before each call, fails the case when a const input changed or a guard zone
 * before or after a buffer was written (a page each side; further out a write faults), and
 * forwards the library's stdout to stderr.
 *
 * A library built with a prefix defines BNSPEC_KERNEL_PREFIX before including this header:
 *   #define BNSPEC_KERNEL_PREFIX mylib_
 *   #include <bnspec/bnspec_kernel.h>
 * and then defines the plain names below; the header renames them to mylib_bnspec_kernel_….
 */
#ifndef BNSPEC_KERNEL_H
#define BNSPEC_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. Bumped on any incompatible change. */
#define BNSPEC_KERNEL_ABI_VERSION 1

/* Return codes. */
#define BNSPEC_OK 0
#define BNSPEC_UNSUPPORTED 1
#define BNSPEC_REFUSED 2
#define BNSPEC_FAILED 3

/* Operations (bnspec_kernel_supports' first argument). */
#define BNSPEC_OP_TRAIN 0          /* training forward with running-statistics update */
#define BNSPEC_OP_INFER 1          /* inference forward with given mean and variance */
#define BNSPEC_OP_BACKWARD_TRAIN 2 /* backward through training mode (batch statistics) */
#define BNSPEC_OP_BACKWARD_INFER 3 /* backward through inference mode (fixed statistics) */
#define BNSPEC_OP_COUNT 4

/* Storage types of the data tensors (x, y, dy, dx). */
#define BNSPEC_DTYPE_F32 0
#define BNSPEC_DTYPE_F16 1
#define BNSPEC_DTYPE_BF16 2
#define BNSPEC_DTYPE_F64 3
#define BNSPEC_DTYPE_COUNT 4

/* Memory layouts. */
#define BNSPEC_LAYOUT_NCHW 0
#define BNSPEC_LAYOUT_NHWC 1
#define BNSPEC_LAYOUT_NC 2
#define BNSPEC_LAYOUT_COUNT 3

/* Which batch variance feeds the running variance (bnspec_problem.running_variance). */
#define BNSPEC_VARIANCE_DEFAULT 0  /* the library's own convention */
#define BNSPEC_VARIANCE_BIASED 1   /* Σ(x − μ)² / m */
#define BNSPEC_VARIANCE_UNBIASED 2 /* Σ(x − μ)² / (m − 1) */

/* Training with one value per channel (m = 1) (bnspec_problem.single_value). */
#define BNSPEC_SINGLE_VALUE_DEFAULT 0 /* the library's own policy */
#define BNSPEC_SINGLE_VALUE_ERROR 1   /* refuse: return BNSPEC_REFUSED */
#define BNSPEC_SINGLE_VALUE_BETA 2    /* y = β; an unbiased running variance uses the biased value 0 */
#define BNSPEC_SINGLE_VALUE_NAN 3     /* y = β; the unbiased running variance is 0/0 = NaN */

/* Feature flags (bnspec_kernel_description.features). */
#define BNSPEC_FEATURE_RUNNING_STATISTICS 0x1u /* train updates running_mean/running_var */
#define BNSPEC_FEATURE_CUMULATIVE_AVERAGE 0x2u /* accepts batch_weight = 1/k (cumulative average) */

/** Most entries of bnspec_problem.shape: N, C and up to 6 spatial dimensions. */
#define BNSPEC_MAX_RANK 8

/**
 * One call's problem. The caller zero-fills it and sets struct_size = sizeof(bnspec_problem);
 * later ABI versions only append fields.
 *
 * m = N · D1 · … · Dk is the number of values per channel.
 */
typedef struct bnspec_problem {
    uint32_t struct_size;
    int32_t layout;                   /* BNSPEC_LAYOUT_… */
    int32_t rank;                     /* entries used in shape: 2 + k (NC: 2) */
    int32_t running_variance;         /* BNSPEC_VARIANCE_… (train only) */
    int32_t single_value;             /* BNSPEC_SINGLE_VALUE_… (train only) */
    int32_t reserved;                 /* 0 */
    int64_t shape[BNSPEC_MAX_RANK];   /* logical [N, C, D1, …, Dk], whatever the layout */
    double eps;                       /* y = (x − μ)/√(σ² + eps)·γ + β; NaN: the library's default */
    double batch_weight;              /* w: running ← (1 − w)·running + w·batch (train only);
                                         NaN: the library's default momentum, in whatever
                                         convention it has, converted to this one */
} bnspec_problem;

/** What the library is. The caller zero-fills it and sets struct_size. */
typedef struct bnspec_kernel_description {
    uint32_t struct_size;
    uint32_t features;                /* BNSPEC_FEATURE_… */
    const char *name;                 /* static storage, e.g. "oneDNN" */
    const char *version;              /* static storage, e.g. "2.6.3" */
} bnspec_kernel_description;

/* Symbol prefix: with BNSPEC_KERNEL_PREFIX defined, every name below is renamed P##name. */
#ifdef BNSPEC_KERNEL_PREFIX
#define BNSPEC_KERNEL_CAT2(a, b) a##b
#define BNSPEC_KERNEL_CAT(a, b) BNSPEC_KERNEL_CAT2(a, b)
#define BNSPEC_KERNEL_NAME(name) BNSPEC_KERNEL_CAT(BNSPEC_KERNEL_PREFIX, name)
#define bnspec_kernel_abi_version BNSPEC_KERNEL_NAME(bnspec_kernel_abi_version)
#define bnspec_kernel_describe BNSPEC_KERNEL_NAME(bnspec_kernel_describe)
#define bnspec_kernel_supports BNSPEC_KERNEL_NAME(bnspec_kernel_supports)
#define bnspec_kernel_train_f32 BNSPEC_KERNEL_NAME(bnspec_kernel_train_f32)
#define bnspec_kernel_infer_f32 BNSPEC_KERNEL_NAME(bnspec_kernel_infer_f32)
#define bnspec_kernel_backward_train_f32 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_train_f32)
#define bnspec_kernel_backward_infer_f32 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_infer_f32)
#define bnspec_kernel_train_f16 BNSPEC_KERNEL_NAME(bnspec_kernel_train_f16)
#define bnspec_kernel_infer_f16 BNSPEC_KERNEL_NAME(bnspec_kernel_infer_f16)
#define bnspec_kernel_backward_train_f16 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_train_f16)
#define bnspec_kernel_backward_infer_f16 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_infer_f16)
#define bnspec_kernel_train_bf16 BNSPEC_KERNEL_NAME(bnspec_kernel_train_bf16)
#define bnspec_kernel_infer_bf16 BNSPEC_KERNEL_NAME(bnspec_kernel_infer_bf16)
#define bnspec_kernel_backward_train_bf16 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_train_bf16)
#define bnspec_kernel_backward_infer_bf16 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_infer_bf16)
#define bnspec_kernel_train_f64 BNSPEC_KERNEL_NAME(bnspec_kernel_train_f64)
#define bnspec_kernel_infer_f64 BNSPEC_KERNEL_NAME(bnspec_kernel_infer_f64)
#define bnspec_kernel_backward_train_f64 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_train_f64)
#define bnspec_kernel_backward_infer_f64 BNSPEC_KERNEL_NAME(bnspec_kernel_backward_infer_f64)
#endif

#if defined(_WIN32)
#define BNSPEC_KERNEL_EXPORT __declspec(dllexport)
#else
#define BNSPEC_KERNEL_EXPORT __attribute__((visibility("default")))
#endif

/* ---- What a kernel library exports ------------------------------------------------ */

/** Returns BNSPEC_KERNEL_ABI_VERSION as the library saw it when built. */
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_abi_version(void);

/** Fills name, version and features. BNSPEC_OK, or an error code and message. */
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_describe(bnspec_kernel_description *description, char *message,
                                                    size_t message_size);

/** 1 when the library implements op (BNSPEC_OP_…) on dtype (BNSPEC_DTYPE_…) in layout
 *  (BNSPEC_LAYOUT_…), else 0. May depend on the machine (e.g. bf16 only on CPUs that have it).
 *  Every (op, dtype) it answers 1 for must have its entry point exported. */
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_supports(int32_t op, int32_t dtype, int32_t layout);

/*
 * Entry points, one per op × dtype (export those your supports table names):
 *
 * train: y, and the biased batch statistics batch_mean = μ, batch_var = Σ(x − μ)²/m; with
 *        BNSPEC_FEATURE_RUNNING_STATISTICS also running_mean and running_var updated in place,
 *          running_mean ← (1 − w)·running_mean + w·μ
 *          running_var  ← (1 − w)·running_var  + w·v,   v = biased or unbiased batch variance
 *        (problem->running_variance), w = problem->batch_weight. Without the feature both
 *        pointers are NULL.
 * infer: y = (x − mean)/√(var + eps)·γ + β.
 * backward_train: gradients through train's y, μ and σ² recomputed from x:
 *        dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/√(σ² + eps)·(dy − dβ/m − x̂·dγ/m).
 * backward_infer: gradients through infer's y with mean and var fixed:
 *        dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·dy/√(var + eps).
 */

/* f32: data float, per-channel float */
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_train_f32(const bnspec_problem *problem, const float *x, const float *gamma, const float *beta,
                                                  float *running_mean, float *running_var, float *y, float *batch_mean, float *batch_var,
                                                  char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_infer_f32(const bnspec_problem *problem, const float *x, const float *gamma, const float *beta,
                                                  const float *mean, const float *var, float *y, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_train_f32(const bnspec_problem *problem, const float *x, const float *dy, const float *gamma,
                                                           float *dx, float *dgamma, float *dbeta, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_infer_f32(const bnspec_problem *problem, const float *x, const float *dy, const float *gamma,
                                                           const float *mean, const float *var, float *dx, float *dgamma, float *dbeta,
                                                           char *message, size_t message_size);

/* f16: data uint16_t (IEEE binary16 bits), per-channel float */
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_train_f16(const bnspec_problem *problem, const uint16_t *x, const float *gamma, const float *beta,
                                                  float *running_mean, float *running_var, uint16_t *y, float *batch_mean, float *batch_var,
                                                  char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_infer_f16(const bnspec_problem *problem, const uint16_t *x, const float *gamma, const float *beta,
                                                  const float *mean, const float *var, uint16_t *y, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_train_f16(const bnspec_problem *problem, const uint16_t *x, const uint16_t *dy, const float *gamma,
                                                           uint16_t *dx, float *dgamma, float *dbeta, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_infer_f16(const bnspec_problem *problem, const uint16_t *x, const uint16_t *dy, const float *gamma,
                                                           const float *mean, const float *var, uint16_t *dx, float *dgamma, float *dbeta,
                                                           char *message, size_t message_size);

/* bf16: data uint16_t (bfloat16 bits), per-channel float */
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_train_bf16(const bnspec_problem *problem, const uint16_t *x, const float *gamma, const float *beta,
                                                  float *running_mean, float *running_var, uint16_t *y, float *batch_mean, float *batch_var,
                                                  char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_infer_bf16(const bnspec_problem *problem, const uint16_t *x, const float *gamma, const float *beta,
                                                  const float *mean, const float *var, uint16_t *y, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_train_bf16(const bnspec_problem *problem, const uint16_t *x, const uint16_t *dy, const float *gamma,
                                                           uint16_t *dx, float *dgamma, float *dbeta, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_infer_bf16(const bnspec_problem *problem, const uint16_t *x, const uint16_t *dy, const float *gamma,
                                                           const float *mean, const float *var, uint16_t *dx, float *dgamma, float *dbeta,
                                                           char *message, size_t message_size);

/* f64: data double, per-channel double */
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_train_f64(const bnspec_problem *problem, const double *x, const double *gamma, const double *beta,
                                                  double *running_mean, double *running_var, double *y, double *batch_mean, double *batch_var,
                                                  char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_infer_f64(const bnspec_problem *problem, const double *x, const double *gamma, const double *beta,
                                                  const double *mean, const double *var, double *y, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_train_f64(const bnspec_problem *problem, const double *x, const double *dy, const double *gamma,
                                                           double *dx, double *dgamma, double *dbeta, char *message, size_t message_size);
BNSPEC_KERNEL_EXPORT int32_t bnspec_kernel_backward_infer_f64(const bnspec_problem *problem, const double *x, const double *dy, const double *gamma,
                                                           const double *mean, const double *var, double *dx, double *dgamma, double *dbeta,
                                                           char *message, size_t message_size);

#ifdef __cplusplus
}
#endif

#endif /* BNSPEC_KERNEL_H */
