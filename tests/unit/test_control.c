/*
 * test_control.c - the coordinator's control answers (coordinator/control.c) on a small fleet
 * and a real SQLite store in a temporary directory.
 *
 * Every command in table and JSON form: tables are checked for their lines and alignment, JSON
 * is parsed back with jansson and checked for counts, fields and values. policy-set: a valid
 * change is stored with a higher version, announced through on_policy_added and shown in the
 * history with its author and reason; an invalid one is refused naming the field and leaves
 * nothing behind; unknown keys and options and a missing --reason are usage errors. policy-show
 * shows each host's applied or refused ack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "fleet.h"
#include "history.h"
#include "store.h"
#include "test_util.h"
#include "wire.h"

#define NOW_MS      6000
#define NOW_WALL_MS UINT64_C(1700000000000) /* 2023-11-14 22:13:20Z */
#define ADDED_MAX   8
#define AUTHOR      "alice"
#define END         NULL

struct fx {
    char dir[64];
    char path[128];
    struct fleet *fleet;
    struct store *store;
    struct control_context cc;
    uint64_t added[ADDED_MAX]; /* versions given to on_policy_added */
    char added_scope[ADDED_MAX][WIRE_SCOPE_MAX];
    size_t n_added;
    uint64_t report_seq; /* reports' sequence numbers: each one newer */
    char author[WIRE_AUTHOR_MAX];
    char *body;
    json_t *json;
};

static void
policy_added(void *ctx, uint64_t version, const char *scope)
{
    struct fx *fx = ctx;

    assert_true(fx->n_added < ADDED_MAX);
    fx->added[fx->n_added] = version;
    snprintf(fx->added_scope[fx->n_added], WIRE_SCOPE_MAX, "%s", scope);
    fx->n_added++;
}

/* ---- building the fleet ---- */

struct rep {
    struct wire_report r;
    struct wire_vm vms[4];
    struct wire_decision decisions[4];
};

static void
hello(struct fx *fx, const char *id, const char *rack, uint64_t now_ms)
{
    struct wire_hello h;

    memset(&h, 0, sizeof(h));
    strcpy(h.agent_version, "0.1.0");
    strcpy(h.labels[0].key, "rack");
    snprintf(h.labels[0].value, sizeof(h.labels[0].value), "%s", rack);
    h.n_labels = 1;
    assert_int_equal(fleet_hello(fx->fleet, id, &h, now_ms), 0);
}

static struct wire_vm *
rep_vm(struct rep *rep, unsigned n, const char *name, uint64_t actual_kib)
{
    struct wire_vm *vm = &rep->vms[rep->r.n_vms++];

    snprintf(vm->uuid, sizeof(vm->uuid), "00000000-0000-4000-8000-%012x", n);
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    vm->state = SCHED_VM_RUNNING;
    vm->max_kib = MIB(8192);
    vm->actual_kib = actual_kib;
    vm->managed = true;
    return vm;
}

static void
report(struct fx *fx, const char *id, struct rep *rep, uint64_t now_ms)
{
    rep->r.vms = rep->vms;
    rep->r.decisions = rep->decisions;
    assert_int_equal(fleet_report(fx->fleet, id, ++fx->report_seq, &rep->r, now_ms), 0);
}

/* h1 (rack r1): web (2 GiB, 50 MiB unused: under pressure) and db (4 GiB, 500 MiB unused);
 * h2 (rack r2): cache (1 GiB, no stats); h3 (rack r1): said hello, never reported, now stale. */
static void
build_fleet(struct fx *fx)
{
    struct rep r1, r2;
    struct wire_vm *vm;

    hello(fx, "h1", "r1", 1000);
    hello(fx, "h2", "r2", 1000);
    hello(fx, "h3", "r1", 1000);
    memset(&r1, 0, sizeof(r1));
    r1.r.host_total_kib = MIB(16384);
    r1.r.host_available_kib = MIB(8192);
    vm = rep_vm(&r1, 1, "web", MIB(2048));
    vm->has_unused = true;
    vm->unused_kib = MIB(50);
    vm = rep_vm(&r1, 2, "db", MIB(4096));
    vm->has_unused = true;
    vm->unused_kib = MIB(500);
    vm->min_kib = MIB(1024); /* the operator's overrides */
    vm->weight = 300;
    strcpy(r1.decisions[0].uuid, r1.vms[0].uuid);
    r1.decisions[0].reason = SCHED_REASON_GROW;
    r1.decisions[0].old_target_kib = MIB(1024);
    r1.decisions[0].new_target_kib = MIB(2048);
    strcpy(r1.decisions[0].counterpart, WIRE_COUNTERPART_HOST);
    r1.decisions[0].signal_kib = MIB(50);
    r1.decisions[0].lookahead_kib = MIB(20);
    r1.decisions[0].need_kib = MIB(1024);
    r1.decisions[0].host_kib = MIB(1024);
    r1.r.n_decisions = 1;
    r1.r.has_policy = true; /* the defaults: vm_min_unused 100 MiB, signal usable */
    policy_init_defaults(&r1.r.policy);
    report(fx, "h1", &r1, 5000);
    memset(&r2, 0, sizeof(r2));
    r2.r.host_total_kib = MIB(32768);
    r2.r.host_available_kib = MIB(20480);
    vm = rep_vm(&r2, 3, "cache", MIB(1024));
    vm->skip_reason = SCHED_REASON_NO_BALLOON; /* the agent leaves it alone */
    report(fx, "h2", &r2, 5000);
    assert_int_equal(fleet_tick(fx->fleet, NOW_MS, NULL, NULL), 1); /* h3 goes stale */
}

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    char err[STORE_ERR_MAX];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_control.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
    if (store_open(fx->path, &fx->store, err, sizeof(err)) < 0)
        fail_msg("store_open(%s): %s", fx->path, err);
    fx->fleet = fleet_new(NULL);
    build_fleet(fx);
    fx->cc = (struct control_context){
        .fleet = fx->fleet,
        .store = fx->store,
        .now_ms = NOW_MS,
        .now_wall_ms = NOW_WALL_MS,
        .pressure_unused_kib = MIB(100),
        .on_policy_added = policy_added,
        .ctx = fx,
    };
    strcpy(fx->author, AUTHOR);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[160];

    store_close(&fx->store);
    fleet_destroy(&fx->fleet);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", fx->path, suffixes[i]);
        unlink(path);
    }
    rmdir(fx->dir);
    free(fx->body);
    json_decref(fx->json);
    free(fx);
    return 0;
}

/* ---- asking ---- */

/* control_handle(command, args...) with the arguments up to END; the body stays in fx->body. */
static enum control_status
vrun(struct fx *fx, bool json, const char *command, va_list ap)
{
    struct wire_control_request req;
    const char *arg;

    memset(&req, 0, sizeof(req));
    snprintf(req.command, sizeof(req.command), "%s", command);
    while ((arg = va_arg(ap, const char *)) != NULL) {
        assert_true(req.n_args < WIRE_ARGS_MAX);
        snprintf(req.args[req.n_args++], WIRE_ARG_MAX, "%s", arg);
    }
    req.json = json;
    snprintf(req.author, sizeof(req.author), "%s", fx->author);
    free(fx->body);
    fx->body = NULL;
    enum control_status st = control_handle(&fx->cc, &req, &fx->body);
    assert_non_null(fx->body);
    return st;
}

static enum control_status
run(struct fx *fx, const char *command, ...)
{
    va_list ap;

    va_start(ap, command);
    enum control_status st = vrun(fx, false, command, ap);
    va_end(ap);
    return st;
}

/* Run in JSON, want status 0 and a document: fx->json (borrowed by the caller). */
static json_t *
run_json(struct fx *fx, const char *command, ...)
{
    va_list ap;
    json_error_t jerr;

    va_start(ap, command);
    enum control_status st = vrun(fx, true, command, ap);
    va_end(ap);
    if (st != CONTROL_OK)
        fail_msg("%s: want status 0, got %d: %s", command, st, fx->body);
    json_decref(fx->json);
    fx->json = json_loads(fx->body, 0, &jerr);
    if (!fx->json)
        fail_msg("%s: not JSON (%s at %d): %s", command, jerr.text, jerr.position, fx->body);
    assert_true(json_is_object(fx->json));
    return fx->json;
}

