/*
 * test_sched_props.c - seeded property test of the scheduler against its invariant checker.
 *
 * Generates random snapshots (0-500 VMs, most of them small) under random valid policies, with
 * the values that break planners: 0, 1, every threshold +-1, 2^50 and above (clamped), actual
 * above max, signal above actual, weights 0/1/1000, stuck balloons, targets either side of
 * actual, hosts at, near and below host_min_unused, huge hosts. For each it runs sched_plan(),
 * checks the plan with sched_check_plan() (written apart from the planner), and plans again on
 * another work area to check that the same input gives the same plan.
 *
 *   test_sched_props [--seed N] [--count N] [--only TEST_NAME_PATTERN]
 *
 * The seed comes from the clock unless --seed is given; it is printed first, so any failure can
 * be replayed. On a violation the test prints the seed, the snapshot index, the message, the
 * snapshot and a reduced snapshot (VMs dropped while the violation persists), then fails.
 *
 * Sequences (test_round_sequences): a well-formed host evolves round after round - each plan
 * applied, balloons moving toward their targets at a random speed, guests' use constant - and
 * must keep the invariants every round, never count memory twice across rounds (the host's
 * memory once all in flight arrives stays above its floor), never turn a VM's direction (grown,
 * then shrunk: oscillation) and settle (no moves, nothing in flight) within a bound. Reordering
 * (test_reordering): the same VMs in another order get the same reason and target each, on
 * snapshots without ties (distinct signals), where only the index could break one.
 *
 * One snapshot in ten is reshaped so most VMs are needy and the supply is contested (shared by
 * weight). Also here: the checker rejects corrupted plans (so a silent checker cannot pass the
 * property test) and accepts whole-KiB rounding of weighted shares, sched_plan refuses more VMs
 * than its capacity, and rounds of SCHED_VMS_MAX VMs of extreme sizes keep the invariants.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy.h"
#include "sched.h"
#include "sched_check.h"

#define DEFAULT_COUNT 200000u
#define VMS_CAP       500u
#define MSG_LEN       512u
#define POLICY_TRIES  1000u

static uint64_t opt_seed;
static uint64_t opt_count = DEFAULT_COUNT;

/* splitmix64: small, fast, and every seed (0 included) gives a good stream. */
struct rng {
    uint64_t state;
};

static uint64_t
rng_next(struct rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform-ish in [0, n); n > 0. The modulo bias is irrelevant here. */
static uint64_t
rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

static bool
rng_pct(struct rng *r, unsigned percent)
{
    return rng_below(r, 100) < percent;
}

/* In [lo, hi], inclusive; the whole range when lo = 0 and hi = UINT64_MAX. */
static uint64_t
rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo;
    if (span == UINT64_MAX)
        return rng_next(r);
    return lo + rng_below(r, span + 1);
}

/* In [lo, hi], log-uniform: small and large magnitudes equally likely. */
static uint64_t
rng_log(struct rng *r, uint64_t lo, uint64_t hi)
{
    unsigned bits = (unsigned)rng_below(r, 65);
    uint64_t v = bits == 0 ? 0 : rng_next(r) >> (64 - bits);
    uint64_t span = hi - lo;
    if (span == UINT64_MAX)
        return v;
    return lo + v % (span + 1);
}

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t
sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* ---- snapshots ---- */

struct snapshot {
    struct policy policy;
    struct sched_host host;
    struct sched_vm *vms;
    size_t n_vms;
};

/* A value any KiB field may take in a hostile snapshot. */
static uint64_t
extreme_kib(struct rng *r)
{
    static const uint64_t values[] = {
        0,
        1,
        2,
        SCHED_KIB_MAX - 1,
        SCHED_KIB_MAX,
        SCHED_KIB_MAX + 1,
        SCHED_KIB_MAX * 2,
        UINT64_MAX / 2,
        UINT64_MAX - 1,
        UINT64_MAX,
    };
    if (rng_pct(r, 20))
        return rng_next(r);
    return values[rng_below(r, sizeof(values) / sizeof(values[0]))];
}

/* A threshold of the policy, nudged by -1, 0 or +1 (saturating). */
static uint64_t
near(struct rng *r, uint64_t v)
{
    switch (rng_below(r, 3)) {
    case 0:
        return sub_sat(v, 1);
    case 1:
        return v;
    default:
        return add_sat(v, 1);
    }
}

static uint64_t
random_signal(struct rng *r, const struct policy *p)
{
    uint64_t min = p->vm_min_unused_kib, grow = p->vm_grow_target_unused_kib;
    uint64_t excess = p->vm_excess_unused_kib, step = p->max_release_step_kib;

    switch (rng_below(r, 12)) {
    case 0:
        return near(r, min);
    case 1:
        return near(r, grow);
    case 2:
        return near(r, excess);
    case 3:
        return near(r, add_sat(excess, step));
    case 4:
        return near(r, add_sat(min, step));
    case 5:
        return rng_range(r, 0, min);
    case 6:
        return rng_range(r, min, add_sat(excess, 1));
    case 7:
        return rng_range(r, excess, add_sat(excess, 3 * step));
    case 8:
        return rng_log(r, 0, add_sat(excess, 4 * step));
    case 9:
        return rng_below(r, 3);
    case 10:
        return rng_log(r, 0, SCHED_KIB_MAX);
    default:
        return rng_range(r, 0, 2 * excess + step);
    }
}

static uint32_t
random_weight(struct rng *r)
{
    static const uint32_t weights[] = {0, 1, 2, 99, 100, 101, 999, 1000};
    if (rng_pct(r, 30))
        return (uint32_t)rng_range(r, 0, SCHED_WEIGHT_MAX);
    return weights[rng_below(r, sizeof(weights) / sizeof(weights[0]))];
}

