/*
 * settings.c - the coordinator's key table and the rules between its keys.
 *
 * The table is the one description of every key: config files, key=value arguments,
 * --print-config and --help all read it. Rules that involve two keys are settings_check()'s.
 */
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "coordinator.h"
#include "fleet.h"
#include "history.h"
#include "http.h"
#include "transport.h"

#define STRING_KEY(field, def, min_len, text)                                                      \
    {                                                                                              \
        .name = #field, .kind = CONFIG_KIND_STRING, .offset = offsetof(struct settings, field),    \
        .size = SETTINGS_STR_MAX, .default_text = def, .min_value = min_len, .help = text,         \
    }

#define NUMBER_KEY(field, def, min, max, text)                                                     \
    {                                                                                              \
        .name = #field, .kind = CONFIG_KIND_U64, .offset = offsetof(struct settings, field),       \
        .default_value = def, .min_value = min, .max_value = max, .help = text,                    \
    }

static const struct config_key keys[] = {
    STRING_KEY(listen, "tcp://0.0.0.0:7400", 1, "the agents' endpoint (CURVE unless insecure)"),
    STRING_KEY(control,
               "ipc:///run/memsched/control.sock",
               1,
               "memschedctl's endpoint: ipc://PATH, or tcp:// with admin_allow_dir (CURVE)"),
    STRING_KEY(key_file,
               "/etc/memsched/coordinator.secret",
               1,
               "the coordinator's CURVE key pair (memschedctl keygen)"),
    STRING_KEY(allow_dir, "/etc/memsched/agents", 1, "the agents' public keys, one HOST.key each"),
    STRING_KEY(admin_allow_dir,
               "",
               0,
               "operators' public keys when control is tcp:// (CURVE); empty: none"),
    STRING_KEY(admin_read_dir,
               "",
               0,
               "read-only operators' keys (status, hosts, vms, events, policy show/history; no "
               "policy set, no hosts forget); empty: none"),
    STRING_KEY(db, "/var/lib/memsched/coordinator.db", 1, "the policy store (SQLite)"),
    STRING_KEY(metrics_listen,
               "",
               0,
               "Prometheus metrics at /metrics: http://ADDR:PORT, or a port alone for loopback "
               "(plain HTTP, read-only); empty: off"),
    STRING_KEY(web_root,
               "/usr/share/memsched/web",
               0,
               "the dashboard's pages, served on metrics_listen with its read-only /api/; "
               "empty: API only"),
    {
        .name = "metrics_vm_series",
        .kind = CONFIG_KIND_BOOL,
        .offset = offsetof(struct settings, metrics_vm_series),
        .default_value = 1,
        .max_value = 1,
        .help = "per-VM series in /metrics; false for large fleets whose VMs are scraped from "
                "the agents' metrics_textfile",
    },
    {
        .name = "insecure",
        .kind = CONFIG_KIND_BOOL,
        .offset = offsetof(struct settings, insecure),
        .default_value = 0,
        .max_value = 1,
        .help = "plain TCP for the agents' endpoint: refused unless listen is on loopback",
    },
    NUMBER_KEY(stale_after_ms,
               FLEET_STALE_AFTER_MS_DEFAULT,
               500,
               3600000,
               "a host silent this long is stale"),
    NUMBER_KEY(down_after_ms,
               FLEET_DOWN_AFTER_MS_DEFAULT,
               1000,
               86400000,
               "a host silent this long is down"),
    NUMBER_KEY(pressure_unused_mib,
               100,
               0,
               1048576,
               "a VM with less unused memory than this counts as under pressure"),
    NUMBER_KEY(host_retention_ms,
               COORDINATOR_HOST_RETENTION_MS,
               0,
               UINT64_C(31536000000),
               "hosts down this long are forgotten; 0: never"),
    NUMBER_KEY(history_max_mib,
               HISTORY_MAX_MIB_DEFAULT,
               0,
               1048576,
               "memory for the hosts' and VMs' history (memschedctl history, the dashboard); a "
               "large fleet gets a coarser history, not more memory; 0: none kept"),
    {
        .name = "log_level",
        .kind = CONFIG_KIND_ENUM,
        .offset = offsetof(struct settings, log_level),
        .default_value = LOG_LEVEL_INFO,
        .min_value = LOG_LEVEL_ERR,
        .max_value = LOG_LEVEL_DEBUG,
        .names = log_level_names,
        .help = "err, warn, info or debug",
    },
};

static const struct config_table table = {keys, sizeof(keys) / sizeof(keys[0]), NULL};

const struct config_table *
settings_table(void)
{
    return &table;
}

void
settings_defaults(struct settings *s)
{
    memset(s, 0, sizeof(*s));
    config_defaults(&table, s);
}

int
settings_set(struct settings *s, const char *key, const char *value, char *err, size_t err_len)
{
    return config_set(&table, s, key, value, err, err_len);
}

int
settings_load_file(struct settings *s, const char *path, char *err, size_t err_len)
{
    struct config_binding b = {&table, s};

    return config_parse_file(path, config_bound_set, &b, err, err_len);
}