static void
want_status(struct fx *fx, enum control_status want, enum control_status got)
{
    if (got != want)
        fail_msg("want status %d, got %d: %s", want, got, fx->body);
}

static void
want_text(const struct fx *fx, const char *needle)
{
    if (!strstr(fx->body, needle))
        fail_msg("want '%s' in:\n%s", needle, fx->body);
}

static void
want_no_text(const struct fx *fx, const char *needle)
{
    if (strstr(fx->body, needle))
        fail_msg("want no '%s' in:\n%s", needle, fx->body);
}

static json_t *
get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (!v)
        fail_msg("want key '%s' in %s", key, json_dumps(obj, JSON_COMPACT));
    return v;
}

static json_int_t
get_int(json_t *obj, const char *key)
{
    json_t *v = get(obj, key);

    if (!json_is_integer(v))
        fail_msg("want '%s' a number in %s", key, json_dumps(obj, JSON_COMPACT));
    return json_integer_value(v);
}

static const char *
get_str(json_t *obj, const char *key)
{
    json_t *v = get(obj, key);

    if (!json_is_string(v))
        fail_msg("want '%s' a string in %s", key, json_dumps(obj, JSON_COMPACT));
    return json_string_value(v);
}

static json_t *
get_array(json_t *obj, const char *key, size_t want_len)
{
    json_t *v = get(obj, key);

    assert_true(json_is_array(v));
    if (json_array_size(v) != want_len)
        fail_msg("want %zu in '%s', got %zu: %s", want_len, key, json_array_size(v),
                 json_dumps(obj, JSON_COMPACT));
    return v;
}

/* The table line that starts with first (a row's first cell). */
static const char *
line_of(const struct fx *fx, const char *first)
{
    size_t n = strlen(first);

    for (const char *l = fx->body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, first, n) == 0 && l[n] == ' ')
            return l;
    }
    fail_msg("want a line starting with '%s' in:\n%s", first, fx->body);
    return NULL;
}

/* The start of the line that holds at (a header word). */
static const char *
line_start(const struct fx *fx, const char *at)
{
    if (!at)
        fail_msg("want a header line in:\n%s", fx->body);
    while (at > fx->body && at[-1] != '\n')
        at--;
    return at;
}

/* The column under header word col starts, on the row of first, with want. */
static void
want_cell(const struct fx *fx, const char *first, const char *col, const char *want)
{
    const char *at = strstr(fx->body, col), *header = line_start(fx, at);
    const char *row = line_of(fx, first);

    if (strncmp(row + (at - header), want, strlen(want)) != 0)
        fail_msg("want '%s' under %s on the %s row:\n%s", want, col, first, fx->body);
}

/* The column under header word col ends, on the row of first, with want (right-aligned). */
static void
want_cell_right(const struct fx *fx, const char *first, const char *col, const char *want)
{
    const char *at = strstr(fx->body, col), *header = line_start(fx, at);
    const char *row = line_of(fx, first);
    size_t end = (size_t)(at - header) + strlen(col);

    if (end < strlen(want) || strncmp(row + end - strlen(want), want, strlen(want)) != 0)
        fail_msg("want '%s' ending under %s on the %s row:\n%s", want, col, first, fx->body);
}

static uint64_t
set_policy(struct fx *fx, const char *scope, const char *reason, const char *kv)
{
    json_t *root = run_json(fx, "policy-set", "--scope", scope, "--reason", reason, kv, END);

    return (uint64_t)get_int(get(root, "policy"), "version");
}

/* ---- status, hosts, vms, events ---- */

static void
test_status(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK, run(fx, "status", END));
    want_text(fx, "3: 2 fresh, 1 stale, 0 down (2 reporting)");
    want_text(fx, "3: 1 under pressure (unused below 100.0 MiB");
    want_text(fx, "49152.0 MiB total, 28672.0 MiB available");
    want_text(fx, "7168.0 MiB actual, 24576.0 MiB max");
    want_text(fx, "none stored");
    assert_int_equal(line_of(fx, "overcommit")[15], '0'); /* values aligned in one column */
    assert_int_equal(line_of(fx, "vms")[15], '3');

    json_t *s = get(run_json(fx, "status", END), "status");
    assert_int_equal(get_int(get(s, "hosts"), "total"), 3);
    assert_int_equal(get_int(get(s, "hosts"), "fresh"), 2);
    assert_int_equal(get_int(get(s, "hosts"), "stale"), 1);
    assert_int_equal(get_int(get(s, "hosts"), "down"), 0);
    assert_int_equal(get_int(get(s, "vms"), "total"), 3);
    assert_int_equal(get_int(get(s, "vms"), "under_pressure"), 1);
    assert_int_equal(get_int(get(s, "memory"), "host_total_kib"), MIB(49152));
    assert_int_equal(get_int(get(s, "memory"), "vm_actual_kib"), MIB(7168));
    assert_true(json_is_real(get(s, "overcommit")));
    assert_int_equal(get_int(s, "decisions_last_minute"), 1);
    assert_int_equal(get_int(s, "last_event_seq"), 4);
    assert_true(json_is_null(get(s, "fleet_policy")));

    set_policy(fx, "fleet", "floors up", "vm_floor_mib=512");
    want_status(fx, CONTROL_OK, run(fx, "status", END));
    want_text(fx, "v1 fleet, by alice at 2023-11-14 22:13:20Z: floors up");
    want_text(fx, "vm_floor_mib");
    s = get(run_json(fx, "status", END), "status");
    assert_int_equal(get_int(get(s, "fleet_policy"), "version"), 1);
    assert_int_equal(get_int(get(get(s, "fleet_policy"), "policy"), "vm_floor_kib"), MIB(512));

    want_status(fx, CONTROL_USAGE, run(fx, "status", "--verbose", END));
    want_text(fx, "unknown option '--verbose'");
    want_text(fx, "usage: status");
    want_status(fx, CONTROL_USAGE, run(fx, "status", "now", END));
    want_text(fx, "unexpected argument 'now'");
}

static void
test_hosts(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK, run(fx, "hosts", END));
    want_text(fx, "HOST  LIVENESS  LAST SEEN");
    want_cell(fx, "h1", "LIVENESS", "fresh");
    want_cell(fx, "h3", "LIVENESS", "stale");
    want_cell(fx, "h1", "LAST SEEN", "1s ago");
    want_cell(fx, "h3", "LAST SEEN", "5s ago");
    want_cell_right(fx, "h1", "VMS", "2");
    want_cell_right(fx, "h2", "TOTAL MiB", "32768.0");
    want_cell_right(fx, "h1", "AVAIL MiB", "8192.0");
    want_cell_right(fx, "h3", "TOTAL MiB", "-");
    want_cell(fx, "h1", "POLICY", "none");

    json_t *hosts = get_array(run_json(fx, "hosts", END), "hosts", 3);
    json_t *h1 = json_array_get(hosts, 0), *h3 = json_array_get(hosts, 2);
    assert_string_equal(get_str(h1, "host_id"), "h1");
    assert_string_equal(get_str(h1, "liveness"), "fresh");
    assert_int_equal(get_int(h1, "vm_count"), 2);
    assert_int_equal(get_int(h1, "host_total_kib"), MIB(16384));
    assert_int_equal(get_int(h1, "last_seen_age_ms"), 1000);
    assert_string_equal(json_string_value(json_array_get(get(h1, "labels"), 0)), "rack=r1");
    assert_true(json_is_null(get(h1, "last_ack")));
    assert_string_equal(get_str(h3, "liveness"), "stale");
    assert_true(json_is_false(get(h3, "has_report")));
    assert_true(json_is_null(get(h3, "host_total_kib")));
}

