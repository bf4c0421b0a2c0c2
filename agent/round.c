/*
 * round.c - one agent round: sample -> track -> plan -> check -> apply -> log.
 *
 * Safety rules kept here, around the pure scheduler:
 *  - a plan is applied only if sched_check_plan() finds no broken invariant;
 *  - shrinks are applied before grows, and memory a failed shrink did not free is cut from the
 *    grows it was meant to fund (never count on memory that has not arrived);
 *  - a hypervisor outage ends the round early; the targets set so far stand (they are absolute).
 * Logging: one line per decision, per VM state change (appeared, skipped and why, considered
 * again, stuck, recovered, gone) and per outage and recovery.
 */
#include "round.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sched_check.h"
#include "tracker.h"
#include "util.h"

#define LOG_MODULE      "round"
#define FIRST_CAPACITY  64
#define STUCK_MIN_MS    10000 /* real balloons move within 1-3 s (FACTS.md) */
#define STUCK_ROUNDS    5
#define RETRY_MIN_MS    60000
#define RETRY_ROUNDS    30
#define OUTAGE_MAX_MS   60000
#define CHECK_MSG_LEN   512
#define KIB_TO_MIB(kib) ((double)(kib) / 1024.0)

struct round {
    struct hv *hv;
    bool dry_run;
    struct tracker *tracker;
    struct sched_work *work;
    size_t capacity;
    struct hv_host host;
    struct sched_host sched_host;
    struct policy policy; /* the last plan's */
    bool has_policy;      /* a plan was made */
    struct hv_vm *vms;
    struct sched_vm *snapshot;
    struct tracker_vm **tracked;
    uint64_t *sample_seen_ms;
    bool *apply_failed;
    uint64_t now_ms;
    const struct sched_entry **entry_of;
    size_t n_vms;
    struct sched_plan plan;
    bool applied;
    bool watchful;           /* see round_watchful() */
    unsigned stats_period_s; /* applied to the hypervisor; 0 = not yet (or lost with it) */
    uint64_t period_hash;    /* dry run: of the periods last reported instead of set */
    struct log_limit outage;
    struct round_counters counters;
};

static void
free_buffers(struct round *r)
{
    free(r->vms);
    free(r->snapshot);
    free(r->tracked);
    free(r->sample_seen_ms);
    free(r->apply_failed);
    free(r->entry_of);
    sched_work_destroy(&r->work);
}

static void
make_buffers(struct round *r, size_t capacity)
{
    free_buffers(r);
    r->capacity = capacity;
    r->vms = util_xcalloc(capacity, sizeof(*r->vms));
    r->snapshot = util_xcalloc(capacity, sizeof(*r->snapshot));
    r->tracked = util_xcalloc(capacity, sizeof(*r->tracked));
    r->sample_seen_ms = util_xcalloc(capacity, sizeof(*r->sample_seen_ms));
    r->apply_failed = util_xcalloc(capacity, sizeof(*r->apply_failed));
    r->entry_of = util_xcalloc(capacity, sizeof(*r->entry_of));
    r->work = sched_work_new(capacity);
}

struct round *
round_new(struct hv *hv, bool dry_run)
{
    struct round *r = util_xcalloc(1, sizeof(*r));

    r->hv = hv;
    r->dry_run = dry_run;
    r->tracker = tracker_new(STUCK_MIN_MS, RETRY_MIN_MS);
    make_buffers(r, FIRST_CAPACITY);
    return r;
}

bool
round_watchful(const struct round *r)
{
    return r->watchful;
}

void
round_set_dry_run(struct round *r, bool dry_run)
{
    r->dry_run = dry_run;
    r->period_hash = 0; /* a dry run says anew what it does not set */
    if (dry_run && r->stats_period_s) {
        /* The port would go on setting the period on VMs that start later: stop that, and set
         * it again when the dry run ends. */
        int rc = r->hv->ops->set_stats_period(r->hv->ctx, 0);
        if (rc < 0)
            log_warn(LOG_MODULE, "event=stats_period_failed period_s=0 error=%s", strerror(-rc));
        r->stats_period_s = 0;
    }
}

