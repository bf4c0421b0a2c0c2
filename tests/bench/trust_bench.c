/*
 * trust_bench.c - what one admitted key can cost a real memsched-coordinator: its RSS (VmRSS,
 * VmHWM from /proc/PID/status) after each kind of hostile traffic, sent over loopback CURVE
 * with one allowed key bound to one host id. Run by tests/bench/trust_bench.sh.
 *
 *   trust_bench --pid PID --endpoint tcp://127.0.0.1:PORT --server-key FILE --key FILE
 *               --host-id ID [--count N] [--hostile N]
 *
 * Phases, in order, each printed as "RESULT phase=... rss_kib=... hwm_kib=...":
 *   baseline       the key's own hello
 *   legal-largest  20 of the largest legal reports (4,096 VMs, 127-character names, as many
 *                  decisions: 1.4 MB each)
 *   heartbeats     N heartbeats for N new host ids (impostors: the key is one host)
 *   hellos         N hellos for new host ids
 *   own-hellos     N hellos under the key's own host id (each one is legal)
 *   acks           N acks for versions never pushed, under the key's own host id
 *   hostile        --hostile (20) reports of half a million 4-byte VM records (2 MiB each, the
 *                  most a server takes), sent as fast as the connection takes them
 * The bench asserts nothing; it prints numbers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport.h"
#include "wire.h"

#define ERR_LEN 512

struct bench {
    struct transport_client *client;
    const char *host_id;
    long pid;
    uint64_t sequence;
    uint64_t queued;
};

static void
status_kib(long pid, const char *field, long *out)
{
    char path[64], line[256];
    size_t n = strlen(field);

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    *out = -1;
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            *out = strtol(line + n + 1, NULL, 10);
    }
    fclose(f);
}

/* Hand queued messages over and take the answers, until every message left or 120 s pass (a
 * slow coordinator makes its receive queue push back; nothing is dropped meanwhile). */
static void
pump(struct bench *b)
{
    struct transport_client_stats st;
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        uint8_t *buf;
        size_t len;
        while (transport_client_recv(b->client, 0, &buf, &len) == 1)
            free(buf);
        transport_client_get_stats(b->client, &st);
        if (st.sent + st.dropped >= b->queued)
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 120)
            return;
        if (transport_client_recv(b->client, 1, &buf, &len) == 1)
            free(buf);
    }
}

static void
send_raw(struct bench *b, const uint8_t *buf, size_t len)
{
    transport_client_send(b->client, buf, len);
    b->queued++;
    pump(b);
}

static void
send_msg(struct bench *b, struct wire_msg *m, const char *host_id)
{
    char err[ERR_LEN];
    uint8_t *buf;
    size_t len;

    m->protocol_version = WIRE_PROTOCOL_VERSION;
    snprintf(m->host_id, sizeof(m->host_id), "%s", host_id);
    m->sequence = ++b->sequence;
    if (wire_encode(m, &buf, &len, err, sizeof(err)) < 0) {
        fprintf(stderr, "trust_bench: encode: %s\n", err);
        exit(1);
    }
    send_raw(b, buf, len);
    free(buf);
}

static void
result(struct bench *b, const char *phase, size_t messages)
{
    long rss, hwm;
    struct timespec settle = {1, 0};
    struct transport_client_stats st;

    nanosleep(&settle, NULL); /* let the coordinator take what is queued */
    pump(b);
    status_kib(b->pid, "VmRSS", &rss);
    status_kib(b->pid, "VmHWM", &hwm);
    transport_client_get_stats(b->client, &st);
    printf("RESULT phase=%s messages=%zu rss_kib=%ld hwm_kib=%ld dropped_by_bench=%" PRIu64 "\n",
           phase, messages, rss, hwm, st.dropped);
    fflush(stdout);
    if (rss < 0) {
        fprintf(stderr, "trust_bench: the coordinator (pid %ld) is gone\n", b->pid);
        exit(1);
    }
}

static void
hello(struct bench *b, const char *host_id)
{
    struct wire_msg m = {.body = WIRE_BODY_HELLO};

    snprintf(m.u.hello.agent_version, sizeof(m.u.hello.agent_version), "trust_bench");
    send_msg(b, &m, host_id);
}

