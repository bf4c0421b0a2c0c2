/*
 * agent_config.c - the agent's key table and its binding to struct agent_config.
 */
#include "agent_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

enum key_kind {
    KEY_STRING,
    KEY_BOOL,
    KEY_LOG_LEVEL,
};

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
        if (strlen(value) == 0 || strlen(value) >= AGENT_CONFIG_STR_MAX) {
            snprintf(err, err_len, "%s: must be 1 to %d characters", key->name,
                     AGENT_CONFIG_STR_MAX - 1);
            return -EINVAL;
        }
        strcpy(field, value);
        return 0;
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
        else
            fprintf(out, "%s\n", log_level_name(config->log_level));
    }
    fprintf(out, "\n# policy: the local thresholds, in force until a coordinator pushes others\n");
    for (size_t i = 0; i < n_params; i++) {
        policy_get(&config->policy, params[i].name, value, sizeof(value));
        fprintf(out, "\n# %s\n%s = %s\n", params[i].help, params[i].name, value);
    }
}
