/*
 * test_cadence.c - when the agent reports (agent/cadence.h): the rule over plain rounds, the
 * period's grid, and the holder fed hand-made round views.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cadence.h"

#define MIB 1024u

static const char *
name(enum cadence_reason r)
{
    return cadence_reason_name(r);
}

#define assert_reason(got, want)                                                                   \
    do {                                                                                           \
        enum cadence_reason got_ = (got), want_ = (want);                                          \
        if (got_ != want_)                                                                         \
            fail_msg("%s: want %s, got %s", #got, name(want_), name(got_));                        \
    } while (0)

/* Two quiet VMs on a host with 4 GiB available, as last reported. */
static struct cadence_vm last_vms[2] = {
    {.status_hash = 11, .actual_kib = 2048 * MIB, .unused_kib = 900 * MIB, .usable_kib = 800 * MIB},
    {.status_hash = 22, .actual_kib = 1024 * MIB, .unused_kib = 300 * MIB, .usable_kib = 250 * MIB},
};

static struct cadence_round
round_of(const struct cadence_vm *vms, size_t n)
{
    return (struct cadence_round){.available_kib = 4096 * MIB, .hellos = 1, .vms = vms, .n_vms = n};
}

static void
test_first_round_is_reported(void **state)
{
    struct cadence_round now = round_of(last_vms, 2);
    (void)state;
    assert_reason(cadence_check(NULL, &now, 0, 0), CADENCE_FIRST);
}

/* Nothing new and the period not up: no report; the period up: a report. */
static void
test_quiet_round_waits_for_the_period(void **state)
{
    struct cadence_round last = round_of(last_vms, 2), now = last;
    struct cadence_vm vms[2];
    (void)state;

    memcpy(vms, last_vms, sizeof(vms));
    vms[0].unused_kib -= 10 * MIB; /* the drift of a quiet guest */
    vms[1].usable_kib += 64 * MIB; /* exactly the threshold: not more than it */
    now.vms = vms;
    now.available_kib -= 200 * MIB; /* 1/16 of 4 GiB is 256 MiB */
    assert_reason(cadence_check(&last, &now, 9999, 10000), CADENCE_QUIET);
    assert_reason(cadence_check(&last, &now, 10000, 10000), CADENCE_PERIOD);
}

/* A round that decided something is reported at once, before anything else is looked at. */
static void
test_decisions_are_reported_at_once(void **state)
{
    struct cadence_round last = round_of(last_vms, 2), now = last;
    (void)state;

    now.n_decisions = 1;
    assert_reason(cadence_check(&last, &now, 1, 10000), CADENCE_DECISIONS);
}

static void
test_new_thresholds_are_reported(void **state)
{
    struct cadence_round last = round_of(last_vms, 2), now = last;
    (void)state;

    now.policy_hash = 99;
    assert_reason(cadence_check(&last, &now, 1, 10000), CADENCE_POLICY);
}

static void
test_a_new_hello_is_followed_by_a_report(void **state)
{
    struct cadence_round last = round_of(last_vms, 2), now = last;
    (void)state;

    now.hellos = 2;
    assert_reason(cadence_check(&last, &now, 1, 10000), CADENCE_HELLO);
}

/* A VM came, went, or changed how it stands (its status hash). */
static void
test_vm_set_changes_are_reported(void **state)
{
    struct cadence_round last = round_of(last_vms, 2), now = last;
    struct cadence_vm vms[2];
    (void)state;

    now.n_vms = 1;
    assert_reason(cadence_check(&last, &now, 1, 10000), CADENCE_VMS);
    memcpy(vms, last_vms, sizeof(vms));
    vms[1].status_hash = 23;
    now = last;
    now.vms = vms;
    assert_reason(cadence_check(&last, &now, 1, 10000), CADENCE_VMS);
    /* The same VMs in another order: a spare report, never a missed one. */
    vms[0] = last_vms[1];
    vms[1] = last_vms[0];
    assert_reason(cadence_check(&last, &now, 1, 10000), CADENCE_VMS);
}

/* Each number, moved by more than the threshold, is news. */
static void
test_material_moves_are_reported(void **state)
{
    struct cadence_round last = round_of(last_vms, 2);
    (void)state;

    for (int which = 0; which < 4; which++) {
        struct cadence_vm vms[2];
        struct cadence_round now = last;
        memcpy(vms, last_vms, sizeof(vms));
        now.vms = vms;
        if (which == 0)
            vms[1].actual_kib += 65 * MIB;
        else if (which == 1)
            vms[1].unused_kib -= 65 * MIB;
        else if (which == 2)
            vms[0].usable_kib += 65 * MIB;
        else
            now.available_kib -= 257 * MIB;
        if (cadence_check(&last, &now, 1, 10000) != CADENCE_MOVED)
            fail_msg("case %d: want moved, got %s", which,
                     name(cadence_check(&last, &now, 1, 10000)));
    }
}

static void
test_moved_threshold(void **state)
{
    (void)state;
    assert_false(cadence_moved(0, 64 * MIB));
    assert_true(cadence_moved(0, 64 * MIB + 1));
    assert_true(cadence_moved(64 * MIB + 1, 0));
    /* Large: 1/16 of 4 GiB = 256 MiB. */
    assert_false(cadence_moved(4096 * MIB, 4096 * MIB + 256 * MIB));
    assert_true(cadence_moved(4096 * MIB, 4096 * MIB - 257 * MIB));
}

