/*
 * agent.c - memsched-agent's engine: the policy gate, reload and the round loop (see agent.h).
 *
 * Start-up: state (policy in force) -> record file -> hypervisor -> link -> report cadence ->
 * round -> targets. agent_close() mirrors it.
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cadence.h"
#include "config.h"
#include "hv.h"
#include "hv_backends.h"
#include "hv_sim.h"
#include "link.h"
#include "log.h"
#include "report.h"
#include "round.h"
#include "textfile.h"
#include "util.h"

#define LOG_MODULE             "agent"
#define POLLS_PER_STATS_PERIOD 4
/* Targets saved longer ago than this are not taken up after a restart: the balloon has
 * arrived, or is stuck, or the VM restarted meanwhile. */
#define TARGETS_MAX_AGE_MS  60000
#define TEXTFILE_LOG_MAX_MS 600000 /* a failing textfile is complained about at most this often */

struct agent {
    struct agent_options opts;
    struct agent_config config;
    struct agent_state state; /* the policy in force and where it came from */
    struct hv *hv;
    struct round *round;
    sigset_t signals;
    uint64_t start_ms;
    FILE *record;                   /* --record: the per-round CSV */
    uint64_t targets_hash;          /* of the in-flight targets last saved */
    struct link *link;              /* to the coordinators; NULL without one */
    struct cadence *cadence;        /* when the next report goes (with a link) */
    uint64_t said_ms;               /* when a report or heartbeat last went (monotonic) */
    uint64_t reports, heartbeats;   /* sent: the log's tally at the end */
    uint64_t watchdog_at_ms;        /* when WATCHDOG was last sent (monotonic) */
    char host_id[WIRE_HOST_ID_MAX]; /* host_id, or the host name */
    uint64_t round_us;              /* how long the last round took */
    struct log_limit textfile_failures;
};

static void
notify(const struct agent *a, const char *state)
{
    if (a->opts.notify)
        a->opts.notify(state);
}

/* The loop is alive: systemd's watchdog hears so once a round and, with opts.watchdog_ms, while
 * the loop waits for the next one. Only the loop sends it, so a round stuck in a libvirt call
 * still lets the watchdog fire. */
static void
pet_watchdog(struct agent *a, uint64_t now_ms)
{
    notify(a, "WATCHDOG=1");
    a->watchdog_at_ms = now_ms;
}

/* The config file, then the command line over it (also on every reload). */
int
agent_load_config(const struct agent_options *o,
                  struct agent_config *config,
                  char *err,
                  size_t err_len)
{
    struct agent_config loaded;
    int rc = 0;

    agent_config_init_defaults(&loaded);
    if (o->config_path)
        rc = agent_config_load(o->config_path, &loaded, err, err_len);
    if (rc == 0 && o->uri)
        rc = agent_config_set(&loaded, "uri", o->uri, err, err_len);
    if (rc == 0 && o->state_dir)
        rc = agent_config_set(&loaded, "state_dir", o->state_dir, err, err_len);
    if (rc == 0 && o->log_level)
        rc = agent_config_set(&loaded, "log_level", o->log_level, err, err_len);
    if (rc == 0 && o->dry_run)
        loaded.dry_run = true;
    if (rc == 0)
        *config = loaded;
    return rc;
}

/* A fleet policy on disk outlives restarts, if it still respects this host's limits (the file
 * may predate them, or have been edited); otherwise the config's policy is in force. */
static void
choose_policy(struct agent *a)
{
    char err[CONFIG_ERR_MAX];
    struct agent_state saved;
    int rc = state_load(a->config.state_dir, &saved, err, sizeof(err));

    if (rc == 0 && saved.source == STATE_SOURCE_FLEET)
        rc = agent_config_check_limits(&a->config, &saved.policy, err, sizeof(err));
    if (rc == 0 && saved.source == STATE_SOURCE_FLEET) {
        a->state = saved;
        log_info(LOG_MODULE, "event=policy source=fleet version=%" PRIu64 " from=%s", saved.version,
                 a->config.state_dir);
        return;
    }
    if (rc < 0 && rc != -ENOENT)
        log_warn(LOG_MODULE, "event=state_ignored fallback=config why=\"%s\"", err);
    a->state = (struct agent_state){.policy = a->config.policy, .source = STATE_SOURCE_CONFIG};
    log_info(LOG_MODULE, "event=policy source=config");
}