void
round_destroy(struct round **round)
{
    if (!round || !*round)
        return;
    free_buffers(*round);
    tracker_destroy(&(*round)->tracker);
    free(*round);
    *round = NULL;
}

/* ---- sampling ---- */

static int
sample(struct round *r, uint64_t now_ms)
{
    size_t n = 0;
    int rc = r->hv->ops->sample(r->hv->ctx, &r->host, r->vms, r->capacity, &n);

    if (rc == -ENOSPC && n <= SCHED_VMS_MAX) {
        make_buffers(r, n + n / 4);
        rc = r->hv->ops->sample(r->hv->ctx, &r->host, r->vms, r->capacity, &n);
    }
    if (rc == -ENOSPC) {
        log_err(LOG_MODULE, "event=too_many_vms vms=%zu max=%u", n, SCHED_VMS_MAX);
        return rc;
    }
    if (rc < 0) {
        r->stats_period_s = 0; /* a restarted hypervisor forgets it */
        if (log_limit_failure(&r->outage, now_ms, OUTAGE_MAX_MS))
            log_warn(LOG_MODULE, "event=hypervisor_unavailable error=%s failures=%" PRIu64,
                     strerror(-rc), r->outage.failures);
        return rc;
    }
    uint64_t failures = log_limit_success(&r->outage);
    if (failures)
        log_info(LOG_MODULE, "event=hypervisor_recovered failed_rounds=%" PRIu64, failures);
    r->n_vms = n;
    return 0;
}

/* A dry run writes nothing to the hypervisor, the stats period included: it reads the period
 * each VM has and says where it differs from what a real run would set, once per change. */
static void
report_stats_period(struct round *r, unsigned want_s)
{
    uint64_t hash = util_hash_mix(UTIL_HASH_SEED, want_s);

    for (size_t i = 0; i < r->n_vms; i++) {
        if (r->vms[i].has_balloon)
            hash = util_hash_mix(util_hash_mix(hash, util_hash_str(r->vms[i].uuid)),
                                 r->vms[i].stats_period_s);
    }
    if (hash == r->period_hash)
        return;
    r->period_hash = hash;
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct hv_vm *vm = &r->vms[i];
        if (vm->has_balloon && vm->stats_period_s != want_s)
            log_info(LOG_MODULE,
                     "vm=%s name=%s event=stats_period period_s=%" PRIu32
                     " want_s=%u dry_run=yes action=none",
                     vm->uuid, vm->name, vm->stats_period_s, want_s);
    }
}

/* The guest stats period follows the round interval, 1 s at least. */
static void
keep_stats_period(struct round *r, const struct policy *policy)
{
    unsigned period_s = policy->interval_ms < 1000 ? 1 : (policy->interval_ms + 999) / 1000;

    if (r->dry_run) {
        report_stats_period(r, period_s);
        return;
    }
    if (period_s == r->stats_period_s)
        return;
    int rc = r->hv->ops->set_stats_period(r->hv->ctx, period_s);
    if (rc < 0) {
        log_warn(LOG_MODULE, "event=stats_period_failed period_s=%u error=%s", period_s,
                 strerror(-rc));
        return;
    }
    r->stats_period_s = period_s;
}

/* ---- tracking: the snapshot the scheduler sees, and state changes worth a line ---- */