static void
test_hosts_sort_filter_unit(void **state)
{
    struct fx *fx = *state;
    json_t *hosts;

    want_status(fx, CONTROL_OK, run(fx, "hosts", END));
    want_cell(fx, "h2", "LABELS", "rack=r2");
    hosts = get_array(run_json(fx, "hosts", "--sort", "liveness", END), "hosts", 3);
    assert_string_equal(get_str(json_array_get(hosts, 0), "host_id"), "h3"); /* stale first */
    hosts = get_array(run_json(fx, "hosts", "--sort", "available", END), "hosts", 3);
    assert_string_equal(get_str(json_array_get(hosts, 0), "host_id"), "h1"); /* 8 GiB < 20 */
    assert_string_equal(get_str(json_array_get(hosts, 2), "host_id"), "h3"); /* unknown last */
    hosts = get_array(run_json(fx, "hosts", "--filter", "label:rack=r1", END), "hosts", 2);
    assert_string_equal(get_str(json_array_get(hosts, 1), "host_id"), "h3");
    want_status(fx, CONTROL_OK, run(fx, "hosts", "--filter", "label:rack=r9", END));
    want_text(fx, "no host matches");
    want_status(fx, CONTROL_OK, run(fx, "hosts", "--unit", "GiB", END));
    want_cell_right(fx, "h2", "TOTAL GiB", "32.0");
    want_no_text(fx, "MiB");
    want_status(fx, CONTROL_OK, run(fx, "vms", "--unit", "gib", END));
    want_cell_right(fx, "h1", "ACTUAL GiB", "2.0");
    want_status(fx, CONTROL_USAGE, run(fx, "hosts", "--unit", "TiB", END));
    want_text(fx, "--unit wants MiB or GiB");
    want_status(fx, CONTROL_USAGE, run(fx, "hosts", "--sort", "age", END));
    want_status(fx, CONTROL_USAGE, run(fx, "hosts", "--filter", "rack", END));
}

/* Pages of hosts in id order: --limit, and --after the last id of the page before. */
static void
test_hosts_pages(void **state)
{
    struct fx *fx = *state;
    json_t *root = run_json(fx, "hosts", "--limit", "2", END);
    json_t *hosts = get_array(root, "hosts", 2);

    assert_string_equal(get_str(json_array_get(hosts, 1), "host_id"), "h2");
    assert_int_equal(get_int(root, "total"), 3);
    assert_string_equal(get_str(root, "next_after"), "h2");
    root = run_json(fx, "hosts", "--limit", "2", "--after", "h2", END);
    hosts = get_array(root, "hosts", 1);
    assert_string_equal(get_str(json_array_get(hosts, 0), "host_id"), "h3");
    assert_true(json_is_null(json_object_get(root, "next_after"))); /* the last page */
    root = run_json(fx, "hosts", "--after", "h1", "--filter", "label:rack=r1", END);
    assert_string_equal(get_str(json_array_get(get_array(root, "hosts", 1), 0), "host_id"), "h3");
    want_status(fx, CONTROL_OK, run(fx, "hosts", "--limit", "1", END));
    want_text(fx, "(1 of 3 hosts shown: --after h1 for the next page)");
    want_status(fx, CONTROL_USAGE, run(fx, "hosts", "--sort", "vms", "--after", "h1", END));
    want_text(fx, "--after pages in host order");
    want_status(fx, CONTROL_USAGE, run(fx, "hosts", "--limit", "0", END));
}

/* Pages of VMs in host order: --after the HOST/UUID the page before ended with. */
static void
test_vms_pages(void **state)
{
    struct fx *fx = *state;
    json_t *root = run_json(fx, "vms", "--limit", "2", END);
    json_t *vms = get_array(root, "vms", 2);

    assert_string_equal(get_str(json_array_get(vms, 1), "name"), "db");
    assert_int_equal(get_int(root, "total"), 3);
    assert_string_equal(get_str(root, "next_after"), "h1/00000000-0000-4000-8000-000000000002");
    root = run_json(fx, "vms", "--limit", "2", "--after", "h1/00000000-0000-4000-8000-000000000002",
                    END);
    vms = get_array(root, "vms", 1);
    assert_string_equal(get_str(json_array_get(vms, 0), "name"), "cache");
    assert_true(json_is_null(json_object_get(root, "next_after")));
    /* one host's VMs page the same way */
    root = run_json(fx, "vms", "--host", "h1", "--limit", "1", END);
    assert_string_equal(get_str(root, "next_after"), "h1/00000000-0000-4000-8000-000000000001");
    want_status(fx, CONTROL_OK, run(fx, "vms", "--limit", "1", END));
    want_text(fx, "(1 of 3 VMs shown: --after h1/00000000-0000-4000-8000-000000000001 for the "
                  "next page)");
    want_status(fx, CONTROL_USAGE, run(fx, "vms", "--sort", "name", "--after", "h1/x", END));
    want_text(fx, "--after pages in host order");
    want_status(fx, CONTROL_USAGE, run(fx, "vms", "--after", "h1", END));
    want_text(fx, "--after wants HOST/UUID");
}

static void
test_vms(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK, run(fx, "vms", END));
    want_cell(fx, "h1", "NAME", "web"); /* the first h1 row: web has the smaller uuid */
    want_cell_right(fx, "h2", "ACTUAL MiB", "1024.0");
    want_cell_right(fx, "h2", "UNUSED MiB", "-");
    want_text(fx, "min 1024 w 300");
    want_text(fx, "grow");
    want_text(fx, "00000000-0000-4000-8000-000000000003");
    want_no_text(fx, "shown");

    json_t *root = run_json(fx, "vms", END);
    json_t *vms = get_array(root, "vms", 3), *web = json_array_get(vms, 0);
    assert_int_equal(get_int(root, "total"), 3);
    assert_string_equal(get_str(web, "name"), "web");
    assert_string_equal(get_str(web, "host_id"), "h1");
    assert_int_equal(get_int(web, "actual_kib"), MIB(2048));
    assert_int_equal(get_int(web, "unused_kib"), MIB(50));
    assert_string_equal(get_str(web, "last_decision"), "grow");
    assert_true(json_is_null(get(json_array_get(vms, 2), "unused_kib")));
    assert_true(json_is_null(get(web, "min_kib")));
    json_t *db = json_array_get(vms, 1);
    assert_string_equal(get_str(db, "name"), "db");
    assert_int_equal(get_int(db, "min_kib"), MIB(1024));
    assert_true(json_is_null(get(db, "cap_kib")));
    assert_int_equal(get_int(db, "weight"), 300);
    assert_true(json_is_null(get(db, "skip_reason")));
    assert_string_equal(get_str(json_array_get(vms, 2), "skip_reason"), "no_balloon");

    vms = get_array(run_json(fx, "vms", "--sort", "unused", END), "vms", 3);
    assert_string_equal(get_str(json_array_get(vms, 0), "name"), "web");
    assert_string_equal(get_str(json_array_get(vms, 2), "name"), "cache"); /* no stats: last */
    vms = get_array(run_json(fx, "vms", "--sort=actual", END), "vms", 3);
    assert_string_equal(get_str(json_array_get(vms, 0), "name"), "db");
    vms = get_array(run_json(fx, "vms", "--host", "h1", "--sort", "name", END), "vms", 2);
    assert_string_equal(get_str(json_array_get(vms, 0), "name"), "db");
    root = run_json(fx, "vms", "--limit", "1", END);
    get_array(root, "vms", 1);
    assert_int_equal(get_int(root, "total"), 3);
    want_status(fx, CONTROL_OK, run(fx, "vms", "--host", "h1", "--limit", "1", END));
    want_text(fx, "(1 of 2 VMs shown");

    want_status(fx, CONTROL_OK, run(fx, "vms", "--host", "h2", END));
    want_cell(fx, "h2", "FLAGS", "skip:no_balloon");
    want_status(fx, CONTROL_NOT_FOUND, run(fx, "vms", "--host", "nope", END));
    want_text(fx, "nope");
    want_status(fx, CONTROL_USAGE, run(fx, "vms", "--sort", "size", END));
    want_text(fx, "host, name, actual or unused");
    want_status(fx, CONTROL_USAGE, run(fx, "vms", "--limit", "0", END));
    want_status(fx, CONTROL_USAGE, run(fx, "vms", "--limit", "12x", END));
    want_status(fx, CONTROL_USAGE, run(fx, "vms", "--host", END));
    want_text(fx, "missing value for '--host'");
    want_status(fx, CONTROL_USAGE, run(fx, "vms", "--colour", "red", END));
    want_text(fx, "unknown option '--colour'");
    want_text(fx, "usage: vms [--host H] [--sort host|name|actual|unused] [--limit N]");
}

