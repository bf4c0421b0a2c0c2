/*
 * sched_check.c - the scheduling invariants of DESIGN.md, checked on a finished plan.
 *
 * This file is written from the rules (DESIGN.md "The scheduling rules" and "Invariants", and the
 * round as sched.h specifies it), not from the planner: it never re-runs the planner's transfer
 * logic, it only derives per-VM bounds from the input (eligibility, need, largest release) and
 * checks the plan against them, so that a bug in one is caught by the other.
 *
 * It owns nothing: it reads the policy, the snapshot and the plan and writes one message.
 * Like the planner it does no I/O, reads no clock and allocates nothing (its bitmaps live on
 * the stack, sized by SCHED_VMS_MAX). Every sum that could pass 2^64 (16384 VMs of 2^50 KiB) is
 * kept as a two-word value, so no check can be fooled by wrap-around.
 */
#include "sched_check.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#define BITMAP_WORDS (SCHED_VMS_MAX / 64u)

/* A VM's place in an order of step 4: by outlook (donors: highest first; needy: lowest first),
 * ties by index. */
struct ranked {
    bool set;
    uint32_t vm;
    int64_t outlook;
};

/* A sum that cannot overflow: hi counts the carries out of lo. */
struct wide {
    uint64_t lo;
    uint64_t hi;
};

/* One VM as the rules see it: every KiB input clamped to SCHED_KIB_MAX, the derived sizes. */
struct view {
    uint64_t max_kib;     /* the domain's max (clamped) */
    uint64_t eff_max_kib; /* min(max, cap when set) */
    uint64_t actual_kib;
    uint64_t committed_kib; /* target when set, else actual */
    uint64_t floor_kib;     /* min when set, else the policy's floor */
    uint64_t signal_kib;
    uint64_t lookahead_kib; /* rate x horizon when predictive, else 0 */
    int64_t outlook_kib;    /* signal - lookahead: every threshold is tested on it */
    bool has_signal;
    bool settling;      /* signal above actual: stats older than the balloon's last move */
    unsigned skip_mask; /* bit per step-2 reason that applies; 0 = eligible */
};

static void
wide_add(struct wide *w, uint64_t v)
{
    w->lo += v;
    if (w->lo < v)
        w->hi++;
}

static bool
wide_eq(const struct wide *w, uint64_t v)
{
    return w->hi == 0 && w->lo == v;
}

static uint64_t
wide_saturate(const struct wide *w)
{
    return w->hi ? UINT64_MAX : w->lo;
}

static uint64_t
clamp_kib(uint64_t v)
{
    return v > SCHED_KIB_MAX ? SCHED_KIB_MAX : v;
}

static void
bit_set(uint64_t *map, size_t i)
{
    map[i / 64] |= UINT64_C(1) << (i % 64);
}

static bool
bit_get(const uint64_t *map, size_t i)
{
    return (map[i / 64] >> (i % 64)) & 1u;
}

__attribute__((format(printf, 3, 4))) static int
violation(char *msg, size_t msg_len, const char *fmt, ...)
{
    if (msg && msg_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_len, fmt, ap);
        va_end(ap);
    }
    return -EPROTO;
}

static unsigned
reason_bit(enum sched_reason reason)
{
    return 1u << (unsigned)reason;
}

static void
view_make(const struct policy *policy,
          const struct sched_host *host,
          const struct sched_vm *vm,
          struct view *v)
{
    uint64_t target = clamp_kib(vm->target_kib);
    uint64_t cap = clamp_kib(vm->cap_kib);
    uint64_t min = clamp_kib(vm->min_kib);

    v->max_kib = clamp_kib(vm->max_kib);
    v->actual_kib = clamp_kib(vm->actual_kib);
    v->committed_kib = target ? target : v->actual_kib;
    v->eff_max_kib = cap ? util_min_u64(v->max_kib, cap) : v->max_kib;
    v->floor_kib = min ? min : policy->vm_floor_kib;
    if (policy->demand_signal == POLICY_DEMAND_USABLE) {
        v->has_signal = vm->has_usable;
        v->signal_kib = clamp_kib(vm->usable_kib);
    } else {
        v->has_signal = vm->has_unused;
        v->signal_kib = clamp_kib(vm->unused_kib);
    }

    /* Step 2: every reason that applies; the planner may report any one of them. */
    v->skip_mask = 0;
    if (!vm->managed)
        v->skip_mask |= reason_bit(SCHED_REASON_UNMANAGED);
    if (!vm->has_balloon)
        v->skip_mask |= reason_bit(SCHED_REASON_NO_BALLOON);
    if (!v->has_signal)
        v->skip_mask |= reason_bit(SCHED_REASON_NO_STATS);
    if (vm->stats_age_ms > (uint64_t)policy->stale_stats_s * 1000u)
        v->skip_mask |= reason_bit(SCHED_REASON_STALE_STATS);
    if (vm->state == SCHED_VM_MIGRATING)
        v->skip_mask |= reason_bit(SCHED_REASON_MIGRATING);
    else if (vm->state != SCHED_VM_RUNNING)
        v->skip_mask |= reason_bit(SCHED_REASON_NOT_RUNNING);
    if (v->actual_kib == 0 || v->actual_kib > v->max_kib)
        v->skip_mask |= reason_bit(SCHED_REASON_BAD_SAMPLE);
    v->settling = v->has_signal && v->signal_kib > v->actual_kib;

