/*
 * coordinator.c - sessions, message handling and policy pushes (see coordinator.h).
 */
#include "coordinator.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scope.h"
#include "util.h"
#include "wire.h"

#define LOG_MODULE         "coordinator"
#define BUCKETS            4096 /* sessions hash; chains stay short up to ~10^5 hosts */
#define COMPLAIN_MAX       60000
#define ERR_LEN            256
#define FORGET_EVERY_MS    10000 /* how often to look for hosts past the retention */
#define HOSTS_ROW_EVERY_MS 60000 /* a host's row is rewritten at most this often by hellos */
#define ASKED_SLOTS        4096  /* recent "say hello"s remembered: a fixed table, not per host */
#define SAY_HELLO_EVERY_MS 5000  /* one "say hello" per connection and host id this often */

struct session {
    struct session *next;
    enum coordinator_session_state state;
    char host_id[WIRE_HOST_ID_MAX];
    struct transport_peer peer;
    char key_z85[TRANSPORT_KEY_Z85_LEN]; /* the key it first said hello with */
    uint64_t pushed_version;
    uint64_t pushed_at_ms;
    uint64_t refused_version;
    uint64_t known_version;     /* the policy in force for it, as last looked up... */
    uint64_t known_generation;  /* ...under this generation of the policy store */
    bool push_answered;         /* pushed_version was acked: later acks for it are ignored */
    bool relabelled;            /* its labels changed: push once even at the version it holds */
    bool epoch_ok;              /* the version it holds came from this store's epoch */
    uint64_t hosts_row_ms;      /* when its hosts row was last written (0 = not yet) */
    uint64_t hosts_row_version; /* with this policy version */
    struct log_limit rejoins;   /* its "rejoined" lines: a hello storm is one line a minute */
    uint64_t fanout_pushed;     /* the fan-out version it was counted as pushed for... */
    uint64_t fanout_answered;   /* ...and as having answered: each host counts once */
};

/* A "say hello" sent lately: a hash of the connection and host id, and when. Strangers get no
 * session; this fixed table only keeps their queued messages from each drawing an answer. */
struct asked {
    uint64_t hash;
    uint64_t at_ms;
};

/* The fan-out of the newest stored policy: a cursor over the session buckets, so a policy set
 * is pushed a few hosts per loop turn. A session made in a bucket the cursor has passed said
 * hello since the policy was stored, and was offered it then. */
struct fanout {
    struct coordinator_fanout progress;
    struct scope scope;
    size_t next_bucket; /* BUCKETS: every bucket looked at */
};

struct coordinator {
    struct fleet *fleet;
    struct store *store;
    struct history *history; /* NULL: none kept */
    coordinator_send_fn send;
    void *send_ctx;
    struct session *buckets[BUCKETS];
    struct asked asked[ASKED_SLOTS];
    uint64_t now_ms;            /* as of the last message or tick */
    uint64_t now_wall_ms;       /* as of the last message or tick */
    uint64_t policy_generation; /* bumped by every stored policy; starts at 1 */
    /* Every scope's newest policy, read from the store once per generation: after a policy
     * set, every host's lookup (fan-out and reports alike) merges layers in memory instead of
     * querying and parsing a row per layer. */
    struct store_layers *layers;
    uint64_t layers_generation; /* 0: not loaded */
    uint64_t logged_event_seq;
    uint64_t host_retention_ms; /* 0 = keep forever */
    uint64_t next_forget_ms;    /* the next look for hosts past the retention */
    struct log_limit bad_messages;
    struct log_limit impostor_messages;
    struct log_limit ignored_acks;
    struct coordinator_counters counters;
    struct fanout fanout;
};

static struct session *
session_find(struct coordinator *c, const char *host_id, bool create)
{
    struct session **slot = &c->buckets[util_hash_str(host_id) % BUCKETS];

    for (struct session *s = *slot; s; s = s->next) {
        if (strcmp(s->host_id, host_id) == 0)
            return s;
    }
    if (!create)
        return NULL;
    struct session *s = util_xcalloc(1, sizeof(*s));
    snprintf(s->host_id, sizeof(s->host_id), "%s", host_id);
    s->next = *slot;
    *slot = s;
    c->counters.sessions++;
    return s;
}

static void
session_remove(struct coordinator *c, const char *host_id)
{
    for (struct session **p = &c->buckets[util_hash_str(host_id) % BUCKETS]; *p; p = &(*p)->next) {
        if (strcmp((*p)->host_id, host_id) == 0) {
            struct session *gone = *p;
            *p = gone->next;
            free(gone);
            c->counters.sessions--;
            return;
        }
    }
}

