/*
 * test_fleet.c - the fleet state core (coordinator/fleet.c) on plain structs and a fake clock.
 *
 * Hello, report, heartbeat and ack; unknown hosts; duplicate and reordered reports (nothing
 * changes); liveness transitions exactly once at the thresholds; the VM set replaced by each
 * report; the decision ring bounded; totals; sorting; 10,000 hosts found by id, also after
 * removals; and a seeded random replay of shuffled, duplicated reports that must end in the
 * newest one's state. The scope grammar is test_scope.c's.
 *
 *   test_fleet [--seed N]
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
#include <time.h>

#include "fleet.h"
#include "test_util.h"
#include "wire.h"


static uint64_t opt_seed;

/* A report of up to 64 VMs and decisions, built in place. */
struct rep {
    struct wire_report r;
    struct wire_vm vms[64];
    struct wire_decision decisions[64];
};

static void
uuid_of(unsigned n, char out[WIRE_UUID_LEN])
{
    snprintf(out, WIRE_UUID_LEN, "00000000-0000-4000-8000-%012x", n);
}

static void
rep_init(struct rep *rep, uint64_t total_kib, uint64_t available_kib)
{
    memset(rep, 0, sizeof(*rep));
    rep->r.host_total_kib = total_kib;
    rep->r.host_available_kib = available_kib;
    rep->r.vms = rep->vms;
    rep->r.decisions = rep->decisions;
}

static struct wire_vm *
rep_vm(struct rep *rep, unsigned n, const char *name, uint64_t actual_kib, uint64_t unused_kib)
{
    struct wire_vm *vm = &rep->vms[rep->r.n_vms++];

    uuid_of(n, vm->uuid);
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    vm->state = SCHED_VM_RUNNING;
    vm->max_kib = MIB(4096);
    vm->actual_kib = actual_kib;
    vm->unused_kib = unused_kib;
    vm->has_unused = true;
    vm->managed = true;
    return vm;
}

static void
rep_decision(
    struct rep *rep, unsigned n, enum sched_reason reason, uint64_t old_kib, uint64_t new_kib)
{
    struct wire_decision *d = &rep->decisions[rep->r.n_decisions++];

    uuid_of(n, d->uuid);
    d->reason = reason;
    d->old_target_kib = old_kib;
    d->new_target_kib = new_kib;
    snprintf(d->counterpart, sizeof(d->counterpart), "%s", WIRE_COUNTERPART_HOST);
}