/* Persist the policy in force. A dry run persists nothing (it must leave no trace a real run
 * would pick up). Returns 0 or -errno with why filled. */
static int
save_state(const struct agent *a, char *why, size_t why_len)
{
    int rc;

    if (a->config.dry_run)
        return 0;
    if (mkdir(a->config.state_dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(why, why_len, "%.200s: %s", a->config.state_dir, strerror(errno));
    } else {
        rc = state_save(a->config.state_dir, &a->state, why, why_len);
    }
    if (rc < 0)
        log_warn(LOG_MODULE, "event=state_not_saved why=\"%s\"", why);
    return rc;
}

static uint64_t
fleet_version(const struct agent *a)
{
    return a->state.source == STATE_SOURCE_FLEET ? a->state.version : 0;
}

/* "KEY=VALUE,KEY=VALUE" into labels; returns how many, or -EINVAL. */
static int
parse_labels(const char *text, struct wire_label *labels, size_t max)
{
    char copy[AGENT_CONFIG_STR_MAX], *save = NULL;
    int n = 0;

    snprintf(copy, sizeof(copy), "%s", text);
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || (size_t)n == max || eq == tok || (size_t)(eq - tok) >= sizeof(labels[n].key) ||
            strlen(eq + 1) >= sizeof(labels[n].value) || !eq[1])
            return -EINVAL;
        snprintf(labels[n].key, sizeof(labels[n].key), "%.*s", (int)(eq - tok), tok);
        snprintf(labels[n].value, sizeof(labels[n].value), "%s", eq + 1);
        n++;
    }
    return n;
}

static int
count_key(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    (void)key, (void)value, (void)err, (void)err_len;
    ++*(size_t *)ctx;
    return 0;
}

/* A reload re-reads the file: it must be one that can be read again and says something. An
 * empty file (a pipe read twice, `-c <(...)`, or a file caught mid-write) would otherwise give
 * the defaults: no coordinator, another host id, no labels, default limits. */
static int
check_reloadable(const char *path, char *err, size_t err_len)
{
    struct stat st;
    size_t keys = 0;

    if (stat(path, &st) < 0) {
        int rc = -errno;
        snprintf(err, err_len, "%.200s: %s", path, strerror(errno));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%.200s is not a regular file (a pipe cannot be read again)", path);
        return -EINVAL;
    }
    int rc = config_parse_file(path, count_key, &keys, err, err_len);
    if (rc < 0)
        return rc;
    if (keys == 0) {
        snprintf(err, err_len, "%.200s is empty: not taken for the defaults", path);
        return -ENODATA;
    }
    return 0;
}

/* Keys that are read once at start: on reload a change is named and the old value kept. */
static void
keep_restart_keys(const struct agent_config *old, struct agent_config *fresh)
{
    static const struct {
        const char *name;
        size_t offset;
    } strings[] = {
        {"uri", offsetof(struct agent_config, uri)},
        {"state_dir", offsetof(struct agent_config, state_dir)},
        {"coordinator", offsetof(struct agent_config, coordinator)},
        {"coordinator_key", offsetof(struct agent_config, coordinator_key)},
        {"key_file", offsetof(struct agent_config, key_file)},
        {"host_id", offsetof(struct agent_config, host_id)},
    };

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        const char *was = (const char *)old + strings[i].offset;
        char *now = (char *)fresh + strings[i].offset;
        if (strcmp(was, now) != 0) {
            log_warn(LOG_MODULE, "event=reload key=%s note=\"takes a restart\" keeping=old",
                     strings[i].name);
            snprintf(now, AGENT_CONFIG_STR_MAX, "%s", was);
        }
    }
    if (old->insecure != fresh->insecure) {
        log_warn(LOG_MODULE, "event=reload key=insecure note=\"takes a restart\" keeping=old");
        fresh->insecure = old->insecure;
    }
}

