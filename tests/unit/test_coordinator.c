/*
 * test_coordinator.c - the coordinator's protocol engine (coordinator/coordinator.c) fed with
 * decoded messages and hand-made peers, over a real fleet and a real SQLite store in a temp
 * dir; what it sends goes to a recording callback (no sockets), so the answers are checked too.
 *
 * The trust boundaries of issue 10: a key is a host (a message whose host id is not its key's
 * is dropped before anything is kept, with the real host down and on a fresh coordinator);
 * nothing is kept for a stranger before its hello; an ack counts only for the version pushed
 * to that host, once. The session states of issue 9 (unknown -> greeted -> current / pushing /
 * refused): hello, impostor, push retry, refusal, say-hello, stale -> down -> fresh. The
 * reconnect flood of issue 15: an agent's queued messages after a coordinator restart make one
 * say-hello, one join, one push and one applied event per host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator.h"
#include "fleet.h"
#include "log.h"
#include "store.h"
#include "transport.h"
#include "wire.h"

#define KEY_HV1 "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" /* any 40 characters do here */
#define KEY_HV2 "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

#define SENT_MAX 64

/* One message the engine sent, as the daemon would have put it on the wire. */
struct sent {
    char to[TRANSPORT_ID_MAX]; /* the peer's routing id, as text here */
    char host_id[WIRE_HOST_ID_MAX];
    enum wire_body body;
    uint64_t version; /* a push's */
    struct policy policy;
};

struct fixture {
    char dir[64];
    char db[128];
    struct store *store;
    struct fleet *fleet;
    struct coordinator *coordinator;
    uint64_t now_ms;
    uint64_t sequence;
    struct sent sent[SENT_MAX];
    size_t n_sent; /* may exceed SENT_MAX: only the first SENT_MAX are kept */
};

static void
record_send(void *ctx, const struct transport_peer *to, const char *host_id, struct wire_msg *msg)
{
    struct fixture *fx = ctx;

    if (fx->n_sent < SENT_MAX) {
        struct sent *s = &fx->sent[fx->n_sent];
        snprintf(s->to, sizeof(s->to), "%.*s", (int)to->id_len, (const char *)to->id);
        snprintf(s->host_id, sizeof(s->host_id), "%s", host_id);
        s->body = msg->body;
        s->version = msg->body == WIRE_BODY_POLICY_PUSH ? msg->u.push.version : 0;
        if (msg->body == WIRE_BODY_POLICY_PUSH)
            s->policy = msg->u.push.policy;
    }
    fx->n_sent++;
}

/* How many messages of this body went to host_id since the last clear_sent(). */
static size_t
sent_count(const struct fixture *fx, const char *host_id, enum wire_body body)
{
    size_t n = 0;

    for (size_t i = 0; i < fx->n_sent && i < SENT_MAX; i++)
        n += strcmp(fx->sent[i].host_id, host_id) == 0 && fx->sent[i].body == body;
    return n;
}

static void
clear_sent(struct fixture *fx)
{
    fx->n_sent = 0;
}

static struct transport_peer
peer(const char *id, const char *key, const char *name)
{
    struct transport_peer p;

    memset(&p, 0, sizeof(p));
    p.id_len = strlen(id);
    memcpy(p.id, id, p.id_len);
    snprintf(p.key_z85, sizeof(p.key_z85), "%s", key);
    snprintf(p.name, sizeof(p.name), "%s", name);
    return p;
}

static void
start(struct fixture *fx)
{
    char err[STORE_ERR_MAX];
    struct fleet_opts fo = {.stale_after_ms = 1000, .down_after_ms = 2000};

    if (store_open(fx->db, &fx->store, err, sizeof(err)) != 0)
        fail_msg("store_open: %s", err);
    fx->fleet = fleet_new(&fo);
    fx->coordinator = coordinator_new(fx->fleet, fx->store, record_send, fx);
}