struct coordinator *
coordinator_new(struct fleet *fleet, struct store *store, coordinator_send_fn send, void *send_ctx)
{
    struct coordinator *c = util_xcalloc(1, sizeof(*c));

    assert(send);
    c->fleet = fleet;
    c->store = store;
    c->send = send;
    c->send_ctx = send_ctx;
    c->logged_event_seq = fleet_last_event_seq(fleet);
    c->policy_generation = 1;
    c->host_retention_ms = COORDINATOR_HOST_RETENTION_MS;
    c->fanout.next_bucket = BUCKETS;
    c->fanout.progress.done = true;
    return c;
}

void
coordinator_destroy(struct coordinator **coordinator)
{
    if (!coordinator || !*coordinator)
        return;
    store_layers_free(&(*coordinator)->layers);
    for (size_t b = 0; b < BUCKETS; b++) {
        struct session *s = (*coordinator)->buckets[b];
        while (s) {
            struct session *next = s->next;
            free(s);
            s = next;
        }
    }
    free(*coordinator);
    *coordinator = NULL;
}

const struct coordinator_counters *
coordinator_get_counters(const struct coordinator *c)
{
    return &c->counters;
}

enum coordinator_session_state
coordinator_session_state(const struct coordinator *c, const char *host_id)
{
    for (const struct session *s = c->buckets[util_hash_str(host_id) % BUCKETS]; s; s = s->next) {
        if (strcmp(s->host_id, host_id) == 0)
            return s->state;
    }
    return COORDINATOR_SESSION_UNKNOWN;
}

const char *
coordinator_session_state_name(enum coordinator_session_state state)
{
    switch (state) {
    case COORDINATOR_SESSION_UNKNOWN:
        return "unknown";
    case COORDINATOR_SESSION_GREETED:
        return "greeted";
    case COORDINATOR_SESSION_CURRENT:
        return "current";
    case COORDINATOR_SESSION_PUSHING:
        return "pushing";
    case COORDINATOR_SESSION_REFUSED:
        return "refused";
    }
    return "?";
}

/* ---- sending ---- */

static void
send_to(struct coordinator *c,
        const struct transport_peer *to,
        const char *host_id,
        struct wire_msg *msg)
{
    c->send(c->send_ctx, to, host_id, msg);
}

static void
send_msg(struct coordinator *c, struct session *s, struct wire_msg *msg)
{
    send_to(c, &s->peer, s->host_id, msg);
}

static uint64_t
connection_hash(const struct transport_peer *peer, const char *host_id)
{
    uint64_t h = util_hash_str(host_id);

    for (size_t i = 0; i < peer->id_len; i++)
        h = util_hash_mix(h, peer->id[i]);
    return h ? h : 1;
}

/* "I do not know you": answered where the message came from; no session is made for it. An
 * agent's queue (up to 16 reports) arrives at once after a restart: one answer per connection
 * and host id every SAY_HELLO_EVERY_MS, or it would say hello 16 times. */
static void
say_hello(struct coordinator *c, const struct transport_peer *to, const char *host_id)
{
    struct wire_msg msg = {.body = WIRE_BODY_SAY_HELLO};
    uint64_t hash = connection_hash(to, host_id);
    struct asked *a = &c->asked[hash % ASKED_SLOTS];

    if (a->hash == hash && c->now_ms - a->at_ms < SAY_HELLO_EVERY_MS) {
        c->counters.say_hello_held++;
        return;
    }
    a->hash = hash;
    a->at_ms = c->now_ms;
    c->counters.say_hello++;
    send_to(c, to, host_id, &msg);
}

/* A hello answers the question: the next message of a new connection is asked again. */
static void
forget_asked(struct coordinator *c, const struct transport_peer *from, const char *host_id)
{
    uint64_t hash = connection_hash(from, host_id);
    struct asked *a = &c->asked[hash % ASKED_SLOTS];

    if (a->hash == hash)
        a->hash = 0;
}

/* A host sent the fan-out's version counts once, whichever path sent it and however often. */
static void
count_fanout_push(struct coordinator *c, struct session *s, uint64_t version)
{
    if (version != c->fanout.progress.version || s->fanout_pushed == version)
        return;
    s->fanout_pushed = version;
    c->fanout.progress.pushed++;
}

static void
count_fanout_answer(struct coordinator *c, struct session *s, const struct wire_policy_ack *ack)
{
    if (ack->version != c->fanout.progress.version || s->fanout_answered == ack->version)
        return;
    s->fanout_answered = ack->version;
    if (ack->applied)
        c->fanout.progress.acked++;
    else
        c->fanout.progress.refused++;
}

