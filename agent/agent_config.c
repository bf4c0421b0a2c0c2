/*
 * agent_config.c - the agent's key table (config_table.h rows) bound to struct agent_config,
 * the local hard limits, and --check-config's look at the files the config names.
 */
#include "agent_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "transport.h"

#define LIMIT_MIB_MAX UINT64_C(1048576) /* 1 TiB */
#define LIMIT_MS_MAX  UINT64_C(3600000) /* 1 hour */

/* The agent's own keys; the policy's parameters are policy_table()'s. */
static const struct config_key keys[] = {
    {
        .name = "uri",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, uri),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "qemu:///system",
        .help = "hypervisor: a libvirt URI, or sim:FILE for a modelled host",
    },
    {
        .name = "state_dir",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, state_dir),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "/var/lib/memsched-agent",
        .help = "where the policy in force is kept across restarts",
    },
    {
        .name = "log_level",
        .kind = CONFIG_KIND_ENUM,
        .offset = offsetof(struct agent_config, log_level),
        .default_value = LOG_LEVEL_INFO,
        .min_value = LOG_LEVEL_ERR,
        .max_value = LOG_LEVEL_DEBUG,
        .names = log_level_names,
        .help = "err, warn, info or debug",
    },
    {
        .name = "dry_run",
        .kind = CONFIG_KIND_BOOL,
        .offset = offsetof(struct agent_config, dry_run),
        .default_value = 0,
        .max_value = 1,
        .help = "plan and log, but set no balloon target",
    },
    {
        .name = "coordinator",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, coordinator),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "",
        .help = "coordinator endpoints, comma-separated (tcp://HOST:7400); empty: none",
    },
    {
        .name = "coordinator_key",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, coordinator_key),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "/etc/memsched/coordinator.key",
        .help = "the coordinator's public key file: the only server this agent talks to",
    },
    {
        .name = "key_file",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, key_file),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "/etc/memsched/agent.secret",
        .help = "this agent's CURVE key pair (memschedctl keygen)",
    },
    {
        .name = "insecure",
        .kind = CONFIG_KIND_BOOL,
        .offset = offsetof(struct agent_config, insecure),
        .default_value = 0,
        .max_value = 1,
        .help = "plain TCP to the coordinator: refused unless it is on loopback",
    },
    {
        .name = "host_id",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, host_id),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "",
        .help = "this host's id in the fleet; empty: the host name",
    },
    {
        .name = "labels",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, labels),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "",
        .help = "KEY=VALUE,... for label-scoped policies",
    },
    {
        .name = "metrics_textfile",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct agent_config, metrics_textfile),
        .size = AGENT_CONFIG_STR_MAX,
        .default_text = "",
        .help = "write this host's metrics here after each round, for node_exporter's textfile "
                "collector (a .prom file, replaced atomically); empty: none",
    },
    {
        .name = "report_interval_ms",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct agent_config, report_interval_ms),
        .default_value = 10000,
        .max_value = LIMIT_MS_MAX,
        .help = "the longest between two reports to the coordinators; sooner when a round "
                "decides something, a VM comes, goes or changes state, or the numbers move "
                "(64 MiB or 1/16); 0: every round (interval_ms)",
    },
    {
        .name = "heartbeat_interval_ms",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct agent_config, heartbeat_interval_ms),
        .default_value = 1000,
        .min_value = 100,
        .max_value = LIMIT_MS_MAX,
        .help = "a heartbeat after this long without a message to the coordinators; keep it "
                "well below their stale_after_ms",
    },
    {
        .name = "limit_vm_min_unused_mib",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct agent_config, limit_vm_min_unused_mib),
        .default_value = 50,
        .max_value = LIMIT_MIB_MAX,
        .help = "refuse pushed or persisted policies with vm_min_unused_mib below this",
    },
    {
        .name = "limit_vm_floor_mib",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct agent_config, limit_vm_floor_mib),
        .default_value = 128,
        .max_value = LIMIT_MIB_MAX,
        .help = "refuse pushed or persisted policies with vm_floor_mib below this",
    },
    {
        .name = "limit_host_min_unused_mib",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct agent_config, limit_host_min_unused_mib),
        .default_value = 100,
        .max_value = LIMIT_MIB_MAX,
        .help = "refuse pushed or persisted policies with host_min_unused_mib below this",
    },
    {
        .name = "limit_max_release_step_mib",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct agent_config, limit_max_release_step_mib),
        .default_value = 512,
        .max_value = LIMIT_MIB_MAX,
        .help = "refuse pushed or persisted policies with max_release_step_mib above this",
    },
    {
        .name = "limit_interval_ms",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct agent_config, limit_interval_ms),
        .default_value = 10000,
        .max_value = LIMIT_MS_MAX,
        .help = "refuse pushed or persisted policies with interval_ms above this",
    },
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct config_table table = {keys, N_KEYS, NULL};

void
agent_config_init_defaults(struct agent_config *config)
{
    memset(config, 0, sizeof(*config));
    config_defaults(&table, config);
    policy_init_defaults(&config->policy);
}

