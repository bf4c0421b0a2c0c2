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
    /* Local hard limits: a pushed policy that crosses them is refused. */
    uint64_t limit_host_min_unused_mib;
    uint64_t limit_vm_floor_mib;
};

/* 0 when p respects the local hard limits; else -EPERM with why naming the limit. */
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

/* Write every key with its value in file syntax, with help comments. */
void agent_config_print(const struct agent_config *config, FILE *out);

#endif /* MEMSCHED_AGENT_AGENT_CONFIG_H */
