/*
 * wire.h - memsched's messages on the wire; the only module that touches protobuf-c.
 *
 * Received bytes are unpacked, every field is validated, the values are copied into our own
 * structs and the unpacked message is freed before returning: nothing protobuf-c owns escapes.
 */
#ifndef MEMSCHED_COMMON_WIRE_H
#define MEMSCHED_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define WIRE_ERR_MAX 256

/* Serialise p into a new buffer (*buf, *len; the caller frees *buf). Returns 0 or -ENOMEM. */
int wire_encode_policy(const struct policy *p, uint8_t **buf, size_t *len);

/* Decode a Policy message. Fields absent on the wire keep their defaults; the result must pass
 * policy_validate(). Returns 0, or -EBADMSG (malformed) / -EINVAL (invalid) with err saying why;
 * *p is untouched on failure. */
int wire_decode_policy(const uint8_t *buf, size_t len, struct policy *p, char *err, size_t err_len);

#endif /* MEMSCHED_COMMON_WIRE_H */
