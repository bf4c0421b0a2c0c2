/*
 * sim_scenario.c - a sim scenario: JSON parsed and validated with jansson, then copied into the
 * model's plain structs (sim_model.h), so nothing past loading sees JSON.
 *
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
 */
#include "sim_scenario.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "util.h"

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
#define DEFAULT_SPEED_MIB_PER_S     256u
#define DEFAULT_VM_MIN_UNUSED_MIB   100u
#define DEFAULT_HOST_MIN_UNUSED_MIB 200u
#define DEFAULT_QEMU_OVERHEAD_MIB   32u /* QEMU's own resident memory, beside the guest's RAM */
#define QEMU_OVERHEAD_MIB_MAX       65536u
#define WHERE_VM_LEN                (HV_NAME_MAX + 8) /* vm "NAME" */

/* Error context while loading: "<file>: <where>: <key>: <message>". */
struct loader {
    const char *file;
    char where[WHERE_VM_LEN + 48]; /* room for a VM and one of its steps */
    char *err;
    size_t err_len;
};

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
        util_fail(0, ld->err, ld->err_len, "%s: %s: %s: %s", ld->file, ld->where, key, msg);
    else
        util_fail(0, ld->err, ld->err_len, "%s: %s: %s", ld->file, ld->where, msg);
    return -EINVAL;
}

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
        *out_kib = def_mib * UTIL_KIB_PER_MIB;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(ld, key, "must be an integer number of MiB");
    n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min_mib || (uint64_t)n > max_mib)
        return fail(ld, key, "%" JSON_INTEGER_FORMAT " out of range [%" PRIu64 ", %" PRIu64 "]", n,
                    min_mib, max_mib);
    *out_kib = (uint64_t)n * UTIL_KIB_PER_MIB;
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
    int rc = get_number(ld, obj, key, required, false, 1.0 / UTIL_KIB_PER_MIB, RATE_MIB_MAX,
                        def_mib, &r, NULL);

    if (rc < 0)
        return rc;
    *out_kib_per_s = (uint64_t)llround(r * UTIL_KIB_PER_MIB);
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

    for (; *s; s++)
        h = util_hash_mix(h, (unsigned char)*s);
    return h;
}

/* A stable UUID from the name (two FNV-1a hashes), laid out as an RFC 9562 version 8 UUID so
 * that anything parsing UUIDs accepts it. */
static void
uuid_from_name(const char *name, char out[HV_UUID_LEN])
{
    uint64_t hi = fnv1a64(name, UTIL_HASH_SEED);
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
    uint64_t max_mib = vm->max_kib / UTIL_KIB_PER_MIB;
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
    rc = get_mib(ld, obj, "initial_mib", false, VM_MIB_MIN, vm->max_kib / UTIL_KIB_PER_MIB,
                 vm->max_kib / UTIL_KIB_PER_MIB, &vm->initial_kib);
    if (rc < 0)
        return rc;
    rc = get_rate_kib(ld, obj, "balloon_mib_per_s", false, DEFAULT_SPEED_MIB_PER_S,
                      &vm->speed_kib_per_s);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, obj, "touched_mib", false, 0, vm->initial_kib / UTIL_KIB_PER_MIB,
                 vm->initial_kib / UTIL_KIB_PER_MIB, &vm->touched_init_kib);
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
    rc = get_mib(ld, obj, "min_mib", false, 0, vm->max_kib / UTIL_KIB_PER_MIB, 0, &vm->min_kib);
    if (rc < 0)
        return rc;
    rc = get_mib(ld, obj, "cap_mib", false, 0, vm->max_kib / UTIL_KIB_PER_MIB, 0, &vm->cap_kib);
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
    rc = get_mib(ld, host, "reserved_mib", false, 0, sim->total_kib / UTIL_KIB_PER_MIB - 1, 0,
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

static int
load(json_t *root, const char *name, struct sim *sim, char *err, size_t err_len)
{
    struct loader ld = {.file = name, .err = err, .err_len = err_len};
    int rc;

    sim->name = util_xstrdup(name);
    rc = load_scenario(&ld, root, sim);
    json_decref(root);
    return rc;
}

static int
parse_error(const json_error_t *jerr, const char *name, char *err, size_t err_len)
{
    if (json_error_code(jerr) == json_error_cannot_open_file)
        return util_fail(-ENOENT, err, err_len, "%s: cannot open: %s", name, jerr->text);
    return util_fail(-EINVAL, err, err_len, "%s:%d:%d: malformed JSON: %s", name, jerr->line,
                     jerr->column, jerr->text);
}

int
scenario_from_text(const char *json, const char *name, struct sim *sim, char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);

    if (!root)
        return parse_error(&jerr, name, err, err_len);
    return load(root, name, sim, err, err_len);
}

int
scenario_from_file(const char *file, struct sim *sim, char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);

    if (!root)
        return parse_error(&jerr, file, err, err_len);
    return load(root, file, sim, err, err_len);
}
