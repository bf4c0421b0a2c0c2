/*
 * state.c - the policy in force on disk: atomic replace, validated load.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define STATE_FILE   "policy.conf"
#define TARGETS_FILE "targets"
#define PATH_MAX_LEN 4096
#define TEXT_MAX     4096

const char *
state_source_name(enum state_source source)
{
    return source == STATE_SOURCE_FLEET ? "fleet" : "config";
}

static size_t
format_state(const struct agent_state *state, char *text, size_t len)
{
    size_t n_params, used;
    const struct config_key *params = policy_params(&n_params);
    char value[64];

    used = (size_t)snprintf(text, len,
                            "# memsched-agent: the policy in force; written by the agent\n"
                            "source = %s\nversion = %" PRIu64 "\nepoch = %" PRIu64 "\n",
                            state_source_name(state->source), state->version, state->epoch);
    for (size_t i = 0; i < n_params && used < len; i++) {
        policy_get(&state->policy, params[i].name, value, sizeof(value));
        used += (size_t)snprintf(text + used, len - used, "%s = %s\n", params[i].name, value);
    }
    return used;
}

static int
write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The rename is durable only once the directory itself is synced. */
static int
sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Write text to dir/name through a synced temporary file and a rename. */
static int
replace_file(
    const char *dir, const char *name, const char *text, size_t len, char *err, size_t err_len)
{
    char tmp[PATH_MAX_LEN], path[PATH_MAX_LEN];
    int rc;

    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
        return rc;
    }
    rc = write_all(fd, text, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = sync_dir(dir);
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

int
state_save(const char *dir, const struct agent_state *state, char *err, size_t err_len)
{
    char text[TEXT_MAX];
    size_t len = format_state(state, text, sizeof(text));

    return replace_file(dir, STATE_FILE, text, len, err, err_len);
}

static int
set_state(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    struct agent_state *state = ctx;

    if (strcmp(key, "source") == 0) {
        if (strcmp(value, "config") == 0 || strcmp(value, "fleet") == 0) {
            state->source = strcmp(value, "fleet") == 0 ? STATE_SOURCE_FLEET : STATE_SOURCE_CONFIG;
            return 0;
        }
        snprintf(err, err_len, "source='%s' must be config or fleet", value);
        return -EINVAL;
    }
    if (strcmp(key, "version") == 0 || strcmp(key, "epoch") == 0) {
        uint64_t v;
        if (config_parse_u64(value, &v) < 0) {
            snprintf(err, err_len, "%s='%s' is not a whole number", key, value);
            return -EINVAL;
        }
        *(strcmp(key, "version") == 0 ? &state->version : &state->epoch) = v;
        return 0;
    }
    return policy_set(&state->policy, key, value, err, err_len);
}

int
state_load(const char *dir, struct agent_state *state, char *err, size_t err_len)
{
    char path[PATH_MAX_LEN], msg[CONFIG_ERR_MAX];
    struct agent_state loaded = {.source = STATE_SOURCE_CONFIG};

    snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
    policy_init_defaults(&loaded.policy);
    int rc = config_parse_file(path, set_state, &loaded, err, err_len);
    if (rc < 0)
        return rc;
    rc = policy_validate(&loaded.policy, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, msg);
        return rc;
    }
    *state = loaded;
    return 0;
}

/* ---- targets in flight ---- */

int
state_save_targets(const char *dir,
                   const struct state_target *targets,
                   size_t n,
                   uint64_t now_ms,
                   char *err,
                   size_t err_len)
{
    size_t cap = 128 + n * (HV_UUID_LEN + 32);
    char *text = util_xcalloc(cap, 1);
    size_t used = (size_t)snprintf(text, cap,
                                   "# memsched-agent: balloon targets on their way; written by the "
                                   "agent\nsaved_ms = %" PRIu64 "\n",
                                   now_ms);

    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(text + used, cap - used, "%s = %" PRIu64 "\n", targets[i].uuid,
                                 targets[i].target_kib);
    int rc = replace_file(dir, TARGETS_FILE, text, used, err, err_len);
    free(text);
    return rc;
}

struct targets_load {
    struct state_target *targets;
    size_t cap;
    size_t n;
    uint64_t saved_ms;
    bool has_saved;
};

static int
set_target(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    struct targets_load *l = ctx;
    uint64_t v;

    if (config_parse_u64(value, &v) < 0) {
        snprintf(err, err_len, "%s='%s' is not a whole number", key, value);
        return -EINVAL;
    }
    if (strcmp(key, "saved_ms") == 0) {
        l->saved_ms = v;
        l->has_saved = true;
        return 0;
    }
    if (strlen(key) != HV_UUID_LEN - 1 || v == 0) {
        snprintf(err, err_len, "'%s = %s' is not a VM's UUID and a target in KiB", key, value);
        return -EINVAL;
    }
    if (l->n < l->cap) {
        snprintf(l->targets[l->n].uuid, sizeof(l->targets[l->n].uuid), "%s", key);
        l->targets[l->n++].target_kib = v;
    }
    return 0;
}

int
state_load_targets(const char *dir,
                   uint64_t now_ms,
                   uint64_t max_age_ms,
                   struct state_target *targets,
                   size_t cap,
                   size_t *n,
                   char *err,
                   size_t err_len)
{
    char path[PATH_MAX_LEN];
    struct targets_load l = {.targets = targets, .cap = cap};

    *n = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, TARGETS_FILE);
    int rc = config_parse_file(path, set_target, &l, err, err_len);
    if (rc < 0)
        return rc;
    if (!l.has_saved) {
        snprintf(err, err_len, "%s: no saved_ms", path);
        return -EINVAL;
    }
    if (l.saved_ms <= now_ms && now_ms - l.saved_ms <= max_age_ms)
        *n = l.n;
    return 0;
}