static uint64_t
next_random(uint64_t *s)
{
    *s ^= *s << 13; /* xorshift64: enough to shuffle, and replayable from the seed */
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
hello(struct fleet *f, const char *id, uint64_t now_ms)
{
    struct wire_hello h;

    memset(&h, 0, sizeof(h));
    strcpy(h.agent_version, "0.1.0");
    strcpy(h.labels[0].key, "rack");
    strcpy(h.labels[0].value, "r1");
    h.n_labels = 1;
    h.policy_version = 3;
    assert_int_equal(fleet_hello(f, id, &h, now_ms), 0);
}

static unsigned
uuid_tail(const struct fleet_vm *vm)
{
    char text[WIRE_UUID_LEN];

    fleet_uuid_format(vm->uuid, text);
    return (unsigned)strtoul(text + 24, NULL, 16);
}

static void
test_hello_report_heartbeat(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct fleet_host_info info;
    struct rep rep;
    (void)state;

    hello(f, "hv-01", 1000);
    assert_int_equal(fleet_host_count(f), 1);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_string_equal(info.host_id, "hv-01");
    assert_string_equal(info.agent_version, "0.1.0");
    assert_int_equal(info.n_labels, 1);
    assert_string_equal(info.labels[0], "rack=r1");
    assert_int_equal(info.policy_version, 3);
    assert_int_equal(info.first_seen_ms, 1000);
    assert_false(info.has_report);
    assert_int_equal(info.liveness, FLEET_LIVENESS_FRESH);

    rep_init(&rep, MIB(65536), MIB(30000));
    rep_vm(&rep, 2, "web", MIB(1024), MIB(50));
    rep_vm(&rep, 1, "db", MIB(2048), MIB(500))->has_usable = true;
    rep_decision(&rep, 2, SCHED_REASON_GROW, MIB(1024), MIB(1174));
    rep.r.counters.rounds = 42;
    rep.r.policy_version = 4;
    assert_int_equal(fleet_report(f, "hv-01", 10, &rep.r, 2000), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_true(info.has_report);
    assert_int_equal(info.report_sequence, 10);
    assert_int_equal(info.last_report_ms, 2000);
    assert_int_equal(info.last_seen_ms, 2000);
    assert_int_equal(info.host_total_kib, MIB(65536));
    assert_int_equal(info.host_available_kib, MIB(30000));
    assert_int_equal(info.counters.rounds, 42);
    assert_int_equal(info.policy_version, 4);
    assert_int_equal(info.n_vms, 2);
    /* Sorted by uuid, whatever order the agent sent. */
    assert_int_equal(uuid_tail(&info.vms[0]), 1);
    assert_string_equal(info.vms[0].name, "db");
    assert_true(info.vms[0].has_usable);
    assert_int_equal(info.vms[0].last_reason, FLEET_REASON_NONE);
    assert_string_equal(info.vms[1].name, "web");
    assert_int_equal(info.vms[1].last_reason, SCHED_REASON_GROW);
    assert_int_equal(info.vm_actual_kib, MIB(3072));
    assert_int_equal(info.vm_max_kib, MIB(8192));
    assert_int_equal(info.n_decisions, 1);

    struct fleet_decision d[4];
    assert_int_equal(fleet_host_decisions(f, "hv-01", d, ARRAY_SIZE(d)), 1);
    assert_int_equal(d[0].at_ms, 2000);
    assert_int_equal(d[0].reason, SCHED_REASON_GROW);
    assert_int_equal(d[0].counterpart, FLEET_COUNTERPART_HOST);
    assert_int_equal(d[0].new_target_kib, MIB(1174));

    assert_int_equal(fleet_heartbeat(f, "hv-01", 11, 5, 2500), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.policy_version, 5);
    assert_int_equal(info.last_seen_ms, 2500);
    assert_int_equal(info.last_report_ms, 2000);

    /* Ack: applied moves the version held; refused keeps it and says why in the event log. */
    struct wire_policy_ack ack = {.version = 6, .applied = true};
    assert_int_equal(fleet_policy_ack(f, "hv-01", &ack, 2600), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.policy_version, 6);
    assert_int_equal(info.last_ack_version, 6);
    assert_true(info.last_ack_applied);
    ack = (struct wire_policy_ack){.version = 7, .applied = false};
    strcpy(ack.reason, "host_min_unused_mib=100 below the local limit 512");
    assert_int_equal(fleet_policy_ack(f, "hv-01", &ack, 2700), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.policy_version, 6);
    assert_int_equal(info.last_ack_version, 7);
    assert_false(info.last_ack_applied);

    fleet_destroy(&f);
    assert_null(f);
    fleet_destroy(&f);
}

static void
test_unknown_host_and_bad_input(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct fleet_host_info info;
    struct wire_policy_ack ack = {.version = 1, .applied = true};
    struct wire_hello h;
    struct rep rep;
    (void)state;

    rep_init(&rep, MIB(1024), MIB(512));
    assert_int_equal(fleet_report(f, "nobody", 1, &rep.r, 0), -ENOENT);
    assert_int_equal(fleet_heartbeat(f, "nobody", 1, 0, 0), -ENOENT);
    assert_int_equal(fleet_policy_ack(f, "nobody", &ack, 0), -ENOENT);
    assert_int_equal(fleet_remove(f, "nobody", 0), -ENOENT);
    assert_int_equal(fleet_host_get(f, "nobody", &info), -ENOENT);
    assert_int_equal(fleet_host_count(f), 0);

    memset(&h, 0, sizeof(h));
    strcpy(h.agent_version, "1");
    assert_int_equal(fleet_hello(f, "bad id", &h, 0), -EINVAL);
    assert_int_equal(fleet_hello(f, "", &h, 0), -EINVAL);
    strcpy(h.labels[0].key, "k=");
    strcpy(h.labels[0].value, "v");
    h.n_labels = 1;
    assert_int_equal(fleet_hello(f, "hv-01", &h, 0), -EINVAL);
    assert_int_equal(fleet_host_count(f), 0);

    /* A malformed report changes nothing, and does not use up its sequence number. */
    hello(f, "hv-01", 0);
    rep_vm(&rep, 1, "a", MIB(1024), MIB(100));
    assert_int_equal(fleet_report(f, "hv-01", 1, &rep.r, 10), 0);
    rep_init(&rep, MIB(2048), MIB(1024));
    rep_vm(&rep, 2, "b", MIB(1024), MIB(100));
    strcpy(rep.vms[0].uuid, "not-a-uuid");
    assert_int_equal(fleet_report(f, "hv-01", 2, &rep.r, 20), -EINVAL);
    uuid_of(2, rep.vms[0].uuid);
    rep_decision(&rep, 2, SCHED_REASON_GROW, 0, 0);
    strcpy(rep.decisions[0].counterpart, "somebody");
    assert_int_equal(fleet_report(f, "hv-01", 2, &rep.r, 20), -EINVAL);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.host_total_kib, MIB(1024));
    assert_int_equal(info.n_vms, 1);
    assert_string_equal(info.vms[0].name, "a");
    assert_int_equal(info.n_decisions, 0);
    strcpy(rep.decisions[0].counterpart, "");
    assert_int_equal(fleet_report(f, "hv-01", 2, &rep.r, 20), 0);

    /* hosts_max */
    fleet_destroy(&f);
    f = fleet_new(&(struct fleet_opts){.hosts_max = 2});
    hello(f, "a", 0);
    hello(f, "b", 0);
    memset(&h, 0, sizeof(h));
    assert_int_equal(fleet_hello(f, "c", &h, 0), -ENOSPC);
    assert_int_equal(fleet_hello(f, "a", &h, 0), 0); /* known hosts still say hello */
    fleet_destroy(&f);
}

/* Everything a reader can see of one host, flattened for comparison. */
struct snap {
    struct fleet_host_info info;
    struct fleet_vm vms[64];
    char names[64][WIRE_NAME_MAX];
    struct fleet_decision decisions[64];
    size_t n_decisions;
};

static void
take_snap(const struct fleet *f, const char *id, struct snap *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(fleet_host_get(f, id, &s->info), 0);
    assert_true(s->info.n_vms <= 64);
    for (size_t i = 0; i < s->info.n_vms; i++) {
        s->vms[i] = s->info.vms[i];
        snprintf(s->names[i], sizeof(s->names[i]), "%s", s->info.vms[i].name);
        s->vms[i].name = NULL;
    }
    s->n_decisions = fleet_host_decisions(f, id, s->decisions, 64);
    /* pointers differ between snapshots; what they point at was copied above */
    s->info.host_id = s->info.agent_version = NULL;
    s->info.labels = NULL;
    s->info.vms = NULL;
}

static void
assert_same_snap(const struct snap *want, const struct snap *got)
{
    assert_memory_equal(&want->info, &got->info, sizeof(want->info));
    assert_memory_equal(want->vms, got->vms, sizeof(want->vms));
    assert_memory_equal(want->names, got->names, sizeof(want->names));
    assert_int_equal(want->n_decisions, got->n_decisions);
    assert_memory_equal(want->decisions, got->decisions, sizeof(want->decisions));
}

static void
test_duplicate_and_reordered_reports(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct snap *before = malloc(sizeof(*before)), *after = malloc(sizeof(*after));
    struct rep rep;
    (void)state;

    hello(f, "hv-01", 0);
    rep_init(&rep, MIB(8192), MIB(4096));
    rep_vm(&rep, 1, "a", MIB(1024), MIB(100));
    rep_decision(&rep, 1, SCHED_REASON_GROW, MIB(1000), MIB(1024));
    rep.r.policy_version = 3;
    assert_int_equal(fleet_report(f, "hv-01", 5, &rep.r, 100), 0);
    take_snap(f, "hv-01", before);

    /* The same sequence again (a duplicate) and an older one (reordered), both carrying other
     * content and a later time: ignored, nothing changes, not even last_seen. */
    rep_init(&rep, MIB(1), MIB(1));
    rep_vm(&rep, 9, "other", MIB(1), MIB(1));
    rep_decision(&rep, 9, SCHED_REASON_SHRINK, 1, 1);
    rep.r.policy_version = 99;
    assert_int_equal(fleet_report(f, "hv-01", 5, &rep.r, 200), 1);
    assert_int_equal(fleet_report(f, "hv-01", 4, &rep.r, 300), 1);
    assert_int_equal(fleet_report(f, "hv-01", 0, &rep.r, 300), 1);
    take_snap(f, "hv-01", after);
    assert_same_snap(before, after);
    struct fleet_totals t;
    fleet_totals(f, 400, MIB(100), &t);
    assert_int_equal(t.decisions_last_minute, 1);

    /* A heartbeat newer than a late report: the report applies (it is the newest report) but
     * does not roll back the policy version the heartbeat told. */
    assert_int_equal(fleet_heartbeat(f, "hv-01", 8, 7, 500), 0);
    assert_int_equal(fleet_heartbeat(f, "hv-01", 8, 1, 510), 1);
    assert_int_equal(fleet_heartbeat(f, "hv-01", 6, 1, 520), 1);
    assert_int_equal(fleet_report(f, "hv-01", 7, &rep.r, 600), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &after->info), 0);
    assert_int_equal(after->info.policy_version, 7);
    assert_int_equal(after->info.n_vms, 1);
    assert_string_equal(after->info.vms[0].name, "other");

    /* A hello restarts the numbering: the restarted agent's first report applies. */
    hello(f, "hv-01", 700);
    rep_init(&rep, MIB(8192), MIB(4096));
    assert_int_equal(fleet_report(f, "hv-01", 1, &rep.r, 800), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &after->info), 0);
    assert_int_equal(after->info.n_vms, 0);
    assert_int_equal(after->info.report_sequence, 1);

    free(before);
    free(after);
    fleet_destroy(&f);
}

