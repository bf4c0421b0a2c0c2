/*
 * test_coordinator.c - the coordinator's protocol engine (coordinator/coordinator.c) fed with
 * encoded messages and hand-made peers, over a real fleet, a real SQLite store in a temp dir
 * and an insecure inproc server (answers go nowhere; only what the engine keeps is checked).
 *
 * The trust boundaries of issue 10: a key is a host (a message whose host id is not its key's
 * is dropped before anything is kept, with the real host down and on a fresh coordinator);
 * nothing is kept for a stranger before its hello; an ack counts only for the version pushed
 * to that host, once.
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

struct fixture {
    char dir[64];
    char db[128];
    struct store *store;
    struct fleet *fleet;
    struct transport_server *server;
    struct coordinator *coordinator;
    uint64_t now_ms;
    uint64_t sequence;
};

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
    fx->coordinator = coordinator_new(fx->fleet, fx->store, fx->server);
}

static void
stop(struct fixture *fx)
{
    coordinator_destroy(&fx->coordinator);
    fleet_destroy(&fx->fleet);
    store_destroy(&fx->store);
}

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[TRANSPORT_ERR_MAX];
    static int serial;

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_coordinator.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->db, sizeof(fx->db), "%s/coordinator.db", fx->dir);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "inproc://test-coordinator-%d", serial++);
    struct transport_server_options o = {.endpoint = endpoint, .insecure = true};
    if (transport_server_open(&o, &fx->server, err, sizeof(err)) != 0) {
        fprintf(stderr, "server: %s\n", err);
        return -1;
    }
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
    transport_server_close(&fx->server);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static void
deliver(struct fixture *fx, const struct transport_peer *from, struct wire_msg *m)
{
    char err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;

    m->protocol_version = WIRE_PROTOCOL_VERSION;
    m->sequence = ++fx->sequence;
    if (wire_encode(m, &buf, &len, err, sizeof(err)) != 0)
        fail_msg("encode: %s", err);
    coordinator_handle(fx->coordinator, from, buf, len, fx->now_ms, 1700000000000 + fx->now_ms);
    free(buf);
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

static uint64_t
add_fleet_policy(struct fixture *fx, uint64_t grow_target_mib)
{
    char err[STORE_ERR_MAX];
    struct policy p;
    uint64_t version;

    policy_init_defaults(&p);
    p.vm_grow_target_unused_kib = grow_target_mib * POLICY_KIB_PER_MIB;
    if (store_policy_add(fx->store, "fleet", &p, "test", "", 1, &version, err, sizeof(err)) != 0)
        fail_msg("store_policy_add: %s", err);
    coordinator_policy_added(fx->coordinator, version, "fleet");
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

    hello(fx, &hv2_as_hv1, "hv1");
    report(fx, &hv2_as_hv1, "hv1");
    heartbeat(fx, &hv2_as_hv1, "hv1");
    ack(fx, &hv2_as_hv1, "hv1", v1, false); /* would keep v1 from ever reaching hv1 */
    const struct coordinator_counters *c = coordinator_get_counters(fx->coordinator);
    if (c->impostors != 4)
        fail_msg("impostors: want 4 (hello, report, heartbeat, ack), got %" PRIu64, c->impostors);
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
    assert_int_equal(fleet_host_count(fx->fleet), 0);
    assert_int_equal(stored_hosts(fx), 1);
    assert_int_equal(store_ack_for_host(fx->store, "hv1", &stored, err, sizeof(err)), -ENOENT);

    /* The real hv1 comes back and is let in. */
    hello(fx, &hv1, "hv1");
    assert_int_equal(fleet_host_count(fx->fleet), 1);
    assert_int_equal(coordinator_get_counters(fx->coordinator)->impostors, 2);
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

/* One key saying hello in a loop: 3,000 hellos write its hosts row once and log a handful of
 * "rejoined" lines, not 3,000 of each. */
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
        fx->now_ms += 1;
        hello(fx, &hv1, "hv1");
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
    };
#undef T
    log_set_level(LOG_LEVEL_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