int
agent_reload(struct agent *a)
{
    char err[CONFIG_ERR_MAX];
    struct agent_config fresh;
    struct wire_label labels[WIRE_LABELS_MAX];
    int rc = 0, n_labels = 0;

    notify(a, "RELOADING=1");
    if (a->opts.config_path)
        rc = check_reloadable(a->opts.config_path, err, sizeof(err));
    if (rc == 0)
        rc = agent_load_config(&a->opts, &fresh, err, sizeof(err));
    if (rc == 0 && a->link && strcmp(fresh.labels, a->config.labels) != 0) {
        n_labels = parse_labels(fresh.labels, labels, WIRE_LABELS_MAX);
        if (n_labels < 0) {
            rc = n_labels;
            snprintf(err, sizeof(err), "labels='%.200s' must be KEY=VALUE,... (at most %d)",
                     fresh.labels, WIRE_LABELS_MAX);
        }
    }
    if (rc < 0) {
        log_err(LOG_MODULE, "event=reload_failed keeping=old why=\"%s\"", err);
    } else {
        keep_restart_keys(&a->config, &fresh);
        if (fresh.dry_run != a->config.dry_run) {
            round_set_dry_run(a->round, fresh.dry_run);
            log_info(LOG_MODULE, "event=reload dry_run=%s", fresh.dry_run ? "yes" : "no");
        }
        if (strcmp(fresh.labels, a->config.labels) != 0) {
            /* The coordinators place hosts in label scopes by their hello: say it again. */
            log_info(LOG_MODULE, "event=reload labels=\"%s\" hello=%s", fresh.labels,
                     a->link ? "yes" : "no");
            if (a->link)
                link_set_labels(a->link, labels, (size_t)n_labels, fleet_version(a));
        }
        if (fresh.report_interval_ms != a->config.report_interval_ms)
            cadence_expire(a->cadence); /* the new period counts from the next round */
        a->config = fresh;
        log_set_level(a->config.log_level);
        if (a->state.source == STATE_SOURCE_FLEET &&
            agent_config_check_limits(&a->config, &a->state.policy, err, sizeof(err)) < 0) {
            /* New limits the fleet policy crosses: this host's operator has the last word. */
            log_warn(LOG_MODULE,
                     "event=policy_dropped source=fleet version=%" PRIu64
                     " fallback=config why=\"%s\"",
                     a->state.version, err);
            a->state =
                (struct agent_state){.policy = a->config.policy, .source = STATE_SOURCE_CONFIG};
            save_state(a, err, sizeof(err));
        }
        if (a->state.source == STATE_SOURCE_CONFIG &&
            !policy_equal(&a->state.policy, &a->config.policy)) {
            a->state.policy = a->config.policy;
            save_state(a, err, sizeof(err));
            log_info(LOG_MODULE, "event=policy source=config reloaded=yes");
        }
        log_info(LOG_MODULE, "event=reloaded config=%s",
                 a->opts.config_path ? a->opts.config_path : "(none)");
    }
    notify(a, "READY=1");
    return rc;
}

/* A policy pushed by a coordinator: the same gate as the config file, then this host's own
 * hard limits. It is acked applied only once persisted: an agent that cannot keep it says so,
 * and keeps what it had. */
int
agent_on_push(struct agent *a, const struct wire_policy_push *push, char *why, size_t why_len)
{
    int rc = policy_validate(&push->policy, why, why_len);

    if (rc == 0)
        rc = agent_config_check_limits(&a->config, &push->policy, why, why_len);
    if (rc < 0) {
        log_warn(LOG_MODULE, "event=policy_refused version=%" PRIu64 " scope=%s why=\"%s\"",
                 push->version, push->scope, why);
        return rc;
    }
    /* A retry of what we hold (a number from another epoch is another policy; the same number
     * with other values is the host's layers merged again after its labels changed). */
    if (a->state.source == STATE_SOURCE_FLEET && a->state.version == push->version &&
        a->state.epoch == push->epoch && policy_equal(&a->state.policy, &push->policy))
        return 0;
    struct agent_state before = a->state;
    a->state = (struct agent_state){.policy = push->policy,
                                    .source = STATE_SOURCE_FLEET,
                                    .version = push->version,
                                    .epoch = push->epoch};
    char err[CONFIG_ERR_MAX];
    rc = save_state(a, err, sizeof(err));
    if (rc < 0) {
        a->state = before;
        snprintf(why, why_len, "not persisted: %s", err);
        log_warn(LOG_MODULE, "event=policy_refused version=%" PRIu64 " scope=%s why=\"%s\"",
                 push->version, push->scope, why);
        return rc;
    }
    log_info(LOG_MODULE, "event=policy source=fleet version=%" PRIu64 " scope=%s", push->version,
             push->scope);
    return 0;
}

