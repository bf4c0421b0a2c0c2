/*
 * link.c - hello, reports, heartbeats and policy acks over the transport (see link.h).
 */
#include "link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "policy.h"
#include "transport.h"
#include "util.h"

#define TRUNCATED_LOG_MAX_MS 3600000u /* at most hourly while it lasts */
#define LOG_MODULE           "link"
#define ERR_LEN              256
#define COMPLAIN_MAX_MS      60000
/* With no connection to any coordinator for this long, say so once, with this key's
 * fingerprint: a key missing from the allowlist is refused silently by design. */
#define NO_SESSION_MS 30000

/* Two coordinators with their own stores number the same policy differently. An agent that
 * told each the number the other pushed would be pushed the policy again by each in turn,
 * every retry, for ever (each push rewriting the state file). So a push from another endpoint
 * than the one the held policy came from, with exactly the held values, is acked applied
 * without going to the gate (nothing changes), and that endpoint is told its own number for
 * what is held from then on: an alias, valid while the agent holds what it held then. Pushes
 * with other values still win, last one first: coordinators that disagree still take turns,
 * and the agent's log shows it. */
struct alias {
    bool set;
    uint64_t held_version, held_epoch; /* what the agent held when the alias was made */
    uint64_t version, epoch;           /* the endpoint's own number for the same values */
};

struct link {
    size_t n_endpoints;
    enum link_state states[LINK_ENDPOINTS_MAX]; /* one session per endpoint */
    bool connected[LINK_ENDPOINTS_MAX];         /* a connection was seen: the next is new */
    link_emit_fn emit;                          /* where the protocol's messages go */
    void *emit_ctx;
    /* The transport (link_open only): one client per endpoint. */
    struct transport_client *clients[LINK_ENDPOINTS_MAX];
    uint64_t connects[LINK_ENDPOINTS_MAX]; /* as last seen: a rise means a new connection */
    size_t n_clients;
    char fingerprint[TRANSPORT_FINGERPRINT_LEN]; /* of this agent's key; "" when insecure */
    uint64_t alone_since_ms; /* monotonic: since when no endpoint has a connection; 0 = one has */
    bool alone_said;         /* no_session was logged for this outage */
    char host_id[WIRE_HOST_ID_MAX];
    struct wire_hello hello;
    uint64_t held_epoch; /* of the fleet policy held: the last push applied, or from the start */
    size_t held_from;    /* the endpoint whose push is held; LINK_ALL = none (or from the start) */
    uint64_t applied;    /* pushes the gate applied: link_poll sees one mid-poll */
    struct policy held_policy;                /* its values (held_from != LINK_ALL) */
    struct alias aliases[LINK_ENDPOINTS_MAX]; /* per endpoint */
    uint64_t sequence;
    uint64_t hellos; /* said so far, to one endpoint or all */
    uint64_t rejected;
    struct log_limit bad_messages; /* a broken or hostile coordinator must not flood the log */
    struct log_limit truncated;    /* reports cut at WIRE_VMS_MAX: said once, then with back-off */
    struct wire_vm *vms;           /* report buffers, grown to the largest round */
    struct wire_decision *decisions;
    size_t capacity;
};

static void say_hello(struct link *l, size_t which, uint64_t policy_version);
static void send_to(void *ctx, size_t which, struct wire_msg *msg);

/* The protocol's state, before any hello: NULL with err filled for a bad host id. */
static struct link *
create(const struct link_options *opts, char *err, size_t err_len)
{
    struct link *l;

    if (!wire_host_id_valid(opts->host_id)) {
        snprintf(err, err_len, "host_id '%s' must be 1-63 of [A-Za-z0-9._-]", opts->host_id);
        return NULL;
    }
    l = util_xcalloc(1, sizeof(*l));
    l->n_endpoints =
        opts->n_endpoints < LINK_ENDPOINTS_MAX ? opts->n_endpoints : LINK_ENDPOINTS_MAX;
    snprintf(l->host_id, sizeof(l->host_id), "%s", opts->host_id);
    snprintf(l->hello.agent_version, sizeof(l->hello.agent_version), "%s", MEMSCHED_VERSION);
    memcpy(l->hello.labels, opts->labels, sizeof(opts->labels));
    l->hello.n_labels = opts->n_labels;
    l->held_epoch = opts->policy_epoch;
    l->held_from = LINK_ALL;
    return l;
}