/* One VM. chaos is the percent chance of each hostile deviation. */
static void
random_vm(struct rng *r, const struct policy *p, unsigned chaos, struct sched_vm *vm)
{
    uint64_t floor = p->vm_floor_kib, step = p->max_release_step_kib;
    uint64_t sig = random_signal(r, p);

    memset(vm, 0, sizeof(*vm));
    /* actual: the signal plus what the guest uses, often near the floor + a step or two */
    switch (rng_below(r, 4)) {
    case 0:
        vm->actual_kib = add_sat(sig, rng_log(r, 0, add_sat(floor, 4 * step)));
        break;
    case 1:
        vm->actual_kib = near(r, add_sat(floor, rng_range(r, 0, 2 * step)));
        break;
    case 2:
        vm->actual_kib = add_sat(sig, near(r, floor));
        break;
    default:
        vm->actual_kib = add_sat(sig, rng_log(r, 0, SCHED_KIB_MAX));
        break;
    }
    if (vm->actual_kib < sig)
        vm->actual_kib = sig;
    /* max: at actual, just above, a need away, or far */
    switch (rng_below(r, 5)) {
    case 0:
        vm->max_kib = vm->actual_kib;
        break;
    case 1:
        vm->max_kib = add_sat(vm->actual_kib, rng_below(r, 3));
        break;
    case 2:
        vm->max_kib = add_sat(vm->actual_kib, near(r, sub_sat(p->vm_grow_target_unused_kib, sig)));
        break;
    default:
        vm->max_kib = add_sat(vm->actual_kib, rng_log(r, 0, SCHED_KIB_MAX));
        break;
    }
    vm->unused_kib = sig;
    vm->usable_kib = sig;
    /* the other signal is whatever the guest says */
    if (rng_pct(r, 50)) {
        uint64_t other = rng_pct(r, 50) ? random_signal(r, p) : rng_range(r, 0, vm->actual_kib);
        if (p->demand_signal == POLICY_DEMAND_USABLE)
            vm->unused_kib = other;
        else
            vm->usable_kib = other;
    }
    /* target: none, at actual, a grow or shrink in flight, anywhere */
    switch (rng_below(r, 8)) {
    case 0:
    case 1:
    case 2:
        vm->target_kib = 0;
        break;
    case 3:
        vm->target_kib = vm->actual_kib;
        break;
    case 4:
        vm->target_kib = add_sat(vm->actual_kib, rng_log(r, 1, add_sat(step, step)));
        break;
    case 5:
        vm->target_kib = sub_sat(vm->actual_kib, rng_log(r, 1, add_sat(step, step)));
        break;
    case 6:
        vm->target_kib = near(r, vm->max_kib);
        break;
    default:
        vm->target_kib = rng_log(r, 0, vm->max_kib);
        break;
    }
    /* per-VM floor and cap overrides */
    if (rng_pct(r, 35)) {
        switch (rng_below(r, 5)) {
        case 0:
            vm->min_kib = near(r, sub_sat(vm->actual_kib, step));
            break;
        case 1:
            vm->min_kib = near(r, vm->actual_kib);
            break;
        case 2:
            vm->min_kib = rng_log(r, 1, vm->actual_kib);
            break;
        case 3:
            vm->min_kib = near(r, floor);
            break;
        default:
            vm->min_kib = rng_log(r, 0, UINT64_MAX);
            break;
        }
    }
    if (rng_pct(r, 35)) {
        switch (rng_below(r, 5)) {
        case 0:
            vm->cap_kib = near(r, vm->actual_kib);
            break;
        case 1:
            vm->cap_kib = near(r, vm->max_kib);
            break;
        case 2:
            vm->cap_kib = add_sat(vm->actual_kib, rng_log(r, 0, p->vm_grow_target_unused_kib));
            break;
        case 3:
            vm->cap_kib = rng_log(r, 1, vm->max_kib);
            break;
        default:
            vm->cap_kib = rng_log(r, 0, UINT64_MAX);
            break;
        }
    }
    uint64_t stale_ms = (uint64_t)p->stale_stats_s * 1000u;
    switch (rng_below(r, 6)) {
    case 0:
        vm->stats_age_ms = near(r, stale_ms);
        break;
    case 1:
        vm->stats_age_ms = 0;
        break;
    default:
        vm->stats_age_ms = rng_range(r, 0, stale_ms);
        break;
    }
    vm->weight = random_weight(r);
    vm->state = SCHED_VM_RUNNING;
    vm->managed = true;
    vm->has_balloon = true;
    vm->has_unused = true;
    vm->has_usable = true;
    vm->stuck = rng_pct(r, 8);
    /* memory granted but not yet touched: none, a grant's worth, or anything */
    switch (rng_below(r, 6)) {
    case 0:
    case 1:
    case 2:
    case 3:
        vm->untouched_kib = 0;
        break;
    case 4:
        vm->untouched_kib = rng_log(r, 1, 4 * p->vm_grow_target_unused_kib);
        break;
    default:
        vm->untouched_kib = rng_log(r, 0, vm->actual_kib);
        break;
    }
    /* consumption rate: steady, a hog, or anything */
    switch (rng_below(r, 4)) {
    case 0:
    case 1:
        vm->rate_kib_s = 0;
        break;
    case 2:
        vm->rate_kib_s = rng_log(r, 1, UINT64_C(256) << 10);
        break;
    default:
        vm->rate_kib_s = rng_log(r, 0, SCHED_RATE_MAX_KIB_S * 2);
        break;
    }

    /* Hostile deviations, each with the snapshot's chaos chance. */
    if (rng_pct(r, chaos))
        vm->state = (enum sched_vm_state)rng_range(r, SCHED_VM_PAUSED, SCHED_VM_OTHER);
    if (rng_pct(r, chaos))
        vm->weight = rng_pct(r, 50) ? SCHED_WEIGHT_MAX + 1 : UINT32_MAX; /* out of range */
    if (rng_pct(r, chaos))
        vm->managed = false;
    if (rng_pct(r, chaos))
        vm->has_balloon = false;
    if (rng_pct(r, chaos))
        vm->has_unused = false;
    if (rng_pct(r, chaos))
        vm->has_usable = false;
    if (rng_pct(r, chaos))
        vm->stats_age_ms = rng_pct(r, 50) ? UINT64_MAX : rng_log(r, stale_ms, UINT64_MAX);
    if (rng_pct(r, chaos))
        vm->actual_kib = rng_pct(r, 50) ? 0 : add_sat(vm->max_kib, rng_log(r, 1, UINT64_MAX));
    if (rng_pct(r, chaos)) {
        uint64_t over = add_sat(vm->actual_kib, rng_log(r, 1, step));
        if (p->demand_signal == POLICY_DEMAND_USABLE)
            vm->usable_kib = over;
        else
            vm->unused_kib = over;
    }
    if (rng_pct(r, chaos))
        vm->max_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->actual_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->target_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->min_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->cap_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->unused_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->usable_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->untouched_kib = extreme_kib(r);
    if (rng_pct(r, chaos))
        vm->rate_kib_s = extreme_kib(r);
    /* All sizes above 2^50, consistent after clamping: a huge but sane VM. */
    if (rng_pct(r, chaos / 2 + 1)) {
        vm->max_kib = rng_range(r, SCHED_KIB_MAX, UINT64_MAX);
        vm->actual_kib = rng_range(r, SCHED_KIB_MAX, UINT64_MAX);
        if (rng_pct(r, 50))
            vm->target_kib = rng_range(r, SCHED_KIB_MAX - 2 * step, UINT64_MAX);
    }
}

/* Sum over VMs of what the host owes, as the rules define it: grows in flight and memory
 * granted but not yet touched (for picking hosts). */
static uint64_t
owed_kib(const struct sched_vm *vms, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t actual = vms[i].actual_kib > SCHED_KIB_MAX ? SCHED_KIB_MAX : vms[i].actual_kib;
        uint64_t target = vms[i].target_kib > SCHED_KIB_MAX ? SCHED_KIB_MAX : vms[i].target_kib;
        uint64_t untouched =
            vms[i].untouched_kib > SCHED_KIB_MAX ? SCHED_KIB_MAX : vms[i].untouched_kib;
        sum = add_sat(sum, sub_sat(target ? target : actual, actual));
        sum = add_sat(sum, untouched);
    }
    return sum;
}

static void
random_host(struct rng *r,
            const struct policy *p,
            const struct sched_vm *vms,
            size_t n,
            struct sched_host *host)
{
    uint64_t hmin = p->host_min_unused_kib;
    uint64_t base = add_sat(hmin, owed_kib(vms, n));

    switch (rng_below(r, 10)) {
    case 0:
        host->available_kib = near(r, hmin);
        break;
    case 1:
        host->available_kib = rng_range(r, 0, hmin);
        break;
    case 2:
    case 3:
        host->available_kib = near(r, base);
        break;
    case 4:
    case 5:
        host->available_kib = add_sat(base, rng_log(r, 0, 4 * p->vm_grow_target_unused_kib));
        break;
    case 6:
        host->available_kib = add_sat(base, rng_log(r, 0, SCHED_KIB_MAX));
        break;
    case 7:
        host->available_kib = extreme_kib(r);
        break;
    default:
        host->available_kib = rng_log(r, 0, add_sat(base, base));
        break;
    }
    host->total_kib = rng_pct(r, 10) ? extreme_kib(r)
                                     : add_sat(host->available_kib, rng_log(r, 0, SCHED_KIB_MAX));
    switch (rng_below(r, 4)) {
    case 0:
        host->horizon_ms = 0;
        break;
    case 1:
        host->horizon_ms = rng_range(r, 1000, 5000);
        break;
    case 2:
        host->horizon_ms = near(r, SCHED_HORIZON_MAX_MS);
        break;
    default:
        host->horizon_ms = rng_pct(r, 20) ? UINT64_MAX : rng_log(r, 0, UINT64_MAX);
        break;
    }
}

/* A KiB parameter: a bound, the default, a whole MiB or any KiB inside the bounds. */
static uint64_t
random_param_kib(struct rng *r, const struct config_key *param)
{
    uint64_t lo = param->min_value * UTIL_KIB_PER_MIB, hi = param->max_value * UTIL_KIB_PER_MIB;

    switch (rng_below(r, 8)) {
    case 0:
        return lo;
    case 1:
        return hi;
    case 2:
        return param->default_value * UTIL_KIB_PER_MIB;
    case 3:
        return rng_log(r, param->min_value, param->max_value) * UTIL_KIB_PER_MIB;
    case 4:
        return rng_range(r, lo, lo + 4 * UTIL_KIB_PER_MIB);
    default:
        /* mostly within the scale of real guests, KiB granular */
        return rng_log(r, lo, hi < (UINT64_C(64) << 20) ? hi : (UINT64_C(64) << 20));
    }
}