    /* What the guest uses before a grant arrives: its rate over the horizon, both clamped. */
    v->lookahead_kib = 0;
    if (policy->predictive)
        v->lookahead_kib = util_min_u64(vm->rate_kib_s, SCHED_RATE_MAX_KIB_S) *
                           util_min_u64(host->horizon_ms, SCHED_HORIZON_MAX_MS) / 1000u;
    v->outlook_kib = (int64_t)v->signal_kib - (int64_t)v->lookahead_kib;
}

static bool
view_below_min(const struct policy *policy, const struct view *v)
{
    return v->outlook_kib < (int64_t)policy->vm_min_unused_kib;
}

static bool
view_above_excess(const struct policy *policy, const struct view *v)
{
    return v->outlook_kib > (int64_t)policy->vm_excess_unused_kib;
}

/* Room a grow may fill: up to the grow target (plus the lookahead), never past max. */
static uint64_t
view_room(const struct policy *policy, const struct view *v)
{
    return util_min_u64(
        util_sub_sat(policy->vm_grow_target_unused_kib + v->lookahead_kib, v->signal_kib),
        util_sub_sat(v->eff_max_kib, v->actual_kib));
}

/* What a short VM whose grow in flight covers its need still lacks by its stats: donors may keep
 * that much from the host for it (reclaim). 0 for any other VM. */
static uint64_t
view_awaited(const struct policy *policy, const struct sched_vm *vm, const struct view *v)
{
    if (v->skip_mask || v->settling || vm->stuck || !view_below_min(policy, v) ||
        v->committed_kib <= v->actual_kib)
        return 0;
    uint64_t room = view_room(policy, v);
    return room <= v->committed_kib - v->actual_kib ? room : 0;
}

/* What a needy VM may ask for this round (step 3); 0 when it is not needy. */
static uint64_t
view_need(const struct policy *policy, const struct view *v)
{
    if (v->skip_mask || v->settling || !view_below_min(policy, v))
        return 0;
    return util_sub_sat(view_room(policy, v), util_sub_sat(v->committed_kib, v->actual_kib));
}

/* The plan's shape: n entries, each VM once, shrinks then grows then the rest. Fills the bitmaps
 * of shrinking and growing VMs for the counterpart checks. */
static int
check_shape(const struct sched_plan *plan,
            size_t n,
            uint64_t *seen,
            uint64_t *shrinking,
            uint64_t *growing,
            char *msg,
            size_t msg_len)
{
    if (plan->n_entries != n)
        return violation(msg, msg_len, "plan has %zu entries for %zu VMs", plan->n_entries, n);
    if (n > 0 && !plan->entries)
        return violation(msg, msg_len, "plan has no entries for %zu VMs", n);
    if (plan->n_shrinks > n || plan->n_grows > n - plan->n_shrinks)
        return violation(msg, msg_len, "plan counts %zu shrinks + %zu grows for %zu VMs",
                         plan->n_shrinks, plan->n_grows, n);

    for (size_t i = 0; i < n; i++) {
        const struct sched_entry *e = &plan->entries[i];
        bool want_shrink = i < plan->n_shrinks;
        bool want_grow = !want_shrink && i - plan->n_shrinks < plan->n_grows;

        if (e->vm >= n)
            return violation(msg, msg_len, "entry %zu: vm index %" PRIu32 " out of range (%zu VMs)",
                             i, e->vm, n);
        if (bit_get(seen, e->vm))
            return violation(msg, msg_len, "entry %zu: vm %" PRIu32 " planned twice", i, e->vm);
        bit_set(seen, e->vm);
        if ((unsigned)e->reason >= SCHED_REASON_COUNT)
            return violation(msg, msg_len, "vm %" PRIu32 ": reason %u out of range", e->vm,
                             (unsigned)e->reason);
        if (want_shrink != (e->reason == SCHED_REASON_SHRINK) ||
            want_grow != (e->reason == SCHED_REASON_GROW))
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": entry %zu has reason %s, apply order wants %s", e->vm,
                             i, sched_reason_name(e->reason),
                             want_shrink ? "shrink"
                             : want_grow ? "grow"
                                         : "neither grow nor shrink");
        if (want_shrink)
            bit_set(shrinking, e->vm);
        if (want_grow)
            bit_set(growing, e->vm);
    }
    return 0;
}