int
link_new(const struct link_options *opts,
         link_emit_fn emit,
         void *emit_ctx,
         struct link **out,
         char *err,
         size_t err_len)
{
    struct link *l = create(opts, err, err_len);

    if (!l)
        return -EINVAL;
    l->emit = emit;
    l->emit_ctx = emit_ctx;
    say_hello(l, LINK_ALL, opts->policy_version);
    *out = l;
    return 0;
}

int
link_open(const struct link_options *opts, struct link **out, char *err, size_t err_len)
{
    struct link *l = create(opts, err, err_len);

    if (!l)
        return -EINVAL;
    for (size_t i = 0; i < l->n_endpoints; i++) {
        struct transport_client_options o = {
            .endpoint = opts->endpoints[i],
            .server_key_path = opts->server_key_path,
            .key_path = opts->key_path,
            .insecure = opts->insecure,
        };
        int rc = transport_client_open(&o, &l->clients[i], err, err_len);
        if (rc < 0) {
            link_destroy(&l);
            return rc;
        }
        l->n_clients++;
    }
    if (!opts->insecure && opts->key_path) {
        struct transport_keys keys;
        if (transport_keys_load(opts->key_path, &keys, false, err, err_len) == 0)
            transport_key_fingerprint(keys.public_z85, l->fingerprint, sizeof(l->fingerprint));
    }
    l->alone_since_ms = util_clock_ms(CLOCK_MONOTONIC);
    l->emit = send_to;
    l->emit_ctx = l;
    say_hello(l, LINK_ALL, opts->policy_version); /* queued until each client connects */
    *out = l;
    return 0;
}

void
link_destroy(struct link **link)
{
    if (!link || !*link)
        return;
    for (size_t i = 0; i < (*link)->n_clients; i++)
        transport_client_close(&(*link)->clients[i]);
    free((*link)->vms);
    free((*link)->decisions);
    free(*link);
    *link = NULL;
}

uint64_t
link_dropped(struct link *l)
{
    uint64_t dropped = 0;
    for (size_t i = 0; i < l->n_clients; i++) {
        struct transport_client_stats st;
        transport_client_get_stats(l->clients[i], &st);
        dropped += st.dropped;
    }
    return dropped;
}

uint64_t
link_hellos(const struct link *l)
{
    return l->hellos;
}

uint64_t
link_rejected(const struct link *l)
{
    return l->rejected;
}

struct fanout {
    struct link *l;
    size_t which; /* LINK_ALL = every endpoint */
};

static int
send_fanout(void *ctx, const uint8_t *buf, size_t len)
{
    struct fanout *f = ctx;

    for (size_t i = 0; i < f->l->n_clients; i++) {
        if (f->which == LINK_ALL || f->which == i)
            transport_client_send(f->l->clients[i], buf, len);
    }
    return 0;
}

/* The transport's sender, link_open's emit: stamp the envelope, encode, send to one client or
 * all. The only place link.c touches the envelope. */
static void
send_to(void *ctx, size_t which, struct wire_msg *msg)
{
    struct link *l = ctx;
    struct fanout f = {.l = l, .which = which};
    char err[ERR_LEN];

    if (wire_send(msg, l->host_id, &l->sequence, send_fanout, &f, err, sizeof(err)) < 0)
        log_err(LOG_MODULE, "event=encode_failed body=%s why=\"%s\"", wire_body_name(msg->body),
                err);
}

static void
emit(struct link *l, size_t which, struct wire_msg *msg)
{
    if (l->emit)
        l->emit(l->emit_ctx, which, msg);
}

/* The number endpoint `which` knows the held policy by (see struct alias), and its epoch. */
static uint64_t
version_for(const struct link *l, size_t which, uint64_t policy_version, uint64_t *epoch)
{
    const struct alias *a = &l->aliases[which];

    if (which < l->n_endpoints && a->set && policy_version && a->held_version == policy_version &&
        a->held_epoch == l->held_epoch) {
        *epoch = a->epoch;
        return a->version;
    }
    *epoch = l->held_epoch;
    return policy_version;
}

static void
set_version(struct wire_msg *msg, uint64_t version, uint64_t epoch)
{
    switch (msg->body) {
    case WIRE_BODY_HELLO:
        msg->u.hello.policy_version = version;
        msg->u.hello.policy_epoch = version ? epoch : 0;
        break;
    case WIRE_BODY_REPORT:
        msg->u.report.policy_version = version;
        break;
    case WIRE_BODY_HEARTBEAT:
        msg->u.heartbeat_policy_version = version;
        break;
    default:
        break;
    }
}

/* A message that says the version held, to `which` or all: one message for all while no
 * endpoint there has an alias in force, else one per endpoint with its own number. */
