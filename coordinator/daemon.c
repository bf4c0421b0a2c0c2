/*
 * daemon.c - memsched-coordinator's loop, endpoints, signals and control dispatch (see
 * daemon.h).
 */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "coordinator.h"
#include "fleet.h"
#include "history.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"
#include "web_api.h"
#include "web_files.h"
#include "wire.h"

#define LOG_MODULE         "coordinator"
#define TICK_MS            250
#define ERR_LEN            512
#define PATH_LEN           1024
#define SERVER_MAIN        0
#define SERVER_CTL         1
#define REFUSED_LOG_MAX_MS 60000 /* refused handshakes: logged at most this rarely, backing off */
/* Metrics: a slice of 16 hosts x 50 VMs (~100 KB of text) holds the loop ~2-6 ms
 * (tests/bench/metrics_bench), short next to an agent's round. A new document at most every
 * second, and no sooner than four times the last one took, so writing documents costs the loop
 * at most a fifth of its time (10,000 hosts x 50 VMs take seconds); and only while someone
 * scraped in the last five minutes (after that the last document is withdrawn: the next scrape
 * gets 503 while a new one is written). */
#define METRICS_HOSTS_PER_STEP 16
#define METRICS_INTERVAL_MS    1000
#define METRICS_PAUSE_FACTOR   4
#define METRICS_IDLE_MS        300000
#define FLOOR_CACHE            8 /* policy versions whose host floor one build remembers */

/* Host floors by policy version, looked up in the store once per version and build: hosts
 * hold a handful of versions between them. */
struct floor_cache {
    uint64_t version[FLOOR_CACHE];
    uint64_t kib[FLOOR_CACHE];
    bool known[FLOOR_CACHE];
    size_t n;
};

struct metrics_state {
    struct http_server *http;
    struct web_files *files;     /* the dashboard's, served by http */
    struct metrics_build *build; /* a document being written; NULL between them */
    uint64_t build_started_ms;
    uint64_t next_ms;         /* no new build before */
    uint64_t requests;        /* http_server_requests() as last seen */
    uint64_t wanted_until_ms; /* builds stop when nobody scraped for METRICS_IDLE_MS */
    bool published;           /* a document is out: withdrawn when nobody scrapes */
    struct floor_cache floors;
};

struct daemon {
    uint64_t pressure_unused_kib;
    bool metrics_omit_vm_series;
    uint64_t keys_refused; /* as last logged */
    uint64_t handshakes_throttled;
    struct log_limit refused; /* an unknown key retrying must not flood the log */
    uint64_t sequence;        /* of the messages sent to agents */
    struct store *store;
    struct fleet *fleet;
    struct history *history; /* NULL when history_max_mib = 0 */
    struct transport_server *servers[2];
    struct coordinator *coordinator;
    struct metrics_state metrics;
    sigset_t signals;
    sigset_t old_signals; /* restored by daemon_close() */
};

/* ---- the engine's messages out ---- */

struct peer_send {
    struct transport_server *server;
    const struct transport_peer *to;
};

static int
send_peer(void *ctx, const uint8_t *buf, size_t len)
{
    struct peer_send *p = ctx;

    return transport_server_send(p->server, p->to, buf, len);
}

/* Stamped, encoded and sent to the agent's connection (wire_send). */
static void
send_agent(void *ctx, const struct transport_peer *to, const char *host_id, struct wire_msg *msg)
{
    struct daemon *d = ctx;
    struct peer_send p = {.server = d->servers[SERVER_MAIN], .to = to};
    char err[ERR_LEN];

    int rc = wire_send(msg, host_id, &d->sequence, send_peer, &p, err, sizeof(err));
    if (rc == -EINVAL)
        log_err(LOG_MODULE, "host=%s event=encode_failed body=%s why=\"%s\"", host_id,
                wire_body_name(msg->body), err);
    else if (rc < 0)
        log_debug(LOG_MODULE, "host=%s event=send_failed body=%s", host_id,
                  wire_body_name(msg->body));
}