static void
stop(struct fixture *fx)
{
    coordinator_destroy(&fx->coordinator);
    fleet_destroy(&fx->fleet);
    store_close(&fx->store);
}

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_coordinator.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->db, sizeof(fx->db), "%s/coordinator.db", fx->dir);
    fx->now_ms = 1000;
    start(fx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[160];

    stop(fx);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static void
deliver(struct fixture *fx, const struct transport_peer *from, struct wire_msg *m)
{
    m->protocol_version = WIRE_PROTOCOL_VERSION;
    m->sequence = ++fx->sequence;
    coordinator_handle(fx->coordinator, from, m, fx->now_ms, 1700000000000 + fx->now_ms);
}

static void
hello(struct fixture *fx, const struct transport_peer *from, const char *host_id)
{
    struct wire_msg m = {.body = WIRE_BODY_HELLO};

    snprintf(m.host_id, sizeof(m.host_id), "%s", host_id);
    snprintf(m.u.hello.agent_version, sizeof(m.u.hello.agent_version), "test");
    deliver(fx, from, &m);
}

static void
hello_holding(struct fixture *fx,
              const struct transport_peer *from,
              const char *host_id,
              uint64_t version,
              uint64_t epoch)
{
    struct wire_msg m = {.body = WIRE_BODY_HELLO};

    snprintf(m.host_id, sizeof(m.host_id), "%s", host_id);
    snprintf(m.u.hello.agent_version, sizeof(m.u.hello.agent_version), "test");
    m.u.hello.policy_version = version;
    m.u.hello.policy_epoch = epoch;
    deliver(fx, from, &m);
}

static void
heartbeat(struct fixture *fx, const struct transport_peer *from, const char *host_id)
{
    struct wire_msg m = {.body = WIRE_BODY_HEARTBEAT};

    snprintf(m.host_id, sizeof(m.host_id), "%s", host_id);
    deliver(fx, from, &m);
}

static void
report(struct fixture *fx, const struct transport_peer *from, const char *host_id)
{
    struct wire_msg m = {.body = WIRE_BODY_REPORT};

    snprintf(m.host_id, sizeof(m.host_id), "%s", host_id);
    m.u.report.host_total_kib = 1 << 20;
    deliver(fx, from, &m);
}

static void
ack(struct fixture *fx,
    const struct transport_peer *from,
    const char *host_id,
    uint64_t version,
    bool applied)
{
    struct wire_msg m = {.body = WIRE_BODY_POLICY_ACK};

    snprintf(m.host_id, sizeof(m.host_id), "%s", host_id);
    m.u.ack.version = version;
    m.u.ack.applied = applied;
    if (!applied)
        snprintf(m.u.ack.reason, sizeof(m.u.ack.reason), "forged");
    deliver(fx, from, &m);
}

static int
count_host(const struct store_host *h, void *ctx)
{
    (void)h;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t
stored_hosts(struct fixture *fx)
{
    char err[STORE_ERR_MAX];
    size_t n = 0;

    assert_int_equal(store_hosts_list(fx->store, count_host, &n, err, sizeof(err)), 0);
    return n;
}

/* Run a policy's fan-out to its end, as the daemon's loop does a few hosts a turn. */
static void
fan_out(struct fixture *fx)
{
    while (coordinator_fanout_step(fx->coordinator, COORDINATOR_FANOUT_PER_TURN, fx->now_ms))
        ;
}

/* Store a fleet policy setting vm_grow_target_unused_mib; the engine is told, nothing sent. */
static uint64_t
store_fleet_policy(struct fixture *fx, uint64_t grow_target_mib)
{
    char err[STORE_ERR_MAX];
    struct policy p;
    uint64_t version;

    policy_init_defaults(&p);
    p.vm_grow_target_unused_kib = grow_target_mib * UTIL_KIB_PER_MIB;
    if (store_policy_add(fx->store, "fleet", &p, policy_keys_all(), "set", "test", "", 1, &version,
                         err, sizeof(err)) != 0)
        fail_msg("store_policy_add: %s", err);
    coordinator_policy_added(fx->coordinator, version, "fleet");
    return version;
}

static uint64_t
add_fleet_policy(struct fixture *fx, uint64_t grow_target_mib)
{
    uint64_t version = store_fleet_policy(fx, grow_target_mib);

    fan_out(fx);
    return version;
}

/* hv2's key speaks for hv1 while hv1 is down, and again on a freshly restarted coordinator:
 * every message is refused and counted, nothing about hv1 changes, nothing is stored. */
static void
test_key_is_a_host(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    struct transport_peer hv2_as_hv1 = peer("conn-hv2", KEY_HV2, "hv2");
    struct fleet_host_info info;
    struct store_ack stored;
    char err[STORE_ERR_MAX];

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1");
    assert_int_equal(fleet_host_count(fx->fleet), 1);
    assert_int_equal(stored_hosts(fx), 1);

    /* hv1 goes silent until it is down. */
    fx->now_ms += 5000;
    coordinator_tick(fx->coordinator, fx->now_ms, 0);
    assert_int_equal(fleet_host_get(fx->fleet, "hv1", &info), 0);
    assert_int_equal(info.liveness, FLEET_LIVENESS_DOWN);
    uint64_t last_seen = info.last_seen_ms;

    clear_sent(fx);
    hello(fx, &hv2_as_hv1, "hv1");
    report(fx, &hv2_as_hv1, "hv1");
    heartbeat(fx, &hv2_as_hv1, "hv1");
    ack(fx, &hv2_as_hv1, "hv1", v1, false); /* would keep v1 from ever reaching hv1 */
    const struct coordinator_counters *c = coordinator_get_counters(fx->coordinator);
    if (c->impostors != 4)
        fail_msg("impostors: want 4 (hello, report, heartbeat, ack), got %" PRIu64, c->impostors);
    if (fx->n_sent != 0)
        fail_msg("the impostor was answered: %zu messages sent", fx->n_sent);
    assert_int_equal(fleet_host_get(fx->fleet, "hv1", &info), 0);
    assert_int_equal(info.liveness, FLEET_LIVENESS_DOWN);
    assert_int_equal(info.last_seen_ms, last_seen);
    assert_int_equal(store_ack_for_host(fx->store, "hv1", &stored, err, sizeof(err)), -ENOENT);

    /* A freshly restarted coordinator remembers nothing of hv1's session: still refused. */
    stop(fx);
    start(fx);
    hello(fx, &hv2_as_hv1, "hv1");
    ack(fx, &hv2_as_hv1, "hv1", v1, false);
    c = coordinator_get_counters(fx->coordinator);
    assert_int_equal(c->impostors, 2);
    assert_int_equal(c->sessions, 0);
    assert_int_equal(coordinator_session_state(fx->coordinator, "hv1"),
                     COORDINATOR_SESSION_UNKNOWN);
    assert_int_equal(fleet_host_count(fx->fleet), 0);
    assert_int_equal(stored_hosts(fx), 1);
    assert_int_equal(store_ack_for_host(fx->store, "hv1", &stored, err, sizeof(err)), -ENOENT);

    /* The real hv1 comes back and is let in. */
    hello(fx, &hv1, "hv1");
    assert_int_equal(fleet_host_count(fx->fleet), 1);
    assert_int_equal(coordinator_get_counters(fx->coordinator)->impostors, 2);
    assert_int_equal(coordinator_session_state(fx->coordinator, "hv1"),
                     COORDINATOR_SESSION_PUSHING);
}

/* 50,000 heartbeats, reports and acks with new host ids and no hello (from a peer without a
 * key, the worst case: under CURVE they would be impostors): no session, no host, no row. */
static void
test_nothing_kept_before_hello(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer anon = peer("conn-anon", "", "");
    char id[WIRE_HOST_ID_MAX];

    for (int i = 0; i < 50000; i++) {
        snprintf(id, sizeof(id), "ghost-%d", i);
        if (i % 3 == 0)
            heartbeat(fx, &anon, id);
        else if (i % 3 == 1)
            report(fx, &anon, id);
        else
            ack(fx, &anon, id, 1 + (uint64_t)i, true);
    }
    const struct coordinator_counters *c = coordinator_get_counters(fx->coordinator);
    if (c->sessions != 0)
        fail_msg("sessions after 50,000 messages without hello: want 0, got %" PRIu64, c->sessions);
    assert_int_equal(c->say_hello, 50000);
    assert_int_equal(fleet_host_count(fx->fleet), 0);
    assert_int_equal(stored_hosts(fx), 0);
}

/* Acks are taken only for the version pushed to that host, once: 3,000 acks for versions never
 * stored or pushed write nothing; a repeated answer changes nothing. */
static void
test_ack_only_for_pushed_version(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    struct store_ack stored;
    char err[STORE_ERR_MAX];

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1"); /* holds nothing: v1 is pushed */
    for (uint64_t v = 100; v < 3100; v++)
        ack(fx, &hv1, "hv1", v, false);
    const struct coordinator_counters *c = coordinator_get_counters(fx->coordinator);
    assert_int_equal(c->acks_ignored, 3000);
    assert_int_equal(store_ack_for_host(fx->store, "hv1", &stored, err, sizeof(err)), -ENOENT);

    ack(fx, &hv1, "hv1", v1, true);
    assert_int_equal(c->acks_applied, 1);
    ack(fx, &hv1, "hv1", v1, false); /* a second answer to the same push */
    assert_int_equal(c->acks_refused, 0);
    assert_int_equal(c->acks_ignored, 3001);
    assert_int_equal(store_ack_for_host(fx->store, "hv1", &stored, err, sizeof(err)), 0);
    assert_int_equal(stored.version, v1);
    assert_true(stored.applied);
}

/* A host down past the retention is forgotten everywhere: fleet, session, hosts row, acks; an
 * operator can forget one at once; a forgotten host that says hello again is back. */
static void
test_hosts_forgotten(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    struct transport_peer hv2 = peer("conn-hv2", KEY_HV2, "hv2");
    struct store_ack stored;
    char err[STORE_ERR_MAX];

    uint64_t v1 = add_fleet_policy(fx, 250);
    coordinator_set_host_retention(fx->coordinator, 60000);
    hello(fx, &hv1, "hv1");
    ack(fx, &hv1, "hv1", v1, true);
    hello(fx, &hv2, "hv2");
    assert_int_equal(stored_hosts(fx), 2);

    fx->now_ms += 30000; /* down, not yet past the retention */
    heartbeat(fx, &hv2, "hv2");
    coordinator_tick(fx->coordinator, fx->now_ms, 0);
    assert_int_equal(fleet_host_count(fx->fleet), 2);
    fx->now_ms += 40000; /* hv1 silent for 70 s; hv2 for 40 s */
    coordinator_tick(fx->coordinator, fx->now_ms, 0);
    const struct coordinator_counters *c = coordinator_get_counters(fx->coordinator);
    assert_int_equal(c->hosts_forgotten, 1);
    assert_int_equal(fleet_host_count(fx->fleet), 1);
    assert_int_equal(c->sessions, 1);
    assert_int_equal(stored_hosts(fx), 1);
    assert_int_equal(store_ack_for_host(fx->store, "hv1", &stored, err, sizeof(err)), -ENOENT);

    assert_int_equal(coordinator_forget_host(fx->coordinator, "hv2", fx->now_ms, err, sizeof(err)),
                     0);
    assert_int_equal(fleet_host_count(fx->fleet), 0);
    assert_int_equal(stored_hosts(fx), 0);
    assert_int_equal(coordinator_forget_host(fx->coordinator, "hv2", fx->now_ms, err, sizeof(err)),
                     -ENOENT);
    hello(fx, &hv1, "hv1");
    assert_int_equal(fleet_host_count(fx->fleet), 1);
}

/* Versions are never reused: restore an older copy of the database and store a policy, which
 * gets a number the agent already holds; the agent, holding it from another epoch, is pushed
 * the new policy anyway. Holding it from this epoch, it is not pushed again. */
static void
test_restored_database_never_aliases(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    char cmd[1024];

    add_fleet_policy(fx, 250); /* v1 */
    stop(fx);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s.old'", fx->db, fx->db);
    assert_int_equal(system(cmd), 0);
    start(fx);
    uint64_t v2 = add_fleet_policy(fx, 260);
    assert_int_equal(v2, 2);
    uint64_t epoch = store_epoch(fx->store);
    hello_holding(fx, &hv1, "hv1", v2, epoch); /* the agent holds v2 */
    assert_int_equal(coordinator_get_counters(fx->coordinator)->pushes, 0);

    /* The database is restored from the older copy: the next policy is numbered 2 again. */
    stop(fx);
    snprintf(cmd, sizeof(cmd), "mv '%s.old' '%s' && rm -f '%s-wal' '%s-shm'", fx->db, fx->db,
             fx->db, fx->db);
    assert_int_equal(system(cmd), 0);
    start(fx);
    assert_true(store_epoch(fx->store) != epoch);
    uint64_t again = add_fleet_policy(fx, 280);
    assert_int_equal(again, 2);
    hello_holding(fx, &hv1, "hv1", v2, epoch);
    if (coordinator_get_counters(fx->coordinator)->pushes != 1)
        fail_msg("an agent holding v2 from another epoch was not pushed the new v2");
    ack(fx, &hv1, "hv1", again, true);
    /* Now it holds this epoch's v2: a reconnect pushes nothing. */
    hello_holding(fx, &hv1, "hv1", again, store_epoch(fx->store));
    assert_int_equal(coordinator_get_counters(fx->coordinator)->pushes, 1);
}

static int
last_seen_of(const struct store_host *h, void *ctx)
{
    *(uint64_t *)ctx = h->last_seen_ms;
    return 0;
}

/* One key saying hello in a loop, each on a new connection: 3,000 hellos write its hosts row
 * once and log a handful of "rejoined" lines, not 3,000 of each. */
static void
test_hello_storm_is_cheap(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    char err[STORE_ERR_MAX];
    uint64_t first_seen = 0, last_seen = 0;

    hello(fx, &hv1, "hv1");
    assert_int_equal(store_hosts_list(fx->store, last_seen_of, &first_seen, err, sizeof(err)), 0);
    for (int i = 0; i < 3000; i++) {
        char conn[32];
        snprintf(conn, sizeof(conn), "conn-hv1-%d", i);
        struct transport_peer again = peer(conn, KEY_HV1, "hv1");
        fx->now_ms += 1;
        hello(fx, &again, "hv1");
        if (i % 100 == 99)
            coordinator_tick(fx->coordinator, fx->now_ms, 0);
    }
    assert_int_equal(store_hosts_list(fx->store, last_seen_of, &last_seen, err, sizeof(err)), 0);
    if (last_seen != first_seen)
        fail_msg("the hosts row was rewritten by a hello storm (last_seen %" PRIu64
                 ", first %" PRIu64 ")",
                 last_seen, first_seen);
    const struct coordinator_counters *c = coordinator_get_counters(fx->coordinator);
    if (c->logs_suppressed < 2990)
        fail_msg("rejoined lines held back: %" PRIu64 " of 3000, want >= 2990", c->logs_suppressed);
}

static void
report_holding(struct fixture *fx,
               const struct transport_peer *from,
               const char *host_id,
               uint64_t version)
{
    struct wire_msg m = {.body = WIRE_BODY_REPORT};

    snprintf(m.host_id, sizeof(m.host_id), "%s", host_id);
    m.u.report.host_total_kib = 1 << 20;
    m.u.report.policy_version = version;
    deliver(fx, from, &m);
}

struct event_count {
    const char *host_id;
    enum fleet_event_kind kind;
    size_t n;
};

static int
count_event(const struct fleet_event *e, void *ctx)
{
    struct event_count *ec = ctx;

    ec->n += strcmp(e->host_id, ec->host_id) == 0 && e->kind == ec->kind;
    return 0;
}

static size_t
events_of(struct fixture *fx, const char *host_id, enum fleet_event_kind kind)
{
    struct event_count ec = {.host_id = host_id, .kind = kind};

    fleet_events(fx->fleet, 0, count_event, &ec);
    return ec.n;
}

static void
want_state(struct fixture *fx, const char *host_id, enum coordinator_session_state want)
{
    enum coordinator_session_state got = coordinator_session_state(fx->coordinator, host_id);

    if (got != want)
        fail_msg("%s's session: want %s, got %s", host_id, coordinator_session_state_name(want),
                 coordinator_session_state_name(got));
}

/* Hello: a host nothing governs is current at once; a fleet policy is pushed to it (pushing),
 * answered where it said hello from; its ack makes it current, and one event says so. */
static void
test_hello_push_ack(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");

    want_state(fx, "hv1", COORDINATOR_SESSION_UNKNOWN);
    hello(fx, &hv1, "hv1");
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
    assert_int_equal(fx->n_sent, 0);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_JOINED), 1);

    uint64_t v1 = add_fleet_policy(fx, 250);
    want_state(fx, "hv1", COORDINATOR_SESSION_PUSHING);
    assert_int_equal(fx->n_sent, 1);
    assert_int_equal(fx->sent[0].body, WIRE_BODY_POLICY_PUSH);
    assert_int_equal(fx->sent[0].version, v1);
    assert_string_equal(fx->sent[0].to, "conn-hv1");
    assert_string_equal(fx->sent[0].host_id, "hv1");

    ack(fx, &hv1, "hv1", v1, true);
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_POLICY_APPLIED), 1);
    report_holding(fx, &hv1, "hv1", v1);
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
    assert_int_equal(fx->n_sent, 1);
}

