/*
 * cadence.c - when the agent reports (see cadence.h). Owns two buffers of VM marks: the last
 * report sent's and the round being looked at; a report sent swaps them.
 */
#include "cadence.h"

#include <stdlib.h>

#include "util.h"

struct cadence {
    bool sent; /* last holds a report */
    uint64_t due_ms;
    struct cadence_round last, now;
    struct cadence_vm *last_vms, *now_vms;
    size_t capacity; /* of both buffers */
};

bool
cadence_moved(uint64_t was_kib, uint64_t now_kib)
{
    uint64_t delta = was_kib > now_kib ? was_kib - now_kib : now_kib - was_kib;
    uint64_t share = was_kib / CADENCE_MOVE_FRACTION;

    return delta > (share > CADENCE_MOVE_MIN_KIB ? share : CADENCE_MOVE_MIN_KIB);
}

static bool
same_vms(const struct cadence_round *last, const struct cadence_round *now)
{
    if (last->n_vms != now->n_vms)
        return false;
    for (size_t i = 0; i < now->n_vms; i++) {
        if (last->vms[i].status_hash != now->vms[i].status_hash)
            return false;
    }
    return true;
}

/* Only called on the same VMs in the same order (same_vms). */
static bool
numbers_moved(const struct cadence_round *last, const struct cadence_round *now)
{
    if (cadence_moved(last->available_kib, now->available_kib))
        return true;
    for (size_t i = 0; i < now->n_vms; i++) {
        const struct cadence_vm *was = &last->vms[i], *is = &now->vms[i];
        if (cadence_moved(was->actual_kib, is->actual_kib) ||
            cadence_moved(was->unused_kib, is->unused_kib) ||
            cadence_moved(was->usable_kib, is->usable_kib))
            return true;
    }
    return false;
}

enum cadence_reason
cadence_check(const struct cadence_round *last,
              const struct cadence_round *now,
              uint64_t now_ms,
              uint64_t due_ms)
{
    if (!last)
        return CADENCE_FIRST;
    if (now->n_decisions)
        return CADENCE_DECISIONS;
    if (now->hellos != last->hellos)
        return CADENCE_HELLO;
    if (now->policy_hash != last->policy_hash)
        return CADENCE_POLICY;
    if (!same_vms(last, now))
        return CADENCE_VMS;
    if (numbers_moved(last, now))
        return CADENCE_MOVED;
    if (now_ms >= due_ms)
        return CADENCE_PERIOD;
    return CADENCE_QUIET;
}

uint64_t
cadence_next_due_ms(uint64_t due_ms, uint64_t now_ms, uint64_t period_ms)
{
    if (now_ms < due_ms)
        return now_ms + period_ms;
    uint64_t next = due_ms + period_ms;
    return next < now_ms ? now_ms : next;
}

const char *
cadence_reason_name(enum cadence_reason reason)
{
    switch (reason) {
    case CADENCE_QUIET:
        return "-";
    case CADENCE_FIRST:
        return "first";
    case CADENCE_DECISIONS:
        return "decisions";
    case CADENCE_HELLO:
        return "hello";
    case CADENCE_POLICY:
        return "policy";
    case CADENCE_VMS:
        return "vms";
    case CADENCE_MOVED:
        return "moved";
    case CADENCE_PERIOD:
        return "period";
    }
    return "?";
}

struct cadence *
cadence_new(void)
{
    return util_xcalloc(1, sizeof(struct cadence));
}

void
cadence_destroy(struct cadence **cadence)
{
    if (!cadence || !*cadence)
        return;
    free((*cadence)->last_vms);
    free((*cadence)->now_vms);
    free(*cadence);
    *cadence = NULL;
}

/* What a report shows of VM i that is not a number that drifts. */
static uint64_t
status_hash(const struct round_view *view, size_t i)
{
    const struct hv_vm *vm = &view->vms[i];
    const struct sched_entry *e = view->entry_of ? view->entry_of[i] : NULL;
    uint64_t h = util_hash_str(vm->uuid);

    h = util_hash_mix(h, (uint64_t)vm->state);
    h = util_hash_mix(h, (uint64_t)vm->managed << 2 | (uint64_t)vm->has_unused << 1 |
                             (uint64_t)vm->has_usable);
    h = util_hash_mix(h, view->snapshot[i].stuck);
    h = util_hash_mix(h, e && sched_reason_is_skip(e->reason) ? (uint64_t)e->reason : 0);
    h = util_hash_mix(h, vm->min_kib);
    h = util_hash_mix(h, vm->cap_kib);
    return util_hash_mix(h, vm->weight);
}

static uint64_t
policy_hash(const struct policy *p)
{
    uint64_t h = UTIL_HASH_SEED;

    if (!p)
        return 0;
    h = util_hash_mix(h, p->vm_min_unused_kib);
    h = util_hash_mix(h, p->vm_grow_target_unused_kib);
    h = util_hash_mix(h, p->vm_excess_unused_kib);
    h = util_hash_mix(h, p->max_release_step_kib);
    h = util_hash_mix(h, p->host_min_unused_kib);
    h = util_hash_mix(h, p->vm_floor_kib);
    h = util_hash_mix(h, (uint64_t)p->interval_ms << 32 | p->stale_stats_s);
    return util_hash_mix(h, (uint64_t)p->demand_signal << 2 | (uint64_t)p->reclaim_idle << 1 |
                                (uint64_t)p->predictive);
}

static void
grow(struct cadence *c, size_t n)
{
    if (n <= c->capacity)
        return;
    c->capacity = n;
    c->last_vms = util_xrealloc(c->last_vms, n, sizeof(*c->last_vms));
    c->now_vms = util_xrealloc(c->now_vms, n, sizeof(*c->now_vms));
    c->last.vms = c->last_vms; /* moved with the buffer */
}

enum cadence_reason
cadence_due(struct cadence *c, const struct round_view *view, uint64_t hellos, uint64_t now_ms)
{
    grow(c, view->n_vms ? view->n_vms : 1);
    for (size_t i = 0; i < view->n_vms; i++) {
        c->now_vms[i] = (struct cadence_vm){
            .status_hash = status_hash(view, i),
            .actual_kib = view->vms[i].actual_kib,
            .unused_kib = view->vms[i].has_unused ? view->vms[i].unused_kib : 0,
            .usable_kib = view->vms[i].has_usable ? view->vms[i].usable_kib : 0,
        };
    }
    c->now = (struct cadence_round){
        .available_kib = view->host->available_kib,
        .n_decisions = view->plan ? view->plan->n_shrinks + view->plan->n_grows : 0,
        .hellos = hellos,
        .policy_hash = policy_hash(view->policy),
        .vms = c->now_vms,
        .n_vms = view->n_vms,
    };
    return cadence_check(c->sent ? &c->last : NULL, &c->now, now_ms, c->due_ms);
}

void
cadence_sent(struct cadence *c, uint64_t now_ms, uint64_t period_ms)
{
    struct cadence_vm *swap = c->last_vms;

    c->last_vms = c->now_vms;
    c->now_vms = swap;
    c->last = c->now;
    c->last.vms = c->last_vms;
    /* due_ms is 0 only before the first report and after cadence_expire(): a fresh start. */
    c->due_ms = c->due_ms ? cadence_next_due_ms(c->due_ms, now_ms, period_ms) : now_ms + period_ms;
    c->sent = true;
}

void
cadence_expire(struct cadence *c)
{
    c->due_ms = 0;
}
