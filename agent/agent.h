/*
 * agent.h - memsched-agent's engine: the policy in force and its gate, the round loop, reload.
 *
 * main.c parses the command line into agent_options and wires this module; everything the
 * agent decides lives here. The agent owns its hypervisor, its round, its coordinator link
 * and the --record file; it holds the policy in force (agent_state) and persists it in the
 * state dir (never in a dry run). Signals are the caller's: it blocks them before any thread
 * starts and passes the set; agent_run() takes them synchronously between rounds
 * (sigtimedwait is the round timer), so SIGTERM stops the agent within one round and SIGHUP
 * reloads the config without racing a round. Single-threaded.
 */
#ifndef MEMSCHED_AGENT_AGENT_H
#define MEMSCHED_AGENT_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_config.h"
#include "link.h"
#include "state.h"
#include "wire.h"

struct agent_options {
    const char *config_path; /* re-read on every reload; NULL = defaults */
    const char *uri;         /* command-line overrides of the file's keys, or NULL */
    const char *state_dir;
    const char *log_level;
    bool dry_run;
    bool once;
    bool table;
    const char *record_path;
    uint64_t max_rounds; /* 0 = no limit */
    /* systemd's sd_notify, or NULL: READY, RELOADING, WATCHDOG, STOPPING. */
    void (*notify)(const char *state);
    /* Send WATCHDOG at least this often, also while waiting between rounds (a round can be
     * up to an hour apart); 0: only once a round. main sets half of systemd's WatchdogSec. */
    uint64_t watchdog_ms;
    /* Tests: the link's messages go to link_emit instead of a transport (see link_new()). */
    link_emit_fn link_emit;
    void *link_emit_ctx;
};

struct agent;

/* The config file, then the command line over it (also on every reload). On failure *config
 * is untouched. */
int agent_load_config(const struct agent_options *opts,
                      struct agent_config *config,
                      char *err,
                      size_t err_len);

/* Start-up: the policy in force (the persisted fleet policy within this host's limits, else
 * the config's), the --record file, the hypervisor, the coordinator link, the round. opts'
 * strings are borrowed for the agent's life. Returns 0 or -errno with err filled. */
int agent_open(const struct agent_options *opts,
               const struct agent_config *config,
               const sigset_t *signals,
               struct agent **out,
               char *err,
               size_t err_len);

/* Shut-down, mirroring agent_open(); NULL-safe, nulls *a. */
void agent_close(struct agent **a);

/* Rounds until a stop signal, --once, --rounds or the sim scenario's end; prints the summary
 * with --table. Returns the process's exit status. */
int agent_run(struct agent *a);

/* SIGHUP: re-read the config. A file that is missing, unreadable, not a regular file (a pipe
 * cannot be read again), empty (no keys: -ENODATA) or invalid, or bad labels, is refused and
 * the old config kept, logged with why. Otherwise every key that can change live is applied
 * (labels: a new hello to the coordinators; log level, dry run, limits, the local policy),
 * and each changed key that needs a restart is logged by name and keeps its old value.
 * Returns 0 when the new config was taken, else the -errno of the refusal. */
int agent_reload(struct agent *a);

/* The gate for a policy pushed by a coordinator: valid, within this host's limits, persisted
 * (a dry run persists nothing) — then it is in force and 0 is returned so the link acks it
 * applied. Otherwise a negative errno with why naming the reason, and the old policy stays. */
int agent_on_push(struct agent *a, const struct wire_policy_push *push, char *why, size_t why_len);

/* A decoded message from coordinator endpoint `which`, as the link takes them from the
 * transport: a push goes through agent_on_push() and is acked. (Tests feed messages here.) */
void agent_receive(struct agent *a, size_t which, const struct wire_msg *msg);

/* The policy in force and where it came from. */
const struct agent_state *agent_get_state(const struct agent *a);

/* The configuration in force. */
const struct agent_config *agent_get_config(const struct agent *a);

#endif /* MEMSCHED_AGENT_AGENT_H */
