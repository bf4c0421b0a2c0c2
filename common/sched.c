/*
 * sched.c - the MemoryScheduler round (DESIGN.md steps 2-7) as a pure function.
 *
 * Owns nothing but its work area. Invariants kept here (and checked apart in sched_check.c):
 * no target below a VM's floor or above its max, no release above the step, a donor keeps
 * vm_min_unused, host grants stop at host_min_unused after the grows still in flight, every KiB
 * granted is accounted to a donor or the host, a VM inside the band is never touched.
 *
 * Arithmetic: inputs are clamped to 2^50 KiB; needs and releases are bounded by policy values
 * (<= 2^30 KiB), so their sums over 16384 VMs stay below 2^44 and weight products below 2^54.
 * Sums of unbounded inputs (grows in flight) saturate.
 */
#include "sched.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What the round works out for one VM. */
struct vm_calc {
    uint64_t signal;
    uint64_t lookahead;
    int64_t outlook; /* signal - lookahead: what the VM will show when a grant arrives */
    uint64_t actual;
    uint64_t committed;
    uint64_t base;    /* grows start above it, shrinks below it */
    uint64_t need;    /* needy VMs: what it asks for this round */
    uint64_t release; /* donors: what it can give this round */
    uint64_t granted; /* needy VMs: what it was given */
    uint64_t awaited; /* short VMs whose grow is in flight: what they lack by their stats */
    uint64_t vm_kib;  /* exchanged with other VMs */
    uint64_t host_kib;
    uint64_t peer_kib; /* largest single exchange, for the counterpart */
    int32_t peer;
    uint32_t weight;
    enum sched_reason reason;
};

struct sched_work {
    size_t capacity;
    struct vm_calc *calc;
    struct sched_entry *entries;
    uint32_t *needy;
    uint32_t *donors;
    uint32_t *by_share;
};

static const char *const reason_names[SCHED_REASON_COUNT] = {
    [SCHED_REASON_IN_BAND] = "in_band",         [SCHED_REASON_GROW] = "grow",
    [SCHED_REASON_SHRINK] = "shrink",           [SCHED_REASON_NEED_UNMET] = "need_unmet",
    [SCHED_REASON_AT_MAX] = "at_max",           [SCHED_REASON_IN_FLIGHT] = "in_flight",
    [SCHED_REASON_AT_FLOOR] = "at_floor",       [SCHED_REASON_STUCK_DONOR] = "stuck_donor",
    [SCHED_REASON_UNMANAGED] = "unmanaged",     [SCHED_REASON_NO_BALLOON] = "no_balloon",
    [SCHED_REASON_NO_STATS] = "no_stats",       [SCHED_REASON_STALE_STATS] = "stale_stats",
    [SCHED_REASON_NOT_RUNNING] = "not_running", [SCHED_REASON_MIGRATING] = "migrating",
    [SCHED_REASON_BAD_SAMPLE] = "bad_sample",
};

const char *
sched_reason_name(enum sched_reason reason)
{
    if ((unsigned)reason < SCHED_REASON_COUNT)
        return reason_names[reason];
    return "invalid";
}

bool
sched_reason_is_skip(enum sched_reason reason)
{
    return reason >= SCHED_REASON_UNMANAGED && reason < SCHED_REASON_COUNT;
}

struct sched_work *
sched_work_new(size_t capacity)
{
    struct sched_work *w = util_xcalloc(1, sizeof(*w));

    w->capacity = capacity;
    w->calc = util_xcalloc(capacity, sizeof(*w->calc));
    w->entries = util_xcalloc(capacity, sizeof(*w->entries));
    w->needy = util_xcalloc(capacity, sizeof(*w->needy));
    w->donors = util_xcalloc(capacity, sizeof(*w->donors));
    w->by_share = util_xcalloc(capacity, sizeof(*w->by_share));
    return w;
}

void
sched_work_destroy(struct sched_work **work)
{
    if (!work || !*work)
        return;
    free((*work)->calc);
    free((*work)->entries);
    free((*work)->needy);
    free((*work)->donors);
    free((*work)->by_share);
    free(*work);
    *work = NULL;
}

static uint64_t
clamp_kib(uint64_t kib)
{
    return util_min_u64(kib, SCHED_KIB_MAX);
}