static uint64_t *
policy_kib_field(struct policy *p, const struct config_key *param)
{
    return (uint64_t *)(void *)((char *)p + param->offset);
}

/* A random policy that passes policy_validate(); the defaults one time in five. */
static void
random_policy(struct rng *r, struct policy *p)
{
    char err[POLICY_ERR_MAX];
    size_t n_params;
    const struct config_key *params = policy_params(&n_params);

    policy_init_defaults(p);
    if (rng_pct(r, 20)) {
        p->reclaim_idle = rng_pct(r, 70);
        p->predictive = rng_pct(r, 70);
        p->demand_signal = rng_pct(r, 50) ? POLICY_DEMAND_UNUSED : POLICY_DEMAND_USABLE;
        return;
    }
    for (unsigned tries = 0; tries < POLICY_TRIES; tries++) {
        policy_init_defaults(p);
        for (size_t i = 0; i < n_params; i++) {
            if (params[i].kind == CONFIG_KIND_MIB && rng_pct(r, 70))
                *policy_kib_field(p, &params[i]) = random_param_kib(r, &params[i]);
        }
        /* order the three thresholds so most tries pass: min < grow <= excess */
        uint64_t t[3] = {p->vm_min_unused_kib, p->vm_grow_target_unused_kib,
                         p->vm_excess_unused_kib};
        for (int a = 0; a < 3; a++) {
            for (int b = a + 1; b < 3; b++) {
                if (t[b] < t[a]) {
                    uint64_t x = t[a];
                    t[a] = t[b];
                    t[b] = x;
                }
            }
        }
        p->vm_min_unused_kib = t[0];
        p->vm_grow_target_unused_kib = t[1];
        p->vm_excess_unused_kib = rng_pct(r, 15) ? t[1] : t[2];
        if (rng_pct(r, 15) && t[0] < UINT64_MAX)
            p->vm_grow_target_unused_kib = t[0] + 1;
        p->interval_ms = (uint32_t)(rng_pct(r, 50) ? 1000 : rng_log(r, 100, 3600000));
        uint64_t period_s = p->interval_ms < 1000 ? 1 : p->interval_ms / 1000;
        p->stale_stats_s = (uint32_t)(rng_pct(r, 50) ? period_s + 1 : rng_log(r, 1, 3600));
        p->demand_signal = rng_pct(r, 50) ? POLICY_DEMAND_UNUSED : POLICY_DEMAND_USABLE;
        p->reclaim_idle = rng_pct(r, 60);
        p->predictive = rng_pct(r, 60);
        if (policy_validate(p, err, sizeof(err)) == 0)
            return;
    }
    policy_init_defaults(p);
}

static size_t
random_count(struct rng *r)
{
    unsigned pick = (unsigned)rng_below(r, 100);
    if (pick < 60)
        return (size_t)rng_range(r, 0, 8);
    if (pick < 88)
        return (size_t)rng_range(r, 9, 64);
    return (size_t)rng_range(r, 65, VMS_CAP);
}

/* Make most VMs needy and few donors, with a host near its limit: the supply is contested and
 * shared by weight, which is where rounding and fairness bugs live. */
static void
contest(struct rng *r, struct snapshot *s)
{
    const struct policy *p = &s->policy;
    unsigned needy_pct = (unsigned)rng_range(r, 50, 100);

    for (size_t i = 0; i < s->n_vms; i++) {
        struct sched_vm *vm = &s->vms[i];
        uint64_t sig = rng_pct(r, needy_pct)
                           ? rng_range(r, 0, p->vm_min_unused_kib - 1)
                           : rng_range(r, p->vm_excess_unused_kib + 1,
                                       p->vm_excess_unused_kib + 2 * p->max_release_step_kib);
        vm->unused_kib = vm->usable_kib = sig;
        vm->actual_kib = sig + p->vm_floor_kib + rng_log(r, 0, 4 * p->max_release_step_kib);
        vm->max_kib = vm->actual_kib + rng_log(r, 0, 2 * p->vm_grow_target_unused_kib);
        vm->target_kib = rng_pct(r, 80) ? 0 : vm->actual_kib + rng_below(r, 1024);
        vm->cap_kib = 0;
        vm->min_kib = 0;
        vm->stuck = rng_pct(r, 3);
    }
    uint64_t base = add_sat(p->host_min_unused_kib, owed_kib(s->vms, s->n_vms));
    s->host.available_kib = add_sat(base, rng_log(r, 0, s->n_vms * p->vm_grow_target_unused_kib));
}

static void
random_snapshot(struct rng *r, struct snapshot *s)
{
    static const unsigned chaos_levels[] = {0, 0, 1, 3, 10, 30};
    unsigned chaos = chaos_levels[rng_below(r, sizeof(chaos_levels) / sizeof(chaos_levels[0]))];

    random_policy(r, &s->policy);
    s->n_vms = random_count(r);
    for (size_t i = 0; i < s->n_vms; i++)
        random_vm(r, &s->policy, chaos, &s->vms[i]);
    random_host(r, &s->policy, s->vms, s->n_vms, &s->host);
    if (rng_pct(r, 10))
        contest(r, s);
}

/* ---- reporting ---- */

static void
dump_snapshot(FILE *out,
              const struct policy *p,
              const struct sched_host *host,
              const struct sched_vm *vms,
              size_t n)
{
    fprintf(out,
            "policy: vm_min_unused_kib=%" PRIu64 " vm_grow_target_unused_kib=%" PRIu64
            " vm_excess_unused_kib=%" PRIu64 " max_release_step_kib=%" PRIu64
            " host_min_unused_kib=%" PRIu64 " vm_floor_kib=%" PRIu64 " interval_ms=%" PRIu32
            " stale_stats_s=%" PRIu32 " demand_signal=%s reclaim_idle=%d predictive=%d\n",
            p->vm_min_unused_kib, p->vm_grow_target_unused_kib, p->vm_excess_unused_kib,
            p->max_release_step_kib, p->host_min_unused_kib, p->vm_floor_kib, p->interval_ms,
            p->stale_stats_s, policy_demand_signal_name(p->demand_signal), (int)p->reclaim_idle,
            (int)p->predictive);
    fprintf(out, "host: total_kib=%" PRIu64 " available_kib=%" PRIu64 " horizon_ms=%" PRIu64 "\n",
            host->total_kib, host->available_kib, host->horizon_ms);
    for (size_t i = 0; i < n; i++) {
        const struct sched_vm *v = &vms[i];
        fprintf(out,
                "vm %zu: max=%" PRIu64 " actual=%" PRIu64 " target=%" PRIu64 " unused=%" PRIu64
                " usable=%" PRIu64 " min=%" PRIu64 " cap=%" PRIu64 " age_ms=%" PRIu64
                " weight=%" PRIu32 " state=%d managed=%d balloon=%d has_unused=%d has_usable=%d"
                " stuck=%d untouched=%" PRIu64 " rate=%" PRIu64 "\n",
                i, v->max_kib, v->actual_kib, v->target_kib, v->unused_kib, v->usable_kib,
                v->min_kib, v->cap_kib, v->stats_age_ms, v->weight, (int)v->state, (int)v->managed,
                (int)v->has_balloon, (int)v->has_unused, (int)v->has_usable, (int)v->stuck,
                v->untouched_kib, v->rate_kib_s);
    }
}

static void
dump_plan(FILE *out, const struct sched_plan *plan)
{
    const struct sched_summary *s = &plan->summary;

    fprintf(out,
            "plan: entries=%zu shrinks=%zu grows=%zu need=%" PRIu64 " granted=%" PRIu64
            " transferred=%" PRIu64 " host_granted=%" PRIu64 " reclaimed=%" PRIu64
            " host_budget=%" PRIu64 " inflight=%" PRIu64 " pressure=%d skipped=%" PRIu32 "\n",
            plan->n_entries, plan->n_shrinks, plan->n_grows, s->need_kib, s->granted_kib,
            s->transferred_kib, s->host_granted_kib, s->reclaimed_kib, s->host_budget_kib,
            s->inflight_grow_kib, (int)s->host_pressure, s->skipped);
    for (size_t i = 0; i < plan->n_entries; i++) {
        const struct sched_entry *e = &plan->entries[i];
        fprintf(out,
                "  entry %zu: vm=%" PRIu32 " reason=%s counterpart=%" PRId32 " old=%" PRIu64
                " new=%" PRIu64 " need=%" PRIu64 " vm_kib=%" PRIu64 " host_kib=%" PRIu64 "\n",
                i, e->vm, sched_reason_name(e->reason), e->counterpart, e->old_target_kib,
                e->new_target_kib, e->need_kib, e->vm_kib, e->host_kib);
    }
}