/* Store one key under scope and tell the engine, as policy set does. */
static uint64_t
add_key(struct fixture *fx, const char *scope, const char *key, const char *value)
{
    char err[STORE_ERR_MAX];
    struct policy p;
    uint64_t version;

    policy_init_defaults(&p);
    if (policy_set(&p, key, value, err, sizeof(err)) != 0 ||
        store_policy_add(fx->store, scope, &p, policy_key_bit(key), "set", "test", "", 1, &version,
                         err, sizeof(err)) != 0)
        fail_msg("add_key(%s %s=%s): %s", scope, key, value, err);
    coordinator_policy_added(fx->coordinator, version, scope);
    fan_out(fx);
    return version;
}

/* A host under a host policy still gets a later fleet change: pushed the layered policy, at a
 * version higher than the one it holds (agents take any other version, and keep it). */
static void
test_fleet_change_reaches_host_policy(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");

    hello(fx, &hv1, "hv1");
    uint64_t v1 = add_key(fx, "host:hv1", "max_release_step_mib", "128");
    assert_int_equal(fx->n_sent, 1);
    assert_int_equal(fx->sent[0].version, v1);
    ack(fx, &hv1, "hv1", v1, true);
    uint64_t v2 = add_key(fx, "fleet", "vm_floor_mib", "300");
    assert_int_equal(fx->n_sent, 2);
    assert_int_equal(fx->sent[1].body, WIRE_BODY_POLICY_PUSH);
    assert_true(fx->sent[1].version == v2 && v2 > v1);
    assert_int_equal(fx->sent[1].policy.vm_floor_kib, 300 * UTIL_KIB_PER_MIB);
    assert_int_equal(fx->sent[1].policy.max_release_step_kib, 128 * UTIL_KIB_PER_MIB);
    ack(fx, &hv1, "hv1", v2, true);
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
}

