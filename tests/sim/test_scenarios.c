/*
 * test_scenarios.c - the agent's round on modelled hosts (ctest label `sim`).
 *
 * Each test runs the real round (sample -> track -> plan -> check -> apply) against a shipped
 * scenario on the sim's fake clock, one round per simulated second, and checks every round:
 * the round succeeds (a plan that broke an invariant would be refused and fail it), the plan
 * passes sched_check_plan() again here, and every target the sim holds lies between the VM's
 * floor and its max. Then it checks the scenario's outcome from the sim's own view.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hv_backends.h"
#include "hv_sim.h"
#include "log.h"
#include "round.h"
#include "sched_check.h"
#include "test_util.h"

#define TO_MIB(kib) ((double)(kib) / 1024.0)
#define ROUND_MS    1000
#define MAX_VMS     16

/* What a run saw, per VM (by sim index) and for the host. */
struct outcome {
    uint64_t rounds;
    uint64_t peak_actual_kib[MAX_VMS];
    uint64_t peak_at_ms[MAX_VMS];
    uint64_t final_actual_kib[MAX_VMS];
    uint64_t shrinks_after_stuck[MAX_VMS];
    uint64_t grows[MAX_VMS];           /* GROW decisions */
    uint64_t granted_kib[MAX_VMS];     /* what those decisions added to the VM's target */
    struct sim_vm_view final[MAX_VMS]; /* the sim's own view at the end (name, counters) */
    bool seen_stuck[MAX_VMS];
    bool always_skipped[MAX_VMS];
    uint64_t grows_under_pressure;
    uint64_t host_granted_under_pressure_kib;
    uint64_t fed_under_pressure_kib; /* VM to VM, after the floor's share */
    uint64_t pressure_rounds;
    uint64_t host_initial_kib;
    uint64_t host_final_kib;
    uint64_t host_min_kib;
    struct sim_host_view host;
    struct round_counters counters;
};

struct run {
    struct hv *hv;
    struct sim *sim;
    struct round *round;
    struct policy policy;
};

static void
open_run(struct run *run, const char *scenario)
{
    char path[512], err[HV_ERR_MAX];

    snprintf(path, sizeof(path), "sim:%s/%s", SCENARIO_DIR, scenario);
    if (hv_open(path, &run->hv, err, sizeof(err)) != 0)
        fail_msg("%s: %s", scenario, err);
    run->sim = sim_from_hv(run->hv);
    assert_non_null(run->sim);
    sim_use_fake_clock(run->sim);
    run->round = round_new(run->hv, false);
    policy_init_defaults(&run->policy);
    assert_true(sim_vm_count(run->sim) <= MAX_VMS);
}

static void
close_run(struct run *run)
{
    round_destroy(&run->round);
    hv_close(&run->hv);
}