/* ---- ordering: an in-place heap sort, so a round never allocates ---- */

typedef bool (*before_fn)(const struct vm_calc *calc, uint32_t a, uint32_t b);

static void
sift_down(uint32_t *idx, size_t root, size_t n, before_fn before, const struct vm_calc *calc)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && before(calc, idx[child], idx[child + 1]))
            child++;
        if (!before(calc, idx[root], idx[child]))
            return;
        uint32_t tmp = idx[root];
        idx[root] = idx[child];
        idx[child] = tmp;
        root = child;
    }
}

/* Sort idx so that before(a, b) holds for every earlier a and later b. before must be a strict
 * total order (ties broken by index), which makes the result independent of the algorithm. */
static void
sort_indices(uint32_t *idx, size_t n, before_fn before, const struct vm_calc *calc)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(idx, i, n, before, calc);
    for (size_t end = n; end-- > 1;) {
        uint32_t tmp = idx[0];
        idx[0] = idx[end];
        idx[end] = tmp;
        sift_down(idx, 0, end, before, calc);
    }
}

/* Most urgent first: lowest outlook. */
static bool
more_urgent(const struct vm_calc *calc, uint32_t a, uint32_t b)
{
    if (calc[a].outlook != calc[b].outlook)
        return calc[a].outlook < calc[b].outlook;
    return a < b;
}

/* Largest excess first: highest outlook. */
static bool
more_excess(const struct vm_calc *calc, uint32_t a, uint32_t b)
{
    if (calc[a].outlook != calc[b].outlook)
        return calc[a].outlook > calc[b].outlook;
    return a < b;
}

/* Smallest need per unit of weight first: they are satisfied before the share runs out. */
static bool
smaller_share(const struct vm_calc *calc, uint32_t a, uint32_t b)
{
    uint64_t lhs = calc[a].need * calc[b].weight;
    uint64_t rhs = calc[b].need * calc[a].weight;
    if (lhs != rhs)
        return lhs < rhs;
    return a < b;
}

/* ---- steps 2 and 3: eligibility, need and excess ---- */

static enum sched_reason
eligibility(const struct policy *p, const struct sched_vm *vm, uint64_t signal)
{
    bool has_signal = p->demand_signal == POLICY_DEMAND_USABLE ? vm->has_usable : vm->has_unused;

    if (!vm->managed)
        return SCHED_REASON_UNMANAGED;
    if (!vm->has_balloon)
        return SCHED_REASON_NO_BALLOON;
    if (vm->state == SCHED_VM_MIGRATING)
        return SCHED_REASON_MIGRATING;
    if (vm->state != SCHED_VM_RUNNING)
        return SCHED_REASON_NOT_RUNNING;
    if (!has_signal)
        return SCHED_REASON_NO_STATS;
    if (vm->stats_age_ms > (uint64_t)p->stale_stats_s * 1000)
        return SCHED_REASON_STALE_STATS;
    /* Never act on a sample that cannot be true. */
    uint64_t actual = clamp_kib(vm->actual_kib);
    if (actual == 0 || actual > clamp_kib(vm->max_kib))
        return SCHED_REASON_BAD_SAMPLE;
    /* Stats taken before the balloon's last move: wait for the next sample, still managed. */
    if (signal > actual)
        return SCHED_REASON_IN_FLIGHT;
    return SCHED_REASON_IN_BAND;
}

/* What the guest will use before a grant set now arrives. */
static uint64_t
lookahead_of(const struct policy *p, const struct sched_host *host, const struct sched_vm *vm)
{
    if (!p->predictive)
        return 0;
    uint64_t rate = util_min_u64(vm->rate_kib_s, SCHED_RATE_MAX_KIB_S);
    uint64_t horizon = util_min_u64(host->horizon_ms, SCHED_HORIZON_MAX_MS);
    return rate * horizon / 1000u; /* < 2^40: no overflow */
}