static void
hello_labels(struct fixture *fx,
             const struct transport_peer *from,
             const char *host_id,
             uint64_t held,
             const char *const *labels,
             size_t n)
{
    struct wire_msg m = {.body = WIRE_BODY_HELLO};

    snprintf(m.host_id, sizeof(m.host_id), "%s", host_id);
    snprintf(m.u.hello.agent_version, sizeof(m.u.hello.agent_version), "test");
    m.u.hello.policy_version = held;
    m.u.hello.policy_epoch = held ? store_epoch(fx->store) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(labels[i], '=');
        snprintf(m.u.hello.labels[i].key, sizeof(m.u.hello.labels[i].key), "%.*s",
                 (int)(eq - labels[i]), labels[i]);
        snprintf(m.u.hello.labels[i].value, sizeof(m.u.hello.labels[i].value), "%s", eq + 1);
    }
    m.u.hello.n_labels = n;
    deliver(fx, from, &m);
}

/* A host that drops a label whose scope is not the newest of its layers keeps the same
 * highest version, but not the same values: it is pushed its policy again, once. */
static void
test_relabelled_host_gets_its_new_layers(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    const char *both[] = {"b=1", "a=1"}, *only_a[] = {"a=1"};

    uint64_t v1 = add_key(fx, "label:b=1", "vm_floor_mib", "300");
    uint64_t v2 = add_key(fx, "label:a=1", "vm_grow_target_unused_mib", "250");
    hello_labels(fx, &hv1, "hv1", 0, both, 2);
    assert_int_equal(fx->n_sent, 1);
    assert_true(fx->sent[0].version == v2 && v2 > v1);
    assert_int_equal(fx->sent[0].policy.vm_floor_kib, 300 * UTIL_KIB_PER_MIB);
    ack(fx, &hv1, "hv1", v2, true);

    hello_labels(fx, &hv1, "hv1", v2, only_a, 1);
    assert_int_equal(fx->n_sent, 2);
    assert_int_equal(fx->sent[1].version, v2);
    assert_int_equal(fx->sent[1].policy.vm_floor_kib, 256 * UTIL_KIB_PER_MIB);
    assert_int_equal(fx->sent[1].policy.vm_grow_target_unused_kib, 250 * UTIL_KIB_PER_MIB);
    ack(fx, &hv1, "hv1", v2, true);
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
    report_holding(fx, &hv1, "hv1", v2);
    hello_labels(fx, &hv1, "hv1", v2, only_a, 1); /* the same labels again: nothing to send */
    assert_int_equal(fx->n_sent, 2);
}