/* The link's callback for pushes. */
static int
push_gate(void *ctx, const struct wire_policy_push *push, char *why, size_t why_len)
{
    return agent_on_push(ctx, push, why, why_len);
}

static int
open_link(struct agent *a, char *err, size_t err_len)
{
    struct link_options o = {
        .server_key_path = a->config.coordinator_key,
        .key_path = a->config.key_file,
        .insecure = a->config.insecure,
        .host_id = a->config.host_id[0] ? a->config.host_id : a->host_id, /* checked there */
        .policy_version = fleet_version(a),
        .policy_epoch = a->state.epoch,
    };
    char endpoints[AGENT_CONFIG_STR_MAX], *save = NULL;

    if (!a->config.coordinator[0])
        return 0;
    snprintf(endpoints, sizeof(endpoints), "%s", a->config.coordinator);
    for (char *tok = strtok_r(endpoints, ", ", &save); tok && o.n_endpoints < LINK_ENDPOINTS_MAX;
         tok = strtok_r(NULL, ", ", &save))
        o.endpoints[o.n_endpoints++] = tok;
    int n = parse_labels(a->config.labels, o.labels, WIRE_LABELS_MAX);
    if (n < 0) {
        snprintf(err, err_len, "labels='%.200s' must be KEY=VALUE,... (at most %d)",
                 a->config.labels, WIRE_LABELS_MAX);
        return -EINVAL;
    }
    o.n_labels = (size_t)n;
    if (a->opts.link_emit)
        return link_new(&o, a->opts.link_emit, a->opts.link_emit_ctx, &a->link, err, err_len);
    return link_open(&o, &a->link, err, err_len);
}

/* The coordinators mark a host stale after stale_after_ms without a message (3 s by
 * default): between reports spaced further apart, a heartbeat says the host is alive. Only
 * after heartbeat_interval_ms of silence, so a host that reports every round sends none. */
static void
keep_alive(struct agent *a, uint64_t now)
{
    if (!a->link || now - a->said_ms < a->config.heartbeat_interval_ms)
        return;
    link_heartbeat(a->link, fleet_version(a));
    a->said_ms = now;
    a->heartbeats++;
}

/* Wait until deadline_ms for a signal. Returns false when the agent should stop. */
static bool
wait_for_next_round(struct agent *a, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = util_clock_ms(CLOCK_MONOTONIC);
        if (now >= deadline_ms)
            return true;
        uint64_t wait = deadline_ms - now;
        keep_alive(a, now);
        if (a->link && a->said_ms + a->config.heartbeat_interval_ms - now < wait)
            wait = a->said_ms + a->config.heartbeat_interval_ms - now;
        if (a->opts.watchdog_ms) {
            if (now - a->watchdog_at_ms >= a->opts.watchdog_ms)
                pet_watchdog(a, now);
            uint64_t until_ping = a->watchdog_at_ms + a->opts.watchdog_ms - now;
            if (wait > until_ping)
                wait = until_ping;
        }
        if (a->link) {
            /* The coordinators get the wait, in slices, so signals are still seen quickly. */
            link_poll(a->link, wait < 100 ? (int)wait : 100, fleet_version(a), push_gate, a);
            wait = 0;
        }
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000),
                              .tv_nsec = (long)(wait % 1000) * 1000000};
        int sig = sigtimedwait(&a->signals, NULL, &ts);
        if (sig == SIGHUP)
            agent_reload(a);
        else if (sig == SIGTERM || sig == SIGINT)
            return false;
    }
}

/* A sim scenario with a duration ends the run when its time is up. */
static bool
scenario_over(struct agent *a)
{
    struct sim *sim = sim_from_hv(a->hv);
    return sim && sim_duration_ms(sim) && sim_now_ms(sim) >= sim_duration_ms(sim);
}