/* ---- control ---- */

static void
policy_added(void *ctx, uint64_t version, const char *scope)
{
    coordinator_policy_added(ctx, version, scope);
}

static void
fanout_progress(void *ctx, struct control_fanout *out)
{
    struct coordinator_fanout fo;

    coordinator_fanout_progress(ctx, &fo);
    memset(out, 0, sizeof(*out));
    out->version = fo.version;
    snprintf(out->scope, sizeof(out->scope), "%s", fo.scope);
    out->hosts = fo.hosts;
    out->visited = fo.visited;
    out->in_scope = fo.in_scope;
    out->pushed = fo.pushed;
    out->acked = fo.acked;
    out->refused = fo.refused;
    out->done = fo.done;
}

static int
forget_host(void *ctx, const char *host_id, char *err, size_t err_len)
{
    return coordinator_forget_host(ctx, host_id, util_clock_ms(CLOCK_MONOTONIC), err, err_len);
}

void
daemon_real_author(const struct transport_peer *from, const char *claim, char *out, size_t len)
{
    char who[WIRE_AUTHOR_MAX + 8];

    if (from->name[0]) {
        snprintf(who, sizeof(who), "key:%s", from->name);
    } else if (from->uid >= 0) {
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwuid_r((uid_t)from->uid, &pw, buf, sizeof(buf), &found) == 0 && found)
            snprintf(who, sizeof(who), "uid:%ld(%.32s)", from->uid, found->pw_name);
        else
            snprintf(who, sizeof(who), "uid:%ld", from->uid);
    } else {
        snprintf(who, sizeof(who), "unknown");
    }
    /* The author is printable text of at most WIRE_AUTHOR_MAX - 1: cut, never refuse. */
    if (claim[0] && !strstr(who, claim))
        snprintf(out, len, "%.40s claims %.15s", who, claim);
    else
        snprintf(out, len, "%.63s", who);
}

/* What a control request is answered from, for memschedctl and the dashboard alike (a
 * read-only asker's changes are refused by control_handle before anything runs). */
static struct control_context
control_context_of(struct daemon *d, bool read_only, uint64_t now_ms, uint64_t now_wall_ms)
{
    return (struct control_context){
        .fleet = d->fleet,
        .store = d->store,
        .history = d->history,
        .now_ms = now_ms,
        .now_wall_ms = now_wall_ms,
        .pressure_unused_kib = d->pressure_unused_kib,
        .on_policy_added = policy_added,
        .forget_host = forget_host,
        .fanout_progress = fanout_progress,
        .read_only = read_only,
        .ctx = d->coordinator,
    };
}

static void
answer_control(struct daemon *d, const struct transport_peer *from, const uint8_t *buf, size_t len)
{
    struct wire_control_request req;
    char err[ERR_LEN];
    char *body = NULL;
    int status;
    uint8_t *reply;
    size_t reply_len;

    if (wire_decode_control_request(buf, len, &req, err, sizeof(err)) < 0) {
        status = CONTROL_USAGE;
        body = util_xstrdup(err);
    } else {
        char author[WIRE_AUTHOR_MAX];
        daemon_real_author(from, req.author, author, sizeof(author));
        snprintf(req.author, sizeof(req.author), "%s", author);
        struct control_context cc = control_context_of(
            d, from->read_only, util_clock_ms(CLOCK_MONOTONIC), util_clock_ms(CLOCK_REALTIME));
        status = control_handle(&cc, &req, &body);
    }
    wire_encode_control_reply(status, body ? body : "", &reply, &reply_len);
    transport_server_send(d->servers[SERVER_CTL], from, reply, reply_len);
    free(reply);
    free(body);
}

/* ---- metrics ---- */