/* A push not answered goes again after COORDINATOR_PUSH_RETRY_MS, not before, and not once
 * it is answered. */
static void
test_push_retry(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1");
    assert_int_equal(sent_count(fx, "hv1", WIRE_BODY_POLICY_PUSH), 1);
    /* Reports holding nothing, every 500 ms, for just under the retry time: no second push. */
    for (uint64_t t = 500; t < COORDINATOR_PUSH_RETRY_MS; t += 500) {
        fx->now_ms += 500;
        report_holding(fx, &hv1, "hv1", 0);
        coordinator_tick(fx->coordinator, fx->now_ms, 0);
    }
    assert_int_equal(sent_count(fx, "hv1", WIRE_BODY_POLICY_PUSH), 1);
    want_state(fx, "hv1", COORDINATOR_SESSION_PUSHING);
    fx->now_ms += 500;
    heartbeat(fx, &hv1, "hv1");
    coordinator_tick(fx->coordinator, fx->now_ms, 0);
    if (sent_count(fx, "hv1", WIRE_BODY_POLICY_PUSH) != 2)
        fail_msg("pushes after the retry time: want 2, got %zu",
                 sent_count(fx, "hv1", WIRE_BODY_POLICY_PUSH));
    ack(fx, &hv1, "hv1", v1, true);
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
    for (int i = 0; i < 20; i++) {
        fx->now_ms += 500;
        report_holding(fx, &hv1, "hv1", v1);
        coordinator_tick(fx->coordinator, fx->now_ms, 0);
    }
    assert_int_equal(sent_count(fx, "hv1", WIRE_BODY_POLICY_PUSH), 2);
}

/* A refused version is not pushed again: not on reports, not on retries, not after either side
 * restarts; a newer one is. */
static void
test_refusal(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1");
    ack(fx, &hv1, "hv1", v1, false);
    want_state(fx, "hv1", COORDINATOR_SESSION_REFUSED);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_POLICY_REFUSED), 1);
    for (int i = 0; i < 30; i++) {
        fx->now_ms += 500;
        report_holding(fx, &hv1, "hv1", 0);
        coordinator_tick(fx->coordinator, fx->now_ms, 0);
    }
    assert_int_equal(sent_count(fx, "hv1", WIRE_BODY_POLICY_PUSH), 1);
    want_state(fx, "hv1", COORDINATOR_SESSION_REFUSED);

    /* The agent restarts (a new connection): still refused, from the store. */
    struct transport_peer again = peer("conn-hv1-2", KEY_HV1, "hv1");
    hello(fx, &again, "hv1");
    want_state(fx, "hv1", COORDINATOR_SESSION_REFUSED);
    /* The coordinator restarts: still refused. */
    stop(fx);
    start(fx);
    clear_sent(fx);
    hello(fx, &again, "hv1");
    want_state(fx, "hv1", COORDINATOR_SESSION_REFUSED);
    assert_int_equal(fx->n_sent, 0);

    uint64_t v2 = add_fleet_policy(fx, 260);
    want_state(fx, "hv1", COORDINATOR_SESSION_PUSHING);
    assert_int_equal(sent_count(fx, "hv1", WIRE_BODY_POLICY_PUSH), 1);
    assert_int_equal(fx->sent[0].version, v2);
}