static void
report_sim_outcome(struct agent *a)
{
    struct sim *sim = sim_from_hv(a->hv);
    struct sim_host_view host;
    uint64_t worst_ms = 0, starved_ms = 0;
    const char *worst = "-", *starved = "-";

    if (!sim)
        return;
    for (size_t i = 0; i < sim_vm_count(sim); i++) {
        struct sim_vm_view v;
        sim_vm_view(sim, i, &v);
        uint64_t below_ms = a->state.policy.demand_signal == POLICY_DEMAND_USABLE
                                ? v.usable_below_min_ms
                                : v.below_min_ms;
        if (below_ms > worst_ms) {
            worst_ms = below_ms;
            worst = v.name;
        }
        if (v.starved_ms > starved_ms) {
            starved_ms = v.starved_ms;
            starved = v.name;
        }
    }
    sim_host_view(sim, &host);
    printf("  sim: longest time a VM spent below its min unused (by %s): %.1f s (%s)\n",
           policy_demand_signal_name(a->state.policy.demand_signal), (double)worst_ms / 1000.0,
           worst);
    printf("  sim: longest time a VM's workload was refused memory: %.1f s (%s)\n",
           (double)starved_ms / 1000.0, starved);
    printf("  sim: time the host spent below its floor: %.1f s (worst %.1f MiB)\n",
           (double)host.below_min_ms / 1000.0, (double)host.worst_below_min_kib / 1024.0);
}

/* The node_exporter textfile, when configured (a reload may set or change it at once). A
 * failure is logged with back-off and its end once; scheduling goes on either way. */
static void
publish_textfile(struct agent *a, const struct round_view *view, uint64_t now)
{
    char err[512];
    size_t len;

    if (!a->config.metrics_textfile[0])
        return;
    struct textfile_extra extra = {
        .host_id = a->config.host_id[0] ? a->config.host_id : a->host_id, /* checked there */
        .policy_version = fleet_version(a),
        .round_us = a->round_us,
        .reports_dropped = a->link ? link_dropped(a->link) : 0,
        .messages_rejected = a->link ? link_rejected(a->link) : 0,
    };
    char *text = textfile_format(view, round_get_counters(a->round), &extra, &len);
    int rc = textfile_write(a->config.metrics_textfile, text, len, err, sizeof(err));
    free(text);
    if (rc < 0 && log_limit_failure(&a->textfile_failures, now, TEXTFILE_LOG_MAX_MS))
        log_warn(LOG_MODULE, "event=textfile_failed why=\"%s\" failures=%" PRIu64, err,
                 a->textfile_failures.failures);
    else if (rc == 0 && log_limit_success(&a->textfile_failures))
        log_info(LOG_MODULE, "event=textfile_recovered path=%s", a->config.metrics_textfile);
}

/* The longest between two reports: report_interval_ms, or every round. */
static uint64_t
report_period_ms(const struct agent *a)
{
    return a->config.report_interval_ms ? a->config.report_interval_ms
                                        : a->state.policy.interval_ms;
}

/* To the coordinators when the cadence says so (cadence.h): a round's decisions at once, else
 * news or the period. */
static void
maybe_report(struct agent *a, const struct round_view *view, uint64_t now)
{
    enum cadence_reason why = cadence_due(a->cadence, view, link_hellos(a->link), now);

    if (why == CADENCE_QUIET)
        return;
    link_report(a->link, view, round_get_counters(a->round), fleet_version(a));
    cadence_sent(a->cadence, now, report_period_ms(a));
    a->said_ms = now;
    a->reports++;
    log_debug(LOG_MODULE, "event=report why=%s vms=%zu", cadence_reason_name(why), view->n_vms);
}

/* The round's outputs: the table, the CSV, the coordinators (cadence.h), and the textfile
 * when textfile is set (once an interval: see agent_run()). */