struct event_log {
    struct fleet_event events[64];
    size_t n;
};

static int
collect_event(const struct fleet_event *e, void *ctx)
{
    struct event_log *log = ctx;

    if (log->n < ARRAY_SIZE(log->events))
        log->events[log->n++] = *e;
    return 0;
}

static void
expect_tick(struct fleet *f, uint64_t now_ms, enum fleet_event_kind kind, enum fleet_liveness from)
{
    struct event_log log = {.n = 0};

    assert_int_equal(fleet_tick(f, now_ms, collect_event, &log), 1);
    assert_int_equal(log.n, 1);
    assert_string_equal(log.events[0].host_id, "hv-01");
    if (log.events[0].kind != kind || log.events[0].from != from)
        fail_msg("at %" PRIu64 " ms: want %s from %s, got %s from %s", now_ms,
                 fleet_event_kind_name(kind), fleet_liveness_name(from),
                 fleet_event_kind_name(log.events[0].kind),
                 fleet_liveness_name(log.events[0].from));
    assert_int_equal(log.events[0].at_ms, now_ms);
}

static void
test_liveness_transitions(void **state)
{
    struct fleet *f =
        fleet_new(&(struct fleet_opts){.stale_after_ms = 3000, .down_after_ms = 10000});
    struct fleet_host_info info;
    (void)state;

    hello(f, "hv-01", 1000);
    assert_int_equal(fleet_tick(f, 1000, NULL, NULL), 0);
    assert_int_equal(fleet_tick(f, 3999, NULL, NULL), 0); /* age 2999 */
    expect_tick(f, 4000, FLEET_EVENT_STALE, FLEET_LIVENESS_FRESH);
    assert_int_equal(fleet_tick(f, 4001, NULL, NULL), 0); /* said once */
    assert_int_equal(fleet_tick(f, 10999, NULL, NULL), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.liveness, FLEET_LIVENESS_STALE);
    expect_tick(f, 11000, FLEET_EVENT_DOWN, FLEET_LIVENESS_STALE);
    assert_int_equal(fleet_tick(f, 50000, NULL, NULL), 0);
    assert_int_equal(fleet_heartbeat(f, "hv-01", 1, 0, 60000), 0);
    expect_tick(f, 60100, FLEET_EVENT_BACK, FLEET_LIVENESS_DOWN);
    assert_int_equal(fleet_tick(f, 60200, NULL, NULL), 0);
    /* stale and back */
    expect_tick(f, 63000, FLEET_EVENT_STALE, FLEET_LIVENESS_FRESH);
    assert_int_equal(fleet_heartbeat(f, "hv-01", 2, 0, 64000), 0);
    expect_tick(f, 64000, FLEET_EVENT_BACK, FLEET_LIVENESS_STALE);
    /* a tick that comes late jumps straight to down: one event, from fresh */
    expect_tick(f, 90000, FLEET_EVENT_DOWN, FLEET_LIVENESS_FRESH);
    /* a message older than the last (a clock that went back) does not make it younger */
    assert_int_equal(fleet_heartbeat(f, "hv-01", 3, 0, 100), 0);
    assert_int_equal(fleet_tick(f, 90001, NULL, NULL), 0);

    /* The event log has them all, in order, after hello's "joined". */
    struct event_log log = {.n = 0};
    assert_int_equal(fleet_events(f, 0, collect_event, &log), 0);
    static const enum fleet_event_kind want[] = {
        FLEET_EVENT_JOINED, FLEET_EVENT_STALE, FLEET_EVENT_DOWN, FLEET_EVENT_BACK,
        FLEET_EVENT_STALE,  FLEET_EVENT_BACK,  FLEET_EVENT_DOWN,
    };
    assert_int_equal(log.n, ARRAY_SIZE(want));
    for (size_t i = 0; i < log.n; i++) {
        assert_int_equal(log.events[i].seq, i + 1);
        assert_int_equal(log.events[i].kind, want[i]);
    }
    assert_int_equal(fleet_last_event_seq(f), ARRAY_SIZE(want));
    log.n = 0;
    assert_int_equal(fleet_events(f, 5, collect_event, &log), 0);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.events[0].seq, 6);
    fleet_destroy(&f);
}

static void
test_event_ring_and_policy_events(void **state)
{
    struct fleet *f = fleet_new(&(struct fleet_opts){.events_max = 4});
    struct wire_policy_ack ack = {.version = 9, .applied = false};
    struct event_log log = {.n = 0};
    (void)state;

    hello(f, "hv-01", 0);
    hello(f, "hv-01", 1); /* rejoined */
    strcpy(ack.reason, "vm_floor_mib=64 below the local limit 128");
    assert_int_equal(fleet_policy_ack(f, "hv-01", &ack, 2), 0);
    ack.applied = true;
    ack.reason[0] = '\0';
    assert_int_equal(fleet_policy_ack(f, "hv-01", &ack, 3), 0);
    assert_int_equal(fleet_remove(f, "hv-01", 4), 0);
    assert_int_equal(fleet_host_count(f), 0);

    /* 5 events, 4 kept: the oldest went */
    assert_int_equal(fleet_events(f, 0, collect_event, &log), 0);
    assert_int_equal(log.n, 4);
    assert_int_equal(log.events[0].seq, 2);
    assert_int_equal(log.events[0].kind, FLEET_EVENT_REJOINED);
    assert_string_equal(log.events[0].detail, "0.1.0");
    assert_int_equal(log.events[1].kind, FLEET_EVENT_POLICY_REFUSED);
    assert_int_equal(log.events[1].policy_version, 9);
    assert_string_equal(log.events[1].detail, "vm_floor_mib=64 below the local limit 128");
    assert_int_equal(log.events[2].kind, FLEET_EVENT_POLICY_APPLIED);
    assert_int_equal(log.events[3].kind, FLEET_EVENT_REMOVED);
    assert_int_equal(log.events[3].at_ms, 4);
    assert_string_equal(fleet_event_kind_name(FLEET_EVENT_POLICY_REFUSED), "policy_refused");
    fleet_destroy(&f);
}