/* Step 2 and the reasons that claim something about the VM. */
static int
check_reason(const struct policy *policy,
             const struct sched_vm *vm,
             const struct view *v,
             const struct sched_entry *e,
             uint64_t need_kib,
             char *msg,
             size_t msg_len)
{
    bool skip = sched_reason_is_skip(e->reason);

    if (v->skip_mask && !skip)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": ineligible (skip reasons 0x%x) but planned as %s", e->vm,
                         v->skip_mask, sched_reason_name(e->reason));
    if (skip && !(v->skip_mask & reason_bit(e->reason)))
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": left alone as %s, which does not apply (skip reasons "
                         "0x%x)",
                         e->vm, sched_reason_name(e->reason), v->skip_mask);
    if (skip)
        return 0;

    int64_t out = v->outlook_kib;
    bool in_band = !view_below_min(policy, v) && !view_above_excess(policy, v);
    if ((in_band || v->settling) &&
        (e->reason == SCHED_REASON_GROW || e->reason == SCHED_REASON_SHRINK))
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": outlook %" PRId64 " KiB is in band [%" PRIu64 ", %" PRIu64
                         "] (or the sample is settling) but planned as %s",
                         e->vm, out, policy->vm_min_unused_kib, policy->vm_excess_unused_kib,
                         sched_reason_name(e->reason));
    if (v->settling && e->reason != SCHED_REASON_IN_FLIGHT)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": signal %" PRIu64 " KiB above actual %" PRIu64
                         " KiB (stats older than the balloon) but planned as %s",
                         e->vm, v->signal_kib, v->actual_kib, sched_reason_name(e->reason));

    switch (e->reason) {
    case SCHED_REASON_GROW:
    case SCHED_REASON_NEED_UNMET:
        if (!view_below_min(policy, v) || need_kib == 0)
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": %s but outlook %" PRId64 " KiB (min %" PRIu64
                             ") leaves need %" PRIu64 " KiB",
                             e->vm, sched_reason_name(e->reason), out, policy->vm_min_unused_kib,
                             need_kib);
        break;
    case SCHED_REASON_AT_MAX:
        if (!view_below_min(policy, v))
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": at_max but outlook %" PRId64
                             " KiB is not below min %" PRIu64 " KiB",
                             e->vm, out, policy->vm_min_unused_kib);
        break;
    case SCHED_REASON_IN_FLIGHT:
        if (v->committed_kib == v->actual_kib && !v->settling)
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": in_flight but committed == actual == %" PRIu64 " KiB",
                             e->vm, v->actual_kib);
        break;
    case SCHED_REASON_SHRINK:
    case SCHED_REASON_AT_FLOOR:
    case SCHED_REASON_STUCK_DONOR:
        if (!view_above_excess(policy, v))
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": %s but outlook %" PRId64
                             " KiB is not above excess %" PRIu64 " KiB",
                             e->vm, sched_reason_name(e->reason), out,
                             policy->vm_excess_unused_kib);
        if (e->reason != SCHED_REASON_AT_FLOOR && vm->stuck != (e->reason != SCHED_REASON_SHRINK))
            return violation(msg, msg_len, "vm %" PRIu32 ": %s but stuck=%d", e->vm,
                             sched_reason_name(e->reason), (int)vm->stuck);
        break;
    default:
        break;
    }
    /* A VM that needs memory is either grown or reported as unmet. */
    if (need_kib > 0 && e->reason != SCHED_REASON_GROW && e->reason != SCHED_REASON_NEED_UNMET)
        return violation(msg, msg_len, "vm %" PRIu32 ": needs %" PRIu64 " KiB but planned as %s",
                         e->vm, need_kib, sched_reason_name(e->reason));
    return 0;
}

static int
check_grow(const struct policy *policy,
           const struct view *v,
           const struct sched_entry *e,
           uint64_t need_kib,
           char *msg,
           size_t msg_len)
{
    uint64_t base = util_max_u64(v->committed_kib, v->actual_kib);

    if (e->new_target_kib <= base)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": grow to %" PRIu64 " KiB is not above committed %" PRIu64
                         " KiB / actual %" PRIu64 " KiB",
                         e->vm, e->new_target_kib, v->committed_kib, v->actual_kib);
    uint64_t grow = e->new_target_kib - base;
    if (grow > need_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": grow %" PRIu64 " KiB > need %" PRIu64 " KiB", e->vm, grow,
                         need_kib);
    if (e->new_target_kib > v->eff_max_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": new target %" PRIu64 " KiB > max %" PRIu64 " KiB", e->vm,
                         e->new_target_kib, v->eff_max_kib);
    uint64_t room = view_room(policy, v);
    if (e->new_target_kib - v->actual_kib > room)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": new target %" PRIu64 " KiB is %" PRIu64
                         " KiB above actual, more than the %" PRIu64 " KiB the grow target allows",
                         e->vm, e->new_target_kib, e->new_target_kib - v->actual_kib, room);
    if (e->vm_kib > grow || e->host_kib != grow - e->vm_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": grow %" PRIu64 " KiB != from vms %" PRIu64
                         " KiB + from host %" PRIu64 " KiB",
                         e->vm, grow, e->vm_kib, e->host_kib);
    return 0;
}

