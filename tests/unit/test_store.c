/*
 * test_store.c - the coordinator's SQLite store (coordinator/store.c), on files in a temp dir.
 *
 * Add, get and history; an invalid policy or scope refused and not stored; the effective policy
 * host > label > fleet with versions; acks (the last one wins); hosts upserted; everything still
 * there after close and reopen (the coordinator's restart); and the files it must refuse with
 * a clear error, never a crash: garbage, read-only, another program's database, a newer schema,
 * a hand-edited policy row, pages overwritten.
 *
 * SQLite is used directly here only to craft those files; the code under test is store.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "test_util.h"


struct fixture {
    char dir[64];
    char path[128];
    struct store *store;
    char err[STORE_ERR_MAX];
};

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_store.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/coordinator.db", fx->dir);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[160];

    store_close(&fx->store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static void
open_store(struct fixture *fx)
{
    int rc = store_open(fx->path, &fx->store, fx->err, sizeof(fx->err));
    if (rc != 0)
        fail_msg("store_open(%s): %d %s", fx->path, rc, fx->err);
}

static struct policy
policy_with(uint64_t host_min_unused_mib)
{
    struct policy p;

    policy_init_defaults(&p);
    p.host_min_unused_kib = MIB(host_min_unused_mib);
    return p;
}

static uint64_t
add(struct fixture *fx, const char *scope, uint64_t host_min_unused_mib)
{
    struct policy p = policy_with(host_min_unused_mib);
    uint64_t version = 0;
    int rc = store_policy_add(fx->store, scope, &p, policy_keys_all(), "set", "alice", "test",
                              1700000000000, &version, fx->err, sizeof(fx->err));

    if (rc != 0)
        fail_msg("store_policy_add(%s): %d %s", scope, rc, fx->err);
    return version;
}

static void
test_add_get_history(void **state)
{
    struct fixture *fx = *state;
    struct store_policy_entry e;
    struct policy p;
    uint64_t v = 0;

    open_store(fx);
    policy_init_defaults(&p);
    p.demand_signal = POLICY_DEMAND_USABLE;
    p.reclaim_idle = false;
    p.interval_ms = 2000;
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, policy_keys_all(), "set", "alice",
                                      "first policy", 1700000000123, &v, fx->err, sizeof(fx->err)),
                     0);
    assert_int_equal(v, 1);
    assert_int_equal(store_policy_get(fx->store, 1, &e, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(e.version, 1);
    assert_string_equal(e.scope, "fleet");
    assert_true(policy_equal(&e.policy, &p));
    assert_string_equal(e.author, "alice");
    assert_string_equal(e.reason, "first policy");
    assert_int_equal(e.created_at_ms, 1700000000123);
    assert_int_equal(store_policy_get(fx->store, 2, &e, fx->err, sizeof(fx->err)), -ENOENT);
    assert_non_null(strstr(fx->err, "no policy version 2"));

    assert_int_equal(add(fx, "label:rack=r1", 300), 2);
    assert_int_equal(add(fx, "fleet", 400), 3);
    assert_int_equal(store_policy_latest(fx->store, "fleet", &e, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(e.version, 3);
    assert_int_equal(e.policy.host_min_unused_kib, MIB(400));
    assert_int_equal(store_policy_latest(fx->store, "host:x", &e, fx->err, sizeof(fx->err)),
                     -ENOENT);
}

struct versions {
    uint64_t v[16];
    size_t n;
    size_t stop_after;
};

static int
collect_version(const struct store_policy_entry *e, void *ctx)
{
    struct versions *vs = ctx;

    vs->v[vs->n++] = e->version;
    return vs->stop_after && vs->n >= vs->stop_after ? 1 : 0;
}

static int
fail_walk(const struct store_policy_entry *e, void *ctx)
{
    (void)e;
    (void)ctx;
    return -ECANCELED;
}

static void
test_history(void **state)
{
    struct fixture *fx = *state;
    struct versions vs = {.n = 0};

    open_store(fx);
    assert_int_equal(
        store_policy_history(fx->store, NULL, collect_version, &vs, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(vs.n, 0);
    add(fx, "fleet", 200);
    add(fx, "host:hv-01", 300);
    add(fx, "fleet", 400);
    add(fx, "label:zone=a", 500);
    assert_int_equal(
        store_policy_history(fx->store, NULL, collect_version, &vs, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(vs.n, 4);
    static const uint64_t all[] = {4, 3, 2, 1};
    assert_memory_equal(vs.v, all, sizeof(all));
    vs.n = 0;
    assert_int_equal(
        store_policy_history(fx->store, "fleet", collect_version, &vs, fx->err, sizeof(fx->err)),
        0);
    assert_int_equal(vs.n, 2);
    assert_int_equal(vs.v[0], 3);
    assert_int_equal(vs.v[1], 1);
    vs = (struct versions){.stop_after = 1};
    assert_int_equal(
        store_policy_history(fx->store, NULL, collect_version, &vs, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(vs.n, 1);
    assert_int_equal(
        store_policy_history(fx->store, NULL, fail_walk, NULL, fx->err, sizeof(fx->err)),
        -ECANCELED);
    /* the walk left its statement reset: the store goes on working */
    assert_int_equal(add(fx, "fleet", 600), 5);
}

