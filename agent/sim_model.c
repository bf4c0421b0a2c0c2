/*
 * sim_model.c - the sim's model: balloons, workloads, page cache, touch lag, guest stats and the
 * outcome counters, stepped through sim time (sim_model.h describes it). No I/O, no JSON.
 */
#include "sim_model.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define LOG_MODULE "sim"

uint64_t
model_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
vm_fits_kib(const struct sim_vm *vm)
{
    return util_sub_sat(vm->actual_kib, GUEST_OVERHEAD_KIB + GUEST_RESERVE_KIB);
}

bool
model_vm_is_stuck(const struct sim_vm *vm, uint64_t now_ms)
{
    return vm->running && vm->has_stuck && now_ms - vm->started_ms >= vm->stuck_after_ms;
}

uint64_t
model_vm_rss_kib(const struct sim_vm *vm)
{
    return vm->touched_kib + vm->qemu_overhead_kib;
}

uint64_t
model_host_available_kib(const struct sim *sim)
{
    uint64_t avail = util_sub_sat(sim->total_kib, sim->reserved_kib);

    for (size_t i = 0; i < sim->n_vms; i++)
        if (sim->vms[i].running)
            avail = util_sub_sat(avail, model_vm_rss_kib(&sim->vms[i]));
    return avail;
}

static void
vm_start(struct sim_vm *vm)
{
    vm->running = true;
    vm->started_ms = vm->start_ms;
    vm->actual_kib = vm->initial_kib;
    vm->touched_kib = vm->touched_init_kib;
    vm->target_kib = 0;
    vm->move_rem = 0;
    vm->next_step = 0;
    vm->active = NULL;
    vm->mode = MODE_IDLE;
    vm->wanted_kib = 0;
    vm->used_kib = 0;
    vm->cache_kib = 0;
    vm->shortfall_kib = 0;
    vm->has_stats = false;
    vm->next_pub_ms = vm->start_ms + vm->stats_delay_ms;
    log_debug(LOG_MODULE, "event=start vm=%s uuid=%s actual_mib=%" PRIu64, vm->name, vm->uuid,
              vm->actual_kib / UTIL_KIB_PER_MIB);
}

static void
vm_stop(struct sim_vm *vm)
{
    vm->running = false;
    vm->stopped = true;
    vm->has_stats = false;
    log_debug(LOG_MODULE, "event=stop vm=%s uuid=%s", vm->name, vm->uuid);
}

/* Apply the workload steps due by vm_ms (VM time) and move wanted along a ramp or hog. */
static void
vm_run_workload(struct sim_vm *vm, uint64_t vm_ms)
{
    while (vm->next_step < vm->n_steps && vm->steps[vm->next_step].at_ms <= vm_ms) {
        const struct step *s = &vm->steps[vm->next_step++];

        vm->active = s;
        vm->from_kib = vm->wanted_kib;
        switch (s->kind) {
        case STEP_SET:
            vm->wanted_kib = s->kib;
            vm->mode = MODE_IDLE;
            break;
        case STEP_RAMP:
            vm->mode = MODE_RAMP;
            break;
        case STEP_HOG:
            vm->mode = MODE_HOG_GROW;
            vm->grow_kib = vm->from_kib;
            vm->grow_ms = s->at_ms;
            break;
        }
    }

    const struct step *s = vm->active;
    uint64_t elapsed_ms = s ? vm_ms - s->at_ms : 0;

    switch (vm->mode) {
    case MODE_IDLE:
        break;
    case MODE_RAMP:
        if (elapsed_ms >= s->over_ms) {
            vm->wanted_kib = s->kib;
            vm->mode = MODE_IDLE;
        } else if (s->kib >= vm->from_kib) {
            vm->wanted_kib = vm->from_kib + (s->kib - vm->from_kib) * elapsed_ms / s->over_ms;
        } else {
            vm->wanted_kib = vm->from_kib - (vm->from_kib - s->kib) * elapsed_ms / s->over_ms;
        }
        break;
    case MODE_HOG_GROW:
        vm->wanted_kib = vm->grow_kib + s->rate_kib_per_s * (vm_ms - vm->grow_ms) / MS_PER_S;
        if (s->kib && vm->wanted_kib >= s->kib) {
            /* Reached its limit without a refusal: it holds from now. */
            vm->wanted_kib = util_max_u64(s->kib, vm->from_kib);
            vm->mode = MODE_HOG_HOLD;
            vm->hold_until_ms = vm_ms + s->hold_ms;
        }
        break;
    case MODE_HOG_HOLD:
        if (!s->hold_forever && vm_ms >= vm->hold_until_ms) {
            vm->wanted_kib = vm->from_kib;
            vm->mode = MODE_IDLE;
        }
        break;
    }
}

