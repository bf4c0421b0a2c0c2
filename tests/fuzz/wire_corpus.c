/*
 * wire_corpus.c - writes one valid message of each body into DIR, the seed corpus of
 * fuzz_wire. protobuf-c is not instrumented, so without valid seeds the fuzzer never gets past
 * unpack and never reaches our validation.
 *
 *   wire_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static int
save(const char *dir, const char *name, const struct wire_msg *m)
{
    char path[1024], err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;

    if (wire_encode(m, &buf, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "wire_corpus: %s: %s\n", name, err);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        perror(path);
        return 1;
    }
    fclose(f);
    free(buf);
    return 0;
}

int
main(int argc, char **argv)
{
    struct wire_msg m = {.protocol_version = WIRE_PROTOCOL_VERSION, .sequence = 1};
    struct wire_vm vms[2] = {
        {.uuid = "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b01",
         .name = "web",
         .max_kib = 2097152,
         .actual_kib = 1048576,
         .unused_kib = 51200,
         .has_unused = true,
         .managed = true},
        {.uuid = "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b02",
         .name = "db",
         .max_kib = 2097152,
         .actual_kib = 1048576,
         .usable_kib = 512000,
         .has_usable = true,
         .stuck = true,
         .skip_reason = SCHED_REASON_UNMANAGED},
    };
    struct wire_decision d = {.uuid = "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b01",
                              .reason = SCHED_REASON_GROW,
                              .old_target_kib = 1048576,
                              .new_target_kib = 1202176,
                              .counterpart = "host"};
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: wire_corpus DIR\n");
        return 2;
    }
    strcpy(m.host_id, "hv-01");
    m.body = WIRE_BODY_REPORT;
    m.u.report = (struct wire_report){.host_total_kib = 8388608,
                                      .host_available_kib = 1024000,
                                      .vms = vms,
                                      .n_vms = 2,
                                      .decisions = &d,
                                      .n_decisions = 1};
    rc |= save(argv[1], "report", &m);
    m.body = WIRE_BODY_HELLO;
    m.u.hello = (struct wire_hello){.agent_version = "0.1.0", .n_labels = 1, .policy_version = 2};
    strcpy(m.u.hello.labels[0].key, "rack");
    strcpy(m.u.hello.labels[0].value, "r3");
    rc |= save(argv[1], "hello", &m);
    m.body = WIRE_BODY_POLICY_PUSH;
    m.u.push = (struct wire_policy_push){.version = 3, .scope = "label:rack=r3"};
    policy_init_defaults(&m.u.push.policy);
    rc |= save(argv[1], "push", &m);
    m.body = WIRE_BODY_POLICY_ACK;
    m.u.ack = (struct wire_policy_ack){.version = 3, .reason = "below local limit"};
    rc |= save(argv[1], "ack", &m);
    m.body = WIRE_BODY_HEARTBEAT;
    m.u.heartbeat_policy_version = 3;
    rc |= save(argv[1], "heartbeat", &m);
    m.body = WIRE_BODY_SAY_HELLO;
    rc |= save(argv[1], "say_hello", &m);
    return rc;
}
