/*  crc32c.h - CRC32C (Castagnoli), the checksum of WAL records.

    wc_crc32c (0, buf, len) gives the CRC of buf; pass a previous result
    as crc to continue over more bytes, so crc (a+b) ==
    wc_crc32c (wc_crc32c (0, a), b). "123456789" gives 0xE3069283.

    The CPU's crc32 instruction (SSE4.2) is used when present, a portable
    table method otherwise; both give the same result.
*/
#ifndef WC_CRC32C_H_INCLUDED
#define WC_CRC32C_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  CRC32C of buf, continuing from crc (0 to start). */
uint32_t wc_crc32c (uint32_t crc, const void *buf, size_t len);

/*  The portable (slice-by-8) method, whatever the CPU; for tests. */
uint32_t wc_crc32c_sw (uint32_t crc, const void *buf, size_t len);

/*  1 when wc_crc32c uses the CPU instruction, 0 otherwise. */
int wc_crc32c_hw_available (void);

#endif
