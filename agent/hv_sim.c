/*
 * hv_sim.c - the sim backend of the hypervisor port: a modelled host driven by a JSON scenario.
 *
 * Three rooms: sim_scenario.c reads the scenario (the only jansson user), sim_model.c runs the
 * model, and this file is the port (struct hv's ops) and the sim's own API for tests, the demo
 * and the benchmarks (hv_sim.h), which run time forward and read the outcome.
 */
#include "hv_sim.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim_model.h"
#include "sim_scenario.h"
#include "util.h"

#define LOG_MODULE "sim"
#define SPEED_MAX  100000.0

static const struct hv_ops sim_ops;

/* ---- the port ---- */

static int
sim_sample(void *ctx, struct hv_host *host, struct hv_vm *vms, size_t cap, size_t *n_vms)
{
    struct sim *sim = ctx;
    size_t n = 0;

    model_catch_up(sim);
    for (size_t i = 0; i < sim->n_vms; i++)
        n += sim->vms[i].running;
    *n_vms = n;
    if (n > cap)
        return -ENOSPC;

    host->total_kib = sim->total_kib;
    host->available_kib = model_host_available_kib(sim);
    n = 0;
    for (size_t i = 0; i < sim->n_vms; i++) {
        const struct sim_vm *vm = &sim->vms[i];
        struct hv_vm *out = &vms[n];

        if (!vm->running)
            continue;
        n++;
        memset(out, 0, sizeof(*out));
        snprintf(out->uuid, sizeof(out->uuid), "%s", vm->uuid);
        snprintf(out->name, sizeof(out->name), "%s", vm->name);
        out->state = SCHED_VM_RUNNING;
        out->max_kib = vm->max_kib;
        out->actual_kib = vm->actual_kib;
        out->has_balloon = vm->has_balloon;
        out->stats_period_s = vm->has_driver ? (uint32_t)(sim->stats_period_ms / MS_PER_S) : 0;
        out->has_unused = vm->has_stats;
        out->has_usable = vm->has_stats;
        if (vm->has_stats) {
            out->unused_kib = vm->pub_unused_kib;
            out->usable_kib = vm->pub_usable_kib;
            out->stats_age_ms = sim->now_ms - vm->pub_ms;
            out->stats_stamp_ms = vm->pub_ms;
            out->guest_total_kib = vm->pub_total_kib;
        }
        out->rss_kib = model_vm_rss_kib(vm);
        out->has_rss = true;
        out->managed = vm->managed;
        out->min_kib = vm->min_kib;
        out->cap_kib = vm->cap_kib;
        out->weight = vm->weight;
    }
    return 0;
}

static int
sim_set_target(void *ctx, const char *uuid, uint64_t target_kib)
{
    struct sim *sim = ctx;
    struct sim_vm *vm;

    model_catch_up(sim);
    vm = model_find_vm(sim, uuid);
    if (!vm || !vm->running)
        return -ENOENT;
    if (!vm->has_balloon)
        return -ENOTSUP;
    if (target_kib == 0 || target_kib > vm->max_kib)
        return -EINVAL;
    /* Accepted also without a driver: QEMU takes the request, the guest never acts on it. */
    vm->target_kib = target_kib;
    vm->targets_set++;
    return 0;
}

static int
sim_set_stats_period(void *ctx, unsigned period_s)
{
    struct sim *sim = ctx;

    if (period_s == 0)
        return 0; /* the sim's guests keep the period they have; it sets none on new ones */
    model_catch_up(sim);
    sim->stats_period_ms = (uint64_t)period_s * MS_PER_S;
    /* A guest applies a new period from its last update: the next one may be due at once. */
    for (size_t i = 0; i < sim->n_vms; i++) {
        struct sim_vm *vm = &sim->vms[i];
        if (vm->running && vm->has_stats)
            vm->next_pub_ms = vm->pub_ms + sim->stats_period_ms;
    }
    return 0;
}

static void
sim_close(void *ctx)
{
    struct sim *sim = ctx;
    model_destroy(&sim);
}

static const struct hv_ops sim_ops = {
    .name = "sim",
    .sample = sim_sample,
    .set_target = sim_set_target,
    .set_stats_period = sim_set_stats_period,
    .close = sim_close,
};

/* ---- opening ---- */

/* Wraps a loaded sim (rc 0) in the port; frees it otherwise. */
static int
sim_build(struct sim *sim, int rc, double speed, struct hv **out)
{
    struct hv *hv;

    if (rc < 0) {
        model_destroy(&sim);
        return rc;
    }
    sim->speed = speed;
    sim->start_ns = model_mono_ns();
    model_step(sim, 0); /* VMs starting at 0 are up, with their first stats when due */
    log_info(LOG_MODULE, "event=open scenario=%s vms=%zu speed=%g", sim->name, sim->n_vms, speed);
    hv = util_xcalloc(1, sizeof(*hv));
    hv->ops = &sim_ops;
    hv->ctx = sim;
    *out = hv;
    return 0;
}

