// The passes at the compiler's default target: every architecture; on x86-64 the
// fallback for CPUs without AVX2/FMA/F16C (and what BNSPEC_CPU=baseline forces).
#include <stdint.h>
#include <string.h>
#include "CBNKernels.h"

#include "vector.h"
#define LEVEL baseline
#include "storage_generic.h"

BN_INLINE f8 f16_load8(const uint16_t *p) { return f16_widen_int(u16_load8(p)); }
BN_INLINE void f16_store8(uint16_t *p, f8 v) { u16_store8(p, f16_narrow_int(v)); }
BN_INLINE void f16_stream8(uint16_t *p, f8 v) { u16_stream8(p, f16_narrow_int(v)); }
#define ST uint16_t
#define LOAD8(p) f16_load8(p)
#define STORE8(p, v) f16_store8(p, v)
#define STREAM8(p, v) f16_stream8(p, v)
#define PASS(name) BN_PASTE(name, baseline_f16)
#define TABLE PASS(table)
#include "passes_template.h"

const bn_passes *bn_passes_baseline(int storage) {
    return storage == BN_STORAGE_F16 ? &table_baseline_f16 : storage == BN_STORAGE_BF16 ? &table_baseline_bf16 : &table_baseline_f32;
}