/* Push the policy in force for this host when the version it holds differs, and settle its
 * session state. A version held from another epoch of the store (a restored or replaced
 * database) counts as none. */
/* The policy the store's layers make for a host: 0, -ENOENT when none governs it, or -EIO. */
static int
policy_for_host(struct coordinator *c,
                const struct fleet_host_info *info,
                struct store_effective *entry,
                char *err,
                size_t err_len)
{
    if (c->layers_generation != c->policy_generation) {
        store_layers_free(&c->layers);
        int rc = store_layers_load(c->store, &c->layers, err, err_len);
        if (rc < 0)
            return rc; /* tried again at the next lookup */
        c->layers_generation = c->policy_generation;
    }
    return store_layers_for_host(c->layers, info->host_id, info->labels, info->n_labels, NULL,
                                 entry, err, err_len);
}

static void
offer_policy(struct coordinator *c, struct session *s, uint64_t held_version)
{
    if (!s->epoch_ok)
        held_version = 0;
    uint64_t now_ms = c->now_ms;
    struct fleet_host_info info;
    struct store_effective entry;
    char err[ERR_LEN];

    /* Every report comes through here: skip the store while nothing has changed and there is
     * nothing to offer (up to date, nothing governs the host, or it refused what would be). */
    if (s->known_generation == c->policy_generation && !s->relabelled) {
        if (s->known_version == held_version || s->known_version == 0) {
            s->state = COORDINATOR_SESSION_CURRENT;
            return;
        }
        if (s->known_version == s->refused_version) {
            s->state = COORDINATOR_SESSION_REFUSED;
            return;
        }
    }
    if (fleet_host_get(c->fleet, s->host_id, &info) < 0)
        return;
    int rc = policy_for_host(c, &info, &entry, err, sizeof(err));
    if (rc == 0 || rc == -ENOENT) {
        s->known_generation = c->policy_generation;
        s->known_version = rc == 0 ? entry.version : 0;
    }
    /* Layers merge per host: a host whose labels changed may get other values under the same
     * highest version (a label scope older than the newest one joined or left), so it is sent
     * its policy once anyway; the agent applies a push whose values differ from what it holds
     * even at the same version. */
    bool relabelled = s->relabelled;
    s->relabelled = false;
    if (rc == -ENOENT || (rc == 0 && entry.version == held_version && !relabelled)) {
        s->state = COORDINATOR_SESSION_CURRENT; /* nothing governs it, or it is up to date */
        return;
    }
    if (rc < 0) {
        log_err(LOG_MODULE, "host=%s event=policy_lookup_failed why=\"%s\"", s->host_id, err);
        return;
    }
    if (entry.version == s->refused_version && !relabelled) {
        s->state = COORDINATOR_SESSION_REFUSED; /* it said no, and why; asking again changes
                                                   nothing */
        return;
    }
    if (entry.version == s->pushed_version && now_ms - s->pushed_at_ms < COORDINATOR_PUSH_RETRY_MS)
        return; /* on its way */
    struct wire_msg msg = {.body = WIRE_BODY_POLICY_PUSH};
    msg.u.push.version = entry.version;
    msg.u.push.epoch = store_epoch(c->store);
    snprintf(msg.u.push.scope, sizeof(msg.u.push.scope), "%s", entry.scope);
    msg.u.push.policy = entry.policy;
    send_msg(c, s, &msg);
    count_fanout_push(c, s, entry.version);
    s->state = COORDINATOR_SESSION_PUSHING;
    s->pushed_version = entry.version;
    s->pushed_at_ms = now_ms;
    s->push_answered = false;
    c->counters.pushes++;
    log_info(LOG_MODULE, "host=%s event=policy_push version=%" PRIu64 " scope=%s held=%" PRIu64,
             s->host_id, entry.version, entry.scope, held_version);
}

static void log_events(struct coordinator *c);

/* ---- receiving ---- */

static void
remember_labels(struct coordinator *c, const char *host_id, uint64_t version, uint64_t now_wall)
{
    struct fleet_host_info info;
    char err[ERR_LEN];

    if (fleet_host_get(c->fleet, host_id, &info) == 0 &&
        store_host_upsert(c->store, host_id, info.labels, info.n_labels, now_wall, version, err,
                          sizeof(err)) < 0)
        log_warn(LOG_MODULE, "host=%s event=store_failed why=\"%s\"", host_id, err);
}

