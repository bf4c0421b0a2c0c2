/*
 * test_dry_run.c URI - a dry run writes nothing to the hypervisor, the guest stats period
 * included: rounds in dry run leave the period a fresh connection reads unchanged; the same
 * rounds in a real run set it (which proves the check can see a write).
 *
 * URI is a libvirt test driver URI whose domains are shared inside the process
 * (test:///default) while one connection is open: a keeper holds one for the test, so every
 * hv_open() below sees the same domains, each with a fresh cache.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <libvirt/libvirt.h>

#include "hv.h"
#include "hv_backends.h"
#include "policy.h"
#include "round.h"
#include "util.h"

#define VMS_MAX 16

static const char *uri = "test:///default";

/* The stats period of every VM with a balloon, as a new connection reads it; how many. */
static size_t
read_periods(uint32_t *periods, char names[][HV_NAME_MAX])
{
    struct hv *hv = NULL;
    struct hv_host host;
    struct hv_vm vms[VMS_MAX];
    size_t n = 0, k = 0;
    char err[HV_ERR_MAX];

    if (hv_open(uri, &hv, err, sizeof(err)) < 0)
        fail_msg("hv_open(%s): %s", uri, err);
    int rc = hv->ops->sample(hv->ctx, &host, vms, VMS_MAX, &n);
    if (rc < 0)
        fail_msg("sample: %s", strerror(-rc));
    for (size_t i = 0; i < n; i++) {
        if (!vms[i].has_balloon)
            continue;
        periods[k] = vms[i].stats_period_s;
        snprintf(names[k], HV_NAME_MAX, "%s", vms[i].name);
        k++;
    }
    hv_close(&hv);
    return k;
}

static void
run_rounds(bool dry_run, const struct policy *policy)
{
    struct hv *hv = NULL;
    char err[HV_ERR_MAX];

    if (hv_open(uri, &hv, err, sizeof(err)) < 0)
        fail_msg("hv_open(%s): %s", uri, err);
    struct round *r = round_new(hv, dry_run);
    for (int i = 0; i < 3; i++)
        round_run(r, policy, util_clock_ms(CLOCK_MONOTONIC));
    round_destroy(&r);
    hv_close(&hv);
}

static void
test_dry_run_leaves_the_stats_period_alone(void **state)
{
    uint32_t before[VMS_MAX], after[VMS_MAX];
    char names[VMS_MAX][HV_NAME_MAX];
    struct policy policy;
    struct hv *keeper = NULL;
    char err[HV_ERR_MAX];
    (void)state;

    if (hv_open(uri, &keeper, err, sizeof(err)) < 0)
        fail_msg("hv_open(%s): %s", uri, err);
    policy_init_defaults(&policy);
    size_t n = read_periods(before, names);
    assert_true(n > 0);
    /* A period no VM has yet, so that a write would show. */
    uint32_t want_s = 7;
    for (size_t i = 0; i < n; i++) {
        if (before[i] == want_s)
            fail_msg("%s already has period %u s: pick another", names[i], want_s);
    }
    policy.interval_ms = want_s * 1000;

    run_rounds(true, &policy);
    assert_int_equal(read_periods(after, names), n);
    for (size_t i = 0; i < n; i++) {
        if (after[i] != before[i])
            fail_msg("dry run: %s's stats period went from %u to %u s", names[i], before[i],
                     after[i]);
    }

    run_rounds(false, &policy);
    assert_int_equal(read_periods(after, names), n);
    for (size_t i = 0; i < n; i++) {
        if (after[i] != want_s)
            fail_msg("real run: want %s's stats period set to %u s, got %u", names[i], want_s,
                     after[i]);
    }
    hv_close(&keeper);
}

/* A domain with a balloon, started on the test driver after the agent's first rounds. */
static const char late_xml[] =
    "<domain type='test'><name>late</name><uuid>c0ffee00-0000-4000-8000-0000000000aa</uuid>"
    "<memory unit='MiB'>1024</memory><currentMemory unit='MiB'>1024</currentMemory>"
    "<vcpu>1</vcpu><os><type>hvm</type></os>"
    "<devices><memballoon model='virtio'/></devices></domain>";

/* The stats period a new connection reads for the domain named name; fails when it is gone. */
static uint32_t
period_of(const char *name)
{
    uint32_t periods[VMS_MAX];
    char names[VMS_MAX][HV_NAME_MAX];
    size_t n = read_periods(periods, names);

    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return periods[i];
    fail_msg("no domain %s with a balloon", name);
    return 0;
}

/* Switched to a dry run (SIGHUP), the agent no longer sets the period on a domain that starts
 * later; switched back, it does. */
static void
test_switch_to_dry_run_stops_setting_the_period(void **state)
{
    struct policy policy;
    struct hv *hv = NULL;
    char err[HV_ERR_MAX];
    (void)state;

    if (hv_open(uri, &hv, err, sizeof(err)) < 0)
        fail_msg("hv_open(%s): %s", uri, err);
    policy_init_defaults(&policy);
    policy.interval_ms = 9000; /* a period no domain has */
    struct round *r = round_new(hv, false);
    round_run(r, &policy, util_clock_ms(CLOCK_MONOTONIC));
    round_set_dry_run(r, true);

    virConnectPtr conn = virConnectOpen(uri);
    assert_non_null(conn);
    virDomainPtr late = virDomainCreateXML(conn, late_xml, 0);
    assert_non_null(late);
    uint32_t before = period_of("late");
    assert_int_not_equal(before, 9);
    for (int i = 0; i < 3; i++)
        round_run(r, &policy, util_clock_ms(CLOCK_MONOTONIC));
    assert_int_equal(period_of("late"), before);

    round_set_dry_run(r, false);
    round_run(r, &policy, util_clock_ms(CLOCK_MONOTONIC));
    assert_int_equal(period_of("late"), 9);

    virDomainDestroy(late);
    virDomainFree(late);
    virConnectClose(conn);
    round_destroy(&r);
    hv_close(&hv);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dry_run_leaves_the_stats_period_alone),
        cmocka_unit_test(test_switch_to_dry_run_stops_setting_the_period),
    };
    if (argc > 1)
        uri = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