static bool
host_floor_kib(void *ctx, uint64_t version, uint64_t *kib)
{
    struct daemon *d = ctx;
    struct floor_cache *c = &d->metrics.floors;
    struct store_policy_entry e;
    char err[STORE_ERR_MAX];

    for (size_t i = 0; i < c->n; i++) {
        if (c->version[i] == version) {
            *kib = c->kib[i];
            return c->known[i];
        }
    }
    bool known = store_policy_get(d->store, version, &e, err, sizeof(err)) == 0;
    *kib = known ? e.policy.host_min_unused_kib : 0;
    if (c->n < FLOOR_CACHE) {
        c->version[c->n] = version;
        c->kib[c->n] = *kib;
        c->known[c->n++] = known;
    }
    return known;
}

static void
release_text(void *ctx)
{
    struct metrics_text *text = ctx;

    metrics_text_destroy(&text);
}

/* One slice of the metrics document, when one is due: started after METRICS_INTERVAL_MS,
 * finished and published after its last slice. */
static void
metrics_work(struct daemon *d, uint64_t now)
{
    struct metrics_state *m = &d->metrics;
    uint64_t requests;

    if (!m->http)
        return;
    requests = http_server_requests(m->http);
    if (requests != m->requests) {
        m->requests = requests;
        m->wanted_until_ms = now + METRICS_IDLE_MS;
    }
    if (!m->build && now >= m->wanted_until_ms && m->published) {
        /* Nobody reads them: a large fleet's document is hundreds of MiB not to hold. */
        http_server_withdraw(m->http);
        m->published = false;
    }
    if (!m->build) {
        if (now < m->next_ms || now >= m->wanted_until_ms)
            return;
        m->build = metrics_build_new(d->fleet);
        m->build_started_ms = now;
        m->floors.n = 0; /* a policy's floor does not change, but versions come and go */
    }
    struct metrics_source src = {
        .fleet = d->fleet,
        .now_ms = now,
        .pressure_unused_kib = d->pressure_unused_kib,
        .host_floor_kib = host_floor_kib,
        .ctx = d,
        .omit_vm_series = d->metrics_omit_vm_series,
        .history = d->history,
    };
    if (!metrics_build_step(m->build, &src, METRICS_HOSTS_PER_STEP))
        return;
    struct metrics_text *text = metrics_build_finish(m->build, &src);
    metrics_build_destroy(&m->build);
    uint64_t took_ms = util_clock_ms(CLOCK_MONOTONIC) - m->build_started_ms;
    log_debug(LOG_MODULE, "event=metrics_published bytes=%zu ms=%" PRIu64, text->bytes, took_ms);
    http_server_publish(m->http, (const char *const *)text->parts, text->lens, text->n_parts,
                        release_text, text);
    m->published = true;
    uint64_t pause_ms = took_ms * METRICS_PAUSE_FACTOR;
    m->next_ms = now + (pause_ms > METRICS_INTERVAL_MS ? pause_ms : METRICS_INTERVAL_MS);
}

/* The dashboard's API calls waiting on the HTTP listener, answered as memschedctl's are. */
static void
web_work(struct daemon *d, uint64_t now, uint64_t wall)
{
    if (!d->metrics.http)
        return;
    struct control_context cc = control_context_of(d, true, now, wall);
    web_api_serve(d->metrics.http, &cc);
}

static int
open_metrics(struct daemon *d, const char *listen, const char *web_root, char *err, size_t err_len)
{
    uint64_t now = util_clock_ms(CLOCK_MONOTONIC);
    struct http_options ho = {.listen = listen, .content_type = METRICS_CONTENT_TYPE, .api = true};
    char why[ERR_LEN];
    int rc;

    if (!listen || !listen[0])
        return 0;
    /* Without its pages the listener still serves /metrics and the API: not fatal. */
    if (web_root && web_root[0] &&
        web_files_load(web_root, &d->metrics.files, why, sizeof(why)) < 0)
        log_warn(LOG_MODULE, "event=web_root_unreadable pages=none why=\"%s\"", why);
    ho.files = web_files_table(d->metrics.files, &ho.n_files);
    rc = http_server_open_with(&ho, &d->metrics.http, err, err_len);
    if (rc < 0)
        return rc;
    d->metrics.wanted_until_ms = now + METRICS_IDLE_MS; /* the first scrape finds one ready */
    log_info(LOG_MODULE, "event=metrics_listening listen=%s port=%u web_files=%zu", listen,
             (unsigned)http_server_port(d->metrics.http), ho.n_files);
    return 0;
}

