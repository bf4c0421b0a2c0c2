/*
 * policy.c - the parameter table, defaults, validation and edge-unit conversion of a policy.
 *
 * The table is the single description of every parameter: its edge name, where it lives in
 * struct policy, its default (the seed's constants) and bounds. Validation, key=value parsing,
 * printing and the docs all read it, so adding a parameter is one row here.
 */
#include "policy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIB_1T  UINT64_C(1048576)  /* 1 TiB in MiB */
#define MIB_16T UINT64_C(16777216) /* 16 TiB in MiB */

static const struct policy_param params[] = {
    {
        .name = "vm_min_unused_mib",
        .kind = POLICY_PARAM_MIB,
        .offset = offsetof(struct policy, vm_min_unused_kib),
        .default_value = 100,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "below this a VM needs memory; a release never leaves less",
    },
    {
        .name = "vm_grow_target_unused_mib",
        .kind = POLICY_PARAM_MIB,
        .offset = offsetof(struct policy, vm_grow_target_unused_kib),
        .default_value = 200,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "a needy VM is grown to leave this much unused (capped by its max)",
    },
    {
        .name = "vm_excess_unused_mib",
        .kind = POLICY_PARAM_MIB,
        .offset = offsetof(struct policy, vm_excess_unused_kib),
        .default_value = 300,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "above this a VM may release",
    },
    {
        .name = "max_release_step_mib",
        .kind = POLICY_PARAM_MIB,
        .offset = offsetof(struct policy, max_release_step_kib),
        .default_value = 64,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "most a VM gives up in one round",
    },
    {
        .name = "host_min_unused_mib",
        .kind = POLICY_PARAM_MIB,
        .offset = offsetof(struct policy, host_min_unused_kib),
        .default_value = 200,
        .min_value = 0,
        .max_value = MIB_16T,
        .help = "the host never gives if it would keep less",
    },
    {
        .name = "vm_floor_mib",
        .kind = POLICY_PARAM_MIB,
        .offset = offsetof(struct policy, vm_floor_kib),
        .default_value = 256,
        .min_value = 0,
        .max_value = MIB_1T,
        .help = "no balloon target below this (a per-VM min overrides)",
    },
    {
        .name = "interval_ms",
        .kind = POLICY_PARAM_U32,
        .offset = offsetof(struct policy, interval_ms),
        .default_value = 1000,
        .min_value = 100,
        .max_value = 3600000,
        .help = "round period; the guest stats period is set to match (1 s minimum)",
    },
    {
        .name = "demand_signal",
        .kind = POLICY_PARAM_DEMAND_SIGNAL,
        .offset = offsetof(struct policy, demand_signal),
        .default_value = POLICY_DEMAND_USABLE,
        .min_value = POLICY_DEMAND_UNUSED,
        .max_value = POLICY_DEMAND_USABLE,
        .help = "unused (guest MemFree, the seed) or usable (guest MemAvailable)",
    },
    {
        .name = "stale_stats_s",
        .kind = POLICY_PARAM_U32,
        .offset = offsetof(struct policy, stale_stats_s),
        .default_value = 5,
        .min_value = 1,
        .max_value = 3600,
        .help = "stats older than this (balloon.last-update) are not acted on",
    },
    {
        .name = "reclaim_idle",
        .kind = POLICY_PARAM_BOOL,
        .offset = offsetof(struct policy, reclaim_idle),
        .default_value = 1,
        .min_value = 0,
        .max_value = 1,
        .help =
            "VMs above the excess threshold return memory to the host even when nobody needs it",
    },
    {
        .name = "predictive",
        .kind = POLICY_PARAM_BOOL,
        .offset = offsetof(struct policy, predictive),
        .default_value = 1,
        .min_value = 0,
        .max_value = 1,
        .help = "grow a VM by its consumption rate x the stats-to-balloon horizon, before it "
                "crosses vm_min_unused (false: the seed's literal rule)",
    },
};

#define N_PARAMS (sizeof(params) / sizeof(params[0]))

static const char *const demand_signal_names[] = {
    [POLICY_DEMAND_UNUSED] = "unused",
    [POLICY_DEMAND_USABLE] = "usable",
};

const struct policy_param *
policy_params(size_t *count)
{
    *count = N_PARAMS;
    return params;
}

const struct policy_param *
policy_param_find(const char *name)
{
    for (size_t i = 0; i < N_PARAMS; i++) {
        if (strcmp(params[i].name, name) == 0)
            return &params[i];
    }
    return NULL;
}

const char *
policy_demand_signal_name(enum policy_demand_signal signal)
{
    if ((unsigned)signal < sizeof(demand_signal_names) / sizeof(demand_signal_names[0]))
        return demand_signal_names[signal];
    return "invalid";
}

/* The parameter's value in edge units (KiB shown as whole MiB). */
static uint64_t
param_load(const struct policy *p, const struct policy_param *param)
{
    const char *field = (const char *)p + param->offset;

    switch (param->kind) {
    case POLICY_PARAM_MIB:
        return *(const uint64_t *)(const void *)field / POLICY_KIB_PER_MIB;
    case POLICY_PARAM_U32:
        return *(const uint32_t *)(const void *)field;
    case POLICY_PARAM_BOOL:
        return *(const bool *)(const void *)field;
    case POLICY_PARAM_DEMAND_SIGNAL:
        return (uint64_t) * (const enum policy_demand_signal *)(const void *)field;
    }
    return 0;
}

static void
param_store(struct policy *p, const struct policy_param *param, uint64_t value)
{
    char *field = (char *)p + param->offset;

    switch (param->kind) {
    case POLICY_PARAM_MIB:
        *(uint64_t *)(void *)field = value * POLICY_KIB_PER_MIB;
        break;
    case POLICY_PARAM_U32:
        *(uint32_t *)(void *)field = (uint32_t)value;
        break;
    case POLICY_PARAM_BOOL:
        *(bool *)(void *)field = value != 0;
        break;
    case POLICY_PARAM_DEMAND_SIGNAL:
        *(enum policy_demand_signal *)(void *)field = (enum policy_demand_signal)value;
        break;
    }
}

void
policy_init_defaults(struct policy *p)
{
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < N_PARAMS; i++)
        param_store(p, &params[i], params[i].default_value);
}

static bool
param_in_bounds(const struct policy *p, const struct policy_param *param)
{
    const char *field = (const char *)p + param->offset;

    if (param->kind == POLICY_PARAM_MIB) {
        /* Whole MiB only: the edges speak MiB, so anything else would not survive a trip. */
        uint64_t kib = *(const uint64_t *)(const void *)field;
        return kib % POLICY_KIB_PER_MIB == 0 && kib >= param->min_value * POLICY_KIB_PER_MIB &&
               kib <= param->max_value * POLICY_KIB_PER_MIB;
    }
    uint64_t value = param_load(p, param);
    return value >= param->min_value && value <= param->max_value;
}

/* Format a KiB value as MiB, with the KiB remainder when it is not a whole MiB. */
static void
format_mib(char *buf, size_t len, uint64_t kib)
{
    if (kib % POLICY_KIB_PER_MIB == 0)
        snprintf(buf, len, "%" PRIu64, kib / POLICY_KIB_PER_MIB);
    else
        snprintf(buf, len, "%" PRIu64 " KiB", kib);
}

int
policy_validate(const struct policy *p, char *err, size_t err_len)
{
    char a[32], b[32];

    for (size_t i = 0; i < N_PARAMS; i++) {
        if (param_in_bounds(p, &params[i]))
            continue;
        policy_get(p, params[i].name, a, sizeof(a));
        snprintf(err, err_len, "policy: %s=%s out of range [%" PRIu64 ", %" PRIu64 "]%s",
                 params[i].name, a, params[i].min_value, params[i].max_value,
                 params[i].kind == POLICY_PARAM_MIB ? " (whole MiB)" : "");
        return -EINVAL;
    }
    if (p->vm_min_unused_kib >= p->vm_grow_target_unused_kib) {
        format_mib(a, sizeof(a), p->vm_min_unused_kib);
        format_mib(b, sizeof(b), p->vm_grow_target_unused_kib);
        snprintf(err, err_len,
                 "policy: vm_min_unused_mib=%s must be below vm_grow_target_unused_mib=%s", a, b);
        return -EINVAL;
    }
    if (p->vm_grow_target_unused_kib > p->vm_excess_unused_kib) {
        format_mib(a, sizeof(a), p->vm_grow_target_unused_kib);
        format_mib(b, sizeof(b), p->vm_excess_unused_kib);
        snprintf(err, err_len,
                 "policy: vm_grow_target_unused_mib=%s must not exceed vm_excess_unused_mib=%s", a,
                 b);
        return -EINVAL;
    }
    /* The guest's stats period follows the interval (1 s at least); stats that are always older
     * than the staleness limit would leave every VM unscheduled. */
    uint64_t period_ms = p->interval_ms < 1000 ? 1000 : p->interval_ms;
    if ((uint64_t)p->stale_stats_s * 1000 <= period_ms) {
        snprintf(err, err_len,
                 "policy: stale_stats_s=%" PRIu32 " must exceed the stats period of %" PRIu64
                 " ms (interval_ms=%" PRIu32 ", 1 s minimum)",
                 p->stale_stats_s, period_ms, p->interval_ms);
        return -EINVAL;
    }
    return 0;
}

int
policy_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int
parse_demand_signal(const char *value, uint64_t *out)
{
    for (size_t i = 0; i < sizeof(demand_signal_names) / sizeof(demand_signal_names[0]); i++) {
        if (strcmp(value, demand_signal_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -EINVAL;
}

/* A plain decimal number: digits only, no sign, no suffix, no overflow. */
static int
parse_u64(const char *value, uint64_t *out)
{
    char *end;

    if (value[0] < '0' || value[0] > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

int
policy_set(struct policy *p, const char *key, const char *value, char *err, size_t err_len)
{
    const struct policy_param *param = policy_param_find(key);
    uint64_t v;
    int rc;

    if (!param) {
        snprintf(err, err_len, "policy: unknown parameter '%s'", key);
        return -ENOENT;
    }
    switch (param->kind) {
    case POLICY_PARAM_BOOL: {
        bool b = false;
        rc = policy_parse_bool(value, &b);
        v = b;
        break;
    }
    case POLICY_PARAM_DEMAND_SIGNAL:
        rc = parse_demand_signal(value, &v);
        break;
    default:
        rc = parse_u64(value, &v);
        break;
    }
    if (rc < 0) {
        snprintf(err, err_len, "policy: %s='%s' is not a valid %s", key, value,
                 param->kind == POLICY_PARAM_BOOL            ? "boolean"
                 : param->kind == POLICY_PARAM_DEMAND_SIGNAL ? "demand signal (unused|usable)"
                                                             : "whole number");
        return rc;
    }
    if (v < param->min_value || v > param->max_value) {
        snprintf(err, err_len, "policy: %s=%s out of range [%" PRIu64 ", %" PRIu64 "]", key, value,
                 param->min_value, param->max_value);
        return -EINVAL;
    }
    param_store(p, param, v);
    return 0;
}

int
policy_get(const struct policy *p, const char *key, char *buf, size_t buf_len)
{
    const struct policy_param *param = policy_param_find(key);

    if (!param)
        return -ENOENT;
    const char *field = (const char *)p + param->offset;
    switch (param->kind) {
    case POLICY_PARAM_MIB:
        format_mib(buf, buf_len, *(const uint64_t *)(const void *)field);
        break;
    case POLICY_PARAM_BOOL:
        snprintf(buf, buf_len, "%s", param_load(p, param) ? "true" : "false");
        break;
    case POLICY_PARAM_DEMAND_SIGNAL:
        if (p->demand_signal <= POLICY_DEMAND_USABLE)
            snprintf(buf, buf_len, "%s", policy_demand_signal_name(p->demand_signal));
        else
            snprintf(buf, buf_len, "%d", (int)p->demand_signal);
        break;
    case POLICY_PARAM_U32:
        snprintf(buf, buf_len, "%" PRIu64, param_load(p, param));
        break;
    }
    return 0;
}

bool
policy_equal(const struct policy *a, const struct policy *b)
{
    return a->vm_min_unused_kib == b->vm_min_unused_kib &&
           a->vm_grow_target_unused_kib == b->vm_grow_target_unused_kib &&
           a->vm_excess_unused_kib == b->vm_excess_unused_kib &&
           a->max_release_step_kib == b->max_release_step_kib &&
           a->host_min_unused_kib == b->host_min_unused_kib && a->vm_floor_kib == b->vm_floor_kib &&
           a->interval_ms == b->interval_ms && a->stale_stats_s == b->stale_stats_s &&
           a->demand_signal == b->demand_signal && a->reclaim_idle == b->reclaim_idle &&
           a->predictive == b->predictive;
}
