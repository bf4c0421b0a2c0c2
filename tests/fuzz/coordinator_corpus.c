/*
 * coordinator_corpus.c - seeds for fuzz_coordinator: a sender byte and a valid message each
 * (hello, report, heartbeat, ack, a stranger's heartbeat, an impostor's hello).
 *
 *   coordinator_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static void
save(const char *dir, const char *name, unsigned who, struct wire_msg *m, const char *host_id)
{
    char path[4096], err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;

    m->protocol_version = WIRE_PROTOCOL_VERSION;
    snprintf(m->host_id, sizeof(m->host_id), "%s", host_id);
    m->sequence = 1;
    if (wire_encode(m, &buf, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "coordinator_corpus: %s: %s\n", name, err);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputc((int)who, f) == EOF || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    free(buf);
}

int
main(int argc, char **argv)
{
    struct wire_vm vm = {.uuid = "00000000-0000-4000-8000-000000000001", .name = "vm1"};
    struct wire_decision d = {.uuid = "00000000-0000-4000-8000-000000000001",
                              .reason = SCHED_REASON_GROW,
                              .counterpart = WIRE_COUNTERPART_HOST};
    struct wire_msg m;

    if (argc != 2) {
        fputs("usage: coordinator_corpus DIR\n", stderr);
        return 2;
    }
    memset(&m, 0, sizeof(m));
    m.body = WIRE_BODY_HELLO;
    snprintf(m.u.hello.agent_version, sizeof(m.u.hello.agent_version), "0.1.0");
    snprintf(m.u.hello.labels[0].key, sizeof(m.u.hello.labels[0].key), "rack");
    snprintf(m.u.hello.labels[0].value, sizeof(m.u.hello.labels[0].value), "r1");
    m.u.hello.n_labels = 1;
    save(argv[1], "hello", 0, &m, "hv0");
    save(argv[1], "impostor-hello", 1, &m, "hv0");
    save(argv[1], "keyless-hello", 4, &m, "anyone");
    memset(&m, 0, sizeof(m));
    m.body = WIRE_BODY_REPORT;
    vm.state = SCHED_VM_RUNNING;
    vm.max_kib = vm.actual_kib = 1 << 20;
    vm.unused_kib = 1 << 16;
    vm.has_unused = vm.managed = true;
    m.u.report.vms = &vm;
    m.u.report.n_vms = 1;
    m.u.report.decisions = &d;
    m.u.report.n_decisions = 1;
    m.u.report.host_total_kib = 1 << 24;
    save(argv[1], "report", 0, &m, "hv0");
    memset(&m, 0, sizeof(m));
    m.body = WIRE_BODY_HEARTBEAT;
    save(argv[1], "heartbeat", 0, &m, "hv0");
    save(argv[1], "stranger-heartbeat", 4, &m, "ghost");
    memset(&m, 0, sizeof(m));
    m.body = WIRE_BODY_POLICY_ACK;
    m.u.ack.version = 1;
    m.u.ack.applied = true;
    save(argv[1], "ack", 0, &m, "hv0");
    return 0;
}