/* ---- the loop ---- */

/* Returns false when a signal asks to stop. */
static bool
take_signals(struct daemon *d)
{
    struct timespec zero = {0, 0};
    char err[ERR_LEN];
    int sig;

    while ((sig = sigtimedwait(&d->signals, NULL, &zero)) > 0) {
        if (sig == SIGTERM || sig == SIGINT)
            return false;
        if (transport_server_reload_allowlist(d->servers[SERVER_MAIN], err, sizeof(err)) < 0)
            log_err(LOG_MODULE, "event=reload_failed keeping=old why=\"%s\"", err);
        else
            log_info(LOG_MODULE, "event=allowlist_reloaded");
        /* The operators' lists too: a key removed there is refused from its next request. */
        if (transport_server_reload_allowlist(d->servers[SERVER_CTL], err, sizeof(err)) < 0)
            log_err(LOG_MODULE, "event=reload_failed list=operators keeping=old why=\"%s\"", err);
        else
            log_info(LOG_MODULE, "event=allowlist_reloaded list=operators");
    }
    return true;
}

/* Handshakes from keys outside the allowlist, counted by the transport: logged with who knocked
 * last (its address, its key's fingerprint as memschedctl keygen and the agent print it, and
 * the key itself, the `public = ` line of its key file), the first at once,
 * then with a back-off up to once a minute; "new" counts every refusal since the last line. */
static void
log_refused_handshakes(struct daemon *d, uint64_t now_ms)
{
    struct transport_server_stats st;

    transport_server_get_stats(d->servers[SERVER_MAIN], &st);
    if (st.keys_refused != d->keys_refused &&
        log_limit_failure(&d->refused, now_ms, REFUSED_LOG_MAX_MS)) {
        char fingerprint[TRANSPORT_FINGERPRINT_LEN] = "-";
        if (!st.refused_key_z85[0] ||
            transport_key_fingerprint(st.refused_key_z85, fingerprint, sizeof(fingerprint)) < 0)
            snprintf(fingerprint, sizeof(fingerprint), "-");
        log_warn(LOG_MODULE,
                 "event=handshakes_refused peer=%s fingerprint=%s key=%s "
                 "why=\"key not in the allowlist\" total=%" PRIu64 " new=%" PRIu64,
                 st.refused_address[0] ? st.refused_address : "-", fingerprint,
                 st.refused_key_z85[0] ? st.refused_key_z85 : "-", st.keys_refused,
                 st.keys_refused - d->keys_refused);
        d->keys_refused = st.keys_refused;
    }
    if (st.handshakes_throttled != d->handshakes_throttled)
        log_warn(LOG_MODULE,
                 "event=handshakes_throttled why=\"a key connecting too fast\" total=%" PRIu64
                 " new=%" PRIu64,
                 st.handshakes_throttled, st.handshakes_throttled - d->handshakes_throttled);
    d->handshakes_throttled = st.handshakes_throttled;
}

/* Agent messages taken in one turn, in one store transaction: a join or ack storm writes a
 * hosts row, an ack and an event per message, and one commit for each of them bounds ingest by
 * the disk, not the CPU. A control request ends the burst first, so no reply shows what is not
 * committed yet. */
#define BURST_MAX  256
#define POLL_EVERY 16 /* messages taken from the agents' socket between two polls */

