/*
 * sim_model.h - the sim's model of a host and its guests (sim_model.c), filled by the scenario
 * loader (sim_scenario.c) and run and read by the port (hv_sim.c). Internal to the
 * memsched_hv_sim target: the agent sees only struct hv, tests and benchmarks hv_sim.h.
 *
 * The model, in steps of at most STEP_MAX_MS of sim time:
 *   Host: available = total - reserved - sum over running VMs of (touched + qemu_overhead)
 *   (saturating at 0): a VM costs the host the guest pages it has touched and QEMU's own
 *   memory, which is also what the port reports as its rss_kib. Not its balloon size: memory
 *   the balloon gives a guest costs the host only once the guest touches it (touch lag).
 *   Touched: starts at touched_mib (default all of initial); grows to what the guest uses
 *   (overhead + used + cache) whenever that is more (freed pages stay backed); with
 *   touch_on_deflate every page the balloon gives back is touched at once; inflating releases
 *   untouched pages first: touched = min(touched, actual). So touched <= actual always.
 *   Guest: overhead = 40 MiB (kernel, fixed), reserve = 32 MiB (what the guest keeps free
 *   whatever happens), fits = actual - overhead - reserve, used = min(wanted, fits);
 *   page cache (reclaimable, dropped first when the workload or the balloon needs room):
 *   "eighth": cache = min(used / 8, fits - used); "fill": it fills free memory down to
 *   FILL_FREE (20 MiB), cache = actual - overhead - used - FILL_FREE (so >= 12 MiB);
 *   unused (MemFree) = actual - overhead - used - cache (>= reserve with "eighth", = FILL_FREE
 *   with "fill"); usable (MemAvailable) = max(0, unused + cache - watermark), watermark =
 *   64 MiB (what the kernel keeps back; an idle real guest shows MemAvailable ~65 MiB below
 *   MemFree).
 *   Balloon: actual moves toward the last target at balloon_mib_per_s. Inflating stops at
 *   used + overhead + reserve: a squeezed guest leaves the balloon short of its target, as a
 *   real one does (FACTS.md). A VM without driver ignores targets; a stuck one never moves.
 *   Workload: "used_mib" sets wanted; a ramp moves wanted linearly; a hog grows wanted at its
 *   rate until the guest refuses (wanted > fits: refused_kib counts the overshoot, wanted is
 *   clipped to what it got) or it reaches limit_mib, holds hold_s (forever when absent), then
 *   frees back to the level before the hog. A hog with "wait" does not give up when refused:
 *   it retries from what it got, at its rate, whenever the guest has room, until its limit.
 *   A later step replaces a running ramp or hog. Shortfalls of steps and ramps (wanted > fits)
 *   count toward refused_kib as they grow.
 *   Stats: published once per stats period, from stats_delay_s after start, never without a
 *   driver; the port reports the last published values, stats_age_ms = now - publish time and
 *   stats_stamp_ms = publish time (sim time; a new value = a new sample).
 *   Counters: below_min_ms adds the step's length while a running VM's unused (true, not
 *   published) is below vm_min_unused, and for the host while available < host_min_unused
 *   (worst_below_min_kib keeps the deepest shortfall); starved_ms adds it while the workload
 *   wants more than the guest holds (a refused hog, a step or ramp above fits).
 *
 * Invariants: every running VM has reserve + overhead <= actual <= max, touched <= actual and
 * unused >= min(reserve, FILL_FREE); the model is deterministic: same scenario, same calls,
 * fake clock -> same state (no random numbers; UUIDs not given are derived from the name by a
 * fixed hash).
 */
#ifndef MEMSCHED_AGENT_SIM_MODEL_H
#define MEMSCHED_AGENT_SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"
#include "util.h"

#define MS_PER_S           1000u
#define STEP_MAX_MS        100u
#define GUEST_OVERHEAD_KIB (40u * UTIL_KIB_PER_MIB)
#define GUEST_RESERVE_KIB  (32u * UTIL_KIB_PER_MIB)
#define CACHE_DIVISOR      8u /* page cache is 1/8 of used, while there is room for it */
/* MemAvailable leaves out what the guest kernel keeps back (zone watermarks, lowmem reserves):
 * an idle 300 MiB guest shows MemAvailable ~65 MiB below MemFree (FACTS.md). */
#define GUEST_WATERMARK_KIB (64u * UTIL_KIB_PER_MIB)
/* A guest whose page cache fills its free memory keeps MemFree at about kswapd's high
 * watermark: tens of MiB on a 0.3-4 GiB guest. */
#define FILL_FREE_KIB (20u * UTIL_KIB_PER_MIB)

enum step_kind {
    STEP_SET,  /* wanted = used_kib */
    STEP_RAMP, /* wanted moves linearly to to_kib over over_ms */
    STEP_HOG,  /* wanted grows at rate until refused or limit, holds, frees */
};