static void
test_events(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK, run(fx, "events", END));
    want_text(fx, "SEQ  WHEN");
    want_text(fx, "joined");
    want_text(fx, "agent 0.1.0, holds policy v0");
    want_text(fx, "fresh -> stale");

    json_t *root = run_json(fx, "events", END);
    json_t *events = get_array(root, "events", 4), *last = json_array_get(events, 3);
    assert_int_equal(get_int(root, "last_seq"), 4);
    assert_int_equal(get_int(json_array_get(events, 0), "seq"), 1);
    assert_string_equal(get_str(json_array_get(events, 0), "kind"), "joined");
    assert_string_equal(get_str(last, "kind"), "stale");
    assert_string_equal(get_str(last, "host_id"), "h3");
    assert_string_equal(get_str(last, "from"), "fresh");
    assert_int_equal(get_int(last, "age_ms"), 0);
    assert_int_equal(get_int(last, "at_wall_ms"), NOW_WALL_MS);

    events = get_array(run_json(fx, "events", "--since", "3", END), "events", 1);
    assert_int_equal(get_int(json_array_get(events, 0), "seq"), 4);
    events = get_array(run_json(fx, "events", "--limit", "2", END), "events", 2);
    assert_int_equal(get_int(json_array_get(events, 0), "seq"), 3); /* the newest two */
    events = get_array(run_json(fx, "events", "--since", "0", "--limit", "2", END), "events", 2);
    assert_int_equal(get_int(json_array_get(events, 0), "seq"), 1); /* the first two after 0 */
    get_array(run_json(fx, "events", "--since", "4", END), "events", 0);
    want_status(fx, CONTROL_USAGE, run(fx, "events", "--since", "-1", END));
}

/* why: the VM's decisions with the signal, the threshold and the policy behind each. */
static void
test_why(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK, run(fx, "why", "--host", "h1", "--vm", "web", END));
    want_text(fx, "web on h1 (00000000-0000-4000-8000-000000000001): balloon 2048.0 MiB");
    want_text(fx, "thresholds (policy none, as the agent reported them): demand signal usable; "
                  "needs below 100 MiB");
    want_text(fx, "grow      1024.0 -> 2048.0  host  none");
    want_text(fx, "usable 50 - look-ahead 20 = 30 < 100 (vm_min_unused): asked 1024 MiB");
    /* by uuid too; a VM with no decision says so */
    want_status(
        fx, CONTROL_OK,
        run(fx, "why", "--host", "h1", "--vm", "00000000-0000-4000-8000-000000000001", END));
    want_text(fx, "asked 1024 MiB");
    want_status(fx, CONTROL_OK, run(fx, "why", "--host", "h1", "--vm", "db", END));
    want_text(fx, "no decision about it among the host's last 1");
    /* a host that never sent thresholds (an older agent) */
    want_status(fx, CONTROL_OK, run(fx, "why", "--host", "h2", "--vm", "cache", END));
    want_text(fx, "thresholds: not reported by this agent");

    json_t *root = run_json(fx, "why", "--host", "h1", "--vm", "web", END);
    json_t *d = json_array_get(get_array(root, "decisions", 1), 0);
    assert_string_equal(get_str(d, "reason"), "grow");
    assert_string_equal(get_str(d, "counterpart"), "host");
    assert_int_equal(get_int(d, "signal_mib"), 50);
    assert_int_equal(get_int(d, "lookahead_mib"), 20);
    assert_int_equal(get_int(d, "need_mib"), 1024);
    assert_int_equal(get_int(d, "from_or_to_host_mib"), 1024);
    assert_int_equal(get_int(d, "policy_version"), 0);
    assert_string_equal(get_str(json_object_get(root, "vm"), "name"), "web");
    assert_true(json_is_object(json_object_get(root, "policy_in_force")));

    want_status(fx, CONTROL_NOT_FOUND, run(fx, "why", "--host", "h1", "--vm", "nope", END));
    want_status(fx, CONTROL_NOT_FOUND, run(fx, "why", "--host", "hx", "--vm", "web", END));
    want_status(fx, CONTROL_USAGE, run(fx, "why", "--host", "h1", END));
}

/* history: the host's and its VMs' points on the wall clock, and its decisions marked. */
static void
test_history(void **state)
{
    struct fx *fx = *state;
    struct history_opts o = {
        .fine_step_s = 1, .fine_span_s = 60, .coarse_step_s = 60, .coarse_span_s = 600};
    struct history *h = history_new(&o);
    struct fleet_host_info info;

    want_status(fx, CONTROL_NOT_FOUND, run(fx, "history", "--host", "h1", END));
    want_text(fx, "keeps none (history_max_mib = 0)");
    assert_int_equal(fleet_host_get(fx->fleet, "h1", &info), 0);
    history_record(h, &info, 5000);
    history_record(h, &info, NOW_MS);
    fx->cc.history = h;

    json_t *root = run_json(fx, "history", "--host", "h1", END);
    json_t *host = get(root, "host");
    json_t *t = get_array(host, "t", 2);
    assert_int_equal(json_integer_value(json_array_get(t, 0)), NOW_WALL_MS - 1000);
    assert_int_equal(json_integer_value(json_array_get(t, 1)), NOW_WALL_MS);
    assert_int_equal(json_integer_value(json_array_get(get_array(host, "balloons_kib", 2), 1)),
                     MIB(2048 + 4096));
    json_t *vms = get_array(root, "vms", 2);
    json_t *web = json_array_get(vms, 0);
    assert_string_equal(get_str(web, "domain"), "web");
    assert_int_equal(json_integer_value(json_array_get(get_array(web, "actual_kib", 2), 0)),
                     MIB(2048));
    json_t *d = json_array_get(get_array(root, "decisions", 1), 0);
    assert_string_equal(get_str(d, "domain"), "web");
    assert_string_equal(get_str(d, "reason"), "grow");
    assert_int_equal(get_int(get(root, "resolution"), "fine_step_s"), 1);
    /* one VM; the table */
    get_array(run_json(fx, "history", "--host", "h1", "--vm", "db", END), "vms", 1);
    want_status(fx, CONTROL_OK, run(fx, "history", "--host", "h1", END));
    want_text(fx, "history of h1: every 1 s for 60 slots, then every 60 s for 10");
    want_text(fx, "host available");
    want_cell_right(fx, "web", "POINTS", "2");
    want_cell(fx, "web", "RANGE", "2048..2048");
    want_cell(fx, "web", "ALSO", "unused 50..50");

    want_status(fx, CONTROL_NOT_FOUND, run(fx, "history", "--host", "hx", END));
    want_status(fx, CONTROL_NOT_FOUND, run(fx, "history", "--host", "h1", "--vm", "nope", END));
    want_status(fx, CONTROL_USAGE, run(fx, "history", END));
    fx->cc.history = NULL;
    history_destroy(&h);
}