/* Reports for the period keep to its grid: one sent late does not push the next past the
 * next round (which then would send none); one later than a whole period restarts the grid.
 * An early one (news) starts the period anew. */
static void
test_next_due_keeps_to_the_grid(void **state)
{
    (void)state;
    assert_int_equal(cadence_next_due_ms(1000, 1001, 1000), 2000);
    assert_int_equal(cadence_next_due_ms(1000, 1000, 1000), 2000);
    assert_int_equal(cadence_next_due_ms(1000, 1999, 1000), 2000);
    assert_int_equal(cadence_next_due_ms(1000, 3500, 1000), 3500);
    assert_int_equal(cadence_next_due_ms(0, 5, 500), 500);
    assert_int_equal(cadence_next_due_ms(10000, 4000, 10000), 14000);
}

/* A hand-made round view of n VMs (at most 8), no decisions. */
struct view_fixture {
    struct hv_host host;
    struct hv_vm vms[8];
    struct sched_vm snapshot[8];
    struct sched_entry entries[8];
    const struct sched_entry *entry_of[8];
    struct sched_plan plan;
    struct round_view view;
};

static void
make_view(struct view_fixture *f, size_t n)
{
    memset(f, 0, sizeof(*f));
    f->host.available_kib = 4096 * MIB;
    for (size_t i = 0; i < n; i++) {
        snprintf(f->vms[i].uuid, sizeof(f->vms[i].uuid), "00000000-0000-0000-0000-%012zu", i);
        f->vms[i].actual_kib = 1024 * MIB;
        f->vms[i].unused_kib = 300 * MIB;
        f->vms[i].has_unused = true;
        f->vms[i].managed = true;
        f->entries[i].vm = (uint32_t)i;
        f->entries[i].reason = SCHED_REASON_IN_BAND;
        f->entry_of[i] = &f->entries[i];
    }
    f->plan.entries = f->entries;
    f->plan.n_entries = n;
    f->view = (struct round_view){.host = &f->host,
                                  .vms = f->vms,
                                  .snapshot = f->snapshot,
                                  .plan = &f->plan,
                                  .entry_of = f->entry_of,
                                  .n_vms = n};
}

/* The holder: after a report the same round is quiet until the period; a skip reason that
 * changes, a VM that comes (the buffers grow: the last report must survive it) or a decision
 * is news. */
static void
test_holder_remembers_the_last_report(void **state)
{
    struct view_fixture f;
    struct cadence *c = cadence_new();
    (void)state;

    make_view(&f, 2);
    assert_reason(cadence_due(c, &f.view, 1, 0), CADENCE_FIRST);
    cadence_sent(c, 0, 10000);
    assert_reason(cadence_due(c, &f.view, 1, 500), CADENCE_QUIET);
    f.entries[1].reason = SCHED_REASON_STALE_STATS;
    assert_reason(cadence_due(c, &f.view, 1, 600), CADENCE_VMS);
    cadence_sent(c, 600, 10000); /* early: the next is due at 10600 */
    assert_reason(cadence_due(c, &f.view, 1, 10599), CADENCE_QUIET);
    assert_reason(cadence_due(c, &f.view, 1, 10600), CADENCE_PERIOD);
    cadence_sent(c, 10600, 10000);

    struct view_fixture big;
    make_view(&big, 8);
    assert_reason(cadence_due(c, &big.view, 1, 10700), CADENCE_VMS); /* grows the buffers */
    make_view(&f, 2);
    f.entries[1].reason = SCHED_REASON_STALE_STATS;
    assert_reason(cadence_due(c, &f.view, 1, 10800), CADENCE_QUIET); /* last kept */
    struct policy p = {.vm_min_unused_kib = 100 * MIB};
    f.view.policy = &p;
    assert_reason(cadence_due(c, &f.view, 1, 10850), CADENCE_POLICY);
    f.view.policy = NULL;
    f.plan.n_grows = 1;
    assert_reason(cadence_due(c, &f.view, 1, 10900), CADENCE_DECISIONS);
    /* A new period (a reload): the next round is reported, then the period counts from it. */
    f.plan.n_grows = 0;
    cadence_expire(c);
    assert_reason(cadence_due(c, &f.view, 1, 11000), CADENCE_PERIOD);
    cadence_sent(c, 11000, 1000);
    assert_reason(cadence_due(c, &f.view, 1, 11999), CADENCE_QUIET);
    assert_reason(cadence_due(c, &f.view, 1, 12000), CADENCE_PERIOD);
    cadence_destroy(&c);
    assert_null(c);
    cadence_destroy(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_round_is_reported),
        cmocka_unit_test(test_quiet_round_waits_for_the_period),
        cmocka_unit_test(test_decisions_are_reported_at_once),
        cmocka_unit_test(test_a_new_hello_is_followed_by_a_report),
        cmocka_unit_test(test_new_thresholds_are_reported),
        cmocka_unit_test(test_vm_set_changes_are_reported),
        cmocka_unit_test(test_material_moves_are_reported),
        cmocka_unit_test(test_moved_threshold),
        cmocka_unit_test(test_next_due_keeps_to_the_grid),
        cmocka_unit_test(test_holder_remembers_the_last_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