/* The host's last answer as stored, put back into the fleet (after a coordinator restart the
 * metrics and hosts show it before the agent answers again). Returns the version it refused,
 * so a restart on either side does not bring the same refusal round again (0 when its last
 * answer was a yes, or none). */
static uint64_t
restore_stored_ack(struct coordinator *c, const char *host_id)
{
    struct store_ack ack;
    char err[ERR_LEN];

    if (store_ack_for_host(c->store, host_id, &ack, err, sizeof(err)) < 0)
        return 0;
    fleet_ack_restore(c->fleet, host_id, ack.version, ack.applied);
    return ack.applied ? 0 : ack.version;
}

/* One key saying hello in a loop must not turn into a database write per message: its hosts
 * row is rewritten once a minute, or when the version it holds changes. */
static void
remember_hello(
    struct coordinator *c, struct session *s, uint64_t version, uint64_t now_ms, uint64_t now_wall)
{
    if (!s->hosts_row_ms || now_ms - s->hosts_row_ms >= HOSTS_ROW_EVERY_MS ||
        s->hosts_row_version != version) {
        remember_labels(c, s->host_id, version, now_wall);
        s->hosts_row_ms = now_ms ? now_ms : 1;
        s->hosts_row_version = version;
    }
}

static bool
same_connection(const struct transport_peer *a, const struct transport_peer *b)
{
    return a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0 &&
           strcmp(a->key_z85, b->key_z85) == 0;
}