/* An ack kept from before a restart fills an empty slot only: no event, no sign of life, and
 * a live answer is never overwritten by the older stored one. */
static void
test_ack_restore(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct wire_policy_ack live = {.version = 12, .applied = true};
    struct fleet_host_info info;
    (void)state;

    assert_int_equal(fleet_ack_restore(f, "hv-01", 7, false), -ENOENT);
    hello(f, "hv-01", 100);
    uint64_t events = fleet_last_event_seq(f);
    assert_int_equal(fleet_ack_restore(f, "hv-01", 0, true), -EINVAL);
    assert_int_equal(fleet_ack_restore(f, "hv-01", 7, false), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.last_ack_version, 7);
    assert_false(info.last_ack_applied);
    assert_int_equal(info.policy_version, 3); /* a refusal changes what it holds: nothing */
    assert_int_equal(info.last_seen_ms, 100);
    assert_int_equal(fleet_last_event_seq(f), events);

    assert_int_equal(fleet_policy_ack(f, "hv-01", &live, 200), 0);
    assert_int_equal(fleet_ack_restore(f, "hv-01", 7, false), 1);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    if (info.last_ack_version != 12 || !info.last_ack_applied)
        fail_msg("a restored ack over a live one: want 12 applied, got %" PRIu64 " %s",
                 info.last_ack_version, info.last_ack_applied ? "applied" : "refused");
    fleet_destroy(&f);
}

static void
test_vm_set_replaced(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct fleet_host_info info;
    struct rep rep;
    (void)state;

    hello(f, "hv-01", 0);
    rep_init(&rep, MIB(16384), MIB(8192));
    rep_vm(&rep, 3, "c", MIB(1024), MIB(100));
    rep_vm(&rep, 1, "a", MIB(1024), MIB(100));
    rep_vm(&rep, 2, "b-with-a-much-longer-name", MIB(1024), MIB(100));
    rep_decision(&rep, 2, SCHED_REASON_NEED_UNMET, MIB(1024), MIB(1024));
    assert_int_equal(fleet_report(f, "hv-01", 1, &rep.r, 0), 0);

    /* b stays (its last reason with it), d arrives, a and c are gone. */
    rep_init(&rep, MIB(16384), MIB(8192));
    rep_vm(&rep, 4, "", MIB(512), MIB(10))->has_unused = false;
    rep.vms[0].skip_reason = SCHED_REASON_NO_STATS;
    rep_vm(&rep, 2, "b", MIB(2048), MIB(300));
    assert_int_equal(fleet_report(f, "hv-01", 2, &rep.r, 1000), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.n_vms, 2);
    assert_int_equal(uuid_tail(&info.vms[0]), 2);
    assert_string_equal(info.vms[0].name, "b");
    assert_int_equal(info.vms[0].actual_kib, MIB(2048));
    assert_int_equal(info.vms[0].last_reason, SCHED_REASON_NEED_UNMET);
    assert_int_equal(uuid_tail(&info.vms[1]), 4);
    assert_string_equal(info.vms[1].name, "");
    assert_false(info.vms[1].has_unused);
    assert_int_equal(info.vms[1].last_reason, FLEET_REASON_NONE);
    assert_int_equal(info.vms[1].skip_reason, SCHED_REASON_NO_STATS);
    assert_int_equal(info.vms[0].skip_reason, FLEET_REASON_NONE); /* managed */
    assert_int_equal(info.vm_actual_kib, MIB(2560));

    /* An empty report empties the host; upper-case uuids are the same VMs. */
    rep_init(&rep, MIB(16384), MIB(8192));
    assert_int_equal(fleet_report(f, "hv-01", 3, &rep.r, 2000), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.n_vms, 0);
    assert_int_equal(info.vm_actual_kib, 0);
    rep_vm(&rep, 0xabc, "x", MIB(1), MIB(1));
    strcpy(rep.vms[0].uuid, "00000000-0000-4000-8000-000000000ABC");
    rep_vm(&rep, 0xabc, "y", MIB(1), MIB(1));
    assert_int_equal(fleet_report(f, "hv-01", 4, &rep.r, 3000), 0);
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.n_vms, 1);
    fleet_destroy(&f);
}

static void
test_decision_ring_bounded(void **state)
{
    struct fleet *f = fleet_new(&(struct fleet_opts){.decisions_per_host = 4});
    struct fleet_decision d[8];
    struct fleet_host_info info;
    struct rep rep;
    (void)state;

    hello(f, "hv-01", 0);
    for (unsigned round = 0; round < 2; round++) {
        rep_init(&rep, MIB(16384), MIB(8192));
        for (unsigned i = 0; i < 3; i++) {
            rep_vm(&rep, i, "vm", MIB(1024), MIB(100));
            rep_decision(&rep, i, SCHED_REASON_SHRINK, round * 10 + i, 0);
        }
        assert_int_equal(fleet_report(f, "hv-01", round + 1, &rep.r, round * 1000), 0);
    }
    assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
    assert_int_equal(info.n_decisions, 4);
    assert_int_equal(info.decisions_total, 6);
    /* The counters by reason count every decision, not only those the ring keeps. */
    assert_int_equal(info.decisions_by_reason[SCHED_REASON_SHRINK], 6);
    assert_int_equal(info.decisions_by_reason[SCHED_REASON_GROW], 0);
    assert_int_equal(info.moved_kib_by_reason[SCHED_REASON_SHRINK], 0 + 1 + 2 + 10 + 11 + 12);
    assert_int_equal(fleet_host_decisions(f, "hv-01", d, ARRAY_SIZE(d)), 4);
    static const uint64_t want_old[] = {12, 11, 10, 2}; /* newest first */
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(d[i].old_target_kib, want_old[i]);
    assert_int_equal(d[3].at_ms, 0);
    assert_int_equal(fleet_host_decisions(f, "hv-01", d, 2), 2);
    assert_int_equal(fleet_host_decisions(f, "nobody", d, 2), 0);

    /* A report with more decisions than the ring keeps the newest. */
    rep_init(&rep, MIB(16384), MIB(8192));
    for (unsigned i = 0; i < 6; i++) {
        rep_vm(&rep, i, "vm", MIB(1024), MIB(100));
        rep_decision(&rep, i, SCHED_REASON_GROW, 100 + i, 0);
    }
    assert_int_equal(fleet_report(f, "hv-01", 3, &rep.r, 5000), 0);
    assert_int_equal(fleet_host_decisions(f, "hv-01", d, ARRAY_SIZE(d)), 4);
    assert_int_equal(d[0].old_target_kib, 105);
    assert_int_equal(d[3].old_target_kib, 102);
    fleet_destroy(&f);
}

