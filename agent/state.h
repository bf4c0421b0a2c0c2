/*
 * state.h - the policy in force, kept in the agent's state dir across restarts.
 *
 * The file (STATE_DIR/policy.conf) is in the config syntax, written to a temporary file, synced
 * and renamed over the old one, so a crash leaves the old or the new policy, never half of one.
 * It records where the policy came from: the local config, or the fleet (a coordinator's push,
 * with its version). A fleet policy outlives restarts with the coordinator away; a config policy
 * is simply re-read from the config file.
 *
 * Beside it (STATE_DIR/targets, same syntax, same atomic replace) the balloon targets still on
 * their way, with the wall time they were saved: an agent restarted within max_age_ms takes them
 * up again, so memory it asked for before the restart is counted as in flight, not granted twice.
 */
#ifndef MEMSCHED_AGENT_STATE_H
#define MEMSCHED_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "hv.h"
#include "policy.h"

enum state_source {
    STATE_SOURCE_CONFIG = 0,
    STATE_SOURCE_FLEET,
};

struct agent_state {
    struct policy policy;
    enum state_source source;
    uint64_t version; /* the fleet policy's version; 0 for config */
    uint64_t epoch;   /* the coordinator store's epoch that version belongs to; 0 = unknown */
};

/* Replace the state file atomically. Returns 0 or -errno with err saying what failed. */
int state_save(const char *dir, const struct agent_state *state, char *err, size_t err_len);

/* Read the state file: 0, -ENOENT when there is none, or another error (a damaged or invalid
 * file) with err saying why. *state is untouched on failure. */
int state_load(const char *dir, struct agent_state *state, char *err, size_t err_len);

const char *state_source_name(enum state_source source);

struct state_target {
    char uuid[HV_UUID_LEN];
    uint64_t target_kib;
};

/* Replace the targets file with targets[0, n), saved at wall time now_ms. */
int state_save_targets(const char *dir,
                       const struct state_target *targets,
                       size_t n,
                       uint64_t now_ms,
                       char *err,
                       size_t err_len);

/* Read up to cap targets saved at most max_age_ms before wall time now_ms into targets, *n the
 * count. An older file, or one from the future (a clock step), gives none. Returns 0, -ENOENT
 * when there is no file, or another error (a damaged file) with err saying why. */
int state_load_targets(const char *dir,
                       uint64_t now_ms,
                       uint64_t max_age_ms,
                       struct state_target *targets,
                       size_t cap,
                       size_t *n,
                       char *err,
                       size_t err_len);

#endif /* MEMSCHED_AGENT_STATE_H */