/* The hello carries the labels the fleet already knows of this host. */
static bool
labels_known(const struct fleet_host_info *info, const struct wire_hello *hello)
{
    char label[FLEET_LABEL_MAX];

    if (info->n_labels != hello->n_labels)
        return false;
    for (size_t i = 0; i < hello->n_labels; i++) {
        snprintf(label, sizeof(label), "%s=%s", hello->labels[i].key, hello->labels[i].value);
        bool found = false;
        for (size_t j = 0; j < info->n_labels && !found; j++)
            found = strcmp(info->labels[j], label) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* The hello says what the fleet already knows of this host: agent and labels. */
static bool
hello_known(const struct fleet_host_info *info, const struct wire_hello *hello)
{
    return strcmp(info->agent_version, hello->agent_version) == 0 && labels_known(info, hello);
}

static void
on_hello(struct coordinator *c,
         struct session *s,
         const struct wire_msg *msg,
         const struct transport_peer *from,
         uint64_t now_ms,
         uint64_t now_wall)
{
    struct fleet_host_info info;
    bool greeted = s->state != COORDINATOR_SESSION_UNKNOWN;
    bool known = fleet_host_get(c->fleet, s->host_id, &info) == 0;

    /* An id already bound to another key, and still alive, is not handed over (under CURVE the
     * allowlist already made sure the key is this host's: this guards a key rotation). */
    if (greeted && strcmp(s->key_z85, from->key_z85) != 0 && known &&
        info.liveness != FLEET_LIVENESS_DOWN) {
        c->counters.impostors++;
        if (log_limit_failure(&c->impostor_messages, now_ms, COMPLAIN_MAX))
            log_warn(LOG_MODULE,
                     "host=%s event=hello_refused why=\"id bound to another key\" key=%s",
                     s->host_id, from->key_z85);
        return;
    }
    forget_asked(c, from, s->host_id);
    /* A second hello on the same connection saying nothing new (the agent answered a "say
     * hello" and greeted its new connection too): a heartbeat, not a rejoin and not a push. */
    if (greeted && known && same_connection(&s->peer, from) && hello_known(&info, &msg->u.hello)) {
        c->counters.hellos_repeated++;
        fleet_heartbeat(c->fleet, s->host_id, msg->sequence, msg->u.hello.policy_version, now_ms);
        remember_hello(c, s, msg->u.hello.policy_version, now_ms, now_wall);
        offer_policy(c, s, msg->u.hello.policy_version);
        return;
    }
    bool relabelled = known && !labels_known(&info, &msg->u.hello); /* before info goes stale */
    if (fleet_hello(c->fleet, s->host_id, &msg->u.hello, now_ms) < 0) {
        if (log_limit_failure(&c->bad_messages, now_ms, COMPLAIN_MAX))
            log_warn(LOG_MODULE, "host=%s event=hello_refused why=\"fleet full or bad hello\"",
                     s->host_id);
        if (!greeted)
            session_remove(c, s->host_id); /* nothing is kept for a refused stranger */
        return;
    }
    /* A push on the old connection may be lost with it; on the same one it is on its way. */
    if (!greeted || !same_connection(&s->peer, from))
        s->pushed_version = 0;
    s->peer = *from;
    snprintf(s->key_z85, sizeof(s->key_z85), "%s", from->key_z85);
    s->state = COORDINATOR_SESSION_GREETED;
    s->known_generation = 0; /* its labels may have changed: look its policy up again */
    s->relabelled = relabelled;
    if (relabelled)
        s->pushed_version = 0; /* what was pushed was for its old labels */
    s->refused_version = restore_stored_ack(c, s->host_id);
    s->epoch_ok = msg->u.hello.policy_epoch == store_epoch(c->store);
    if (!s->epoch_ok && msg->u.hello.policy_version)
        log_info(LOG_MODULE,
                 "host=%s event=policy_epoch_differs held=%" PRIu64
                 " why=\"held from another store epoch: pushed again\"",
                 s->host_id, msg->u.hello.policy_version);
    remember_hello(c, s, msg->u.hello.policy_version, now_ms, now_wall);
    offer_policy(c, s, msg->u.hello.policy_version);
}

static void
on_ack(struct coordinator *c,
       struct session *s,
       const struct wire_policy_ack *ack,
       uint64_t now_ms,
       uint64_t now_wall)
{
    char err[ERR_LEN];

    /* Only the answer to what was pushed to this host, once: an ack for anything else would let
     * an agent write rows for versions never stored, or mark one refused that it never saw. */
    if (ack->version == 0 || ack->version != s->pushed_version || s->push_answered) {
        c->counters.acks_ignored++;
        if (log_limit_failure(&c->ignored_acks, now_ms, COMPLAIN_MAX))
            log_warn(LOG_MODULE,
                     "host=%s event=ack_ignored version=%" PRIu64 " pushed=%" PRIu64
                     " why=\"%s\" ignored=%" PRIu64,
                     s->host_id, ack->version, s->pushed_version,
                     s->push_answered ? "already answered" : "not the version pushed to it",
                     c->counters.acks_ignored);
        return;
    }
    if (fleet_policy_ack(c->fleet, s->host_id, ack, now_ms) == -ENOENT) {
        say_hello(c, &s->peer, s->host_id);
        return;
    }
    s->push_answered = true;
    count_fanout_answer(c, s, ack);
    if (ack->applied)
        s->epoch_ok = true; /* it now holds what we pushed, with our epoch */
    if (store_ack_record(c->store, s->host_id, ack->version, ack->applied, ack->reason, now_wall,
                         err, sizeof(err)) < 0)
        log_warn(LOG_MODULE, "host=%s event=store_failed why=\"%s\"", s->host_id, err);
    if (ack->applied) {
        c->counters.acks_applied++;
        s->state = COORDINATOR_SESSION_CURRENT;
    } else {
        c->counters.acks_refused++;
        s->refused_version = ack->version;
        s->state = COORDINATOR_SESSION_REFUSED;
    }
    log_info(LOG_MODULE, "host=%s event=policy_ack version=%" PRIu64 " applied=%s%s%s%s",
             s->host_id, ack->version, ack->applied ? "yes" : "no", ack->applied ? "" : " why=\"",
             ack->applied ? "" : ack->reason, ack->applied ? "" : "\"");
}

/* The report just applied, into the history (the fleet's view of it: VMs sorted by uuid). */
static void
record_history(struct coordinator *c, const char *host_id, uint64_t now_ms)
{
    struct fleet_host_info info;

    if (c->history && fleet_host_get(c->fleet, host_id, &info) == 0)
        history_record(c->history, &info, now_ms);
}

static void
dispatch(struct coordinator *c,
         struct session *s,
         const struct wire_msg *msg,
         const struct transport_peer *from,
         uint64_t now_ms,
         uint64_t now_wall)
{
    int rc = 0;

    if (msg->body == WIRE_BODY_HELLO) {
        on_hello(c, s, msg, from, now_ms, now_wall);
        return;
    }
    /* Anything else must come from the key that said hello for this id. */
    if (!s || s->state == COORDINATOR_SESSION_UNKNOWN || strcmp(s->key_z85, from->key_z85) != 0) {
        say_hello(c, from, msg->host_id);
        return;
    }
    s->peer = *from; /* the agent may have reconnected: answer where it is now */
    switch (msg->body) {
    case WIRE_BODY_REPORT:
        rc = fleet_report(c->fleet, s->host_id, msg->sequence, &msg->u.report, now_ms);
        if (rc == 0)
            record_history(c, s->host_id, now_ms);
        if (rc >= 0)
            offer_policy(c, s, msg->u.report.policy_version);
        break;
    case WIRE_BODY_HEARTBEAT:
        rc = fleet_heartbeat(c->fleet, s->host_id, msg->sequence, msg->u.heartbeat_policy_version,
                             now_ms);
        if (rc >= 0)
            offer_policy(c, s, msg->u.heartbeat_policy_version);
        break;
    case WIRE_BODY_POLICY_ACK:
        on_ack(c, s, &msg->u.ack, now_ms, now_wall);
        break;
    default:
        log_debug(LOG_MODULE, "host=%s event=unexpected body=%s", s->host_id,
                  wire_body_name(msg->body));
        break;
    }
    if (rc == -ENOENT) /* the fleet forgot it (restart): ask for a hello */
        say_hello(c, &s->peer, s->host_id);
}

void
coordinator_handle(struct coordinator *c,
                   const struct transport_peer *from,
                   const struct wire_msg *msg,
                   uint64_t now_ms,
                   uint64_t now_wall)
{
    c->counters.messages++;
    c->now_ms = now_ms;
    c->now_wall_ms = now_wall;
    /* A key is a host: under CURVE the allowlist binds each key to one host id, and a message
     * speaking for any other id is dropped before anything is kept for it. */
    if (from->key_z85[0] && strcmp(msg->host_id, from->name) != 0) {
        c->counters.impostors++;
        if (log_limit_failure(&c->impostor_messages, now_ms, COMPLAIN_MAX))
            log_warn(LOG_MODULE,
                     "host=%s event=message_refused why=\"host id is not its key's\" "
                     "key_host=%s body=%s impostors=%" PRIu64,
                     msg->host_id, from->name, wire_body_name(msg->body), c->counters.impostors);
        return;
    }
    /* No state for a host until its hello: anything else from a stranger gets "say hello". */
    struct session *s = session_find(c, msg->host_id, msg->body == WIRE_BODY_HELLO);
    dispatch(c, s, msg, from, now_ms, now_wall);
    log_events(c);
}

void
coordinator_receive(struct coordinator *c,
                    const struct transport_peer *from,
                    const uint8_t *buf,
                    size_t len,
                    uint64_t now_ms,
                    uint64_t now_wall)
{
    char err[ERR_LEN];
    struct wire_msg msg;

    if (wire_decode(buf, len, &msg, err, sizeof(err)) < 0) {
        c->counters.messages++;
        c->counters.rejected++;
        if (log_limit_failure(&c->bad_messages, now_ms, COMPLAIN_MAX))
            log_warn(LOG_MODULE, "event=message_rejected why=\"%s\" key=%s rejected=%" PRIu64, err,
                     from->key_z85[0] ? from->key_z85 : "-", c->counters.rejected);
        return;
    }
    coordinator_handle(c, from, &msg, now_ms, now_wall);
    wire_msg_clear(&msg);
}

/* ---- periodic work ---- */

/* Kept in the store, so `events` survives a restart (the store keeps the newest). */
static void
store_event(struct coordinator *c, const struct fleet_event *e)
{
    struct store_event se = {
        .seq = e->seq,
        .kind = (int)e->kind,
        .from = (int)e->from,
        .policy_version = e->policy_version,
    };
    char err[ERR_LEN];
    uint64_t age_ms = c->now_ms > e->at_ms ? c->now_ms - e->at_ms : 0;

    se.at_ms = e->at_wall_ms ? e->at_wall_ms : util_sub_sat(c->now_wall_ms, age_ms);
    snprintf(se.host_id, sizeof(se.host_id), "%s", e->host_id);
    snprintf(se.detail, sizeof(se.detail), "%s", e->detail);
    if (store_event_add(c->store, &se, err, sizeof(err)) < 0)
        log_warn(LOG_MODULE, "host=%s event=store_failed why=\"%s\"", e->host_id, err);
}

static int
log_event(const struct fleet_event *e, void *ctx)
{
    struct coordinator *c = ctx;
    struct session *s;

    c->logged_event_seq = e->seq;
    store_event(c, e);
    /* Rejoins are what a peer can make as fast as it sends hellos: rate-limited per host. */
    if (e->kind == FLEET_EVENT_REJOINED && (s = session_find(c, e->host_id, false)) != NULL &&
        !log_limit_failure(&s->rejoins, c->now_ms, COMPLAIN_MAX)) {
        c->counters.logs_suppressed++;
        return 0;
    }
    log_info(LOG_MODULE, "host=%s event=%s%s%s", e->host_id, fleet_event_kind_name(e->kind),
             e->detail[0] ? " detail=" : "", e->detail);
    return 0;
}

/* A push that was not acked (lost, or the agent was busy) goes again after the retry time. Only
 * sessions waiting on a push are looked up in the fleet: at 50,000 hosts a tick must not sort or
 * visit every host record four times a second. */
static void
retry_pushes(struct coordinator *c)
{
    struct fleet_host_info host;

    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct session *s = c->buckets[b]; s; s = s->next) {
            if (s->state == COORDINATOR_SESSION_UNKNOWN || !s->pushed_version || s->push_answered ||
                c->now_ms - s->pushed_at_ms < COORDINATOR_PUSH_RETRY_MS)
                continue;
            if (fleet_host_get(c->fleet, s->host_id, &host) == 0 &&
                host.liveness == FLEET_LIVENESS_FRESH && s->pushed_version != host.policy_version)
                offer_policy(c, s, host.policy_version);
        }
    }
}