/* Move the balloon by dt_ms toward its target, never squeezing the guest. */
static void
vm_move_balloon(struct sim_vm *vm, uint64_t dt_ms, uint64_t now_ms)
{
    uint64_t floor_kib = vm->used_kib + GUEST_OVERHEAD_KIB + GUEST_RESERVE_KIB;
    uint64_t budget;
    uint64_t move_kib;

    if (!vm->has_balloon || !vm->has_driver || vm->target_kib == 0 || model_vm_is_stuck(vm, now_ms))
        return;
    if (vm->target_kib == vm->actual_kib) {
        vm->move_rem = 0;
        return;
    }
    budget = vm->speed_kib_per_s * dt_ms + vm->move_rem;
    move_kib = budget / MS_PER_S;
    vm->move_rem = budget % MS_PER_S;
    if (vm->target_kib > vm->actual_kib) {
        /* Deflating hands the guest pages the host has not backed yet: no cost until touched,
         * unless the guest writes every page it is given (init_on_free=1, page poisoning,
         * Windows zeroing its free pages). */
        vm->actual_kib = util_min_u64(vm->actual_kib + move_kib, vm->target_kib);
        if (vm->touch_on_deflate)
            vm->touched_kib = vm->actual_kib;
    } else {
        uint64_t low_kib = util_max_u64(vm->target_kib, floor_kib);
        if (vm->actual_kib > low_kib)
            vm->actual_kib =
                util_max_u64(vm->actual_kib - util_min_u64(move_kib, vm->actual_kib), low_kib);
        /* Inflating takes the guest's untouched pages first; beyond them it returns touched
         * ones to the host. */
        vm->touched_kib = util_min_u64(vm->touched_kib, vm->actual_kib);
    }
}

/* Fit the workload into the guest: refusals, used, cache, unused, usable, touched pages.
 * Returns whether the workload wanted more than the guest could hold during this step. */
static bool
vm_settle(struct sim_vm *vm, uint64_t vm_ms)
{
    uint64_t fits_kib = vm_fits_kib(vm);
    uint64_t shortfall_kib;
    bool starved = false;

    if (vm->mode == MODE_HOG_GROW && vm->wanted_kib > fits_kib) {
        /* The guest refuses the hog's allocation. A waiting hog retries from what it got at its
         * own rate; any other keeps what it got, holds, then frees. */
        vm->refused_kib += vm->wanted_kib - fits_kib;
        vm->wanted_kib = fits_kib;
        starved = true;
        if (vm->active->wait) {
            vm->grow_kib = fits_kib;
            vm->grow_ms = vm_ms;
        } else {
            vm->mode = MODE_HOG_HOLD;
            vm->hold_until_ms = vm_ms + vm->active->hold_ms;
            log_debug(LOG_MODULE, "event=hog_refused vm=%s used_mib=%" PRIu64, vm->name,
                      fits_kib / UTIL_KIB_PER_MIB);
        }
    }
    vm->used_kib = util_min_u64(vm->wanted_kib, fits_kib);
    shortfall_kib = vm->wanted_kib - vm->used_kib;
    if (shortfall_kib > vm->shortfall_kib)
        vm->refused_kib += shortfall_kib - vm->shortfall_kib;
    vm->shortfall_kib = shortfall_kib;
    starved = starved || shortfall_kib > 0;
    if (vm->cache_mode == CACHE_FILL)
        /* used <= fits keeps at least reserve - FILL_FREE of cache: binaries, hot files. */
        vm->cache_kib = vm->actual_kib - GUEST_OVERHEAD_KIB - vm->used_kib - FILL_FREE_KIB;
    else
        vm->cache_kib = util_min_u64(vm->used_kib / CACHE_DIVISOR, fits_kib - vm->used_kib);
    vm->unused_kib = vm->actual_kib - GUEST_OVERHEAD_KIB - vm->used_kib - vm->cache_kib;
    vm->usable_kib = util_sub_sat(vm->unused_kib + vm->cache_kib, GUEST_WATERMARK_KIB);
    /* Pages the guest uses (kernel, workload, cache) are backed by the host from their first
     * touch; freed ones stay backed (no free page reporting). */
    vm->touched_kib = util_max_u64(vm->touched_kib, vm->actual_kib - vm->unused_kib);
    return starved;
}