/* Rows from a stale or down host say so, and a down host's numbers leave the fleet's sums. */
static void
test_stale_rows(void **state)
{
    struct fx *fx = *state;
    struct rep r1;

    fx->cc.now_ms = 60000;
    fleet_tick(fx->fleet, fx->cc.now_ms, NULL, NULL); /* every host down */
    want_status(fx, CONTROL_OK, run(fx, "status", END));
    want_text(fx, "3: 0 fresh, 0 stale, 3 down (0 reporting)");
    want_text(fx, "0.0 MiB total");
    want_status(fx, CONTROL_OK, run(fx, "vms", END));
    want_cell(fx, "h2", "FLAGS", "down");
    json_t *web = json_array_get(get_array(run_json(fx, "vms", END), "vms", 3), 0);
    assert_true(json_is_true(get(web, "stale")));
    assert_string_equal(get_str(web, "host_liveness"), "down");
    assert_int_equal(get_int(web, "host_last_seen_age_ms"), 55000);
    json_t *h1 = json_array_get(get_array(run_json(fx, "hosts", END), "hosts", 3), 0);
    assert_true(json_is_true(get(h1, "stale")));

    memset(&r1, 0, sizeof(r1));
    r1.r.host_total_kib = MIB(16384);
    r1.r.host_available_kib = MIB(8192);
    rep_vm(&r1, 1, "web", MIB(2048));
    report(fx, "h1", &r1, fx->cc.now_ms);
    fleet_tick(fx->fleet, fx->cc.now_ms, NULL, NULL); /* h1 back */
    want_status(fx, CONTROL_OK, run(fx, "status", END));
    want_text(fx, "3: 1 fresh, 0 stale, 2 down (1 reporting)");
    want_text(fx, "16384.0 MiB total");
    want_status(fx, CONTROL_OK, run(fx, "vms", END));
    want_cell(fx, "h1", "FLAGS", "-");
    want_cell(fx, "h2", "FLAGS", "down");
    web = json_array_get(get_array(run_json(fx, "vms", END), "vms", 2), 0);
    assert_true(json_is_false(get(web, "stale")));
}

/* After a coordinator restart the fleet has seen no ack yet: hosts shows the stored one, the
 * one policy-show shows (issue 15: ACK was "-" while policy show said "v4 applied"). */
static void
test_hosts_ack_after_restart(void **state)
{
    struct fx *fx = *state;
    char err[STORE_ERR_MAX];

    assert_int_equal(store_ack_record(fx->store, "h1", 4, true, "", NOW_WALL_MS, err, sizeof(err)),
                     0);
    assert_int_equal(
        store_ack_record(fx->store, "h2", 4, false, "too low", NOW_WALL_MS, err, sizeof(err)), 0);
    want_status(fx, CONTROL_OK, run(fx, "hosts", END));
    want_cell(fx, "h1", "ACK", "v4 applied");
    want_cell(fx, "h2", "ACK", "v4 refused");
    want_cell(fx, "h3", "ACK", "-");
    json_t *hosts = get_array(run_json(fx, "hosts", END), "hosts", 3);
    json_t *ack = get(json_array_get(hosts, 0), "last_ack");
    assert_int_equal(get_int(ack, "version"), 4);
    assert_true(json_is_true(get(ack, "applied")));
    assert_true(json_is_null(get(json_array_get(hosts, 2), "last_ack")));
}

/* An event restored from the store (before a restart) is aged by its wall clock time. */
static void
test_restored_event_age(void **state)
{
    struct fx *fx = *state;
    struct fleet_event e = {
        .seq = fleet_last_event_seq(fx->fleet) + 10,
        .at_ms = NOW_MS,
        .at_wall_ms = NOW_WALL_MS - 7200000, /* two hours before */
        .kind = FLEET_EVENT_DOWN,
        .from = FLEET_LIVENESS_STALE,
    };

    strcpy(e.host_id, "h9");
    assert_int_equal(fleet_event_restore(fx->fleet, &e), 0);
    want_status(fx, CONTROL_OK, run(fx, "events", END));
    want_text(fx, "2h ago");
    json_t *root = run_json(fx, "events", "--limit", "1", END);
    json_t *last = json_array_get(get_array(root, "events", 1), 0);
    assert_int_equal(get_int(last, "seq"), e.seq);
    assert_int_equal(get_int(last, "age_ms"), 7200000);
    assert_int_equal(get_int(last, "at_wall_ms"), NOW_WALL_MS - 7200000);
}

/* ---- policy ---- */

static void
test_policy_set_valid(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK,
                run(fx, "policy-set", "--scope", "fleet", "--reason", "floors up",
                    "vm_floor_mib=512", "reclaim_idle=no", END));
    want_text(fx, "policy v1 stored for fleet by alice (set): vm_floor_mib set to 512, "
                  "reclaim_idle set to false");
    want_text(fx, "  h1: from its own config: vm_floor_mib 256 -> 512, reclaim_idle true -> false");
    want_text(fx, "3 hosts will change (3 connected); 3 in scope");
    assert_int_equal(fx->n_added, 1);
    assert_int_equal(fx->added[0], 1);
    assert_string_equal(fx->added_scope[0], "fleet");

    /* The same values again: no change, no version spent, nothing pushed. */
    want_status(
        fx, CONTROL_OK,
        run(fx, "policy-set", "--scope", "fleet", "--reason", "again", "vm_floor_mib=512", END));
    want_text(fx, "no change: fleet already holds these values (from fleet v1); nothing stored");
    json_t *same = run_json(fx, "policy-set", "--scope", "fleet", "--reason", "again",
                            "reclaim_idle=false", END);
    assert_true(json_is_true(get(same, "no_change")));
    assert_int_equal(get_int(same, "in_force_version"), 1);
    assert_int_equal(fx->n_added, 1);

    /* A new scope sets only its keys (the rest layers from the fleet); the author defaults to
     * memschedctl. */
    fx->author[0] = '\0';
    json_t *p = get(run_json(fx, "policy-set", "--scope=label:rack=r1", "--reason", "more room",
                             "vm_excess_unused_mib=400", END),
                    "policy");
    assert_int_equal(get_int(p, "version"), 2);
    assert_string_equal(get_str(p, "author"), "memschedctl");
    assert_string_equal(get_str(p, "action"), "set");
    assert_true(json_is_null(get(p, "based_on_version")));
    assert_int_equal(get_int(p, "hosts_in_scope"), 2);
    assert_int_equal(get_int(p, "hosts_changing"), 2);
    assert_null(json_object_get(get(p, "policy"), "vm_floor_kib"));
    assert_int_equal(get_int(get(p, "policy"), "vm_excess_unused_kib"), MIB(400));
    json_t *ch = json_array_get(get_array(p, "changes", 1), 0);
    assert_string_equal(get_str(ch, "key"), "vm_excess_unused_kib");
    assert_true(json_is_null(get(ch, "from")));
    assert_int_equal(get_int(ch, "to"), MIB(400));
    json_t *h1 = json_array_get(get_array(p, "hosts", 2), 0);
    assert_string_equal(get_str(h1, "host_id"), "h1");
    assert_int_equal(get_int(h1, "from_version"), 1);
    assert_int_equal(get_int(h1, "to_version"), 2);
    ch = json_array_get(get_array(h1, "changes", 1), 0);
    assert_int_equal(get_int(ch, "from"), MIB(300));
    assert_int_equal(get_int(ch, "to"), MIB(400));
    assert_int_equal(fx->n_added, 2);
    assert_int_equal(fx->added[1], 2);
    assert_string_equal(fx->added_scope[1], "label:rack=r1");
    strcpy(fx->author, AUTHOR);
    assert_int_equal(set_policy(fx, "fleet", "floors higher", "vm_floor_mib=768"), 3);

    want_status(fx, CONTROL_OK, run(fx, "policy-history", END));
    want_text(fx, "VERSION  SCOPE");
    want_cell(fx, "v1", "AUTHOR", "alice");
    want_cell(fx, "v1", "REASON", "floors up");
    want_cell(fx, "v1", "CHANGES", "first in scope");
    want_cell(fx, "v2", "AUTHOR", "memschedctl");
    want_cell(fx, "v3", "CHANGES", "vm_floor_mib 512 -> 768");
    want_cell(fx, "v3", "CREATED", "2023-11-14 22:13:20Z");

    json_t *h = get_array(run_json(fx, "policy-history", END), "history", 3);
    assert_int_equal(get_int(json_array_get(h, 0), "version"), 3);
    assert_int_equal(get_int(json_array_get(h, 0), "previous_version"), 1);
    assert_string_equal(get_str(json_array_get(h, 2), "reason"), "floors up");
    assert_int_equal(get_int(json_array_get(h, 2), "created_at_ms"), NOW_WALL_MS);
    assert_true(json_is_null(get(json_array_get(h, 2), "changes")));
    h = get_array(run_json(fx, "policy-history", "--scope", "fleet", "--limit", "1", END),
                  "history", 1);
    assert_int_equal(get_int(json_array_get(h, 0), "previous_version"), 1);
    want_status(fx, CONTROL_NOT_FOUND, run(fx, "policy-history", "--scope", "host:h1", END));
    want_status(fx, CONTROL_USAGE, run(fx, "policy-history", "--scope", "planet", END));
}