static int
check_shrink(const struct policy *policy,
             const struct view *v,
             const struct sched_entry *e,
             char *msg,
             size_t msg_len)
{
    if (e->new_target_kib >= v->committed_kib || e->new_target_kib >= v->actual_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": shrink to %" PRIu64 " KiB is not below committed %" PRIu64
                         " KiB and actual %" PRIu64 " KiB",
                         e->vm, e->new_target_kib, v->committed_kib, v->actual_kib);
    uint64_t release = v->actual_kib - e->new_target_kib;
    if (release > policy->max_release_step_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": release %" PRIu64 " KiB > max_release_step %" PRIu64
                         " KiB",
                         e->vm, release, policy->max_release_step_kib);
    if (v->outlook_kib - (int64_t)release < (int64_t)policy->vm_min_unused_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": release %" PRIu64 " KiB leaves an outlook of %" PRId64
                         " KiB unused < vm_min_unused %" PRIu64 " KiB",
                         e->vm, release, v->outlook_kib - (int64_t)release,
                         policy->vm_min_unused_kib);
    if (e->new_target_kib < v->floor_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": new target %" PRIu64 " KiB < floor %" PRIu64 " KiB",
                         e->vm, e->new_target_kib, v->floor_kib);
    /* What a shrink may hand out is what it newly frees from memory the guest holds: not a
     * shrink already in flight (handed out when it was asked for), and not a grow in flight
     * that it cancels (that memory never arrived; the host keeps it). */
    uint64_t freed = util_min_u64(v->committed_kib, v->actual_kib) - e->new_target_kib;
    if (e->vm_kib > freed || e->host_kib != freed - e->vm_kib)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": shrink frees %" PRIu64 " KiB (min(committed %" PRIu64
                         ", actual) - new %" PRIu64 ") != to vms %" PRIu64 " KiB + to host %" PRIu64
                         " KiB",
                         e->vm, freed, v->committed_kib, e->new_target_kib, e->vm_kib, e->host_kib);
    return 0;
}

static int
check_counterpart(const struct sched_entry *e,
                  size_t n,
                  const uint64_t *shrinking,
                  const uint64_t *growing,
                  char *msg,
                  size_t msg_len)
{
    int32_t c = e->counterpart;

    if (c != SCHED_NOBODY && c != SCHED_HOST && (c < 0 || (size_t)c >= n || (uint32_t)c == e->vm))
        return violation(msg, msg_len, "vm %" PRIu32 ": counterpart %" PRId32 " is invalid", e->vm,
                         c);
    if (e->reason == SCHED_REASON_GROW || e->reason == SCHED_REASON_SHRINK) {
        const uint64_t *other_side = e->reason == SCHED_REASON_GROW ? shrinking : growing;
        if (e->vm_kib == 0 && c != SCHED_HOST)
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": %s only with the host but counterpart %" PRId32,
                             e->vm, sched_reason_name(e->reason), c);
        if (e->host_kib == 0 && (c < 0 || !bit_get(other_side, (size_t)c)))
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": %s only with VMs but counterpart %" PRId32
                             " is not a %s",
                             e->vm, sched_reason_name(e->reason), c,
                             e->reason == SCHED_REASON_GROW ? "shrink" : "grow");
        if (c >= 0 && !bit_get(other_side, (size_t)c))
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": %s with counterpart %" PRId32 " which is not a %s",
                             e->vm, sched_reason_name(e->reason), c,
                             e->reason == SCHED_REASON_GROW ? "shrink" : "grow");
    }
    return 0;
}

/* What the per-VM pass gathers for the round-wide checks. */
struct tally {
    struct wide grow_vm, grow_host, shrink_vm, shrink_host, need;
    size_t skipped;
    /* the first needy VM that got less than its need */
    bool shortfall;
    uint32_t short_vm;
    uint64_t short_need, short_got;
    /* the first donor that released less than it could */
    bool held;
    uint32_t held_vm;
    uint64_t held_release, held_full;
    struct wide held_kib, awaited_kib; /* all donors kept; all short VMs in flight await */
    /* among short VMs, the highest and lowest got/weight: the water level's spread */
    bool have_short;
    uint64_t n_short;
    uint32_t hi_vm, lo_vm;
    uint64_t hi_got, hi_weight, lo_got, lo_weight;
    /* among fully served VMs, the highest need/weight */
    bool have_full;
    uint32_t full_vm;
    uint64_t full_need, full_weight;
    /* order (step 4): the earliest donor, in donor order, that did not release all it could,
     * and the latest that gave to a VM; the earliest needy VM, in urgency order, fed from the
     * host, and the latest fed from a donor */
    struct ranked first_partial_donor, last_giving_donor;
    struct ranked first_host_fed, last_vm_fed;
};

/* a/b > c/d for positive b, d; the products stay below 2^64 (values < 2^51, weights < 2^11). */
static bool
ratio_gt(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    return a * d > c * b;
}

/* Does a come before b: donors by highest outlook, the needy by lowest, ties by index. */
static bool
ranked_before(const struct ranked *a, const struct ranked *b, bool donors)
{
    if (a->outlook != b->outlook)
        return donors ? a->outlook > b->outlook : a->outlook < b->outlook;
    return a->vm < b->vm;
}

/* Keep in *keep the earliest (first) or latest (!first) of it and r. */
static void
rank_keep(struct ranked *keep, uint32_t vm, int64_t outlook, bool donors, bool first)
{
    struct ranked r = {.set = true, .vm = vm, .outlook = outlook};

    if (!keep->set || ranked_before(&r, keep, donors) == first)
        *keep = r;
}