/* Plan and check; 0 when the plan keeps every invariant. */
static int
plan_and_check(const struct policy *p,
               const struct sched_host *host,
               const struct sched_vm *vms,
               size_t n,
               struct sched_work *work,
               struct sched_plan *plan,
               char *msg)
{
    int rc = sched_plan(p, host, vms, n, work, plan);
    if (rc < 0) {
        snprintf(msg, MSG_LEN, "sched_plan failed: %d (%s)", rc, strerror(-rc));
        return rc;
    }
    return sched_check_plan(p, host, vms, n, plan, msg, MSG_LEN);
}

/* Drop VMs one at a time while the snapshot still breaks an invariant, then print what is
 * left: the smallest case this greedy pass finds. */
static void
report_reduced(const struct snapshot *s, struct sched_work *work)
{
    struct sched_vm *vms = calloc(s->n_vms ? s->n_vms : 1, sizeof(*vms));
    struct sched_plan plan;
    char msg[MSG_LEN];
    size_t n = s->n_vms;

    assert_non_null(vms);
    memcpy(vms, s->vms, n * sizeof(*vms));
    for (size_t i = n; i-- > 0;) {
        struct sched_vm removed = vms[i];
        memmove(&vms[i], &vms[i + 1], (n - i - 1) * sizeof(*vms));
        if (plan_and_check(&s->policy, &s->host, vms, n - 1, work, &plan, msg) != 0) {
            n--;
            continue;
        }
        memmove(&vms[i + 1], &vms[i], (n - i - 1) * sizeof(*vms));
        vms[i] = removed;
    }
    plan_and_check(&s->policy, &s->host, vms, n, work, &plan, msg);
    fprintf(stderr, "reduced snapshot (%zu of %zu VMs): %s\n", n, s->n_vms, msg);
    dump_snapshot(stderr, &s->policy, &s->host, vms, n);
    dump_plan(stderr, &plan);
    free(vms);
}

/* Field by field: padding bytes are not part of a plan. */
static bool
plans_equal(const struct sched_plan *a, const struct sched_plan *b, char *msg)
{
    const struct sched_summary *x = &a->summary, *y = &b->summary;

    if (a->n_entries != b->n_entries || a->n_shrinks != b->n_shrinks || a->n_grows != b->n_grows) {
        snprintf(msg, MSG_LEN, "plan shape differs: %zu/%zu/%zu vs %zu/%zu/%zu", a->n_entries,
                 a->n_shrinks, a->n_grows, b->n_entries, b->n_shrinks, b->n_grows);
        return false;
    }
    for (size_t i = 0; i < a->n_entries; i++) {
        const struct sched_entry *e = &a->entries[i], *f = &b->entries[i];
        if (e->vm != f->vm || e->reason != f->reason || e->counterpart != f->counterpart ||
            e->old_target_kib != f->old_target_kib || e->new_target_kib != f->new_target_kib ||
            e->need_kib != f->need_kib || e->vm_kib != f->vm_kib || e->host_kib != f->host_kib) {
            snprintf(msg, MSG_LEN,
                     "entry %zu differs: vm %" PRIu32 " %s new %" PRIu64 " vs vm %" PRIu32
                     " %s new %" PRIu64,
                     i, e->vm, sched_reason_name(e->reason), e->new_target_kib, f->vm,
                     sched_reason_name(f->reason), f->new_target_kib);
            return false;
        }
    }
    if (x->need_kib != y->need_kib || x->granted_kib != y->granted_kib ||
        x->transferred_kib != y->transferred_kib || x->host_granted_kib != y->host_granted_kib ||
        x->reclaimed_kib != y->reclaimed_kib || x->host_budget_kib != y->host_budget_kib ||
        x->inflight_grow_kib != y->inflight_grow_kib || x->grows != y->grows ||
        x->shrinks != y->shrinks || x->skipped != y->skipped ||
        x->host_pressure != y->host_pressure) {
        snprintf(msg, MSG_LEN, "summaries differ");
        return false;
    }
    return true;
}

/* Some VM got less than it needed: the supply was shared. */
static bool
is_contested(const struct sched_plan *plan)
{
    for (size_t i = 0; i < plan->n_entries; i++) {
        const struct sched_entry *e = &plan->entries[i];
        if (e->reason == SCHED_REASON_NEED_UNMET ||
            (e->reason == SCHED_REASON_GROW && e->vm_kib + e->host_kib < e->need_kib))
            return true;
    }
    return false;
}

/* How often the random rounds reached each situation the rules treat apart. */
struct coverage {
    uint64_t grows, shrinks, skips;
    uint64_t pressure, pressure_fed, reclaims, transfers, host_grants, contested;
    uint64_t weighted_contested, inflight, untouched, lookahead_grows, settling;
};

static void
cover(struct coverage *c, const struct snapshot *s, const struct sched_plan *plan)
{
    const struct sched_summary *sum = &plan->summary;
    bool contested = !sum->host_pressure && is_contested(plan);

    c->grows += plan->n_grows;
    c->shrinks += plan->n_shrinks;
    c->skips += sum->skipped;
    c->pressure += sum->host_pressure;
    c->pressure_fed += sum->host_pressure && sum->transferred_kib > 0;
    c->reclaims += sum->reclaimed_kib > 0;
    c->transfers += sum->transferred_kib > 0;
    c->host_grants += sum->host_granted_kib > 0;
    c->contested += contested;
    c->inflight += sum->inflight_grow_kib > 0 || sum->inflight_shrink_kib > 0;
    c->untouched += sum->untouched_kib > 0 && sum->host_granted_kib > 0;
    bool weighted = false;
    for (size_t i = 0; i < plan->n_entries; i++) {
        const struct sched_entry *e = &plan->entries[i];
        const struct sched_vm *vm = &s->vms[e->vm];
        weighted |=
            e->reason == SCHED_REASON_GROW && vm->weight != 0 && vm->weight != SCHED_WEIGHT_DEFAULT;
        c->lookahead_grows += e->reason == SCHED_REASON_GROW && e->lookahead_kib > 0;
        c->settling += e->reason == SCHED_REASON_IN_FLIGHT && vm->unused_kib > vm->actual_kib;
    }
    c->weighted_contested += contested && weighted;
}

/* Each situation must have been reached at least once per thousand rounds: a generator that
 * stops reaching one would let a planner bug there pass unseen. */
static void
assert_coverage(const struct coverage *c, uint64_t count)
{
    const struct {
        const char *name;
        uint64_t got;
    } seen[] = {
        {"rounds under pressure", c->pressure},
        {"rounds under pressure that fed VMs from donors", c->pressure_fed},
        {"rounds with a VM-to-VM transfer", c->transfers},
        {"rounds with a host grant", c->host_grants},
        {"rounds with reclaim", c->reclaims},
        {"contested rounds", c->contested},
        {"contested rounds with weight overrides", c->weighted_contested},
        {"rounds with memory in flight", c->inflight},
        {"rounds granting beside untouched memory", c->untouched},
        {"grows with a look-ahead", c->lookahead_grows},
        {"samples older than the balloon", c->settling},
    };
    uint64_t want = count / 1000 ? count / 1000 : 1;

    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++) {
        if (seen[i].got < want)
            fail_msg("coverage: %s: want >= %" PRIu64 " in %" PRIu64 " rounds, got %" PRIu64,
                     seen[i].name, want, count, seen[i].got);
    }
}

/* ---- tests ---- */

