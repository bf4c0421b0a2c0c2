/*
 * test_tracker.c - balloon tracking: reached, stuck, recovered, retried, forgotten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "tracker.h"

#define MIB(x)   ((uint64_t)(x)*1024)
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reaching_target),
        cmocka_unit_test(test_stuck_then_recovered),
        cmocka_unit_test(test_same_target_again_does_not_reset_the_clock),
        cmocka_unit_test(test_retry_forgets_target),
        cmocka_unit_test(test_unseen_vms_are_forgotten_and_many_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