/* Say hello: a host the coordinator does not know (it restarted) that reports is asked to say
 * hello, once per connection however many queued reports arrive; after its hello it is kept. */
static void
test_say_hello(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    struct transport_peer hv2 = peer("conn-hv2", KEY_HV2, "hv2");

    for (int i = 0; i < 16; i++) {
        report(fx, &hv1, "hv1");
        report(fx, &hv2, "hv2");
    }
    if (sent_count(fx, "hv1", WIRE_BODY_SAY_HELLO) != 1)
        fail_msg("say-hello for 16 queued reports: want 1, got %zu",
                 sent_count(fx, "hv1", WIRE_BODY_SAY_HELLO));
    assert_int_equal(sent_count(fx, "hv2", WIRE_BODY_SAY_HELLO), 1);
    assert_string_equal(fx->sent[0].to, "conn-hv1");
    want_state(fx, "hv1", COORDINATOR_SESSION_UNKNOWN);
    assert_int_equal(coordinator_get_counters(fx->coordinator)->sessions, 0);
    assert_int_equal(coordinator_get_counters(fx->coordinator)->say_hello_held, 30);

    /* Still silent after a while: asked again, once. */
    fx->now_ms += 6000;
    heartbeat(fx, &hv1, "hv1");
    heartbeat(fx, &hv1, "hv1");
    assert_int_equal(sent_count(fx, "hv1", WIRE_BODY_SAY_HELLO), 2);

    hello(fx, &hv1, "hv1");
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
    clear_sent(fx);
    report(fx, &hv1, "hv1");
    assert_int_equal(fx->n_sent, 0);
    assert_int_equal(fleet_host_count(fx->fleet), 1);
}

/* Stale -> down -> fresh: liveness follows the clock, each change is one event, and a host
 * back from down keeps its session (no new hello needed, no new push). */
static void
test_stale_down_fresh(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    struct fleet_host_info info;

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1");
    ack(fx, &hv1, "hv1", v1, true);
    for (int i = 0; i < 4; i++) {
        fx->now_ms += 750; /* stale after 1 s, down after 2 s */
        coordinator_tick(fx->coordinator, fx->now_ms, 0);
    }
    assert_int_equal(fleet_host_get(fx->fleet, "hv1", &info), 0);
    assert_int_equal(info.liveness, FLEET_LIVENESS_DOWN);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_STALE), 1);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_DOWN), 1);

    clear_sent(fx);
    report_holding(fx, &hv1, "hv1", v1);
    coordinator_tick(fx->coordinator, fx->now_ms, 0);
    assert_int_equal(fleet_host_get(fx->fleet, "hv1", &info), 0);
    assert_int_equal(info.liveness, FLEET_LIVENESS_FRESH);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_BACK), 1);
    want_state(fx, "hv1", COORDINATOR_SESSION_CURRENT);
    assert_int_equal(fx->n_sent, 0);
}

/* The agent's side of a reconnect: its queue (16 reports) arrives first, then the hello it
 * sends on its new connection, then the one answering "say hello". */
static void
reconnect(struct fixture *fx, const struct transport_peer *from, const char *host_id, uint64_t held)
{
    for (int i = 0; i < 16; i++)
        report_holding(fx, from, host_id, held);
    hello_holding(fx, from, host_id, held, 1);
    hello_holding(fx, from, host_id, held, 1);
}

/* No reconnect flood (issue 15): after a coordinator restart each host makes one say-hello, one
 * join, one push and one applied event; a host let in for the first time the same. */
static void
test_restart_no_flood(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    struct transport_peer hv2 = peer("conn-hv2", KEY_HV2, "hv2");

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1");
    ack(fx, &hv1, "hv1", v1, true);
    stop(fx);
    start(fx);
    clear_sent(fx);
    reconnect(fx, &hv1, "hv1", v1); /* held from the old epoch: pushed again, once */
    reconnect(fx, &hv2, "hv2", 0);  /* new: its key was just allowed */
    fx->now_ms += 100;
    coordinator_tick(fx->coordinator, fx->now_ms, 0);
    ack(fx, &hv1, "hv1", v1, true);
    ack(fx, &hv2, "hv2", v1, true);
    for (int i = 0; i < 20; i++) {
        fx->now_ms += 500;
        report_holding(fx, &hv1, "hv1", v1);
        report_holding(fx, &hv2, "hv2", v1);
        coordinator_tick(fx->coordinator, fx->now_ms, 0);
    }
    const char *hosts[] = {"hv1", "hv2"};
    for (size_t i = 0; i < 2; i++) {
        size_t says = sent_count(fx, hosts[i], WIRE_BODY_SAY_HELLO);
        size_t joins = events_of(fx, hosts[i], FLEET_EVENT_JOINED) +
                       events_of(fx, hosts[i], FLEET_EVENT_REJOINED);
        size_t pushes = sent_count(fx, hosts[i], WIRE_BODY_POLICY_PUSH);
        size_t applied = events_of(fx, hosts[i], FLEET_EVENT_POLICY_APPLIED);
        if (says != 1 || joins != 1 || pushes != 1 || applied != 1)
            fail_msg("%s after a reconnect: want 1 say-hello, 1 join, 1 push, 1 applied; got %zu, "
                     "%zu, %zu, %zu",
                     hosts[i], says, joins, pushes, applied);
        want_state(fx, hosts[i], COORDINATOR_SESSION_CURRENT);
    }
    assert_int_equal(coordinator_get_counters(fx->coordinator)->hellos_repeated, 2);
}

