/*
 * test_tracker.c - balloon tracking: reached, stuck, recovered, retried, forgotten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_util.h"
#include "tracker.h"

#define STUCK_MS 10000
#define RETRY_MS 60000

static enum tracker_change
observe(struct tracker *t, const char *uuid, uint64_t actual, uint64_t now, struct tracker_vm **vm)
{
    tracker_begin_round(t, 1);
    enum tracker_change change = tracker_observe(t, uuid, actual, now, vm);
    tracker_end_round(t);
    return change;
}

static void
test_reaching_target(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    assert_int_equal(observe(t, "a", MIB(1024), 0, &vm), TRACKER_NO_CHANGE);
    tracker_set_target(vm, MIB(1200), MIB(1024), 0);
    assert_int_equal(observe(t, "a", MIB(1100), 1000, &vm), TRACKER_NO_CHANGE);
    assert_int_equal(observe(t, "a", MIB(1200), 2000, &vm), TRACKER_REACHED);
    assert_int_equal(observe(t, "a", MIB(1200), 60000, &vm), TRACKER_NO_CHANGE);
    assert_false(vm->stuck);
    tracker_destroy(&t);
    assert_null(t);
    tracker_destroy(&t);
}

static void
test_stuck_then_recovered(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    observe(t, "a", MIB(1024), 0, &vm);
    tracker_set_target(vm, MIB(900), MIB(1024), 0);
    assert_int_equal(observe(t, "a", MIB(1000), 1000, &vm), TRACKER_NO_CHANGE);
    assert_int_equal(observe(t, "a", MIB(1000), 10999, &vm), TRACKER_NO_CHANGE);
    assert_int_equal(observe(t, "a", MIB(1000), 11000, &vm), TRACKER_STUCK);
    assert_true(vm->stuck);
    assert_int_equal(observe(t, "a", MIB(1000), 12000, &vm), TRACKER_NO_CHANGE); /* said once */
    assert_int_equal(observe(t, "a", MIB(950), 13000, &vm), TRACKER_RECOVERED);
    assert_false(vm->stuck);
    tracker_destroy(&t);
}

static void
test_same_target_again_does_not_reset_the_clock(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    observe(t, "a", MIB(1024), 0, &vm);
    tracker_set_target(vm, MIB(900), MIB(1024), 0);
    observe(t, "a", MIB(1024), 5000, &vm);
    tracker_set_target(vm, MIB(900), MIB(1024), 5000);
    assert_int_equal(observe(t, "a", MIB(1024), 10000, &vm), TRACKER_STUCK);
    tracker_destroy(&t);
}

static void
test_retry_forgets_target(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    observe(t, "a", MIB(1024), 0, &vm);
    tracker_set_target(vm, MIB(900), MIB(1024), 0);
    assert_int_equal(observe(t, "a", MIB(1024), STUCK_MS, &vm), TRACKER_STUCK);
    assert_int_equal(observe(t, "a", MIB(1024), STUCK_MS + RETRY_MS - 1, &vm), TRACKER_NO_CHANGE);
    assert_int_equal(observe(t, "a", MIB(1024), STUCK_MS + RETRY_MS, &vm), TRACKER_RETRY);
    assert_int_equal(vm->target_kib, 0);
    assert_false(vm->stuck);
    tracker_destroy(&t);
}

static void
test_unseen_vms_are_forgotten_and_many_fit(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm, *first;
    char uuid[40];
    (void)state;

    tracker_begin_round(t, 5000);
    tracker_observe(t, "vm-0", MIB(1), 0, &first);
    first->fed = true;
    for (int i = 1; i < 5000; i++) {
        snprintf(uuid, sizeof(uuid), "vm-%d", i);
        tracker_observe(t, uuid, MIB(1), 0, &vm);
    }
    assert_true(first->fed); /* records did not move during the round */
    assert_int_equal(tracker_end_round(t), 0);
    assert_int_equal(tracker_count(t), 5000);

    tracker_begin_round(t, 2);
    tracker_observe(t, "vm-0", MIB(1), 0, &vm);
    assert_true(vm->fed); /* same record found again */
    tracker_observe(t, "vm-4999", MIB(1), 0, &vm);
    assert_int_equal(tracker_end_round(t), 4998);
    assert_int_equal(tracker_count(t), 2);
    tracker_begin_round(t, 1);
    tracker_observe(t, "vm-4999", MIB(1), 0, &vm);
    assert_false(vm->fed);
    tracker_end_round(t);
    tracker_destroy(&t);
}

