/*
 * test_apply.c - the round's apply path under faults, and dry runs (ctest label `sim`).
 *
 * A fault-injecting port wraps the sim behind the same struct hv: set_target fails with -EIO
 * for one named VM, or with -ENOTCONN from the n-th call on. The round must tell the truth
 * (an error, applied false, the failure counted), cut a grow by what a failed shrink was to
 * fund, keep the host floor, and leave the targets it set standing. A dry run sets nothing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv_sim.h"
#include "log.h"
#include "round.h"
#include "sched_check.h"

#define MIB(x) ((uint64_t)(x)*1024)

/* needy is short (unused ~40 MiB); donor has ~1.6 GiB spare; the host has plenty. The donor
 * gives its 64 MiB step to needy, the host the rest of needy's need. */
static const char scenario[] = "{\"host\": {\"total_mib\": 16384, \"reserved_mib\": 1024},"
                               " \"vms\": ["
                               "  {\"name\": \"needy\", \"max_mib\": 4096, \"initial_mib\": 1024,"
                               "   \"workload\": [{\"at_s\": 0, \"used_mib\": 880}]},"
                               "  {\"name\": \"donor\", \"max_mib\": 4096, \"initial_mib\": 2048,"
                               "   \"workload\": [{\"at_s\": 0, \"used_mib\": 300}]}]}";

struct fault {
    struct hv hv;    /* what the round sees */
    struct hv *real; /* the sim */
    const char *fail_uuid;
    int fail_rc;
    unsigned calls;
    unsigned enotconn_from; /* 0 = never */
};

static int
fault_sample(void *ctx, struct hv_host *host, struct hv_vm *vms, size_t cap, size_t *n)
{
    struct fault *f = ctx;
    return f->real->ops->sample(f->real->ctx, host, vms, cap, n);
}

static int
fault_set_target(void *ctx, const char *uuid, uint64_t target_kib)
{
    struct fault *f = ctx;

    f->calls++;
    if (f->enotconn_from && f->calls >= f->enotconn_from)
        return -ENOTCONN;
    if (f->fail_uuid && strcmp(uuid, f->fail_uuid) == 0)
        return f->fail_rc;
    return f->real->ops->set_target(f->real->ctx, uuid, target_kib);
}

static int
fault_set_stats_period(void *ctx, unsigned period_s)
{
    struct fault *f = ctx;
    return f->real->ops->set_stats_period(f->real->ctx, period_s);
}

static void
fault_close(void *ctx)
{
    (void)ctx;
}

static const struct hv_ops fault_ops = {
    .name = "fault",
    .sample = fault_sample,
    .set_target = fault_set_target,
    .set_stats_period = fault_set_stats_period,
    .close = fault_close,
};

struct run {
    struct hv *sim_hv;
    struct sim *sim;
    struct fault fault;
    struct round *round;
    struct policy policy;
};

static void
open_run(struct run *run, bool dry_run)
{
    char err[HV_ERR_MAX];

    memset(run, 0, sizeof(*run));
    if (sim_open_json(scenario, "apply", &run->sim_hv, err, sizeof(err)) != 0)
        fail_msg("scenario: %s", err);
    run->sim = sim_from_hv(run->sim_hv);
    sim_use_fake_clock(run->sim);
    sim_advance(run->sim, 2000); /* the guests have reported */
    run->fault.real = run->sim_hv;
    run->fault.hv = (struct hv){.ops = &fault_ops, .ctx = &run->fault};
    run->round = round_new(&run->fault.hv, dry_run);
    policy_init_defaults(&run->policy);
}

static void
close_run(struct run *run)
{
    round_destroy(&run->round);
    hv_close(&run->sim_hv);
}

static void
vm_named(struct sim *sim, const char *name, struct sim_vm_view *out)
{
    for (size_t i = 0; i < sim_vm_count(sim); i++) {
        sim_vm_view(sim, i, out);
        if (strcmp(out->name, name) == 0)
            return;
    }
    fail_msg("no VM named %s", name);
}

static const struct sched_entry *
entry_named(const struct round_view *view, const char *name)
{
    for (size_t i = 0; i < view->n_vms; i++) {
        if (strcmp(view->vms[i].name, name) == 0)
            return view->entry_of[i];
    }
    fail_msg("no plan entry for %s", name);
    return NULL;
}

/* The plan the round made holds every invariant, failures or not. */
static void
assert_plan_valid(struct run *run, const struct round_view *view)
{
    char msg[512];
    if (sched_check_plan(&run->policy, view->sched_host, view->snapshot, view->n_vms, view->plan,
                         msg, sizeof(msg)) != 0)
        fail_msg("plan: %s", msg);
}