static void
assess_needy(const struct policy *p, const struct sched_vm *vm, struct vm_calc *c)
{
    uint64_t max = clamp_kib(vm->max_kib);
    if (vm->cap_kib)
        max = util_min_u64(max, clamp_kib(vm->cap_kib));

    uint64_t want = util_min_u64(p->vm_grow_target_unused_kib + c->lookahead - c->signal,
                                 util_sub_sat(max, c->actual));
    if (want == 0) {
        c->reason = SCHED_REASON_AT_MAX;
        return;
    }
    /* Memory already on its way to this VM is counted before asking for more. */
    c->need = util_sub_sat(want, util_sub_sat(c->committed, c->actual));
    c->base = c->committed > c->actual ? c->committed : c->actual;
    c->reason = c->need ? SCHED_REASON_NEED_UNMET : SCHED_REASON_IN_FLIGHT;
    if (!c->need && !vm->stuck) /* a stuck grow may never land: nothing is kept for it */
        c->awaited = want;
}

static void
assess_donor(const struct policy *p, const struct sched_vm *vm, struct vm_calc *c)
{
    if (vm->stuck) {
        c->reason = SCHED_REASON_STUCK_DONOR;
        return;
    }
    uint64_t floor = vm->min_kib ? clamp_kib(vm->min_kib) : p->vm_floor_kib;
    uint64_t release =
        util_min_u64(p->max_release_step_kib, (uint64_t)c->outlook - p->vm_min_unused_kib);
    release = util_min_u64(release, util_sub_sat(c->actual, floor));
    if (release == 0) {
        c->reason = SCHED_REASON_AT_FLOOR;
        return;
    }
    /* What an earlier shrink still in flight already promised away is not given twice. */
    uint64_t new_target = c->actual - release;
    c->base = util_min_u64(c->committed, c->actual);
    c->release = util_sub_sat(c->base, new_target);
    c->reason = c->release ? SCHED_REASON_IN_BAND : SCHED_REASON_IN_FLIGHT;
}

/* Fill calc[] for every VM; collect the needy and the donors. Sums what is in flight and
 * untouched into the summary. */
static void
assess(const struct policy *p,
       const struct sched_host *host,
       const struct sched_vm *vms,
       size_t n,
       struct sched_work *w,
       struct sched_summary *s,
       size_t *n_needy,
       size_t *n_donors)
{
    *n_needy = *n_donors = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sched_vm *vm = &vms[i];
        struct vm_calc *c = &w->calc[i];
        uint64_t raw = p->demand_signal == POLICY_DEMAND_USABLE ? vm->usable_kib : vm->unused_kib;

        memset(c, 0, sizeof(*c));
        c->signal = clamp_kib(raw);
        c->actual = clamp_kib(vm->actual_kib);
        c->committed = vm->target_kib ? clamp_kib(vm->target_kib) : c->actual;
        c->weight = vm->weight ? util_min_u64(vm->weight, SCHED_WEIGHT_MAX) : SCHED_WEIGHT_DEFAULT;
        c->peer = SCHED_NOBODY;
        c->lookahead = lookahead_of(p, host, vm);
        c->outlook = (int64_t)c->signal - (int64_t)c->lookahead;
        s->inflight_grow_kib =
            util_add_sat(s->inflight_grow_kib, util_sub_sat(c->committed, c->actual));
        if (!vm->stuck)
            s->inflight_shrink_kib =
                util_add_sat(s->inflight_shrink_kib, util_sub_sat(c->actual, c->committed));
        s->untouched_kib = util_add_sat(s->untouched_kib, clamp_kib(vm->untouched_kib));

        c->reason = eligibility(p, vm, c->signal);
        if (c->reason != SCHED_REASON_IN_BAND)
            continue;
        if (c->outlook < (int64_t)p->vm_min_unused_kib)
            assess_needy(p, vm, c);
        else if (c->outlook > (int64_t)p->vm_excess_unused_kib)
            assess_donor(p, vm, c);
        if (c->need)
            w->needy[(*n_needy)++] = (uint32_t)i;
        if (c->release)
            w->donors[(*n_donors)++] = (uint32_t)i;
    }
}

/* ---- steps 4 to 6: who gets what, from whom ---- */

/* Share supply among the needy by weight: nobody gets more than it needs, what one does not
 * need is split among the rest in proportion to their weights. */