int
agent_config_set(
    struct agent_config *config, const char *key, const char *value, char *err, size_t err_len)
{
    const struct config_key *k = config_key_find(&table, key);

    if (k)
        return config_set_key(&table, k, config, value, err, err_len);
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
    fprintf(out, "# memsched-agent configuration (effective values)\n");
    config_print(&table, config, true, out);
    fprintf(out, "\n# policy: the local thresholds, in force until a coordinator pushes others\n");
    config_print(policy_table(), &config->policy, false, out);
}

/* A sim:FILE[?options] scenario must be readable; other URIs are libvirt's to judge at start. */
static int
check_uri(const char *uri, char *err, size_t err_len)
{
    char path[AGENT_CONFIG_STR_MAX];

    if (strncmp(uri, "sim:", 4) != 0)
        return 0;
    snprintf(path, sizeof(path), "%.*s", (int)strcspn(uri + 4, "?"), uri + 4);
    FILE *f = fopen(path, "r");
    if (!f) {
        int rc = -errno;
        snprintf(err, err_len, "uri: %.900s: %s", path, strerror(errno));
        return rc;
    }
    fclose(f);
    return 0;
}

/* The state directory is made (one level) at start when missing. */
static int
check_state_dir(const char *dir, char *err, size_t err_len)
{
    char parent[AGENT_CONFIG_STR_MAX];
    struct stat st;

    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        snprintf(err, err_len, "state_dir: %.900s: not a directory", dir);
        return -ENOTDIR;
    }
    const char *slash = strrchr(dir, '/');
    snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - dir) : 0, dir);
    if (!parent[0])
        snprintf(parent, sizeof(parent), "%s", slash ? "/" : ".");
    if (stat(parent, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    snprintf(err, err_len, "state_dir: %.900s: neither it nor its parent exists", dir);
    return -ENOENT;
}

/* The textfile's directory must be there: the file itself is made at the first round. */
static int
check_textfile(const char *path, char *err, size_t err_len)
{
    char dir[AGENT_CONFIG_STR_MAX];
    struct stat st;

    if (!path[0])
        return 0;
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
    if (!dir[0])
        snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
    if (slash && !slash[1]) {
        snprintf(err, err_len, "metrics_textfile: %.900s: names a directory, not a file", path);
        return -EISDIR;
    }
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    snprintf(err, err_len, "metrics_textfile: %.900s: no directory %.900s", path, dir);
    return -ENOENT;
}

static int
check_link(const struct agent_config *config, char *err, size_t err_len)
{
    char endpoints[AGENT_CONFIG_STR_MAX], msg[512], *save = NULL;
    struct transport_keys pair;
    int rc;

    if (!config->coordinator[0])
        return 0;
    if (!config->insecure) {
        rc = transport_keys_load(config->coordinator_key, &pair, false, msg, sizeof(msg));
        if (rc < 0) {
            snprintf(err, err_len, "coordinator_key: %s", msg);
            return rc;
        }
        rc = transport_keys_load(config->key_file, &pair, true, msg, sizeof(msg));
        if (rc < 0) {
            snprintf(err, err_len, "key_file: %s", msg);
            return rc;
        }
        return 0;
    }
    snprintf(endpoints, sizeof(endpoints), "%s", config->coordinator);
    for (char *tok = strtok_r(endpoints, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (!transport_endpoint_is_local(tok)) {
            snprintf(err, err_len,
                     "coordinator: %.900s: insecure=true is only allowed on loopback or ipc://",
                     tok);
            return -EPERM;
        }
    }
    return 0;
}

int
agent_config_check_files(const struct agent_config *config, char *err, size_t err_len)
{
    int rc = check_uri(config->uri, err, err_len);

    if (rc == 0)
        rc = check_state_dir(config->state_dir, err, err_len);
    if (rc == 0)
        rc = check_textfile(config->metrics_textfile, err, err_len);
    if (rc == 0)
        rc = check_link(config, err, err_len);
    return rc;
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
             ?: check_limit("vm_min_unused_mib", p->vm_min_unused_kib / UTIL_KIB_PER_MIB,
                            "limit_vm_min_unused_mib", config->limit_vm_min_unused_mib, false, why,
                            why_len);
    rc = rc
             ?: check_limit("vm_floor_mib", p->vm_floor_kib / UTIL_KIB_PER_MIB,
                            "limit_vm_floor_mib", config->limit_vm_floor_mib, false, why, why_len);
    rc = rc
             ?: check_limit("host_min_unused_mib", p->host_min_unused_kib / UTIL_KIB_PER_MIB,
                            "limit_host_min_unused_mib", config->limit_host_min_unused_mib, false,
                            why, why_len);
    rc = rc
             ?: check_limit("max_release_step_mib", p->max_release_step_kib / UTIL_KIB_PER_MIB,
                            "limit_max_release_step_mib", config->limit_max_release_step_mib, true,
                            why, why_len);
    rc = rc
             ?: check_limit("interval_ms", p->interval_ms, "limit_interval_ms",
                            config->limit_interval_ms, true, why, why_len);
    return rc;
}
