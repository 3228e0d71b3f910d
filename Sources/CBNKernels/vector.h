// Vector vocabulary of the passes, included once per instruction-set file (isa_*.c)
// inside that file's target region, so that every helper is compiled for that level.
//
// The types are the compiler's generic vectors: the same source lowers to AVX-512,
// AVX2 or SSE2 instructions, always with the same IEEE-754 semantics per lane.

// The including file has included <stdint.h> and <string.h> (outside its target region).

// a·b + c is never contracted into an FMA behind our back: every FMA is explicit, so
// every level performs the same roundings.
#pragma clang fp contract(off)

// Vectors passed between these always-inlined helpers never cross an ABI boundary.
#pragma clang diagnostic ignored "-Wpsabi"

typedef double d8 __attribute__((ext_vector_type(8)));
typedef double d4 __attribute__((ext_vector_type(4)));
typedef float f8 __attribute__((ext_vector_type(8)));
typedef int64_t i8x64 __attribute__((ext_vector_type(8)));
typedef uint32_t u8x32 __attribute__((ext_vector_type(8)));
typedef int32_t i8x32 __attribute__((ext_vector_type(8)));
typedef uint16_t u8x16 __attribute__((ext_vector_type(8)));

#define BN_INLINE static inline __attribute__((always_inline))
/// A hint to fetch the cache line at p into L2 (no effect on values).
#define PREFETCH(p) __builtin_prefetch((p), 0, 2)

BN_INLINE d8 wide(f8 v) { return __builtin_convertvector(v, d8); }
/// An output: double → float, round to nearest even (the default rounding mode); a NaN
/// becomes the canonical quiet NaN 0x7FC00000. Which NaN an operation returns when
/// several of its operands are NaN depends on the instruction form the compiler picks
/// (and libm's fma on the baseline level), so payloads are not carried to outputs:
/// every level, build and architecture writes the same bits.
BN_INLINE f8 canonical_nans(f8 f) {
    i8x32 nan = (i8x32)(f != f);
    return (f8)(((i8x32)f & ~nan) | ((i8x32)0x7FC00000 & nan));
}
BN_INLINE f8 narrow(d8 v) { return canonical_nans(__builtin_convertvector(v, f8)); }
BN_INLINE d8 fma8(d8 a, d8 b, d8 c) { return __builtin_elementwise_fma(a, b, c); }
/// w folded with an output o: w + 0·o — ±0 while every o is finite, NaN from the first
/// NaN or ±∞ on (0·∞ = NaN, and NaN stays). One single-width FMA per 8 outputs where the
/// including file's target has FMA (BN_FMA_TARGET), else a multiply and an add (the
/// baseline's vector fma would be a libm call per lane); the same value either way.
#ifdef BN_FMA_TARGET
BN_INLINE f8 watch(f8 w, f8 o) { return __builtin_elementwise_fma((f8)0, o, w); }
#else
BN_INLINE f8 watch(f8 w, f8 o) { return w + o * (f8)0; }
#endif
/// Whether no output folded into w was a NaN or ±∞.
BN_INLINE int watch_clean(f8 w) { return !__builtin_reduce_or((i8x32)(w != w)); }
BN_INLINE d8 splat(double v) { return (d8)v; }
BN_INLINE d8 loadd(const double *p) { d8 v; memcpy(&v, p, sizeof v); return v; }
BN_INLINE void stored(double *p, d8 v) { memcpy(p, &v, sizeof v); }
/// Copies n < 8 doubles with constant-size copies (inlined moves, not a memcpy call).
BN_INLINE void copy_few_d(double *dst, const double *src, long n) {
    switch (n) {
    case 7: memcpy(dst, src, 56); break;
    case 6: memcpy(dst, src, 48); break;
    case 5: memcpy(dst, src, 40); break;
    case 4: memcpy(dst, src, 32); break;
    case 3: memcpy(dst, src, 24); break;
    case 2: memcpy(dst, src, 16); break;
    case 1: memcpy(dst, src, 8); break;
    default: break;
    }
}

/// The even / odd lanes of the 16 lanes (a, b) — lanes 0, 2, …, 14 and 1, 3, …, 15 —
/// and back: `interleave_lo/hi(evens(a, b), odds(a, b))` is (a, b). These relabel the
/// lane accumulators of the even/odd loads (LOAD16_EO, passes_template.h) so that every
/// lane still adds the same elements in the same order.
BN_INLINE d8 evens(d8 a, d8 b) { return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14); }
BN_INLINE d8 odds(d8 a, d8 b) { return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15); }
BN_INLINE d8 interleave_lo(d8 e, d8 o) { return __builtin_shufflevector(e, o, 0, 8, 1, 9, 2, 10, 3, 11); }
BN_INLINE d8 interleave_hi(d8 e, d8 o) { return __builtin_shufflevector(e, o, 4, 12, 5, 13, 6, 14, 7, 15); }