int
sim_open_json(const char *json, const char *name, struct hv **out, char *err, size_t err_len)
{
    struct sim *sim = util_xcalloc(1, sizeof(*sim));

    *out = NULL;
    return sim_build(sim, scenario_from_text(json, name, sim, err, err_len), 1.0, out);
}

/* "FILE[?speed=N]": the query is whatever follows the last '?'. */
int
hv_sim_open(const char *path, struct hv **out, char *err, size_t err_len)
{
    const char *query = strrchr(path, '?');
    double speed = 1.0;
    int rc;

    *out = NULL;
    if (query) {
        char *end = NULL;

        if (strncmp(query + 1, "speed=", 6) != 0)
            return util_fail(-EINVAL, err, err_len, "sim:%s: unknown option \"%s\" (only speed=N)",
                             path, query + 1);
        errno = 0;
        speed = strtod(query + 7, &end);
        if (errno || end == query + 7 || *end || !(speed > 0 && speed <= SPEED_MAX))
            return util_fail(-EINVAL, err, err_len, "sim:%s: speed must be a number in (0, %g]",
                             path, SPEED_MAX);
    }
    if (query == path || path[0] == '\0')
        return util_fail(-EINVAL, err, err_len, "sim: no scenario file given (sim:FILE[?speed=N])");

    char *file = query ? util_xstrndup(path, (size_t)(query - path)) : util_xstrdup(path);
    struct sim *sim = util_xcalloc(1, sizeof(*sim));

    rc = sim_build(sim, scenario_from_file(file, sim, err, err_len), speed, out);
    free(file);
    return rc;
}

/* ---- the sim's own API ---- */

struct sim *
sim_from_hv(struct hv *hv)
{
    return hv && hv->ops == &sim_ops ? hv->ctx : NULL;
}

void
sim_use_fake_clock(struct sim *sim)
{
    /* Frozen where it stands: no catch-up here, so a run that freezes before its first port
     * call starts at exactly 0 and is deterministic. */
    sim->fake_clock = true;
}

void
sim_advance(struct sim *sim, uint64_t ms)
{
    assert(sim->fake_clock); /* real-time sims follow the monotonic clock */
    model_run(sim, ms);
}

uint64_t
sim_now_ms(struct sim *sim)
{
    model_catch_up(sim);
    return sim->now_ms;
}

uint64_t
sim_duration_ms(const struct sim *sim)
{
    return sim->duration_ms;
}

size_t
sim_vm_count(const struct sim *sim)
{
    return sim->n_vms;
}

void
sim_vm_view(struct sim *sim, size_t i, struct sim_vm_view *view)
{
    const struct sim_vm *vm;

    assert(i < sim->n_vms);
    model_catch_up(sim);
    vm = &sim->vms[i];
    memset(view, 0, sizeof(*view));
    view->name = vm->name;
    view->uuid = vm->uuid;
    view->max_kib = vm->max_kib;
    view->actual_kib = vm->running ? vm->actual_kib : 0;
    view->target_kib = vm->running ? vm->target_kib : 0;
    view->used_kib = vm->running ? vm->used_kib : 0;
    view->wanted_kib = vm->running ? vm->wanted_kib : 0;
    view->cache_kib = vm->running ? vm->cache_kib : 0;
    view->unused_kib = vm->running ? vm->unused_kib : 0;
    view->usable_kib = vm->running ? vm->usable_kib : 0;
    view->touched_kib = vm->running ? vm->touched_kib : 0;
    view->rss_kib = vm->running ? model_vm_rss_kib(vm) : 0;
    view->refused_kib = vm->refused_kib;
    view->below_min_ms = vm->below_min_ms;
    view->usable_below_min_ms = vm->usable_below_min_ms;
    view->starved_ms = vm->starved_ms;
    view->targets_set = vm->targets_set;
    view->running = vm->running;
    view->has_balloon = vm->has_balloon;
    view->has_driver = vm->has_driver;
    view->stuck = model_vm_is_stuck(vm, sim->now_ms);
}

void
sim_host_view(struct sim *sim, struct sim_host_view *view)
{
    model_catch_up(sim);
    view->total_kib = sim->total_kib;
    view->available_kib = model_host_available_kib(sim);
    view->below_min_ms = sim->host_below_min_ms;
    view->worst_below_min_kib = sim->host_worst_below_min_kib;
}
