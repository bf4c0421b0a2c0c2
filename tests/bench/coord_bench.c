/*
 * coord_bench.c - a real memsched-coordinator process measured from outside, over loopback
 * CURVE, through the same transport and wire modules the agents use.
 *
 *   coord_bench ingest|fanout|rss --pid PID --endpoint tcp://127.0.0.1:PORT --control ipc://...
 *               --server-key FILE --key FILE [phase options]
 *
 * ingest  K simulated agents (--agents, default 20) each say hello, take the fleet policy the
 *         bench stores first (so every report pays the real policy lookup), then send reports
 *         of --vms (50) VMs and --decisions (2) decisions for --seconds (10) as fast as the
 *         connection takes them (a new report only when the agent's transport queue is empty:
 *         no drops). The window runs from the first timed report until the coordinator has
 *         applied every one of them, counted exactly through `hosts --json` (decisions_total
 *         grows by --decisions per applied report). Records/s, the coordinator's CPU
 *         (utime+stime from /proc/PID/stat, split into its main thread and ZeroMQ's I/O
 *         thread), records per coordinator CPU-second, the bench's own CPU and the machine's.
 *         A `status` request sent halfway shows how long the control socket waits under load.
 * fanout  --hosts (1,000) simulated agents in --workers (4) forked processes (one ZeroMQ context
 *         holds at most 1,023 sockets and a transport client takes three), each with its own
 *         client and host id: hello, one report, then each waits for a PolicyPush and acks it.
 *         The bench sends `policy-set --scope fleet` over the control socket and measures the
 *         wall time to the last ack handed to the transport, then polls `policy-show --json`
 *         until the coordinator shows every ack recorded (applied, that version).
 * rss     --clients (100) clients x --hosts-per-client (100) host ids: every host says hello
 *         and reports --vms VMs; once `status --json` shows all of them, the coordinator's
 *         VmRSS and VmHWM (/proc/PID/status). A second round of reports (every VM's actual
 *         size changed, so the totals tell when it is in) shows the steady state. --rate
 *         paces the hosts (hosts a second); unpaced, the backlog waits in the coordinator's
 *         receive queues and shows in its RSS, as in a reconnect storm.
 *
 * Every simulated agent shares the one CURVE key pair of --key. Since a key is one host (the
 * coordinator drops messages whose host id is not their key's), that works only with --key -:
 * plain loopback TCP to a coordinator started with insecure=true, where there are no keys to
 * bind. coord_bench.sh runs it so; its numbers then leave out CURVE's cost. Clients are pumped with
 * transport_client_recv(.., 0, ..), since their queues move only when polled. Lines starting
 * with "RESULT" are for tests/bench/coord_bench.sh's summary; the bench asserts nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "transport.h"
#include "wire.h"

#define ERR_LEN           512
#define WORKERS_MAX       16
#define CTL_TIMEOUT_MS    120000
#define IDLE_NS           200000 /* nap after a sweep that moved nothing */
#define FANOUT_IDLE_NS    500000
#define AGENT_VERSION     "coord_bench"
#define POLICY_SETTING    "vm_grow_target_unused_mib=250"
#define DEADLINE_SETUP_MS 120000
#define TARGET_CONTROL_MS 50 /* status and hosts --limit 100 while agents report */
#define TARGET_RSS_MIB    1024
#define TARGET_FANOUT_S   10 /* a policy acked by every host */

struct options {
    const char *phase;
    const char *endpoint;
    const char *control;
    const char *server_key;
    const char *key;
    long pid;
    size_t agents;
    size_t vms;
    size_t decisions;
    double seconds;
    size_t hosts;
    size_t workers;
    size_t clients;
    size_t hosts_per_client;
    size_t rate; /* rss: hosts a second, 0 = as fast as they go */
};

/* ---- small helpers ---- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
    va_list ap;

    fputs("coord_bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double
ms_between(uint64_t from_ns, uint64_t to_ns)
{
    return (double)(int64_t)(to_ns - from_ns) / 1e6;
}

static void
nap_ns(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- /proc ---- */

/* utime + stime of /proc/.../stat, in clock ticks; -1 when unreadable. */
static long long
stat_ticks(const char *path)
{
    char buf[2048];
    unsigned long long ut, st;
    FILE *f = fopen(path, "r");

    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* A process's CPU, split by thread: its main thread, ZeroMQ's I/O threads, and the rest. */
struct cpu_sample {
    double total_s;
    double main_s;
    double zmq_io_s;
    double other_s;
};

static bool
cpu_sample(long pid, struct cpu_sample *out)
{
    char path[512], comm[64];
    double tick = (double)sysconf(_SC_CLK_TCK);
    struct dirent *e;

    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    long long total = stat_ticks(path);
    if (total < 0)
        return false;
    out->total_s = (double)total / tick;
    snprintf(path, sizeof(path), "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/task/%s/stat", pid, e->d_name);
        long long t = stat_ticks(path);
        snprintf(path, sizeof(path), "/proc/%ld/task/%s/comm", pid, e->d_name);
        FILE *f = fopen(path, "r");
        comm[0] = '\0';
        if (f) {
            if (!fgets(comm, sizeof(comm), f))
                comm[0] = '\0';
            fclose(f);
        }
        if (t < 0)
            continue;
        if (strtol(e->d_name, NULL, 10) == pid)
            out->main_s += (double)t / tick;
        else if (strncmp(comm, "ZMQbg/IO", 8) == 0)
            out->zmq_io_s += (double)t / tick;
        else
            out->other_s += (double)t / tick;
    }
    if (d)
        closedir(d);
    return true;
}

static void
cpu_diff(const struct cpu_sample *a, const struct cpu_sample *b, struct cpu_sample *d)
{
    d->total_s = b->total_s - a->total_s;
    d->main_s = b->main_s - a->main_s;
    d->zmq_io_s = b->zmq_io_s - a->zmq_io_s;
    d->other_s = b->other_s - a->other_s;
}

/* The machine's busy and total jiffies, from /proc/stat's first line. */
struct sys_sample {
    unsigned long long busy;
    unsigned long long total;
};

static void
sys_sample(struct sys_sample *s)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");

    memset(s, 0, sizeof(*s));
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            s->total += v[i];
        s->busy = s->total - v[3] - v[4]; /* not idle, not waiting for I/O */
    }
    fclose(f);
}

/* Busy CPU-seconds of the whole machine between two samples. */
static double
sys_busy_s(const struct sys_sample *a, const struct sys_sample *b)
{
    return (double)(b->busy - a->busy) / (double)sysconf(_SC_CLK_TCK);
}

static double
sys_busy_pct(const struct sys_sample *a, const struct sys_sample *b)
{
    unsigned long long total = b->total - a->total;
    return total ? 100.0 * (double)(b->busy - a->busy) / (double)total : 0.0;
}

