/*
 * tracker.c - per-VM memory between rounds: targets set, balloon progress, stuck balloons.
 *
 * Records live in a dense array found through an open-addressing index keyed by UUID, so a
 * round over n VMs costs O(n). Forgetting VMs compacts the array and rebuilds the index, which
 * only happens in rounds where a VM went away.
 */
#include "tracker.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hv.h"
#include "util.h"

#define EMPTY_SLOT UINT32_MAX
/* A balloon within this of its target has reached it (guests move in pages and round). */
#define REACHED_KIB 1024
/* Growth slower than this is noise (page cache, slab), not a workload to feed ahead of time. */
#define RATE_NOISE_KIB_S 1024u

struct record {
    char uuid[HV_UUID_LEN];
    struct tracker_vm vm;
};

struct tracker {
    struct record *records;
    size_t n_records;
    size_t cap_records;
    uint32_t *index; /* slots hold record positions, EMPTY_SLOT when free */
    size_t n_slots;  /* a power of two, at least twice cap_records */
    uint64_t stuck_after_ms;
    uint64_t retry_after_ms;
    uint64_t grow_delay_ms; /* sample -> grow arrived, moving average; 0 = none measured yet */
};

static size_t
slot_of(const struct tracker *t, const char *uuid)
{
    size_t slot = util_hash_str(uuid) & (t->n_slots - 1);
    while (t->index[slot] != EMPTY_SLOT && strcmp(t->records[t->index[slot]].uuid, uuid) != 0)
        slot = (slot + 1) & (t->n_slots - 1);
    return slot;
}

static void
rebuild_index(struct tracker *t)
{
    for (size_t s = 0; s < t->n_slots; s++)
        t->index[s] = EMPTY_SLOT;
    for (size_t i = 0; i < t->n_records; i++)
        t->index[slot_of(t, t->records[i].uuid)] = (uint32_t)i;
}

static void
grow(struct tracker *t)
{
    t->cap_records = t->cap_records ? t->cap_records * 2 : 64;
    t->records = util_xrealloc(t->records, t->cap_records, sizeof(*t->records));
    t->n_slots = t->cap_records * 2;
    t->index = util_xrealloc(t->index, t->n_slots, sizeof(*t->index));
    rebuild_index(t);
}

struct tracker *
tracker_new(uint64_t stuck_after_ms, uint64_t retry_after_ms)
{
    struct tracker *t = util_xcalloc(1, sizeof(*t));
    tracker_set_timeouts(t, stuck_after_ms, retry_after_ms);
    grow(t);
    return t;
}

void
tracker_destroy(struct tracker **tracker)
{
    if (!tracker || !*tracker)
        return;
    free((*tracker)->records);
    free((*tracker)->index);
    free(*tracker);
    *tracker = NULL;
}

void
tracker_set_timeouts(struct tracker *t, uint64_t stuck_after_ms, uint64_t retry_after_ms)
{
    t->stuck_after_ms = stuck_after_ms;
    t->retry_after_ms = retry_after_ms;
}

void
tracker_begin_round(struct tracker *t, size_t n_vms)
{
    while (t->cap_records < t->n_records + n_vms)
        grow(t);
    for (size_t i = 0; i < t->n_records; i++)
        t->records[i].vm.seen = false;
}

static struct tracker_vm *
find_or_add(struct tracker *t, const char *uuid)
{
    size_t slot = slot_of(t, uuid);

    if (t->index[slot] != EMPTY_SLOT)
        return &t->records[t->index[slot]].vm;
    assert(t->n_records < t->cap_records); /* tracker_begin_round() made room */
    struct record *r = &t->records[t->n_records];
    memset(r, 0, sizeof(*r));
    strncpy(r->uuid, uuid, sizeof(r->uuid) - 1);
    t->index[slot] = (uint32_t)t->n_records++;
    return &r->vm;
}