/* Nothing was stored and nobody was told. */
static void
want_nothing_stored(struct fx *fx)
{
    get_array(run_json(fx, "policy-history", END), "history", 0);
    assert_int_equal(fx->n_added, 0);
}

static void
test_policy_set_refused(void **state)
{
    struct fx *fx = *state;

    want_status(
        fx, CONTROL_REFUSED,
        run(fx, "policy-set", "--scope", "fleet", "--reason", "x", "vm_min_unused_mib=500", END));
    want_text(fx, "vm_min_unused_mib=500");
    want_text(fx, "vm_grow_target_unused_mib");
    want_status(
        fx, CONTROL_REFUSED,
        run(fx, "policy-set", "--scope", "fleet", "--reason", "x", "vm_floor_mib=lots", END));
    want_text(fx, "vm_floor_mib");
    want_status(fx, CONTROL_REFUSED,
                run(fx, "policy-set", "--scope", "fleet", "--reason", "x", "interval_ms=5", END));
    want_text(fx, "interval_ms");
    want_nothing_stored(fx);
}

static void
test_policy_set_usage(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-set", "--scope", "fleet", "--reason", "x", "bogus_mib=1", END));
    want_text(fx, "unknown policy key 'bogus_mib'");
    want_text(fx, "vm_floor_mib");
    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-set", "--scope", "fleet", "vm_floor_mib=512", END));
    want_text(fx, "--reason is required");
    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-set", "--scope", "fleet", "--reason", "", "vm_floor_mib=1", END));
    want_text(fx, "--reason is required");
    want_status(fx, CONTROL_USAGE, run(fx, "policy-set", "--reason", "x", "vm_floor_mib=1", END));
    want_text(fx, "--scope is required");
    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-set", "--scope", "planet", "--reason", "x", "vm_floor_mib=1", END));
    want_text(fx, "bad scope 'planet'");
    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-set", "--scope", "fleet", "--reason", "x", "--force",
                    "vm_floor_mib=1", END));
    want_text(fx, "unknown option '--force'");
    want_status(fx, CONTROL_USAGE, run(fx, "policy-set", "--scope", "fleet", "--reason", "x", END));
    want_text(fx, "nothing to set");
    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-set", "--scope", "fleet", "--reason", "x", "vm_floor_mib", END));
    want_text(fx, "expected KEY=VALUE");
    want_status(fx, CONTROL_USAGE, run(fx, "policy-reset", END));
    want_text(fx, "unknown command");
    want_nothing_stored(fx);
}

static void
test_policy_set_unknown_host(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK,
                run(fx, "policy-set", "--scope", "host:h9", "--reason", "new box",
                    "vm_floor_mib=128", END));
    want_text(fx, "policy v1 stored for host:h9");
    want_text(fx, "0 hosts will change (0 connected); 0 in scope");
    want_text(fx, "host h9 is not known yet");
    json_t *p = get(run_json(fx, "policy-set", "--scope", "host:h9", "--reason", "again",
                             "vm_floor_mib=192", END),
                    "policy");
    assert_true(json_is_false(get(p, "host_known")));
    assert_int_equal(get_int(p, "based_on_version"), 1);

    p = get(run_json(fx, "policy-set", "--scope", "host:h1", "--reason", "known",
                     "vm_floor_mib=192", END),
            "policy");
    assert_true(json_is_true(get(p, "host_known")));
    assert_int_equal(get_int(p, "hosts_in_scope"), 1);
    assert_int_equal(fx->n_added, 3);
}

/* h1 applies v1 (fleet), h2 refuses v2 (host:h2); h3 has not answered; "old" is only in the
 * store, from before a restart, and applied v1. */
static void
acks(struct fx *fx)
{
    struct wire_policy_ack ack = {.version = 1, .applied = true};
    char err[STORE_ERR_MAX];
    const char *labels[] = {"rack=r9"};

    assert_int_equal(store_ack_record(fx->store, "h1", 1, true, "", NOW_WALL_MS, err, sizeof(err)),
                     0);
    assert_int_equal(fleet_policy_ack(fx->fleet, "h1", &ack, NOW_MS), 0);
    ack = (struct wire_policy_ack){.version = 2, .applied = false};
    strcpy(ack.reason, "host_min_unused_mib=50 below the local limit 100");
    assert_int_equal(
        store_ack_record(fx->store, "h2", 2, false, ack.reason, NOW_WALL_MS, err, sizeof(err)), 0);
    assert_int_equal(fleet_policy_ack(fx->fleet, "h2", &ack, NOW_MS), 0);
    assert_int_equal(
        store_host_upsert(fx->store, "old", labels, 1, NOW_WALL_MS - 1000, 0, err, sizeof(err)), 0);
    assert_int_equal(
        store_ack_record(fx->store, "old", 1, true, "", NOW_WALL_MS - 500, err, sizeof(err)), 0);
}

static void
test_policy_show(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK, run(fx, "policy-show", END));
    want_text(fx, "no policy stored (agents keep their own config)");
    want_cell(fx, "h1", "SHOULD HOLD", "-");

    assert_int_equal(set_policy(fx, "fleet", "floors up", "host_min_unused_mib=50"), 1);
    assert_int_equal(set_policy(fx, "host:h2", "tight", "vm_floor_mib=300"), 2);
    acks(fx);
    want_status(fx, CONTROL_OK, run(fx, "policy-show", END));
    want_text(fx, "v1 fleet, by alice at 2023-11-14 22:13:20Z: floors up");
    want_text(fx, "v2 host:h2, by alice");
    want_text(fx, "  host_min_unused_mib  50");
    assert_true(strstr(fx->body, "v1 fleet") < strstr(fx->body, "v2 host:h2")); /* fleet first */
    want_cell(fx, "h1", "HOLDS", "v1");
    want_cell(fx, "h1", "SHOULD HOLD", "v1 (fleet)");
    want_cell(fx, "h1", "STATE", "current");
    want_cell(fx, "h1", "LAST ACK", "v1 applied");
    want_cell(fx, "h2", "SHOULD HOLD", "v2 (host:h2)");
    want_cell(fx, "h2", "STATE", "refused");
    want_cell(fx, "h2", "LAST ACK", "v2 refused: host_min_unused_mib=50 below the local limit");
    want_cell(fx, "h3", "STATE", "pending");
    want_cell(fx, "h3", "LAST ACK", "-");
    want_cell(fx, "old", "LIVENESS", "absent");
    want_cell(fx, "old", "HOLDS", "v1"); /* its applied ack, not the v0 of its last hello */
    want_cell(fx, "old", "STATE", "current");

    json_t *root = run_json(fx, "policy-show", END);
    json_t *policies = get_array(root, "policies", 2), *hosts = get_array(root, "hosts", 4);
    assert_string_equal(get_str(json_array_get(policies, 0), "scope"), "fleet");
    assert_int_equal(get_int(get(json_array_get(policies, 0), "policy"), "host_min_unused_kib"),
                     MIB(50));
    json_t *h2 = json_array_get(hosts, 1);
    assert_string_equal(get_str(h2, "host_id"), "h2");
    assert_int_equal(get_int(h2, "should_hold_version"), 2);
    assert_string_equal(get_str(h2, "should_hold_scope"), "host:h2");
    assert_string_equal(get_str(h2, "state"), "refused");
    assert_true(json_is_false(get(get(h2, "last_ack"), "applied")));
    assert_string_equal(get_str(get(h2, "last_ack"), "reason"),
                        "host_min_unused_mib=50 below the local limit 100");
    json_t *h1 = json_array_get(hosts, 0);
    assert_int_equal(get_int(h1, "holds_version"), 1);
    assert_true(json_is_true(get(get(h1, "last_ack"), "applied")));
    assert_string_equal(get_str(json_array_get(hosts, 3), "host_id"), "old");

    root = run_json(fx, "policy-show", "--scope", "host:h2", END);
    get_array(root, "policies", 1);
    get_array(root, "hosts", 1);
    root = run_json(fx, "policy-show", "--scope", "label:rack=r1", END);
    get_array(root, "policies", 0);
    get_array(root, "hosts", 2);
    want_status(fx, CONTROL_NOT_FOUND, run(fx, "policy-show", "--scope", "label:rack=zz", END));
    want_status(fx, CONTROL_USAGE, run(fx, "policy-show", "--scope", "label:", END));
}

