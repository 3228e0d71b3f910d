// Run-time choice of the passes: CPU features (CPUID, and XGETBV for the OS's
// register state) decide the highest instruction-set level; the caller may ask for a
// lower one (BNSPEC_CPU, tests).
#include <unistd.h>
#include "CBNKernels.h"

const bn_passes *bn_passes_baseline(int storage);
#if defined(__x86_64__)
#include <cpuid.h>
const bn_passes *bn_passes_avx2(int storage);
const bn_passes *bn_passes_avx512(int storage);
const bn_passes *bn_passes_avx512bf16(void);

/// Whether the CPU has AVX512_BF16 (CPUID leaf 7, subleaf 1, EAX bit 5); asked only at
/// the AVX-512 level, whose register state detect() has checked.
static int has_avx512_bf16(void) {
    static int known = -1;  // benign race: every thread computes the same value
    int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (v < 0) {
        unsigned a, b, c, d;
        v = __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1);
        __atomic_store_n(&known, v, __ATOMIC_RELAXED);
    }
    return v;
}

static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return BN_ISA_BASELINE;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!(osxsave && avx && fma && f16c)) return BN_ISA_BASELINE;
    unsigned long long x = xcr0();
    if ((x & 0x6) != 0x6) return BN_ISA_BASELINE;  // SSE and AVX state enabled by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return BN_ISA_BASELINE;
    if (!((b >> 5) & 1)) return BN_ISA_BASELINE;  // AVX2
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (f && dq && bw && vl && (x & 0xE6) == 0xE6) return BN_ISA_AVX512;  // + opmask, ZMM state
    return BN_ISA_AVX2;
}
#endif

int bn_isa_supported(void) {
#if defined(__x86_64__)
    static int level = -1;  // benign race: every thread computes the same value
    int v = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (v < 0) { v = detect(); __atomic_store_n(&level, v, __ATOMIC_RELAXED); }
    return v;
#else
    return BN_ISA_BASELINE;
#endif
}

const bn_passes *bn_passes_get(int isa, int storage) {
#if defined(__x86_64__)
    if (isa >= BN_ISA_AVX512) return storage == BN_STORAGE_BF16 && has_avx512_bf16() ? bn_passes_avx512bf16() : bn_passes_avx512(storage);
    if (isa == BN_ISA_AVX2) return bn_passes_avx2(storage);
#endif
    (void)isa;
    return bn_passes_baseline(storage);
}

long bn_l2_cache_bytes(void) {
#if defined(_SC_LEVEL2_CACHE_SIZE)
    long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? v : 0;
#else
    return 0;
#endif
}