static void
share_by_weight(struct sched_work *w, size_t n_needy, uint64_t supply)
{
    uint64_t weight_left = 0;

    memcpy(w->by_share, w->needy, n_needy * sizeof(*w->by_share));
    sort_indices(w->by_share, n_needy, smaller_share, w->calc);
    for (size_t k = 0; k < n_needy; k++)
        weight_left += w->calc[w->by_share[k]].weight;
    for (size_t k = 0; k < n_needy; k++) {
        struct vm_calc *c = &w->calc[w->by_share[k]];
        uint64_t share = supply * c->weight / weight_left;
        c->granted = util_min_u64(c->need, share);
        supply -= c->granted;
        weight_left -= c->weight;
    }
}

static void
note_peer(struct vm_calc *c, int32_t peer, uint64_t kib)
{
    if (kib > c->peer_kib) {
        c->peer_kib = kib;
        c->peer = peer;
    }
}

/* Feed the needy, most urgent first, from the donors, largest first, then from the host. */
static void
pair_up(struct sched_work *w, size_t n_needy, size_t n_donors)
{
    size_t d = 0;

    for (size_t k = 0; k < n_needy; k++) {
        uint32_t r = w->needy[k];
        struct vm_calc *rc = &w->calc[r];
        uint64_t want = rc->granted;

        while (want > 0 && d < n_donors) {
            uint32_t g = w->donors[d];
            struct vm_calc *gc = &w->calc[g];
            uint64_t take = util_min_u64(want, gc->release - gc->vm_kib - gc->host_kib);

            gc->vm_kib += take;
            rc->vm_kib += take;
            want -= take;
            note_peer(gc, (int32_t)r, take);
            note_peer(rc, (int32_t)g, take);
            if (gc->vm_kib + gc->host_kib == gc->release)
                d++;
        }
        rc->host_kib = want;
        note_peer(rc, SCHED_HOST, want);
    }
}

/* Under host pressure the donors, largest first, restore the host's floor before anyone else
 * is fed. Returns what they restore. */
static uint64_t
restore_floor(struct sched_work *w, size_t n_donors, uint64_t restore)
{
    uint64_t given = 0;

    for (size_t k = 0; k < n_donors && given < restore; k++) {
        struct vm_calc *c = &w->calc[w->donors[k]];
        c->host_kib = util_min_u64(c->release, restore - given);
        given += c->host_kib;
        note_peer(c, SCHED_HOST, c->host_kib);
    }
    return given;
}

/* What donors did not give to VMs (or to the floor) goes to the host when reclaiming, but for
 * what short VMs still lack while their grows are in flight: a grow that lands short asks again
 * next round, and memory a donor kept is there for it, while memory handed to the host may not
 * show in its MemAvailable for a while (a balloon's pages in a transparent huge page are freed
 * when the kernel splits it). The largest donors keep it, like they give first. */
static void
reclaim(struct sched_work *w, size_t n_donors, uint64_t hold)
{
    for (size_t k = 0; k < n_donors; k++) {
        struct vm_calc *c = &w->calc[w->donors[k]];
        uint64_t left = c->release - c->vm_kib - c->host_kib;
        uint64_t keep = util_min_u64(left, hold);

        hold -= keep;
        c->host_kib += left - keep;
        note_peer(c, SCHED_HOST, c->host_kib);
    }
}

/* ---- step 7: the plan ---- */

/* A VM that was given or gave anything changes its target. */
static void
decide(struct vm_calc *c)
{
    if (c->vm_kib + c->host_kib == 0)
        return;
    if (c->need)
        c->reason = SCHED_REASON_GROW;
    else if (c->release)
        c->reason = SCHED_REASON_SHRINK;
}

static void
fill_entry(const struct vm_calc *c, uint32_t vm, struct sched_entry *e)
{
    uint64_t moved = c->vm_kib + c->host_kib;

    e->vm = vm;
    e->reason = c->reason;
    e->counterpart = c->peer;
    e->old_target_kib = c->committed;
    e->new_target_kib = c->committed;
    e->need_kib = c->need;
    e->lookahead_kib = c->lookahead;
    e->vm_kib = c->vm_kib;
    e->host_kib = c->host_kib;
    if (c->reason == SCHED_REASON_GROW)
        e->new_target_kib = c->base + moved;
    else if (c->reason == SCHED_REASON_SHRINK)
        e->new_target_kib = c->base - moved;
}