static void
test_totals(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct fleet_totals t;
    struct rep rep;
    (void)state;

    fleet_totals(f, 0, MIB(100), &t);
    assert_int_equal(t.hosts, 0);
    assert_true(t.overcommit == 0.0);

    hello(f, "a", 0);
    hello(f, "b", 0);
    hello(f, "silent", 0); /* no report: counted as a host, not in the memory sums */
    rep_init(&rep, MIB(8192), MIB(2048));
    rep_vm(&rep, 1, "a1", MIB(1024), MIB(50));                    /* under pressure */
    rep_vm(&rep, 2, "a2", MIB(2048), MIB(100));                   /* at the threshold: not */
    rep_vm(&rep, 3, "a3", MIB(512), MIB(10))->has_unused = false; /* unknown: not */
    rep_decision(&rep, 1, SCHED_REASON_GROW, 0, 0);
    rep_decision(&rep, 2, SCHED_REASON_IN_BAND, 0, 0);
    assert_int_equal(fleet_report(f, "a", 1, &rep.r, 1000), 0);
    rep_init(&rep, MIB(8192), MIB(4096));
    rep_vm(&rep, 4, "b1", MIB(4096), MIB(900));
    rep_decision(&rep, 4, SCHED_REASON_NEED_UNMET, 0, 0); /* under pressure by its decision */
    assert_int_equal(fleet_report(f, "b", 1, &rep.r, 30000), 0);
    fleet_tick(f, 5000, NULL, NULL); /* a and silent stale, b fresh (seen at 30 s) */
    assert_int_equal(fleet_heartbeat(f, "b", 2, 0, 30000), 0);
    fleet_tick(f, 30000, NULL, NULL); /* a and silent down */

    /* A down host's last report is history: counted as a host, kept out of every sum. */
    fleet_totals(f, 30000, MIB(100), &t);
    assert_int_equal(t.hosts, 3);
    assert_int_equal(t.hosts_by_liveness[FLEET_LIVENESS_FRESH], 1);
    assert_int_equal(t.hosts_by_liveness[FLEET_LIVENESS_STALE], 0);
    assert_int_equal(t.hosts_by_liveness[FLEET_LIVENESS_DOWN], 2);
    assert_int_equal(t.hosts_reporting, 1);
    assert_int_equal(t.vms, 1);
    assert_int_equal(t.vms_under_pressure, 1);
    assert_int_equal(t.vm_actual_kib, MIB(4096));
    assert_int_equal(t.host_total_kib, MIB(8192));
    assert_int_equal(t.host_available_kib, MIB(4096));
    assert_int_equal(fleet_vm_count(f), 4); /* listings still show a's VMs, marked down */

    assert_int_equal(fleet_heartbeat(f, "a", 2, 0, 30000), 0);
    fleet_tick(f, 30000, NULL, NULL); /* a back: its report counts again */
    fleet_totals(f, 30000, MIB(100), &t);
    assert_int_equal(t.hosts_by_liveness[FLEET_LIVENESS_FRESH], 2);
    assert_int_equal(t.hosts_reporting, 2);
    assert_int_equal(t.vms, 4);
    assert_int_equal(t.vms_under_pressure, 2);
    assert_int_equal(t.vm_actual_kib, MIB(1024 + 2048 + 512 + 4096));
    assert_int_equal(t.vm_max_kib, MIB(4 * 4096));
    assert_int_equal(t.host_total_kib, MIB(16384));
    assert_int_equal(t.host_available_kib, MIB(6144));
    assert_true(t.overcommit == 1.0);
    assert_int_equal(t.decisions_last_minute, 3);
    /* The window is the last minute: a's two decisions at 1 s fall out at 61 s. */
    fleet_totals(f, 60999, MIB(100), &t);
    assert_int_equal(t.decisions_last_minute, 3);
    fleet_totals(f, 61000, MIB(100), &t);
    assert_int_equal(t.decisions_last_minute, 1);
    fleet_totals(f, 90000, MIB(100), &t);
    assert_int_equal(t.decisions_last_minute, 0);
    fleet_destroy(&f);
}

/* Fleet totals saturate: five hosts of 4,096 VMs at the largest legal size sum past 2^64. */
static void
test_totals_saturate(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct wire_report r;
    struct fleet_totals t;
    char id[16];
    (void)state;

    memset(&r, 0, sizeof(r));
    r.vms = calloc(WIRE_VMS_MAX, sizeof(*r.vms));
    assert_non_null(r.vms);
    r.n_vms = WIRE_VMS_MAX;
    r.host_total_kib = r.host_available_kib = SCHED_KIB_MAX;
    for (unsigned i = 0; i < WIRE_VMS_MAX; i++) {
        uuid_of(i, r.vms[i].uuid);
        r.vms[i].max_kib = r.vms[i].actual_kib = SCHED_KIB_MAX;
        r.vms[i].state = SCHED_VM_RUNNING;
    }
    for (int h = 0; h < 5; h++) {
        snprintf(id, sizeof(id), "big-%d", h);
        hello(f, id, 0);
        assert_int_equal(fleet_report(f, id, 1, &r, 0), 0);
    }
    fleet_totals(f, 0, 0, &t);
    if (t.vm_max_kib != UINT64_MAX || t.vm_actual_kib != UINT64_MAX)
        fail_msg("totals wrapped: vm_max_kib=%" PRIu64 " vm_actual_kib=%" PRIu64 " (want %" PRIu64
                 ")",
                 t.vm_max_kib, t.vm_actual_kib, UINT64_MAX);
    assert_int_equal(t.host_total_kib, 5 * SCHED_KIB_MAX);
    free(r.vms);
    fleet_destroy(&f);
}

struct vm_list {
    char line[16][64];
    size_t n;
    size_t stop_after; /* 0 = never */
};

static int
collect_vm(const char *host_id, const struct fleet_vm *vm, void *ctx)
{
    struct vm_list *l = ctx;

    snprintf(l->line[l->n++], sizeof(l->line[0]), "%s/%s", host_id, vm->name);
    return l->stop_after && l->n >= l->stop_after ? 1 : 0;
}

static void
expect_vms(struct fleet *f, enum fleet_vm_key key, bool desc, const char *const *want, size_t n)
{
    struct vm_list l = {.n = 0};

    assert_int_equal(fleet_vms_each(f, key, desc, 0, collect_vm, &l), 0);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l.line[i], want[i]) != 0)
            fail_msg("key %d desc %d, line %zu: want %s, got %s", (int)key, desc, i, want[i],
                     l.line[i]);
    }
}

struct host_list {
    char ids[16][WIRE_HOST_ID_MAX];
    size_t n;
};

static int
collect_host(const struct fleet_host_info *h, void *ctx)
{
    struct host_list *l = ctx;

    snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", h->host_id);
    return 0;
}

static int
fail_host(const struct fleet_host_info *h, void *ctx)
{
    (void)h;
    (void)ctx;
    return -EINTR;
}

