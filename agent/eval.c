/*
 * eval.c - one scenario under one planner on the sim's fake clock, measured (eval.h).
 *
 * Time moves in steps of STEP_MS. memsched runs as the agent does: a round every interval_ms,
 * and a look for new guest stats every POLL_MS while round_watchful() says a VM is worth it. A
 * baseline runs once per its shipped cycle: sample, plan, set targets (shrinks first). After
 * each step the sim's true state is measured; the planner's own beliefs never enter a figure.
 */
#include "eval.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "hv_backends.h"
#include "hv_sim.h"
#include "round.h"
#include "util.h"

#define STEP_MS 100u
#define POLL_MS 250u

static const char *const planner_names[EVAL_PLANNERS] = {
    [EVAL_MEMSCHED] = "memsched",
    [EVAL_SEED] = "seed",
    [EVAL_PROXMOX] = "proxmox",
    [EVAL_MOM] = "mom",
};

const char *
eval_planner_name(enum eval_planner planner)
{
    return (unsigned)planner < EVAL_PLANNERS ? planner_names[planner] : "invalid";
}

int
eval_planner_parse(const char *name, enum eval_planner *planner)
{
    for (int p = 0; p < EVAL_PLANNERS; p++) {
        if (strcmp(name, planner_names[p]) == 0) {
            *planner = (enum eval_planner)p;
            return 0;
        }
    }
    return -EINVAL;
}

/* What the evaluator follows per VM (by sim index). */
struct vm_track {
    bool seen;         /* has run at least once */
    bool idle;         /* its workload has not changed since it started */
    bool pressured;    /* signal below vm_min_unused at the last step */
    uint64_t since_ms; /* start of the current pressure episode */
    uint64_t wanted_kib;
    uint64_t actual_kib;
    double moved_mib;
    /* An open give-back window: demand fell at drop_ms, the balloon stood at drop_actual_kib,
     * and back_kib of it should come back (the drop beyond the excess band). */
    bool giving_back;
    uint64_t drop_ms;
    uint64_t drop_actual_kib;
    uint64_t back_kib;
    uint64_t back_at_ms; /* when 90 % was back, 0 = not yet */
};

struct run {
    const struct eval_options *o;
    struct eval_result *r;
    struct hv *hv;
    struct sim *sim;
    struct round *round; /* memsched only */
    size_t n;            /* VMs in the scenario */
    struct vm_track *track;
    double *episodes_s;
    size_t n_episodes;
    double *give_backs_s;
    size_t n_give_backs;
    bool host_below;
    uint64_t worst_below_kib;
    struct hv_vm *samples; /* baselines' sample buffer */
    uint64_t *targets;
    FILE *record;
};

static baseline_plan_fn
baseline_of(enum eval_planner planner)
{
    switch (planner) {
    case EVAL_SEED:
        return baseline_seed;
    case EVAL_PROXMOX:
        return baseline_proxmox;
    case EVAL_MOM:
        return baseline_mom;
    default:
        return NULL;
    }
}

/* How often the planner plans: memsched and the seed each policy round, the others on their
 * shipped cycles. */
static uint64_t
cycle_ms(const struct eval_options *o)
{
    if (o->planner == EVAL_PROXMOX)
        return BASELINE_PROXMOX_CYCLE_MS;
    if (o->planner == EVAL_MOM)
        return BASELINE_MOM_CYCLE_MS;
    return o->policy.interval_ms;
}

static int
baseline_cycle(struct run *run)
{
    struct hv_host host;
    size_t n = 0;
    int rc = run->hv->ops->sample(run->hv->ctx, &host, run->samples, run->n, &n);

    if (rc < 0)
        return rc;
    baseline_of(run->o->planner)(&run->o->policy, &host, run->samples, n, run->targets);
    for (int grow = 0; grow < 2; grow++) { /* shrinks first, as every balloon manager does */
        for (size_t i = 0; i < n; i++) {
            uint64_t t = run->targets[i];
            if (t && (t > run->samples[i].actual_kib) == grow)
                run->hv->ops->set_target(run->hv->ctx, run->samples[i].uuid, t);
        }
    }
    return 0;
}

static void
episode_end(struct run *run, struct vm_track *t, uint64_t now_ms)
{
    if (run->n_episodes < EVAL_EPISODES_MAX)
        run->episodes_s[run->n_episodes++] = (double)(now_ms - t->since_ms) / 1000.0;
    t->pressured = false;
}

