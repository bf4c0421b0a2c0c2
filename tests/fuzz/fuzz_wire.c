/*
 * fuzz_wire.c - libFuzzer harness for wire_decode(), the gate every received message passes.
 *
 * Whatever the bytes, decoding must not crash, leak or accept something it would refuse to
 * send: an accepted message is encoded again (which re-validates it), must decode to the same
 * body, and that decoded copy must encode to the very same bytes - every field survived the
 * round trip, not just the message's type.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[WIRE_ERR_MAX];
    struct wire_msg msg, again;
    uint8_t *buf, *buf2;
    size_t len, len2;

    if (wire_decode(data, size, &msg, err, sizeof(err)) != 0)
        return 0;
    if (wire_encode(&msg, &buf, &len, err, sizeof(err)) != 0)
        abort(); /* accepted on the way in, refused on the way out */
    if (wire_decode(buf, len, &again, err, sizeof(err)) != 0 || again.body != msg.body)
        abort();
    if (wire_encode(&again, &buf2, &len2, err, sizeof(err)) != 0 || len2 != len ||
        memcmp(buf, buf2, len) != 0)
        abort(); /* a field changed on the way through decode and encode */
    free(buf2);
    wire_msg_clear(&again);
    wire_msg_clear(&msg);
    free(buf);
    return 0;
}