/* A grant is a debt until the guest touches it; a shrink of untouched pages pays it back. */
static void
test_untouched_follows_balloon_and_rss(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    observe(t, "a", MIB(512), 0, &vm);
    tracker_note_memory(vm, MIB(512), MIB(300), 0); /* first sight: 212 never touched */
    assert_int_equal(vm->untouched_kib, MIB(212));
    tracker_note_memory(vm, MIB(512), MIB(562), 1000); /* touched all, and 50 of QEMU's own */
    assert_int_equal(vm->untouched_kib, 0);
    tracker_note_memory(vm, MIB(612), MIB(562), 2000); /* a grant of 100 arrived */
    assert_int_equal(vm->untouched_kib, MIB(100));
    tracker_note_memory(vm, MIB(612), MIB(602), 3000); /* the guest touched 40 of it */
    assert_int_equal(vm->untouched_kib, MIB(60));
    /* Gave back 40 it had not touched: counted once the balloon held still for a while. */
    tracker_note_memory(vm, MIB(572), MIB(602), 4000);
    assert_int_equal(vm->untouched_kib, MIB(60));
    tracker_note_memory(vm, MIB(572), MIB(602), 4000 + TRACKER_SETTLE_MS);
    assert_int_equal(vm->untouched_kib, MIB(20));
    /* Gave back 32 it had touched, the balloon read before the process shrank: no phantom. */
    tracker_note_memory(vm, MIB(540), MIB(602), 10000);
    assert_int_equal(vm->untouched_kib, MIB(20));
    tracker_note_memory(vm, MIB(540), MIB(570), 11000);
    assert_int_equal(vm->untouched_kib, MIB(20));
    tracker_note_memory(vm, MIB(540), MIB(570), 10000 + TRACKER_SETTLE_MS);
    assert_int_equal(vm->untouched_kib, MIB(20));
    /* Growing is counted at once (the host's side), whatever happened before. */
    tracker_note_memory(vm, MIB(640), MIB(570), 14000);
    assert_int_equal(vm->untouched_kib, MIB(120));
    tracker_destroy(&t);
}

/* The rate comes from successive samples (new stamps), fast up, halving once it stops. */
static void
test_rate_from_samples(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    observe(t, "a", MIB(512), 0, &vm);
    assert_false(tracker_note_stats(vm, 0, MIB(200), 0)); /* no sample yet */
    assert_true(tracker_note_stats(vm, 10000, MIB(200), 100));
    assert_int_equal(vm->rate_kib_s, 0);
    assert_false(tracker_note_stats(vm, 10000, MIB(260), 300)); /* same sample again */
    assert_int_equal(vm->sample_seen_ms, 100);
    assert_true(tracker_note_stats(vm, 11000, MIB(240), 1100)); /* +40 in 1 s */
    assert_int_equal(vm->rate_kib_s, MIB(40));
    assert_true(tracker_note_stats(vm, 13000, MIB(400), 3100)); /* +160 in 2 s: 80/s at once */
    assert_int_equal(vm->rate_kib_s, MIB(80));
    assert_true(tracker_note_stats(vm, 14000, MIB(400), 4100)); /* stopped: halves */
    assert_int_equal(vm->rate_kib_s, MIB(40));
    assert_true(tracker_note_stats(vm, 15000, MIB(300), 5100)); /* freeing counts as 0 */
    assert_int_equal(vm->rate_kib_s, MIB(20));
    assert_true(tracker_note_stats(vm, 16000, MIB(300) + 512, 6100)); /* noise: 0.5 MiB/s */
    assert_int_equal(vm->rate_kib_s, MIB(10));
    tracker_destroy(&t);
}

/* The delay from the sample a grow was decided on to its arrival, averaged over grows. */
static void
test_grow_delay_measured(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    assert_int_equal(tracker_grow_delay_ms(t, 2000), 2000); /* nothing measured yet */
    observe(t, "a", MIB(512), 1000, &vm);
    tracker_note_stats(vm, 50000, MIB(400), 1000);
    tracker_set_target(vm, MIB(612), MIB(512), 1200);
    tracker_note_grow(vm);
    observe(t, "a", MIB(560), 2000, &vm);
    assert_int_equal(tracker_grow_delay_ms(t, 2000), 2000);
    assert_int_equal(observe(t, "a", MIB(612), 3000, &vm), TRACKER_REACHED);
    assert_int_equal(tracker_grow_delay_ms(t, 9999), 2000); /* 3000 - 1000 */
    tracker_note_stats(vm, 51000, MIB(500), 4000);
    tracker_set_target(vm, MIB(712), MIB(612), 4000);
    tracker_note_grow(vm);
    assert_int_equal(observe(t, "a", MIB(712), 7000, &vm), TRACKER_REACHED);
    assert_int_equal(tracker_grow_delay_ms(t, 9999), (3 * 2000 + 3000) / 4);
    /* A shrink is not timed. */
    tracker_note_stats(vm, 52000, MIB(500), 8000);
    tracker_set_target(vm, MIB(650), MIB(712), 8000);
    assert_int_equal(observe(t, "a", MIB(650), 20000, &vm), TRACKER_REACHED);
    assert_int_equal(tracker_grow_delay_ms(t, 9999), (3 * 2000 + 3000) / 4);
    tracker_destroy(&t);
}

static void
test_new_sample_detection(void **state)
{
    struct tracker *t = tracker_new(STUCK_MS, RETRY_MS);
    struct tracker_vm *vm;
    (void)state;

    assert_true(tracker_has_new_sample(t, "a", 0)); /* never seen: news */
    observe(t, "a", MIB(512), 0, &vm);
    assert_false(tracker_has_new_sample(t, "a", 0));
    tracker_note_stats(vm, 7000, MIB(100), 0);
    assert_false(tracker_has_new_sample(t, "a", 7000));
    assert_true(tracker_has_new_sample(t, "a", 8000));
    tracker_destroy(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reaching_target),
        cmocka_unit_test(test_stuck_then_recovered),
        cmocka_unit_test(test_same_target_again_does_not_reset_the_clock),
        cmocka_unit_test(test_retry_forgets_target),
        cmocka_unit_test(test_unseen_vms_are_forgotten_and_many_fit),
        cmocka_unit_test(test_untouched_follows_balloon_and_rss),
        cmocka_unit_test(test_rate_from_samples),
        cmocka_unit_test(test_grow_delay_measured),
        cmocka_unit_test(test_new_sample_detection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