/* policy-show counts every host's standing and lists a page of them: --limit, and --after the
 * last id of the page before; the counts cover the whole scope on every page. */
static void
test_policy_show_pages(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(set_policy(fx, "fleet", "floors up", "host_min_unused_mib=50"), 1);
    assert_int_equal(set_policy(fx, "host:h2", "tight", "vm_floor_mib=300"), 2);
    acks(fx);
    json_t *root = run_json(fx, "policy-show", "--limit", "2", END);
    json_t *hosts = get_array(root, "hosts", 2);
    assert_string_equal(get_str(json_array_get(hosts, 1), "host_id"), "h2");
    assert_int_equal(get_int(root, "total"), 4);
    assert_string_equal(get_str(root, "next_after"), "h2");
    json_t *states = get(root, "states");
    assert_int_equal(get_int(states, "current"), 2); /* h1, and old by its applied ack */
    assert_int_equal(get_int(states, "refused"), 1);
    assert_int_equal(get_int(states, "pending"), 1);
    assert_int_equal(get_int(states, "uncovered"), 0);

    root = run_json(fx, "policy-show", "--limit", "2", "--after", "h2", END);
    hosts = get_array(root, "hosts", 2);
    assert_string_equal(get_str(json_array_get(hosts, 0), "host_id"), "h3");
    assert_true(json_is_null(get(root, "next_after"))); /* the last page */
    assert_int_equal(get_int(get(root, "states"), "refused"), 1);

    want_status(fx, CONTROL_OK, run(fx, "policy-show", "--limit", "1", END));
    want_text(fx, "4 hosts: 2 current, 1 pending, 1 refused, 0 uncovered");
    want_text(fx, "(1 of 4 hosts shown: --after h1 for the next page)");
    want_status(fx, CONTROL_USAGE, run(fx, "policy-show", "--limit", "0", END));
}

static void
fanout_half_way(void *ctx, struct control_fanout *out)
{
    (void)ctx;
    *out = (struct control_fanout){.version = 7,
                                   .scope = "label:rack=r1",
                                   .hosts = 50000,
                                   .visited = 20000,
                                   .in_scope = 12000,
                                   .pushed = 11000,
                                   .acked = 9000,
                                   .refused = 2};
}

/* policy-show shows how far the newest policy's fan-out has gone, pending and unanswered worked
 * out; with no fan-out to show (none since the start) it shows none, and JSON says null. */
static void
test_policy_show_fanout(void **state)
{
    struct fx *fx = *state;

    want_status(fx, CONTROL_OK, run(fx, "policy-show", END));
    want_no_text(fx, "fan-out");
    json_t *root = run_json(fx, "policy-show", END);
    assert_true(json_is_null(get(root, "fanout")));

    fx->cc.fanout_progress = fanout_half_way;
    want_status(fx, CONTROL_OK, run(fx, "policy-show", END));
    want_text(fx, "fan-out of v7 (label:rack=r1): under way; 20000 of 50000 hosts looked at (30000 "
                  "pending), 12000 in scope, 11000 pushed, 9000 acked, 2 refused, 1998 unanswered");
    root = run_json(fx, "policy-show", END);
    json_t *fo = get(root, "fanout");
    assert_int_equal(get_int(fo, "version"), 7);
    assert_string_equal(get_str(fo, "scope"), "label:rack=r1");
    assert_true(json_is_false(get(fo, "done")));
    assert_int_equal(get_int(fo, "pending"), 30000);
    assert_int_equal(get_int(fo, "pushed"), 11000);
    assert_int_equal(get_int(fo, "acked"), 9000);
    assert_int_equal(get_int(fo, "refused"), 2);
    assert_int_equal(get_int(fo, "unanswered"), 1998);
}

/* The value, scope and version policy-show --host gives for one key. */
static void
want_source(struct fx *fx,
            const char *host,
            const char *key,
            const char *value,
            const char *scope,
            const char *version)
{
    want_status(fx, CONTROL_OK, run(fx, "policy-show", "--host", host, END));
    want_cell(fx, key, "VALUE", value);
    want_cell(fx, key, "SCOPE", scope);
    want_cell(fx, key, "VERSION", version);
}

/* The example: a host policy and a label policy each set their key and the host gets
 * both; a later fleet change of a third key reaches hosts under label and host policies;
 * policy-show --host says where each value comes from. */
static void
test_policy_layers(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(set_policy(fx, "label:rack=r1", "room", "vm_grow_target_unused_mib=250"), 1);
    want_status(fx, CONTROL_OK,
                run(fx, "policy-set", "--scope", "host:h1", "--reason", "faster",
                    "max_release_step_mib=128", END));
    want_text(fx, "policy v2 stored for host:h1 by alice (set): max_release_step_mib set to 128");
    want_text(fx,
              "  h1: max_release_step_mib 64 -> 128\n"); /* nothing else: the label's 250 stays */
    want_text(fx, "1 host will change (1 connected); 1 in scope");
    want_source(fx, "h1", "max_release_step_mib", "128", "host:h1", "v2");
    want_source(fx, "h1", "vm_grow_target_unused_mib", "250", "label:rack=r1", "v1");
    want_source(fx, "h1", "vm_floor_mib", "256", "defaults", "-");
    want_text(fx, "host h1: effective policy v2");

    /* A fleet change of a third key reaches every host, under a label or a host policy. */
    want_status(
        fx, CONTROL_OK,
        run(fx, "policy-set", "--scope", "fleet", "--reason", "floors", "vm_floor_mib=300", END));
    want_text(fx, "3 hosts will change (3 connected); 3 in scope");
    want_source(fx, "h1", "vm_floor_mib", "300", "fleet", "v3");
    want_source(fx, "h1", "max_release_step_mib", "128", "host:h1", "v2");
    want_source(fx, "h1", "vm_grow_target_unused_mib", "250", "label:rack=r1", "v1");
    json_t *h = get(run_json(fx, "policy-show", "--host", "h1", END), "host");
    assert_int_equal(get_int(h, "version"), 3); /* above the v2 it was given */
    assert_int_equal(get_int(get(h, "policy"), "max_release_step_kib"), MIB(128));
    json_t *src = json_array_get(get(h, "sources"), 1); /* the table's order */
    assert_string_equal(get_str(src, "key"), "vm_grow_target_unused_kib");
    assert_int_equal(get_int(src, "value"), MIB(250));
    assert_string_equal(get_str(src, "scope"), "label:rack=r1");
    assert_int_equal(get_int(src, "version"), 1);
    want_source(fx, "h2", "vm_grow_target_unused_mib", "200", "defaults", "-");

    /* Refused before anything is stored when the layers make an invalid policy for a host. */
    want_status(fx, CONTROL_REFUSED,
                run(fx, "policy-set", "--scope", "fleet", "--reason", "x",
                    "vm_excess_unused_mib=220", END));
    want_text(fx, "host h1");
    want_text(fx, "vm_grow_target_unused_mib=250 must not exceed vm_excess_unused_mib=220");
    want_status(
        fx, CONTROL_REFUSED,
        run(fx, "policy-set", "--scope", "host:h1", "--reason", "x", "vm_min_unused_mib=260", END));
    want_text(fx, "host h1");
    want_text(fx, "vm_min_unused_mib=260");
    get_array(run_json(fx, "policy-history", END), "history", 3);
    want_status(fx, CONTROL_NOT_FOUND, run(fx, "policy-show", "--host", "nobody", END));
}