static void
log_tracker_change(const struct hv_vm *vm, const struct tracker_vm *t, enum tracker_change change)
{
    switch (change) {
    case TRACKER_STUCK:
        log_warn(LOG_MODULE, "vm=%s name=%s event=stuck target_mib=%.1f actual_mib=%.1f", vm->uuid,
                 vm->name, KIB_TO_MIB(t->target_kib), KIB_TO_MIB(vm->actual_kib));
        break;
    case TRACKER_RECOVERED:
        log_info(LOG_MODULE, "vm=%s name=%s event=recovered actual_mib=%.1f", vm->uuid, vm->name,
                 KIB_TO_MIB(vm->actual_kib));
        break;
    case TRACKER_RETRY:
        log_info(LOG_MODULE, "vm=%s name=%s event=retry_stuck actual_mib=%.1f", vm->uuid, vm->name,
                 KIB_TO_MIB(vm->actual_kib));
        break;
    case TRACKER_REACHED:
        log_debug(LOG_MODULE, "vm=%s name=%s event=reached actual_mib=%.1f", vm->uuid, vm->name,
                  KIB_TO_MIB(vm->actual_kib));
        break;
    case TRACKER_NO_CHANGE:
        break;
    }
}

/* The demand signal the policy reads, and what the guest uses by it. */
static bool
signal_of(const struct policy *policy, const struct hv_vm *vm, uint64_t *signal_kib)
{
    bool usable = policy->demand_signal == POLICY_DEMAND_USABLE;

    *signal_kib = usable ? vm->usable_kib : vm->unused_kib;
    return usable ? vm->has_usable : vm->has_unused;
}

/* The stats' age by the wall clock the backend stamps them with, but never less than the
 * monotonic time since the agent first saw that sample: a wall clock stepped back must not
 * make frozen stats look fresh. */
static uint64_t
stats_age_ms(const struct hv_vm *vm, const struct tracker_vm *t, uint64_t now_ms)
{
    uint64_t seen_ms =
        t->sample_seen_ms && now_ms > t->sample_seen_ms ? now_ms - t->sample_seen_ms : 0;
    return util_max_u64(vm->stats_age_ms, seen_ms);
}

static void
to_sched_vm(const struct hv_vm *vm, const struct tracker_vm *t, uint64_t now_ms, struct sched_vm *s)
{
    memset(s, 0, sizeof(*s));
    s->max_kib = vm->max_kib;
    s->actual_kib = vm->actual_kib;
    s->target_kib = t->target_kib;
    s->unused_kib = vm->unused_kib;
    s->usable_kib = vm->usable_kib;
    s->min_kib = vm->min_kib;
    s->cap_kib = vm->cap_kib;
    s->stats_age_ms = stats_age_ms(vm, t, now_ms);
    s->untouched_kib = t->untouched_kib;
    s->rate_kib_s = t->rate_kib_s;
    s->weight = vm->weight;
    s->state = vm->state;
    s->managed = vm->managed;
    s->has_balloon = vm->has_balloon;
    s->has_unused = vm->has_unused;
    s->has_usable = vm->has_usable;
    s->stuck = t->stuck;
}

static void
track(struct round *r, const struct policy *policy, uint64_t now_ms)
{
    tracker_begin_round(r->tracker, r->n_vms);
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct hv_vm *vm = &r->vms[i];
        struct tracker_vm *t;
        uint64_t signal;
        enum tracker_change change =
            tracker_observe(r->tracker, vm->uuid, vm->actual_kib, now_ms, &t);

        log_tracker_change(vm, t, change);
        if (vm->has_rss)
            tracker_note_memory(t, vm->actual_kib, vm->rss_kib, now_ms);
        if (signal_of(policy, vm, &signal)) {
            uint64_t total = vm->guest_total_kib ? vm->guest_total_kib : vm->actual_kib;
            tracker_note_stats(t, vm->stats_stamp_ms, util_sub_sat(total, signal), now_ms);
        }
        r->tracked[i] = t;
        r->sample_seen_ms[i] = t->sample_seen_ms;
        to_sched_vm(vm, t, now_ms, &r->snapshot[i]);
    }
}

/* Whether the sample holds what the last plan did not see: a new guest stats sample, or a VM
 * that appeared or went away. */
static bool
has_news(const struct round *r)
{
    if (r->n_vms != tracker_count(r->tracker))
        return true;
    for (size_t i = 0; i < r->n_vms; i++) {
        if (tracker_has_new_sample(r->tracker, r->vms[i].uuid, r->vms[i].stats_stamp_ms))
            return true;
    }
    return false;
}

