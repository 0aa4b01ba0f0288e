/*  crc32c.c - CRC32C (Castagnoli, reflected polynomial 0x82F63B78).

    Two ways to compute the same value:

    - x86 CPUs with SSE4.2 have a crc32 instruction for exactly this
      polynomial; it eats 8 bytes a cycle or so. The function using it is
      compiled for SSE4.2 on its own (target attribute), so the rest of the
      build needs no -msse4.2, and it is only called when the CPU says it
      has the instruction (checked once at run time).
    - Everywhere else, slice-by-8: eight 256-entry tables let one step
      fold 8 input bytes with 8 lookups instead of 8 dependent steps.
      The tables are built once, on first use.

    Both keep the usual pre- and post-inversion inside, so callers start
    from 0 and can chain calls.
*/
#include <pthread.h>
#include <string.h>
#include "crc32c.h"

#if defined (__x86_64__) || defined (__i386__)
#   include <nmmintrin.h>
#   define S_HAVE_X86 1
#else
#   define S_HAVE_X86 0
#endif

#define S_POLY 0x82F63B78u

static uint32_t s_table [8][256];       /* slice-by-8 tables */
static int s_use_hw;                    /* CPU has the crc32 instruction */
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

/*  Build the tables and look at the CPU; run once through pthread_once. */
static void
s_init (void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (S_POLY & (0u - (crc & 1u)));
        s_table [0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = s_table [0][n];
        for (int k = 1; k < 8; k++) {
            crc = s_table [0][crc & 0xFF] ^ (crc >> 8);
            s_table [k][n] = crc;
        }
    }
#if S_HAVE_X86
    __builtin_cpu_init ();
    s_use_hw = __builtin_cpu_supports ("sse4.2") ? 1 : 0;
#endif
}

/*  Table method on the raw (already inverted) crc register. */
static uint32_t
s_crc_sw (uint32_t crc, const uint8_t *p, size_t len)
{
    while (len && ((uintptr_t) p & 7)) {
        crc = s_table [0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        len--;
    }
#if defined (__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        uint64_t word;
        memcpy (&word, p, 8);
        word ^= crc;
        crc = s_table [7][word & 0xFF]
            ^ s_table [6][(word >> 8) & 0xFF]
            ^ s_table [5][(word >> 16) & 0xFF]
            ^ s_table [4][(word >> 24) & 0xFF]
            ^ s_table [3][(word >> 32) & 0xFF]
            ^ s_table [2][(word >> 40) & 0xFF]
            ^ s_table [1][(word >> 48) & 0xFF]
            ^ s_table [0][word >> 56];
        p += 8;
        len -= 8;
    }
#endif
    while (len--)
        crc = s_table [0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if S_HAVE_X86
/*  The crc32 instruction on the raw crc register: bytes up to an 8-byte
    boundary, then 8 at a time, then the tail. */
__attribute__ ((target ("sse4.2")))
static uint32_t
s_crc_hw (uint32_t crc, const uint8_t *p, size_t len)
{
    while (len && ((uintptr_t) p & 7)) {
        crc = _mm_crc32_u8 (crc, *p++);
        len--;
    }
#   if defined (__x86_64__)
    uint64_t crc64 = crc;
    while (len >= 8) {
        uint64_t word;
        memcpy (&word, p, 8);
        crc64 = _mm_crc32_u64 (crc64, word);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t) crc64;
#   endif
    while (len >= 4) {
        uint32_t word;
        memcpy (&word, p, 4);
        crc = _mm_crc32_u32 (crc, word);
        p += 4;
        len -= 4;
    }
    while (len--)
        crc = _mm_crc32_u8 (crc, *p++);
    return crc;
}
#endif

uint32_t
wc_crc32c (uint32_t crc, const void *buf, size_t len)
{
    pthread_once (&s_once, s_init);
#if S_HAVE_X86
    if (s_use_hw)
        return ~s_crc_hw (~crc, (const uint8_t *) buf, len);
#endif
    return ~s_crc_sw (~crc, (const uint8_t *) buf, len);
}

uint32_t
wc_crc32c_sw (uint32_t crc, const void *buf, size_t len)
{
    pthread_once (&s_once, s_init);
    return ~s_crc_sw (~crc, (const uint8_t *) buf, len);
}

int
wc_crc32c_hw_available (void)
{
    pthread_once (&s_once, s_init);
    return s_use_hw;
}