static void
test_invalid_refused_and_not_stored(void **state)
{
    struct fixture *fx = *state;
    struct versions vs = {.n = 0};
    struct policy p;
    uint64_t v = 99;
    (void)state;

    open_store(fx);
    policy_init_defaults(&p);
    p.interval_ms = 5; /* below its bound (rules between keys are the caller's: layered) */
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, policy_keys_all(), "set", "alice", "",
                                      1, &v, fx->err, sizeof(fx->err)),
                     -EINVAL);
    assert_non_null(strstr(fx->err, "interval_ms"));
    assert_int_equal(v, 99);
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, UINT32_C(1) << 31, "set", "alice", "",
                                      1, &v, fx->err, sizeof(fx->err)),
                     -EINVAL); /* a key the table does not have */
    policy_init_defaults(&p);
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, 0, "", "alice", "", 1, &v, fx->err,
                                      sizeof(fx->err)),
                     -EINVAL); /* no action */

    policy_init_defaults(&p);
    static const char *const bad_scopes[] = {"",        "Fleet",    "host:",  "host:a b",
                                             "label:k", "label:k=", "rack=r1"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_scopes); i++) {
        assert_int_equal(store_policy_add(fx->store, bad_scopes[i], &p, policy_keys_all(), "set",
                                          "alice", "", 1, &v, fx->err, sizeof(fx->err)),
                         -EINVAL);
        assert_non_null(strstr(fx->err, "scope"));
    }
    assert_int_equal(store_policy_add(fx->store, NULL, &p, policy_keys_all(), "set", "alice", "", 1,
                                      &v, fx->err, sizeof(fx->err)),
                     -EINVAL);
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, policy_keys_all(), "set", "", "", 1,
                                      &v, fx->err, sizeof(fx->err)),
                     -EINVAL);
    assert_non_null(strstr(fx->err, "author"));
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, policy_keys_all(), "set", "alice",
                                      "two\nlines", 1, &v, fx->err, sizeof(fx->err)),
                     -EINVAL);
    assert_non_null(strstr(fx->err, "reason"));
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, policy_keys_all(), "set", "alice", "",
                                      UINT64_MAX, &v, fx->err, sizeof(fx->err)),
                     -EINVAL);

    assert_int_equal(
        store_policy_history(fx->store, NULL, collect_version, &vs, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(vs.n, 0);
    assert_int_equal(v, 99);
    assert_int_equal(add(fx, "fleet", 200), 1); /* refusals used up no version */
}

static void
expect_for_host(struct fixture *fx,
                const char *host_id,
                const char *const *labels,
                size_t n_labels,
                uint64_t want_version,
                const char *want_scope)
{
    struct store_effective e;
    int rc = store_policy_for_host(fx->store, host_id, labels, n_labels, NULL, &e, fx->err,
                                   sizeof(fx->err));

    if (rc != 0)
        fail_msg("policy for %s: %d %s", host_id, rc, fx->err);
    if (e.version != want_version || strcmp(e.scope, want_scope) != 0)
        fail_msg("policy for %s: want v%" PRIu64 " %s, got v%" PRIu64 " %s", host_id, want_version,
                 want_scope, e.version, e.scope);
}

/* Store only the key named key (value in edge units) under scope. */
static uint64_t
add_key(struct fixture *fx, const char *scope, const char *key, const char *value)
{
    struct policy p;
    uint64_t version = 0;

    policy_init_defaults(&p);
    if (policy_set(&p, key, value, fx->err, sizeof(fx->err)) != 0)
        fail_msg("policy_set(%s=%s): %s", key, value, fx->err);
    if (store_policy_add(fx->store, scope, &p, policy_key_bit(key), "set", "alice", "", 1, &version,
                         fx->err, sizeof(fx->err)) != 0)
        fail_msg("store_policy_add(%s): %s", scope, fx->err);
    return version;
}

/* The value and source of one key of host_id's effective policy. */
static void
expect_key(struct fixture *fx,
           const char *host_id,
           const char *const *labels,
           size_t n_labels,
           const char *key,
           const char *want_value,
           const char *want_scope,
           uint64_t want_version)
{
    struct store_effective e;
    size_t n;
    const struct config_key *params = policy_params(&n);
    char got[64];

    if (store_policy_for_host(fx->store, host_id, labels, n_labels, NULL, &e, fx->err,
                              sizeof(fx->err)) != 0)
        fail_msg("policy for %s: %s", host_id, fx->err);
    policy_get(&e.policy, key, got, sizeof(got));
    size_t i = (size_t)(policy_param_find(key) - params);
    if (strcmp(got, want_value) != 0 || strcmp(e.sources[i].scope, want_scope) != 0 ||
        e.sources[i].version != want_version)
        fail_msg("%s %s: want %s from %s v%" PRIu64 ", got %s from %s v%" PRIu64, host_id, key,
                 want_value, want_scope, want_version, got, e.sources[i].scope,
                 e.sources[i].version);
}

static void
test_scope_precedence(void **state)
{
    struct fixture *fx = *state;
    struct store_effective e;
    const char *r1[] = {"rack=r1"};
    const char *r1_z[] = {"rack=r1", "zone=z"};
    const char *z_r1[] = {"zone=z", "rack=r1"};
    const char *other[] = {"rack=r2", "zone=y"};

    open_store(fx);
    assert_int_equal(
        store_policy_for_host(fx->store, "h1", r1, 1, NULL, &e, fx->err, sizeof(fx->err)), -ENOENT);
    assert_non_null(strstr(fx->err, "h1"));
    assert_int_equal(add(fx, "fleet", 201), 1);
    assert_int_equal(add(fx, "label:rack=r1", 202), 2);
    assert_int_equal(add(fx, "label:zone=z", 203), 3);
    assert_int_equal(add(fx, "host:h1", 204), 4);
    assert_int_equal(add(fx, "fleet", 205), 5);

    /* The effective version is the newest among the scopes that match. */
    expect_for_host(fx, "h1", r1, 1, 5, "fleet");
    expect_key(fx, "h1", r1, 1, "host_min_unused_mib", "204", "host:h1", 4); /* host wins */
    expect_key(fx, "h2", r1_z, 2, "host_min_unused_mib", "203", "label:zone=z", 3);
    expect_key(fx, "h2", z_r1, 2, "host_min_unused_mib", "203", "label:zone=z", 3);
    expect_key(fx, "h3", r1, 1, "host_min_unused_mib", "202", "label:rack=r1", 2);
    expect_key(fx, "h4", NULL, 0, "host_min_unused_mib", "205", "fleet", 5);
    expect_key(fx, "h5", other, 2, "host_min_unused_mib", "205", "fleet", 5);
    assert_int_equal(add(fx, "label:rack=r1", 206), 6);
    expect_for_host(fx, "h2", r1_z, 2, 6, "label:rack=r1");
    expect_key(fx, "h2", r1_z, 2, "host_min_unused_mib", "206", "label:rack=r1", 6);
    expect_key(fx, "h1", r1, 1, "host_min_unused_mib", "204", "host:h1", 4);
    assert_int_equal(
        store_policy_for_host(fx->store, "bad id", NULL, 0, NULL, &e, fx->err, sizeof(fx->err)),
        -EINVAL);
}

/* The example: a host policy and a label policy each set one key; the host gets both,
 * and a later fleet change of a third key reaches it. */
static void
test_layers_merge_per_key(void **state)
{
    struct fixture *fx = *state;
    const char *gpu[] = {"role=gpu"};

    open_store(fx);
    assert_int_equal(add_key(fx, "fleet", "vm_floor_mib", "300"), 1);
    assert_int_equal(add_key(fx, "label:role=gpu", "vm_grow_target_unused_mib", "250"), 2);
    assert_int_equal(add_key(fx, "host:hv1", "max_release_step_mib", "128"), 3);
    expect_key(fx, "hv1", gpu, 1, "max_release_step_mib", "128", "host:hv1", 3);
    expect_key(fx, "hv1", gpu, 1, "vm_grow_target_unused_mib", "250", "label:role=gpu", 2);
    expect_key(fx, "hv1", gpu, 1, "vm_floor_mib", "300", "fleet", 1);
    expect_key(fx, "hv1", gpu, 1, "vm_min_unused_mib", "100", "defaults", 0);
    expect_for_host(fx, "hv1", gpu, 1, 3, "host:hv1");

    assert_int_equal(add_key(fx, "fleet", "interval_ms", "2000"), 4);
    expect_key(fx, "hv1", gpu, 1, "interval_ms", "2000", "fleet", 4);
    expect_key(fx, "hv1", gpu, 1, "max_release_step_mib", "128", "host:hv1", 3);
    expect_key(fx, "hv1", gpu, 1, "vm_grow_target_unused_mib", "250", "label:role=gpu", 2);
    expect_for_host(fx, "hv1", gpu, 1, 4, "fleet"); /* higher than the v3 it holds */
}

/* Two labels of one host set the same key: the scope changed last wins, whatever the order of
 * the host's labels. A deleted scope (a row setting nothing) still counts for the version. */
static void
test_layers_label_conflict_and_delete(void **state)
{
    struct fixture *fx = *state;
    const char *ab[] = {"a=1", "b=1"}, *ba[] = {"b=1", "a=1"};
    struct store_effective e;
    struct policy p;
    uint64_t v;

    open_store(fx);
    assert_int_equal(add_key(fx, "label:b=1", "vm_floor_mib", "300"), 1);
    assert_int_equal(add_key(fx, "label:a=1", "vm_floor_mib", "400"), 2);
    expect_key(fx, "h", ab, 2, "vm_floor_mib", "400", "label:a=1", 2);
    expect_key(fx, "h", ba, 2, "vm_floor_mib", "400", "label:a=1", 2);
    assert_int_equal(add_key(fx, "label:b=1", "vm_floor_mib", "500"), 3);
    expect_key(fx, "h", ab, 2, "vm_floor_mib", "500", "label:b=1", 3);

    policy_init_defaults(&p);
    assert_int_equal(store_policy_add(fx->store, "label:b=1", &p, 0, "delete", "alice", "", 1, &v,
                                      fx->err, sizeof(fx->err)),
                     0);
    expect_key(fx, "h", ab, 2, "vm_floor_mib", "400", "label:a=1", 2);
    expect_for_host(fx, "h", ab, 2, 4, "label:b=1");
    struct store_policy_entry row;
    assert_int_equal(store_policy_latest(fx->store, "label:b=1", &row, fx->err, sizeof(fx->err)),
                     0);
    assert_int_equal(row.keys, 0);
    assert_string_equal(row.action, "delete");

    /* What-if: a row not stored stands for its scope; an invalid merge is refused by host. */
    struct store_policy_entry instead = {.keys = policy_key_bit("vm_min_unused_mib")};
    snprintf(instead.scope, sizeof(instead.scope), "host:h");
    policy_init_defaults(&instead.policy);
    instead.policy.vm_min_unused_kib = MIB(250);
    assert_int_equal(
        store_policy_for_host(fx->store, "h", ab, 2, &instead, &e, fx->err, sizeof(fx->err)),
        -EINVAL);
    assert_non_null(strstr(fx->err, "host h"));
    assert_non_null(strstr(fx->err, "vm_min_unused_mib"));
}

/* The rows loaded at once give every host the answer the queries give. */
static void
test_layers_loaded_match_queried(void **state)
{
    struct fixture *fx = *state;
    const char *r1_z[] = {"rack=r1", "zone=z"}, *other[] = {"rack=r2"};
    struct store_layers *layers = NULL;
    struct store_effective a, b;
    struct {
        const char *id;
        const char *const *labels;
        size_t n;
    } hosts[] = {{"h1", r1_z, 2}, {"h2", r1_z, 2}, {"h3", other, 1}, {"h4", NULL, 0}};

    open_store(fx);
    assert_int_equal(store_layers_load(fx->store, &layers, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(
        store_layers_for_host(layers, "h1", NULL, 0, NULL, &a, fx->err, sizeof(fx->err)), -ENOENT);
    store_layers_free(&layers);
    add_key(fx, "fleet", "vm_floor_mib", "300");
    add_key(fx, "label:zone=z", "vm_floor_mib", "400");
    add_key(fx, "label:rack=r1", "vm_grow_target_unused_mib", "250");
    add_key(fx, "host:h1", "max_release_step_mib", "128");
    add_key(fx, "label:rack=r1", "interval_ms", "2000");
    assert_int_equal(store_layers_load(fx->store, &layers, fx->err, sizeof(fx->err)), 0);
    for (size_t i = 0; i < ARRAY_SIZE(hosts); i++) {
        assert_int_equal(store_policy_for_host(fx->store, hosts[i].id, hosts[i].labels, hosts[i].n,
                                               NULL, &a, fx->err, sizeof(fx->err)),
                         0);
        assert_int_equal(store_layers_for_host(layers, hosts[i].id, hosts[i].labels, hosts[i].n,
                                               NULL, &b, fx->err, sizeof(fx->err)),
                         0);
        if (memcmp(&a, &b, sizeof(a)) != 0)
            fail_msg("%s: loaded v%" PRIu64 " %s, queried v%" PRIu64 " %s", hosts[i].id, b.version,
                     b.scope, a.version, a.scope);
    }
    store_layers_free(&layers);
    store_layers_free(&layers); /* NULL-safe */
}

struct acks {
    struct store_ack a[8];
    size_t n;
};

static int
collect_ack(const struct store_ack *a, void *ctx)
{
    struct acks *acks = ctx;

    acks->a[acks->n++] = *a;
    return 0;
}

static void
test_acks(void **state)
{
    struct fixture *fx = *state;
    struct acks acks = {.n = 0};
    struct store_ack a;
    char *err = fx->err;
    size_t len = sizeof(fx->err);

    open_store(fx);
    assert_int_equal(
        store_ack_record(fx->store, "hv-02", 1, false, "below local limit", 10, err, len), 0);
    assert_int_equal(store_ack_record(fx->store, "hv-01", 1, false, "first answer", 11, err, len),
                     0);
    assert_int_equal(store_ack_record(fx->store, "hv-01", 1, true, "", 12, err, len), 0);
    assert_int_equal(store_ack_record(fx->store, "hv-01", 2, true, "", 13, err, len), 0);
    assert_int_equal(store_acks_for_version(fx->store, 1, collect_ack, &acks, err, len), 0);
    assert_int_equal(acks.n, 2); /* one per host: the last answer replaced the first */
    assert_string_equal(acks.a[0].host_id, "hv-01");
    assert_true(acks.a[0].applied);
    assert_string_equal(acks.a[0].reason, "");
    assert_int_equal(acks.a[0].at_ms, 12);
    assert_string_equal(acks.a[1].host_id, "hv-02");
    assert_false(acks.a[1].applied);
    assert_string_equal(acks.a[1].reason, "below local limit");

    assert_int_equal(store_ack_for_host(fx->store, "hv-01", &a, err, len), 0);
    assert_int_equal(a.version, 2);
    assert_int_equal(store_ack_for_host(fx->store, "hv-03", &a, err, len), -ENOENT);

    /* Each host's newest ack in one walk: the row of its highest version, whole. */
    assert_int_equal(store_ack_record(fx->store, "hv-01", 3, false, "too low", 14, err, len), 0);
    acks.n = 0;
    assert_int_equal(store_acks_newest(fx->store, collect_ack, &acks, err, len), 0);
    assert_int_equal(acks.n, 2);
    assert_string_equal(acks.a[0].host_id, "hv-01");
    assert_int_equal(acks.a[0].version, 3);
    assert_false(acks.a[0].applied);
    assert_string_equal(acks.a[0].reason, "too low");
    assert_int_equal(acks.a[0].at_ms, 14);
    assert_string_equal(acks.a[1].host_id, "hv-02");
    assert_int_equal(acks.a[1].version, 1);
    assert_string_equal(acks.a[1].reason, "below local limit");
    assert_int_equal(store_ack_record(fx->store, "bad id", 1, true, "", 1, err, len), -EINVAL);
    assert_int_equal(store_ack_record(fx->store, "hv-01", 0, true, "", 1, err, len), -EINVAL);
    assert_int_equal(store_ack_record(fx->store, "hv-01", UINT64_MAX, true, "", 1, err, len),
                     -EINVAL);
}

struct hosts {
    char line[8][256];
    size_t n;
};

static int
collect_host(const struct store_host *h, void *ctx)
{
    struct hosts *hs = ctx;
    size_t used = (size_t)snprintf(hs->line[hs->n], sizeof(hs->line[0]),
                                   "%s first=%" PRIu64 " last=%" PRIu64 " v=%" PRIu64, h->host_id,
                                   h->first_seen_ms, h->last_seen_ms, h->policy_version);

    for (size_t i = 0; i < h->n_labels; i++)
        used += (size_t)snprintf(hs->line[hs->n] + used, sizeof(hs->line[0]) - used, " [%s]",
                                 h->labels[i]);
    hs->n++;
    return 0;
}

static void
test_hosts_upsert(void **state)
{
    struct fixture *fx = *state;
    struct hosts hs = {.n = 0};
    const char *two[] = {"rack=r1", "zone=eu west"};
    const char *one[] = {"rack=r2"};
    const char *bad[] = {"rack"};
    char *err = fx->err;
    size_t len = sizeof(fx->err);

    open_store(fx);
    assert_int_equal(store_host_upsert(fx->store, "hv-02", NULL, 0, 50, 0, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-01", two, 2, 100, 3, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-01", one, 1, 200, 4, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-01", bad, 1, 300, 5, err, len), -EINVAL);
    assert_non_null(strstr(err, "label"));
    assert_int_equal(store_host_upsert(fx->store, "bad id", NULL, 0, 300, 5, err, len), -EINVAL);
    assert_int_equal(store_hosts_list(fx->store, collect_host, &hs, err, len), 0);
    assert_int_equal(hs.n, 2);
    assert_string_equal(hs.line[0], "hv-01 first=100 last=200 v=4 [rack=r2]");
    assert_string_equal(hs.line[1], "hv-02 first=50 last=50 v=0");
    hs.n = 0;
    assert_int_equal(store_host_upsert(fx->store, "hv-01", two, 2, 400, 6, err, len), 0);
    assert_int_equal(store_hosts_list(fx->store, collect_host, &hs, err, len), 0);
    assert_string_equal(hs.line[0], "hv-01 first=100 last=400 v=6 [rack=r1] [zone=eu west]");
}

static void
test_batches(void **state)
{
    struct fixture *fx = *state;
    struct hosts hs = {.n = 0};
    struct acks acks = {.n = 0};
    char *err = fx->err;
    size_t len = sizeof(fx->err);

    open_store(fx);
    /* committed: every write is there, also after reopening */
    assert_int_equal(store_batch_begin(fx->store, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-01", NULL, 0, 1, 0, err, len), 0);
    assert_int_equal(store_ack_record(fx->store, "hv-01", 1, true, "", 2, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "bad id", NULL, 0, 1, 0, err, len), -EINVAL);
    assert_int_equal(store_batch_end(fx->store, true, err, len), 0);
    /* rolled back: none of them */
    assert_int_equal(store_batch_begin(fx->store, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-02", NULL, 0, 1, 0, err, len), 0);
    assert_int_equal(store_ack_record(fx->store, "hv-02", 1, false, "no", 2, err, len), 0);
    assert_int_equal(store_batch_end(fx->store, false, err, len), 0);
    store_close(&fx->store);
    open_store(fx);
    assert_int_equal(store_hosts_list(fx->store, collect_host, &hs, err, len), 0);
    assert_int_equal(hs.n, 1);
    assert_string_equal(hs.line[0], "hv-01 first=1 last=1 v=0");
    assert_int_equal(store_acks_for_version(fx->store, 1, collect_ack, &acks, err, len), 0);
    assert_int_equal(acks.n, 1);
    assert_string_equal(acks.a[0].host_id, "hv-01");
    assert_int_equal(add(fx, "fleet", 200), 1); /* outside a batch again */
}

/* A batch begun inside another joins it: nothing is committed until the outermost ends, and an
 * inner roll-back takes the whole batch with it (the daemon's burst holds the coordinator's own
 * event batches). */
static void
test_batches_nest(void **state)
{
    struct fixture *fx = *state;
    struct hosts hs = {.n = 0};
    char *err = fx->err;
    size_t len = sizeof(fx->err);

    open_store(fx);
    assert_int_equal(store_batch_begin(fx->store, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-01", NULL, 0, 1, 0, err, len), 0);
    assert_int_equal(store_batch_begin(fx->store, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-02", NULL, 0, 1, 0, err, len), 0);
    assert_int_equal(store_batch_end(fx->store, true, err, len), 0);
    assert_int_equal(store_batch_end(fx->store, true, err, len), 0);

    assert_int_equal(store_batch_begin(fx->store, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-03", NULL, 0, 1, 0, err, len), 0);
    assert_int_equal(store_batch_begin(fx->store, err, len), 0);
    assert_int_equal(store_host_upsert(fx->store, "hv-04", NULL, 0, 1, 0, err, len), 0);
    assert_int_equal(store_batch_end(fx->store, false, err, len), 0); /* inner: roll back */
    assert_int_equal(store_batch_end(fx->store, true, err, len), 0);
    store_close(&fx->store);
    open_store(fx);
    assert_int_equal(store_hosts_list(fx->store, collect_host, &hs, err, len), 0);
    if (hs.n != 2)
        fail_msg("want hv-01 and hv-02 kept, hv-03 and hv-04 rolled back: got %zu hosts", hs.n);
    assert_int_equal(add(fx, "fleet", 200), 1); /* outside a batch again */
}

static void
test_survives_reopen(void **state)
{
    struct fixture *fx = *state;
    struct store_policy_entry e;
    struct versions vs = {.n = 0};
    struct hosts hs = {.n = 0};
    struct store_ack a;
    const char *r1[] = {"rack=r1"};

    open_store(fx);
    add(fx, "fleet", 210);
    add(fx, "label:rack=r1", 220);
    add(fx, "host:hv-01", 230);
    assert_int_equal(store_ack_record(fx->store, "hv-01", 3, true, "", 5, fx->err, sizeof(fx->err)),
                     0);
    assert_int_equal(store_host_upsert(fx->store, "hv-01", r1, 1, 5, 3, fx->err, sizeof(fx->err)),
                     0);
    store_close(&fx->store);
    assert_null(fx->store);
    store_close(&fx->store);

    /* The coordinator restarts: nothing lost, and versions go on from where they were. */
    open_store(fx);
    assert_int_equal(
        store_policy_history(fx->store, NULL, collect_version, &vs, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(vs.n, 3);
    expect_for_host(fx, "hv-01", r1, 1, 3, "host:hv-01");
    expect_for_host(fx, "hv-09", r1, 1, 2, "label:rack=r1");
    assert_int_equal(store_policy_get(fx->store, 1, &e, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(e.policy.host_min_unused_kib, MIB(210));
    assert_int_equal(store_ack_for_host(fx->store, "hv-01", &a, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(a.version, 3);
    assert_int_equal(store_hosts_list(fx->store, collect_host, &hs, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(hs.n, 1);
    assert_int_equal(add(fx, "fleet", 240), 4);
    store_close(&fx->store);
}

/* Open must fail with -EIO and a message containing want. */
static void
expect_open_fails(struct fixture *fx, const char *path, const char *want)
{
    struct store *s = NULL;
    int rc = store_open(path, &s, fx->err, sizeof(fx->err));

    if (rc != -EIO || s != NULL || !strstr(fx->err, want))
        fail_msg("store_open(%s): want -EIO and '%s', got %d '%s'", path, want, rc, fx->err);
    print_message("test_store: refused as it should: %s\n", fx->err);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_garbage_and_missing(void **state)
{
    struct fixture *fx = *state;
    char path[192];

    write_file(fx->path, "this is not a database, it only sits where one should be\n"
                         "and it is long enough to hold a header's worth of bytes....\n");
    expect_open_fails(fx, fx->path, "not a database");
    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", fx->dir);
    expect_open_fails(fx, path, "unable to open");
    expect_open_fails(fx, fx->dir, "unable to open"); /* a directory */
    assert_int_equal(store_open("", &fx->store, fx->err, sizeof(fx->err)), -EINVAL);
}

/* Run SQL on a database with SQLite itself, to craft files the store must refuse. */
static void
craft(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("craft: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void
test_foreign_and_future_databases(void **state)
{
    struct fixture *fx = *state;
    char path[192];

    snprintf(path, sizeof(path), "%s/other.db", fx->dir);
    craft(path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)");
    expect_open_fails(fx, path, "not a memsched database");

    open_store(fx);
    store_close(&fx->store);
    craft(fx->path, "UPDATE schema_version SET version = 4");
    expect_open_fails(fx, fx->path, "schema version 4");
}

struct events_seen {
    uint64_t first, last;
    size_t n;
    struct store_event one; /* the first */
};

static int
see_event(const struct store_event *e, void *ctx)
{
    struct events_seen *seen = ctx;

    if (seen->n == 0) {
        seen->first = e->seq;
        seen->one = *e;
    } else if (e->seq <= seen->last) {
        fail_msg("events out of order: %" PRIu64 " after %" PRIu64, e->seq, seen->last);
    }
    seen->last = e->seq;
    seen->n++;
    return 0;
}

static void
add_event(struct fixture *fx, uint64_t seq)
{
    struct store_event e = {
        .seq = seq, .at_ms = 1700000000000 + seq, .kind = 3, .from = 1, .policy_version = 7};

    snprintf(e.host_id, sizeof(e.host_id), "hv-%02" PRIu64, seq % 10);
    snprintf(e.detail, sizeof(e.detail), "detail %" PRIu64, seq);
    if (store_event_add(fx->store, &e, fx->err, sizeof(fx->err)) != 0)
        fail_msg("store_event_add(%" PRIu64 "): %s", seq, fx->err);
}

/* Events are kept across a reopen, oldest first, only the newest STORE_EVENTS_MAX; bad ones
 * are refused. */
static void
test_events(void **state)
{
    struct fixture *fx = *state;
    struct events_seen seen = {0};
    struct store_event bad = {.seq = 1};

    open_store(fx);
    assert_int_equal(store_batch_begin(fx->store, fx->err, sizeof(fx->err)), 0);
    for (uint64_t seq = 1; seq <= STORE_EVENTS_MAX + 100; seq++)
        add_event(fx, seq);
    assert_int_equal(store_batch_end(fx->store, true, fx->err, sizeof(fx->err)), 0);
    store_close(&fx->store);
    open_store(fx);
    assert_int_equal(store_events_list(fx->store, see_event, &seen, fx->err, sizeof(fx->err)), 0);
    if (seen.n != STORE_EVENTS_MAX || seen.first != 101 || seen.last != STORE_EVENTS_MAX + 100)
        fail_msg("events kept: want %d (101..%d), got %zu (%" PRIu64 "..%" PRIu64 ")",
                 STORE_EVENTS_MAX, STORE_EVENTS_MAX + 100, seen.n, seen.first, seen.last);
    assert_int_equal(seen.one.at_ms, 1700000000000 + 101);
    assert_int_equal(seen.one.kind, 3);
    assert_int_equal(seen.one.from, 1);
    assert_int_equal(seen.one.policy_version, 7);
    assert_string_equal(seen.one.host_id, "hv-01");
    assert_string_equal(seen.one.detail, "detail 101");

    snprintf(bad.host_id, sizeof(bad.host_id), "bad host");
    assert_int_equal(store_event_add(fx->store, &bad, fx->err, sizeof(fx->err)), -EINVAL);
    snprintf(bad.host_id, sizeof(bad.host_id), "hv1");
    bad.seq = 0;
    assert_int_equal(store_event_add(fx->store, &bad, fx->err, sizeof(fx->err)), -EINVAL);
}

/* A database of schema 1 (before events were kept) is migrated at open, its policies intact. */
static void
test_schema_1_migrated(void **state)
{
    struct fixture *fx = *state;
    struct store_policy_entry e;
    struct events_seen seen = {0};

    open_store(fx);
    add(fx, "fleet", 200);
    store_close(&fx->store);
    craft(fx->path, "DROP TABLE events; ALTER TABLE policies DROP COLUMN action; UPDATE "
                    "schema_version SET version = 1");
    open_store(fx);
    assert_int_equal(store_policy_get(fx->store, 1, &e, fx->err, sizeof(fx->err)), 0);
    add_event(fx, 1);
    assert_int_equal(store_events_list(fx->store, see_event, &seen, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(seen.n, 1);
    store_close(&fx->store);
    open_store(fx); /* and it stays at the new version */
}

/* A database of schema 2 holds full rows: after the migration they read as "all keys set",
 * with the action "set", and layering works over them. */
static void
test_schema_2_full_rows_migrated(void **state)
{
    struct fixture *fx = *state;
    struct store_policy_entry e;
    const char *gpu[] = {"role=gpu"};

    open_store(fx);
    add(fx, "fleet", 300);
    add(fx, "label:role=gpu", 250);
    store_close(&fx->store);
    craft(fx->path,
          "ALTER TABLE policies DROP COLUMN action; UPDATE schema_version SET version = 2");
    open_store(fx);
    assert_int_equal(store_policy_get(fx->store, 1, &e, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(e.keys, policy_keys_all());
    assert_string_equal(e.action, "set");
    /* the label's full row sets every key: it hides the fleet's, as before layering */
    expect_key(fx, "hv1", gpu, 1, "host_min_unused_mib", "250", "label:role=gpu", 2);
    expect_key(fx, "hv1", gpu, 1, "vm_floor_mib", "256", "label:role=gpu", 2);
    assert_int_equal(add_key(fx, "host:hv1", "max_release_step_mib", "128"), 3);
    expect_key(fx, "hv1", gpu, 1, "max_release_step_mib", "128", "host:hv1", 3);
    expect_key(fx, "hv1", gpu, 1, "host_min_unused_mib", "250", "label:role=gpu", 2);
    store_close(&fx->store);
    open_store(fx); /* and it stays at the new version */
}

static void
test_hand_edited_policy_row(void **state)
{
    struct fixture *fx = *state;
    struct store_policy_entry e;
    struct versions vs = {.n = 0};

    open_store(fx);
    add(fx, "fleet", 200);
    add(fx, "fleet", 300);
    store_close(&fx->store);
    craft(fx->path, "UPDATE policies SET policy = 'vm_min_unused_mib = 500' WHERE version = 2");
    open_store(fx);
    /* The row now sets one key; min 500 above grow target 200 once layered: never handed out */
    assert_int_equal(store_policy_get(fx->store, 2, &e, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(e.keys, policy_key_bit("vm_min_unused_mib"));
    struct store_effective eff;
    assert_int_equal(
        store_policy_for_host(fx->store, "hv-01", NULL, 0, NULL, &eff, fx->err, sizeof(fx->err)),
        -EINVAL);
    assert_non_null(strstr(fx->err, "hv-01"));
    assert_non_null(strstr(fx->err, "vm_min_unused_mib"));
    assert_int_equal(
        store_policy_history(fx->store, NULL, collect_version, &vs, fx->err, sizeof(fx->err)), 0);
    store_close(&fx->store);
    craft(fx->path, "UPDATE policies SET policy = 'vm_min_unused_mib = 0' WHERE version = 2");
    open_store(fx);
    assert_int_equal(store_policy_get(fx->store, 2, &e, fx->err, sizeof(fx->err)), -EIO);
    assert_non_null(strstr(fx->err, "policy v2")); /* out of its bounds: unusable */
    assert_int_equal(store_policy_get(fx->store, 1, &e, fx->err, sizeof(fx->err)), 0);
    store_close(&fx->store);
    craft(fx->path, "UPDATE policies SET policy = 'no_such_key = 1' WHERE version = 1");
    open_store(fx);
    assert_int_equal(store_policy_get(fx->store, 1, &e, fx->err, sizeof(fx->err)), -EIO);
    assert_non_null(strstr(fx->err, "no_such_key"));
}

static void
test_overwritten_pages(void **state)
{
    struct fixture *fx = *state;
    struct versions vs = {.n = 0};
    char junk[4096];
    struct stat st;
    int fd, rc;

    open_store(fx);
    for (int i = 0; i < 200; i++)
        add(fx, i % 2 ? "fleet" : "label:rack=r1", 200 + (uint64_t)i);
    store_close(&fx->store);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_true(st.st_size > 2 * 4096);
    /* Keep the header page, scribble over every other page. */
    memset(junk, 0xa5, sizeof(junk));
    fd = open(fx->path, O_WRONLY);
    assert_true(fd >= 0);
    for (off_t off = 4096; off < st.st_size; off += 4096)
        assert_int_equal(pwrite(fd, junk, sizeof(junk), off), (ssize_t)sizeof(junk));
    close(fd);
    rc = store_open(fx->path, &fx->store, fx->err, sizeof(fx->err));
    if (rc == 0)
        rc = store_policy_history(fx->store, NULL, collect_version, &vs, fx->err, sizeof(fx->err));
    if (rc != -EIO)
        fail_msg("want -EIO from open or a read of a scribbled file, got %d '%s'", rc, fx->err);
    print_message("test_store: scribbled file: %s\n", fx->err);
}

static void
test_read_only(void **state)
{
    struct fixture *fx = *state;
    const struct passwd *nobody = NULL;

    open_store(fx);
    add(fx, "fleet", 200);
    store_close(&fx->store);
    assert_int_equal(chmod(fx->path, 0444), 0);
    /* root writes through file modes; check as nobody, then come back */
    if (geteuid() == 0) {
        nobody = getpwnam("nobody");
        if (!nobody) {
            const char *ci = getenv("CI");
            if (ci && strcmp(ci, "true") == 0)
                fail_msg("no user nobody to check file modes as (CI=true: a missing "
                         "prerequisite fails)");
            print_message("SKIP: no user nobody to check file modes as\n");
            skip();
        }
        assert_int_equal(chmod(fx->dir, 0755), 0);
        assert_int_equal(seteuid(nobody->pw_uid), 0);
    }
    struct store *s = NULL;
    int rc = store_open(fx->path, &s, fx->err, sizeof(fx->err));
    if (nobody)
        assert_int_equal(seteuid(0), 0);
    if (rc != -EIO || s != NULL || !strstr(fx->err, "writing"))
        fail_msg("read-only file: want -EIO naming it, got %d '%s'", rc, fx->err);
    assert_non_null(strstr(fx->err, fx->path));
    print_message("test_store: refused as it should: %s\n", fx->err);
}

/* The database and its WAL are the operator's alone: 0600 from the start, whatever the umask. */
static void
test_file_modes(void **state)
{
    struct fixture *fx = *state;
    char wal[160];
    struct stat st;
    uint64_t v = 0;
    struct policy p;

    mode_t old = umask(022);
    open_store(fx);
    umask(old);
    policy_init_defaults(&p);
    assert_int_equal(store_policy_add(fx->store, "fleet", &p, policy_keys_all(), "set", "bob", "",
                                      1, &v, fx->err, sizeof(fx->err)),
                     0);
    assert_int_equal(stat(fx->path, &st), 0);
    if ((st.st_mode & 0777) != 0600)
        fail_msg("database mode %o, want 600", (unsigned)(st.st_mode & 0777));
    snprintf(wal, sizeof(wal), "%s-wal", fx->path);
    assert_int_equal(stat(wal, &st), 0);
    if ((st.st_mode & 0777) != 0600)
        fail_msg("WAL mode %o, want 600", (unsigned)(st.st_mode & 0777));
}

static void
test_memory_database(void **state)
{
    struct fixture *fx = *state;
    struct store *s = NULL;
    uint64_t v = 0;
    struct policy p;

    assert_int_equal(store_open(":memory:", &s, fx->err, sizeof(fx->err)), 0);
    policy_init_defaults(&p);
    assert_int_equal(store_policy_add(s, "fleet", &p, policy_keys_all(), "set", "bob", "", 1, &v,
                                      fx->err, sizeof(fx->err)),
                     0);
    assert_int_equal(v, 1);
    store_close(&s);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_add_get_history),
        T(test_history),
        T(test_invalid_refused_and_not_stored),
        T(test_scope_precedence),
        T(test_layers_merge_per_key),
        T(test_layers_label_conflict_and_delete),
        T(test_schema_2_full_rows_migrated),
        T(test_layers_loaded_match_queried),
        T(test_acks),
        T(test_hosts_upsert),
        T(test_batches),
        T(test_batches_nest),
        T(test_survives_reopen),
        T(test_garbage_and_missing),
        T(test_foreign_and_future_databases),
        T(test_events),
        T(test_schema_1_migrated),
        T(test_hand_edited_policy_row),
        T(test_overwritten_pages),
        T(test_read_only),
        T(test_memory_database),
        T(test_file_modes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