/* The look-ahead of a predictive round: the next sample comes a stats period after this one,
 * and a grow decided on it arrives after the measured delay (a guess before the first). */
static uint64_t
horizon_ms(const struct round *r, const struct policy *policy)
{
    uint64_t period_ms = (uint64_t)(r->stats_period_s ? r->stats_period_s : 1) * 1000u;
    return period_ms + tracker_grow_delay_ms(r->tracker, policy->interval_ms + 1000u);
}

/* One line when a VM appears, is left alone for a new reason, or is considered again. */
static void
log_state_change(const struct hv_vm *vm, struct tracker_vm *t, enum sched_reason reason)
{
    bool skip = sched_reason_is_skip(reason);

    if (!t->has_reason) {
        log_info(LOG_MODULE,
                 "vm=%s name=%s event=appeared managed=%s%s%s max_mib=%.1f actual_mib=%.1f",
                 vm->uuid, vm->name, skip ? "no" : "yes", skip ? " why=" : "",
                 skip ? sched_reason_name(reason) : "", KIB_TO_MIB(vm->max_kib),
                 KIB_TO_MIB(vm->actual_kib));
    } else if (skip && t->last_reason != reason) {
        log_info(LOG_MODULE, "vm=%s name=%s event=unmanaged why=%s", vm->uuid, vm->name,
                 sched_reason_name(reason));
    } else if (!skip && sched_reason_is_skip(t->last_reason)) {
        log_info(LOG_MODULE, "vm=%s name=%s event=managed was=%s", vm->uuid, vm->name,
                 sched_reason_name(t->last_reason));
    }
    t->has_reason = true;
    t->last_reason = reason;
}

/* ---- applying ---- */

static const char *
counterpart_name(const struct round *r, int32_t counterpart)
{
    if (counterpart == SCHED_HOST)
        return "host";
    if (counterpart >= 0 && (size_t)counterpart < r->n_vms)
        return r->vms[counterpart].name;
    return "-";
}

/* sample_ms: how long ago the agent first saw the guest stats sample this decision is made on. */
static void
log_decision(const struct round *r,
             const struct sched_entry *e,
             uint64_t target_kib,
             uint64_t now_ms)
{
    const struct hv_vm *vm = &r->vms[e->vm];
    const struct tracker_vm *t = r->tracked[e->vm];
    bool grow = e->reason == SCHED_REASON_GROW;

    log_info(LOG_MODULE,
             "vm=%s name=%s decision=%s old_mib=%.1f new_mib=%.1f %s=%s vm_mib=%.1f host_mib=%.1f"
             " unused_mib=%.1f usable_mib=%.1f lookahead_mib=%.1f sample_ms=%" PRIu64 "%s",
             vm->uuid, vm->name, sched_reason_name(e->reason), KIB_TO_MIB(e->old_target_kib),
             KIB_TO_MIB(target_kib), grow ? "from" : "to", counterpart_name(r, e->counterpart),
             KIB_TO_MIB(e->vm_kib), KIB_TO_MIB(e->host_kib), KIB_TO_MIB(vm->unused_kib),
             KIB_TO_MIB(vm->usable_kib), KIB_TO_MIB(e->lookahead_kib),
             t->sample_seen_ms ? util_sub_sat(now_ms, t->sample_seen_ms) : 0,
             r->dry_run ? " dry_run=yes" : "");
}