static void
test_random_snapshots(void **state)
{
    (void)state;
    struct rng r = {opt_seed};
    struct snapshot s = {.vms = calloc(VMS_CAP, sizeof(struct sched_vm))};
    struct sched_work *work = sched_work_new(VMS_CAP);
    struct sched_work *again = sched_work_new(VMS_CAP);
    struct sched_plan plan, plan2, decoy;
    char msg[MSG_LEN];
    struct coverage c = {0};

    assert_non_null(s.vms);
    assert_non_null(work);
    assert_non_null(again);
    for (uint64_t k = 0; k < opt_count; k++) {
        random_snapshot(&r, &s);
        int rc = plan_and_check(&s.policy, &s.host, s.vms, s.n_vms, work, &plan, msg);
        if (rc == 0) {
            /* the second run's work area last planned something else (a suffix of the VMs) */
            if (k % 2 == 0 && s.n_vms > 1)
                sched_plan(&s.policy, &s.host, s.vms + s.n_vms / 2, s.n_vms - s.n_vms / 2, again,
                           &decoy);
            rc = sched_plan(&s.policy, &s.host, s.vms, s.n_vms, again, &plan2);
            if (rc < 0)
                snprintf(msg, MSG_LEN, "second sched_plan failed: %d", rc);
            else if (!plans_equal(&plan, &plan2, msg))
                rc = -EPROTO;
        }
        if (rc != 0) {
            fprintf(stderr, "seed=%" PRIu64 " snapshot=%" PRIu64 ": %s\n", opt_seed, k, msg);
            dump_snapshot(stderr, &s.policy, &s.host, s.vms, s.n_vms);
            plan_and_check(&s.policy, &s.host, s.vms, s.n_vms, work, &plan, msg);
            dump_plan(stderr, &plan);
            report_reduced(&s, work);
            fprintf(stderr, "replay: test_sched_props --seed %" PRIu64 " --count %" PRIu64 "\n",
                    opt_seed, k + 1);
            sched_work_destroy(&work);
            sched_work_destroy(&again);
            free(s.vms);
            fail_msg("snapshot %" PRIu64 " of seed %" PRIu64 ": %s", k, opt_seed, msg);
        }
        cover(&c, &s, &plan);
    }
    printf("checked %" PRIu64 " snapshots, 0 violations\n", opt_count);
    printf("coverage: grows=%" PRIu64 " shrinks=%" PRIu64 " skipped=%" PRIu64
           " rounds: under_pressure=%" PRIu64 " (fed from donors %" PRIu64
           ") with_transfer=%" PRIu64 " with_host_grant=%" PRIu64 " with_reclaim=%" PRIu64
           " contested=%" PRIu64 " (with weights %" PRIu64 ") in_flight=%" PRIu64
           " untouched=%" PRIu64 " lookahead_grows=%" PRIu64 " settling=%" PRIu64 "\n",
           c.grows, c.shrinks, c.skips, c.pressure, c.pressure_fed, c.transfers, c.host_grants,
           c.reclaims, c.contested, c.weighted_contested, c.inflight, c.untouched,
           c.lookahead_grows, c.settling);
    sched_work_destroy(&work);
    sched_work_destroy(&again);
    free(s.vms);
    assert_coverage(&c, opt_count);
}

/* ---- sequences of rounds on an evolving host ---- */

#define SEQ_COUNT      3000u /* sequences per run (a fraction of --count; see main) */
#define SEQ_VMS_MAX    12u
#define SEQ_SETTLE     3u /* rounds a converged host must stay without moves */
#define SEQ_ROUNDS_MAX 4000u
#define SEQ_CHANGES    4u /* most changes of a guest's use in one sequence */

/* A host that evolves: each round's plan is applied, each balloon moves toward its target at
 * speed_kib a round (the host's available memory with it: a guest touches what it is given at
 * once), and each guest's use stays constant (a stable workload), so its signal moves only with
 * its balloon. */
struct seq {
    struct snapshot s;
    uint64_t used_kib[SEQ_VMS_MAX];
    uint64_t speed_kib;
    uint64_t rounds_max; /* within which it must converge after the last change */
    /* a guest's use changes at round change_at[c] (in order): VM change_vm[c] to change_kib[c] */
    size_t n_changes;
    uint64_t change_at[SEQ_CHANGES];
    uint32_t change_vm[SEQ_CHANGES];
    uint64_t change_kib[SEQ_CHANGES];
};

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t
div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* The host's available memory once everything in flight has arrived (signed: it may be short). */
static int64_t
eventual_kib(const struct seq *q)
{
    int64_t e = (int64_t)q->s.host.available_kib;
    for (size_t i = 0; i < q->s.n_vms; i++) {
        const struct sched_vm *v = &q->s.vms[i];
        if (v->target_kib)
            e -= (int64_t)v->target_kib - (int64_t)v->actual_kib;
    }
    return e;
}

/* What the plan lets VMs keep of their own shrinks still in flight: a donor whose use grew
 * (a change of use) stops giving before its target, so the host's eventual memory falls by
 * memory the VM never stopped holding. That is the guest's input changing, not a grant; the
 * eventual-memory check adds it back and judges what the plan took from the host. */
static int64_t
kept_kib(const struct seq *q, const struct sched_plan *plan)
{
    int64_t kept = 0;

    for (size_t k = 0; k < plan->n_entries; k++) {
        const struct sched_entry *e = &plan->entries[k];
        const struct sched_vm *v = &q->s.vms[e->vm];
        uint64_t keeps = min_u64(e->new_target_kib, v->actual_kib);
        if (e->reason == SCHED_REASON_GROW && v->target_kib && v->target_kib < v->actual_kib &&
            keeps > v->target_kib)
            kept += (int64_t)(keeps - v->target_kib);
    }
    return kept;
}

/* A well-formed host: every VM running, managed, with fresh stats and no look-ahead (rate 0,
 * horizon 0); a VM releases at most 64 steps' worth, so the sequence converges within
 * rounds_max. */
static void
random_seq(struct rng *r, struct seq *q)
{
    struct policy *p = &q->s.policy;
    random_policy(r, p);
    uint64_t floor = p->vm_floor_kib, step = p->max_release_step_kib;
    uint64_t scale = p->vm_excess_unused_kib + step, shrink_rounds = 0;

    q->s.n_vms = (size_t)rng_range(r, 1, SEQ_VMS_MAX);
    for (size_t i = 0; i < q->s.n_vms; i++) {
        struct sched_vm *v = &q->s.vms[i];
        memset(v, 0, sizeof(*v));
        v->actual_kib = floor + rng_range(r, 0, 64 * step);
        v->max_kib = v->actual_kib + (rng_pct(r, 20) ? 0 : rng_range(r, 0, 8 * scale));
        v->target_kib = rng_pct(r, 50) ? v->actual_kib : 0;
        q->used_kib[i] = rng_range(r, 0, v->actual_kib);
        v->unused_kib = v->usable_kib = v->actual_kib - q->used_kib[i];
        v->has_unused = v->has_usable = v->has_balloon = v->managed = true;
        v->state = SCHED_VM_RUNNING;
        v->weight = rng_pct(r, 60) ? 0 : (uint32_t)rng_range(r, 1, SCHED_WEIGHT_MAX);
        uint64_t rounds = div_up(v->actual_kib - floor, step) + 1;
        shrink_rounds = rounds > shrink_rounds ? rounds : shrink_rounds;
    }
    q->s.host.horizon_ms = 0;
    q->s.host.available_kib = rng_pct(r, 20)
                                  ? rng_range(r, 0, p->host_min_unused_kib)
                                  : p->host_min_unused_kib + rng_log(r, 0, 4 * scale * q->s.n_vms);
    q->s.host.total_kib = q->s.host.available_kib + (UINT64_C(1) << 40);
    /* instant, or slow enough that grows stay in flight while others are planned */
    /* a move is at most a release step or a grow to the grow target */
    uint64_t span = p->vm_grow_target_unused_kib > step ? p->vm_grow_target_unused_kib : step;
    q->speed_kib = rng_pct(r, 30) ? UINT64_MAX : rng_range(r, span / 16 + 1, span);
    uint64_t arrive = q->speed_kib == UINT64_MAX ? 1 : div_up(span, q->speed_kib);
    /* the donors release in parallel, a step a round once the last one arrived; the needy
     * follow them */
    q->rounds_max = (shrink_rounds + q->s.n_vms + 4) * (arrive + 1);
    /* half the sequences see guests' use change in the first rounds: new demand arrives while
     * earlier grants are still in flight */
    q->n_changes = rng_pct(r, 50) ? (size_t)rng_range(r, 1, SEQ_CHANGES) : 0;
    uint64_t at = 0;
    for (size_t c = 0; c < q->n_changes; c++) {
        at += rng_range(r, 0, 3);
        q->change_at[c] = at;
        q->change_vm[c] = (uint32_t)rng_below(r, q->s.n_vms);
        q->change_kib[c] = rng_range(r, 0, q->s.vms[q->change_vm[c]].max_kib);
    }
    q->rounds_max += (16 + 4) * q->n_changes * (arrive + 1);
}

