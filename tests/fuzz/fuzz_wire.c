/*
 * fuzz_wire.c - libFuzzer harness for wire_decode(), the gate every received message passes.
 *
 * Whatever the bytes, decoding must not crash, leak or accept something it would refuse to
 * send: an accepted message is encoded again (which re-validates it) and must decode to the
 * same body.
 */
#include <stdint.h>
#include <stdlib.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[WIRE_ERR_MAX];
    struct wire_msg msg, again;
    uint8_t *buf;
    size_t len;

    if (wire_decode(data, size, &msg, err, sizeof(err)) != 0)
        return 0;
    if (wire_encode(&msg, &buf, &len, err, sizeof(err)) != 0)
        abort(); /* accepted on the way in, refused on the way out */
    if (wire_decode(buf, len, &again, err, sizeof(err)) != 0 || again.body != msg.body)
        abort();
    wire_msg_clear(&again);
    wire_msg_clear(&msg);
    free(buf);
    return 0;
}