static void
publish_round(struct agent *a, uint64_t n, uint64_t now, bool textfile)
{
    struct round_view view;

    round_get_view(a->round, &view);
    if (textfile)
        publish_textfile(a, &view, now);
    if (a->opts.table)
        report_round(stdout, &view, &a->state.policy, n, now - a->start_ms);
    if (a->record)
        report_csv_round(a->record, &view, &a->state.policy, n, now - a->start_ms);
    if (a->link)
        maybe_report(a, &view, now);
}

/* Keep the balloon targets still on their way in the state dir when they changed, so a
 * restarted agent counts them as in flight instead of granting the same memory again. */
static void
save_targets(struct agent *a)
{
    char err[CONFIG_ERR_MAX];
    size_t n = round_targets_in_flight(a->round, NULL, 0);
    struct state_target *targets = util_xcalloc(n ? n : 1, sizeof(*targets));
    uint64_t hash = UTIL_HASH_SEED;

    round_targets_in_flight(a->round, targets, n);
    for (size_t i = 0; i < n; i++)
        hash = util_hash_mix(util_hash_mix(hash, util_hash_str(targets[i].uuid)),
                             targets[i].target_kib);
    if (hash != a->targets_hash &&
        state_save_targets(a->config.state_dir, targets, n, util_clock_ms(CLOCK_REALTIME), err,
                           sizeof(err)) == 0)
        a->targets_hash = hash;
    free(targets);
}

/* Targets set before a restart, taken up again while they are recent. */
static void
load_targets(struct agent *a)
{
    char err[CONFIG_ERR_MAX];
    struct state_target targets[SCHED_VMS_MAX / 16];
    size_t n = 0;
    int rc =
        state_load_targets(a->config.state_dir, util_clock_ms(CLOCK_REALTIME), TARGETS_MAX_AGE_MS,
                           targets, sizeof(targets) / sizeof(targets[0]), &n, err, sizeof(err));

    if (rc < 0 && rc != -ENOENT)
        log_warn(LOG_MODULE, "event=targets_ignored why=\"%s\"", err);
    if (n == 0)
        return;
    round_seed_targets(a->round, targets, n, util_clock_ms(CLOCK_MONOTONIC));
    log_info(LOG_MODULE, "event=targets_resumed count=%zu", n);
}

/* Between rounds, while some VM is worth watching (round_watchful), the agent looks for fresh
 * guest stats several times per stats period; otherwise it waits for the next round. Each look
 * is a libvirt call, and on an idle host most of the agent's CPU is such calls. */
static uint64_t
poll_ms(const struct policy *policy, bool watchful)
{
    if (!watchful)
        return policy->interval_ms;
    uint64_t period_ms =
        policy->interval_ms < 1000 ? 1000 : (policy->interval_ms + 999) / 1000 * 1000;
    uint64_t poll = period_ms / POLLS_PER_STATS_PERIOD;
    return poll < policy->interval_ms ? poll : policy->interval_ms;
}

static uint64_t
clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Rounds every interval_ms; between them, polls that plan as soon as a guest reports anew.
 * The textfile is written at most once an interval, whatever the report period: its reader
 * (node_exporter) scrapes on its own schedule, and a file write costs no coordinator
 * anything, so the local metrics stay as fresh as the rounds. */
int
agent_run(struct agent *a)
{
    uint64_t next_ms = util_clock_ms(CLOCK_MONOTONIC);
    uint64_t next_textfile_ms = next_ms;
    uint64_t n = 0;
    int rc = 0;

    notify(a, "READY=1");
    for (;;) {
        uint64_t now = util_clock_ms(CLOCK_MONOTONIC);
        bool due = now >= next_ms;
        bool planned = due;

        uint64_t began_us = clock_us();
        if (due) {
            rc = round_run(a->round, &a->state.policy, now);
        } else {
            rc = round_poll(a->round, &a->state.policy, now);
            planned = rc == 1;
        }
        if (planned)
            a->round_us = clock_us() - began_us;
        if (planned && rc != -ENOTCONN && !a->config.dry_run)
            save_targets(a);
        if (planned && rc != -ENOTCONN) {
            bool textfile = now >= next_textfile_ms;
            publish_round(a, ++n, now, textfile);
            if (textfile)
                next_textfile_ms =
                    cadence_next_due_ms(next_textfile_ms, now, a->state.policy.interval_ms);
        }
        keep_alive(a, now); /* also while rounds cannot report (libvirtd away) */
        pet_watchdog(a, now);
        if (planned && (a->opts.once || (a->opts.max_rounds && n >= a->opts.max_rounds)))
            break;
        if (scenario_over(a))
            break;
        if (due) {
            next_ms += a->state.policy.interval_ms;
            if (next_ms < now)
                next_ms = now; /* a slow round does not make the next ones rush */
        }
        uint64_t wake = now + poll_ms(&a->state.policy, round_watchful(a->round));
        if (!wait_for_next_round(a, wake < next_ms ? wake : next_ms))
            break;
    }
    notify(a, "STOPPING=1");
    if (a->opts.table) {
        report_summary(stdout, round_get_counters(a->round),
                       util_clock_ms(CLOCK_MONOTONIC) - a->start_ms);
        report_sim_outcome(a);
    }
    return a->opts.once && rc < 0 ? 1 : 0;
}