/* The plan's targets set, then one round of balloon movement. */
static void
seq_apply(struct seq *q, const struct sched_plan *plan)
{
    for (size_t k = 0; k < plan->n_entries; k++) {
        const struct sched_entry *e = &plan->entries[k];
        if (e->reason == SCHED_REASON_GROW || e->reason == SCHED_REASON_SHRINK)
            q->s.vms[e->vm].target_kib = e->new_target_kib;
    }
    for (size_t i = 0; i < q->s.n_vms; i++) {
        struct sched_vm *v = &q->s.vms[i];
        if (v->target_kib > v->actual_kib) {
            uint64_t d = min_u64(v->target_kib - v->actual_kib, q->speed_kib);
            v->actual_kib += d;
            q->s.host.available_kib = sub_sat(q->s.host.available_kib, d);
        } else if (v->target_kib && v->target_kib < v->actual_kib) {
            uint64_t d = min_u64(v->actual_kib - v->target_kib, q->speed_kib);
            v->actual_kib -= d;
            q->s.host.available_kib += d;
        }
        v->unused_kib = v->usable_kib = sub_sat(v->actual_kib, q->used_kib[i]);
    }
}

static bool
seq_settled(const struct seq *q, const struct sched_plan *plan)
{
    if (plan->n_grows || plan->n_shrinks)
        return false;
    for (size_t i = 0; i < q->s.n_vms; i++)
        if (q->s.vms[i].target_kib && q->s.vms[i].target_kib != q->s.vms[i].actual_kib)
            return false;
    return true;
}

/* One sequence: every round's plan keeps the invariants; the host's eventual memory (what it
 * will have once everything in flight arrives) never goes below its floor through a round that
 * started above it, and never falls in a round that started below it - memory granted in one
 * round is not counted on again in the next; no VM changes direction (a VM grown is never
 * shrunk later, nor a shrunk one grown: the inputs do not change); and within rounds_max the
 * host settles (no moves, nothing in flight) and stays settled. 0, or -EPROTO with msg. */
static int
run_seq(struct seq *q,
        struct sched_work *work,
        uint64_t *rounds_out,
        uint64_t *granted_in_flight,
        char *msg)
{
    struct sched_plan plan;
    int dir[SEQ_VMS_MAX] = {0};
    unsigned settled = 0;
    const struct policy *p = &q->s.policy;

    size_t c = 0;
    uint64_t last_change = 0;

    for (uint64_t k = 0; k < last_change + q->rounds_max + SEQ_SETTLE; k++) {
        for (; c < q->n_changes && q->change_at[c] == k; c++) {
            uint32_t i = q->change_vm[c];
            /* A change serves within a few grows (a needy VM gets grow_target - min a round at
             * least) and takes back at most 16 release steps, so the bound stays one. */
            uint64_t up = min_u64(16 * p->max_release_step_kib,
                                  4 * (p->vm_grow_target_unused_kib - p->vm_min_unused_kib));
            uint64_t down = 16 * p->max_release_step_kib;
            uint64_t used = q->used_kib[i], want = q->change_kib[c];
            q->used_kib[i] = want > used          ? min_u64(want, used + up)
                             : want + down < used ? used - down
                                                  : want;
            q->s.vms[i].unused_kib = q->s.vms[i].usable_kib =
                sub_sat(q->s.vms[i].actual_kib, q->used_kib[i]);
            dir[i] = 0; /* its input changed: it may turn */
            settled = 0;
            last_change = k;
        }
        int64_t before = eventual_kib(q);
        int rc = plan_and_check(p, &q->s.host, q->s.vms, q->s.n_vms, work, &plan, msg);
        if (rc != 0)
            return rc;
        if (settled && (plan.n_grows || plan.n_shrinks)) {
            snprintf(msg, MSG_LEN, "round %" PRIu64 ": moves again after settling", k);
            return -EPROTO;
        }
        for (size_t j = 0; j < plan.n_entries; j++) {
            const struct sched_entry *e = &plan.entries[j];
            int d = e->reason == SCHED_REASON_GROW ? 1 : e->reason == SCHED_REASON_SHRINK ? -1 : 0;
            if (d && dir[e->vm] == -d) {
                snprintf(msg, MSG_LEN, "round %" PRIu64 ": vm %" PRIu32 " %s after it was %s", k,
                         e->vm, d > 0 ? "grown" : "shrunk", d > 0 ? "shrunk" : "grown");
                return -EPROTO;
            }
            if (d)
                dir[e->vm] = d;
        }
        *granted_in_flight += plan.summary.host_granted_kib && plan.summary.inflight_grow_kib;
        bool was_settled = seq_settled(q, &plan);
        int64_t kept = kept_kib(q, &plan);
        seq_apply(q, &plan);
        int64_t after = eventual_kib(q) + kept, hmin = (int64_t)p->host_min_unused_kib;
        if ((before >= hmin && after < hmin) || (before < hmin && after < before)) {
            snprintf(msg, MSG_LEN,
                     "round %" PRIu64 ": the host's eventual memory %" PRId64 " -> %" PRId64
                     " KiB, floor %" PRId64 " (memory counted twice?)",
                     k, before, after, hmin);
            return -EPROTO;
        }
        if (was_settled) {
            if (!settled)
                *rounds_out = k;
            if (++settled >= SEQ_SETTLE && c == q->n_changes)
                return 0;
        } else if (settled) {
            snprintf(msg, MSG_LEN, "round %" PRIu64 ": in flight again after settling", k);
            return -EPROTO;
        }
    }
    snprintf(msg, MSG_LEN,
             "not settled within %" PRIu64 " rounds of the last change (round %" PRIu64 ")",
             q->rounds_max, last_change);
    return -EPROTO;
}

static void
test_round_sequences(void **state)
{
    (void)state;
    struct rng r = {opt_seed ^ UINT64_C(0x5e9)};
    struct seq q = {.s.vms = calloc(SEQ_VMS_MAX, sizeof(struct sched_vm))};
    struct sched_work *work = sched_work_new(SEQ_VMS_MAX);
    struct seq start;
    struct sched_vm start_vms[SEQ_VMS_MAX];
    char msg[MSG_LEN];
    uint64_t n = opt_count / 64 ? opt_count / 64 : 1, rounds_total = 0, moved = 0, pressure = 0;
    uint64_t granted_in_flight = 0;

    assert_non_null(q.s.vms);
    assert_non_null(work);
    if (n > SEQ_COUNT)
        n = SEQ_COUNT;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t rounds = 0;
        random_seq(&r, &q);
        if (q.rounds_max > SEQ_ROUNDS_MAX) {
            k--; /* too slow a host for a unit test: draw another */
            continue;
        }
        start = q;
        memcpy(start_vms, q.s.vms, q.s.n_vms * sizeof(*start_vms));
        pressure += q.s.host.available_kib < q.s.policy.host_min_unused_kib;
        if (run_seq(&q, work, &rounds, &granted_in_flight, msg) != 0) {
            fprintf(stderr, "seed=%" PRIu64 " sequence=%" PRIu64 ": %s\n", opt_seed, k, msg);
            fprintf(stderr, "its start (balloons move %" PRIu64 " KiB a round; use per VM:",
                    start.speed_kib);
            for (size_t i = 0; i < start.s.n_vms; i++)
                fprintf(stderr, " %" PRIu64, start.used_kib[i]);
            fprintf(stderr, "; changes of use:");
            for (size_t c = 0; c < start.n_changes; c++)
                fprintf(stderr, " round %" PRIu64 " vm %" PRIu32 " to %" PRIu64, start.change_at[c],
                        start.change_vm[c], start.change_kib[c]);
            fprintf(stderr, "):\n");
            dump_snapshot(stderr, &start.s.policy, &start.s.host, start_vms, start.s.n_vms);
            fprintf(stderr, "now:\n");
            dump_snapshot(stderr, &q.s.policy, &q.s.host, q.s.vms, q.s.n_vms);
            sched_work_destroy(&work);
            free(q.s.vms);
            fail_msg("sequence %" PRIu64 " of seed %" PRIu64 ": %s", k, opt_seed, msg);
        }
        rounds_total += rounds;
        moved += rounds > 0;
    }
    printf("sequences: %" PRIu64 " settled in %" PRIu64 " rounds in all (%" PRIu64
           " moved before settling, %" PRIu64 " started under pressure, %" PRIu64
           " rounds granted from the host beside grows in flight)\n",
           n, rounds_total, moved, pressure, granted_in_flight);
    sched_work_destroy(&work);
    free(q.s.vms);
    /* a generator whose hosts never move would prove nothing */
    if (moved < n / 4 || (n >= 1000 && (pressure == 0 || granted_in_flight == 0)))
        fail_msg("sequences: want >= %" PRIu64 " that moved, some under pressure, some granting "
                 "beside grows in flight; got %" PRIu64 ", %" PRIu64 ", %" PRIu64,
                 n / 4, moved, pressure, granted_in_flight);
}