static void
vm_publish_stats(struct sim *sim, struct sim_vm *vm, uint64_t vm_ms)
{
    if (!vm->has_driver || sim->stats_period_ms == 0 || vm_ms < vm->stats_delay_ms ||
        sim->now_ms < vm->next_pub_ms)
        return;
    vm->has_stats = true;
    vm->pub_unused_kib = vm->unused_kib;
    vm->pub_usable_kib = vm->usable_kib;
    vm->pub_total_kib = util_sub_sat(vm->actual_kib, GUEST_OVERHEAD_KIB); /* MemTotal */
    vm->pub_ms = sim->now_ms;
    /* Keep the guest's rhythm when a step lands late; restart it after a long gap. */
    vm->next_pub_ms += sim->stats_period_ms;
    if (vm->next_pub_ms <= sim->now_ms)
        vm->next_pub_ms = sim->now_ms + sim->stats_period_ms;
}

void
model_step(struct sim *sim, uint64_t dt_ms)
{
    uint64_t prev_ms = sim->now_ms;
    uint64_t avail_kib;

    sim->now_ms += dt_ms;
    for (size_t i = 0; i < sim->n_vms; i++) {
        struct sim_vm *vm = &sim->vms[i];
        uint64_t vm_dt_ms;
        uint64_t vm_ms;

        if (!vm->running && !vm->stopped && sim->now_ms >= vm->start_ms)
            vm_start(vm);
        if (vm->running && vm->has_stop && sim->now_ms >= vm->stop_ms)
            vm_stop(vm);
        if (!vm->running)
            continue;
        vm_dt_ms = sim->now_ms - util_max_u64(prev_ms, vm->started_ms);
        vm_ms = sim->now_ms - vm->started_ms;
        vm_move_balloon(vm, vm_dt_ms, sim->now_ms);
        vm_run_workload(vm, vm_ms);
        if (vm_settle(vm, vm_ms))
            vm->starved_ms += vm_dt_ms;
        vm_publish_stats(sim, vm, vm_ms);
        if (vm->unused_kib < sim->vm_min_unused_kib)
            vm->below_min_ms += vm_dt_ms;
        if (vm->usable_kib < sim->vm_min_unused_kib)
            vm->usable_below_min_ms += vm_dt_ms;
    }
    avail_kib = model_host_available_kib(sim);
    if (avail_kib < sim->host_min_unused_kib) {
        sim->host_below_min_ms += dt_ms;
        sim->host_worst_below_min_kib =
            util_max_u64(sim->host_worst_below_min_kib, sim->host_min_unused_kib - avail_kib);
    }
}

void
model_run(struct sim *sim, uint64_t ms)
{
    while (ms > 0) {
        uint64_t dt_ms = util_min_u64(ms, STEP_MAX_MS);
        model_step(sim, dt_ms);
        ms -= dt_ms;
    }
}

void
model_catch_up(struct sim *sim)
{
    double want_ms;

    if (sim->fake_clock)
        return;
    want_ms = (double)(model_mono_ns() - sim->start_ns) / 1e6 * sim->speed;
    if (want_ms > (double)sim->now_ms)
        model_run(sim, (uint64_t)want_ms - sim->now_ms);
}

struct sim_vm *
model_find_vm(struct sim *sim, const char *uuid)
{
    for (size_t i = 0; i < sim->n_vms; i++)
        if (strcasecmp(sim->vms[i].uuid, uuid) == 0)
            return &sim->vms[i];
    return NULL;
}

void
model_destroy(struct sim **simp)
{
    struct sim *sim = *simp;

    if (!sim)
        return;
    for (size_t i = 0; i < sim->n_vms; i++) {
        free(sim->vms[i].name);
        free(sim->vms[i].steps);
    }
    free(sim->vms);
    free(sim->name);
    free(sim);
    *simp = NULL;
}
