/*
 * flood.c - an authorized agent gone mad: one admitted key that says hello, then sends reports
 * as fast as the connection takes them, for tests/netns/flood.sh.
 *
 *   netns_flood --endpoint tcp://HOST:PORT --server-key FILE --key FILE --host-id ID
 *               --seconds S [--vms N]
 *
 * Each report holds N (default 50) VMs and exactly one decision, so the coordinator's
 * decisions_total for ID counts the reports it applied. A new report is queued only while
 * fewer than 4 are waiting in the transport's queue (16), so the flooder drops none of its own:
 * every report it counts as sent left over the connection. A "say hello" is answered, pushes
 * are not (a flooder need not be polite). At the end, its own queue drained, it prints
 *   flood: sent=N reports=R dropped=M connects=C
 * and keeps its connection open until SIGTERM: ZeroMQ may still hold what was handed to it,
 * and a socket closed now would throw that away (the coordinator would count less than was
 * sent, through no fault of its own). It measures nothing about time; flood.sh asserts on what
 * the coordinator counted.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport.h"
#include "wire.h"

#define ERR_LEN     512
#define IN_FLIGHT   4
#define DRAIN_MAX_S 60

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
    (void)sig;
    stop = 1;
}

struct flood {
    struct transport_client *client;
    const char *host_id;
    uint64_t sequence;
    uint64_t queued;
};

static void __attribute__((noreturn)) die(const char *what, const char *err)
{
    fprintf(stderr, "netns_flood: %s: %s\n", what, err);
    exit(1);
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
send_msg(struct flood *f, struct wire_msg *m)
{
    char err[ERR_LEN];
    uint8_t *buf;
    size_t len;

    m->protocol_version = WIRE_PROTOCOL_VERSION;
    snprintf(m->host_id, sizeof(m->host_id), "%s", f->host_id);
    m->sequence = ++f->sequence;
    if (wire_encode(m, &buf, &len, err, sizeof(err)) < 0)
        die("encode", err);
    transport_client_send(f->client, buf, len);
    f->queued++;
    free(buf);
}

static void
hello(struct flood *f)
{
    struct wire_msg m = {.body = WIRE_BODY_HELLO};
    snprintf(m.u.hello.agent_version, sizeof(m.u.hello.agent_version), "flood");
    send_msg(f, &m);
}

static void
report(struct flood *f, struct wire_vm *vms, size_t n_vms, uint64_t round)
{
    struct wire_decision d = {.reason = SCHED_REASON_GROW};
    struct wire_msg m = {.body = WIRE_BODY_REPORT};
    struct wire_report *r = &m.u.report;

    for (size_t i = 0; i < n_vms; i++) {
        vms[i].actual_kib = UINT64_C(2) * 1024 * 1024 + (round % 1024) * 1024;
        vms[i].target_kib = vms[i].actual_kib;
    }
    memcpy(d.uuid, vms[0].uuid, sizeof(d.uuid));
    d.old_target_kib = vms[0].actual_kib;
    d.new_target_kib = vms[0].actual_kib + 65536;
    snprintf(d.counterpart, sizeof(d.counterpart), WIRE_COUNTERPART_HOST);
    r->host_total_kib = UINT64_C(256) * 1024 * 1024;
    r->host_available_kib = UINT64_C(64) * 1024 * 1024;
    r->vms = vms; /* borrowed: m is not cleared */
    r->n_vms = n_vms;
    r->vms_total = n_vms;
    r->decisions = &d;
    r->n_decisions = 1;
    r->counters.rounds = round;
    send_msg(f, &m);
}

/* Take what the coordinator sent (up to timeout_ms for the first); answer a "say hello". */
static void
take_answers(struct flood *f, int timeout_ms)
{
    char err[ERR_LEN];
    uint8_t *buf;
    size_t len;

    while (transport_client_recv(f->client, timeout_ms, &buf, &len) == 1) {
        struct wire_msg m;
        if (wire_decode(buf, len, &m, err, sizeof(err)) == 0) {
            if (m.body == WIRE_BODY_SAY_HELLO)
                hello(f);
            wire_msg_clear(&m);
        }
        free(buf);
        timeout_ms = 0;
    }
}

static uint64_t
waiting(struct flood *f)
{
    struct transport_client_stats st;
    transport_client_get_stats(f->client, &st);
    return f->queued - st.sent - st.dropped;
}

int
main(int argc, char **argv)
{
    struct transport_client_options o = {0};
    struct flood f = {0};
    double seconds = 10;
    size_t n_vms = 50;
    char err[ERR_LEN];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            o.endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--server-key") == 0)
            o.server_key_path = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            o.key_path = argv[i + 1];
        else if (strcmp(argv[i], "--host-id") == 0)
            f.host_id = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--vms") == 0)
            n_vms = strtoul(argv[i + 1], NULL, 10);
        else
            die("usage", argv[i]);
    }
    if (!o.endpoint || !o.server_key_path || !o.key_path || !f.host_id || !n_vms ||
        n_vms > WIRE_VMS_MAX)
        die("usage", "--endpoint, --server-key, --key, --host-id and --seconds S [--vms N]");
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    if (transport_client_open(&o, &f.client, err, sizeof(err)) < 0)
        die(o.endpoint, err);

    struct wire_vm *vms = calloc(n_vms, sizeof(*vms));
    if (!vms)
        die("calloc", "out of memory");
    for (size_t i = 0; i < n_vms; i++) {
        snprintf(vms[i].uuid, sizeof(vms[i].uuid), "f100d000-0000-4000-8000-%012zx", i);
        snprintf(vms[i].name, sizeof(vms[i].name), "flood-%03zu", i);
        vms[i].state = SCHED_VM_RUNNING;
        vms[i].max_kib = UINT64_C(8) * 1024 * 1024;
        vms[i].unused_kib = vms[i].usable_kib = UINT64_C(512) * 1024;
        vms[i].has_unused = vms[i].has_usable = vms[i].managed = true;
    }
    hello(&f);
    double end = now_s() + seconds;
    uint64_t round = 0;
    while (now_s() < end) {
        if (waiting(&f) < IN_FLIGHT)
            report(&f, vms, n_vms, ++round);
        take_answers(&f, waiting(&f) < IN_FLIGHT ? 0 : 1);
    }
    double drain_end = now_s() + DRAIN_MAX_S;
    while (waiting(&f) > 0 && now_s() < drain_end)
        take_answers(&f, 10);

    struct transport_client_stats st;
    transport_client_get_stats(f.client, &st);
    printf("flood: sent=%" PRIu64 " reports=%" PRIu64 " dropped=%" PRIu64 " connects=%" PRIu64 "\n",
           st.sent, round, st.dropped, st.connects);
    fflush(stdout);
    while (!stop)
        take_answers(&f, 100);
    free(vms);
    transport_client_close(&f.client);
    transport_shutdown();
    return 0;
}