int
settings_load_arg(struct settings *s, const char *arg, char *err, size_t err_len)
{
    struct config_binding b = {&table, s};

    return config_parse_text(arg, "argument", config_bound_set, &b, err, err_len);
}

int
settings_check(const struct settings *s, char *err, size_t err_len)
{
    if (s->stale_after_ms >= s->down_after_ms) {
        snprintf(err, err_len, "stale_after_ms=%" PRIu64 " must be below down_after_ms=%" PRIu64,
                 s->stale_after_ms, s->down_after_ms);
        return -EINVAL;
    }
    if (s->host_retention_ms && s->host_retention_ms < s->down_after_ms) {
        snprintf(err, err_len,
                 "host_retention_ms=%" PRIu64 " must be 0 or at least down_after_ms=%" PRIu64,
                 s->host_retention_ms, s->down_after_ms);
        return -EINVAL;
    }
    if (strncmp(s->control, "tcp://", 6) == 0 && !s->admin_allow_dir[0]) {
        snprintf(err, err_len, "a tcp:// control endpoint needs admin_allow_dir (CURVE)");
        return -EINVAL;
    }
    if (s->metrics_listen[0]) {
        struct sockaddr_storage addr;
        socklen_t addr_len;
        char why[HTTP_ERR_MAX];
        if (http_listen_parse(s->metrics_listen, &addr, &addr_len, why, sizeof(why)) < 0) {
            snprintf(err, err_len, "metrics_listen: %s", why);
            return -EINVAL;
        }
    }
    if (s->insecure && !transport_endpoint_is_local(s->listen)) {
        snprintf(err, err_len, "insecure=true is only allowed on loopback, not %.200s", s->listen);
        return -EINVAL;
    }
    return 0;
}

/* path's directory ("." for a bare name) into dir. */
static void
dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* A file the daemon opens read-write, creating it when missing: it opens so now, or its
 * directory lets it be created. */
static int
check_writable_file(const char *key, const char *path, char *err, size_t err_len)
{
    char dir[SETTINGS_STR_MAX];
    struct stat st;

    if (stat(path, &st) == 0) {
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            int rc = -errno;
            snprintf(err, err_len, "%s: %.900s: %s", key, path, strerror(errno));
            return rc;
        }
        close(fd);
        return 0;
    }
    if (errno != ENOENT) {
        int rc = -errno;
        snprintf(err, err_len, "%s: %.900s: %s", key, path, strerror(errno));
        return rc;
    }
    dir_of(path, dir, sizeof(dir));
    if (access(dir, W_OK | X_OK) != 0) {
        int rc = -errno;
        snprintf(err, err_len, "%s: %.900s cannot be created: %s: %s", key, path, dir,
                 strerror(errno));
        return rc;
    }
    return 0;
}

/* The directory of an ipc:// socket: there, or its parent is (the daemon makes one level). */
static int
check_ipc_dir(const char *key, const char *endpoint, char *err, size_t err_len)
{
    char dir[SETTINGS_STR_MAX], parent[SETTINGS_STR_MAX];
    struct stat st;

    if (strncmp(endpoint, "ipc://", 6) != 0)
        return 0;
    dir_of(endpoint + 6, dir, sizeof(dir));
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    dir_of(dir, parent, sizeof(parent));
    if (stat(parent, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    snprintf(err, err_len, "%s: %.900s: neither its directory nor that one's parent exists", key,
             endpoint);
    return -ENOENT;
}

static int
check_allowlist(
    const char *key, const char *dir, const char *read_only_dir, char *err, size_t err_len)
{
    char msg[512];
    int rc = transport_allowlist_check(dir, read_only_dir, NULL, msg, sizeof(msg));

    if (rc < 0)
        snprintf(err, err_len, "%s: %s", key, msg);
    return rc;
}

int
settings_check_files(const struct settings *s, char *err, size_t err_len)
{
    bool agents_curve = !s->insecure;
    bool control_curve = strncmp(s->control, "tcp://", 6) == 0;
    struct transport_keys pair;
    char msg[512];
    int rc = 0;

    if (agents_curve || control_curve) {
        rc = transport_keys_load(s->key_file, &pair, true, msg, sizeof(msg));
        if (rc < 0) {
            snprintf(err, err_len, "key_file: %s", msg);
            return rc;
        }
    }
    if (agents_curve)
        rc = check_allowlist("allow_dir", s->allow_dir, NULL, err, err_len);
    if (rc == 0 && control_curve)
        rc =
            check_allowlist("admin_allow_dir", s->admin_allow_dir, s->admin_read_dir, err, err_len);
    if (rc == 0 && strcmp(s->db, ":memory:") != 0 && strncmp(s->db, "file:", 5) != 0)
        rc = check_writable_file("db", s->db, err, err_len);
    if (rc == 0)
        rc = check_ipc_dir("control", s->control, err, err_len);
    return rc;
}

void
settings_print(const struct settings *s, FILE *out)
{
    fprintf(out, "# memsched-coordinator configuration (effective values)\n");
    config_print(&table, s, true, out);
}
