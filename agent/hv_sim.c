/*
 * hv_sim.c - the sim backend of the hypervisor port: a modelled host driven by a JSON scenario.
 *
 * It owns the scenario (parsed and validated with jansson, then copied into plain structs) and
 * the model's state. The agent sees it only through struct hv; tests, the demo and the
 * benchmarks also use the functions of hv_sim.h to run time forward and read the outcome.
 *
 * Scenario (tests/scenarios/README.md has the full reference; unknown keys are errors):
 *   { "description": "...",                 optional, free text (allowed in every object)
 *     "host": {"total_mib": 8192, "reserved_mib": 1024},
 *     "duration_s": 120,                    optional, 0 = none; the demo's length
 *     "stats_period_s": 1,                  guest stats period until set_stats_period (0 = none)
 *     "vm_min_unused_mib": 100,             below_min_ms threshold per VM
 *     "host_min_unused_mib": 200,           below_min_ms threshold of the host
 *     "vms": [ {"name": "web", "uuid": "...", "max_mib": 2048, "initial_mib": 1024,
 *               "touched_mib": 1024, "touch_on_deflate": false, "qemu_overhead_mib": 32,
 *               "page_cache": "eighth", "balloon_mib_per_s": 256, "balloon": true,
 *               "driver": true, "stats_delay_s": 0, "stuck_after_s": null, "start_s": 0,
 *               "stop_s": null, "managed": true, "min_mib": 0, "cap_mib": 0, "weight": 0,
 *               "workload": [ {"at_s": 0, "used_mib": 300},
 *                             {"at_s": 10, "ramp_to_mib": 900, "over_s": 20},
 *                             {"at_s": 40, "hog_mib_per_s": 100, "hold_s": 10,
 *                              "limit_mib": 1800, "wait": false} ] } ] }
 *   start_s and stop_s are scenario times; stats_delay_s, stuck_after_s and the workload's at_s
 *   count from the VM's start.
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
#include "hv_sim.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

#define LOG_MODULE "sim"

#define KIB_PER_MIB        1024u
#define MS_PER_S           1000u
#define STEP_MAX_MS        100u
#define GUEST_OVERHEAD_KIB (40u * KIB_PER_MIB)
#define GUEST_RESERVE_KIB  (32u * KIB_PER_MIB)
#define CACHE_DIVISOR      8u /* page cache is 1/8 of used, while there is room for it */
/* MemAvailable leaves out what the guest kernel keeps back (zone watermarks, lowmem reserves):
 * an idle 300 MiB guest shows MemAvailable ~65 MiB below MemFree (FACTS.md). */
#define GUEST_WATERMARK_KIB (64u * KIB_PER_MIB)
/* A guest whose page cache fills its free memory keeps MemFree at about kswapd's high
 * watermark: tens of MiB on a 0.3-4 GiB guest. */
#define FILL_FREE_KIB (20u * KIB_PER_MIB)

/* Scenario bounds: generous, but small enough that no sum or product below can overflow (a ramp
 * multiplies up to 2^30 KiB by up to 2^32 ms). */
#define HOST_MIB_MAX                (UINT64_C(1) << 30) /* 1 PiB */
#define VM_MIB_MIN                  128u                /* more than overhead + reserve */
#define VM_MIB_MAX                  (UINT64_C(1) << 20) /* 1 TiB */
#define RATE_MIB_MAX                65536.0
#define SECONDS_MAX                 (30.0 * 24 * 3600)
#define STATS_PERIOD_MAX            3600u
#define SIM_VMS_MAX                 4096u
#define STEPS_MAX                   1024u
#define SPEED_MAX                   100000.0
#define DEFAULT_SPEED_MIB_PER_S     256u
#define DEFAULT_VM_MIN_UNUSED_MIB   100u
#define DEFAULT_HOST_MIN_UNUSED_MIB 200u
#define DEFAULT_QEMU_OVERHEAD_MIB   32u /* QEMU's own resident memory, beside the guest's RAM */
#define QEMU_OVERHEAD_MIB_MAX       65536u
#define WHERE_VM_LEN                (HV_NAME_MAX + 8) /* vm "NAME" */

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