/* Set one target; returns 0 or the hypervisor's error (logged). */
static int
apply_one(struct round *r, const struct sched_entry *e, uint64_t target_kib, uint64_t now_ms)
{
    const struct hv_vm *vm = &r->vms[e->vm];

    log_decision(r, e, target_kib, now_ms);
    if (r->dry_run)
        return 0;
    int rc = r->hv->ops->set_target(r->hv->ctx, vm->uuid, target_kib);
    if (rc < 0) {
        r->counters.apply_failures++;
        log_warn(LOG_MODULE, "vm=%s name=%s event=apply_failed target_mib=%.1f error=%s", vm->uuid,
                 vm->name, KIB_TO_MIB(target_kib), strerror(-rc));
        return rc;
    }
    tracker_set_target(r->tracked[e->vm], target_kib, vm->actual_kib, now_ms);
    if (e->reason == SCHED_REASON_GROW)
        tracker_note_grow(r->tracked[e->vm]);
    return 0;
}

static void
count(struct round *r, const struct sched_entry *e, uint64_t vm_kib)
{
    struct round_counters *c = &r->counters;

    if (e->reason == SCHED_REASON_SHRINK) {
        c->shrinks++;
        c->reclaimed_kib += e->host_kib;
        return;
    }
    c->grows++;
    c->granted_kib += vm_kib + e->host_kib;
    c->transferred_kib += vm_kib;
    c->host_granted_kib += e->host_kib;
    if (!r->tracked[e->vm]->fed) {
        r->tracked[e->vm]->fed = true;
        c->vms_fed++;
    }
}

/* Shrinks first. Memory a failed shrink meant for other VMs is cut from the grows it funded.
 * Returns 0 when every target was set, -ENOTCONN when the hypervisor went away (the rest is
 * not tried), -EIO when any other set failed (the rest was still applied). */
static int
apply(struct round *r, uint64_t now_ms)
{
    const struct sched_plan *plan = &r->plan;
    uint64_t unfunded_kib = 0;
    int result = 0;

    for (size_t k = 0; k < plan->n_shrinks + plan->n_grows; k++) {
        const struct sched_entry *e = &plan->entries[k];
        bool grow = e->reason == SCHED_REASON_GROW;
        uint64_t cut = 0;
        if (grow)
            cut = unfunded_kib < e->vm_kib ? unfunded_kib : e->vm_kib;

        unfunded_kib -= cut;
        if (e->vm_kib + e->host_kib == cut)
            continue; /* everything it was to get came from shrinks that failed */
        int rc = apply_one(r, e, e->new_target_kib - cut, now_ms);
        r->apply_failed[e->vm] = rc < 0;
        if (rc == -ENOTCONN)
            return rc; /* the rest would fail too; targets set so far stand */
        if (rc < 0 && !grow)
            unfunded_kib += e->vm_kib;
        if (rc < 0)
            result = -EIO;
        else
            count(r, e, e->vm_kib - cut);
    }
    return result;
}

/* ---- the round ---- */

/* A VM whose next sample may call for memory: it is growing or waiting for memory, using it
 * fast, or its outlook is below the grow target. */
static bool
worth_watching(const struct policy *policy,
               const struct hv_vm *vm,
               const struct sched_vm *s,
               const struct sched_entry *e)
{
    uint64_t signal;

    if (sched_reason_is_skip(e->reason) || e->reason == SCHED_REASON_AT_MAX)
        return false;
    if (e->reason == SCHED_REASON_GROW || e->reason == SCHED_REASON_NEED_UNMET || s->rate_kib_s)
        return true;
    return signal_of(policy, vm, &signal) &&
           signal < util_add_sat(policy->vm_grow_target_unused_kib, e->lookahead_kib);
}