static void
receive_burst(struct daemon *d, int timeout_ms)
{
    char err[ERR_LEN];
    bool batch = false;

    for (size_t n = 0; n < BURST_MAX; n++) {
        struct transport_peer from;
        uint8_t *buf;
        size_t len, which;
        int wake_fd = d->metrics.http ? http_server_wake_fd(d->metrics.http) : -1;
        /* The agents' messages queued behind the last one are taken straight off their socket:
         * a poll is a system call, and was a tenth of ingest. Every POLL_EVERY messages, and
         * as soon as none is queued, a poll looks at the control socket, the dashboard's
         * wake-up and ZAP handshakes too. */
        int rc =
            n % POLL_EVERY ? transport_server_take(d->servers[SERVER_MAIN], &from, &buf, &len) : 0;
        which = SERVER_MAIN;
        if (rc != 1)
            rc = transport_server_poll(d->servers, 2, wake_fd, n ? 0 : timeout_ms, &which, &from,
                                       &buf, &len);
        if (rc < 0 && rc != -EINTR)
            log_err(LOG_MODULE, "event=poll_failed error=%s", strerror(-rc));
        if (rc != 1)
            break;
        uint64_t now = util_clock_ms(CLOCK_MONOTONIC), wall = util_clock_ms(CLOCK_REALTIME);
        if (which == SERVER_MAIN) {
            if (!batch)
                batch = store_batch_begin(d->store, err, sizeof(err)) == 0;
            coordinator_receive(d->coordinator, &from, buf, len, now, wall);
            free(buf);
            continue;
        }
        if (batch && store_batch_end(d->store, true, err, sizeof(err)) < 0)
            log_warn(LOG_MODULE, "event=store_failed what=burst why=\"%s\"", err);
        batch = false;
        answer_control(d, &from, buf, len);
        free(buf);
        break;
    }
    if (batch && store_batch_end(d->store, true, err, sizeof(err)) < 0)
        log_warn(LOG_MODULE, "event=store_failed what=burst why=\"%s\"", err);
}

void
daemon_run(struct daemon *d)
{
    uint64_t next_tick = 0;
    bool fanout = false; /* a policy's fan-out has hosts to go */

    sd_notify(0, "READY=1");
    while (take_signals(d)) {
        /* While a metrics document is being written or a policy fanned out, poll without
         * waiting: their slices run between messages, and an idle loop must not stretch them
         * over minutes. */
        int timeout_ms = d->metrics.build || fanout ? 0 : TICK_MS;
        receive_burst(d, timeout_ms);
        /* The history's halved series have freed their old blocks: give their pages back
         * (glibc returns whole free pages anywhere in the heap). */
        if (d->history && history_take_caught_up(d->history))
            malloc_trim(0);
        uint64_t now = util_clock_ms(CLOCK_MONOTONIC), wall = util_clock_ms(CLOCK_REALTIME);
        web_work(d, now, wall); /* after the burst: the dashboard sees only what is committed */
        metrics_work(d, now);
        fanout = coordinator_fanout_step(d->coordinator, COORDINATOR_FANOUT_PER_TURN, now);
        if (now >= next_tick) {
            coordinator_tick(d->coordinator, now, wall);
            log_refused_handshakes(d, now);
            sd_notify(0, "WATCHDOG=1");
            next_tick = now + TICK_MS;
        }
    }
    sd_notify(0, "STOPPING=1");
    log_info(LOG_MODULE, "event=stopped messages=%" PRIu64 " rejected=%" PRIu64,
             coordinator_get_counters(d->coordinator)->messages,
             coordinator_get_counters(d->coordinator)->rejected);
}

/* ---- opening and closing ---- */

static int
open_sockets(struct daemon *d, const struct daemon_options *o, char *err, size_t err_len)
{
    struct transport_server_options agents = {
        .endpoint = o->listen,
        .key_path = o->key_file,
        .allow_dir = o->allow_dir,
        .insecure = o->insecure,
    };
    /* The control endpoint is an ipc socket (its permissions are the access control), or TCP
     * with CURVE and the operators' own allowlist. */
    bool admin_curve = strncmp(o->control, "tcp://", 6) == 0;
    struct transport_server_options control = {
        .endpoint = o->control,
        .insecure = !admin_curve,
        .ipc_mode = 0660,
        .key_path = o->key_file,
        .allow_dir = o->admin_allow_dir,
        .read_only_dir = o->admin_read_dir,
        .zap_domain = "memsched-admin",
    };
    int rc = transport_server_open(&agents, &d->servers[SERVER_MAIN], err, err_len);

    if (rc == 0 && strncmp(o->control, "ipc://", 6) == 0) {
        /* The socket's directory, e.g. /run/memsched, may not exist yet. */
        char dir[PATH_LEN];
        snprintf(dir, sizeof(dir), "%s", o->control + 6);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            mkdir(dir, 0750);
        }
    }
    if (rc == 0)
        rc = transport_server_open(&control, &d->servers[SERVER_CTL], err, err_len);
    return rc;
}

