/*
 * policy.h - the scheduling thresholds, their defaults, bounds and validation.
 *
 * A policy is a plain struct of thresholds. Memory is KiB inside (libvirt's unit); the edges
 * (config files, the wire, the CLI) speak MiB, and the parameter table below converts.
 * policy_validate() is the one gate every path uses: config loading, the coordinator before it
 * stores or pushes a policy, and the agent before it applies one. A policy that fails it is
 * refused with a message naming the offending field and value; the old policy stays in force.
 */
#ifndef MEMSCHED_COMMON_POLICY_H
#define MEMSCHED_COMMON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_table.h"
#include "util.h"

#define POLICY_ERR_MAX  256
#define POLICY_KEYS_MAX 32 /* a key set is a uint32_t: bit i is policy_params()[i] */

enum policy_demand_signal {
    POLICY_DEMAND_UNUSED = 0, /* guest MemFree (libvirt balloon.unused), the seed's signal */
    POLICY_DEMAND_USABLE = 1, /* guest MemAvailable (libvirt balloon.usable) */
};

struct policy {
    uint64_t vm_min_unused_kib;         /* below this a VM needs memory */
    uint64_t vm_grow_target_unused_kib; /* a needy VM is grown to leave this much unused */
    uint64_t vm_excess_unused_kib;      /* above this a VM may release */
    uint64_t max_release_step_kib;      /* most a VM gives up in one round */
    uint64_t host_min_unused_kib;       /* the host never gives if it would keep less */
    uint64_t vm_floor_kib;              /* no balloon target below this */
    uint32_t interval_ms;               /* round period */
    uint32_t stale_stats_s;             /* stats older than this are not acted on */
    enum policy_demand_signal demand_signal;
    bool reclaim_idle; /* idle excess returns to the host even when nobody needs it */
    bool predictive;   /* feed a VM by its consumption rate before it crosses vm_min_unused */
};

/* The parameter table: one config_table.h row per parameter (edge name, where it lives in
 * struct policy, its default and bounds in edge units, a line of help). MiB parameters are
 * CONFIG_KIND_MIB, demand_signal a CONFIG_KIND_ENUM. Config, CLI, wire and docs read it. */
const struct config_table *policy_table(void);

/* The table, in documentation order; *count receives its length. */
const struct config_key *policy_params(size_t *count);

/* The row named name, or NULL. */
const struct config_key *policy_param_find(const char *name);

/* Fill p with the defaults (the seed's constants). */
void policy_init_defaults(struct policy *p);

/* 0 when p is usable; -EINVAL with err naming the field, its value and the rule otherwise. */
int policy_validate(const struct policy *p, char *err, size_t err_len);

/* Parse value (edge units: MiB, ms, s, a boolean or an enum name) into the parameter named key.
 * Bounds of that one parameter are checked here; cross-field rules are policy_validate's.
 * Returns 0, -ENOENT for an unknown key or -EINVAL for a bad value (err says which); p is
 * unchanged on failure. */
int policy_set(struct policy *p, const char *key, const char *value, char *err, size_t err_len);

/* Write the parameter's value in edge units into buf ("200", "true", "usable").
 * Returns 0, or -ENOENT for an unknown key. */
int policy_get(const struct policy *p, const char *key, char *buf, size_t buf_len);

/* Name of a demand signal ("unused" / "usable"). */
const char *policy_demand_signal_name(enum policy_demand_signal signal);

/* Policies layer (fleet < label < host, coordinator/store.h): a scope sets some keys, not all.
 * A key set is a mask over policy_params(): bit i stands for row i. */

/* Every key of the table. */
uint32_t policy_keys_all(void);

/* The bit of the key named name, or 0 for an unknown key. */
uint32_t policy_key_bit(const char *name);

/* Copy into dst the values src holds for the keys in keys; the others stay dst's. */
void policy_overlay(struct policy *dst, const struct policy *src, uint32_t keys);

/* True when both policies hold the same values (the table's fields, compared by the engine). */
bool policy_equal(const struct policy *a, const struct policy *b);

#endif /* MEMSCHED_COMMON_POLICY_H */