/* Reordering the VMs changes nothing but the indices: on snapshots where no order is decided by
 * a tie (every signal distinct, so every outlook; look-ahead off), each VM (by its identity)
 * gets the same reason and target whatever its place. */
static bool
signals_distinct(const struct snapshot *s)
{
    for (size_t i = 0; i < s->n_vms; i++)
        for (size_t j = i + 1; j < s->n_vms; j++)
            if (s->vms[i].unused_kib == s->vms[j].unused_kib)
                return false;
    return true;
}

static void
test_reordering(void **state)
{
    (void)state;
    struct rng r = {opt_seed ^ UINT64_C(0x07d)};
    struct seq q = {.s.vms = calloc(SEQ_VMS_MAX, sizeof(struct sched_vm))};
    struct sched_vm shuffled[SEQ_VMS_MAX];
    uint32_t perm[SEQ_VMS_MAX];
    struct sched_work *work = sched_work_new(SEQ_VMS_MAX);
    struct sched_work *work2 = sched_work_new(SEQ_VMS_MAX); /* a plan lives in its work area */
    struct sched_plan a, b;
    char msg[MSG_LEN] = "";
    uint64_t n = opt_count / 16 ? opt_count / 16 : 1, compared = 0, moving = 0;

    assert_non_null(q.s.vms);
    assert_non_null(work);
    assert_non_null(work2);
    for (uint64_t k = 0; k < n; k++) {
        random_seq(&r, &q);
        if (!signals_distinct(&q.s))
            continue;
        for (size_t i = 0; i < q.s.n_vms; i++)
            perm[i] = (uint32_t)i;
        for (size_t i = q.s.n_vms; i-- > 1;) {
            size_t j = (size_t)rng_below(&r, i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (size_t i = 0; i < q.s.n_vms; i++)
            shuffled[i] = q.s.vms[perm[i]];
        int rc = plan_and_check(&q.s.policy, &q.s.host, q.s.vms, q.s.n_vms, work, &a, msg);
        if (rc == 0)
            rc = plan_and_check(&q.s.policy, &q.s.host, shuffled, q.s.n_vms, work2, &b, msg);
        /* entry for VM x in a; in b, VM x sits at the place i with perm[i] == x */
        for (size_t j = 0; rc == 0 && j < b.n_entries; j++) {
            const struct sched_entry *f = &b.entries[j];
            const struct sched_entry *e = NULL;
            for (size_t m = 0; m < a.n_entries; m++)
                if (a.entries[m].vm == perm[f->vm])
                    e = &a.entries[m];
            if (!e || e->reason != f->reason || e->new_target_kib != f->new_target_kib) {
                snprintf(msg, MSG_LEN,
                         "vm %" PRIu32 ": %s to %" PRIu64 " KiB in order, %s to %" PRIu64
                         " KiB at place %" PRIu32 " after reordering",
                         perm[f->vm], e ? sched_reason_name(e->reason) : "(none)",
                         e ? e->new_target_kib : 0, sched_reason_name(f->reason), f->new_target_kib,
                         f->vm);
                rc = -EPROTO;
            }
        }
        if (rc == 0 && a.n_entries != b.n_entries) {
            snprintf(msg, MSG_LEN, "%zu entries in order, %zu reordered", a.n_entries, b.n_entries);
            rc = -EPROTO;
        }
        if (rc != 0) {
            fprintf(stderr, "seed=%" PRIu64 " reordering %" PRIu64 ": %s\n", opt_seed, k, msg);
            dump_snapshot(stderr, &q.s.policy, &q.s.host, q.s.vms, q.s.n_vms);
            fprintf(stderr, "order:");
            for (size_t i = 0; i < q.s.n_vms; i++)
                fprintf(stderr, " %" PRIu32, perm[i]);
            fprintf(stderr, "\n");
            dump_plan(stderr, &a);
            dump_plan(stderr, &b);
            sched_work_destroy(&work);
            sched_work_destroy(&work2);
            free(q.s.vms);
            fail_msg("reordering %" PRIu64 " of seed %" PRIu64 ": %s", k, opt_seed, msg);
        }
        compared++;
        moving += a.n_grows + a.n_shrinks > 1;
    }
    printf("reordering: %" PRIu64 " snapshots compared (%" PRIu64 " with several moves)\n",
           compared, moving);
    sched_work_destroy(&work);
    sched_work_destroy(&work2);
    free(q.s.vms);
    if (compared < n / 4 || moving < compared / 10)
        fail_msg("reordering: want >= %" PRIu64
                 " compared, a tenth with several moves; got %" PRIu64 " and %" PRIu64,
                 n / 4, compared, moving);
}

/* A corruption of a valid plan that must break an invariant. */
enum mutation {
    MUT_TRANSFERRED,
    MUT_ENTRY_COUNT,
    MUT_DUPLICATE_VM,
    MUT_PRESSURE,
    MUT_UNCHANGED_MOVES,
    MUT_SKIP_TO_IN_BAND,
    MUT_SHRINK_TOO_FAR,
    MUT_GROW_TOO_FAR,
    MUT_COUNTERPART_SELF,
    MUT_OLD_TARGET,
    MUT_COUNT,
};

/* Apply m to plan (entries copied to room); false when the plan has no place for it. */
static bool
mutate(enum mutation m, const struct policy *p, struct sched_plan *plan, struct sched_entry *room)
{
    size_t n = plan->n_entries, unchanged = plan->n_shrinks + plan->n_grows;

    memcpy(room, plan->entries, n * sizeof(*room));
    plan->entries = room;
    switch (m) {
    case MUT_TRANSFERRED:
        plan->summary.transferred_kib++;
        return true;
    case MUT_ENTRY_COUNT:
        if (n == 0)
            return false;
        plan->n_entries--;
        return true;
    case MUT_DUPLICATE_VM:
        if (n < 2)
            return false;
        room[1].vm = room[0].vm;
        return true;
    case MUT_PRESSURE:
        plan->summary.host_pressure = !plan->summary.host_pressure;
        return true;
    case MUT_UNCHANGED_MOVES:
        if (unchanged == n)
            return false;
        room[unchanged].new_target_kib++;
        return true;
    case MUT_SKIP_TO_IN_BAND:
        for (size_t i = unchanged; i < n; i++) {
            if (sched_reason_is_skip(room[i].reason)) {
                room[i].reason = SCHED_REASON_IN_BAND;
                return true;
            }
        }
        return false;
    case MUT_SHRINK_TOO_FAR:
        if (plan->n_shrinks == 0)
            return false;
        room[0].new_target_kib -= p->max_release_step_kib;
        room[0].host_kib += p->max_release_step_kib;
        plan->summary.reclaimed_kib += p->max_release_step_kib;
        return true;
    case MUT_GROW_TOO_FAR:
        if (plan->n_grows == 0)
            return false;
        room[plan->n_shrinks].new_target_kib += room[plan->n_shrinks].need_kib;
        room[plan->n_shrinks].host_kib += room[plan->n_shrinks].need_kib;
        plan->summary.host_granted_kib += room[plan->n_shrinks].need_kib;
        plan->summary.granted_kib += room[plan->n_shrinks].need_kib;
        return true;
    case MUT_COUNTERPART_SELF:
        if (n == 0)
            return false;
        room[0].counterpart = (int32_t)room[0].vm;
        return true;
    case MUT_OLD_TARGET:
        if (n == 0)
            return false;
        room[n - 1].old_target_kib ^= 1;
        return true;
    case MUT_COUNT:
        break;
    }
    return false;
}

static void
test_checker_rejects_corrupted_plans(void **state)
{
    (void)state;
    struct rng r = {opt_seed ^ UINT64_C(0x5eed)};
    struct snapshot s = {.vms = calloc(VMS_CAP, sizeof(struct sched_vm))};
    struct sched_entry *room = calloc(VMS_CAP, sizeof(*room));
    struct sched_work *work = sched_work_new(VMS_CAP);
    unsigned applied[MUT_COUNT] = {0};
    char msg[MSG_LEN];

    assert_non_null(s.vms);
    assert_non_null(room);
    for (unsigned k = 0; k < 20000; k++) {
        struct sched_plan plan;
        random_snapshot(&r, &s);
        assert_int_equal(plan_and_check(&s.policy, &s.host, s.vms, s.n_vms, work, &plan, msg), 0);
        enum mutation m = (enum mutation)(k % MUT_COUNT);
        if (!mutate(m, &s.policy, &plan, room))
            continue;
        applied[m]++;
        if (sched_check_plan(&s.policy, &s.host, s.vms, s.n_vms, &plan, msg, sizeof(msg)) !=
            -EPROTO) {
            dump_snapshot(stderr, &s.policy, &s.host, s.vms, s.n_vms);
            dump_plan(stderr, &plan);
            fail_msg("seed %" PRIu64 " round %u: mutation %d went unnoticed", opt_seed, k, (int)m);
        }
        assert_true(msg[0] != '\0');
    }
    for (int m = 0; m < MUT_COUNT; m++) {
        if (applied[m] == 0)
            fail_msg("mutation %d never applied: the generator misses that case", m);
    }
    sched_work_destroy(&work);
    free(room);
    free(s.vms);
}

static void
test_plan_refuses_more_than_capacity(void **state)
{
    (void)state;
    struct sched_vm vms[3];
    struct sched_host host = {.total_kib = 1u << 24, .available_kib = 1u << 23};
    struct policy p;
    struct sched_plan plan;
    struct sched_work *work = sched_work_new(2);
    struct rng r = {opt_seed};

    policy_init_defaults(&p);
    for (size_t i = 0; i < 3; i++)
        random_vm(&r, &p, 0, &vms[i]);
    assert_int_equal(sched_plan(&p, &host, vms, 3, work, &plan), -E2BIG);
    assert_int_equal(sched_plan(&p, &host, vms, 2, work, &plan), 0);
    sched_work_destroy(&work);
    assert_null(work);
    sched_work_destroy(&work);
}

/* A needy VM that is not stuck, fresh and sane, needing need_kib at weight. */
static void
needy_vm(struct sched_vm *vm, uint64_t actual_kib, uint64_t need_kib, uint32_t weight)
{
    memset(vm, 0, sizeof(*vm));
    vm->actual_kib = actual_kib;
    vm->max_kib = actual_kib + need_kib;
    vm->weight = weight;
    vm->state = SCHED_VM_RUNNING;
    vm->managed = vm->has_balloon = vm->has_unused = vm->has_usable = true;
}

/* Whole-KiB shares: hundreds of light VMs each round away under a KiB, which lands on a heavy
 * VM shared out late, so two VMs of equal weight end up a dozen KiB apart. That is rounding, not
 * unfairness, and the checker must accept it (test_random_snapshots shows that it still catches
 * weights being ignored). Some of these supplies put the two heavy VMs 13 KiB apart. */
static void
test_checker_accepts_share_rounding(void **state)
{
    (void)state;
    enum { LIGHT = 300, LIGHT_WEIGHT = 80 };
    struct sched_vm vms[LIGHT + 2];
    struct sched_host host = {.total_kib = UINT64_C(1) << 40};
    uint64_t total_weight = 2000 + LIGHT * LIGHT_WEIGHT;
    struct policy p;
    struct sched_plan plan;
    struct sched_work *work = sched_work_new(LIGHT + 2);
    char msg[MSG_LEN];

    policy_init_defaults(&p);
    p.vm_min_unused_kib = UINT64_C(1) << 29;
    p.vm_grow_target_unused_kib = UINT64_C(1) << 30;
    p.vm_excess_unused_kib = UINT64_C(1) << 30;
    assert_int_equal(policy_validate(&p, msg, sizeof(msg)), 0);
    /* need per weight puts them in this order: heavy, the lights, heavy */
    needy_vm(&vms[0], UINT64_C(1) << 29, 1000000, 1000);
    for (size_t i = 1; i <= LIGHT; i++)
        needy_vm(&vms[i], UINT64_C(1) << 29, 10000 * LIGHT_WEIGHT, LIGHT_WEIGHT);
    needy_vm(&vms[LIGHT + 1], UINT64_C(1) << 29, UINT64_C(1) << 30, 1000);
    for (uint64_t k = 0; k < 64; k++) {
        /* a level of 400 to 401 KiB per unit of weight: every share is contested */
        host.available_kib =
            p.host_min_unused_kib + total_weight * 400 + k * (total_weight / 64) + 7;
        assert_int_equal(sched_plan(&p, &host, vms, LIGHT + 2, work, &plan), 0);
        if (sched_check_plan(&p, &host, vms, LIGHT + 2, &plan, msg, sizeof(msg)) != 0) {
            dump_plan(stderr, &plan);
            fail_msg("supply step %" PRIu64 ": %s", k, msg);
        }
    }
    sched_work_destroy(&work);
}

/* The largest round there is, with sizes at and beyond 2^50: sums must not wrap. */
static void
test_largest_rounds(void **state)
{
    (void)state;
    struct rng r = {opt_seed ^ UINT64_C(0xb16)};
    struct snapshot s = {.vms = calloc(SCHED_VMS_MAX, sizeof(struct sched_vm))};
    struct sched_work *work = sched_work_new(SCHED_VMS_MAX);
    struct sched_plan plan;
    char msg[MSG_LEN];

    assert_non_null(s.vms);
    for (unsigned k = 0; k < 12; k++) {
        random_policy(&r, &s.policy);
        s.n_vms = SCHED_VMS_MAX;
        for (size_t i = 0; i < s.n_vms; i++) {
            random_vm(&r, &s.policy, k % 3 == 0 ? 0 : 10, &s.vms[i]);
            if (k % 2 == 1) {
                /* everything huge: grows in flight of nearly 2^50 each */
                s.vms[i].max_kib = UINT64_MAX;
                s.vms[i].actual_kib = rng_range(&r, 1, 1024);
                s.vms[i].target_kib = UINT64_MAX - rng_below(&r, 2);
            }
        }
        random_host(&r, &s.policy, s.vms, s.n_vms, &s.host);
        if (k % 4 == 1)
            s.host.available_kib = UINT64_MAX;
        if (plan_and_check(&s.policy, &s.host, s.vms, s.n_vms, work, &plan, msg) != 0)
            fail_msg("seed %" PRIu64 " round %u (%zu VMs): %s", opt_seed, k, s.n_vms, msg);
    }
    sched_work_destroy(&work);
    free(s.vms);
}

static int
parse_u64_arg(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    struct timespec ts;
    bool have_seed = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && parse_u64_arg(argv[i + 1], &opt_seed) == 0) {
            have_seed = true;
            i++;
        } else if (strcmp(argv[i], "--count") == 0 && parse_u64_arg(argv[i + 1], &opt_count) == 0) {
            i++;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            cmocka_set_test_filter(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--seed N] [--count N] [--only TEST_NAME_PATTERN]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!have_seed) {
        clock_gettime(CLOCK_REALTIME, &ts);
        opt_seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    printf("seed=%" PRIu64 "\n", opt_seed);
    fflush(stdout);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_snapshots),
        cmocka_unit_test(test_round_sequences),
        cmocka_unit_test(test_reordering),
        cmocka_unit_test(test_checker_rejects_corrupted_plans),
        cmocka_unit_test(test_plan_refuses_more_than_capacity),
        cmocka_unit_test(test_checker_accepts_share_rounding),
        cmocka_unit_test(test_largest_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