static void
tally_needy(struct tally *t, uint32_t vm, uint32_t weight, uint64_t need, uint64_t got)
{
    /* Weights are clamped into [1, SCHED_WEIGHT_MAX], 0 meaning the default. */
    uint64_t w = weight ? util_min_u64(weight, SCHED_WEIGHT_MAX) : SCHED_WEIGHT_DEFAULT;

    if (got >= need) {
        if (!t->have_full || ratio_gt(need, w, t->full_need, t->full_weight)) {
            t->have_full = true;
            t->full_vm = vm;
            t->full_need = need;
            t->full_weight = w;
        }
        return;
    }
    if (!t->shortfall) {
        t->shortfall = true;
        t->short_vm = vm;
        t->short_need = need;
        t->short_got = got;
    }
    if (!t->have_short || ratio_gt(got, w, t->hi_got, t->hi_weight)) {
        t->hi_vm = vm;
        t->hi_got = got;
        t->hi_weight = w;
    }
    if (!t->have_short || ratio_gt(t->lo_got, t->lo_weight, got, w)) {
        t->lo_vm = vm;
        t->lo_got = got;
        t->lo_weight = w;
    }
    t->have_short = true;
    t->n_short++;
}

/* A donor that may release (eligible, above excess, not stuck) and whether it released all it
 * could: min(step, signal - vm_min_unused, actual - floor), when that lands below committed. */
static void
tally_donor(const struct policy *policy,
            const struct sched_vm *vm,
            const struct view *v,
            const struct sched_entry *e,
            struct tally *t)
{
    if (v->skip_mask || v->settling || vm->stuck || !view_above_excess(policy, v))
        return;
    uint64_t full = util_min_u64(policy->max_release_step_kib,
                                 util_min_u64((uint64_t)v->outlook_kib - policy->vm_min_unused_kib,
                                              util_sub_sat(v->actual_kib, v->floor_kib)));
    if (full == 0 || v->actual_kib - full >= v->committed_kib)
        return;
    /* A shrink still in flight has released its part already. */
    uint64_t release = e->reason == SCHED_REASON_SHRINK
                           ? v->actual_kib - e->new_target_kib
                           : util_sub_sat(v->actual_kib, v->committed_kib);
    if (release < full && !t->held) {
        t->held = true;
        t->held_vm = e->vm;
        t->held_release = release;
        t->held_full = full;
    }
    if (release < full) {
        wide_add(&t->held_kib, full - release);
        rank_keep(&t->first_partial_donor, e->vm, v->outlook_kib, true, true);
    }
    if (e->reason == SCHED_REASON_SHRINK && e->vm_kib > 0)
        rank_keep(&t->last_giving_donor, e->vm, v->outlook_kib, true, false);
}

/* Step 2-4 per VM: fills t for the round-wide checks. */
static int
check_entries(const struct policy *policy,
              const struct sched_host *host,
              const struct sched_vm *vms,
              size_t n,
              const struct sched_plan *plan,
              const uint64_t *shrinking,
              const uint64_t *growing,
              struct tally *t,
              char *msg,
              size_t msg_len)
{
    struct view v;
    int rc;

    for (size_t i = 0; i < n; i++) {
        const struct sched_entry *e = &plan->entries[i];
        const struct sched_vm *vm = &vms[e->vm];

        view_make(policy, host, vm, &v);
        uint64_t need = view_need(policy, &v);

        if (e->old_target_kib != v.committed_kib)
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": old target %" PRIu64 " KiB != committed %" PRIu64
                             " KiB",
                             e->vm, e->old_target_kib, v.committed_kib);
        if (e->need_kib != need)
            return violation(msg, msg_len,
                             "vm %" PRIu32 ": need %" PRIu64 " KiB, the rules give %" PRIu64 " KiB",
                             e->vm, e->need_kib, need);
        rc = check_reason(policy, vm, &v, e, need, msg, msg_len);
        if (rc < 0)
            return rc;

        if (e->reason == SCHED_REASON_GROW) {
            rc = check_grow(policy, &v, e, need, msg, msg_len);
            if (rc < 0)
                return rc;
            wide_add(&t->grow_vm, e->vm_kib);
            wide_add(&t->grow_host, e->host_kib);
            uint64_t got = e->new_target_kib - util_max_u64(v.committed_kib, v.actual_kib);
            tally_needy(t, e->vm, vm->weight, need, got);
            if (e->host_kib > 0)
                rank_keep(&t->first_host_fed, e->vm, v.outlook_kib, false, true);
            if (e->vm_kib > 0)
                rank_keep(&t->last_vm_fed, e->vm, v.outlook_kib, false, false);
        } else if (e->reason == SCHED_REASON_SHRINK) {
            rc = check_shrink(policy, &v, e, msg, msg_len);
            if (rc < 0)
                return rc;
            wide_add(&t->shrink_vm, e->vm_kib);
            wide_add(&t->shrink_host, e->host_kib);
        } else {
            if (e->new_target_kib != e->old_target_kib || e->vm_kib != 0 || e->host_kib != 0)
                return violation(msg, msg_len,
                                 "vm %" PRIu32 ": %s but target %" PRIu64 " -> %" PRIu64
                                 " KiB, vm %" PRIu64 " KiB, host %" PRIu64 " KiB",
                                 e->vm, sched_reason_name(e->reason), e->old_target_kib,
                                 e->new_target_kib, e->vm_kib, e->host_kib);
            if (e->reason == SCHED_REASON_NEED_UNMET)
                tally_needy(t, e->vm, vm->weight, need, 0);
        }
        tally_donor(policy, vm, &v, e, t);
        wide_add(&t->awaited_kib, view_awaited(policy, vm, &v));
        rc = check_counterpart(e, n, shrinking, growing, msg, msg_len);
        if (rc < 0)
            return rc;
        if (sched_reason_is_skip(e->reason))
            t->skipped++;
        wide_add(&t->need, need);
    }
    return 0;
}

