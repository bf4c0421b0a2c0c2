/*
 * agent_config.h - memsched-agent's configuration: its own keys and the policy's, one table.
 *
 * The file is "key = value" lines (common/config.h). Agent keys are listed below; every policy
 * parameter (policy.h) is a key too, giving the local policy used until a coordinator pushes
 * one. Unknown keys, bad values and an invalid policy are errors with file:line, and a reload
 * that fails keeps the old configuration.
 */
#ifndef MEMSCHED_AGENT_AGENT_CONFIG_H
#define MEMSCHED_AGENT_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "log.h"
#include "policy.h"

#define AGENT_CONFIG_STR_MAX 1024

struct agent_config {
    char uri[AGENT_CONFIG_STR_MAX];       /* hypervisor: libvirt URI or sim:FILE */
    char state_dir[AGENT_CONFIG_STR_MAX]; /* where the policy in force is kept */
    enum log_level log_level;
    bool dry_run;
    struct policy policy; /* the local policy */
    /* The coordinator link; none when coordinator is empty. */
    char coordinator[AGENT_CONFIG_STR_MAX];     /* endpoints, comma-separated */
    char coordinator_key[AGENT_CONFIG_STR_MAX]; /* its public key file (pinned) */
    char key_file[AGENT_CONFIG_STR_MAX];        /* this agent's key pair */
    bool insecure;
    char host_id[AGENT_CONFIG_STR_MAX]; /* empty: the host name */
    char labels[AGENT_CONFIG_STR_MAX];  /* KEY=VALUE,KEY=VALUE */
    /* Reports: at least every report_interval_ms (0: every round), sooner on news
     * (cadence.h); a heartbeat after heartbeat_interval_ms of silence keeps the host fresh at
     * the coordinators (their stale_after_ms) between them. */
    uint64_t report_interval_ms;
    uint64_t heartbeat_interval_ms;
    /* node_exporter textfile with this host's metrics, replaced after each round; "" = none */
    char metrics_textfile[AGENT_CONFIG_STR_MAX];
    /* Local hard limits, with safe defaults: a pushed or persisted policy that crosses them is
     * refused, so no coordinator or operator key can starve this host below what its own
     * operator allowed. Floors for what guests and the host keep, ceilings for how fast memory
     * is taken and how long the agent may sleep between rounds. The local config's own policy
     * is the operator's and is not held to them. */
    uint64_t limit_vm_min_unused_mib;    /* floor for vm_min_unused_mib */
    uint64_t limit_vm_floor_mib;         /* floor for vm_floor_mib */
    uint64_t limit_host_min_unused_mib;  /* floor for host_min_unused_mib */
    uint64_t limit_max_release_step_mib; /* ceiling for max_release_step_mib */
    uint64_t limit_interval_ms;          /* ceiling for interval_ms */
};

/* 0 when p respects every local hard limit; else -EPERM with why naming the field, its value
 * and the limit. */
int agent_config_check_limits(const struct agent_config *config,
                              const struct policy *p,
                              char *why,
                              size_t why_len);

void agent_config_init_defaults(struct agent_config *config);

/* Set one key from text (agent key or policy parameter). Returns 0, -ENOENT, -EINVAL. */
int agent_config_set(
    struct agent_config *config, const char *key, const char *value, char *err, size_t err_len);

/* Load defaults then the file at path; validate the policy. On failure *config is untouched. */
int agent_config_load(const char *path, struct agent_config *config, char *err, size_t err_len);

/* Open what the config names, as the daemon will at start, without connecting or creating
 * anything: a sim:FILE scenario, the state directory (or its parent), and with a coordinator its
 * public key (parsed) and this agent's key pair (parsed; refused when group or others may read
 * it), or, when insecure, that every endpoint is local. Returns 0 or the first failure, with err
 * naming the key and the file. --check-config. */
int agent_config_check_files(const struct agent_config *config, char *err, size_t err_len);

/* Write every key with its value in file syntax, with help comments. */
void agent_config_print(const struct agent_config *config, FILE *out);

#endif /* MEMSCHED_AGENT_AGENT_CONFIG_H */