/* Error context while loading: "<file>: <where>: <key>: <message>". */
struct loader {
    const char *file;
    char where[WHERE_VM_LEN + 48]; /* room for a VM and one of its steps */
    char *err;
    size_t err_len;
};

static const struct hv_ops sim_ops;

static uint64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (!err || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static int fail(struct loader *ld, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct loader *ld, const char *key, const char *fmt, ...)
{
    char msg[HV_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key)
        set_err(ld->err, ld->err_len, "%s: %s: %s: %s", ld->file, ld->where, key, msg);
    else
        set_err(ld->err, ld->err_len, "%s: %s: %s", ld->file, ld->where, msg);
    return -EINVAL;
}

/* ---- scenario loading ---- */

static int
check_keys(struct loader *ld, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *value;

    json_object_foreach(obj, key, value)
    {
        bool known = strcmp(key, "description") == 0;

        for (size_t i = 0; !known && allowed[i]; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return fail(ld, key, "unknown key");
        if (strcmp(key, "description") == 0 && !json_is_string(value))
            return fail(ld, key, "must be a string");
    }
    return 0;
}

/* An integer number of MiB in [min, max] as KiB; def when absent (required: an error). */
static int
get_mib(struct loader *ld,
        json_t *obj,
        const char *key,
        bool required,
        uint64_t min_mib,
        uint64_t max_mib,
        uint64_t def_mib,
        uint64_t *out_kib)
{
    json_t *v = json_object_get(obj, key);
    json_int_t n;

    if (!v) {
        if (required)
            return fail(ld, key, "required key missing");
        *out_kib = def_mib * KIB_PER_MIB;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(ld, key, "must be an integer number of MiB");
    n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min_mib || (uint64_t)n > max_mib)
        return fail(ld, key, "%" JSON_INTEGER_FORMAT " out of range [%" PRIu64 ", %" PRIu64 "]", n,
                    min_mib, max_mib);
    *out_kib = (uint64_t)n * KIB_PER_MIB;
    return 0;
}

/* A number (integer or real) in [min, max]; *present false and *out def when absent or, with
 * nullable, null. */
static int
get_number(struct loader *ld,
           json_t *obj,
           const char *key,
           bool required,
           bool nullable,
           double min,
           double max,
           double def,
           double *out,
           bool *present)
{
    json_t *v = json_object_get(obj, key);
    double x;

    *out = def;
    if (present)
        *present = false;
    if (!v || (nullable && json_is_null(v))) {
        if (required)
            return fail(ld, key, "required key missing");
        return 0;
    }
    if (!json_is_number(v))
        return fail(ld, key, nullable ? "must be a number or null" : "must be a number");
    x = json_number_value(v);
    if (!(x >= min && x <= max))
        return fail(ld, key, "%g out of range [%g, %g]", x, min, max);
    *out = x;
    if (present)
        *present = true;
    return 0;
}

static int
get_seconds_ms(struct loader *ld,
               json_t *obj,
               const char *key,
               bool required,
               bool nullable,
               double min_s,
               double def_s,
               uint64_t *out_ms,
               bool *present)
{
    double s;
    int rc = get_number(ld, obj, key, required, nullable, min_s, SECONDS_MAX, def_s, &s, present);

    if (rc < 0)
        return rc;
    *out_ms = (uint64_t)llround(s * MS_PER_S);
    return 0;
}

static int
get_rate_kib(struct loader *ld,
             json_t *obj,
             const char *key,
             bool required,
             double def_mib,
             uint64_t *out_kib_per_s)
{
    double r;
    int rc = get_number(ld, obj, key, required, false, 1.0 / KIB_PER_MIB, RATE_MIB_MAX, def_mib, &r,
                        NULL);

    if (rc < 0)
        return rc;
    *out_kib_per_s = (uint64_t)llround(r * KIB_PER_MIB);
    return 0;
}

static int
get_bool(struct loader *ld, json_t *obj, const char *key, bool def, bool *out, bool *present)
{
    json_t *v = json_object_get(obj, key);

    *out = def;
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(ld, key, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

static bool
uuid_valid(const char *s)
{
    if (strlen(s) != HV_UUID_LEN - 1)
        return false;
    for (size_t i = 0; i < HV_UUID_LEN - 1; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

static uint64_t
fnv1a64(const char *s, uint64_t seed)
{
    uint64_t h = seed;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* A stable UUID from the name (two FNV-1a hashes), laid out as an RFC 9562 version 8 UUID so
 * that anything parsing UUIDs accepts it. */
static void
uuid_from_name(const char *name, char out[HV_UUID_LEN])
{
    uint64_t hi = fnv1a64(name, UINT64_C(0xcbf29ce484222325));
    uint64_t lo = fnv1a64(name, UINT64_C(0x6d656d7363686564)); /* "memsched" */

    hi = (hi & ~UINT64_C(0xf000)) | UINT64_C(0x8000);
    lo = (lo & ~(UINT64_C(0xc) << 60)) | (UINT64_C(0x8) << 60);
    snprintf(out, HV_UUID_LEN,
             "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64, hi >> 32,
             (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48, lo & UINT64_C(0xffffffffffff));
}

static int
load_step(
    struct loader *ld, json_t *obj, const struct sim_vm *vm, uint64_t prev_at_ms, struct step *step)
{
    static const char *const keys[] = {"at_s",      "used_mib",      "ramp_to_mib",
                                       "over_s",    "hog_mib_per_s", "hold_s",
                                       "limit_mib", "wait",          NULL};
    uint64_t max_mib = vm->max_kib / KIB_PER_MIB;
    bool has_used = json_object_get(obj, "used_mib") != NULL;
    bool has_ramp = json_object_get(obj, "ramp_to_mib") != NULL;
    bool has_hog = json_object_get(obj, "hog_mib_per_s") != NULL;
    bool present;
    int rc;

    if (!json_is_object(obj))
        return fail(ld, NULL, "must be an object");
    rc = check_keys(ld, obj, keys);
    if (rc < 0)
        return rc;
    rc = get_seconds_ms(ld, obj, "at_s", true, false, 0, 0, &step->at_ms, NULL);
    if (rc < 0)
        return rc;
    if (step->at_ms < prev_at_ms)
        return fail(ld, "at_s", "steps must be in time order (earlier than the step before)");
    if ((int)has_used + (int)has_ramp + (int)has_hog != 1)
        return fail(ld, NULL, "needs exactly one of used_mib, ramp_to_mib, hog_mib_per_s");
    if (!has_ramp && json_object_get(obj, "over_s"))
        return fail(ld, "over_s", "only with ramp_to_mib");
    if (!has_hog && json_object_get(obj, "hold_s"))
        return fail(ld, "hold_s", "only with hog_mib_per_s");
    if (!has_hog && json_object_get(obj, "limit_mib"))
        return fail(ld, "limit_mib", "only with hog_mib_per_s");
    if (!has_hog && json_object_get(obj, "wait"))
        return fail(ld, "wait", "only with hog_mib_per_s");

    if (has_used) {
        step->kind = STEP_SET;
        return get_mib(ld, obj, "used_mib", true, 0, max_mib, 0, &step->kib);
    }
    if (has_ramp) {
        step->kind = STEP_RAMP;
        rc = get_mib(ld, obj, "ramp_to_mib", true, 0, max_mib, 0, &step->kib);
        if (rc < 0)
            return rc;
        rc = get_seconds_ms(ld, obj, "over_s", true, false, 0.001, 0, &step->over_ms, NULL);
        if (rc == 0 && step->over_ms == 0)
            step->over_ms = 1;
        return rc;
    }
    step->kind = STEP_HOG;
    rc = get_rate_kib(ld, obj, "hog_mib_per_s", true, 0, &step->rate_kib_per_s);
    if (rc < 0)
        return rc;
    rc = get_seconds_ms(ld, obj, "hold_s", false, true, 0, 0, &step->hold_ms, &present);
    if (rc < 0)
        return rc;
    step->hold_forever = !present;
    rc = get_bool(ld, obj, "wait", false, &step->wait, NULL);
    if (rc < 0)
        return rc;
    return get_mib(ld, obj, "limit_mib", false, 1, max_mib, 0, &step->kib);
}

static int
load_vm(struct loader *ld, json_t *obj, size_t index, struct sim_vm *vm)
{
    static const char *const keys[] = {
        "name",     "uuid",        "max_mib",          "initial_mib",       "balloon_mib_per_s",
        "balloon",  "driver",      "stats_delay_s",    "stuck_after_s",     "start_s",
        "stop_s",   "managed",     "min_mib",          "cap_mib",           "weight",
        "workload", "touched_mib", "touch_on_deflate", "qemu_overhead_mib", "page_cache",
        NULL};
    json_t *name = json_object_get(obj, "name");
    json_t *uuid;
    json_t *workload;
    json_t *weight;
    json_t *cache;
    double stop_s;
    int rc;

    snprintf(ld->where, sizeof(ld->where), "vms[%zu]", index);
    if (!json_is_object(obj))
        return fail(ld, NULL, "must be an object");
    if (!name)
        return fail(ld, "name", "required key missing");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) >= HV_NAME_MAX)
        return fail(ld, "name", "must be a string of 1 to %d characters", HV_NAME_MAX - 1);
    if (strlen(json_string_value(name)) != json_string_length(name))
        return fail(ld, "name", "must not contain NUL");
    vm->name = util_xstrdup(json_string_value(name));
    snprintf(ld->where, sizeof(ld->where), "vm \"%s\"", vm->name);

    rc = check_keys(ld, obj, keys);
    if (rc < 0)
        return rc;

    uuid = json_object_get(obj, "uuid");
    if (uuid) {
        if (!json_is_string(uuid) || !uuid_valid(json_string_value(uuid)))
            return fail(ld, "uuid", "must be a UUID string (8-4-4-4-12 hex digits)");
        snprintf(vm->uuid, sizeof(vm->uuid), "%s", json_string_value(uuid));
    } else {
        uuid_from_name(vm->name, vm->uuid);
    }

    rc = get_mib(ld, obj, "max_mib", true, VM_MIB_MIN, VM_MIB_MAX, 0, &vm->max_kib);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, obj, "initial_mib", false, VM_MIB_MIN, vm->max_kib / KIB_PER_MIB,
                 vm->max_kib / KIB_PER_MIB, &vm->initial_kib);
    if (rc < 0)
        return rc;
    rc = get_rate_kib(ld, obj, "balloon_mib_per_s", false, DEFAULT_SPEED_MIB_PER_S,
                      &vm->speed_kib_per_s);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, obj, "touched_mib", false, 0, vm->initial_kib / KIB_PER_MIB,
                 vm->initial_kib / KIB_PER_MIB, &vm->touched_init_kib);
    if (rc < 0)
        return rc;
    rc = get_bool(ld, obj, "touch_on_deflate", false, &vm->touch_on_deflate, NULL);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, obj, "qemu_overhead_mib", false, 0, QEMU_OVERHEAD_MIB_MAX,
                 DEFAULT_QEMU_OVERHEAD_MIB, &vm->qemu_overhead_kib);
    if (rc < 0)
        return rc;
    cache = json_object_get(obj, "page_cache");
    vm->cache_mode = CACHE_EIGHTH;
    if (cache) {
        const char *mode = json_is_string(cache) ? json_string_value(cache) : "";

        if (json_is_string(cache) && strlen(mode) != json_string_length(cache))
            mode = ""; /* an embedded NUL: neither */
        if (strcmp(mode, "fill") == 0)
            vm->cache_mode = CACHE_FILL;
        else if (strcmp(mode, "eighth") != 0)
            return fail(ld, "page_cache", "must be \"eighth\" or \"fill\"");
    }

    rc = get_bool(ld, obj, "balloon", true, &vm->has_balloon, NULL);
    if (rc < 0)
        return rc;
    rc = get_bool(ld, obj, "driver", vm->has_balloon, &vm->has_driver, NULL);
    if (rc < 0)
        return rc;
    if (!vm->has_balloon && vm->has_driver)
        return fail(ld, "driver", "a guest driver needs a balloon device (balloon is false)");
    /* Without a balloon device, libvirt runs the guest at its maximum. */
    if (!vm->has_balloon && vm->initial_kib != vm->max_kib)
        return fail(ld, "initial_mib", "must equal max_mib without a balloon device");

    rc = get_seconds_ms(ld, obj, "stats_delay_s", false, false, 0, 0, &vm->stats_delay_ms, NULL);
    if (rc < 0)
        return rc;
    rc = get_seconds_ms(ld, obj, "stuck_after_s", false, true, 0, 0, &vm->stuck_after_ms,
                        &vm->has_stuck);
    if (rc < 0)
        return rc;
    rc = get_seconds_ms(ld, obj, "start_s", false, false, 0, 0, &vm->start_ms, NULL);
    if (rc < 0)
        return rc;
    rc = get_number(ld, obj, "stop_s", false, true, 0, SECONDS_MAX, 0, &stop_s, &vm->has_stop);
    if (rc < 0)
        return rc;
    vm->stop_ms = (uint64_t)llround(stop_s * MS_PER_S);
    if (vm->has_stop && vm->stop_ms <= vm->start_ms)
        return fail(ld, "stop_s", "must be after start_s");

    rc = get_bool(ld, obj, "managed", true, &vm->managed, NULL);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, obj, "min_mib", false, 0, vm->max_kib / KIB_PER_MIB, 0, &vm->min_kib);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, obj, "cap_mib", false, 0, vm->max_kib / KIB_PER_MIB, 0, &vm->cap_kib);
    if (rc < 0)
        return rc;
    if (vm->cap_kib && vm->min_kib > vm->cap_kib)
        return fail(ld, "min_mib", "must not exceed cap_mib");
    weight = json_object_get(obj, "weight");
    if (weight) {
        if (!json_is_integer(weight) || json_integer_value(weight) < 0 ||
            json_integer_value(weight) > SCHED_WEIGHT_MAX)
            return fail(ld, "weight", "must be an integer in [0, %u]", SCHED_WEIGHT_MAX);
        vm->weight = (uint32_t)json_integer_value(weight);
    }

    workload = json_object_get(obj, "workload");
    if (workload) {
        size_t i;
        json_t *step;
        char where[WHERE_VM_LEN];

        if (!json_is_array(workload))
            return fail(ld, "workload", "must be an array of steps");
        if (json_array_size(workload) > STEPS_MAX)
            return fail(ld, "workload", "more than %u steps", STEPS_MAX);
        vm->steps = util_xcalloc(json_array_size(workload), sizeof(*vm->steps));
        snprintf(where, sizeof(where), "vm \"%s\"", vm->name);
        json_array_foreach(workload, i, step)
        {
            snprintf(ld->where, sizeof(ld->where), "%s: workload[%zu]", where, i);
            rc = load_step(ld, step, vm, i ? vm->steps[i - 1].at_ms : 0, &vm->steps[i]);
            if (rc < 0)
                return rc;
            vm->n_steps++;
        }
        snprintf(ld->where, sizeof(ld->where), "vm \"%s\"", vm->name);
    }
    return 0;
}

static int
load_scenario(struct loader *ld, json_t *root, struct sim *sim)
{
    static const char *const top_keys[] = {
        "host", "duration_s", "stats_period_s", "vm_min_unused_mib", "host_min_unused_mib",
        "vms",  NULL};
    static const char *const host_keys[] = {"total_mib", "reserved_mib", NULL};
    json_t *host;
    json_t *vms;
    json_t *vm;
    json_t *period;
    size_t i;
    int rc;

    snprintf(ld->where, sizeof(ld->where), "scenario");
    if (!json_is_object(root))
        return fail(ld, NULL, "must be a JSON object");
    rc = check_keys(ld, root, top_keys);
    if (rc < 0)
        return rc;
    rc = get_seconds_ms(ld, root, "duration_s", false, false, 0, 0, &sim->duration_ms, NULL);
    if (rc < 0)
        return rc;
    period = json_object_get(root, "stats_period_s");
    if (period && (!json_is_integer(period) || json_integer_value(period) < 0 ||
                   json_integer_value(period) > STATS_PERIOD_MAX))
        return fail(ld, "stats_period_s", "must be an integer in [0, %u] (0 = no stats)",
                    STATS_PERIOD_MAX);
    sim->stats_period_ms = period ? (uint64_t)json_integer_value(period) * MS_PER_S : MS_PER_S;
    rc = get_mib(ld, root, "vm_min_unused_mib", false, 0, VM_MIB_MAX, DEFAULT_VM_MIN_UNUSED_MIB,
                 &sim->vm_min_unused_kib);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, root, "host_min_unused_mib", false, 0, HOST_MIB_MAX,
                 DEFAULT_HOST_MIN_UNUSED_MIB, &sim->host_min_unused_kib);
    if (rc < 0)
        return rc;

    host = json_object_get(root, "host");
    if (!host)
        return fail(ld, "host", "required key missing");
    snprintf(ld->where, sizeof(ld->where), "host");
    if (!json_is_object(host))
        return fail(ld, NULL, "must be an object");
    rc = check_keys(ld, host, host_keys);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, host, "total_mib", true, 1, HOST_MIB_MAX, 0, &sim->total_kib);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, host, "reserved_mib", false, 0, sim->total_kib / KIB_PER_MIB - 1, 0,
                 &sim->reserved_kib);
    if (rc < 0)
        return rc;

    snprintf(ld->where, sizeof(ld->where), "scenario");
    vms = json_object_get(root, "vms");
    if (!vms)
        return fail(ld, "vms", "required key missing");
    if (!json_is_array(vms))
        return fail(ld, "vms", "must be an array of VMs");
    if (json_array_size(vms) > SIM_VMS_MAX)
        return fail(ld, "vms", "more than %u VMs", SIM_VMS_MAX);
    sim->vms = util_xcalloc(json_array_size(vms), sizeof(*sim->vms));
    json_array_foreach(vms, i, vm)
    {
        /* Counted first, so that a VM failing half-way is still freed. */
        sim->n_vms++;
        rc = load_vm(ld, vm, i, &sim->vms[i]);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sim->vms[j].name, sim->vms[i].name) == 0)
                return fail(ld, "name", "duplicate name");
            if (strcasecmp(sim->vms[j].uuid, sim->vms[i].uuid) == 0)
                return fail(ld, "uuid", "%s is also the uuid of vm \"%s\"", sim->vms[i].uuid,
                            sim->vms[j].name);
        }
    }
    return 0;
}