static int
collect_two(const struct fleet_host_info *h, void *ctx)
{
    struct host_list *l = ctx;

    collect_host(h, l);
    return l->n == 2 ? 1 : 0; /* 1: the page is full, stop */
}

static void
expect_ids_after(const struct fleet *f, const char *after, const char *want)
{
    struct host_list l = {.n = 0};
    char got[256] = "";

    assert_int_equal(fleet_hosts_each_after(f, after, collect_host, &l), 0);
    for (size_t i = 0; i < l.n; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "", l.ids[i]);
    if (strcmp(got, want) != 0)
        fail_msg("after %s: want '%s', got '%s'", after ? after : "(none)", want, got);
}

/* Pages start at the cursor, also one between two ids or past the last, and follow hosts that
 * join and leave between them. */
static void
test_hosts_after(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct host_list two = {.n = 0};
    (void)state;

    expect_ids_after(f, NULL, "");
    hello(f, "h5", 0);
    hello(f, "h1", 0);
    hello(f, "h3", 0);
    expect_ids_after(f, NULL, "h1 h3 h5");
    expect_ids_after(f, "h1", "h3 h5");
    expect_ids_after(f, "h2", "h3 h5");
    expect_ids_after(f, "h0", "h1 h3 h5");
    expect_ids_after(f, "h5", "");
    expect_ids_after(f, "h9", "");
    hello(f, "h4", 0);
    expect_ids_after(f, "h3", "h4 h5");
    assert_int_equal(fleet_remove(f, "h4", 0), 0);
    assert_int_equal(fleet_remove(f, "h1", 0), 0);
    expect_ids_after(f, NULL, "h3 h5");
    hello(f, "h2", 0);
    assert_int_equal(fleet_hosts_each_after(f, NULL, collect_two, &two), 0);
    assert_int_equal(two.n, 2);
    assert_string_equal(two.ids[1], "h3");
    fleet_destroy(&f);
}

static void
test_sorting(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct host_list hosts = {.n = 0};
    struct rep rep;
    (void)state;

    hello(f, "zeta", 0);
    hello(f, "alpha", 0);
    hello(f, "mid", 0);
    rep_init(&rep, MIB(8192), MIB(4096));
    rep_vm(&rep, 1, "web", MIB(3000), MIB(50));
    rep_vm(&rep, 2, "db", MIB(1000), MIB(10))->has_unused = false;
    assert_int_equal(fleet_report(f, "zeta", 1, &rep.r, 0), 0);
    rep_init(&rep, MIB(8192), MIB(4096));
    rep_vm(&rep, 3, "cache", MIB(2000), MIB(700));
    rep_vm(&rep, 4, "web", MIB(1000), MIB(5));
    assert_int_equal(fleet_report(f, "alpha", 1, &rep.r, 0), 0);

    assert_int_equal(fleet_hosts_each(f, collect_host, &hosts), 0);
    assert_int_equal(hosts.n, 3);
    assert_string_equal(hosts.ids[0], "alpha");
    assert_string_equal(hosts.ids[1], "mid");
    assert_string_equal(hosts.ids[2], "zeta");
    assert_int_equal(fleet_hosts_each(f, fail_host, NULL), -EINTR);

    const char *by_name[] = {"alpha/cache", "zeta/db", "alpha/web", "zeta/web"};
    expect_vms(f, FLEET_VM_KEY_NAME, false, by_name, 4);
    const char *by_host[] = {"alpha/cache", "alpha/web", "zeta/web", "zeta/db"};
    expect_vms(f, FLEET_VM_KEY_HOST, false, by_host, 4);
    /* Host order from a host on: its own VMs included, a host between ids starts at the next. */
    struct vm_list from = {.n = 0};
    assert_int_equal(fleet_vms_each_from(f, NULL, collect_vm, &from), 0);
    assert_int_equal(from.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(from.line[i], by_host[i]);
    from = (struct vm_list){.n = 0};
    assert_int_equal(fleet_vms_each_from(f, "zeta", collect_vm, &from), 0);
    assert_int_equal(from.n, 2);
    assert_string_equal(from.line[0], "zeta/web");
    from = (struct vm_list){.n = 0, .stop_after = 1};
    assert_int_equal(fleet_vms_each_from(f, "beta", collect_vm, &from), 0);
    assert_int_equal(from.n, 1);
    assert_string_equal(from.line[0], "zeta/web"); /* mid has no VMs */
    const char *by_actual_desc[] = {"zeta/web", "alpha/cache", "alpha/web", "zeta/db"};
    expect_vms(f, FLEET_VM_KEY_ACTUAL, true, by_actual_desc, 4);
    const char *by_unused[] = {"alpha/web", "zeta/web", "alpha/cache", "zeta/db"};
    expect_vms(f, FLEET_VM_KEY_UNUSED, false, by_unused, 4);
    const char *by_unused_desc[] = {"alpha/cache", "zeta/web", "alpha/web", "zeta/db"};
    expect_vms(f, FLEET_VM_KEY_UNUSED, true, by_unused_desc, 4);
    /* ties (same name) break by host id, in either direction */
    const char *by_name_desc[] = {"alpha/web", "zeta/web", "zeta/db", "alpha/cache"};
    expect_vms(f, FLEET_VM_KEY_NAME, true, by_name_desc, 4);

    struct vm_list l = {.n = 0, .stop_after = 2};
    assert_int_equal(fleet_vms_each(f, FLEET_VM_KEY_NAME, false, 0, collect_vm, &l), 0);
    assert_int_equal(l.n, 2);
    /* a limit gives the head of the same order */
    for (size_t limit = 1; limit <= 5; limit++) {
        l = (struct vm_list){.n = 0};
        assert_int_equal(fleet_vms_each(f, FLEET_VM_KEY_UNUSED, true, limit, collect_vm, &l), 0);
        assert_int_equal(l.n, limit < 4 ? limit : 4);
        for (size_t i = 0; i < l.n; i++)
            assert_string_equal(l.line[i], by_unused_desc[i]);
    }
    fleet_destroy(&f);
}

struct ref_list {
    struct {
        char host[WIRE_HOST_ID_MAX];
        uint8_t uuid[FLEET_UUID_BYTES];
    } r[600];
    size_t n;
};

static int
collect_ref(const char *host_id, const struct fleet_vm *vm, void *ctx)
{
    struct ref_list *l = ctx;

    snprintf(l->r[l->n].host, sizeof(l->r[0].host), "%s", host_id);
    memcpy(l->r[l->n].uuid, vm->uuid, FLEET_UUID_BYTES);
    l->n++;
    return 0;
}

/* The limited walk (a bounded heap) gives exactly the head of the full sort, for every key and
 * direction, on a fleet with many ties. */
static void
test_limit_is_head_of_full_sort(void **state)
{
    uint64_t s = opt_seed ? opt_seed : 1;
    struct fleet *f = fleet_new(NULL);
    struct ref_list *full = calloc(1, sizeof(*full)), *head = calloc(1, sizeof(*head));
    static const size_t limits[] = {1, 2, 7, 50, 599, 600, 1000};
    struct rep rep;
    char id[16];
    (void)state;

    for (unsigned h = 0; h < 30; h++) {
        snprintf(id, sizeof(id), "h%02u", (unsigned)(next_random(&s) % 100));
        hello(f, id, 0);
        rep_init(&rep, MIB(1024), MIB(512));
        for (unsigned v = 0; v < 20; v++) {
            char name[8];
            snprintf(name, sizeof(name), "n%u", (unsigned)(next_random(&s) % 8));
            struct wire_vm *vm =
                rep_vm(&rep, h * 100 + v, name, MIB(next_random(&s) % 4), MIB(next_random(&s) % 4));
            vm->has_unused = next_random(&s) % 5 != 0;
        }
        assert_int_equal(fleet_report(f, id, 1, &rep.r, 0), 0);
    }
    for (int key = FLEET_VM_KEY_NAME; key <= FLEET_VM_KEY_UNUSED; key++) {
        for (int desc = 0; desc < 2; desc++) {
            full->n = 0;
            assert_int_equal(fleet_vms_each(f, (enum fleet_vm_key)key, desc, 0, collect_ref, full),
                             0);
            for (size_t k = 0; k < ARRAY_SIZE(limits); k++) {
                head->n = 0;
                assert_int_equal(
                    fleet_vms_each(f, (enum fleet_vm_key)key, desc, limits[k], collect_ref, head),
                    0);
                size_t want = limits[k] < full->n ? limits[k] : full->n;
                assert_int_equal(head->n, want);
                if (memcmp(head->r, full->r, want * sizeof(full->r[0])) != 0)
                    fail_msg("seed %" PRIu64 " key %d desc %d limit %zu: not the head", opt_seed,
                             key, desc, limits[k]);
            }
        }
    }
    free(full);
    free(head);
    fleet_destroy(&f);
}

static void
test_ten_thousand_hosts(void **state)
{
    struct fleet *f = fleet_new(NULL);
    struct fleet_host_info info;
    struct wire_hello h;
    char id[WIRE_HOST_ID_MAX];
    (void)state;

    memset(&h, 0, sizeof(h));
    strcpy(h.agent_version, "0.1.0");
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "hv-%05u.dc1", i);
        assert_int_equal(fleet_hello(f, id, &h, i), 0);
    }
    assert_int_equal(fleet_host_count(f), 10000);
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "hv-%05u.dc1", i);
        assert_int_equal(fleet_host_get(f, id, &info), 0);
        assert_string_equal(info.host_id, id);
        assert_int_equal(info.first_seen_ms, i);
    }
    assert_int_equal(fleet_host_get(f, "hv-10000.dc1", &info), -ENOENT);
    /* Remove every third: the others stay reachable (deletion keeps probe chains whole). */
    for (unsigned i = 0; i < 10000; i += 3) {
        snprintf(id, sizeof(id), "hv-%05u.dc1", i);
        assert_int_equal(fleet_remove(f, id, 20000), 0);
    }
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "hv-%05u.dc1", i);
        assert_int_equal(fleet_host_get(f, id, &info), i % 3 == 0 ? -ENOENT : 0);
    }
    assert_int_equal(fleet_host_count(f), 10000 - 3334);
    fleet_destroy(&f);
}

