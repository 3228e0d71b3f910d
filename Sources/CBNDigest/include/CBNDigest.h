#ifndef CBNDIGEST_H
#define CBNDIGEST_H

#include <stddef.h>
#include <stdint.h>

/// SHA-256 (FIPS 180-4), incremental. The compression function runs on the CPU's SHA
/// extensions (x86 SHA-NI) where present, chosen at run time, else in portable C; both give
/// the same digest (checked against the FIPS vectors and each other in BNGoldenTests).
typedef struct {
    uint32_t state[8];
    uint64_t length;        ///< bytes hashed so far
    uint8_t buffer[64];     ///< a partial block
    uint32_t buffered;      ///< bytes in `buffer`
    int portable;           ///< 1: the portable compression function, whatever the CPU offers
} bn_sha256;

/// Starts a digest. `portable` != 0 forces the portable C compression (tests compare the two).
void bn_sha256_init(bn_sha256 *h, int portable);
/// Hashes `count` more bytes.
void bn_sha256_update(bn_sha256 *h, const void *bytes, size_t count);
/// Writes the 32-byte digest to `out`; `h` is spent.
void bn_sha256_final(bn_sha256 *h, uint8_t out[32]);
/// 1 when the SHA extensions are used by default on this CPU.
int bn_sha256_accelerated(void);

#endif
