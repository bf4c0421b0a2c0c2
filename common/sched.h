/*
 * sched.h - the MemoryScheduler core: one round on one host, as a pure function.
 *
 * sched_plan() maps a host snapshot and a policy to a plan. It does no I/O, reads no clock,
 * logs nothing and allocates nothing (all room comes from a struct sched_work made once for the
 * largest VM count), runs in O(n log n), and cannot overflow for KiB values up to 2^50.
 * The same input always gives the same plan.
 *
 * Words used below, per VM:
 *   signal    the demand signal the policy picks: unused_kib or usable_kib
 *   lookahead what the guest will use before a grant set now arrives (policy `predictive`):
 *             rate_kib_s x the host's horizon_ms; 0 when predictive is off
 *   outlook   signal - lookahead (may be negative): the signal the VM will show when a grant
 *             set now arrives. Every threshold below is tested on the outlook.
 *   committed the size the balloon is heading to: target_kib when we set one, else actual_kib
 *   max       min(max_kib, cap_kib when set)
 *   floor     min_kib when set, else the policy's vm_floor_kib
 *
 * The round (DESIGN.md, steps 2-7):
 *  2. Eligibility: unmanaged, no balloon driver, no stats, stale stats, not running, migrating or
 *     an impossible sample (actual_kib 0 or above max_kib) -> left alone with that reason.
 *     A signal above actual is a sample caught between a balloon move and the guest's next
 *     stats: the VM stays managed, is reported in_flight and is not acted on this round.
 *  3. Need: outlook < vm_min_unused -> need = min(grow_target + lookahead - signal,
 *     max - actual), less what is already on its way (committed - actual when positive).
 *     Excess: outlook > vm_excess_unused and not stuck -> release = min(max_release_step,
 *     outlook - vm_min_unused, actual - floor); new target actual - release, and only when that
 *     is below committed (a shrink already in flight is not asked for twice).
 *  4. Supply: needy VMs, most urgent (lowest outlook) first, take from donors, largest outlook
 *     first; each donor gives at most its release. When total need exceeds what donors and the
 *     host can supply, the supply is shared by weight (water-filling: nobody gets more than it
 *     needs, the rest is split in proportion to weight).
 *  5. Host: budget = available - grows in flight (committed - actual > 0, all VMs) - untouched
 *     (memory granted that the guests have not touched yet, all VMs: the host backs a page only
 *     when the guest touches it, so a grant is a debt until then). What donors cannot cover
 *     comes from the host while budget - grant >= host_min_unused. Memory that has not arrived
 *     is never counted on, nor the same memory twice.
 *  6. Reclaim: with reclaim_idle, donor release not taken by VMs returns to the host. Under host
 *     pressure (budget < host_min_unused) nothing comes from the host; the donors first restore
 *     the host's floor (the deficit, less shrinks already on their way back), what they release
 *     beyond that still feeds needy VMs, and the rest returns to the host whatever reclaim_idle
 *     says.
 *  7. Plan: one entry per VM, in apply order: shrinks, then grows, then unchanged.
 */
#ifndef MEMSCHED_COMMON_SCHED_H
#define MEMSCHED_COMMON_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define SCHED_WEIGHT_DEFAULT 100u
#define SCHED_WEIGHT_MAX     1000u
#define SCHED_KIB_MAX        (UINT64_C(1) << 50) /* larger values are clamped to this */
#define SCHED_VMS_MAX        16384u              /* most VMs one round plans for */
#define SCHED_RATE_MAX_KIB_S (UINT64_C(1) << 24) /* 16 GiB/s; faster rates are clamped */
#define SCHED_HORIZON_MAX_MS 60000u              /* longer horizons are clamped */

/* Counterparts of a plan entry, besides a VM index. */
#define SCHED_HOST   (-1)
#define SCHED_NOBODY (-2)

enum sched_vm_state {
    SCHED_VM_RUNNING = 0,
    SCHED_VM_PAUSED,
    SCHED_VM_MIGRATING,
    SCHED_VM_OTHER, /* shutting down, crashed, pmsuspended... */
};

/* What the agent knows of one VM at the start of a round. */
struct sched_vm {
    uint64_t max_kib;       /* the domain's maximum memory */
    uint64_t actual_kib;    /* the balloon's current size */
    uint64_t target_kib;    /* the last target we set; 0 when we set none */
    uint64_t unused_kib;    /* guest MemFree */
    uint64_t usable_kib;    /* guest MemAvailable */
    uint64_t min_kib;       /* per-VM floor override; 0 = the policy's vm_floor */
    uint64_t cap_kib;       /* per-VM cap override; 0 = max_kib */
    uint64_t stats_age_ms;  /* age of the guest's last stats update */
    uint64_t untouched_kib; /* granted to the guest, not yet touched: the host still owes it */
    uint64_t rate_kib_s;    /* how fast the guest's used memory grows; 0 = steady or unknown */
    uint32_t weight;        /* share when contested; 0 = default, above SCHED_WEIGHT_MAX clamped */
    enum sched_vm_state state;
    bool managed;     /* false when the domain's metadata says managed=no */
    bool has_balloon; /* a balloon device exists */
    bool has_unused;  /* the guest reports unused_kib */
    bool has_usable;  /* the guest reports usable_kib */
    bool stuck;       /* the balloon tracker saw it not move toward its target */
};