/// v with its lanes where `m` is true replaced by +0 (m: a lane comparison result).
BN_INLINE d8 zero_where(d8 v, i8x64 m) { return (d8)((i8x64)v & ~m); }
/// ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)): the fixed horizontal sum.
BN_INLINE double tree(d8 v) {
    d4 h = v.lo + v.hi;  // (v0 + v4, v1 + v5, v2 + v6, v3 + v7)
    return (h.x + h.z) + (h.y + h.w);
}

// ---- storage conversions, generic integer forms (exact; round to nearest even) ----

/// bfloat16 bits → float: the bits are the float's top half.
BN_INLINE f8 bf16_widen(u8x16 h) { return (f8)(__builtin_convertvector(h, u8x32) << 16); }
/// float → bfloat16 bits, round to nearest even on the bit pattern; a NaN becomes the
/// quiet NaN 0x7FC0 with its sign.
BN_INLINE u8x16 bf16_narrow(f8 v) {
    u8x32 b = (u8x32)v;
    u8x32 rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
    u8x32 nan = ((b >> 16) & 0x8000u) | 0x7FC0u;
    u8x32 isnan = (u8x32)(v != v);
    return __builtin_convertvector((rounded & ~isnan) | (nan & isnan), u8x16);
}

/// float → bfloat16 bits for a kernel output: as `bf16_narrow`, for values whose NaNs
/// are all the canonical 0x7FC00000 (what `narrow` returns), which rounds to 0x7FC0
/// without the NaN test.
BN_INLINE u8x16 bf16_narrow_output(f8 v) {
    u8x32 b = (u8x32)v;
    return __builtin_convertvector((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16, u8x16);
}

/// IEEE binary16 bits → float, exact (subnormals renormalised through one exact float
/// subtraction); a NaN keeps its payload, shifted, and gets the quiet bit, as the F16C
/// instruction does.
BN_INLINE f8 f16_widen_int(u8x16 h16) {
    u8x32 h = __builtin_convertvector(h16, u8x32);
    u8x32 o = (h & 0x7FFFu) << 13;
    u8x32 e = o & (0x7C00u << 13);
    o += (127u - 15u) << 23;
    i8x32 infnan = (i8x32)(e == (0x7C00u << 13)), sub = (i8x32)(e == 0);
    o += (u8x32)infnan & ((128u - 16u) << 23);
    u8x32 nan = (u8x32)(infnan & (i8x32)((h & 0x3FFu) != 0));
    o |= nan & 0x00400000u;
    f8 renorm = (f8)(o + (1u << 23)) - (f8)(u8x32)(113u << 23);
    o = ((u8x32)sub & (u8x32)renorm) | (~(u8x32)sub & o);
    return (f8)(o | ((h & 0x8000u) << 16));
}

/// float → IEEE binary16 bits, round to nearest even (overflow to ±∞, subnormals
/// rounded through one float addition); a NaN keeps the top of its payload and gets
/// the quiet bit, as the F16C instruction does.
BN_INLINE u8x16 f16_narrow_int(f8 v) {
    u8x32 f = (u8x32)v;
    u8x32 sign = f & 0x80000000u, a = f ^ sign;
    // Inf or NaN (or a finite value ≥ 65536, which rounds to Inf).
    i8x32 big = (i8x32)(a >= ((127u + 16u) << 23));
    i8x32 isnan = (i8x32)(a > 0x7F800000u);
    u8x32 infnan = 0x7C00u | ((u8x32)isnan & (0x0200u | ((a >> 13) & 0x3FFu)));
    // Subnormal or zero: the float addition of 0.5 rounds the value to a multiple of 2^-24.
    i8x32 small = (i8x32)(a < (113u << 23));
    const u8x32 magic = (u8x32)(126u << 23);
    u8x32 subnormal = (u8x32)((f8)a + (f8)magic) - magic;
    // Normal: rebias and round on the bits; a carry out of the significand bumps the
    // exponent (up to Inf), which is the correct rounding.
    u8x32 normal = (a + ((uint32_t)(15 - 127) << 23) + 0xFFFu + ((a >> 13) & 1u)) >> 13;
    u8x32 o = ((u8x32)big & infnan) | (~(u8x32)big & (((u8x32)small & subnormal) | (~(u8x32)small & normal)));
    return __builtin_convertvector(o | (sign >> 16), u8x16);
}