/* unset, delete and rollback: each a new version, kept in the history, pushed. */
static void
test_policy_unset_delete_rollback(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(set_policy(fx, "label:rack=r1", "room", "vm_grow_target_unused_mib=250"), 1);
    assert_int_equal(set_policy(fx, "host:h1", "faster", "max_release_step_mib=128"), 2);
    assert_int_equal(set_policy(fx, "host:h1", "floor", "vm_floor_mib=512"), 3);

    want_status(fx, CONTROL_OK,
                run(fx, "policy-unset", "--scope", "host:h1", "--reason", "back",
                    "max_release_step_mib", END));
    want_text(fx, "policy v4 stored for host:h1 by alice (unset): max_release_step_mib unset");
    want_text(fx, "  h1: max_release_step_mib 128 -> 64");
    want_source(fx, "h1", "max_release_step_mib", "64", "defaults", "-");
    want_source(fx, "h1", "vm_floor_mib", "512", "host:h1", "v4");
    want_status(fx, CONTROL_OK,
                run(fx, "policy-unset", "--scope", "host:h1", "--reason", "again",
                    "max_release_step_mib", END));
    want_text(fx, "no change");
    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-unset", "--scope", "host:h1", "--reason", "x", "nope", END));

    want_status(
        fx, CONTROL_OK,
        run(fx, "policy-rollback", "--scope", "host:h1", "--to", "v2", "--reason", "undo", END));
    want_text(fx, "policy v5 stored for host:h1 by alice (rollback to v2)");
    want_source(fx, "h1", "max_release_step_mib", "128", "host:h1", "v5");
    want_source(fx, "h1", "vm_floor_mib", "256", "defaults", "-");
    want_status(fx, CONTROL_USAGE,
                run(fx, "policy-rollback", "--scope", "host:h1", "--to", "v1", "--reason", "x",
                    END)); /* v1 is the label's */
    want_status(
        fx, CONTROL_NOT_FOUND,
        run(fx, "policy-rollback", "--scope", "host:h1", "--to", "v99", "--reason", "x", END));

    want_status(fx, CONTROL_OK,
                run(fx, "policy-delete", "--scope", "label:rack=r1", "--reason", "gone", END));
    want_text(fx, "policy v6 stored for label:rack=r1 by alice (delete)");
    want_text(fx, "2 hosts will change (2 connected); 2 in scope");
    want_source(fx, "h1", "vm_grow_target_unused_mib", "200", "defaults", "-");
    want_text(fx, "host h1: effective policy v6"); /* the delete counts: higher than v5 */
    want_status(fx, CONTROL_NOT_FOUND,
                run(fx, "policy-delete", "--scope", "label:rack=r1", "--reason", "x", END));

    json_t *hist = get_array(run_json(fx, "policy-history", END), "history", 6);
    assert_string_equal(get_str(json_array_get(hist, 0), "action"), "delete");
    assert_string_equal(get_str(json_array_get(hist, 1), "action"), "rollback to v2");
    assert_string_equal(get_str(json_array_get(hist, 2), "action"), "unset");
    want_status(fx, CONTROL_OK, run(fx, "policy-history", END));
    want_cell(fx, "v6", "CHANGES", "delete: vm_grow_target_unused_mib unset");
    want_cell(fx, "v5", "CHANGES",
              "rollback to v2: max_release_step_mib set to 128, vm_floor_mib unset");
    assert_int_equal(fx->n_added, 6);
    assert_string_equal(fx->added_scope[5], "label:rack=r1");
    want_status(fx, CONTROL_OK, run(fx, "policy-show", END));
    assert_null(strstr(fx->body, "label:rack=r1,")); /* a deleted scope is not listed */
}

/* policy-wait: pending until every host in scope holds its effective version; refused when one
 * refused it. */
static void
test_policy_wait(void **state)
{
    struct fx *fx = *state;
    struct wire_policy_ack ack = {.version = 1, .applied = true};
    char err[STORE_ERR_MAX];

    assert_int_equal(set_policy(fx, "label:rack=r1", "room", "vm_grow_target_unused_mib=250"), 1);
    want_status(fx, CONTROL_PENDING, run(fx, "policy-wait", "--scope", "label:rack=r1", END));
    want_text(fx, "h1: no ack of v1 yet (holds v0, fresh)");
    want_text(fx, "h3: no ack of v1 yet (holds v0, stale)");
    want_text(fx, "0 of 2 hosts in label:rack=r1 hold their policy");
    assert_int_equal(fleet_policy_ack(fx->fleet, "h1", &ack, NOW_MS), 0);
    assert_int_equal(fleet_policy_ack(fx->fleet, "h3", &ack, NOW_MS), 0);
    want_status(fx, CONTROL_OK, run(fx, "policy-wait", "--scope", "label:rack=r1", END));
    want_text(fx, "2 of 2 hosts in label:rack=r1 hold their policy");

    assert_int_equal(set_policy(fx, "host:h2", "tight", "vm_floor_mib=300"), 2);
    ack = (struct wire_policy_ack){.version = 2, .applied = false};
    strcpy(ack.reason, "below the local limit");
    assert_int_equal(fleet_policy_ack(fx->fleet, "h2", &ack, NOW_MS), 0);
    assert_int_equal(
        store_ack_record(fx->store, "h2", 2, false, ack.reason, NOW_WALL_MS, err, sizeof(err)), 0);
    want_status(fx, CONTROL_REFUSED, run(fx, "policy-wait", "--scope", "host:h2", END));
    want_text(fx, "h2: refused v2: below the local limit");
    want_status(fx, CONTROL_USAGE, run(fx, "policy-wait", END));
}

/* A name that is not UTF-8 still gives valid JSON. */
static void
test_json_survives_bytes(void **state)
{
    struct fx *fx = *state;
    struct rep r;

    memset(&r, 0, sizeof(r));
    r.r.host_total_kib = MIB(1024);
    rep_vm(&r, 9, "caf\xe9", MIB(256));
    hello(fx, "h4", "r1", NOW_MS);
    report(fx, "h4", &r, NOW_MS);
    json_t *vms = get_array(run_json(fx, "vms", "--host", "h4", END), "vms", 1);
    assert_string_equal(get_str(json_array_get(vms, 0), "name"), "caf?");
}

/* A read-only operator reads everything and changes nothing: CONTROL_DENIED, nothing stored. */
static void
test_read_only_operator(void **state)
{
    struct fx *fx = *state;
    struct store_policy_entry e;
    char err[STORE_ERR_MAX];

    fx->cc.read_only = true;
    want_status(fx, CONTROL_OK, run(fx, "status", END));
    want_status(fx, CONTROL_OK, run(fx, "hosts", END));
    want_status(fx, CONTROL_OK, run(fx, "policy-history", END));
    want_status(
        fx, CONTROL_DENIED,
        run(fx, "policy-set", "--scope", "fleet", "--reason", "no", "interval_ms=2000", END));
    assert_non_null(strstr(fx->body, "read-only"));
    want_status(fx, CONTROL_DENIED, run(fx, "hosts-forget", "--host", "hv-a", END));
    assert_int_equal(store_policy_latest(fx->store, "fleet", &e, err, sizeof(err)), -ENOENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_why, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_sort_filter_unit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vms_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_ack_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restored_event_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_set_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_set_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_set_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_set_unknown_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_show_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_show_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_show, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_unset_delete_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_survives_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_operator, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