static void
give_back_end(struct run *run, struct vm_track *t, uint64_t now_ms)
{
    if (run->n_give_backs < EVAL_EPISODES_MAX) {
        uint64_t at = t->back_at_ms ? t->back_at_ms : now_ms;
        run->give_backs_s[run->n_give_backs++] = (double)(at - t->drop_ms) / 1000.0;
        run->r->never_given_back += t->back_at_ms == 0;
    }
    t->giving_back = false;
}

/* Give-back: when a workload's demand falls by more than the excess band (what the policy lets
 * a VM keep), the rest should return to the host; the window runs until demand rises again. */
static void
follow_give_back(struct run *run, struct vm_track *t, const struct sim_vm_view *v, uint64_t now_ms)
{
    uint64_t band = run->o->policy.vm_excess_unused_kib;

    if (t->giving_back && v->wanted_kib > t->wanted_kib)
        give_back_end(run, t, now_ms);
    if (!t->giving_back && v->wanted_kib + band + 64 * UTIL_KIB_PER_MIB < t->wanted_kib) {
        t->giving_back = true;
        t->drop_ms = now_ms - STEP_MS;
        t->drop_actual_kib = t->actual_kib;
        t->back_kib = t->wanted_kib - v->wanted_kib - band;
        t->back_at_ms = 0;
    }
    if (t->giving_back && !t->back_at_ms &&
        v->actual_kib + t->back_kib / 10 * 9 <= t->drop_actual_kib)
        t->back_at_ms = now_ms;
}

/* A VM's first sight: where its balloon and workload start. */
static void
track_start(struct vm_track *t, const struct sim_vm_view *v)
{
    if (t->seen || !v->running)
        return;
    t->seen = t->idle = true;
    t->wanted_kib = v->wanted_kib;
    t->actual_kib = v->actual_kib;
}

static void
measure_vm(struct run *run, size_t i, uint64_t now_ms)
{
    struct sim_vm_view v;
    struct vm_track *t = &run->track[i];
    const struct policy *p = &run->o->policy;

    sim_vm_view(run->sim, i, &v);
    if (!v.running) {
        if (t->pressured)
            episode_end(run, t, now_ms);
        if (t->giving_back) {
            t->back_at_ms = t->back_at_ms ? t->back_at_ms : now_ms; /* a stopped VM gave it all */
            give_back_end(run, t, now_ms);
        }
        return;
    }
    track_start(t, &v);
    t->idle = t->idle && v.wanted_kib == t->wanted_kib;
    follow_give_back(run, t, &v, now_ms);
    t->wanted_kib = v.wanted_kib;
    t->moved_mib += util_kib_to_mib(v.actual_kib > t->actual_kib ? v.actual_kib - t->actual_kib
                                                                 : t->actual_kib - v.actual_kib);
    t->actual_kib = v.actual_kib;

    uint64_t signal = p->demand_signal == POLICY_DEMAND_USABLE ? v.usable_kib : v.unused_kib;
    bool pressured = signal < p->vm_min_unused_kib;
    if (pressured) {
        run->r->pressure_vm_s += STEP_MS / 1000.0;
        if (!t->pressured)
            t->since_ms = now_ms - STEP_MS;
        t->pressured = true;
    } else if (t->pressured) {
        episode_end(run, t, now_ms);
    }
}

static void
measure_host(struct run *run)
{
    struct sim_host_view h;
    const struct policy *p = &run->o->policy;
    bool below;

    sim_host_view(run->sim, &h);
    below = h.available_kib < p->host_min_unused_kib;
    if (below) {
        run->r->floor_below_s += STEP_MS / 1000.0;
        run->worst_below_kib =
            util_max_u64(run->worst_below_kib, p->host_min_unused_kib - h.available_kib);
        run->r->floor_breaches += !run->host_below;
    }
    run->host_below = below;
}

static void
record_step(struct run *run, uint64_t now_ms)
{
    struct sim_vm_view v;

    for (size_t i = 0; run->record && now_ms % 1000 == 0 && i < run->n; i++) {
        sim_vm_view(run->sim, i, &v);
        if (v.running)
            fprintf(run->record,
                    "%s,%" PRIu64 ",%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                    ",%" PRIu64 "\n",
                    eval_planner_name(run->o->planner), now_ms, v.name, v.actual_kib, v.target_kib,
                    v.unused_kib, v.usable_kib, v.used_kib, v.wanted_kib);
    }
}