int
daemon_open(const struct daemon_options *o, struct daemon **out, char *err, size_t err_len)
{
    struct daemon *d = util_xcalloc(1, sizeof(*d));
    char why[ERR_LEN];
    int rc;

    d->pressure_unused_kib = o->pressure_unused_mib * 1024;
    d->metrics_omit_vm_series = o->metrics_omit_vm_series;
    sigemptyset(&d->signals);
    sigaddset(&d->signals, SIGHUP);
    sigaddset(&d->signals, SIGTERM);
    sigaddset(&d->signals, SIGINT);
    sigprocmask(SIG_BLOCK, &d->signals, &d->old_signals);
    signal(SIGPIPE, SIG_IGN);

    rc = store_open(o->db, &d->store, why, sizeof(why));
    if (rc < 0) {
        log_err(LOG_MODULE, "event=store_open_failed why=\"%s\"", why);
        snprintf(err, err_len, "store: %s", why);
        goto fail;
    }
    struct fleet_opts fo = {.stale_after_ms = o->stale_after_ms, .down_after_ms = o->down_after_ms};
    d->fleet = fleet_new(&fo);
    if (o->history_max_mib)
        d->history = history_new(&(struct history_opts){.max_bytes = o->history_max_mib << 20});
    fleet_set_pressure_threshold(d->fleet, d->pressure_unused_kib);
    rc = open_sockets(d, o, why, sizeof(why));
    if (rc < 0) {
        log_err(LOG_MODULE, "event=listen_failed why=\"%s\"", why);
        snprintf(err, err_len, "listen: %s", why);
        goto fail;
    }
    rc = open_metrics(d, o->metrics_listen, o->web_root, why, sizeof(why));
    if (rc < 0) {
        log_err(LOG_MODULE, "event=metrics_listen_failed why=\"%s\"", why);
        snprintf(err, err_len, "metrics_listen: %s", why);
        goto fail;
    }
    d->coordinator = coordinator_new(d->fleet, d->store, send_agent, d);
    coordinator_set_host_retention(d->coordinator, o->host_retention_ms);
    coordinator_set_history(d->coordinator, d->history);
    if (coordinator_restore_events(d->coordinator, util_clock_ms(CLOCK_MONOTONIC),
                                   util_clock_ms(CLOCK_REALTIME), why, sizeof(why)) < 0)
        log_warn(LOG_MODULE, "event=events_restore_failed why=\"%s\"", why); /* not fatal */
    log_info(LOG_MODULE, "event=started listen=%s control=%s db=%s curve=%s", o->listen, o->control,
             o->db, o->insecure ? "no" : "yes");
    *out = d;
    return 0;
fail:
    daemon_close(&d);
    return rc;
}

void
daemon_close(struct daemon **daemon)
{
    struct daemon *d = daemon ? *daemon : NULL;

    if (!d)
        return;
    coordinator_destroy(&d->coordinator);
    http_server_close(&d->metrics.http);
    web_files_destroy(&d->metrics.files);
    metrics_build_destroy(&d->metrics.build);
    transport_server_close(&d->servers[SERVER_CTL]);
    transport_server_close(&d->servers[SERVER_MAIN]);
    transport_shutdown();
    fleet_destroy(&d->fleet);
    history_destroy(&d->history);
    store_close(&d->store);
    sigprocmask(SIG_SETMASK, &d->old_signals, NULL);
    free(d);
    *daemon = NULL;
}
