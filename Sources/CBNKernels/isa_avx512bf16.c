// The bfloat16 passes of the AVX-512 level on CPUs that also have AVX512_BF16 (Cooper
// Lake, Sapphire Rapids, Zen 4 and later): kernel outputs are narrowed to bfloat16 with
// vcvtneps2bf16, which rounds to nearest even like the integer form (`bf16_narrow_output`)
// but treats subnormal inputs as zero; a vector holding a subnormal float takes the
// integer form instead, so the bits are the same on every CPU (PathEquivalenceTests).
// The same class test catches NaNs, so outputs skip `narrow`'s NaN pass (RAW_OUTPUTS):
// out of cache, bfloat16 inference is bound by these instructions, not by memory.
// Widening and the conversions for tests are the generic ones.
#include <stdint.h>
#include <string.h>
#include "CBNKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c"))), apply_to = function)

#define BN_FMA_TARGET  // vector.h: this target has FMA
#include "vector.h"

/// A kernel output (RAW_OUTPUTS: its NaNs not yet canonical) → bfloat16 bits. One class
/// test finds the rare vectors that need the integer form: a subnormal (which
/// vcvtneps2bf16 would flush) or a NaN (to become the canonical 0x7FC0).
BN_INLINE u8x16 bf16_narrow_hw(f8 v) {
    if (__builtin_expect(_mm256_fpclass_ps_mask((__m256)v, 0x20 | 0x01 | 0x80) != 0, 0))  // subnormal, quiet or signalling NaN
        return bf16_narrow_output(canonical_nans(v));
    __m128bh h = _mm256_cvtneps_pbh((__m256)v);
    u8x16 r;
    memcpy(&r, &h, sizeof r);
    return r;
}
BN_INLINE u8x16 u16_load8(const uint16_t *p) { u8x16 v; memcpy(&v, p, sizeof v); return v; }
BN_INLINE f8 bf16_load8(const uint16_t *p) { return bf16_widen(u16_load8(p)); }
BN_INLINE void bf16_store8(uint16_t *p, f8 v) { u8x16 h = bf16_narrow_hw(v); memcpy(p, &h, sizeof h); }
BN_INLINE void bf16_stream8(uint16_t *p, f8 v) { __builtin_nontemporal_store(bf16_narrow_hw(v), (u8x16 *)p); }
BN_INLINE void bf16_convert8(uint16_t *p, f8 v) { u8x16 h = bf16_narrow(v); memcpy(p, &h, sizeof h); }
/// The 16 bfloat16 at p as even and odd elements (LOAD16_EO): each 32-bit word holds an
/// even element in its low half and the next odd one in its high half, so one shift and
/// one mask widen 16 values (two LOAD8 take a zero-extension and a shift per 8).
BN_INLINE void bf16_load16_eo(const uint16_t *p, f8 *e, f8 *o) {
    u8x32 w; memcpy(&w, p, sizeof w);
    *e = (f8)(w << 16); *o = (f8)(w & 0xFFFF0000u);
}
/// Outputs in the even/odd form → 16 bfloat16 at p (STORE16_EO): a class test of each
/// half, one vcvtne2ps2bf16 for the 16 lanes, then one word permutation back to memory
/// order; a pair holding a subnormal or a NaN is interleaved and takes bf16_store8's path.
/// (The two halves are converted as they are: joining them into one 512-bit vector for
/// vcvtneps2bf16 and one class test costs a shuffle, and measured slower; spec §9.4 gives
/// the bench command for this loop's speed.)
#define SPECIAL (0x20 | 0x01 | 0x80)  // vfpclassps: subnormal, quiet or signalling NaN
BN_INLINE void bf16_store16_eo(uint16_t *p, f8 e, f8 o) {
    if (__builtin_expect((_mm256_fpclass_ps_mask((__m256)e, SPECIAL) | _mm256_fpclass_ps_mask((__m256)o, SPECIAL)) != 0, 0)) {
        bf16_store8(p, __builtin_shufflevector(e, o, 0, 8, 1, 9, 2, 10, 3, 11));
        bf16_store8(p + 8, __builtin_shufflevector(e, o, 4, 12, 5, 13, 6, 14, 7, 15));
        return;
    }
    __m256bh h = _mm256_cvtne2ps_pbh((__m256)o, (__m256)e);  // e0 … e7, o0 … o7
    __m256i q; memcpy(&q, &h, sizeof q);
    const __m256i order = _mm256_setr_epi16(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    q = _mm256_permutexvar_epi16(order, q);
    memcpy(p, &q, sizeof q);
}
/// Two output vectors a, b in memory order → the 16 bfloat16 at p (32-byte aligned) with one
/// 32-byte non-temporal store (STREAM16): one vcvtne2ps2bf16 for both, whose low half is
/// a's; a pair holding a subnormal or a NaN takes bf16_stream8's path.
BN_INLINE void bf16_stream16(uint16_t *p, f8 a, f8 b) {
    if (__builtin_expect((_mm256_fpclass_ps_mask((__m256)a, SPECIAL) | _mm256_fpclass_ps_mask((__m256)b, SPECIAL)) != 0, 0)) {
        bf16_stream8(p, a);
        bf16_stream8(p + 8, b);
        return;
    }
    __m256bh h = _mm256_cvtne2ps_pbh((__m256)b, (__m256)a);  // a0 … a7, b0 … b7
    __m256i q; memcpy(&q, &h, sizeof q);
    _mm256_stream_si256((__m256i *)p, q);
}
#undef SPECIAL

#define BN_PASTE_(a, b) a##_##b
#define BN_PASTE(a, b) BN_PASTE_(a, b)
#define RAW_OUTPUTS
#define ST uint16_t
#define LOAD8(p) bf16_load8(p)
#define CONVERT8(p, v) bf16_convert8(p, v)
#define STORE8(p, v) bf16_store8(p, v)
#define STREAM8(p, v) bf16_stream8(p, v)
#define STREAM16(p, a, b) bf16_stream16(p, a, b)
#define LOAD16_EO(p, e, o) bf16_load16_eo(p, &(e), &(o))
#define STORE16_EO(p, e, o) bf16_store16_eo(p, e, o)
#define PASS(name) BN_PASTE(name, avx512bf16_bf16)
#define TABLE PASS(table)
#include "passes_template.h"

#pragma clang attribute pop

const bn_passes *bn_passes_avx512bf16(void) { return &table_avx512bf16_bf16; }
#endif