/* Plan on what was sampled and tracked, check the plan, apply it. */
static int
plan_and_apply(struct round *r, const struct policy *policy, uint64_t now_ms)
{
    char msg[CHECK_MSG_LEN];

    r->sched_host = (struct sched_host){.total_kib = r->host.total_kib,
                                        .available_kib = r->host.available_kib,
                                        .horizon_ms = horizon_ms(r, policy)};
    r->policy = *policy;
    r->has_policy = true;
    int rc = sched_plan(policy, &r->sched_host, r->snapshot, r->n_vms, r->work, &r->plan);
    if (rc < 0) {
        log_err(LOG_MODULE, "event=plan_failed vms=%zu error=%s", r->n_vms, strerror(-rc));
        return rc;
    }
    r->watchful = false;
    for (size_t k = 0; k < r->plan.n_entries; k++) {
        const struct sched_entry *e = &r->plan.entries[k];
        r->entry_of[e->vm] = e;
        log_state_change(&r->vms[e->vm], r->tracked[e->vm], e->reason);
        r->watchful |= worth_watching(policy, &r->vms[e->vm], &r->snapshot[e->vm], e);
    }
    r->counters.rounds++;
    if (sched_check_plan(policy, &r->sched_host, r->snapshot, r->n_vms, &r->plan, msg,
                         sizeof(msg)) != 0) {
        r->counters.plans_refused++;
        log_err(LOG_MODULE, "event=plan_refused why=\"%s\"", msg);
        return -EPROTO;
    }
    memset(r->apply_failed, 0, r->n_vms * sizeof(*r->apply_failed));
    rc = apply(r, now_ms);
    r->applied = !r->dry_run && rc == 0;
    return rc;
}

/* Sample and track; plan when forced or when the sample holds news. *planned says which. */
static int
run_round(struct round *r, const struct policy *policy, uint64_t now_ms, bool force, bool *planned)
{
    uint64_t interval = policy->interval_ms;

    *planned = false;
    r->now_ms = now_ms;
    r->applied = false;
    r->n_vms = 0;
    memset(&r->plan, 0, sizeof(r->plan));
    int rc = sample(r, now_ms);
    if (rc < 0) {
        r->counters.failed_rounds++;
        return rc;
    }
    keep_stats_period(r, policy);
    tracker_set_timeouts(
        r->tracker, interval * STUCK_ROUNDS > STUCK_MIN_MS ? interval * STUCK_ROUNDS : STUCK_MIN_MS,
        interval * RETRY_ROUNDS > RETRY_MIN_MS ? interval * RETRY_ROUNDS : RETRY_MIN_MS);
    bool news = has_news(r);
    track(r, policy, now_ms);
    if (force || news) {
        *planned = true;
        rc = plan_and_apply(r, policy, now_ms);
    }
    size_t gone = tracker_end_round(r->tracker);
    if (gone)
        log_info(LOG_MODULE, "event=vms_gone count=%zu", gone);
    return rc;
}

int
round_run(struct round *r, const struct policy *policy, uint64_t now_ms)
{
    bool planned;
    return run_round(r, policy, now_ms, true, &planned);
}

int
round_poll(struct round *r, const struct policy *policy, uint64_t now_ms)
{
    bool planned;
    int rc = run_round(r, policy, now_ms, false, &planned);
    return rc < 0 ? rc : planned;
}

void
round_get_view(const struct round *r, struct round_view *view)
{
    view->host = &r->host;
    view->sched_host = &r->sched_host;
    view->vms = r->vms;
    view->snapshot = r->snapshot;
    view->plan = &r->plan;
    view->policy = r->has_policy ? &r->policy : NULL;
    view->entry_of = r->entry_of;
    view->sample_seen_ms = r->sample_seen_ms;
    view->apply_failed = r->apply_failed;
    view->now_ms = r->now_ms;
    view->n_vms = r->n_vms;
    view->applied = r->applied;
}

void
round_seed_targets(struct round *r, const struct state_target *targets, size_t n, uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++)
        tracker_seed(r->tracker, targets[i].uuid, targets[i].target_kib, now_ms);
}

size_t
round_targets_in_flight(const struct round *r, struct state_target *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n_vms; i++) {
        const struct tracker_vm *t = r->tracked[i];
        if (!tracker_heading(t, r->vms[i].actual_kib))
            continue;
        if (n < cap) {
            snprintf(out[n].uuid, sizeof(out[n].uuid), "%s", r->vms[i].uuid);
            out[n].target_kib = t->target_kib;
        }
        n++;
    }
    return n;
}

const struct round_counters *
round_get_counters(const struct round *r)
{
    return &r->counters;
}