/* Without faults: the donor funds part of needy's grow (the cases below rely on it). */
static void
test_baseline(void **state)
{
    struct run run;
    struct round_view view;
    struct sim_vm_view needy;
    (void)state;

    open_run(&run, false);
    assert_int_equal(round_run(run.round, &run.policy, sim_now_ms(run.sim)), 0);
    round_get_view(run.round, &view);
    assert_plan_valid(&run, &view);
    const struct sched_entry *e = entry_named(&view, "needy");
    assert_int_equal(e->reason, SCHED_REASON_GROW);
    assert_true(e->vm_kib > 0);
    assert_true(e->host_kib > 0);
    assert_true(view.applied);
    vm_named(run.sim, "needy", &needy);
    assert_int_equal(needy.target_kib, e->new_target_kib);
    assert_int_equal(round_get_counters(run.round)->apply_failures, 0);
    close_run(&run);
}

/* The donor's shrink fails: the round says so, and needy gets only the host's part. */
static void
test_failed_shrink_cuts_the_grow_it_funded(void **state)
{
    struct run run;
    struct round_view view;
    struct sim_vm_view needy, donor;
    (void)state;

    open_run(&run, false);
    vm_named(run.sim, "donor", &donor);
    run.fault.fail_uuid = donor.uuid;
    run.fault.fail_rc = -EIO;
    assert_int_equal(round_run(run.round, &run.policy, sim_now_ms(run.sim)), -EIO);
    round_get_view(run.round, &view);
    assert_plan_valid(&run, &view);
    assert_false(view.applied);
    const struct sched_entry *e = entry_named(&view, "needy");
    vm_named(run.sim, "needy", &needy);
    vm_named(run.sim, "donor", &donor);
    assert_int_equal(donor.targets_set, 0);
    /* needy's target: its old size plus the host's part only; the donor's never arrived. */
    assert_int_equal(needy.target_kib, e->old_target_kib + e->host_kib);
    const struct round_counters *c = round_get_counters(run.round);
    assert_int_equal(c->apply_failures, 1);
    assert_int_equal(c->granted_kib, e->host_kib);
    assert_int_equal(c->transferred_kib, 0);
    /* The host gave only what its plan allowed: the floor holds. */
    assert_true(c->host_granted_kib <= view.plan->summary.host_granted_kib);
    close_run(&run);
}

/* libvirtd goes away mid-apply: the rest is not tried, what was set stands. */
static void
test_enotconn_mid_apply(void **state)
{
    struct run run;
    struct round_view view;
    struct sim_vm_view needy, donor;
    (void)state;

    open_run(&run, false);
    run.fault.enotconn_from = 2; /* the shrink (first) goes through, the grow does not */
    assert_int_equal(round_run(run.round, &run.policy, sim_now_ms(run.sim)), -ENOTCONN);
    round_get_view(run.round, &view);
    assert_false(view.applied);
    vm_named(run.sim, "donor", &donor);
    vm_named(run.sim, "needy", &needy);
    assert_int_equal(donor.targets_set, 1);
    assert_true(donor.target_kib < MIB(2048));
    assert_int_equal(needy.targets_set, 0);
    assert_int_equal(round_get_counters(run.round)->grows, 0);
    close_run(&run);
}

/* A dry run plans and logs every decision as dry, and sets nothing, round after round. */
static void
test_dry_run_sets_nothing(void **state)
{
    struct run run;
    struct round_view view;
    char path[] = "/tmp/memsched-test-apply-XXXXXX";
    (void)state;

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    open_run(&run, true);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(round_run(run.round, &run.policy, sim_now_ms(run.sim)), 0);
        round_get_view(run.round, &view);
        assert_false(view.applied);
        assert_true(view.plan->n_grows + view.plan->n_shrinks > 0);
        sim_advance(run.sim, 1000);
    }
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    for (size_t i = 0; i < sim_vm_count(run.sim); i++) {
        struct sim_vm_view v;
        sim_vm_view(run.sim, i, &v);
        if (v.targets_set != 0)
            fail_msg("dry run: %s got %llu targets", v.name, (unsigned long long)v.targets_set);
    }
    assert_int_equal(run.fault.calls, 0);
    close_run(&run);

    /* Every decision line says dry_run=yes, and there were decisions. */
    FILE *log = fdopen(fd, "r");
    char line[1024];
    unsigned decisions = 0;
    assert_non_null(log);
    rewind(log);
    while (fgets(line, sizeof(line), log)) {
        if (!strstr(line, " decision="))
            continue;
        decisions++;
        if (!strstr(line, " dry_run=yes"))
            fail_msg("a decision not marked dry: %s", line);
    }
    fclose(log);
    unlink(path);
    assert_true(decisions >= 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_failed_shrink_cuts_the_grow_it_funded),
        cmocka_unit_test(test_enotconn_mid_apply),
        cmocka_unit_test(test_dry_run_sets_nothing),
    };
    log_set_level(LOG_LEVEL_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