/* A "Vm...:" line of /proc/PID/status in KiB; 0 when missing. */
static uint64_t
status_kib(long pid, const char *field)
{
    char path[64], line[256];
    size_t len = strlen(field);
    uint64_t kib = 0;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kib = strtoull(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/* A "Field:" line of /proc/PID/smaps_rollup in KiB (Pss, Pss_Anon, Anonymous...); 0 when
 * missing. */
static uint64_t
rollup_kib(long pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    uint64_t kib = 0;

    snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kib = strtoull(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static double
self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- the control socket (what memschedctl does) ---- */

struct ctl {
    struct transport_client *client;
    bool waiting; /* a request is out */
};

static void
ctl_open(struct ctl *c, const char *endpoint)
{
    struct transport_client_options o = {.endpoint = endpoint, .insecure = true, .queue_max = 4};
    char err[TRANSPORT_ERR_MAX];

    memset(c, 0, sizeof(*c));
    if (transport_client_open(&o, &c->client, err, sizeof(err)) < 0)
        die("control %s: %s", endpoint, err);
}

static void
ctl_close(struct ctl *c)
{
    transport_client_close(&c->client);
}

/* Queue one request: command, its arguments (NULL-terminated), in JSON. */
static void
ctl_send(struct ctl *c, const char *command, const char *const *args)
{
    static struct wire_control_request req; /* 8 KiB of argument slots */
    char err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;

    if (c->waiting)
        die("control: a request is already out");
    memset(&req, 0, sizeof(req));
    snprintf(req.command, sizeof(req.command), "%s", command);
    for (; args && *args; args++)
        snprintf(req.args[req.n_args++], WIRE_ARG_MAX, "%s", *args);
    req.json = true;
    snprintf(req.author, sizeof(req.author), "%s", AGENT_VERSION);
    if (wire_encode_control_request(&req, &buf, &len, err, sizeof(err)) < 0)
        die("control %s: %s", command, err);
    transport_client_send(c->client, buf, len);
    free(buf);
    c->waiting = true;
}

/* The answer to the request that is out, parsed: NULL while none came within timeout_ms.
 * A refused request or a body that is not JSON ends the run. */
static json_t *
ctl_poll(struct ctl *c, int timeout_ms)
{
    struct wire_control_reply reply = {0};
    char err[WIRE_ERR_MAX];
    json_error_t jerr;
    uint8_t *buf;
    size_t len;
    int rc = transport_client_recv(c->client, timeout_ms, &buf, &len);

    if (rc < 0)
        die("control: %s", strerror(-rc));
    if (rc == 0)
        return NULL;
    c->waiting = false;
    rc = wire_decode_control_reply(buf, len, &reply, err, sizeof(err));
    free(buf);
    if (rc < 0)
        die("control reply: %s", err);
    if (reply.status != 0)
        die("control: status %d: %s", reply.status, reply.body);
    json_t *root = json_loads(reply.body, 0, &jerr);
    if (!root)
        die("control: reply is not JSON: %s", jerr.text);
    wire_control_reply_clear(&reply);
    return root;
}

static json_t *
ctl_call(struct ctl *c, const char *command, const char *const *args)
{
    ctl_send(c, command, args);
    json_t *root = ctl_poll(c, CTL_TIMEOUT_MS);
    if (!root)
        die("control: no answer to %s within %d ms", command, CTL_TIMEOUT_MS);
    return root;
}

/* Every host, through the pages `hosts` answers in (--after the last of each): {"hosts": [...]}. */
static json_t *
ctl_hosts_all(struct ctl *c)
{
    json_t *all = json_array();
    char after[WIRE_HOST_ID_MAX] = "";

    for (;;) {
        const char *args[] = {"--limit", "10000", after[0] ? "--after" : NULL, after, NULL};
        json_t *page = ctl_call(c, "hosts", args);
        const char *next = json_string_value(json_object_get(page, "next_after"));
        json_array_extend(all, json_object_get(page, "hosts"));
        if (next)
            snprintf(after, sizeof(after), "%s", next);
        json_decref(page);
        if (!next)
            return json_pack("{s:o}", "hosts", all);
    }
}

/* An integer at a path of object keys; -1 when absent. */
static long long
json_path_int(json_t *root, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(root, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* Store a new fleet policy the way `memschedctl policy set` does; returns its version. */
static uint64_t
set_fleet_policy(struct ctl *c, const char *reason)
{
    const char *args[] = {"--scope", "fleet", "--reason", reason, POLICY_SETTING, NULL};
    json_t *root = ctl_call(c, "policy-set", args);
    long long v = json_path_int(root, "policy", "version", NULL);

    json_decref(root);
    if (v <= 0)
        die("policy-set: no version in the answer");
    return (uint64_t)v;
}

/* ---- simulated agents ---- */

struct sim_client {
    struct transport_client *client;
    uint64_t queued; /* messages handed to transport_client_send */
};

struct sim_host {
    char id[WIRE_HOST_ID_MAX];
    size_t index;
    uint64_t sequence;
    uint64_t policy_version; /* held */
    uint64_t acked_at_ns;    /* when its last ack went to the transport */
};

/* What arrived for a set of hosts, counted by kind. */
struct sim_counts {
    uint64_t pushes;
    uint64_t say_hello;
    uint64_t other;
    uint64_t undecodable;
    uint64_t first_push_ns;
};

/* --key - : no CURVE (a coordinator with insecure=true on loopback); --key DIR/ : each host's
 * own key, DIR/<host id>.secret (ingest: one agent, one key, one host, as in a fleet); else
 * the one key every simulated agent shares. */
static void
client_open(const struct options *o, struct sim_client *sc, size_t queue_max, const char *host_id)
{
    bool plain = strcmp(o->key, "-") == 0;
    size_t n = strlen(o->key);
    char own[4096];
    snprintf(own, sizeof(own), "%s%s.secret", o->key, host_id ? host_id : "");
    struct transport_client_options co = {.endpoint = o->endpoint,
                                          .server_key_path = o->server_key,
                                          .key_path = n && o->key[n - 1] == '/' ? own : o->key,
                                          .insecure = plain,
                                          .queue_max = queue_max};
    char err[TRANSPORT_ERR_MAX];

    memset(sc, 0, sizeof(*sc));
    if (transport_client_open(&co, &sc->client, err, sizeof(err)) < 0)
        die("client %s: %s", o->endpoint, err);
}

/* Messages still in the client's own queue (not yet taken by ZeroMQ). */
static uint64_t
client_pending(struct sim_client *sc)
{
    struct transport_client_stats st;

    transport_client_get_stats(sc->client, &st);
    if (st.dropped)
        die("a transport queue dropped %" PRIu64 " messages: the bench overran it", st.dropped);
    return sc->queued - st.sent;
}

static void
host_send(struct sim_client *sc, struct sim_host *h, struct wire_msg *msg)
{
    char err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;

    msg->protocol_version = WIRE_PROTOCOL_VERSION;
    snprintf(msg->host_id, sizeof(msg->host_id), "%s", h->id);
    msg->sequence = ++h->sequence;
    if (wire_encode(msg, &buf, &len, err, sizeof(err)) < 0)
        die("host %s: encoding %s: %s", h->id, wire_body_name(msg->body), err);
    transport_client_send(sc->client, buf, len);
    sc->queued++;
    free(buf);
}

static void
host_hello(struct sim_client *sc, struct sim_host *h)
{
    struct wire_msg msg = {.body = WIRE_BODY_HELLO};

    snprintf(msg.u.hello.agent_version, sizeof(msg.u.hello.agent_version), AGENT_VERSION);
    snprintf(msg.u.hello.labels[0].key, sizeof(msg.u.hello.labels[0].key), "rack");
    snprintf(msg.u.hello.labels[0].value, sizeof(msg.u.hello.labels[0].value), "bench");
    msg.u.hello.n_labels = 1;
    msg.u.hello.policy_version = h->policy_version;
    host_send(sc, h, &msg);
}

/* A VM set's identities: random uuids and realistic names, fixed per host, in uuid order as
 * the agent sends them. */
static void
vms_identity(struct wire_vm *vms, size_t n, size_t host_index)
{
    uint64_t seed = UINT64_C(0x9e3779b97f4a7c15) ^ ((uint64_t)host_index * 2654435761u + 1);

    for (size_t i = 0; i < n; i++) {
        struct wire_vm *vm = &vms[i];
        uint64_t a = bench_random(&seed), b = bench_random(&seed);
        memset(vm, 0, sizeof(*vm));
        snprintf(vm->uuid, sizeof(vm->uuid),
                 "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32 "-%012" PRIx64,
                 (uint32_t)a, (uint32_t)(a >> 32) & 0xffff, (uint32_t)(a >> 48) & 0xfff,
                 (uint32_t)b & 0xfff, (b >> 12) & UINT64_C(0xffffffffffff));
        snprintf(vm->name, sizeof(vm->name), "tenant%02zu-app-%03zu.prod", host_index % 100, i);
        vm->state = SCHED_VM_RUNNING;
        vm->max_kib = UINT64_C(8) * 1024 * 1024;
        vm->has_unused = vm->has_usable = vm->managed = true;
    }
    wire_vms_sort(vms, n);
}

/* A VM set's numbers for one round: actual sizes move by 1 MiB a round, so fleet totals show
 * which round a host's last report came from. */
static void
vms_values(struct wire_vm *vms, size_t n, uint64_t round, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++) {
        struct wire_vm *vm = &vms[i];
        vm->actual_kib = (4 + i % 4) * UINT64_C(1024) * 1024 + round * 1024;
        vm->target_kib = vm->actual_kib;
        vm->unused_kib = (50 + bench_random(seed) % 1000) * 1024;
        vm->usable_kib = vm->unused_kib * 2;
        vm->stats_age_ms = 800;
    }
}

static void
host_report(struct sim_client *sc,
            struct sim_host *h,
            struct wire_vm *vms,
            size_t n_vms,
            size_t n_decisions,
            uint64_t round)
{
    static const enum sched_reason reasons[] = {SCHED_REASON_GROW, SCHED_REASON_SHRINK,
                                                SCHED_REASON_NEED_UNMET, SCHED_REASON_IN_BAND};
    struct wire_decision decisions[8];
    struct wire_msg msg = {.body = WIRE_BODY_REPORT};
    struct wire_report *r = &msg.u.report;

    for (size_t i = 0; i < n_decisions; i++) {
        struct wire_decision *d = &decisions[i];
        memset(d, 0, sizeof(*d));
        memcpy(d->uuid, vms[i * 7 % n_vms].uuid, sizeof(d->uuid));
        d->reason = reasons[(i + round) % 4];
        d->old_target_kib = vms[i].actual_kib;
        d->new_target_kib = d->old_target_kib + 65536;
        snprintf(d->counterpart, sizeof(d->counterpart), WIRE_COUNTERPART_HOST);
    }
    r->host_total_kib = UINT64_C(512) * 1024 * 1024;
    r->host_available_kib = UINT64_C(64) * 1024 * 1024;
    r->vms = vms; /* borrowed: msg is not cleared */
    r->n_vms = n_vms;
    r->decisions = decisions;
    r->n_decisions = n_decisions;
    r->counters.rounds = round;
    r->policy_version = h->policy_version;
    host_send(sc, h, &msg);
}

/* hosts[i].id is "<prefix>-<i + first>": find the host a message is for. */
static struct sim_host *
host_lookup(struct sim_host *hosts, size_t first, size_t n, const char *id)
{
    const char *dash = strrchr(id, '-');
    char *end;

    if (!dash)
        return NULL;
    unsigned long k = strtoul(dash + 1, &end, 10);
    if (*end || k < first || k - first >= n || strcmp(hosts[k - first].id, id) != 0)
        return NULL;
    return &hosts[k - first];
}

/* Take what arrived on one client; acknowledge policy pushes (applied) at once. Returns the
 * number of messages taken. */
static size_t
client_pump(struct sim_client *sc,
            struct sim_host *hosts,
            size_t first,
            size_t n,
            struct sim_counts *counts)
{
    char err[WIRE_ERR_MAX];
    struct wire_msg msg;
    uint8_t *buf;
    size_t len, taken = 0;
    int rc;

    while ((rc = transport_client_recv(sc->client, 0, &buf, &len)) == 1) {
        taken++;
        rc = wire_decode(buf, len, &msg, err, sizeof(err));
        free(buf);
        if (rc < 0) {
            counts->undecodable++;
            continue;
        }
        struct sim_host *h = host_lookup(hosts, first, n, msg.host_id);
        if (!h) {
            counts->other++;
        } else if (msg.body == WIRE_BODY_POLICY_PUSH) {
            struct wire_msg ack = {.body = WIRE_BODY_POLICY_ACK};
            uint64_t t = bench_now_ns();
            if (!counts->first_push_ns)
                counts->first_push_ns = t;
            counts->pushes++;
            ack.u.ack.version = msg.u.push.version;
            ack.u.ack.applied = true;
            host_send(sc, h, &ack);
            h->policy_version = msg.u.push.version;
            h->acked_at_ns = bench_now_ns();
        } else if (msg.body == WIRE_BODY_SAY_HELLO) {
            counts->say_hello++;
        } else {
            counts->other++;
        }
        wire_msg_clear(&msg);
    }
    if (rc < 0)
        die("client: %s", strerror(-rc));
    return taken;
}

/* Pump every client until each has handed its queue to ZeroMQ (connections come up). */
static void
clients_flush(struct sim_client *clients,
              size_t n_clients,
              struct sim_host *hosts,
              size_t first,
              size_t n_hosts,
              struct sim_counts *counts,
              uint64_t deadline_ns)
{
    for (;;) {
        bool pending = false;
        for (size_t i = 0; i < n_clients; i++) {
            client_pump(&clients[i], hosts, first, n_hosts, counts);
            pending = pending || client_pending(&clients[i]) > 0;
        }
        if (!pending)
            return;
        if (bench_now_ns() > deadline_ns)
            die("transport queues not drained in time (is the coordinator accepting the key?)");
        nap_ns(1000000);
    }
}

/* ---- ingest ---- */

static long long
sum_decisions(json_t *root, const char *prefix)
{
    json_t *hosts = json_object_get(root, "hosts"), *h;
    size_t i, len = strlen(prefix);
    long long sum = 0;

    json_array_foreach(hosts, i, h)
    {
        const char *id = json_string_value(json_object_get(h, "host_id"));
        json_t *d = json_object_get(h, "decisions_total");
        if (id && strncmp(id, prefix, len) == 0 && json_is_integer(d))
            sum += json_integer_value(d);
    }
    return sum;
}

/* Poll `hosts --json` until the decisions of hosts named prefix* reach want; returns the sum
 * and sets *at_ns to when the answer that showed it arrived. */
static long long
wait_decisions(struct ctl *c, const char *prefix, long long want, uint64_t *at_ns)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)DEADLINE_SETUP_MS * 1000000;
    long long got;

    for (;;) {
        json_t *root = ctl_hosts_all(c);
        *at_ns = bench_now_ns();
        got = sum_decisions(root, prefix);
        json_decref(root);
        if (got >= want || *at_ns > deadline)
            return got;
        nap_ns(2000000);
    }
}

static void
print_cpu(const char *what, const struct cpu_sample *d, double wall_s)
{
    printf("  %-26s %6.2f s = %5.1f%% of one core (main thread %.2f s, ZeroMQ I/O %.2f s, "
           "other %.2f s)\n",
           what, d->total_s, 100.0 * d->total_s / wall_s, d->main_s, d->zmq_io_s, d->other_s);
}

static int
run_ingest(const struct options *o)
{
    size_t k = o->agents, nv = o->vms, nd = o->decisions;
    struct sim_client *clients = bench_xcalloc(k, sizeof(*clients));
    struct sim_host *hosts = bench_xcalloc(k, sizeof(*hosts));
    struct wire_vm *vms = bench_xcalloc(k * nv, sizeof(*vms));
    struct sim_counts counts = {0};
    uint64_t seed = 88172645463325252u, round = 1, reports = 0, sweeps = 0, idle = 0;
    uint64_t probe_sent = 0, probe_answered = 0;
    struct ctl ctl;

    ctl_open(&ctl, o->control);
    uint64_t version = set_fleet_policy(&ctl, "bench ingest");
    for (size_t i = 0; i < k; i++) {
        snprintf(hosts[i].id, sizeof(hosts[i].id), "ingest-%04zu", i);
        client_open(o, &clients[i], 64, hosts[i].id);
        hosts[i].index = i;
        vms_identity(&vms[i * nv], nv, i);
        host_hello(&clients[i], &hosts[i]);
    }
    /* Warm-up: every agent takes the policy push, acks it and sends a first report. */
    uint64_t deadline = bench_now_ns() + (uint64_t)DEADLINE_SETUP_MS * 1000000;
    for (size_t ready = 0; ready < k;) {
        ready = 0;
        for (size_t i = 0; i < k; i++) {
            client_pump(&clients[i], hosts, 0, k, &counts);
            ready += hosts[i].policy_version == version;
        }
        if (bench_now_ns() > deadline)
            die("ingest: %zu of %zu agents got policy v%" PRIu64 " in time", ready, k, version);
        nap_ns(1000000);
    }
    for (size_t i = 0; i < k; i++) {
        vms_values(&vms[i * nv], nv, round, &seed);
        host_report(&clients[i], &hosts[i], &vms[i * nv], nv, nd, round);
    }
    clients_flush(clients, k, hosts, 0, k, &counts, deadline);
    uint64_t t_base;
    long long base = wait_decisions(&ctl, "ingest-", (long long)(k * nd), &t_base);
    if (base != (long long)(k * nd))
        die("ingest: warm-up reports not all applied (%lld of %zu decisions)", base, k * nd);

    /* The timed window. */
    struct cpu_sample c0, c1, cd;
    struct sys_sample s0, s1;
    double self0 = self_cpu_s();
    cpu_sample(o->pid, &c0);
    sys_sample(&s0);
    uint64_t t0 = bench_now_ns(), stop = t0 + (uint64_t)(o->seconds * 1e9),
             probe_at = t0 + (stop - t0) / 2;
    for (uint64_t t = t0; t < stop; t = bench_now_ns()) {
        size_t progress = 0;
        round++;
        for (size_t i = 0; i < k; i++) {
            progress += client_pump(&clients[i], hosts, 0, k, &counts);
            if (client_pending(&clients[i]) > 0)
                continue;
            vms_values(&vms[i * nv], nv, round, &seed);
            host_report(&clients[i], &hosts[i], &vms[i * nv], nv, nd, round);
            reports++;
            progress++;
        }
        sweeps++;
        if (!probe_sent && t >= probe_at) {
            ctl_send(&ctl, "status", NULL);
            probe_sent = bench_now_ns();
        }
        if (probe_sent && !probe_answered) {
            json_t *root = ctl_poll(&ctl, 0);
            if (root) {
                probe_answered = bench_now_ns();
                json_decref(root);
            }
        }
        if (!progress) {
            idle++;
            nap_ns(IDLE_NS);
        }
    }
    uint64_t t_stop = bench_now_ns();
    clients_flush(clients, k, hosts, 0, k, &counts, t_stop + 60ull * 1000000000);
    uint64_t t_flushed = bench_now_ns();
    double self_s = self_cpu_s() - self0; /* the bench's work is done once its queues are empty */
    if (probe_sent && !probe_answered) {
        json_t *root = ctl_poll(&ctl, CTL_TIMEOUT_MS);
        if (!root)
            die("ingest: no answer to the status probe");
        probe_answered = bench_now_ns();
        json_decref(root);
    }
    uint64_t t1;
    long long want = base + (long long)(reports * nd);
    long long got = wait_decisions(&ctl, "ingest-", want, &t1);
    cpu_sample(o->pid, &c1);
    sys_sample(&s1);
    cpu_diff(&c0, &c1, &cd);
    /* CPU that neither the coordinator nor the bench used: other load on the machine. */
    double others_s = sys_busy_s(&s0, &s1) - cd.total_s - (self_cpu_s() - self0);

    double wall_s = ms_between(t0, t1) / 1e3;
    double applied = (double)(got - base) / (double)nd;
    double records = applied * (double)nv;
    printf("ingest: %zu agents x %zu VMs a report, %zu decisions a report, fleet policy v%" PRIu64
           " held; reports sent %.2f s, all applied %.2f s after the first\n",
           k, nv, nd, version, ms_between(t0, t_stop) / 1e3, wall_s);
    printf("  reports sent %" PRIu64 ", applied %.0f (%s), VM records %.0f\n", reports, applied,
           got == want ? "all" : "NOT all: timed out", records);
    printf("  VM records/s              %10.0f  (reports/s %.0f)\n", records / wall_s,
           applied / wall_s);
    print_cpu("coordinator CPU", &cd, wall_s);
    printf("  VM records per coordinator CPU-second %10.0f  (per main-thread CPU-second %.0f)\n",
           cd.total_s > 0 ? records / cd.total_s : 0.0, cd.main_s > 0 ? records / cd.main_s : 0.0);
    printf("  bench process CPU          %6.2f s in %.2f s = %5.1f%% of one core (incl. its "
           "ZeroMQ I/O thread)\n",
           self_s, ms_between(t0, t_flushed) / 1e3,
           100.0 * self_s / (ms_between(t0, t_flushed) / 1e3));
    printf("  machine busy               %5.1f%% of %ld CPUs over the window; other processes "
           "took %.2f s = %.1f%% of one core\n",
           sys_busy_pct(&s0, &s1), sysconf(_SC_NPROCESSORS_ONLN), others_s > 0 ? others_s : 0.0,
           others_s > 0 ? 100.0 * others_s / wall_s : 0.0);
    printf("  bench sweeps %" PRIu64 ", %" PRIu64 " of them found every agent's queue busy (the "
           "coordinator pushing back)\n",
           sweeps, idle);
    printf("  control request under load: `status` answered after %.1f ms (sent %.2f s into the "
           "window; sending stopped at %.2f s)\n",
           ms_between(probe_sent, probe_answered), ms_between(t0, probe_sent) / 1e3,
           ms_between(t0, t_stop) / 1e3);
    if (counts.say_hello || counts.other || counts.undecodable)
        printf("  unexpected: say_hello %" PRIu64 ", other %" PRIu64 ", undecodable %" PRIu64 "\n",
               counts.say_hello, counts.other, counts.undecodable);
    printf("RESULT ingest_agents=%zu ingest_records_per_s=%.0f ingest_coord_cpu_pct=%.1f "
           "ingest_coord_main_cpu_pct=%.1f ingest_coord_zmq_cpu_pct=%.1f "
           "ingest_records_per_cpu_s=%.0f ingest_bench_cpu_pct=%.1f ingest_machine_busy_pct=%.1f "
           "ingest_other_cpu_pct=%.1f ingest_control_wait_ms=%.1f ingest_complete=%s\n",
           k, records / wall_s, 100.0 * cd.total_s / wall_s, 100.0 * cd.main_s / wall_s,
           100.0 * cd.zmq_io_s / wall_s, cd.total_s > 0 ? records / cd.total_s : 0.0,
           100.0 * self_s / (ms_between(t0, t_flushed) / 1e3), sys_busy_pct(&s0, &s1),
           others_s > 0 ? 100.0 * others_s / wall_s : 0.0, ms_between(probe_sent, probe_answered),
           got == want ? "yes" : "no");

    for (size_t i = 0; i < k; i++)
        transport_client_close(&clients[i].client);
    ctl_close(&ctl);
    transport_shutdown();
    free(clients);
    free(hosts);
    free(vms);
    return got == want ? 0 : 1;
}

/* ---- fan-out ---- */

struct worker_result {
    uint64_t acked;
    uint64_t version;
    uint64_t first_push_ns;
    uint64_t last_ack_ns;
    uint64_t sweeps;
    uint64_t say_hello;
    uint64_t other;
    double cpu_s;
};

static void
write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("pipe write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* Read len bytes, waiting at most timeout_ms for each piece. */
static void
read_all(int fd, void *buf, size_t len, int timeout_ms, const char *what)
{
    char *p = buf;

    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            die("%s: timed out", what);
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("%s: %s", what, n == 0 ? "the other side is gone" : strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* One forked process's share of the simulated agents. Never returns. */
static void __attribute__((noreturn))
fanout_worker(const struct options *o, size_t first, size_t n, int to_parent, int from_parent)
{
    struct sim_client *clients = bench_xcalloc(n, sizeof(*clients));
    struct sim_host *hosts = bench_xcalloc(n, sizeof(*hosts));
    struct wire_vm *vms = bench_xcalloc(o->vms, sizeof(*vms));
    struct sim_counts counts = {0};
    struct worker_result res = {0};
    uint64_t seed = 0x2545f4914f6cdd1du ^ first;
    char cmd;

    for (size_t i = 0; i < n; i++) {
        client_open(o, &clients[i], 8, NULL);
        snprintf(hosts[i].id, sizeof(hosts[i].id), "fan-%05zu", first + i);
        hosts[i].index = first + i;
        host_hello(&clients[i], &hosts[i]);
        vms_identity(vms, o->vms, first + i);
        vms_values(vms, o->vms, 1, &seed);
        host_report(&clients[i], &hosts[i], vms, o->vms, o->decisions, 1);
    }
    clients_flush(clients, n, hosts, first, n, &counts,
                  bench_now_ns() + (uint64_t)DEADLINE_SETUP_MS * 1000000);
    write_all(to_parent, "R", 1);
    read_all(from_parent, &cmd, 1, DEADLINE_SETUP_MS, "worker: waiting for go");
    double cpu0 = self_cpu_s();
    write_all(to_parent, "A", 1);
    uint64_t deadline = bench_now_ns() + 60ull * 1000000000;
    while (counts.pushes < n && bench_now_ns() < deadline) {
        size_t taken = 0;
        for (size_t i = 0; i < n; i++)
            taken += client_pump(&clients[i], hosts, first, n, &counts);
        res.sweeps++;
        if (!taken)
            nap_ns(FANOUT_IDLE_NS);
    }
    /* An ack still in a client's own queue has not been sent: flush, and count that time. */
    bool was_pending = false;
    for (size_t i = 0; i < n; i++)
        was_pending = was_pending || client_pending(&clients[i]) > 0;
    clients_flush(clients, n, hosts, first, n, &counts, bench_now_ns() + 10ull * 1000000000);
    uint64_t flushed = bench_now_ns();
    res.cpu_s = self_cpu_s() - cpu0;
    for (size_t i = 0; i < n; i++) {
        if (hosts[i].policy_version) {
            res.acked++;
            res.version = hosts[i].policy_version;
        }
        if (hosts[i].acked_at_ns > res.last_ack_ns)
            res.last_ack_ns = hosts[i].acked_at_ns;
    }
    if (was_pending)
        res.last_ack_ns = flushed;
    res.first_push_ns = counts.first_push_ns;
    res.say_hello = counts.say_hello;
    res.other = counts.other + counts.undecodable;
    write_all(to_parent, &res, sizeof(res));
    read_all(from_parent, &cmd, 1, DEADLINE_SETUP_MS, "worker: waiting for quit");
    for (size_t i = 0; i < n; i++)
        transport_client_close(&clients[i].client);
    transport_shutdown();
    _exit(0);
}

/* Hosts named prefix* whose last recorded ack is `version`, applied. */
static size_t
count_acks(json_t *root, const char *prefix, uint64_t version, size_t *current)
{
    json_t *hosts = json_object_get(root, "hosts"), *h;
    size_t i, n = 0, len = strlen(prefix);

    *current = 0;
    json_array_foreach(hosts, i, h)
    {
        const char *id = json_string_value(json_object_get(h, "host_id"));
        json_t *ack = json_object_get(h, "last_ack");
        json_t *v = json_object_get(ack, "version");
        const char *state = json_string_value(json_object_get(h, "state"));
        if (!id || strncmp(id, prefix, len) != 0)
            continue;
        if (json_is_integer(v) && (uint64_t)json_integer_value(v) == version &&
            json_is_true(json_object_get(ack, "applied")))
            n++;
        if (state && strcmp(state, "current") == 0)
            (*current)++;
    }
    return n;
}

static int
run_fanout(const struct options *o)
{
    size_t w = o->workers, n = o->hosts;
    int to_worker[WORKERS_MAX], from_worker[WORKERS_MAX];
    pid_t pids[WORKERS_MAX];
    struct worker_result res[WORKERS_MAX];
    char cmd;

    /* Fork before this process makes its ZeroMQ context: each worker has its own. */
    fflush(stdout);
    for (size_t i = 0; i < w; i++) {
        int down[2], up[2];
        size_t first = n * i / w, last = n * (i + 1) / w;
        if (pipe(down) < 0 || pipe(up) < 0)
            die("pipe: %s", strerror(errno));
        pids[i] = fork();
        if (pids[i] < 0)
            die("fork: %s", strerror(errno));
        if (pids[i] == 0) {
            /* A worker does not outlive the bench, however the bench ends. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1)
                _exit(1);
            for (size_t j = 0; j < i; j++) {
                close(to_worker[j]);
                close(from_worker[j]);
            }
            close(down[1]);
            close(up[0]);
            fanout_worker(o, first, last - first, up[1], down[0]);
        }
        close(down[0]);
        close(up[1]);
        to_worker[i] = down[1];
        from_worker[i] = up[0];
    }
    uint64_t t_start = bench_now_ns();
    for (size_t i = 0; i < w; i++)
        read_all(from_worker[i], &cmd, 1, DEADLINE_SETUP_MS, "fanout: worker start-up");
    struct ctl ctl;
    ctl_open(&ctl, o->control);
    for (;;) {
        json_t *root = ctl_call(&ctl, "status", NULL);
        long long total = json_path_int(root, "status", "hosts", "total");
        long long reporting = json_path_int(root, "status", "hosts", "reporting");
        json_decref(root);
        if (total >= (long long)n && reporting >= (long long)n)
            break;
        if (ms_between(t_start, bench_now_ns()) > DEADLINE_SETUP_MS)
            die("fanout: only %lld of %zu hosts reporting", reporting, n);
        nap_ns(50000000);
    }
    printf("fanout: %zu agents (own client and host id each) in %zu processes connected, "
           "said hello and reported in %.2f s\n",
           n, w, ms_between(t_start, bench_now_ns()) / 1e3);
    for (size_t i = 0; i < w; i++)
        write_all(to_worker[i], "G", 1);
    for (size_t i = 0; i < w; i++)
        read_all(from_worker[i], &cmd, 1, DEADLINE_SETUP_MS, "fanout: worker arming");

    struct cpu_sample c0, c1, c2, cd;
    struct sys_sample s0, s1;
    cpu_sample(o->pid, &c0);
    sys_sample(&s0);
    uint64_t t_send = bench_now_ns();
    const char *args[] = {"--scope", "fleet", "--reason", "bench", POLICY_SETTING, NULL};
    ctl_send(&ctl, "policy-set", args);
    json_t *root = ctl_poll(&ctl, CTL_TIMEOUT_MS);
    uint64_t t_reply = bench_now_ns();
    if (!root)
        die("fanout: no answer to policy-set");
    long long version = json_path_int(root, "policy", "version", NULL);
    long long in_scope = json_path_int(root, "policy", "hosts_in_scope", NULL);
    json_decref(root);

    uint64_t acked = 0, last_ack = 0, first_push = UINT64_MAX, say_hello = 0, other = 0;
    double workers_cpu = 0;
    for (size_t i = 0; i < w; i++) {
        read_all(from_worker[i], &res[i], sizeof(res[i]), 90000, "fanout: worker result");
        acked += res[i].acked;
        if (res[i].last_ack_ns > last_ack)
            last_ack = res[i].last_ack_ns;
        if (res[i].first_push_ns && res[i].first_push_ns < first_push)
            first_push = res[i].first_push_ns;
        if (res[i].acked && res[i].version != (uint64_t)version)
            die("fanout: worker %zu acked v%" PRIu64 ", not v%lld", i, res[i].version, version);
        say_hello += res[i].say_hello;
        other += res[i].other;
        workers_cpu += res[i].cpu_s;
    }
    cpu_sample(o->pid, &c1);
    sys_sample(&s1);

    /* The coordinator's own word: every ack recorded. */
    size_t recorded = 0, current = 0, polls = 0;
    uint64_t t_recorded = 0, t_asked = 0;
    while (recorded < n && ms_between(t_send, bench_now_ns()) < 60000) {
        t_asked = bench_now_ns();
        root = ctl_call(&ctl, "policy-show", NULL);
        t_recorded = bench_now_ns();
        recorded = count_acks(root, "fan-", (uint64_t)version, &current);
        json_decref(root);
        polls++;
        if (recorded < n)
            nap_ns(5000000);
    }
    cpu_sample(o->pid, &c2);
    cpu_diff(&c0, &c1, &cd);
    double window_s = ms_between(t_send, last_ack) / 1e3;

    printf("  policy-set v%lld (hosts in scope %lld) answered after %.1f ms (the coordinator "
           "pushes to every host before it answers)\n",
           version, in_scope, ms_between(t_send, t_reply));
    printf("  first push arrived %.1f ms after the request\n",
           first_push == UINT64_MAX ? -1.0 : ms_between(t_send, first_push));
    printf("  acks sent %" PRIu64 " of %zu; last ack sent %.1f ms after the request\n", acked, n,
           ms_between(t_send, last_ack));
    printf("  policy-show: %zu of %zu acks recorded (applied, v%lld; %zu hosts 'current'), "
           "answered %.1f ms after the request (%zu polls; the last asked at %.1f ms: "
           "policy-show over %zu hosts takes a while itself)\n",
           recorded, n, version, current, ms_between(t_send, t_recorded), polls,
           ms_between(t_send, t_asked), n);
    if (window_s > 0)
        print_cpu("coordinator CPU to last ack*", &cd, window_s);
    printf("  workers' CPU from arming to last ack: %.2f s in total (they poll %zu clients each, "
           "napping %d us when a sweep finds nothing)\n",
           workers_cpu, n / w, FANOUT_IDLE_NS / 1000);
    printf("  machine busy %.1f%% from request to last ack (* /proc counts CPU in %ld ms ticks)\n",
           sys_busy_pct(&s0, &s1), 1000 / sysconf(_SC_CLK_TCK));
    if (say_hello || other)
        printf("  unexpected: say_hello %" PRIu64 ", other %" PRIu64 "\n", say_hello, other);
    printf("RESULT fanout_hosts=%zu fanout_reply_ms=%.1f fanout_last_ack_ms=%.1f "
           "fanout_acks_sent=%" PRIu64
           " fanout_recorded_ms=%.1f fanout_recorded_asked_ms=%.1f fanout_recorded=%zu "
           "fanout_coord_cpu_s=%.2f fanout_to_recorded_coord_cpu_s=%.2f\n",
           n, ms_between(t_send, t_reply), ms_between(t_send, last_ack), acked,
           ms_between(t_send, t_recorded), ms_between(t_send, t_asked), recorded, cd.total_s,
           c2.total_s - c0.total_s);

    for (size_t i = 0; i < w; i++) {
        write_all(to_worker[i], "Q", 1);
        close(to_worker[i]);
        close(from_worker[i]);
    }
    for (size_t i = 0; i < w; i++)
        waitpid(pids[i], NULL, 0);
    ctl_close(&ctl);
    transport_shutdown();
    return acked == n && recorded == n ? 0 : 1;
}

/* ---- rss ---- */

struct rss_totals {
    long long hosts;
    long long reporting;
    long long vms;
    long long vm_actual_kib;
};

static void
read_totals(struct ctl *c, struct rss_totals *t)
{
    json_t *root = ctl_call(c, "status", NULL);

    t->hosts = json_path_int(root, "status", "hosts", "total");
    t->reporting = json_path_int(root, "status", "hosts", "reporting");
    t->vms = json_path_int(root, "status", "vms", "total");
    t->vm_actual_kib = json_path_int(root, "status", "memory", "vm_actual_kib");
    json_decref(root);
}

/* Control requests sent while a round's reports flow, one after the other: how long the
 * coordinator makes an operator wait under load. Measured from the send to the reply taken in
 * the bench's sweep (a sweep of every client is well under a millisecond at 250 clients). */
struct probes {
    struct ctl *ctl;
    size_t next; /* the next probe to send; PROBES: all answered */
    uint64_t sent_ns;
    double ms[2]; /* status, hosts --limit 100 */
};

#define PROBES 2

static void
probes_work(struct probes *p, size_t sent, size_t n)
{
    static const char *const hosts_args[] = {"--limit", "100", NULL};

    if (!p || p->next == PROBES)
        return;
    if (!p->ctl->waiting) {
        if (sent < n / 4)
            return; /* once the round is well under way */
        ctl_send(p->ctl, p->next == 0 ? "status" : "hosts", p->next == 0 ? NULL : hosts_args);
        p->sent_ns = bench_now_ns();
        return;
    }
    json_t *root = ctl_poll(p->ctl, 0);
    if (!root)
        return;
    p->ms[p->next++] = ms_between(p->sent_ns, bench_now_ns());
    json_decref(root);
}

/* One round: every host sends (round 1: a hello and) a report, a few in flight per client so
 * the bench's own queues stay small; probes (may be NULL) are sent on the way. */
static void
rss_round(const struct options *o,
          struct sim_client *clients,
          struct sim_host *hosts,
          struct wire_vm *vms,
          uint64_t round,
          struct probes *probes)
{
    size_t nc = o->clients, hpc = o->hosts_per_client, n = nc * hpc;
    size_t *cursor = bench_xcalloc(nc, sizeof(*cursor));
    struct sim_counts counts = {0};
    uint64_t seed = 0x853c49e6748fea9bu + round, t0 = bench_now_ns();
    size_t done = 0, sent = 0;

    while (done < nc) {
        size_t progress = 0;
        /* Paced: the hosts due by now, one a client per sweep so all clients move together. */
        size_t allowed = o->rate
                             ? (size_t)((double)o->rate * ms_between(t0, bench_now_ns()) / 1e3) + 1
                             : SIZE_MAX;
        done = 0;
        for (size_t c = 0; c < nc; c++) {
            size_t burst = o->rate ? 1 : SIZE_MAX;
            progress += client_pump(&clients[c], hosts, 0, n, &counts);
            while (cursor[c] < hpc && client_pending(&clients[c]) < 4 && burst-- > 0 &&
                   sent < allowed) {
                struct sim_host *h = &hosts[c * hpc + cursor[c]++];
                if (round == 1)
                    host_hello(&clients[c], h);
                vms_identity(vms, o->vms, h->index);
                vms_values(vms, o->vms, round, &seed);
                host_report(&clients[c], h, vms, o->vms, o->decisions, round);
                progress++;
                sent++;
            }
            done += cursor[c] == hpc;
        }
        probes_work(probes, sent, n);
        if (!progress)
            nap_ns(IDLE_NS);
    }
    while (probes && probes->next < PROBES) {
        probes_work(probes, n, n);
        nap_ns(IDLE_NS);
    }
    clients_flush(clients, nc, hosts, 0, n, &counts,
                  bench_now_ns() + (uint64_t)DEADLINE_SETUP_MS * 1000000);
    if (counts.say_hello || counts.other || counts.undecodable)
        printf("  unexpected: say_hello %" PRIu64 ", other %" PRIu64 ", undecodable %" PRIu64 "\n",
               counts.say_hello, counts.other, counts.undecodable);
    free(cursor);
}

/* Wait until the fleet shows every host with its round's report in. */
static bool
rss_wait(struct ctl *c, long long hosts, long long vms, long long actual_kib)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)DEADLINE_SETUP_MS * 1000000;
    struct rss_totals t;

    for (;;) {
        read_totals(c, &t);
        if (t.hosts == hosts && t.reporting == hosts && t.vms == vms &&
            t.vm_actual_kib == actual_kib)
            return true;
        if (bench_now_ns() > deadline) {
            printf("  timed out: hosts %lld reporting %lld vms %lld vm_actual_kib %lld\n", t.hosts,
                   t.reporting, t.vms, t.vm_actual_kib);
            return false;
        }
        nap_ns(100000000);
    }
}

struct fleet_fanout {
    double reply_ms;   /* policy-set answered */
    double last_ack_s; /* the last host's ack handed to its client */
    double recorded_s; /* policy-show's fan-out shows every host acked */
};

/* The fan-out's acked count as policy-show gives it (one host listed, the fan-out in full). */
static long long
fanout_acked(struct ctl *c, const char *one_host, uint64_t version)
{
    char scope[WIRE_SCOPE_MAX];
    const char *args[] = {"--scope", scope, NULL};

    snprintf(scope, sizeof(scope), "host:%s", one_host);
    json_t *root = ctl_call(c, "policy-show", args);
    json_t *fo = json_object_get(root, "fanout");
    long long acked = -1;
    if (json_is_object(fo) &&
        json_integer_value(json_object_get(fo, "version")) == (long long)version)
        acked = json_integer_value(json_object_get(fo, "acked"));
    json_decref(root);
    return acked;
}

/* A fleet policy set while every host is connected: each host acks its push at once (its
 * client pumped in a loop); done when policy show counts every host's ack. */
static bool
fleet_fanout(const struct options *o,
             struct ctl *ctl,
             struct sim_client *clients,
             struct sim_host *hosts,
             struct fleet_fanout *out)
{
    size_t nc = o->clients, n = nc * o->hosts_per_client, acked = 0;
    struct sim_counts counts = {0};
    uint64_t t0 = bench_now_ns(), deadline = t0 + (uint64_t)DEADLINE_SETUP_MS * 1000000;
    uint64_t version = set_fleet_policy(ctl, "coord_bench rss fan-out");
    uint64_t last_ack = 0;

    out->reply_ms = ms_between(t0, bench_now_ns());
    /* Pushes counted as they are acked (client_pump): a walk of every host each sweep would
     * make the bench, not the coordinator, the slow side at 50,000 hosts. */
    while (counts.pushes < n && bench_now_ns() < deadline) {
        size_t taken = 0;
        for (size_t c = 0; c < nc; c++)
            taken += client_pump(&clients[c], hosts, 0, n, &counts);
        if (!taken)
            nap_ns(IDLE_NS);
    }
    clients_flush(clients, nc, hosts, 0, n, &counts, deadline);
    for (size_t i = 0; i < n; i++) {
        acked += hosts[i].policy_version == version;
        if (hosts[i].policy_version == version && hosts[i].acked_at_ns > last_ack)
            last_ack = hosts[i].acked_at_ns;
    }
    out->last_ack_s = last_ack ? ms_between(t0, last_ack) / 1e3 : -1.0;
    /* Not too often: policy show still walks every known host (~0.1 s at 10,000), and asking
     * in a loop would hold back the acks it is waiting for. */
    while (fanout_acked(ctl, hosts[0].id, version) < (long long)n) {
        if (bench_now_ns() > deadline)
            return false;
        nap_ns(250000000);
    }
    out->recorded_s = ms_between(t0, bench_now_ns()) / 1e3;
    return acked == n;
}

static int
run_rss(const struct options *o)
{
    size_t nc = o->clients, n = nc * o->hosts_per_client, nv = o->vms;
    struct sim_client *clients = bench_xcalloc(nc, sizeof(*clients));
    struct sim_host *hosts = bench_xcalloc(n, sizeof(*hosts));
    struct wire_vm *vms = bench_xcalloc(nv, sizeof(*vms));
    struct cpu_sample c0, c1, c2;
    struct ctl ctl;
    bool ok;

    /* The VM sizes each round reports, summed: how the totals tell a round is in. */
    long long per_host[3] = {0};
    for (uint64_t r = 1; r <= 2; r++) {
        for (size_t i = 0; i < nv; i++)
            per_host[r] += (long long)((4 + i % 4) * UINT64_C(1024) * 1024 + r * 1024);
    }
    ctl_open(&ctl, o->control);
    uint64_t rss0 = status_kib(o->pid, "VmRSS");
    cpu_sample(o->pid, &c0);
    for (size_t c = 0; c < nc; c++)
        client_open(o, &clients[c], 2 * o->hosts_per_client, NULL); /* room for every host's ack */
    for (size_t i = 0; i < n; i++) {
        snprintf(hosts[i].id, sizeof(hosts[i].id), "rss-%06zu", i);
        hosts[i].index = i;
    }
    uint64_t t0 = bench_now_ns();
    rss_round(o, clients, hosts, vms, 1, NULL);
    ok = rss_wait(&ctl, (long long)n, (long long)(n * nv), (long long)n * per_host[1]);
    uint64_t t1 = bench_now_ns();
    cpu_sample(o->pid, &c1);
    uint64_t rss1 = status_kib(o->pid, "VmRSS"), hwm1 = status_kib(o->pid, "VmHWM");
    printf("rss: %zu hosts (%zu clients x %zu host ids) x %zu VMs = %zu VM records, ", n, nc,
           o->hosts_per_client, nv, n * nv);
    if (o->rate)
        printf("paced at %zu hosts/s\n", o->rate);
    else
        printf("as fast as they go (a reconnect storm: the backlog waits in the coordinator)\n");
    printf("  before: coordinator VmRSS %.1f MiB\n", rss0 / 1024.0);
    printf("  round 1 (hello + report each) %s after %.2f s, coordinator CPU %.2f s: VmRSS %.1f "
           "MiB, VmHWM %.1f MiB\n",
           ok ? "all in" : "NOT all in", ms_between(t0, t1) / 1e3, c1.total_s - c0.total_s,
           rss1 / 1024.0, hwm1 / 1024.0);
    struct probes probes = {.ctl = &ctl};
    rss_round(o, clients, hosts, vms, 2, &probes);
    bool ok2 = rss_wait(&ctl, (long long)n, (long long)(n * nv), (long long)n * per_host[2]);
    uint64_t t2 = bench_now_ns();
    cpu_sample(o->pid, &c2);
    uint64_t rss2 = status_kib(o->pid, "VmRSS"), hwm2 = status_kib(o->pid, "VmHWM");
    printf("  round 2 (report each, every VM resized) %s after %.2f s, coordinator CPU %.2f s: "
           "VmRSS %.1f MiB, VmHWM %.1f MiB\n",
           ok2 ? "all in" : "NOT all in", ms_between(t1, t2) / 1e3, c2.total_s - c1.total_s,
           rss2 / 1024.0, hwm2 / 1024.0);
    printf("  while round 2 reported: `status` answered in %.1f ms, `hosts --limit 100` in %.1f "
           "ms (target < %d ms each)\n",
           probes.ms[0], probes.ms[1], TARGET_CONTROL_MS);
    uint64_t pss = rollup_kib(o->pid, "Pss"), pss_anon = rollup_kib(o->pid, "Pss_Anon");
    uint64_t anon = rollup_kib(o->pid, "Anonymous");
    printf("  smaps_rollup: Pss %.1f MiB, Pss_Anon %.1f MiB, Anonymous %.1f MiB (target VmRSS < "
           "%d MiB)\n",
           pss / 1024.0, pss_anon / 1024.0, anon / 1024.0, TARGET_RSS_MIB);
    struct fleet_fanout ff = {0};
    bool ok3 = fleet_fanout(o, &ctl, clients, hosts, &ff);
    printf("  policy set to all %zu hosts: reply in %.1f ms, last ack sent %.2f s, all %zu acks "
           "recorded (policy show) %s %.2f s after the set (target < %d s)\n",
           n, ff.reply_ms, ff.last_ack_s, n, ok3 ? "" : "NOT", ff.recorded_s, TARGET_FANOUT_S);
    printf("RESULT rss_hosts=%zu rss_vms=%zu rss_rate=%zu rss_before_mib=%.1f rss_round1_mib=%.1f "
           "hwm_round1_mib=%.1f rss_round2_mib=%.1f hwm_round2_mib=%.1f rss_complete=%s "
           "status_ms=%.1f hosts_limit_ms=%.1f pss_mib=%.1f pss_anon_mib=%.1f "
           "fanout_all_recorded_s=%.2f\n",
           n, nv, o->rate, rss0 / 1024.0, rss1 / 1024.0, hwm1 / 1024.0, rss2 / 1024.0,
           hwm2 / 1024.0, ok && ok2 ? "yes" : "no", probes.ms[0], probes.ms[1], pss / 1024.0,
           pss_anon / 1024.0, ok3 ? ff.recorded_s : -1.0);

    for (size_t c = 0; c < nc; c++)
        transport_client_close(&clients[c].client);
    ctl_close(&ctl);
    transport_shutdown();
    free(clients);
    free(hosts);
    free(vms);
    return ok && ok2 && ok3 ? 0 : 1;
}

/* ---- arguments ---- */

static void
usage(FILE *f)
{
    fputs(
        "usage: coord_bench ingest|fanout|rss --pid PID --endpoint tcp://127.0.0.1:PORT\n"
        "                   --control ipc://PATH --server-key FILE --key FILE [options]\n"
        "  --vms N (50) --decisions N (2)                    VMs and decisions a report\n"
        "  ingest: --agents K (20) --seconds S (10)\n"
        "  fanout: --hosts N (1000) --workers W (4)\n"
        "  rss:    --clients C (100) --hosts-per-client H (100) --rate HOSTS_PER_S (0: no pacing)\n"
        "Run by tests/bench/coord_bench.sh, which starts the coordinator it measures.\n",
        f);
}

static size_t
size_arg(const char *name, const char *v, size_t min, size_t max)
{
    char *end;
    unsigned long long x = strtoull(v, &end, 10);

    if (*end || v[0] < '0' || v[0] > '9' || x < min || x > max)
        die("%s wants a whole number in [%zu, %zu], not '%s'", name, min, max, v);
    return (size_t)x;
}

static void
parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){.agents = 20,
                          .vms = 50,
                          .decisions = 2,
                          .seconds = 10,
                          .hosts = 1000,
                          .workers = 4,
                          .clients = 100,
                          .hosts_per_client = 100};
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        exit(argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2);
    }
    o->phase = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("%s wants a value", name);
        i++;
        if (strcmp(name, "--endpoint") == 0)
            o->endpoint = v;
        else if (strcmp(name, "--control") == 0)
            o->control = v;
        else if (strcmp(name, "--server-key") == 0)
            o->server_key = v;
        else if (strcmp(name, "--key") == 0)
            o->key = v;
        else if (strcmp(name, "--pid") == 0)
            o->pid = (long)size_arg(name, v, 1, 1u << 30);
        else if (strcmp(name, "--agents") == 0)
            o->agents = size_arg(name, v, 1, 300);
        else if (strcmp(name, "--vms") == 0)
            o->vms = size_arg(name, v, 1, WIRE_VMS_MAX);
        else if (strcmp(name, "--decisions") == 0)
            o->decisions = size_arg(name, v, 1, 8);
        else if (strcmp(name, "--seconds") == 0)
            o->seconds = (double)size_arg(name, v, 1, 600);
        else if (strcmp(name, "--hosts") == 0)
            o->hosts = size_arg(name, v, 1, 100000);
        else if (strcmp(name, "--workers") == 0)
            o->workers = size_arg(name, v, 1, WORKERS_MAX);
        else if (strcmp(name, "--clients") == 0)
            o->clients = size_arg(name, v, 1, 300);
        else if (strcmp(name, "--hosts-per-client") == 0)
            o->hosts_per_client = size_arg(name, v, 1, 10000);
        else if (strcmp(name, "--rate") == 0)
            o->rate = size_arg(name, v, 0, 10000000);
        else
            die("unknown option '%s'", name);
    }
    if (!o->endpoint || !o->control || !o->server_key || !o->key || !o->pid)
        die("--pid, --endpoint, --control, --server-key and --key are required");
    if (o->decisions > o->vms)
        die("--decisions must not exceed --vms");
    /* A ZeroMQ context holds at most 1,023 sockets; a client takes three (its DEALER, the
     * monitor's PAIR and the PAIR reading it). */
    if (strcmp(o->phase, "fanout") == 0 && (o->hosts + o->workers - 1) / o->workers > 300)
        die("fanout: at most 300 agents a worker process; raise --workers");
}

int
main(int argc, char **argv)
{
    struct options o;

    parse_args(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (strcmp(o.phase, "ingest") == 0)
        return run_ingest(&o);
    if (strcmp(o.phase, "fanout") == 0)
        return run_fanout(&o);
    if (strcmp(o.phase, "rss") == 0)
        return run_rss(&o);
    usage(stderr);
    return 2;
}