void
coordinator_set_history(struct coordinator *c, struct history *history)
{
    c->history = history;
}

void
coordinator_set_host_retention(struct coordinator *c, uint64_t retention_ms)
{
    c->host_retention_ms = retention_ms;
}

int
coordinator_forget_host(
    struct coordinator *c, const char *host_id, uint64_t now_ms, char *err, size_t err_len)
{
    char id[WIRE_HOST_ID_MAX];
    bool known = false;

    if (!host_id || !wire_host_id_valid(host_id)) {
        snprintf(err, err_len, "bad host id");
        return -EINVAL;
    }
    snprintf(id, sizeof(id), "%s", host_id); /* host_id may point into the fleet */
    known = fleet_remove(c->fleet, id, now_ms) == 0;
    if (c->history)
        history_forget_host(c->history, id);
    if (session_find(c, id, false)) {
        session_remove(c, id);
        known = true;
    }
    int rc = store_host_forget(c->store, id, err, err_len);
    if (rc == 0)
        known = true;
    else if (rc != -ENOENT)
        return rc;
    if (!known) {
        snprintf(err, err_len, "no host %s", id);
        return -ENOENT;
    }
    c->counters.hosts_forgotten++;
    log_info(LOG_MODULE, "host=%s event=forgotten", id);
    log_events(c);
    return 0;
}