/* Step 5's host arithmetic, from the snapshot alone. */
struct host_books {
    uint64_t available;
    uint64_t inflight;        /* grows in flight, every VM */
    uint64_t inflight_shrink; /* shrinks in flight of balloons not stuck */
    uint64_t untouched;       /* granted, not yet touched */
    uint64_t budget;          /* available - inflight - untouched */
    uint64_t deficit;         /* host_min_unused - budget when positive */
    uint64_t restore;         /* deficit - shrinks in flight: what donors owe the host first */
    bool pressure;
};

static void
books_make(const struct policy *policy,
           const struct sched_host *host,
           const struct sched_vm *vms,
           size_t n,
           struct host_books *b)
{
    struct wide inflight = {0}, shrinking = {0}, untouched = {0}, owed = {0};

    for (size_t i = 0; i < n; i++) {
        uint64_t actual = clamp_kib(vms[i].actual_kib);
        uint64_t target = clamp_kib(vms[i].target_kib);
        uint64_t committed = target ? target : actual;
        wide_add(&inflight, util_sub_sat(committed, actual));
        if (!vms[i].stuck)
            wide_add(&shrinking, util_sub_sat(actual, committed));
        wide_add(&untouched, clamp_kib(vms[i].untouched_kib));
    }
    b->available = clamp_kib(host->available_kib);
    b->inflight = wide_saturate(&inflight);
    b->inflight_shrink = wide_saturate(&shrinking);
    b->untouched = wide_saturate(&untouched);
    wide_add(&owed, b->inflight);
    wide_add(&owed, b->untouched);
    b->budget = util_sub_sat(b->available, wide_saturate(&owed));
    b->deficit = util_sub_sat(policy->host_min_unused_kib, b->budget);
    b->restore = util_sub_sat(b->deficit, b->inflight_shrink);
    b->pressure = b->deficit > 0;
}

/* The summary against the entries, and step 5's host arithmetic. */
static int
check_summary(const struct sched_plan *plan,
              const struct tally *t,
              const struct host_books *b,
              char *msg,
              size_t msg_len)
{
    const struct sched_summary *s = &plan->summary;

    if (s->grows != plan->n_grows || s->shrinks != plan->n_shrinks || s->skipped != t->skipped)
        return violation(msg, msg_len,
                         "summary counts %" PRIu32 " grows, %" PRIu32 " shrinks, %" PRIu32
                         " skipped; plan has %zu, %zu, %zu",
                         s->grows, s->shrinks, s->skipped, plan->n_grows, plan->n_shrinks,
                         t->skipped);
    if (!wide_eq(&t->need, s->need_kib))
        return violation(msg, msg_len,
                         "summary need %" PRIu64 " KiB != sum of needs %" PRIu64 " KiB",
                         s->need_kib, wide_saturate(&t->need));
    if (!wide_eq(&t->grow_vm, s->transferred_kib) || !wide_eq(&t->shrink_vm, s->transferred_kib))
        return violation(msg, msg_len,
                         "transferred %" PRIu64 " KiB, but grows took %" PRIu64
                         " KiB from VMs and shrinks gave %" PRIu64 " KiB to VMs",
                         s->transferred_kib, wide_saturate(&t->grow_vm),
                         wide_saturate(&t->shrink_vm));
    if (!wide_eq(&t->grow_host, s->host_granted_kib))
        return violation(msg, msg_len,
                         "host granted %" PRIu64 " KiB, but grows took %" PRIu64
                         " KiB from the host",
                         s->host_granted_kib, wide_saturate(&t->grow_host));
    if (!wide_eq(&t->shrink_host, s->reclaimed_kib))
        return violation(msg, msg_len,
                         "reclaimed %" PRIu64 " KiB, but shrinks gave %" PRIu64 " KiB to the host",
                         s->reclaimed_kib, wide_saturate(&t->shrink_host));
    struct wide granted = {s->transferred_kib, 0};
    wide_add(&granted, s->host_granted_kib);
    if (!wide_eq(&granted, s->granted_kib))
        return violation(msg, msg_len,
                         "granted %" PRIu64 " KiB != transferred %" PRIu64
                         " KiB + host granted %" PRIu64 " KiB",
                         s->granted_kib, s->transferred_kib, s->host_granted_kib);
    if (s->inflight_grow_kib != b->inflight || s->inflight_shrink_kib != b->inflight_shrink ||
        s->untouched_kib != b->untouched)
        return violation(msg, msg_len,
                         "summary in flight %" PRIu64 "/%" PRIu64
                         " KiB (grow/shrink), untouched %" PRIu64 " KiB; the VMs give %" PRIu64
                         "/%" PRIu64 ", %" PRIu64 " KiB",
                         s->inflight_grow_kib, s->inflight_shrink_kib, s->untouched_kib,
                         b->inflight, b->inflight_shrink, b->untouched);
    if (s->host_budget_kib != b->budget || s->host_deficit_kib != b->deficit)
        return violation(
            msg, msg_len,
            "host budget %" PRIu64 " KiB, deficit %" PRIu64 " KiB != available %" PRIu64
            " KiB - in flight %" PRIu64 " KiB - untouched %" PRIu64 " KiB",
            s->host_budget_kib, s->host_deficit_kib, b->available, b->inflight, b->untouched);
    if (s->host_pressure != b->pressure)
        return violation(msg, msg_len,
                         "host_pressure=%d but budget %" PRIu64 " KiB, deficit %" PRIu64 " KiB",
                         (int)s->host_pressure, b->budget, b->deficit);
    return 0;
}

