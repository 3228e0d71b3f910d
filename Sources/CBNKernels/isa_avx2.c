// The passes compiled for AVX2 + FMA + F16C (Haswell, Zen 1 and later), used when
// bn_isa_supported() says the CPU has it. Only this file's functions carry the target
// attribute: the package itself is built for the default target (no compiler flags).
#include <stdint.h>
#include <string.h>
#include "CBNKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

#define BN_FMA_TARGET  // vector.h: this target has FMA
#include "vector.h"
#define LEVEL avx2
#include "storage_generic.h"

// Float16 through F16C: vcvtph2ps / vcvtps2ph with round-to-nearest-even.
BN_INLINE f8 f16_load8(const uint16_t *p) { __m128i h; memcpy(&h, p, sizeof h); return (f8)_mm256_cvtph_ps(h); }
BN_INLINE void f16_store8(uint16_t *p, f8 v) {
    __m128i h = _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT);
    memcpy(p, &h, sizeof h);
}
BN_INLINE void f16_stream8(uint16_t *p, f8 v) { _mm_stream_si128((__m128i *)p, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT)); }
#define ST uint16_t
#define LOAD8(p) f16_load8(p)
#define STORE8(p, v) f16_store8(p, v)
#define CONVERT8(p, v) f16_store8(p, v)
#define STREAM8(p, v) f16_stream8(p, v)
#define PASS(name) BN_PASTE(name, avx2_f16)
#define TABLE PASS(table)
#include "passes_template.h"

#pragma clang attribute pop

const bn_passes *bn_passes_avx2(int storage) {
    return storage == BN_STORAGE_F16 ? &table_avx2_f16 : storage == BN_STORAGE_BF16 ? &table_avx2_bf16 : &table_avx2_f32;
}
#endif