struct expired {
    uint64_t now_ms;
    uint64_t retention_ms;
    char ids[COORDINATOR_FORGET_PER_TICK][WIRE_HOST_ID_MAX];
    size_t n;
};

static int
collect_expired(const struct fleet_host_info *host, void *ctx)
{
    struct expired *e = ctx;

    if (host->liveness == FLEET_LIVENESS_DOWN && e->now_ms > host->last_seen_ms &&
        e->now_ms - host->last_seen_ms > e->retention_ms)
        snprintf(e->ids[e->n++], sizeof(e->ids[0]), "%s", host->host_id);
    return e->n == COORDINATOR_FORGET_PER_TICK ? 1 : 0;
}

/* Hosts down past the retention are forgotten, a bounded number per tick. */
static void
forget_expired(struct coordinator *c, uint64_t now_ms)
{
    struct expired *e;
    char err[ERR_LEN];

    if (!c->host_retention_ms || now_ms < c->next_forget_ms)
        return;
    c->next_forget_ms = now_ms + FORGET_EVERY_MS;
    e = util_xcalloc(1, sizeof(*e));
    e->now_ms = now_ms;
    e->retention_ms = c->host_retention_ms;
    fleet_hosts_each(c->fleet, collect_expired, e);
    for (size_t i = 0; i < e->n; i++) {
        if (coordinator_forget_host(c, e->ids[i], now_ms, err, sizeof(err)) < 0)
            log_warn(LOG_MODULE, "host=%s event=forget_failed why=\"%s\"", e->ids[i], err);
    }
    free(e);
}

/* The events not logged yet: logged and stored (several in one transaction) before the call
 * that made them returns, so no one is shown a seq that a restart would hand out again. */
static void
log_events(struct coordinator *c)
{
    char err[ERR_LEN];
    uint64_t last = fleet_last_event_seq(c->fleet);

    if (last == c->logged_event_seq)
        return;
    bool batch =
        last - c->logged_event_seq > 1 && store_batch_begin(c->store, err, sizeof(err)) == 0;
    fleet_events(c->fleet, c->logged_event_seq, log_event, c);
    if (batch && store_batch_end(c->store, true, err, sizeof(err)) < 0)
        log_warn(LOG_MODULE, "event=store_failed what=events why=\"%s\"", err);
}