/* Index of the VM named name in the round's view, or -1 when it is not running. */
static int
view_index(const struct round_view *view, const char *name)
{
    for (size_t i = 0; i < view->n_vms; i++) {
        if (strcmp(view->vms[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static uint64_t
floor_of(const struct run *run, const struct hv_vm *vm)
{
    return vm->min_kib ? vm->min_kib : run->policy.vm_floor_kib;
}

/* Every round: the plan holds, and every target the sim was given lies in [floor, max]. */
static void
check_round(struct run *run, const struct round_view *view, uint64_t now_ms)
{
    char msg[512];
    if (sched_check_plan(&run->policy, view->sched_host, view->snapshot, view->n_vms, view->plan,
                         msg, sizeof(msg)) != 0)
        fail_msg("t=%llus: %s", (unsigned long long)(now_ms / 1000), msg);
    for (size_t k = 0; k < view->plan->n_shrinks + view->plan->n_grows; k++) {
        const struct sched_entry *e = &view->plan->entries[k];
        const struct hv_vm *vm = &view->vms[e->vm];
        if (e->new_target_kib < floor_of(run, vm) || e->new_target_kib > vm->max_kib)
            fail_msg("t=%llus vm %s: target %.1f MiB outside [%.1f, %.1f]",
                     (unsigned long long)(now_ms / 1000), vm->name, TO_MIB(e->new_target_kib),
                     TO_MIB(floor_of(run, vm)), TO_MIB(vm->max_kib));
    }
}

static void
record(struct run *run, const struct round_view *view, uint64_t now_ms, struct outcome *out)
{
    const struct sched_summary *s = &view->plan->summary;

    out->pressure_rounds += s->host_pressure;
    if (s->host_pressure) {
        out->grows_under_pressure += s->grows;
        out->host_granted_under_pressure_kib += s->host_granted_kib;
        out->fed_under_pressure_kib += s->transferred_kib;
    }
    for (size_t i = 0; i < sim_vm_count(run->sim); i++) {
        struct sim_vm_view v;
        sim_vm_view(run->sim, i, &v);
        if (v.actual_kib > out->peak_actual_kib[i]) {
            out->peak_actual_kib[i] = v.actual_kib;
            out->peak_at_ms[i] = now_ms;
        }
        out->final_actual_kib[i] = v.actual_kib;
        int k = view_index(view, v.name);
        if (k < 0)
            continue;
        const struct sched_entry *e = view->entry_of[k];
        if (view->snapshot[k].stuck) {
            out->seen_stuck[i] = true;
            out->shrinks_after_stuck[i] += e->reason == SCHED_REASON_SHRINK;
        }
        if (!sched_reason_is_skip(e->reason))
            out->always_skipped[i] = false;
        if (e->reason == SCHED_REASON_GROW) {
            out->grows[i]++;
            out->granted_kib[i] += e->new_target_kib - e->old_target_kib;
        }
    }
}

/* Run the whole scenario, one round per simulated second. */
static void
run_scenario(const char *scenario, void (*tune)(struct policy *), struct outcome *out)
{
    struct run run;
    struct round_view view;

    memset(out, 0, sizeof(*out));
    memset(out->always_skipped, 1, sizeof(out->always_skipped));
    open_run(&run, scenario);
    if (tune)
        tune(&run.policy);
    uint64_t duration = sim_duration_ms(run.sim);
    assert_true(duration > 0);
    out->host_min_kib = UINT64_MAX;
    for (uint64_t t = 0; t <= duration; t += ROUND_MS) {
        int rc = round_run(run.round, &run.policy, sim_now_ms(run.sim));
        if (rc != 0)
            fail_msg("%s t=%llus: round failed: %s", scenario, (unsigned long long)(t / 1000),
                     strerror(-rc));
        round_get_view(run.round, &view);
        check_round(&run, &view, t);
        record(&run, &view, t, out);
        if (t == 0)
            out->host_initial_kib = view.host->available_kib;
        if (view.host->available_kib < out->host_min_kib)
            out->host_min_kib = view.host->available_kib;
        out->host_final_kib = view.host->available_kib;
        out->rounds++;
        sim_advance(run.sim, ROUND_MS);
    }
    sim_host_view(run.sim, &out->host);
    out->counters = *round_get_counters(run.round);
    print_message("%s: %llu rounds, granted %.0f MiB (%.0f from VMs, %.0f from host), "
                  "reclaimed %.0f MiB, %llu VMs fed, host below floor %.1f s (worst %.1f MiB)\n",
                  scenario, (unsigned long long)out->rounds, TO_MIB(out->counters.granted_kib),
                  TO_MIB(out->counters.transferred_kib), TO_MIB(out->counters.host_granted_kib),
                  TO_MIB(out->counters.reclaimed_kib), (unsigned long long)out->counters.vms_fed,
                  (double)out->host.below_min_ms / 1000.0, TO_MIB(out->host.worst_below_min_kib));
    for (size_t i = 0; i < sim_vm_count(run.sim); i++) {
        struct sim_vm_view v;
        sim_vm_view(run.sim, i, &v);
        out->final[i] = v;
        out->final[i].name = NULL; /* borrowed from the sim, gone after close */
        out->final[i].uuid = NULL;
        print_message("  %-10s peak %.0f MiB at %llus, final %.0f MiB, below min unused %.1f s, "
                      "starved %.1f s, refused %.0f MiB, granted %.0f MiB in %llu grows, "
                      "%llu targets\n",
                      v.name, TO_MIB(out->peak_actual_kib[i]),
                      (unsigned long long)(out->peak_at_ms[i] / 1000),
                      TO_MIB(out->final_actual_kib[i]), (double)v.below_min_ms / 1000.0,
                      (double)v.starved_ms / 1000.0, TO_MIB(v.refused_kib),
                      TO_MIB(out->granted_kib[i]), (unsigned long long)out->grows[i],
                      (unsigned long long)v.targets_set);
    }
    assert_int_equal(out->counters.plans_refused, 0);
    assert_int_equal(out->counters.apply_failures, 0);
    close_run(&run);
}

/* The scenarios name their VMs; the sim lists them in file order. */
enum { ONE_HOG = 0, ONE_IDLE1 = 1 };

static void
test_one_hog(void **state)
{
    struct outcome o;
    (void)state;

    run_scenario("one_hog.json", NULL, &o);
    /* Fed up to its max (4096 MiB), the host never below its floor. */
    assert_true(o.peak_actual_kib[ONE_HOG] >= MIB(4096) - MIB(1));
    assert_int_equal(o.host.below_min_ms, 0);
    assert_true(o.counters.transferred_kib > 0); /* the idle guests gave first */
    assert_true(o.counters.host_granted_kib > 0);
    /* After it frees, the memory comes back to the host. */
    assert_true(o.final_actual_kib[ONE_HOG] <= o.peak_actual_kib[ONE_HOG] - MIB(2048));
    assert_true(o.host_final_kib >= o.host_min_kib + MIB(2048));
}

static void
test_all_hog(void **state)
{
    struct outcome o;
    (void)state;

    run_scenario("all_hog.json", NULL, &o);
    /* The host floor holds throughout; targets never went below a floor (check_round). */
    assert_int_equal(o.host.below_min_ms, 0);
    assert_true(o.host_min_kib >= MIB(200));
    assert_int_equal(o.counters.vms_fed, 4);
    /* vm4 has three times the weight: it gets the most when memory is contested. */
    for (int i = 0; i < 3; i++)
        assert_true(o.peak_actual_kib[3] > o.peak_actual_kib[i]);
}

static void
test_demand_moves(void **state)
{
    struct outcome o;
    (void)state;

    run_scenario("demand_moves.json", NULL, &o);
    /* vm1 peaks while it hogs, vm2 later: memory followed the demand. */
    assert_true(o.peak_actual_kib[0] >= MIB(1400));
    assert_true(o.peak_actual_kib[1] >= MIB(1400));
    assert_true(o.peak_at_ms[0] < 40000);
    assert_true(o.peak_at_ms[1] > o.peak_at_ms[0]);
    assert_true(o.final_actual_kib[0] < o.peak_actual_kib[0] - MIB(512));
    assert_int_equal(o.host.below_min_ms, 0);
}

static void
test_no_driver(void **state)
{
    struct outcome o;
    struct run run;
    (void)state;

    run_scenario("no_driver.json", NULL, &o);
    /* nodriver (1) and noballoon (3) are reported unmanaged every round and never touched. */
    assert_true(o.always_skipped[1]);
    assert_true(o.always_skipped[3]);
    open_run(&run, "no_driver.json"); /* fresh sim: count targets over a whole run */
    for (uint64_t t = 0; t <= sim_duration_ms(run.sim); t += ROUND_MS) {
        round_run(run.round, &run.policy, sim_now_ms(run.sim));
        sim_advance(run.sim, ROUND_MS);
    }
    struct sim_vm_view v;
    sim_vm_view(run.sim, 1, &v);
    assert_string_equal(v.name, "nodriver");
    assert_int_equal(v.targets_set, 0);
    sim_vm_view(run.sim, 3, &v);
    assert_string_equal(v.name, "noballoon");
    assert_int_equal(v.targets_set, 0);
    close_run(&run);
    assert_true(o.peak_actual_kib[0] >= MIB(2000)); /* needy was fed from elsewhere */
}

static void
test_stuck_balloon(void **state)
{
    struct outcome o;
    (void)state;

    run_scenario("stuck_balloon.json", NULL, &o);
    /* The donor is found stuck and, while stuck, never counted on as a donor. */
    assert_true(o.seen_stuck[1]);
    assert_int_equal(o.shrinks_after_stuck[1], 0);
    assert_int_equal(o.host.below_min_ms, 0);
    assert_true(o.counters.vms_fed >= 1);
}

static void
test_host_pressure(void **state)
{
    struct outcome o;
    (void)state;

    run_scenario("host_pressure.json", NULL, &o);
    /* Under pressure nothing comes from the host; the donors restore its floor first and
     * what they release beyond that feeds the needy VM at once. */
    assert_true(o.pressure_rounds > 0);
    assert_int_equal(o.host_granted_under_pressure_kib, 0);
    assert_true(o.grows_under_pressure > 0);
    assert_true(o.fed_under_pressure_kib > 0);
    assert_true(o.counters.reclaimed_kib > 0);
    assert_true(o.host_final_kib >= MIB(200));
    assert_true(o.counters.vms_fed >= 1); /* needy is fed once the host has recovered */
}

static void
raise_host_floor(struct policy *p)
{
    p->host_min_unused_kib = MIB(600);
}

static void
test_raised_host_floor_is_kept(void **state)
{
    struct outcome plain, raised;
    (void)state;

    /* All hog with only ~400 MiB grantable: the rule holds at any floor, and gives less. */
    run_scenario("all_hog.json", NULL, &plain);
    run_scenario("all_hog.json", raise_host_floor, &raised);
    assert_true(raised.host_min_kib >= MIB(600));
    assert_true(raised.counters.host_granted_kib < plain.counters.host_granted_kib);
}

static void
test_demo(void **state)
{
    struct outcome o;
    (void)state;

    run_scenario("demo.json", NULL, &o);
    assert_true(o.counters.vms_fed >= 1);
    assert_int_equal(o.host.below_min_ms, 0);
}

static void
use_unused(struct policy *p)
{
    p->demand_signal = POLICY_DEMAND_UNUSED;
}

static void
use_usable(struct policy *p)
{
    p->demand_signal = POLICY_DEMAND_USABLE;
}

enum { LAG_HOG1 = 0, LAG_HOG2 = 1 };

static void
check_touch_lag(const char *signal, const struct outcome *o)
{
    print_message("touch_lag (%s): host worst %.1f MiB below its floor, %.1f s below; hogs "
                  "granted %.0f + %.0f MiB, starved %.1f + %.1f s\n",
                  signal, TO_MIB(o->host.worst_below_min_kib),
                  (double)o->host.below_min_ms / 1000.0, TO_MIB(o->granted_kib[LAG_HOG1]),
                  TO_MIB(o->granted_kib[LAG_HOG2]), (double)o->final[LAG_HOG1].starved_ms / 1000.0,
                  (double)o->final[LAG_HOG2].starved_ms / 1000.0);
    if (o->host.worst_below_min_kib != 0 || o->host.below_min_ms != 0)
        fail_msg("%s: want the host never below its floor, got %.1f MiB below at worst, for "
                 "%.1f s (a grant counted against the host only until the balloon arrived)",
                 signal, TO_MIB(o->host.worst_below_min_kib),
                 (double)o->host.below_min_ms / 1000.0);
    /* Holding the floor by granting nothing would be no answer: the hogs get what there is. */
    assert_true(o->grows[LAG_HOG1] > 0 && o->grows[LAG_HOG2] > 0);
    assert_true(o->counters.host_granted_kib > 0);
}

/* Two hogs on a host with little above its floor; grants are touched only as the hogs use
 * them. The floor must hold whatever the demand signal. */
static void
test_touch_lag(void **state)
{
    struct outcome o;
    (void)state;

    run_scenario("touch_lag.json", use_unused, &o);
    check_touch_lag("unused", &o);
    run_scenario("touch_lag.json", use_usable, &o);
    check_touch_lag("usable", &o);
}

enum { WARM_CACHED = 0, WARM_HOG = 1 };

/* An idle guest whose page cache fills its free memory, beside a hog, on a host with 150 MiB
 * above its floor. MemFree (unused) calls the idle guest needy for ever; MemAvailable (usable)
 * calls it rich. */
static void
test_warm_cache(void **state)
{
    struct outcome unused, usable;
    (void)state;

    run_scenario("warm_cache.json", use_unused, &unused);
    run_scenario("warm_cache.json", use_usable, &usable);
    print_message("warm_cache: cached VM granted %.0f MiB (unused) vs %.0f MiB (usable); hog "
                  "starved %.1f s (unused) vs %.1f s (usable)\n",
                  TO_MIB(unused.granted_kib[WARM_CACHED]), TO_MIB(usable.granted_kib[WARM_CACHED]),
                  (double)unused.final[WARM_HOG].starved_ms / 1000.0,
                  (double)usable.final[WARM_HOG].starved_ms / 1000.0);

    /* The evidence against MemFree: with it the idle cached guest is grown. */
    assert_true(unused.granted_kib[WARM_CACHED] > 0);

    /* With MemAvailable it is never grown (it gives), and the hog is fed to its limit without
     * waiting, the host floor kept. */
    if (usable.grows[WARM_CACHED] != 0 || usable.peak_actual_kib[WARM_CACHED] > MIB(1024))
        fail_msg("usable: want the cached VM never grown, got %llu grows (+%.0f MiB), peak "
                 "%.0f MiB",
                 (unsigned long long)usable.grows[WARM_CACHED],
                 TO_MIB(usable.granted_kib[WARM_CACHED]),
                 TO_MIB(usable.peak_actual_kib[WARM_CACHED]));
    if (usable.final[WARM_HOG].used_kib != MIB(1000) || usable.final[WARM_HOG].starved_ms != 0 ||
        usable.final[WARM_HOG].refused_kib != 0)
        fail_msg("usable: want the hog fed to 1000 MiB, never starved nor refused; got %.0f MiB, "
                 "starved %.1f s, refused %.0f MiB",
                 TO_MIB(usable.final[WARM_HOG].used_kib),
                 (double)usable.final[WARM_HOG].starved_ms / 1000.0,
                 TO_MIB(usable.final[WARM_HOG].refused_kib));
    assert_int_equal(usable.host.worst_below_min_kib, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_hog),
        cmocka_unit_test(test_all_hog),
        cmocka_unit_test(test_demand_moves),
        cmocka_unit_test(test_no_driver),
        cmocka_unit_test(test_stuck_balloon),
        cmocka_unit_test(test_host_pressure),
        cmocka_unit_test(test_raised_host_floor_is_kept),
        cmocka_unit_test(test_demo),
        cmocka_unit_test(test_warm_cache),
        cmocka_unit_test(test_touch_lag),
    };
    log_set_level(LOG_LEVEL_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
