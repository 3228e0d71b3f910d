#ifndef CBNSTREAM_H
#define CBNSTREAM_H

/// Eight floats, imported into Swift as SIMD8<Float>.
typedef float bn_float8 __attribute__((ext_vector_type(8)));

/// Stores eight floats to `p` with a non-temporal hint (x86: vmovntps / movntps;
/// other targets: whatever the compiler emits for a non-temporal store, at worst a
/// plain store). `p` must be 32-byte aligned.
///
/// Used for outputs larger than the last-level cache: the store bypasses the cache, so
/// the line is not first read from memory (no read-for-ownership), which is what
/// memcpy does for large copies.
static inline __attribute__((always_inline)) void bn_stream_store8(float *p, bn_float8 v) {
    __builtin_nontemporal_store(v, (bn_float8 *)p);
}

/// Orders the non-temporal stores before anything that follows (they are weakly ordered).
static inline __attribute__((always_inline)) void bn_stream_fence(void) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif
