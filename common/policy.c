/*
 * policy.c - the parameter table, defaults, validation and edge-unit conversion of a policy.
 *
 * The table is the single description of every parameter: its edge name, where it lives in
 * struct policy, its default (the seed's constants) and bounds. The config-table engine
 * (config_table.h) does the parsing, printing, defaults, bounds and equality from it, so adding
 * a parameter is one row here; this file adds only the rules between parameters.
 */
#include "policy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MIB_1T  UINT64_C(1048576)  /* 1 TiB in MiB */
#define MIB_16T UINT64_C(16777216) /* 16 TiB in MiB */

static const char *const demand_signal_names[] = {
    [POLICY_DEMAND_UNUSED] = "unused",
    [POLICY_DEMAND_USABLE] = "usable",
};

static const struct config_key params[] = {
    {
        .name = "vm_min_unused_mib",
        .kind = CONFIG_KIND_MIB,
        .offset = offsetof(struct policy, vm_min_unused_kib),
        .default_value = 100,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "below this a VM needs memory; a release never leaves less",
    },
    {
        .name = "vm_grow_target_unused_mib",
        .kind = CONFIG_KIND_MIB,
        .offset = offsetof(struct policy, vm_grow_target_unused_kib),
        .default_value = 200,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "a needy VM is grown to leave this much unused (capped by its max)",
    },
    {
        .name = "vm_excess_unused_mib",
        .kind = CONFIG_KIND_MIB,
        .offset = offsetof(struct policy, vm_excess_unused_kib),
        .default_value = 300,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "above this a VM may release",
    },
    {
        .name = "max_release_step_mib",
        .kind = CONFIG_KIND_MIB,
        .offset = offsetof(struct policy, max_release_step_kib),
        .default_value = 64,
        .min_value = 1,
        .max_value = MIB_1T,
        .help = "most a VM gives up in one round",
    },
    {
        .name = "host_min_unused_mib",
        .kind = CONFIG_KIND_MIB,
        .offset = offsetof(struct policy, host_min_unused_kib),
        .default_value = 200,
        .min_value = 0,
        .max_value = MIB_16T,
        .help = "the host never gives if it would keep less",
    },
    {
        .name = "vm_floor_mib",
        .kind = CONFIG_KIND_MIB,
        .offset = offsetof(struct policy, vm_floor_kib),
        .default_value = 256,
        .min_value = 0,
        .max_value = MIB_1T,
        .help = "no balloon target below this (a per-VM min overrides)",
    },
    {
        .name = "interval_ms",
        .kind = CONFIG_KIND_U32,
        .offset = offsetof(struct policy, interval_ms),
        .default_value = 1000,
        .min_value = 100,
        .max_value = 3600000,
        .help = "round period; the guest stats period is set to match (1 s minimum)",
    },
    {
        .name = "demand_signal",
        .kind = CONFIG_KIND_ENUM,
        .offset = offsetof(struct policy, demand_signal),
        .default_value = POLICY_DEMAND_USABLE,
        .min_value = POLICY_DEMAND_UNUSED,
        .max_value = POLICY_DEMAND_USABLE,
        .names = demand_signal_names,
        .help = "unused (guest MemFree, the seed) or usable (guest MemAvailable)",
    },
    {
        .name = "stale_stats_s",
        .kind = CONFIG_KIND_U32,
        .offset = offsetof(struct policy, stale_stats_s),
        .default_value = 5,
        .min_value = 1,
        .max_value = 3600,
        .help = "stats older than this (balloon.last-update) are not acted on",
    },
    {
        .name = "reclaim_idle",
        .kind = CONFIG_KIND_BOOL,
        .offset = offsetof(struct policy, reclaim_idle),
        .default_value = 1,
        .min_value = 0,
        .max_value = 1,
        .help =
            "VMs above the excess threshold return memory to the host even when nobody needs it",
    },
    {
        .name = "predictive",
        .kind = CONFIG_KIND_BOOL,
        .offset = offsetof(struct policy, predictive),
        .default_value = 1,
        .min_value = 0,
        .max_value = 1,
        .help = "grow a VM by its consumption rate x the stats-to-balloon horizon, before it "
                "crosses vm_min_unused (false: the seed's literal rule)",
    },
};

#define N_PARAMS (sizeof(params) / sizeof(params[0]))
_Static_assert(N_PARAMS <= POLICY_KEYS_MAX, "a key set is a uint32_t");

static const struct config_table table = {params, N_PARAMS, "policy"};

const struct config_table *
policy_table(void)
{
    return &table;
}

const struct config_key *
policy_params(size_t *count)
{
    *count = N_PARAMS;
    return params;
}

const struct config_key *
policy_param_find(const char *name)
{
    return config_key_find(&table, name);
}

const char *
policy_demand_signal_name(enum policy_demand_signal signal)
{
    if ((unsigned)signal < sizeof(demand_signal_names) / sizeof(demand_signal_names[0]))
        return demand_signal_names[signal];
    return "invalid";
}

void
policy_init_defaults(struct policy *p)
{
    memset(p, 0, sizeof(*p));
    config_defaults(&table, p);
}

int
policy_validate(const struct policy *p, char *err, size_t err_len)
{
    char a[32], b[32];
    int rc = config_check_bounds(&table, p, err, err_len);

    if (rc < 0)
        return rc;
    if (p->vm_min_unused_kib >= p->vm_grow_target_unused_kib) {
        policy_get(p, "vm_min_unused_mib", a, sizeof(a));
        policy_get(p, "vm_grow_target_unused_mib", b, sizeof(b));
        snprintf(err, err_len,
                 "policy: vm_min_unused_mib=%s must be below vm_grow_target_unused_mib=%s", a, b);
        return -EINVAL;
    }
    if (p->vm_grow_target_unused_kib > p->vm_excess_unused_kib) {
        policy_get(p, "vm_grow_target_unused_mib", a, sizeof(a));
        policy_get(p, "vm_excess_unused_mib", b, sizeof(b));
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
policy_set(struct policy *p, const char *key, const char *value, char *err, size_t err_len)
{
    return config_set(&table, p, key, value, err, err_len);
}

int
policy_get(const struct policy *p, const char *key, char *buf, size_t buf_len)
{
    const struct config_key *param = policy_param_find(key);

    if (!param)
        return -ENOENT;
    config_format(param, p, buf, buf_len);
    return 0;
}

bool
policy_equal(const struct policy *a, const struct policy *b)
{
    return config_equal(&table, a, b);
}

uint32_t
policy_keys_all(void)
{
    return N_PARAMS == 32 ? UINT32_MAX : (UINT32_C(1) << N_PARAMS) - 1;
}

uint32_t
policy_key_bit(const char *name)
{
    const struct config_key *param = policy_param_find(name);

    return param ? UINT32_C(1) << (param - params) : 0;
}

void
policy_overlay(struct policy *dst, const struct policy *src, uint32_t keys)
{
    for (size_t i = 0; i < N_PARAMS; i++) {
        if (keys & (UINT32_C(1) << i))
            config_copy_key(&params[i], dst, src);
    }
}