void
coordinator_tick(struct coordinator *c, uint64_t now_ms, uint64_t now_wall)
{
    c->now_ms = now_ms;
    c->now_wall_ms = now_wall;
    fleet_tick(c->fleet, now_ms, NULL, NULL);
    forget_expired(c, now_ms);
    log_events(c);
    retry_pushes(c);
}

struct restore {
    struct coordinator *c;
    uint64_t now_ms;
    uint64_t now_wall_ms;
    size_t n, refused;
};

static int
restore_event(const struct store_event *se, void *ctx)
{
    struct restore *r = ctx;
    struct fleet_event e = {
        .seq = se->seq,
        .at_ms = r->now_ms,
        .at_wall_ms = se->at_ms ? se->at_ms : 1,
        .kind = (enum fleet_event_kind)se->kind,
        .from = (enum fleet_liveness)se->from,
        .policy_version = se->policy_version,
    };

    snprintf(e.host_id, sizeof(e.host_id), "%s", se->host_id);
    snprintf(e.detail, sizeof(e.detail), "%s", se->detail);
    if (fleet_event_restore(r->c->fleet, &e) == 0)
        r->n++;
    else
        r->refused++;
    return 0;
}

int
coordinator_restore_events(
    struct coordinator *c, uint64_t now_ms, uint64_t now_wall, char *err, size_t err_len)
{
    struct restore r = {.c = c, .now_ms = now_ms, .now_wall_ms = now_wall};
    int rc = store_events_list(c->store, restore_event, &r, err, err_len);

    c->logged_event_seq = fleet_last_event_seq(c->fleet); /* kept already: not again */
    if (rc == 0)
        log_info(LOG_MODULE, "event=events_restored count=%zu last_seq=%" PRIu64 "%s", r.n,
                 c->logged_event_seq, r.refused ? " why=\"some rows unusable, skipped\"" : "");
    return rc;
}

void
coordinator_policy_added(struct coordinator *c, uint64_t version, const char *scope)
{
    struct fanout *f = &c->fanout;

    c->policy_generation++; /* every host's policy must be looked up again */
    if (scope_parse(scope, &f->scope) < 0)
        return;
    log_info(LOG_MODULE, "event=policy_added version=%" PRIu64 " scope=%s hosts=%" PRIu64, version,
             scope, c->counters.sessions);
    if (!f->progress.done)
        log_info(LOG_MODULE,
                 "event=fanout_superseded version=%" PRIu64 " by=%" PRIu64 " visited=%" PRIu64
                 " of=%" PRIu64,
                 f->progress.version, version, f->progress.visited, f->progress.hosts);
    memset(&f->progress, 0, sizeof(f->progress));
    f->progress.version = version;
    snprintf(f->progress.scope, sizeof(f->progress.scope), "%s", scope);
    f->progress.hosts = c->counters.sessions;
    f->next_bucket = 0;
}

static void
fanout_offer(struct coordinator *c, struct session *s)
{
    struct fanout *f = &c->fanout;
    struct fleet_host_info info;

    if (s->state == COORDINATOR_SESSION_UNKNOWN || fleet_host_get(c->fleet, s->host_id, &info) < 0)
        return;
    if (!scope_matches(&f->scope, info.host_id, info.labels, info.n_labels))
        return;
    f->progress.in_scope++;
    offer_policy(c, s, info.policy_version);
}

bool
coordinator_fanout_step(struct coordinator *c, size_t max_hosts, uint64_t now_ms)
{
    struct fanout *f = &c->fanout;
    size_t looked = 0;

    if (f->progress.done)
        return false;
    c->now_ms = now_ms;
    /* Whole buckets: a cursor inside a chain would not survive a session removed meanwhile. */
    for (; f->next_bucket < BUCKETS && looked < max_hosts; f->next_bucket++) {
        for (struct session *s = c->buckets[f->next_bucket]; s; s = s->next) {
            fanout_offer(c, s);
            looked++;
        }
    }
    f->progress.visited += looked;
    if (f->next_bucket < BUCKETS)
        return true;
    f->progress.done = true;
    log_info(LOG_MODULE,
             "event=fanout_done version=%" PRIu64 " in_scope=%" PRIu64 " pushed=%" PRIu64
             " acked=%" PRIu64 " refused=%" PRIu64,
             f->progress.version, f->progress.in_scope, f->progress.pushed, f->progress.acked,
             f->progress.refused);
    return false;
}

void
coordinator_fanout_progress(const struct coordinator *c, struct coordinator_fanout *out)
{
    *out = c->fanout.progress;
}