/* Events survive a coordinator restart (issue 15): kept in the store at each tick, put back
 * by coordinator_restore_events() with their numbers and wall clock times; new ones number on. */
static void
test_events_survive_restart(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    char err[STORE_ERR_MAX];

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1");
    ack(fx, &hv1, "hv1", v1, true);
    fx->now_ms += 1500; /* stale */
    coordinator_tick(fx->coordinator, fx->now_ms, 1700000000000 + fx->now_ms);
    uint64_t last = fleet_last_event_seq(fx->fleet);
    assert_int_equal(last, 3); /* joined, policy_applied, stale */

    stop(fx);
    start(fx);
    fx->now_ms = 50; /* a new boot: the monotonic clock starts again */
    assert_int_equal(
        coordinator_restore_events(fx->coordinator, fx->now_ms, 1700000100000, err, sizeof(err)),
        0);
    if (fleet_last_event_seq(fx->fleet) != last)
        fail_msg("events after a restart: want the last seq %" PRIu64 ", got %" PRIu64, last,
                 fleet_last_event_seq(fx->fleet));
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_JOINED), 1);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_POLICY_APPLIED), 1);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_STALE), 1);

    /* New events number on, and are kept too; the restored ones are not stored twice. */
    hello(fx, &hv1, "hv1");
    coordinator_tick(fx->coordinator, fx->now_ms, 1700000100000 + fx->now_ms);
    assert_int_equal(fleet_last_event_seq(fx->fleet), last + 1);
    stop(fx);
    start(fx);
    assert_int_equal(
        coordinator_restore_events(fx->coordinator, fx->now_ms, 1700000200000, err, sizeof(err)),
        0);
    assert_int_equal(fleet_last_event_seq(fx->fleet), last + 1);
    assert_int_equal(events_of(fx, "hv1", FLEET_EVENT_JOINED), 2);
}

static void
want_ack(struct fixture *fx, const char *host_id, uint64_t version, bool applied)
{
    struct fleet_host_info info;

    assert_int_equal(fleet_host_get(fx->fleet, host_id, &info), 0);
    if (info.last_ack_version != version || info.last_ack_applied != applied)
        fail_msg("%s's last ack: want %" PRIu64 " %s, got %" PRIu64 " %s", host_id, version,
                 applied ? "applied" : "refused", info.last_ack_version,
                 info.last_ack_applied ? "applied" : "refused");
}

/* The last ack survives a coordinator restart: from the store into the fleet at the host's
 * hello, before the agent answers anything again (the metrics' and hosts' ack state). */
static void
test_ack_survives_restart(void **state)
{
    struct fixture *fx = *state;
    struct transport_peer hv1 = peer("conn-hv1", KEY_HV1, "hv1");
    struct transport_peer hv2 = peer("conn-hv2", KEY_HV2, "hv2");

    uint64_t v1 = add_fleet_policy(fx, 250);
    hello(fx, &hv1, "hv1");
    hello(fx, &hv2, "hv2");
    ack(fx, &hv1, "hv1", v1, true);
    ack(fx, &hv2, "hv2", v1, false);
    stop(fx);
    start(fx);
    hello_holding(fx, &hv1, "hv1", v1, store_epoch(fx->store));
    hello(fx, &hv2, "hv2");
    want_ack(fx, "hv1", v1, true);
    want_ack(fx, "hv2", v1, false);

    /* A host that never answered has no ack, stored or not. */
    struct transport_peer hv3 = peer("conn-hv3", "0123456789012345678901234567890123456789", "hv3");
    hello(fx, &hv3, "hv3");
    want_ack(fx, "hv3", 0, false);
}

#define FANOUT_HOSTS 40

/* Host i of a fleet made for the fan-out tests: its id, and a key of its own. */
static struct transport_peer
nth_peer(size_t i, char host_id[WIRE_HOST_ID_MAX])
{
    char conn[32], key[TRANSPORT_KEY_Z85_LEN];

    snprintf(host_id, WIRE_HOST_ID_MAX, "hv%zu", i);
    snprintf(conn, sizeof(conn), "conn-hv%zu", i);
    snprintf(key, sizeof(key), "%040zu", i);
    return peer(conn, key, host_id);
}

static void
greet_fleet(struct fixture *fx, size_t n)
{
    char id[WIRE_HOST_ID_MAX];

    for (size_t i = 0; i < n; i++) {
        struct transport_peer p = nth_peer(i, id);
        hello(fx, &p, id);
    }
}

static size_t
pushes_of(const struct fixture *fx, uint64_t version)
{
    size_t n = 0;

    for (size_t i = 0; i < fx->n_sent && i < SENT_MAX; i++)
        n += fx->sent[i].body == WIRE_BODY_POLICY_PUSH && fx->sent[i].version == version;
    return n;
}

/* A stored policy sends nothing by itself: each step looks at a bounded number of hosts and
 * pushes to those, until every host in scope has it once; the progress counts pushes, applied
 * and refused acks, each host once. */
