/*
 * fuzz_wire.c - libFuzzer harness for wire_decode(), the gate every received message passes.
 *
 * Whatever the bytes, decoding must not crash, leak or accept something it would refuse to
 * send: an accepted message is encoded again (which re-validates it) and decoded again, and the
 * second decoded message must equal the first field by field (msg_equal: the envelope, and
 * every field of its body, each VM, decision, label and the policy); that decoded copy must
 * also encode to the very same bytes. Comparing the bytes alone would pass an encoder that
 * dropped a field (both encodings lack it); comparing the fields catches it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIFF(what)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "fuzz_wire: %s changed through encode and decode\n", what);                \
        return false;                                                                              \
    } while (0)
#define SAME(field)                                                                                \
    do {                                                                                           \
        if (a->field != b->field)                                                                  \
            DIFF(#field);                                                                          \
    } while (0)
#define SAME_STR(field)                                                                            \
    do {                                                                                           \
        if (strcmp(a->field, b->field) != 0)                                                       \
            DIFF(#field);                                                                          \
    } while (0)

static bool
vm_equal(const struct wire_vm *a, const struct wire_vm *b)
{
    SAME_STR(uuid);
    SAME_STR(name);
    SAME(state);
    SAME(max_kib);
    SAME(actual_kib);
    SAME(target_kib);
    SAME(unused_kib);
    SAME(usable_kib);
    SAME(stats_age_ms);
    SAME(has_unused);
    SAME(has_usable);
    SAME(managed);
    SAME(stuck);
    SAME(min_kib);
    SAME(cap_kib);
    SAME(weight);
    SAME(skip_reason);
    return true;
}

static bool
decision_equal(const struct wire_decision *a, const struct wire_decision *b)
{
    SAME_STR(uuid);
    SAME(reason);
    SAME(old_target_kib);
    SAME(new_target_kib);
    SAME_STR(counterpart);
    SAME(signal_kib);
    SAME(need_kib);
    SAME(lookahead_kib);
    SAME(vm_kib);
    SAME(host_kib);
    return true;
}

static bool
report_equal(const struct wire_report *a, const struct wire_report *b)
{
    SAME(host_total_kib);
    SAME(host_available_kib);
    SAME(n_vms);
    SAME(n_decisions);
    SAME(counters.rounds);
    SAME(counters.granted_kib);
    SAME(counters.reclaimed_kib);
    SAME(counters.apply_failures);
    SAME(counters.reports_dropped);
    SAME(counters.messages_rejected);
    SAME(policy_version);
    SAME(has_policy);
    if (a->has_policy && !policy_equal(&a->policy, &b->policy))
        DIFF("the report's policy in force");
    for (size_t i = 0; i < a->n_vms; i++)
        if (!vm_equal(&a->vms[i], &b->vms[i]))
            DIFF("a vm of the report");
    for (size_t i = 0; i < a->n_decisions; i++)
        if (!decision_equal(&a->decisions[i], &b->decisions[i]))
            DIFF("a decision of the report");
    return true;
}

static bool
hello_equal(const struct wire_hello *a, const struct wire_hello *b)
{
    SAME_STR(agent_version);
    SAME(n_labels);
    SAME(policy_version);
    SAME(policy_epoch);
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i].key, b->labels[i].key) != 0 ||
            strcmp(a->labels[i].value, b->labels[i].value) != 0)
            DIFF("a label of the hello");
    return true;
}

static bool
msg_equal(const struct wire_msg *a, const struct wire_msg *b)
{
    SAME(protocol_version);
    SAME_STR(host_id);
    SAME(sequence);
    SAME(body);
    switch (a->body) {
    case WIRE_BODY_HELLO:
        return hello_equal(&a->u.hello, &b->u.hello);
    case WIRE_BODY_REPORT:
        return report_equal(&a->u.report, &b->u.report);
    case WIRE_BODY_HEARTBEAT:
        SAME(u.heartbeat_policy_version);
        return true;
    case WIRE_BODY_POLICY_PUSH:
        SAME(u.push.version);
        SAME(u.push.epoch);
        SAME_STR(u.push.scope);
        if (!policy_equal(&a->u.push.policy, &b->u.push.policy))
            DIFF("u.push.policy");
        return true;
    case WIRE_BODY_POLICY_ACK:
        SAME(u.ack.version);
        SAME(u.ack.applied);
        SAME_STR(u.ack.reason);
        return true;
    case WIRE_BODY_SAY_HELLO:
        return true;
    }
    DIFF("body (unknown)");
}

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
    if (wire_decode(buf, len, &again, err, sizeof(err)) != 0)
        abort();
    if (!msg_equal(&msg, &again))
        abort(); /* a field lost or changed on the way out and in again */
    if (wire_encode(&again, &buf2, &len2, err, sizeof(err)) != 0 || len2 != len ||
        memcmp(buf, buf2, len) != 0)
        abort(); /* a field changed on the way through decode and encode */
    free(buf2);
    wire_msg_clear(&again);
    wire_msg_clear(&msg);
    free(buf);
    return 0;
}
