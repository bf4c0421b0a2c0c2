/*
 * agent_config.c - the agent's key table and its binding to struct agent_config.
 */
#include "agent_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum key_kind {
    KEY_STRING,
    KEY_BOOL,
    KEY_LOG_LEVEL,
    KEY_MIB, /* uint64_t MiB, 0 .. 1 TiB */
    KEY_MS,  /* uint64_t ms, 0 .. 1 hour */
};

#define KEY_MIB_MAX UINT64_C(1048576)
#define KEY_MS_MAX  UINT64_C(3600000)

struct agent_key {
    const char *name;
    enum key_kind kind;
    size_t offset;
    const char *default_value;
    const char *help;
};

static const struct agent_key keys[] = {
    {
        .name = "uri",
        .kind = KEY_STRING,
        .offset = offsetof(struct agent_config, uri),
        .default_value = "qemu:///system",
        .help = "hypervisor: a libvirt URI, or sim:FILE for a modelled host",
    },
    {
        .name = "state_dir",
        .kind = KEY_STRING,
        .offset = offsetof(struct agent_config, state_dir),
        .default_value = "/var/lib/memsched",
        .help = "where the policy in force is kept across restarts",
    },
    {
        .name = "log_level",
        .kind = KEY_LOG_LEVEL,
        .offset = offsetof(struct agent_config, log_level),
        .default_value = "info",
        .help = "err, warn, info or debug",
    },
    {
        .name = "dry_run",
        .kind = KEY_BOOL,
        .offset = offsetof(struct agent_config, dry_run),
        .default_value = "false",
        .help = "plan and log, but set no balloon target",
    },
    {
        .name = "coordinator",
        .kind = KEY_STRING,
        .offset = offsetof(struct agent_config, coordinator),
        .default_value = "",
        .help = "coordinator endpoints, comma-separated (tcp://HOST:7400); empty: none",
    },
    {
        .name = "coordinator_key",
        .kind = KEY_STRING,
        .offset = offsetof(struct agent_config, coordinator_key),
        .default_value = "/etc/memsched/coordinator.key",
        .help = "the coordinator's public key file: the only server this agent talks to",
    },
    {
        .name = "key_file",
        .kind = KEY_STRING,
        .offset = offsetof(struct agent_config, key_file),
        .default_value = "/etc/memsched/agent.secret",
        .help = "this agent's CURVE key pair (memschedctl keygen)",
    },
    {
        .name = "insecure",
        .kind = KEY_BOOL,
        .offset = offsetof(struct agent_config, insecure),
        .default_value = "false",
        .help = "plain TCP to the coordinator: refused unless it is on loopback",
    },
    {
        .name = "host_id",
        .kind = KEY_STRING,
        .offset = offsetof(struct agent_config, host_id),
        .default_value = "",
        .help = "this host's id in the fleet; empty: the host name",
    },
    {
        .name = "labels",
        .kind = KEY_STRING,
        .offset = offsetof(struct agent_config, labels),
        .default_value = "",
        .help = "KEY=VALUE,... for label-scoped policies",
    },
    {
        .name = "limit_vm_min_unused_mib",
        .kind = KEY_MIB,
        .offset = offsetof(struct agent_config, limit_vm_min_unused_mib),
        .default_value = "50",
        .help = "refuse pushed or persisted policies with vm_min_unused_mib below this",
    },
    {
        .name = "limit_vm_floor_mib",
        .kind = KEY_MIB,
        .offset = offsetof(struct agent_config, limit_vm_floor_mib),
        .default_value = "128",
        .help = "refuse pushed or persisted policies with vm_floor_mib below this",
    },
    {
        .name = "limit_host_min_unused_mib",
        .kind = KEY_MIB,
        .offset = offsetof(struct agent_config, limit_host_min_unused_mib),
        .default_value = "100",
        .help = "refuse pushed or persisted policies with host_min_unused_mib below this",
    },
    {
        .name = "limit_max_release_step_mib",
        .kind = KEY_MIB,
        .offset = offsetof(struct agent_config, limit_max_release_step_mib),
        .default_value = "512",
        .help = "refuse pushed or persisted policies with max_release_step_mib above this",
    },
    {
        .name = "limit_interval_ms",
        .kind = KEY_MS,
        .offset = offsetof(struct agent_config, limit_interval_ms),
        .default_value = "10000",
        .help = "refuse pushed or persisted policies with interval_ms above this",
    },
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct agent_key *
find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

static int
set_key(struct agent_config *config,
        const struct agent_key *key,
        const char *value,
        char *err,
        size_t err_len)
{
    char *field = (char *)config + key->offset;

    switch (key->kind) {
    case KEY_STRING:
        if (strlen(value) >= AGENT_CONFIG_STR_MAX) {
            snprintf(err, err_len, "%s: longer than %d characters", key->name,
                     AGENT_CONFIG_STR_MAX - 1);
            return -EINVAL;
        }
        strcpy(field, value);
        return 0;
    case KEY_MIB:
    case KEY_MS: {
        char *end;
        uint64_t max = key->kind == KEY_MIB ? KEY_MIB_MAX : KEY_MS_MAX;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || *end || value[0] < '0' || value[0] > '9' || v > max) {
            snprintf(err, err_len, "%s='%s' must be a whole number of %s up to %" PRIu64, key->name,
                     value, key->kind == KEY_MIB ? "MiB" : "ms", max);
            return -EINVAL;
        }
        *(uint64_t *)(void *)field = v;
        return 0;
    }
    case KEY_BOOL:
        if (policy_parse_bool(value, (bool *)(void *)field) < 0) {
            snprintf(err, err_len, "%s='%s' is not a valid boolean", key->name, value);
            return -EINVAL;
        }
        return 0;
    case KEY_LOG_LEVEL:
        if (log_parse_level(value, (enum log_level *)(void *)field) < 0) {
            snprintf(err, err_len, "%s='%s' must be err, warn, info or debug", key->name, value);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

void
agent_config_init_defaults(struct agent_config *config)
{
    char err[CONFIG_ERR_MAX];

    memset(config, 0, sizeof(*config));
    for (size_t i = 0; i < N_KEYS; i++)
        set_key(config, &keys[i], keys[i].default_value, err, sizeof(err));
    policy_init_defaults(&config->policy);
}

int
agent_config_set(
    struct agent_config *config, const char *key, const char *value, char *err, size_t err_len)
{
    const struct agent_key *k = find_key(key);

    if (k)
        return set_key(config, k, value, err, err_len);
    if (policy_param_find(key))
        return policy_set(&config->policy, key, value, err, err_len);
    snprintf(err, err_len, "unknown key '%s'", key);
    return -ENOENT;
}

static int
setter(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    return agent_config_set(ctx, key, value, err, err_len);
}

int
agent_config_load(const char *path, struct agent_config *config, char *err, size_t err_len)
{
    struct agent_config loaded;
    char msg[CONFIG_ERR_MAX];

    agent_config_init_defaults(&loaded);
    int rc = config_parse_file(path, setter, &loaded, err, err_len);
    if (rc < 0)
        return rc;
    rc = policy_validate(&loaded.policy, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, msg);
        return rc;
    }
    *config = loaded;
    return 0;
}

void
agent_config_print(const struct agent_config *config, FILE *out)
{
    char value[64];
    size_t n_params;
    const struct policy_param *params = policy_params(&n_params);

    fprintf(out, "# memsched-agent configuration (effective values)\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *field = (const char *)config + keys[i].offset;
        fprintf(out, "\n# %s (default %s)\n%s = ", keys[i].help, keys[i].default_value,
                keys[i].name);
        if (keys[i].kind == KEY_STRING)
            fprintf(out, "%s\n", field);
        else if (keys[i].kind == KEY_BOOL)
            fprintf(out, "%s\n", *(const bool *)(const void *)field ? "true" : "false");
        else if (keys[i].kind == KEY_MIB || keys[i].kind == KEY_MS)
            fprintf(out, "%" PRIu64 "\n", *(const uint64_t *)(const void *)field);
        else
            fprintf(out, "%s\n", log_level_name(config->log_level));
    }
    fprintf(out, "\n# policy: the local thresholds, in force until a coordinator pushes others\n");
    for (size_t i = 0; i < n_params; i++) {
        policy_get(&config->policy, params[i].name, value, sizeof(value));
        fprintf(out, "\n# %s\n%s = %s\n", params[i].help, params[i].name, value);
    }
}

/* One limit: the policy's value (edge units) against the config's, as a floor or a ceiling. */
static int
check_limit(const char *field,
            uint64_t value,
            const char *limit_name,
            uint64_t limit,
            bool ceiling,
            char *why,
            size_t why_len)
{
    if (ceiling ? value <= limit : value >= limit)
        return 0;
    snprintf(why, why_len, "%s=%" PRIu64 " %s this host's %s=%" PRIu64, field, value,
             ceiling ? "above" : "below", limit_name, limit);
    return -EPERM;
}

int
agent_config_check_limits(const struct agent_config *config,
                          const struct policy *p,
                          char *why,
                          size_t why_len)
{
    int rc = 0;

    rc = rc
             ?: check_limit("vm_min_unused_mib", p->vm_min_unused_kib / POLICY_KIB_PER_MIB,
                            "limit_vm_min_unused_mib", config->limit_vm_min_unused_mib, false, why,
                            why_len);
    rc = rc
             ?: check_limit("vm_floor_mib", p->vm_floor_kib / POLICY_KIB_PER_MIB,
                            "limit_vm_floor_mib", config->limit_vm_floor_mib, false, why, why_len);
    rc = rc
             ?: check_limit("host_min_unused_mib", p->host_min_unused_kib / POLICY_KIB_PER_MIB,
                            "limit_host_min_unused_mib", config->limit_host_min_unused_mib, false,
                            why, why_len);
    rc = rc
             ?: check_limit("max_release_step_mib", p->max_release_step_kib / POLICY_KIB_PER_MIB,
                            "limit_max_release_step_mib", config->limit_max_release_step_mib, true,
                            why, why_len);
    rc = rc
             ?: check_limit("interval_ms", p->interval_ms, "limit_interval_ms",
                            config->limit_interval_ms, true, why, why_len);
    return rc;
}