static void
emit_held(struct link *l, size_t which, struct wire_msg *msg, uint64_t policy_version)
{
    uint64_t epoch;
    bool aliased = false;

    for (size_t i = 0; i < l->n_endpoints; i++) {
        if ((which == LINK_ALL || which == i) &&
            version_for(l, i, policy_version, &epoch) != policy_version)
            aliased = true;
    }
    if (!aliased) {
        set_version(msg, policy_version, l->held_epoch);
        emit(l, which, msg);
        return;
    }
    for (size_t i = 0; i < l->n_endpoints; i++) {
        if (which != LINK_ALL && which != i)
            continue;
        uint64_t v = version_for(l, i, policy_version, &epoch);
        set_version(msg, v, epoch);
        emit(l, i, msg);
    }
}

/* A hello to one endpoint or all; each session it reaches on a live connection is greeted. */
static void
say_hello(struct link *l, size_t which, uint64_t policy_version)
{
    struct wire_msg msg = {.body = WIRE_BODY_HELLO};

    msg.u.hello = l->hello;
    emit_held(l, which, &msg, policy_version);
    l->hellos++;
    for (size_t i = 0; i < l->n_endpoints; i++) {
        if ((which == LINK_ALL || which == i) && l->states[i] != LINK_STATE_CONNECTING)
            l->states[i] = LINK_STATE_GREETED;
    }
}

void
link_connected(struct link *l, size_t which, uint64_t policy_version)
{
    if (which >= l->n_endpoints)
        return;
    if (l->connected[which]) {
        say_hello(l, which, policy_version); /* the coordinator may be a new one */
        return;
    }
    l->connected[which] = true; /* the hello queued at start goes first */
    if (l->states[which] == LINK_STATE_CONNECTING)
        l->states[which] = LINK_STATE_GREETED;
}

void
link_set_labels(struct link *l,
                const struct wire_label *labels,
                size_t n_labels,
                uint64_t policy_version)
{
    size_t n = n_labels < WIRE_LABELS_MAX ? n_labels : WIRE_LABELS_MAX;

    memset(l->hello.labels, 0, sizeof(l->hello.labels));
    memcpy(l->hello.labels, labels, n * sizeof(*labels));
    l->hello.n_labels = n;
    say_hello(l, LINK_ALL, policy_version);
}

enum link_state
link_get_state(const struct link *l, size_t which)
{
    return which < l->n_endpoints ? l->states[which] : LINK_STATE_CONNECTING;
}

const char *
link_state_name(enum link_state state)
{
    switch (state) {
    case LINK_STATE_CONNECTING:
        return "connecting";
    case LINK_STATE_GREETED:
        return "greeted";
    case LINK_STATE_CURRENT:
        return "current";
    case LINK_STATE_REFUSED:
        return "refused";
    }
    return "?";
}

/* No connection to any coordinator for NO_SESSION_MS: said once per outage, and its end. A
 * coordinator refuses a key outside its allowlist without a word, so the likely cause is named
 * with the key's fingerprint. */
static void
watch_sessions(struct link *l, bool any_connected, uint64_t handshake_failures)
{
    uint64_t now = util_clock_ms(CLOCK_MONOTONIC);

    if (any_connected) {
        if (l->alone_said)
            log_info(LOG_MODULE, "event=session_up after_s=%" PRIu64,
                     (now - l->alone_since_ms) / 1000);
        l->alone_since_ms = 0;
        l->alone_said = false;
        return;
    }
    if (l->alone_since_ms == 0)
        l->alone_since_ms = now;
    if (l->alone_said || now - l->alone_since_ms < NO_SESSION_MS)
        return;
    l->alone_said = true;
    if (l->fingerprint[0])
        log_warn(LOG_MODULE,
                 "event=no_session after_s=%" PRIu64 " endpoints=%zu handshake_failures=%" PRIu64
                 " why=\"no session after %" PRIu64
                 " s: is this key (fingerprint %s) in the coordinator's allowlist?\"",
                 (now - l->alone_since_ms) / 1000, l->n_clients, handshake_failures,
                 (now - l->alone_since_ms) / 1000, l->fingerprint);
    else
        log_warn(LOG_MODULE,
                 "event=no_session after_s=%" PRIu64 " endpoints=%zu handshake_failures=%" PRIu64
                 " why=\"no session after %" PRIu64 " s: is a coordinator listening there?\"",
                 (now - l->alone_since_ms) / 1000, l->n_clients, handshake_failures,
                 (now - l->alone_since_ms) / 1000);
}