/* ---- the model ---- */

static uint64_t
vm_fits_kib(const struct sim_vm *vm)
{
    return util_sub_sat(vm->actual_kib, GUEST_OVERHEAD_KIB + GUEST_RESERVE_KIB);
}

static bool
vm_is_stuck(const struct sim_vm *vm, uint64_t now_ms)
{
    return vm->running && vm->has_stuck && now_ms - vm->started_ms >= vm->stuck_after_ms;
}

/* What the VM's QEMU process holds on the host: the guest RAM it has touched and its own. */
static uint64_t
vm_rss_kib(const struct sim_vm *vm)
{
    return vm->touched_kib + vm->qemu_overhead_kib;
}

static uint64_t
host_available_kib(const struct sim *sim)
{
    uint64_t avail = util_sub_sat(sim->total_kib, sim->reserved_kib);

    for (size_t i = 0; i < sim->n_vms; i++)
        if (sim->vms[i].running)
            avail = util_sub_sat(avail, vm_rss_kib(&sim->vms[i]));
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
              vm->actual_kib / KIB_PER_MIB);
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

    if (!vm->has_balloon || !vm->has_driver || vm->target_kib == 0 || vm_is_stuck(vm, now_ms))
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
                      fits_kib / KIB_PER_MIB);
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

/* One model step from now_ms to now_ms + dt_ms (dt_ms 0: settle the current instant). */
static void
sim_step(struct sim *sim, uint64_t dt_ms)
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
    avail_kib = host_available_kib(sim);
    if (avail_kib < sim->host_min_unused_kib) {
        sim->host_below_min_ms += dt_ms;
        sim->host_worst_below_min_kib =
            util_max_u64(sim->host_worst_below_min_kib, sim->host_min_unused_kib - avail_kib);
    }
}