static void
add_to_summary(struct sched_summary *s, const struct vm_calc *c)
{
    s->need_kib += c->need;
    s->skipped += sched_reason_is_skip(c->reason);
    if (c->reason == SCHED_REASON_GROW) {
        s->grows++;
        s->granted_kib += c->vm_kib + c->host_kib;
        s->transferred_kib += c->vm_kib;
        s->host_granted_kib += c->host_kib;
    } else if (c->reason == SCHED_REASON_SHRINK) {
        s->shrinks++;
        s->reclaimed_kib += c->host_kib;
    }
}

/* Entries in apply order: shrinks (by VM), grows (most urgent first), then the rest (by VM). */
static void
emit(struct sched_work *w, size_t n, size_t n_needy, struct sched_plan *plan)
{
    size_t out = 0;

    for (size_t i = 0; i < n; i++) {
        decide(&w->calc[i]);
        add_to_summary(&plan->summary, &w->calc[i]);
        if (w->calc[i].reason == SCHED_REASON_SHRINK)
            fill_entry(&w->calc[i], (uint32_t)i, &w->entries[out++]);
    }
    for (size_t k = 0; k < n_needy; k++) {
        uint32_t i = w->needy[k];
        if (w->calc[i].reason == SCHED_REASON_GROW)
            fill_entry(&w->calc[i], i, &w->entries[out++]);
    }
    for (size_t i = 0; i < n; i++) {
        enum sched_reason r = w->calc[i].reason;
        if (r != SCHED_REASON_SHRINK && r != SCHED_REASON_GROW)
            fill_entry(&w->calc[i], (uint32_t)i, &w->entries[out++]);
    }
    plan->entries = w->entries;
    plan->n_entries = n;
    plan->n_shrinks = plan->summary.shrinks;
    plan->n_grows = plan->summary.grows;
}

/* Step 4 and 5: the needy get their need, or a share by weight of what there is. */
static void
grant(struct sched_work *w, size_t n_needy, uint64_t need, uint64_t supply)
{
    if (need <= supply) {
        for (size_t k = 0; k < n_needy; k++)
            w->calc[w->needy[k]].granted = w->calc[w->needy[k]].need;
    } else {
        share_by_weight(w, n_needy, supply);
    }
}

int
sched_plan(const struct policy *policy,
           const struct sched_host *host,
           const struct sched_vm *vms,
           size_t n_vms,
           struct sched_work *work,
           struct sched_plan *plan)
{
    size_t n_needy, n_donors;
    uint64_t need = 0, donor_supply = 0, host_supply = 0, awaited = 0;

    if (n_vms > work->capacity || n_vms > SCHED_VMS_MAX)
        return -E2BIG;
    memset(plan, 0, sizeof(*plan));
    struct sched_summary *s = &plan->summary;

    assess(policy, host, vms, n_vms, work, s, &n_needy, &n_donors);
    uint64_t owed = util_add_sat(s->inflight_grow_kib, s->untouched_kib);
    s->host_budget_kib = util_sub_sat(clamp_kib(host->available_kib), owed);
    s->host_deficit_kib = util_sub_sat(policy->host_min_unused_kib, s->host_budget_kib);
    s->host_pressure = s->host_deficit_kib > 0;

    for (size_t k = 0; k < n_needy; k++)
        need += work->calc[work->needy[k]].need;
    for (size_t k = 0; k < n_donors; k++)
        donor_supply += work->calc[work->donors[k]].release;
    for (size_t i = 0; i < n_vms; i++)
        awaited += work->calc[i].awaited; /* each < 2^51: no overflow over 16384 VMs */

    sort_indices(work->needy, n_needy, more_urgent, work->calc);
    sort_indices(work->donors, n_donors, more_excess, work->calc);
    if (s->host_pressure) {
        /* Shrinks already on their way back restore that much; not asked for twice. */
        uint64_t restore = util_sub_sat(s->host_deficit_kib, s->inflight_shrink_kib);
        donor_supply -= restore_floor(work, n_donors, restore);
    } else {
        host_supply = util_sub_sat(s->host_budget_kib, policy->host_min_unused_kib);
    }
    grant(work, n_needy, need, donor_supply + host_supply); /* < 2^51: no overflow */
    pair_up(work, n_needy, n_donors);
    if (policy->reclaim_idle || s->host_pressure)
        reclaim(work, n_donors, awaited);
    emit(work, n_vms, n_needy, plan);
    return 0;
}