struct sched_host {
    uint64_t total_kib;
    uint64_t
        available_kib;   /* what the host can give: MemAvailable where known (shmem is not free) */
    uint64_t horizon_ms; /* from a guest's stats sample to a grant's arrival (predictive) */
};

enum sched_reason {
    /* the VM was considered */
    SCHED_REASON_IN_BAND = 0, /* signal within [min, excess], or nothing to do */
    SCHED_REASON_GROW,        /* given memory: from VMs, from the host, or both */
    SCHED_REASON_SHRINK,      /* gave memory to other VMs, the host, or both */
    SCHED_REASON_NEED_UNMET,  /* needed memory, none could be given */
    SCHED_REASON_AT_MAX,      /* needs memory but is at its max */
    SCHED_REASON_IN_FLIGHT,   /* a change is already on its way */
    SCHED_REASON_AT_FLOOR,    /* has excess but cannot release (floor, min unused) */
    SCHED_REASON_STUCK_DONOR, /* has excess but is stuck: not counted on */
    /* the VM was left alone (step 2) */
    SCHED_REASON_UNMANAGED,
    SCHED_REASON_NO_BALLOON,
    SCHED_REASON_NO_STATS,
    SCHED_REASON_STALE_STATS,
    SCHED_REASON_NOT_RUNNING,
    SCHED_REASON_MIGRATING,
    SCHED_REASON_BAD_SAMPLE,
    SCHED_REASON_COUNT,
};

/* One VM's line of the plan. */
struct sched_entry {
    uint32_t vm; /* index into the snapshot */
    enum sched_reason reason;
    int32_t counterpart;     /* VM that gave/took the most, SCHED_HOST, or SCHED_NOBODY */
    uint64_t old_target_kib; /* committed before the round */
    uint64_t new_target_kib; /* == old_target_kib unless GROW or SHRINK */
    uint64_t need_kib;       /* what a needy VM asked for this round */
    uint64_t lookahead_kib;  /* what it is expected to use before a grant arrives */
    uint64_t vm_kib;         /* moved to (GROW) or from (SHRINK) other VMs */
    uint64_t host_kib;       /* moved to (GROW) or from (SHRINK) the host */
};

struct sched_summary {
    uint64_t need_kib;            /* sum of needs */
    uint64_t granted_kib;         /* sum of grows = transferred + host_granted */
    uint64_t transferred_kib;     /* VM to VM */
    uint64_t host_granted_kib;    /* host to VMs */
    uint64_t reclaimed_kib;       /* VMs to host */
    uint64_t host_budget_kib;     /* available - grows in flight - untouched (0 if negative) */
    uint64_t inflight_grow_kib;   /* sum of committed - actual > 0 */
    uint64_t inflight_shrink_kib; /* sum of actual - committed > 0 of balloons not stuck */
    uint64_t untouched_kib;       /* sum of untouched_kib */
    uint64_t host_deficit_kib;    /* host_min_unused - budget when positive */
    uint32_t grows;
    uint32_t shrinks;
    uint32_t skipped;   /* VMs left alone in step 2 */
    bool host_pressure; /* host_deficit_kib > 0 */
};

struct sched_plan {
    struct sched_entry *entries; /* n_vms entries, in apply order; room from sched_work */
    size_t n_entries;
    size_t n_shrinks; /* entries[0, n_shrinks) are shrinks */
    size_t n_grows;   /* entries[n_shrinks, n_shrinks + n_grows) are grows */
    struct sched_summary summary;
};

/* Room for one round over at most capacity VMs; made once, reused every round. */
struct sched_work;

struct sched_work *sched_work_new(size_t capacity);

void sched_work_destroy(struct sched_work **work);

/* Plan one round. policy must have passed policy_validate(). Returns 0, or -E2BIG when n_vms
 * exceeds the work's capacity. plan->entries points into work and lives until the next call. */
int sched_plan(const struct policy *policy,
               const struct sched_host *host,
               const struct sched_vm *vms,
               size_t n_vms,
               struct sched_work *work,
               struct sched_plan *plan);

/* "grow", "stale_stats"... */
const char *sched_reason_name(enum sched_reason reason);

/* True for the reasons of step 2 (the VM was left alone before need and excess). */
bool sched_reason_is_skip(enum sched_reason reason);

#endif /* MEMSCHED_COMMON_SCHED_H */