/* A connection that came (back) up, as the transport counts them. */
static void
greet_new_connections(struct link *l, uint64_t policy_version)
{
    bool any_connected = false;
    uint64_t handshake_failures = 0;

    for (size_t i = 0; i < l->n_clients; i++) {
        struct transport_client_stats st;
        transport_client_get_stats(l->clients[i], &st);
        if (st.connects != l->connects[i]) {
            link_connected(l, i, policy_version);
            l->connects[i] = st.connects;
        }
        any_connected |= st.connected;
        handshake_failures += st.handshake_failures;
    }
    if (l->n_clients)
        watch_sessions(l, any_connected, handshake_failures);
}

static void
grow_buffers(struct link *l, size_t n)
{
    if (n <= l->capacity)
        return;
    l->capacity = n;
    l->vms = util_xrealloc(l->vms, n, sizeof(*l->vms));
    l->decisions = util_xrealloc(l->decisions, n, sizeof(*l->decisions));
}

/* e: the VM's line of the plan (NULL: none yet), which says why a VM is left alone. */
static void
copy_vm(const struct hv_vm *vm,
        const struct sched_vm *s,
        const struct sched_entry *e,
        struct wire_vm *w)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->uuid, sizeof(w->uuid), "%s", vm->uuid);
    snprintf(w->name, sizeof(w->name), "%s", vm->name);
    w->state = vm->state;
    w->max_kib = vm->max_kib;
    w->actual_kib = vm->actual_kib;
    w->target_kib = s->target_kib;
    w->unused_kib = vm->unused_kib;
    w->usable_kib = vm->usable_kib;
    w->stats_age_ms = vm->stats_age_ms;
    w->has_unused = vm->has_unused;
    w->has_usable = vm->has_usable;
    w->managed = vm->managed;
    w->stuck = s->stuck;
    w->min_kib = vm->min_kib;
    w->cap_kib = vm->cap_kib;
    w->weight = vm->weight;
    if (e && sched_reason_is_skip(e->reason))
        w->skip_reason = e->reason;
}

static size_t
copy_decisions(const struct round_view *view, struct wire_decision *out)
{
    const struct sched_plan *plan = view->plan;
    size_t n = 0;

    for (size_t k = 0; k < plan->n_shrinks + plan->n_grows; k++) {
        const struct sched_entry *e = &plan->entries[k];
        struct wire_decision *d = &out[n++];
        memset(d, 0, sizeof(*d));
        snprintf(d->uuid, sizeof(d->uuid), "%s", view->vms[e->vm].uuid);
        d->reason = e->reason;
        d->old_target_kib = e->old_target_kib;
        d->new_target_kib = e->new_target_kib;
        d->signal_kib = view->policy && view->policy->demand_signal == POLICY_DEMAND_USABLE
                            ? view->snapshot[e->vm].usable_kib
                            : view->snapshot[e->vm].unused_kib;
        d->need_kib = e->need_kib;
        d->lookahead_kib = e->lookahead_kib;
        d->vm_kib = e->vm_kib;
        d->host_kib = e->host_kib;
        if (e->counterpart == SCHED_HOST)
            snprintf(d->counterpart, sizeof(d->counterpart), "%s", WIRE_COUNTERPART_HOST);
        else if (e->counterpart >= 0)
            snprintf(d->counterpart, sizeof(d->counterpart), "%s", view->vms[e->counterpart].uuid);
    }
    return n;
}