/* Steps 4-6 round-wide: the host keeps its minimum, memory goes where the rules send it, and
 * nothing that could be given is held back from a VM in need. */
static int
check_flows(const struct policy *policy,
            const struct sched_plan *plan,
            const struct tally *t,
            const struct host_books *b,
            char *msg,
            size_t msg_len)
{
    const struct sched_summary *s = &plan->summary;
    uint64_t hmin = policy->host_min_unused_kib;
    bool pressure = b->pressure;

    if (pressure && s->host_granted_kib > 0)
        return violation(msg, msg_len,
                         "host grants %" PRIu64 " KiB under host pressure (budget %" PRIu64
                         " KiB < host_min_unused %" PRIu64 " KiB)",
                         s->host_granted_kib, b->budget, hmin);
    /* Under pressure the floor is restored before any VM is fed from the donors. */
    if (pressure && s->transferred_kib > 0 && s->reclaimed_kib < b->restore)
        return violation(msg, msg_len,
                         "fed VMs %" PRIu64 " KiB from donors but restored only %" PRIu64
                         " KiB of the host's %" PRIu64 " KiB deficit (less shrinks in flight)",
                         s->transferred_kib, s->reclaimed_kib, b->restore);

    /* The host never goes below host_min_unused through grants, counting what is in flight and
     * what was granted but not yet touched. */
    struct wide keeps = {b->inflight, 0};
    wide_add(&keeps, b->untouched);
    wide_add(&keeps, s->host_granted_kib);
    wide_add(&keeps, hmin);
    if (s->host_granted_kib > 0 && (keeps.hi > 0 || b->available < keeps.lo))
        return violation(msg, msg_len,
                         "host grants %" PRIu64 " KiB with available %" PRIu64
                         " KiB, in flight %" PRIu64 " KiB, untouched %" PRIu64
                         " KiB: leaves less than host_min_unused %" PRIu64 " KiB",
                         s->host_granted_kib, b->available, b->inflight, b->untouched, hmin);

    /* Reclaim only with reclaim_idle or under pressure, and then only what no VM needed. */
    if (s->reclaimed_kib > 0 && !policy->reclaim_idle && !pressure)
        return violation(msg, msg_len,
                         "reclaimed %" PRIu64
                         " KiB with reclaim_idle off and no host pressure (budget %" PRIu64 " KiB)",
                         s->reclaimed_kib, b->budget);
    /* Beyond what the floor needs, no donor's memory goes to the host while a VM is short. */
    uint64_t owed_host = pressure ? b->restore : 0;
    if (s->reclaimed_kib > owed_host && t->shortfall)
        return violation(msg, msg_len,
                         "reclaimed %" PRIu64 " KiB to the host (it was owed %" PRIu64
                         " KiB) while vm %" PRIu32 " got %" PRIu64 " KiB of its need %" PRIu64
                         " KiB",
                         s->reclaimed_kib, owed_host, t->short_vm, t->short_got, t->short_need);

    /* Every donor releases all it can when a VM is short. When the host is under pressure or
     * idle excess is reclaimed, donors keep at most what short VMs with grows in flight await. */
    if (t->held && t->shortfall)
        return violation(msg, msg_len,
                         "vm %" PRIu32 ": released %" PRIu64 " KiB of the %" PRIu64
                         " KiB it could (another VM is short)",
                         t->held_vm, t->held_release, t->held_full);
    if (t->held && (pressure || policy->reclaim_idle) &&
        wide_saturate(&t->held_kib) > wide_saturate(&t->awaited_kib))
        return violation(msg, msg_len,
                         "donors kept %" PRIu64 " KiB from the host (%s) but short VMs with grows "
                         "in flight await only %" PRIu64 " KiB; vm %" PRIu32 " released %" PRIu64
                         " KiB of %" PRIu64,
                         wide_saturate(&t->held_kib), pressure ? "host pressure" : "reclaim_idle",
                         wide_saturate(&t->awaited_kib), t->held_vm, t->held_release, t->held_full);

    /* Donors' memory goes to the needy before the host gives any: never a host grant while a
     * donor's release goes back to the host. */
    if (s->host_granted_kib > 0 && s->reclaimed_kib > 0)
        return violation(msg, msg_len,
                         "host granted %" PRIu64 " KiB while donors returned %" PRIu64
                         " KiB to the host",
                         s->host_granted_kib, s->reclaimed_kib);
    /* Largest donor first: no donor gives to a VM while one before it holds back. */
    if (t->first_partial_donor.set && t->last_giving_donor.set &&
        t->first_partial_donor.vm != t->last_giving_donor.vm &&
        ranked_before(&t->first_partial_donor, &t->last_giving_donor, true))
        return violation(msg, msg_len,
                         "donor order: vm %" PRIu32 " (outlook %" PRId64
                         " KiB) held back while vm %" PRIu32 " (outlook %" PRId64
                         " KiB) gave to VMs",
                         t->first_partial_donor.vm, t->first_partial_donor.outlook,
                         t->last_giving_donor.vm, t->last_giving_donor.outlook);
    /* Most urgent first: donors' memory goes to the most urgent, the host's to the rest. */
    if (t->first_host_fed.set && t->last_vm_fed.set && t->first_host_fed.vm != t->last_vm_fed.vm &&
        ranked_before(&t->first_host_fed, &t->last_vm_fed, false))
        return violation(msg, msg_len,
                         "urgency order: vm %" PRIu32 " (outlook %" PRId64
                         " KiB) was fed from the host while the less urgent vm %" PRIu32
                         " (outlook %" PRId64 " KiB) got donors' memory",
                         t->first_host_fed.vm, t->first_host_fed.outlook, t->last_vm_fed.vm,
                         t->last_vm_fed.outlook);

    /* The host gives all its budget above host_min_unused before a VM is left short. */
    uint64_t headroom = util_sub_sat(b->budget, hmin);
    if (t->shortfall && !pressure && s->host_granted_kib < headroom)
        return violation(msg, msg_len,
                         "vm %" PRIu32 " got %" PRIu64 " KiB of its need %" PRIu64
                         " KiB while the host granted %" PRIu64 " KiB of %" PRIu64 " KiB it could",
                         t->short_vm, t->short_got, t->short_need, s->host_granted_kib, headroom);

    /* Contested supply is shared by weight (water-filling): short VMs sit at one level
     * got/weight and no fully served VM is above it. Shares are whole KiB: each short VM may
     * round away less than one KiB, which can land on any other, so a VM may be off its exact
     * share by as many KiB as there are short VMs (+1); the cross-multiplied slack says that.
     * Products stay below 2^62: got and need < 2^51, weights <= 1000, n_short <= 16384. */
    if (t->have_short) {
        uint64_t slack = (t->n_short + 1) * (t->hi_weight + t->lo_weight);
        if (t->hi_got * t->lo_weight > t->lo_got * t->hi_weight + slack)
            return violation(msg, msg_len,
                             "weights: vm %" PRIu32 " got %" PRIu64 " KiB at weight %" PRIu64
                             " but vm %" PRIu32 " only %" PRIu64 " KiB at weight %" PRIu64
                             ", both short",
                             t->hi_vm, t->hi_got, t->hi_weight, t->lo_vm, t->lo_got, t->lo_weight);
        slack = (t->n_short + 1) * (t->full_weight + t->hi_weight);
        if (t->have_full && t->full_need * t->hi_weight > t->hi_got * t->full_weight + slack)
            return violation(msg, msg_len,
                             "weights: vm %" PRIu32 " got all %" PRIu64 " KiB at weight %" PRIu64
                             " but vm %" PRIu32 " only %" PRIu64 " KiB at weight %" PRIu64,
                             t->full_vm, t->full_need, t->full_weight, t->hi_vm, t->hi_got,
                             t->hi_weight);
    }
    return 0;
}