static void
test_uuids(void **state)
{
    uint8_t u[FLEET_UUID_BYTES];
    char text[WIRE_UUID_LEN];
    (void)state;

    assert_int_equal(fleet_uuid_parse("6F1C1C62-3a55-4c8e-9d53-0c6a3c1e2b01", u), 0);
    fleet_uuid_format(u, text);
    assert_string_equal(text, "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b01");
    assert_int_equal(u[0], 0x6f);
    assert_int_equal(u[15], 0x01);
    assert_int_equal(fleet_uuid_parse("6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b0", u), -EINVAL);
    assert_int_equal(fleet_uuid_parse("6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b011", u), -EINVAL);
    assert_int_equal(fleet_uuid_parse("6f1c1c62_3a55-4c8e-9d53-0c6a3c1e2b01", u), -EINVAL);
    assert_int_equal(fleet_uuid_parse("6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2bg1", u), -EINVAL);
    /* The characters just outside each range of digits, either case. */
    const char *beside[] = {"/", ":", "@", "G", "`", "g", "-"};
    for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]); i++) {
        char bad[WIRE_UUID_LEN] = "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b01";
        bad[34] = beside[i][0];
        assert_int_equal(fleet_uuid_parse(bad, u), -EINVAL);
        bad[34] = '0';
        bad[0] = beside[i][0];
        assert_int_equal(fleet_uuid_parse(bad, u), -EINVAL);
    }
    assert_int_equal(fleet_uuid_parse("", u), -EINVAL);
}

/* Reports 1..N, each a different VM set, arrive shuffled with duplicates: after each arrival
 * the host must hold the newest report received so far, exactly. */
