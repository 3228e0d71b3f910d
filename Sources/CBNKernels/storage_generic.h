// Storage loads and stores in generic vector code (every level), included after
// vector.h. Float16 conversions here are the integer forms; isa_avx2.c and
// isa_avx512.c use the F16C instructions instead (the same bits: PathEquivalenceTests).

BN_INLINE f8 f32_load8(const float *p) { f8 v; memcpy(&v, p, sizeof v); return v; }
BN_INLINE void f32_store8(float *p, f8 v) { memcpy(p, &v, sizeof v); }
BN_INLINE void f32_stream8(float *p, f8 v) { __builtin_nontemporal_store(v, (f8 *)p); }
typedef float f16x32 __attribute__((ext_vector_type(16)));
/// a then b with one 64-byte non-temporal store (narrower stores below AVX-512); p is 64-byte aligned.
BN_INLINE void f32_stream16(float *p, f8 a, f8 b) {
    __builtin_nontemporal_store(__builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), (f16x32 *)p);
}

BN_INLINE u8x16 u16_load8(const uint16_t *p) { u8x16 v; memcpy(&v, p, sizeof v); return v; }
BN_INLINE void u16_store8(uint16_t *p, u8x16 v) { memcpy(p, &v, sizeof v); }
BN_INLINE void u16_stream8(uint16_t *p, u8x16 v) { __builtin_nontemporal_store(v, (u8x16 *)p); }

BN_INLINE f8 bf16_load8(const uint16_t *p) { return bf16_widen(u16_load8(p)); }
BN_INLINE void bf16_convert8(uint16_t *p, f8 v) { u16_store8(p, bf16_narrow(v)); }
BN_INLINE void bf16_store8(uint16_t *p, f8 v) { u16_store8(p, bf16_narrow_output(v)); }
BN_INLINE void bf16_stream8(uint16_t *p, f8 v) { u16_stream8(p, bf16_narrow_output(v)); }

#define BN_PASTE_(a, b) a##_##b
#define BN_PASTE(a, b) BN_PASTE_(a, b)

// Instantiates passes_template.h for float32 and bfloat16 at level LEVEL (a bare word).
// STORE8 writes kernel outputs (canonical NaNs only); CONVERT8 converts any float.
#define ST float
#define LOAD8(p) f32_load8(p)
#define CONVERT8(p, v) f32_store8(p, v)
#define STORE8(p, v) f32_store8(p, v)
#define STREAM8(p, v) f32_stream8(p, v)
#define STREAM16(p, a, b) f32_stream16(p, a, b)
#define PASS(name) BN_PASTE(name, BN_PASTE(LEVEL, f32))
#define TABLE PASS(table)
#define PAIR_STREAMED_RUNS  // see run_apply_sums: float32 only
#include "passes_template.h"
#undef PAIR_STREAMED_RUNS
#undef STREAM16
#undef ST
#undef LOAD8
#undef STORE8
#undef CONVERT8
#undef STREAM8
#undef PASS
#undef TABLE

#define ST uint16_t
#define LOAD8(p) bf16_load8(p)
#define CONVERT8(p, v) bf16_convert8(p, v)
#define STORE8(p, v) bf16_store8(p, v)
#define STREAM8(p, v) bf16_stream8(p, v)
#define PASS(name) BN_PASTE(name, BN_PASTE(LEVEL, bf16))
#define TABLE PASS(table)
#include "passes_template.h"
#undef ST
#undef LOAD8
#undef STORE8
#undef CONVERT8
#undef STREAM8
#undef PASS
#undef TABLE