struct step {
    enum step_kind kind;
    uint64_t at_ms;
    uint64_t kib; /* used (SET), target (RAMP), limit (HOG, 0 = none) */
    uint64_t over_ms;
    uint64_t rate_kib_per_s;
    uint64_t hold_ms;
    bool hold_forever;
    bool wait; /* HOG: a refused allocation is retried until it fits, instead of holding */
};

enum cache_mode {
    CACHE_EIGHTH, /* page cache = used / 8 while there is room */
    CACHE_FILL,   /* page cache fills free memory down to FILL_FREE_KIB */
};

enum workload_mode {
    MODE_IDLE,
    MODE_RAMP,
    MODE_HOG_GROW,
    MODE_HOG_HOLD,
};

struct sim_vm {
    /* from the scenario */
    char *name;
    char uuid[HV_UUID_LEN];
    uint64_t max_kib;
    uint64_t initial_kib;
    uint64_t touched_init_kib; /* host-backed part of initial_kib at start */
    uint64_t qemu_overhead_kib;
    enum cache_mode cache_mode;
    uint64_t speed_kib_per_s;
    uint64_t stats_delay_ms;
    uint64_t stuck_after_ms;
    uint64_t start_ms;
    uint64_t stop_ms;
    uint64_t min_kib;
    uint64_t cap_kib;
    uint32_t weight;
    bool has_balloon;
    bool has_driver;
    bool touch_on_deflate; /* the guest writes each page the balloon gives back (no touch lag) */
    bool has_stuck;
    bool has_stop;
    bool managed;
    struct step *steps;
    size_t n_steps;

    /* lifecycle */
    bool running;
    bool stopped;
    uint64_t started_ms;

    /* balloon */
    uint64_t actual_kib;
    uint64_t target_kib;
    uint64_t move_rem;    /* 1/1000 KiB not yet moved: slow balloons keep their exact speed */
    uint64_t touched_kib; /* guest RAM backed by host pages: <= actual_kib */

    /* workload */
    size_t next_step;
    enum workload_mode mode;
    uint64_t wanted_kib;
    uint64_t used_kib;
    uint64_t cache_kib;
    uint64_t unused_kib;
    uint64_t usable_kib;
    uint64_t shortfall_kib; /* wanted - used at the last step */
    uint64_t from_kib;      /* ramp start, or the level before the hog */
    uint64_t grow_kib;      /* a growing hog wants grow_kib + rate x (vm_ms - grow_ms) */
    uint64_t grow_ms;
    const struct step *active;
    uint64_t hold_until_ms;

    /* published guest stats */
    bool has_stats;
    uint64_t pub_unused_kib;
    uint64_t pub_usable_kib;
    uint64_t pub_total_kib; /* MemTotal in that sample */
    uint64_t pub_ms;
    uint64_t next_pub_ms;

    /* outcome */
    uint64_t refused_kib;
    uint64_t below_min_ms;
    uint64_t usable_below_min_ms;
    uint64_t starved_ms;
    uint64_t targets_set;
};

struct sim {
    char *name; /* the scenario file, for messages */
    uint64_t total_kib;
    uint64_t reserved_kib;
    uint64_t duration_ms;
    uint64_t stats_period_ms;
    uint64_t vm_min_unused_kib;
    uint64_t host_min_unused_kib;
    struct sim_vm *vms;
    size_t n_vms;

    uint64_t now_ms;
    uint64_t host_below_min_ms;
    uint64_t host_worst_below_min_kib;
    bool fake_clock;
    double speed;
    uint64_t start_ns;
};


/* One model step from now_ms to now_ms + dt_ms (dt_ms 0: settle the current instant). */
void model_step(struct sim *sim, uint64_t dt_ms);

/* Run the model ms forward, in steps of at most STEP_MAX_MS. */
void model_run(struct sim *sim, uint64_t ms);

/* Real-time mode: bring sim time up to (monotonic now - start) x speed. */
void model_catch_up(struct sim *sim);

/* Nanoseconds on the monotonic clock (real-time mode's reference). */
uint64_t model_mono_ns(void);

bool model_vm_is_stuck(const struct sim_vm *vm, uint64_t now_ms);

/* What the VM's QEMU process holds on the host: the guest RAM it has touched and its own. */
uint64_t model_vm_rss_kib(const struct sim_vm *vm);

uint64_t model_host_available_kib(const struct sim *sim);

struct sim_vm *model_find_vm(struct sim *sim, const char *uuid);

/* Frees the sim and everything the loader gave it; NULL is fine. */
void model_destroy(struct sim **sim);

#endif /* MEMSCHED_AGENT_SIM_MODEL_H */