static void
sim_run(struct sim *sim, uint64_t ms)
{
    while (ms > 0) {
        uint64_t dt_ms = util_min_u64(ms, STEP_MAX_MS);
        sim_step(sim, dt_ms);
        ms -= dt_ms;
    }
}

/* Real-time mode: bring sim time up to (monotonic now - start) x speed. */
static void
sim_catch_up(struct sim *sim)
{
    double want_ms;

    if (sim->fake_clock)
        return;
    want_ms = (double)(mono_ns() - sim->start_ns) / 1e6 * sim->speed;
    if (want_ms > (double)sim->now_ms)
        sim_run(sim, (uint64_t)want_ms - sim->now_ms);
}

static struct sim_vm *
sim_find(struct sim *sim, const char *uuid)
{
    for (size_t i = 0; i < sim->n_vms; i++)
        if (strcasecmp(sim->vms[i].uuid, uuid) == 0)
            return &sim->vms[i];
    return NULL;
}

/* ---- the port ---- */

static int
sim_sample(void *ctx, struct hv_host *host, struct hv_vm *vms, size_t cap, size_t *n_vms)
{
    struct sim *sim = ctx;
    size_t n = 0;

    sim_catch_up(sim);
    for (size_t i = 0; i < sim->n_vms; i++)
        n += sim->vms[i].running;
    *n_vms = n;
    if (n > cap)
        return -ENOSPC;

    host->total_kib = sim->total_kib;
    host->available_kib = host_available_kib(sim);
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
        out->rss_kib = vm_rss_kib(vm);
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

    sim_catch_up(sim);
    vm = sim_find(sim, uuid);
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
        return -EINVAL;
    sim_catch_up(sim);
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
sim_destroy(struct sim **simp)
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

static void
sim_close(void *ctx)
{
    struct sim *sim = ctx;
    sim_destroy(&sim);
}

static const struct hv_ops sim_ops = {
    .name = "sim",
    .sample = sim_sample,
    .set_target = sim_set_target,
    .set_stats_period = sim_set_stats_period,
    .close = sim_close,
};

/* ---- opening ---- */

/* Takes ownership of root. */
static int
sim_build(json_t *root, const char *name, double speed, struct hv **out, char *err, size_t err_len)
{
    struct sim *sim = util_xcalloc(1, sizeof(*sim));
    struct loader ld = {.file = name, .err = err, .err_len = err_len};
    struct hv *hv;
    int rc;

    sim->name = util_xstrdup(name);
    rc = load_scenario(&ld, root, sim);
    if (rc < 0)
        goto cleanup;
    sim->speed = speed;
    sim->start_ns = mono_ns();
    sim_step(sim, 0); /* VMs starting at 0 are up, with their first stats when due */
    log_info(LOG_MODULE, "event=open scenario=%s vms=%zu speed=%g", name, sim->n_vms, speed);
    hv = util_xcalloc(1, sizeof(*hv));
    hv->ops = &sim_ops;
    hv->ctx = sim;
    *out = hv;
    sim = NULL;
cleanup:
    json_decref(root);
    sim_destroy(&sim);
    return rc;
}

static int
parse_error(const json_error_t *jerr, const char *name, char *err, size_t err_len)
{
    if (json_error_code(jerr) == json_error_cannot_open_file) {
        set_err(err, err_len, "%s: cannot open: %s", name, jerr->text);
        return -ENOENT;
    }
    set_err(err, err_len, "%s:%d:%d: malformed JSON: %s", name, jerr->line, jerr->column,
            jerr->text);
    return -EINVAL;
}

int
sim_open_json(const char *json, const char *name, struct hv **out, char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *root;

    *out = NULL;
    root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return parse_error(&jerr, name, err, err_len);
    return sim_build(root, name, 1.0, out, err, err_len);
}

/* "FILE[?speed=N]": the query is whatever follows the last '?'. */
int
hv_sim_open(const char *path, struct hv **out, char *err, size_t err_len)
{
    const char *query = strrchr(path, '?');
    char *file = NULL;
    double speed = 1.0;
    json_error_t jerr;
    json_t *root;
    int rc = 0;

    *out = NULL;
    file = query ? util_xstrndup(path, (size_t)(query - path)) : util_xstrdup(path);
    if (query) {
        char *end = NULL;

        if (strncmp(query + 1, "speed=", 6) != 0) {
            set_err(err, err_len, "sim:%s: unknown option \"%s\" (only speed=N)", path, query + 1);
            rc = -EINVAL;
            goto cleanup;
        }
        errno = 0;
        speed = strtod(query + 7, &end);
        if (errno || end == query + 7 || *end || !(speed > 0 && speed <= SPEED_MAX)) {
            set_err(err, err_len, "sim:%s: speed must be a number in (0, %g]", path, SPEED_MAX);
            rc = -EINVAL;
            goto cleanup;
        }
    }
    if (file[0] == '\0') {
        set_err(err, err_len, "sim: no scenario file given (sim:FILE[?speed=N])");
        rc = -EINVAL;
        goto cleanup;
    }
    root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = parse_error(&jerr, file, err, err_len);
        goto cleanup;
    }
    rc = sim_build(root, file, speed, out, err, err_len);
cleanup:
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
    sim_run(sim, ms);
}

uint64_t
sim_now_ms(struct sim *sim)
{
    sim_catch_up(sim);
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
    sim_catch_up(sim);
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
    view->rss_kib = vm->running ? vm_rss_kib(vm) : 0;
    view->refused_kib = vm->refused_kib;
    view->below_min_ms = vm->below_min_ms;
    view->usable_below_min_ms = vm->usable_below_min_ms;
    view->starved_ms = vm->starved_ms;
    view->targets_set = vm->targets_set;
    view->running = vm->running;
    view->has_balloon = vm->has_balloon;
    view->has_driver = vm->has_driver;
    view->stuck = vm_is_stuck(vm, sim->now_ms);
}

void
sim_host_view(struct sim *sim, struct sim_host_view *view)
{
    sim_catch_up(sim);
    view->total_kib = sim->total_kib;
    view->available_kib = host_available_kib(sim);
    view->below_min_ms = sim->host_below_min_ms;
    view->worst_below_min_kib = sim->host_worst_below_min_kib;
}