int
sched_check_plan(const struct policy *policy,
                 const struct sched_host *host,
                 const struct sched_vm *vms,
                 size_t n_vms,
                 const struct sched_plan *plan,
                 char *msg,
                 size_t msg_len)
{
    uint64_t seen[BITMAP_WORDS] = {0};
    uint64_t shrinking[BITMAP_WORDS] = {0};
    uint64_t growing[BITMAP_WORDS] = {0};
    struct tally t = {0};
    struct host_books books;
    int rc;

    if (msg && msg_len > 0)
        msg[0] = '\0';
    if (!policy || !host || !plan || (n_vms > 0 && !vms))
        return violation(msg, msg_len, "missing policy, host, VMs or plan");
    if (n_vms > SCHED_VMS_MAX)
        return violation(msg, msg_len, "%zu VMs exceed SCHED_VMS_MAX %u", n_vms, SCHED_VMS_MAX);

    rc = check_shape(plan, n_vms, seen, shrinking, growing, msg, msg_len);
    if (rc < 0)
        return rc;
    rc = check_entries(policy, host, vms, n_vms, plan, shrinking, growing, &t, msg, msg_len);
    if (rc < 0)
        return rc;

    /* Step 5's budget counts every VM, skipped ones included. */
    books_make(policy, host, vms, n_vms, &books);
    rc = check_summary(plan, &t, &books, msg, msg_len);
    if (rc < 0)
        return rc;
    return check_flows(policy, plan, &t, &books, msg, msg_len);
}