static void
largest_legal(struct bench *b, size_t count)
{
    struct wire_msg m = {.body = WIRE_BODY_REPORT};
    struct wire_vm *vms = calloc(WIRE_VMS_MAX, sizeof(*vms));
    struct wire_decision *ds = calloc(WIRE_VMS_MAX, sizeof(*ds));

    if (!vms || !ds)
        abort();
    for (size_t i = 0; i < WIRE_VMS_MAX; i++) {
        snprintf(vms[i].uuid, sizeof(vms[i].uuid), "00000000-0000-4000-8000-%012zx", i);
        memset(vms[i].name, 'n', WIRE_NAME_MAX - 1);
        vms[i].state = SCHED_VM_RUNNING;
        vms[i].max_kib = vms[i].actual_kib = vms[i].target_kib = 1 << 20;
        vms[i].unused_kib = vms[i].usable_kib = 1 << 18;
        vms[i].has_unused = vms[i].has_usable = vms[i].managed = true;
        snprintf(ds[i].uuid, sizeof(ds[i].uuid), "%s", vms[i].uuid);
        snprintf(ds[i].counterpart, sizeof(ds[i].counterpart), "%s", WIRE_COUNTERPART_HOST);
        ds[i].reason = SCHED_REASON_GROW;
        ds[i].new_target_kib = 1 << 20;
    }
    m.u.report.vms = vms;
    m.u.report.n_vms = WIRE_VMS_MAX;
    m.u.report.decisions = ds;
    m.u.report.n_decisions = WIRE_VMS_MAX;
    m.u.report.host_total_kib = 1 << 30;
    for (size_t i = 0; i < count; i++)
        send_msg(b, &m, b->host_id);
    free(vms);
    free(ds);
}

static size_t
put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A report of as many 4-byte VM records (an empty uuid each) as the server takes in one message
 * (about half a million), under the key's host id. */
static void
hostile(struct bench *b, size_t count)
{
    size_t id_len = strlen(b->host_id), records = (WIRE_REQUEST_MAX_BYTES - 128) / 4, n = 0;
    uint8_t *buf = malloc(WIRE_REQUEST_MAX_BYTES);
    static const uint8_t vm[4] = {3 << 3 | 2, 2, 1 << 3 | 2, 0};

    if (!buf)
        abort();
    n += put_varint(buf + n, 1 << 3);
    n += put_varint(buf + n, 1);
    n += put_varint(buf + n, 2 << 3 | 2);
    n += put_varint(buf + n, id_len);
    memcpy(buf + n, b->host_id, id_len);
    n += id_len;
    n += put_varint(buf + n, 3 << 3);
    n += put_varint(buf + n, 1);
    n += put_varint(buf + n, 11 << 3 | 2);
    n += put_varint(buf + n, records * 4);
    for (size_t i = 0; i < records; i++, n += 4)
        memcpy(buf + n, vm, 4);
    for (size_t i = 0; i < count; i++)
        send_raw(b, buf, n);
    free(buf);
}

int
main(int argc, char **argv)
{
    const char *endpoint = NULL, *server_key = NULL, *key = NULL;
    struct bench b = {0};
    size_t count = 50000, hostile_count = 20;
    char err[ERR_LEN], id[WIRE_HOST_ID_MAX];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pid") == 0)
            b.pid = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--endpoint") == 0)
            endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--server-key") == 0)
            server_key = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else if (strcmp(argv[i], "--host-id") == 0)
            b.host_id = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--hostile") == 0)
            hostile_count = strtoul(argv[i + 1], NULL, 10);
    }
    if (!b.pid || !endpoint || !server_key || !key || !b.host_id) {
        fputs("usage: trust_bench --pid PID --endpoint E --server-key F --key F --host-id ID "
              "[--count N]\n",
              stderr);
        return 2;
    }
    struct transport_client_options o = {
        .endpoint = endpoint, .server_key_path = server_key, .key_path = key, .queue_max = 64};
    if (transport_client_open(&o, &b.client, err, sizeof(err)) < 0) {
        fprintf(stderr, "trust_bench: %s\n", err);
        return 1;
    }
    hello(&b, b.host_id);
    result(&b, "baseline", 1);
    largest_legal(&b, 20);
    result(&b, "legal-largest", 20);
    for (size_t i = 0; i < count; i++) {
        struct wire_msg m = {.body = WIRE_BODY_HEARTBEAT};
        snprintf(id, sizeof(id), "ghost-%zu", i);
        send_msg(&b, &m, id);
    }
    result(&b, "heartbeats", count);
    for (size_t i = 0; i < count; i++) {
        snprintf(id, sizeof(id), "ghost-hello-%zu", i);
        hello(&b, id);
    }
    result(&b, "hellos", count);
    for (size_t i = 0; i < count; i++)
        hello(&b, b.host_id);
    result(&b, "own-hellos", count);
    for (size_t i = 0; i < count; i++) {
        struct wire_msg m = {.body = WIRE_BODY_POLICY_ACK};
        m.u.ack.version = 1000 + i;
        snprintf(m.u.ack.reason, sizeof(m.u.ack.reason), "forged");
        send_msg(&b, &m, b.host_id);
    }
    result(&b, "acks", count);
    hostile(&b, hostile_count);
    result(&b, "hostile", hostile_count);
    transport_client_close(&b.client);
    transport_shutdown();
    return 0;
}