static int
compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void
finish(struct run *run, uint64_t end_ms)
{
    struct eval_result *r = run->r;

    for (size_t i = 0; i < run->n; i++) {
        struct sim_vm_view v;
        struct vm_track *t = &run->track[i];
        if (t->pressured)
            episode_end(run, t, end_ms);
        if (t->giving_back)
            give_back_end(run, t, end_ms);
        sim_vm_view(run->sim, i, &v);
        r->starvation_vm_s += (double)v.starved_ms / 1000.0;
        r->refused_mib += util_kib_to_mib(v.refused_kib);
        r->balloon_ops += v.targets_set;
        r->moved_mib += t->moved_mib;
        if (t->seen && t->idle) {
            r->idle_moved_mib += t->moved_mib;
            r->idle_ops += v.targets_set;
        }
    }
    r->floor_worst_mib = util_kib_to_mib(run->worst_below_kib);
    r->give_backs = run->n_give_backs;
    if (run->n_give_backs) {
        qsort(run->give_backs_s, run->n_give_backs, sizeof(double), compare_double);
        r->give_back_median_s = run->give_backs_s[run->n_give_backs / 2];
        r->give_back_worst_s = run->give_backs_s[run->n_give_backs - 1];
    }
    r->episodes = run->n_episodes;
    if (run->n_episodes) {
        qsort(run->episodes_s, run->n_episodes, sizeof(double), compare_double);
        r->relief_median_s = run->episodes_s[run->n_episodes / 2];
        r->relief_worst_s = run->episodes_s[run->n_episodes - 1];
    }
}

static int
run_open(struct run *run, char *err, size_t err_len)
{
    char uri[4096];

    snprintf(uri, sizeof(uri), "sim:%s", run->o->scenario);
    int rc = hv_open(uri, &run->hv, err, err_len);
    if (rc < 0)
        return rc;
    run->sim = sim_from_hv(run->hv);
    sim_use_fake_clock(run->sim);
    run->n = sim_vm_count(run->sim);
    run->track = util_xcalloc(run->n, sizeof(*run->track));
    run->episodes_s = util_xcalloc(EVAL_EPISODES_MAX, sizeof(double));
    run->give_backs_s = util_xcalloc(EVAL_EPISODES_MAX, sizeof(double));
    run->samples = util_xcalloc(run->n, sizeof(*run->samples));
    run->targets = util_xcalloc(run->n, sizeof(*run->targets));
    if (run->o->planner == EVAL_MEMSCHED)
        run->round = round_new(run->hv, false);
    if (run->o->record) {
        run->record = fopen(run->o->record, "a");
        if (!run->record)
            return util_fail(-errno, err, err_len, "%s: %s", run->o->record, strerror(errno));
    }
    return 0;
}

static void
run_close(struct run *run)
{
    if (run->record)
        fclose(run->record);
    round_destroy(&run->round);
    hv_close(&run->hv);
    free(run->track);
    free(run->episodes_s);
    free(run->give_backs_s);
    free(run->samples);
    free(run->targets);
}

/* One planning moment: a memsched round or poll, or a baseline's cycle. */
static void
plan(struct run *run, uint64_t now_ms)
{
    const struct policy *p = &run->o->policy;

    if (now_ms % cycle_ms(run->o) == 0) {
        if (run->round)
            round_run(run->round, p, now_ms); /* a refused plan shows in the figures */
        else
            baseline_cycle(run);
    } else if (run->round && now_ms % POLL_MS == 0 && round_watchful(run->round)) {
        round_poll(run->round, p, now_ms);
    }
}

int
eval_run(const struct eval_options *opts, struct eval_result *out, char *err, size_t err_len)
{
    struct run run = {.o = opts, .r = out};
    uint64_t duration, now = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = run_open(&run, err, err_len);
    if (rc < 0) {
        run_close(&run);
        return rc;
    }
    duration = opts->duration_ms ? opts->duration_ms : sim_duration_ms(run.sim);
    duration = duration ? duration : EVAL_DEFAULT_DURATION_MS;
    for (size_t i = 0; i < run.n; i++) {
        struct sim_vm_view v;
        sim_vm_view(run.sim, i, &v);
        track_start(&run.track[i], &v);
    }
    for (; now < duration; now += STEP_MS) {
        plan(&run, now);
        record_step(&run, now);
        sim_advance(run.sim, STEP_MS);
        for (size_t i = 0; i < run.n; i++)
            measure_vm(&run, i, now + STEP_MS);
        measure_host(&run);
    }
    out->duration_ms = duration;
    out->vms = run.n;
    finish(&run, duration);
    run_close(&run);
    return 0;
}
