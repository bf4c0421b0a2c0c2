/*
 * fuzz_policy.c - libFuzzer harness for the policy's untrusted inputs.
 *
 * The first byte picks the path: a Policy message off the wire (wire_decode_policy), or a
 * "key=value" line as a config file or memschedctl would hand it (policy_set). Whatever comes in,
 * an accepted policy must pass policy_validate() and survive an encode/decode round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_round_trip(const struct policy *p)
{
    char err[POLICY_ERR_MAX];
    struct policy back;
    uint8_t *buf;
    size_t len;

    if (policy_validate(p, err, sizeof(err)) != 0)
        return; /* policy_set alone does not promise cross-field validity */
    if (wire_encode_policy(p, &buf, &len) != 0)
        abort();
    if (wire_decode_policy(buf, len, &back, err, sizeof(err)) != 0 || !policy_equal(p, &back))
        abort();
    free(buf);
}

static void
fuzz_key_value(const uint8_t *data, size_t size)
{
    char line[256], err[POLICY_ERR_MAX];
    struct policy p;

    if (size >= sizeof(line))
        size = sizeof(line) - 1;
    memcpy(line, data, size);
    line[size] = '\0';
    char *eq = strchr(line, '=');
    if (!eq)
        return;
    *eq = '\0';
    policy_init_defaults(&p);
    if (policy_set(&p, line, eq + 1, err, sizeof(err)) == 0)
        check_round_trip(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[WIRE_ERR_MAX];
    struct policy p;

    if (size == 0)
        return 0;
    if (data[0] & 1) {
        fuzz_key_value(data + 1, size - 1);
        return 0;
    }
    if (wire_decode_policy(data + 1, size - 1, &p, err, sizeof(err)) == 0) {
        if (policy_validate(&p, err, sizeof(err)) != 0)
            abort(); /* the decoder let an invalid policy through */
        check_round_trip(&p);
    }
    return 0;
}