static uint64_t
distance(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

/* A grow arrived: how long after the sample it was decided on. */
static void
note_grow_arrived(struct tracker *t, struct tracker_vm *vm, uint64_t now)
{
    if (!vm->grow_sample_ms)
        return;
    uint64_t delay = now > vm->grow_sample_ms ? now - vm->grow_sample_ms : 0;
    /* An average over about four grows: steady, yet quick to follow a slower host. */
    t->grow_delay_ms = t->grow_delay_ms ? (3 * t->grow_delay_ms + delay) / 4 : delay;
    vm->grow_sample_ms = 0;
}

/* A VM with a target: did it reach it, come closer, or sit still for too long? */
static enum tracker_change
follow_balloon(struct tracker *t, struct tracker_vm *vm, uint64_t actual_kib, uint64_t now)
{
    uint64_t d = distance(vm->target_kib, actual_kib);
    bool was_stuck = vm->stuck;

    if (d <= REACHED_KIB) {
        bool arrived = vm->distance_kib > REACHED_KIB; /* news only the first time */
        note_grow_arrived(t, vm, now);
        vm->distance_kib = d;
        vm->stuck = false;
        vm->progress_ms = now;
        if (was_stuck)
            return TRACKER_RECOVERED;
        return arrived ? TRACKER_REACHED : TRACKER_NO_CHANGE;
    }
    if (d < vm->distance_kib) {
        vm->distance_kib = d;
        vm->progress_ms = now;
        vm->stuck = false;
        return was_stuck ? TRACKER_RECOVERED : TRACKER_NO_CHANGE;
    }
    if (vm->stuck && now - vm->stuck_ms >= t->retry_after_ms) {
        vm->target_kib = 0; /* plan it afresh from where the balloon really is */
        vm->stuck = false;
        return TRACKER_RETRY;
    }
    if (!vm->stuck && now - vm->progress_ms >= t->stuck_after_ms) {
        vm->stuck = true;
        vm->stuck_ms = now;
        return TRACKER_STUCK;
    }
    return TRACKER_NO_CHANGE;
}

enum tracker_change
tracker_observe(struct tracker *t,
                const char *uuid,
                uint64_t actual_kib,
                uint64_t now_ms,
                struct tracker_vm **out)
{
    struct tracker_vm *vm = find_or_add(t, uuid);

    vm->seen = true;
    *out = vm;
    if (vm->target_kib == 0)
        return TRACKER_NO_CHANGE;
    return follow_balloon(t, vm, actual_kib, now_ms);
}

bool
tracker_heading(const struct tracker_vm *vm, uint64_t actual_kib)
{
    return vm->target_kib != 0 && distance(vm->target_kib, actual_kib) > REACHED_KIB;
}

void
tracker_seed(struct tracker *t, const char *uuid, uint64_t target_kib, uint64_t now_ms)
{
    while (t->cap_records < t->n_records + 1)
        grow(t);
    struct tracker_vm *vm = find_or_add(t, uuid);
    vm->target_kib = target_kib;
    vm->set_ms = now_ms;
    vm->progress_ms = now_ms;
    vm->distance_kib = UINT64_MAX; /* unknown until observed: any distance is progress */
}

void
tracker_set_target(struct tracker_vm *vm, uint64_t target_kib, uint64_t actual_kib, uint64_t now_ms)
{
    bool same = vm->target_kib == target_kib;

    if (target_kib < actual_kib)
        vm->grow_sample_ms = 0; /* a shrink: no grow to time any more */
    vm->target_kib = target_kib;
    vm->set_ms = now_ms;
    if (!same) {
        /* A new target is a new journey: measure progress from here. */
        vm->distance_kib = distance(target_kib, actual_kib);
        vm->progress_ms = now_ms;
    }
}

void
tracker_note_memory(struct tracker_vm *vm, uint64_t actual_kib, uint64_t rss_kib, uint64_t now_ms)
{
    if (actual_kib != vm->last_actual_kib)
        vm->moved_ms = now_ms;
    vm->last_actual_kib = actual_kib;
    if (!vm->has_memory_ref) {
        vm->untouched_kib = util_sub_sat(actual_kib, rss_kib);
        vm->has_memory_ref = true;
    } else if (actual_kib < vm->ref_actual_kib && now_ms - vm->moved_ms < TRACKER_SETTLE_MS) {
        return; /* a shrink: wait for the process's RSS to follow the balloon */
    } else {
        /* Signed: the balloon and the process both move either way. Values < 2^62. */
        int64_t debt = (int64_t)vm->untouched_kib +
                       ((int64_t)actual_kib - (int64_t)vm->ref_actual_kib) -
                       ((int64_t)rss_kib - (int64_t)vm->ref_rss_kib);
        vm->untouched_kib = debt > 0 ? (uint64_t)debt : 0;
    }
    vm->ref_actual_kib = actual_kib;
    vm->ref_rss_kib = rss_kib;
}

bool
tracker_note_stats(struct tracker_vm *vm, uint64_t stamp_ms, uint64_t used_kib, uint64_t now_ms)
{
    if (stamp_ms == 0 || stamp_ms == vm->stats_stamp_ms)
        return false;
    if (vm->stats_stamp_ms && stamp_ms > vm->stats_stamp_ms) {
        uint64_t dt = stamp_ms - vm->stats_stamp_ms;
        uint64_t grown = util_sub_sat(used_kib, vm->used_kib);
        uint64_t rate = grown > UINT64_MAX / 1000u ? UINT64_MAX : grown * 1000u / dt;
        if (rate < RATE_NOISE_KIB_S)
            rate = 0;
        /* Fast up, so a hog is fed at once; halving per sample once it stops. */
        vm->rate_kib_s = util_max_u64(rate, (vm->rate_kib_s + rate) / 2);
    }
    vm->stats_stamp_ms = stamp_ms;
    vm->sample_seen_ms = now_ms;
    vm->used_kib = used_kib;
    return true;
}

void
tracker_note_grow(struct tracker_vm *vm)
{
    if (!vm->grow_sample_ms)
        vm->grow_sample_ms = vm->sample_seen_ms;
}

uint64_t
tracker_grow_delay_ms(const struct tracker *t, uint64_t fallback_ms)
{
    return t->grow_delay_ms ? t->grow_delay_ms : fallback_ms;
}

bool
tracker_has_new_sample(const struct tracker *t, const char *uuid, uint64_t stamp_ms)
{
    size_t slot = slot_of(t, uuid);

    if (t->index[slot] == EMPTY_SLOT)
        return true;
    return t->records[t->index[slot]].vm.stats_stamp_ms != stamp_ms;
}

size_t
tracker_end_round(struct tracker *t)
{
    size_t kept = 0;

    for (size_t i = 0; i < t->n_records; i++) {
        if (t->records[i].vm.seen)
            t->records[kept++] = t->records[i];
    }
    size_t forgotten = t->n_records - kept;
    t->n_records = kept;
    if (forgotten)
        rebuild_index(t);
    return forgotten;
}

size_t
tracker_count(const struct tracker *t)
{
    return t->n_records;
}

const char *
tracker_change_name(enum tracker_change change)
{
    switch (change) {
    case TRACKER_NO_CHANGE:
        return "none";
    case TRACKER_REACHED:
        return "reached";
    case TRACKER_STUCK:
        return "stuck";
    case TRACKER_RECOVERED:
        return "recovered";
    case TRACKER_RETRY:
        return "retry";
    }
    return "invalid";
}