void
link_report(struct link *l,
            const struct round_view *view,
            const struct round_counters *c,
            uint64_t policy_version)
{
    struct wire_msg msg = {.body = WIRE_BODY_REPORT};
    struct wire_report *r = &msg.u.report;
    size_t n = view->n_vms < WIRE_VMS_MAX ? view->n_vms : WIRE_VMS_MAX;

    greet_new_connections(l, policy_version);
    grow_buffers(l, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        copy_vm(&view->vms[i], &view->snapshot[i], view->entry_of ? view->entry_of[i] : NULL,
                &l->vms[i]);
    /* In uuid order: the coordinator then neither sorts them nor looks for a uuid listed
     * twice, with 50,000 hosts' reports to take (libvirt lists domains in its own order). */
    wire_vms_sort(l->vms, n);
    r->host_total_kib = view->host->total_kib;
    r->host_available_kib = view->host->available_kib;
    r->vms = l->vms;
    r->n_vms = n;
    r->decisions = l->decisions;
    r->n_decisions = n == view->n_vms ? copy_decisions(view, l->decisions) : 0;
    r->has_policy = view->policy != NULL;
    if (view->policy)
        r->policy = *view->policy;
    r->counters = (struct wire_counters){
        .rounds = c->rounds,
        .granted_kib = c->granted_kib,
        .reclaimed_kib = c->reclaimed_kib,
        .apply_failures = c->apply_failures,
        .reports_dropped = link_dropped(l),
        .messages_rejected = l->rejected,
    };
    r->vms_total = view->n_vms;
    if (n < view->n_vms &&
        log_limit_failure(&l->truncated, util_clock_ms(CLOCK_MONOTONIC), TRUNCATED_LOG_MAX_MS))
        log_warn(LOG_MODULE,
                 "event=report_truncated vms=%zu sent=%zu why=\"one report holds at most %d VMs: "
                 "the coordinator sees the first %zu and the total\"",
                 view->n_vms, n, WIRE_VMS_MAX, n);
    else if (n == view->n_vms)
        log_limit_success(&l->truncated);
    emit_held(l, LINK_ALL, &msg, policy_version);
}

void
link_heartbeat(struct link *l, uint64_t policy_version)
{
    struct wire_msg msg = {.body = WIRE_BODY_HEARTBEAT};

    greet_new_connections(l, policy_version);
    emit_held(l, LINK_ALL, &msg, policy_version);
}

void
link_receive(struct link *l,
             size_t which,
             const struct wire_msg *msg,
             uint64_t policy_version,
             link_push_fn on_push,
             void *ctx)
{
    if (which >= l->n_endpoints)
        return;
    if (msg->body == WIRE_BODY_SAY_HELLO) {
        say_hello(l, which, policy_version);
        return;
    }
    if (msg->body != WIRE_BODY_POLICY_PUSH) {
        log_debug(LOG_MODULE, "event=unexpected body=%s", wire_body_name(msg->body));
        return;
    }
    const struct wire_policy_push *push = &msg->u.push;
    struct wire_msg ack = {.body = WIRE_BODY_POLICY_ACK};
    ack.u.ack.version = push->version;
    if (policy_version && l->held_from != LINK_ALL && l->held_from != which &&
        policy_equal(&l->held_policy, &push->policy)) {
        /* What another coordinator pushed already, under this one's number: see struct alias. */
        if (!l->aliases[which].set || l->aliases[which].version != push->version ||
            l->aliases[which].epoch != push->epoch)
            log_info(LOG_MODULE,
                     "event=policy_same endpoint=%zu version=%" PRIu64 " held=%" PRIu64
                     " held_from=%zu why=\"the values held already: kept, acked applied\"",
                     which, push->version, policy_version, l->held_from);
        l->aliases[which] = (struct alias){.set = true,
                                           .held_version = policy_version,
                                           .held_epoch = l->held_epoch,
                                           .version = push->version,
                                           .epoch = push->epoch};
        ack.u.ack.applied = true;
    } else {
        ack.u.ack.applied = on_push(ctx, push, ack.u.ack.reason, sizeof(ack.u.ack.reason)) == 0;
        if (ack.u.ack.applied) {
            ack.u.ack.reason[0] = '\0';
            l->held_epoch = push->epoch;
            l->held_from = which;
            l->applied++;
            l->held_policy = push->policy;
            l->aliases[which].set = false;
        }
    }
    l->states[which] = ack.u.ack.applied ? LINK_STATE_CURRENT : LINK_STATE_REFUSED;
    emit(l, which, &ack);
}

void
link_poll(struct link *l, int timeout_ms, uint64_t policy_version, link_push_fn on_push, void *ctx)
{
    char err[ERR_LEN];

    for (size_t i = 0; i < l->n_clients; i++) {
        uint8_t *buf;
        size_t len;
        struct wire_msg msg;
        /* The first endpoint takes the wait; the others are only looked at. */
        int rc = transport_client_recv(l->clients[i], i == 0 ? timeout_ms : 0, &buf, &len);
        if (rc != 1)
            continue;
        if (wire_decode(buf, len, &msg, err, sizeof(err)) < 0) {
            l->rejected++;
            if (log_limit_failure(&l->bad_messages, util_clock_ms(CLOCK_MONOTONIC),
                                  COMPLAIN_MAX_MS))
                log_warn(LOG_MODULE, "event=message_rejected why=\"%s\" rejected=%" PRIu64, err,
                         l->rejected);
        } else {
            uint64_t applied = l->applied;
            link_receive(l, i, &msg, policy_version, on_push, ctx);
            if (l->applied != applied) /* the next endpoint in this poll hears what is held now */
                policy_version = msg.u.push.version;
            wire_msg_clear(&msg);
        }
        free(buf);
    }
    greet_new_connections(l, policy_version);
}