static void
test_random_arrival_order(void **state)
{
    uint64_t s = opt_seed ? opt_seed : 1;
    struct rep *reps = calloc(41, sizeof(*reps));
    unsigned order[80];
    (void)state;

    for (unsigned r = 1; r <= 40; r++) {
        rep_init(&reps[r], MIB(1024) * r, MIB(512));
        unsigned n = (unsigned)(next_random(&s) % 20);
        for (unsigned v = 0; v < n; v++)
            rep_vm(&reps[r], (unsigned)(next_random(&s) % 1000) + v * 1000, "vm", MIB(r), MIB(v));
    }
    for (unsigned i = 0; i < 80; i++)
        order[i] = 1 + i % 40;
    for (unsigned i = 79; i > 0; i--) {
        unsigned j = (unsigned)(next_random(&s) % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    struct fleet *f = fleet_new(NULL);
    struct fleet_host_info info;
    unsigned newest = 0;
    hello(f, "hv-01", 0);
    for (unsigned i = 0; i < 80; i++) {
        int rc = fleet_report(f, "hv-01", order[i], &reps[order[i]].r, i);
        assert_int_equal(rc, order[i] > newest ? 0 : 1);
        if (order[i] > newest)
            newest = order[i];
        assert_int_equal(fleet_host_get(f, "hv-01", &info), 0);
        if (info.host_total_kib != MIB(1024) * newest || info.n_vms != reps[newest].r.n_vms)
            fail_msg("seed %" PRIu64 ": after arrival %u want report %u", opt_seed, i, newest);
    }
    fleet_destroy(&f);
    free(reps);
}

/* The totals worked out the slow way, from what every host shows (fleet_hosts_each). */
struct walked {
    uint64_t pressure_kib;
    struct fleet_totals t;
    size_t all_vms;
};

static int
walk_host(const struct fleet_host_info *h, void *ctx)
{
    struct walked *w = ctx;

    w->t.hosts++;
    w->t.hosts_by_liveness[h->liveness]++;
    w->all_vms += h->n_vms;
    if (!h->has_report || h->liveness == FLEET_LIVENESS_DOWN)
        return 0;
    w->t.hosts_reporting++;
    w->t.vms += h->n_vms;
    w->t.host_total_kib += h->host_total_kib;
    w->t.host_available_kib += h->host_available_kib;
    w->t.vm_actual_kib += h->vm_actual_kib;
    w->t.vm_max_kib += h->vm_max_kib;
    for (size_t v = 0; v < h->n_vms; v++) {
        const struct fleet_vm *vm = &h->vms[v];
        w->t.vms_under_pressure += (vm->has_unused && vm->unused_kib < w->pressure_kib) ||
                                   vm->last_reason == SCHED_REASON_NEED_UNMET;
    }
    return 0;
}

static void
expect_totals_walked(struct fleet *f, uint64_t now_ms, uint64_t pressure_kib, size_t step)
{
    struct walked w = {.pressure_kib = pressure_kib};
    struct fleet_totals t;

    fleet_hosts_each(f, walk_host, &w);
    fleet_totals(f, now_ms, pressure_kib, &t);
    if (t.hosts != w.t.hosts || t.hosts_reporting != w.t.hosts_reporting || t.vms != w.t.vms ||
        t.vms_under_pressure != w.t.vms_under_pressure || t.host_total_kib != w.t.host_total_kib ||
        t.host_available_kib != w.t.host_available_kib || t.vm_actual_kib != w.t.vm_actual_kib ||
        t.vm_max_kib != w.t.vm_max_kib ||
        memcmp(t.hosts_by_liveness, w.t.hosts_by_liveness, sizeof(t.hosts_by_liveness)) != 0 ||
        fleet_vm_count(f) != w.all_vms)
        fail_msg("seed %" PRIu64 " step %zu: kept totals differ from a walk: hosts %zu/%zu "
                 "reporting %zu/%zu vms %zu/%zu pressure %zu/%zu actual %" PRIu64 "/%" PRIu64
                 " total %" PRIu64 "/%" PRIu64 " all vms %zu/%zu (kept/walked)",
                 opt_seed, step, t.hosts, w.t.hosts, t.hosts_reporting, w.t.hosts_reporting, t.vms,
                 w.t.vms, t.vms_under_pressure, w.t.vms_under_pressure, t.vm_actual_kib,
                 w.t.vm_actual_kib, t.host_total_kib, w.t.host_total_kib, fleet_vm_count(f),
                 w.all_vms);
}

/* The totals are kept as hosts join, report, go stale, down and back, and are removed: after
 * every step of a random run they equal what a walk of every host adds up, at the threshold
 * the fleet keeps and at another one, and after the kept threshold changes. */
static void
test_totals_kept_match_walk(void **state)
{
    struct fleet_opts fo = {.stale_after_ms = 1000, .down_after_ms = 2000};
    struct fleet *f = fleet_new(&fo);
    uint64_t s = opt_seed ? opt_seed : 1, now_ms = 0, seq = 1;
    struct rep rep;
    char id[16];
    (void)state;

    fleet_set_pressure_threshold(f, MIB(100));
    for (size_t step = 0; step < 3000; step++) {
        uint64_t r = next_random(&s);
        snprintf(id, sizeof(id), "h%u", (unsigned)(r >> 8) % 12);
        switch (r % 8) {
        case 0:
        case 1:
            if (fleet_host_get(f, id, &(struct fleet_host_info){0}) != 0)
                hello(f, id, now_ms);
            break;
        case 2:
        case 3:
        case 4: {
            unsigned n = (unsigned)(r >> 16) % 6;
            rep_init(&rep, MIB(1000 + (r >> 24) % 8000), MIB((r >> 32) % 900));
            for (unsigned v = 0; v < n; v++) {
                uint64_t rv = next_random(&s);
                rep_vm(&rep, v, "vm", MIB(256 + rv % 2000), MIB(rv % 300))->has_unused =
                    rv % 5 != 0;
                if (rv % 7 == 0)
                    rep_decision(&rep, v, rv % 2 ? SCHED_REASON_NEED_UNMET : SCHED_REASON_GROW, 0,
                                 MIB(1));
            }
            fleet_report(f, id, seq++, &rep.r, now_ms);
            break;
        }
        case 5:
            now_ms += (r >> 12) % 1500;
            fleet_tick(f, now_ms, NULL, NULL);
            break;
        case 6:
            fleet_heartbeat(f, id, seq++, 0, now_ms);
            break;
        case 7:
            if ((r >> 40) % 4 == 0)
                fleet_remove(f, id, now_ms);
            break;
        }
        expect_totals_walked(f, now_ms, MIB(100), step);
        if (step % 100 == 0)
            expect_totals_walked(f, now_ms, MIB(150), step); /* not the kept one: walked */
    }
    fleet_set_pressure_threshold(f, MIB(150));
    expect_totals_walked(f, now_ms, MIB(150), 3000);
    fleet_destroy(&f);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_report_heartbeat),
        cmocka_unit_test(test_unknown_host_and_bad_input),
        cmocka_unit_test(test_duplicate_and_reordered_reports),
        cmocka_unit_test(test_liveness_transitions),
        cmocka_unit_test(test_event_ring_and_policy_events),
        cmocka_unit_test(test_ack_restore),
        cmocka_unit_test(test_vm_set_replaced),
        cmocka_unit_test(test_decision_ring_bounded),
        cmocka_unit_test(test_totals),
        cmocka_unit_test(test_sorting),
        cmocka_unit_test(test_hosts_after),
        cmocka_unit_test(test_limit_is_head_of_full_sort),
        cmocka_unit_test(test_ten_thousand_hosts),
        cmocka_unit_test(test_totals_saturate),
        cmocka_unit_test(test_totals_kept_match_walk),
        cmocka_unit_test(test_uuids),
        cmocka_unit_test(test_random_arrival_order),
    };

    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0)
            opt_seed = strtoull(argv[++i], NULL, 10);
    }
    if (!opt_seed)
        opt_seed = (uint64_t)time(NULL);
    print_message("test_fleet: seed %" PRIu64 " (replay with --seed)\n", opt_seed);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* every failure names the seed, not only the shuffled-arrival one (the others assert) */
    if (failed)
        print_error("test_fleet: failed with seed %" PRIu64 ": replay with --seed %" PRIu64 "\n",
                    opt_seed, opt_seed);
    return failed;
}