static void
test_fanout_paced(void **state)
{
    struct fixture *fx = *state;
    struct coordinator_fanout fo;
    char id[WIRE_HOST_ID_MAX];

    greet_fleet(fx, FANOUT_HOSTS);
    clear_sent(fx);
    uint64_t v1 = store_fleet_policy(fx, 250);
    assert_int_equal(fx->n_sent, 0);
    coordinator_fanout_progress(fx->coordinator, &fo);
    assert_int_equal(fo.version, v1);
    assert_string_equal(fo.scope, "fleet");
    assert_int_equal(fo.hosts, FANOUT_HOSTS);
    assert_int_equal(fo.visited, 0);
    assert_false(fo.done);

    assert_true(coordinator_fanout_step(fx->coordinator, 5, fx->now_ms));
    coordinator_fanout_progress(fx->coordinator, &fo);
    /* Whole buckets: five hosts, or a few more when one shares a bucket. */
    if (fx->n_sent < 5 || fx->n_sent > 10)
        fail_msg("one step of 5: want 5 to 10 pushes, got %zu", fx->n_sent);
    assert_int_equal(fo.visited, fx->n_sent);
    assert_int_equal(fo.pushed, fx->n_sent);

    size_t steps = 1;
    while (coordinator_fanout_step(fx->coordinator, 5, fx->now_ms))
        steps++;
    if (steps < FANOUT_HOSTS / 10)
        fail_msg("40 hosts 5 at a time: want at least 4 steps, got %zu", steps);
    assert_false(coordinator_fanout_step(fx->coordinator, 5, fx->now_ms));
    assert_int_equal(pushes_of(fx, v1), FANOUT_HOSTS);
    for (size_t i = 0; i < FANOUT_HOSTS; i++) {
        struct transport_peer p = nth_peer(i, id);
        assert_int_equal(sent_count(fx, id, WIRE_BODY_POLICY_PUSH), 1);
        if (i < 3)
            ack(fx, &p, id, v1, true);
        else if (i == 3)
            ack(fx, &p, id, v1, false);
    }
    struct transport_peer p0 = nth_peer(0, id);
    ack(fx, &p0, id, v1, true); /* a second answer counts no more */
    coordinator_fanout_progress(fx->coordinator, &fo);
    assert_true(fo.done);
    assert_int_equal(fo.visited, FANOUT_HOSTS);
    assert_int_equal(fo.in_scope, FANOUT_HOSTS);
    assert_int_equal(fo.pushed, FANOUT_HOSTS);
    assert_int_equal(fo.acked, 3);
    assert_int_equal(fo.refused, 1);
}

/* A newer policy stored during a fan-out supersedes it: its counts start over and every host
 * gets the newer version once, the hosts the old one had not reached never see the old one; a
 * host that reports meanwhile is pushed at once and not again by the fan-out. */
static void
test_fanout_superseded(void **state)
{
    struct fixture *fx = *state;
    struct coordinator_fanout fo;
    char id[WIRE_HOST_ID_MAX];

    greet_fleet(fx, FANOUT_HOSTS);
    clear_sent(fx);
    uint64_t v1 = store_fleet_policy(fx, 250);
    assert_true(coordinator_fanout_step(fx->coordinator, 5, fx->now_ms));
    size_t old_pushes = pushes_of(fx, v1);
    uint64_t v2 = store_fleet_policy(fx, 260);
    coordinator_fanout_progress(fx->coordinator, &fo);
    assert_int_equal(fo.version, v2);
    assert_int_equal(fo.visited, 0);
    assert_int_equal(fo.pushed, 0);

    struct transport_peer p7 = nth_peer(7, id);
    size_t hv7_before = sent_count(fx, "hv7", WIRE_BODY_POLICY_PUSH);
    report(fx, &p7, id); /* reports before the fan-out reaches it */
    assert_int_equal(pushes_of(fx, v2), 1);
    fan_out(fx);
    assert_int_equal(pushes_of(fx, v1), old_pushes); /* the old one went no further */
    assert_int_equal(pushes_of(fx, v2), FANOUT_HOSTS);
    assert_int_equal(sent_count(fx, "hv7", WIRE_BODY_POLICY_PUSH), hv7_before + 1);
    coordinator_fanout_progress(fx->coordinator, &fo);
    assert_int_equal(fo.pushed, FANOUT_HOSTS);
    assert_true(fo.done);
}

/* Only the hosts in the policy's scope are pushed; the others are looked at and left alone. */
static void
test_fanout_scope(void **state)
{
    struct fixture *fx = *state;
    struct coordinator_fanout fo;

    greet_fleet(fx, FANOUT_HOSTS);
    clear_sent(fx);
    uint64_t v1 = add_key(fx, "host:hv3", "max_release_step_mib", "128");
    assert_int_equal(pushes_of(fx, v1), 1);
    assert_int_equal(sent_count(fx, "hv3", WIRE_BODY_POLICY_PUSH), 1);
    coordinator_fanout_progress(fx->coordinator, &fo);
    assert_int_equal(fo.visited, FANOUT_HOSTS);
    assert_int_equal(fo.in_scope, 1);
    assert_int_equal(fo.pushed, 1);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_key_is_a_host),
        T(test_nothing_kept_before_hello),
        T(test_ack_only_for_pushed_version),
        T(test_hosts_forgotten),
        T(test_restored_database_never_aliases),
        T(test_hello_storm_is_cheap),
        T(test_hello_push_ack),
        T(test_push_retry),
        T(test_fleet_change_reaches_host_policy),
        T(test_relabelled_host_gets_its_new_layers),
        T(test_refusal),
        T(test_say_hello),
        T(test_stale_down_fresh),
        T(test_restart_no_flood),
        T(test_events_survive_restart),
        T(test_ack_survives_restart),
        T(test_fanout_paced),
        T(test_fanout_superseded),
        T(test_fanout_scope),
    };
#undef T
    log_set_level(LOG_LEVEL_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