int
agent_open(const struct agent_options *opts,
           const struct agent_config *config,
           const sigset_t *signals,
           struct agent **out,
           char *err,
           size_t err_len)
{
    struct agent *a = util_xcalloc(1, sizeof(*a));
    int rc;

    a->opts = *opts;
    a->config = *config;
    a->signals = *signals;
    a->start_ms = util_clock_ms(CLOCK_MONOTONIC);
    snprintf(a->host_id, sizeof(a->host_id), "%.*s", (int)sizeof(a->host_id) - 1,
             a->config.host_id);
    if (!a->host_id[0] && gethostname(a->host_id, sizeof(a->host_id)) == 0)
        a->host_id[sizeof(a->host_id) - 1] = '\0';
    choose_policy(a);
    save_state(a, err, err_len);

    if (a->opts.record_path) {
        a->record = fopen(a->opts.record_path, "a");
        if (!a->record) {
            rc = -errno;
            snprintf(err, err_len, "--record %.200s: %s", a->opts.record_path, strerror(errno));
            log_err(LOG_MODULE, "event=record_open_failed path=%s error=%s", a->opts.record_path,
                    strerror(-rc));
            goto fail;
        }
        if (ftell(a->record) == 0)
            report_csv_header(a->record);
    }
    rc = hv_open(a->config.uri, &a->hv, err, err_len);
    if (rc < 0) {
        log_err(LOG_MODULE, "event=hypervisor_open_failed uri=%s why=\"%s\"", a->config.uri, err);
        goto fail;
    }
    rc = open_link(a, err, err_len);
    if (rc < 0) {
        log_err(LOG_MODULE, "event=coordinator_link_failed why=\"%s\"", err);
        goto fail;
    }
    a->cadence = cadence_new();
    a->said_ms = a->start_ms; /* the link said hello */
    a->round = round_new(a->hv, a->config.dry_run);
    if (!a->config.dry_run)
        load_targets(a);
    log_info(LOG_MODULE, "event=started uri=%s dry_run=%s interval_ms=%" PRIu32, a->config.uri,
             a->config.dry_run ? "yes" : "no", a->state.policy.interval_ms);
    *out = a;
    return 0;
fail:
    agent_close(&a);
    return rc;
}

void
agent_close(struct agent **ap)
{
    struct agent *a = ap ? *ap : NULL;

    if (!a)
        return;
    if (a->round) {
        log_info(LOG_MODULE,
                 "event=stopped rounds=%" PRIu64 " reports=%" PRIu64 " heartbeats=%" PRIu64,
                 round_get_counters(a->round)->rounds, a->reports, a->heartbeats);
        round_destroy(&a->round);
    }
    cadence_destroy(&a->cadence);
    link_destroy(&a->link);
    hv_close(&a->hv);
    if (a->record)
        fclose(a->record);
    free(a);
    *ap = NULL;
}

void
agent_receive(struct agent *a, size_t which, const struct wire_msg *msg)
{
    if (a->link)
        link_receive(a->link, which, msg, fleet_version(a), push_gate, a);
}

const struct agent_state *
agent_get_state(const struct agent *a)
{
    return &a->state;
}

const struct agent_config *
agent_get_config(const struct agent *a)
{
    return &a->config;
}
