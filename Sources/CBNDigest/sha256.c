// SHA-256 (FIPS 180-4) for the golden manifest's integrity hashes and the output digests.
// The x86 SHA-NI path follows the instruction sequence of Intel's "Intel SHA Extensions"
// white paper (Gulley et al., 2013); it is compiled with a per-function target attribute
// (no package compiler flags) and chosen at run time with CPUID.
#include "CBNDigest.h"
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t s[8], const uint8_t *p, size_t blocks) {
    uint32_t w[64];
    for (; blocks > 0; blocks--, p += 64) {
        for (int t = 0; t < 16; t++)
            w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
    }
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

__attribute__((target("sha,sse4.1,ssse3")))
static void compress_shani(uint32_t s[8], const uint8_t *p, size_t blocks) {
    const __m128i shuffle = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&s[0]);     // a b c d  (DCBA)
    __m128i st1 = _mm_loadu_si128((const __m128i *)&s[4]);     // e f g h  (HGFE)
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                        // CDAB
    st1 = _mm_shuffle_epi32(st1, 0x1B);                        // EFGH
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);                // ABEF
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                     // CDGH
    for (; blocks > 0; blocks--, p += 64) {
        __m128i save0 = st0, save1 = st1;
        __m128i m[4], msg;
        for (int i = 0; i < 4; i++) m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), shuffle);
        for (int r = 0; r < 16; r++) {
            __m128i w = m[r & 3];
            msg = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&K[4 * r]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
            msg = _mm_shuffle_epi32(msg, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
            if (r < 12) {
                // W[4(r+4) .. 4(r+4)+3] from W[4r ..] (message schedule), stored over m[r & 3].
                __m128i next = _mm_sha256msg1_epu32(m[r & 3], m[(r + 1) & 3]);
                next = _mm_add_epi32(next, _mm_alignr_epi8(m[(r + 3) & 3], m[(r + 2) & 3], 4));
                m[r & 3] = _mm_sha256msg2_epu32(next, m[(r + 3) & 3]);
            }
        }
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);                        // FEBA
    st1 = _mm_shuffle_epi32(st1, 0xB1);                        // DCHG
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);                     // DCBA
    st1 = _mm_alignr_epi8(st1, tmp, 8);                        // HGFE
    _mm_storeu_si128((__m128i *)&s[0], st0);
    _mm_storeu_si128((__m128i *)&s[4], st1);
}

static int has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1;   // CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29]
}
#endif

int bn_sha256_accelerated(void) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) cached = has_shani();
    return cached;
#else
    return 0;
#endif
}

static void compress(bn_sha256 *h, const uint8_t *p, size_t blocks) {
#if defined(__x86_64__)
    if (!h->portable && bn_sha256_accelerated()) { compress_shani(h->state, p, blocks); return; }
#endif
    compress_portable(h->state, p, blocks);
}

void bn_sha256_init(bn_sha256 *h, int portable) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h->state, iv, sizeof iv);
    h->length = 0; h->buffered = 0; h->portable = portable != 0;
}

void bn_sha256_update(bn_sha256 *h, const void *bytes, size_t count) {
    const uint8_t *p = bytes;
    h->length += count;
    if (h->buffered > 0) {
        size_t take = 64 - h->buffered < count ? 64 - h->buffered : count;
        memcpy(h->buffer + h->buffered, p, take);
        h->buffered += (uint32_t)take; p += take; count -= take;
        if (h->buffered < 64) return;
        compress(h, h->buffer, 1);
        h->buffered = 0;
    }
    if (count >= 64) { compress(h, p, count / 64); p += count / 64 * 64; count %= 64; }
    if (count > 0) { memcpy(h->buffer, p, count); h->buffered = (uint32_t)count; }
}

void bn_sha256_final(bn_sha256 *h, uint8_t out[32]) {
    uint64_t bits = h->length * 8;
    uint8_t pad[72] = {0x80};
    size_t n = (h->buffered < 56 ? 56 : 120) - h->buffered;
    for (int i = 0; i < 8; i++) pad[n + i] = (uint8_t)(bits >> (56 - 8 * i));
    bn_sha256_update(h, pad, n + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h->state[i] >> 24); out[4 * i + 1] = (uint8_t)(h->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h->state[i] >> 8); out[4 * i + 3] = (uint8_t)h->state[i];
    }
}
