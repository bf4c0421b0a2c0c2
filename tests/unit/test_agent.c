/*
 * test_agent.c - the agent's gate for pushed policies (agent_on_push): accept, refuse below a
 * local limit, refuse invalid, persist before acking (a dry run persists nothing); reload; the
 * watchdog; what reaches the coordinators (every round's decisions, heartbeats between spaced
 * reports).
 *
 * The agent runs on a sim scenario (no libvirt, no coordinator) with a state dir of its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "agent_config.h"
#include "config.h"
#include "state.h"

static char dir[] = "/tmp/memsched-test-agent-XXXXXX";

/* What the agent's link sent; for each applied ack, what was on disk when it was sent. */
struct outbox {
    const char *state_dir;
    size_t n_hellos;
    struct wire_hello hello; /* the last one */
    size_t n_acks;
    struct wire_policy_ack ack; /* the last one */
    bool ack_on_disk;           /* the acked version was in the state file as the ack left */
    /* Reports: the KiB their decisions granted, summed over every report so far, against the
     * agent's own total in the last one; the first report where they differ. */
    size_t n_reports, n_heartbeats;
    uint64_t granted_sent_kib;
    uint64_t rounds_reported; /* the agent's rounds as of the last report */
    bool granted_differs;
    uint64_t granted_want_kib, granted_got_kib;
    size_t most_vms;    /* in one report */
    bool vms_unordered; /* some report did not list its VMs in ascending uuid order */
};

struct fixture {
    char config_path[512];
    char state_dir[512];
    struct agent_config config;
    struct agent *agent;
    struct outbox box;
};

static void
emit(void *ctx, size_t which, struct wire_msg *msg)
{
    struct outbox *box = ctx;
    struct agent_state saved;
    char err[CONFIG_ERR_MAX];
    (void)which;

    if (msg->body == WIRE_BODY_HELLO) {
        box->n_hellos++;
        box->hello = msg->u.hello;
    } else if (msg->body == WIRE_BODY_POLICY_ACK) {
        box->n_acks++;
        box->ack = msg->u.ack;
        box->ack_on_disk = state_load(box->state_dir, &saved, err, sizeof(err)) == 0 &&
                           saved.source == STATE_SOURCE_FLEET &&
                           saved.version == msg->u.ack.version;
    } else if (msg->body == WIRE_BODY_REPORT) {
        const struct wire_report *r = &msg->u.report;
        box->n_reports++;
        box->rounds_reported = r->counters.rounds;
        box->most_vms = r->n_vms > box->most_vms ? r->n_vms : box->most_vms;
        for (size_t i = 1; i < r->n_vms; i++)
            box->vms_unordered |= strcmp(r->vms[i - 1].uuid, r->vms[i].uuid) >= 0;
        for (size_t i = 0; i < r->n_decisions; i++) {
            if (r->decisions[i].reason == SCHED_REASON_GROW)
                box->granted_sent_kib += r->decisions[i].vm_kib + r->decisions[i].host_kib;
        }
        if (!box->granted_differs && box->granted_sent_kib != r->counters.granted_kib) {
            box->granted_differs = true;
            box->granted_want_kib = r->counters.granted_kib;
            box->granted_got_kib = box->granted_sent_kib;
        }
    } else if (msg->body == WIRE_BODY_HEARTBEAT) {
        box->n_heartbeats++;
    }
}

/* An agent on a sim scenario; with extra config lines when config_text is set (then it is
 * read from a file, as the daemon does), and its link's messages to f->box. */
static struct agent *
open_agent_with(struct fixture *f, const char *state_sub, bool dry_run, const char *config_text)
{
    struct agent_options opts = {.dry_run = dry_run, .link_emit = emit, .link_emit_ctx = &f->box};
    char err[CONFIG_ERR_MAX];
    sigset_t none;

    sigemptyset(&none);
    snprintf(f->state_dir, sizeof(f->state_dir), "%s/%s", dir, state_sub);
    f->box.state_dir = f->state_dir;
    agent_config_init_defaults(&f->config);
    if (config_text) {
        static int n_configs;
        snprintf(f->config_path, sizeof(f->config_path), "%s/agent%d.conf", dir, ++n_configs);
        FILE *file = fopen(f->config_path, "w");
        assert_non_null(file);
        fprintf(file, "uri = sim:%s/one_hog.json\nstate_dir = %s\n%s", SCENARIO_DIR, f->state_dir,
                config_text);
        fclose(file);
        opts.config_path = f->config_path;
        if (agent_load_config(&opts, &f->config, err, sizeof(err)) < 0)
            fail_msg("agent_load_config: %s", err);
    }
    if (!config_text) {
        assert_int_equal(agent_config_set(&f->config, "uri", "sim:" SCENARIO_DIR "/one_hog.json",
                                          err, sizeof(err)),
                         0);
        assert_int_equal(agent_config_set(&f->config, "state_dir", f->state_dir, err, sizeof(err)),
                         0);
        f->config.dry_run = dry_run;
    }
    int rc = agent_open(&opts, &f->config, &none, &f->agent, err, sizeof(err));
    if (rc < 0)
        fail_msg("agent_open: %s", err);
    return f->agent;
}

static struct agent *
open_agent(struct fixture *f, const char *state_sub, bool dry_run)
{
    return open_agent_with(f, state_sub, dry_run, NULL);
}

#define WITH_COORDINATOR "coordinator = tcp://127.0.0.1:1\ninsecure = yes\nhost_id = hv1\n"

static struct wire_policy_push
push_of(const struct agent *a, uint64_t version)
{
    struct wire_policy_push push = {.version = version, .epoch = 7};
    snprintf(push.scope, sizeof(push.scope), "fleet");
    push.policy = agent_get_config(a)->policy;
    push.policy.max_release_step_kib /= 2; /* differs from the config's */
    return push;
}

static void
assert_on_disk(const char *state_dir, enum state_source source, uint64_t version)
{
    struct agent_state saved;
    char err[CONFIG_ERR_MAX];
    int rc = state_load(state_dir, &saved, err, sizeof(err));
    if (rc < 0)
        fail_msg("state_load(%s): %s", state_dir, err);
    if (saved.source != source || saved.version != version)
        fail_msg("on disk: want source=%s version=%llu, got source=%s version=%llu",
                 state_source_name(source), (unsigned long long)version,
                 state_source_name(saved.source), (unsigned long long)saved.version);
}

static void
test_accepts_a_valid_push_and_persists_it(void **state)
{
    struct fixture f = {0};
    char why[WIRE_REASON_MAX] = "";
    (void)state;

    struct agent *a = open_agent(&f, "accept", false);
    assert_on_disk(f.state_dir, STATE_SOURCE_CONFIG, 0);
    struct wire_policy_push push = push_of(a, 3);
    assert_int_equal(agent_on_push(a, &push, why, sizeof(why)), 0);
    assert_int_equal(agent_get_state(a)->source, STATE_SOURCE_FLEET);
    assert_int_equal(agent_get_state(a)->version, 3);
    assert_int_equal(agent_get_state(a)->epoch, 7);
    assert_int_equal(agent_get_state(a)->policy.max_release_step_kib,
                     push.policy.max_release_step_kib);
    assert_on_disk(f.state_dir, STATE_SOURCE_FLEET, 3);
    /* A retry of what is held is applied again, and changes nothing. */
    assert_int_equal(agent_on_push(a, &push, why, sizeof(why)), 0);
    assert_int_equal(agent_get_state(a)->version, 3);
    /* The same version with other values (its layers merged again after its labels changed)
     * is applied and persisted. */
    push.policy.vm_floor_kib += 1024;
    assert_int_equal(agent_on_push(a, &push, why, sizeof(why)), 0);
    assert_int_equal(agent_get_state(a)->policy.vm_floor_kib, push.policy.vm_floor_kib);
    struct agent_state saved;
    char err[CONFIG_ERR_MAX];
    assert_int_equal(state_load(f.state_dir, &saved, err, sizeof(err)), 0);
    assert_int_equal(saved.policy.vm_floor_kib, push.policy.vm_floor_kib);
    agent_close(&a);
}

static void
test_refuses_a_push_below_a_local_limit(void **state)
{
    struct fixture f = {0};
    char why[WIRE_REASON_MAX] = "";
    (void)state;

    struct agent *a = open_agent(&f, "limit", false);
    struct wire_policy_push push = push_of(a, 4);
    /* Valid as a policy (validation allows it), but below this host's default floor. */
    push.policy.vm_min_unused_kib = 10 * 1024;
    push.policy.vm_grow_target_unused_kib = 20 * 1024;
    push.policy.vm_excess_unused_kib = 30 * 1024;
    int rc = agent_on_push(a, &push, why, sizeof(why));
    assert_int_equal(rc, -EPERM);
    if (!strstr(why, "vm_min_unused_mib=10") || !strstr(why, "limit_vm_min_unused_mib"))
        fail_msg("want the field and the limit named in the reason, got \"%s\"", why);
    assert_int_equal(agent_get_state(a)->source, STATE_SOURCE_CONFIG);
    assert_on_disk(f.state_dir, STATE_SOURCE_CONFIG, 0);
    agent_close(&a);
}

static void
test_refuses_an_invalid_push(void **state)
{
    struct fixture f = {0};
    char why[WIRE_REASON_MAX] = "";
    (void)state;

    struct agent *a = open_agent(&f, "invalid", false);
    struct wire_policy_push push = push_of(a, 5);
    /* Grow target below the need threshold: policy_validate refuses it. */
    push.policy.vm_grow_target_unused_kib = push.policy.vm_min_unused_kib / 2;
    int rc = agent_on_push(a, &push, why, sizeof(why));
    assert_true(rc < 0);
    if (!why[0])
        fail_msg("want a reason for an invalid policy, got none");
    assert_int_equal(agent_get_state(a)->source, STATE_SOURCE_CONFIG);
    assert_on_disk(f.state_dir, STATE_SOURCE_CONFIG, 0);
    agent_close(&a);
}

/* Applied means persisted: an agent that cannot write its state dir refuses the push (the
 * link then acks it refused, with this reason) and keeps what it had. */
static void
test_refuses_a_push_it_cannot_persist(void **state)
{
    struct fixture f = {0};
    char why[WIRE_REASON_MAX] = "", path[512];
    (void)state;

    /* A state dir under a regular file: mkdir fails with ENOTDIR, also for root. */
    snprintf(path, sizeof(path), "%s/file", dir);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fclose(file);
    struct agent *a = open_agent(&f, "file/state", false);
    struct wire_policy_push push = push_of(a, 6);
    int rc = agent_on_push(a, &push, why, sizeof(why));
    assert_true(rc < 0);
    if (strncmp(why, "not persisted: ", 15) != 0)
        fail_msg("want \"not persisted: ...\", got \"%s\"", why);
    assert_int_equal(agent_get_state(a)->source, STATE_SOURCE_CONFIG);
    assert_int_equal(agent_get_state(a)->version, 0);
    agent_close(&a);
}

/* A dry run takes the push (it plans with it) but leaves no trace a real run would pick up. */
static void
test_dry_run_applies_a_push_and_persists_nothing(void **state)
{
    struct fixture f = {0};
    char why[WIRE_REASON_MAX] = "";
    struct stat st;
    (void)state;

    struct agent *a = open_agent(&f, "dry", true);
    struct wire_policy_push push = push_of(a, 8);
    assert_int_equal(agent_on_push(a, &push, why, sizeof(why)), 0);
    assert_int_equal(agent_get_state(a)->source, STATE_SOURCE_FLEET);
    assert_int_equal(agent_get_state(a)->version, 8);
    if (stat(f.state_dir, &st) == 0)
        fail_msg("a dry run created its state dir %s", f.state_dir);
    agent_close(&a);
}

static struct wire_msg
push_msg_of(const struct agent *a, uint64_t version)
{
    struct wire_msg m = {.body = WIRE_BODY_POLICY_PUSH};
    m.u.push = push_of(a, version);
    return m;
}

/* Through the link: the ack says applied only once the policy is on disk; a push that cannot
 * be persisted is acked refused with why; a dry run acks applied and writes nothing. */
static void
test_ack_applied_only_after_persisted(void **state)
{
    struct fixture f = {0}, g = {0}, d = {0};
    struct stat st;
    (void)state;

    struct agent *a = open_agent_with(&f, "ack", false, WITH_COORDINATOR);
    assert_int_equal(f.box.n_hellos, 1);
    struct wire_msg push = push_msg_of(a, 12);
    agent_receive(a, 0, &push);
    assert_int_equal(f.box.n_acks, 1);
    assert_int_equal(f.box.ack.version, 12);
    assert_true(f.box.ack.applied);
    if (!f.box.ack_on_disk)
        fail_msg("the ack for v12 left before v12 was in %s/policy.conf", f.state_dir);
    agent_close(&a);

    char path[600];
    snprintf(path, sizeof(path), "%s/blocker", dir); /* a file where a dir should be */
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fclose(file);
    a = open_agent_with(&g, "blocker/state", false, WITH_COORDINATOR);
    push = push_msg_of(a, 13);
    agent_receive(a, 0, &push);
    assert_int_equal(g.box.n_acks, 1);
    assert_false(g.box.ack.applied);
    if (strncmp(g.box.ack.reason, "not persisted: ", 15) != 0)
        fail_msg("want the ack's reason \"not persisted: ...\", got \"%s\"", g.box.ack.reason);
    assert_int_equal(agent_get_state(a)->source, STATE_SOURCE_CONFIG);
    agent_close(&a);

    a = open_agent_with(&d, "dryack", true, WITH_COORDINATOR);
    push = push_msg_of(a, 14);
    agent_receive(a, 0, &push);
    assert_int_equal(d.box.n_acks, 1);
    assert_true(d.box.ack.applied);
    if (stat(d.state_dir, &st) == 0)
        fail_msg("a dry run created its state dir %s", d.state_dir);
    agent_close(&a);
}

static void
rewrite(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

/* SIGHUP with new labels: the coordinators hear them in a new hello. */
static void
test_reload_sends_new_labels_in_a_hello(void **state)
{
    struct fixture f = {0};
    char text[2048];
    (void)state;

    struct agent *a = open_agent_with(&f, "labels", false, WITH_COORDINATOR "labels = rack=a1\n");
    assert_int_equal(f.box.n_hellos, 1);
    assert_int_equal(f.box.hello.n_labels, 1);
    assert_string_equal(f.box.hello.labels[0].value, "a1");

    snprintf(text, sizeof(text), "uri = sim:%s/one_hog.json\nstate_dir = %s\n%s%s", SCENARIO_DIR,
             f.state_dir, WITH_COORDINATOR, "labels = rack=b2,tier=gold\n");
    rewrite(f.config_path, text);
    assert_int_equal(agent_reload(a), 0);
    if (f.box.n_hellos != 2)
        fail_msg("want a second hello after a reload with new labels, got %zu hellos",
                 f.box.n_hellos);
    assert_int_equal(f.box.hello.n_labels, 2);
    assert_string_equal(f.box.hello.labels[0].value, "b2");
    assert_string_equal(f.box.hello.labels[1].key, "tier");
    assert_string_equal(agent_get_config(a)->labels, "rack=b2,tier=gold");

    /* The same labels again: no hello. Bad labels: refused, nothing sent, old kept. */
    assert_int_equal(agent_reload(a), 0);
    assert_int_equal(f.box.n_hellos, 2);
    snprintf(text, sizeof(text), "uri = sim:%s/one_hog.json\nstate_dir = %s\n%s%s", SCENARIO_DIR,
             f.state_dir, WITH_COORDINATOR, "labels = rack\n");
    rewrite(f.config_path, text);
    assert_true(agent_reload(a) < 0);
    assert_int_equal(f.box.n_hellos, 2);
    assert_string_equal(agent_get_config(a)->labels, "rack=b2,tier=gold");
    agent_close(&a);
}

/* SIGHUP on an empty file (a pipe read twice, a truncated file) or a missing one keeps the old
 * config: not the defaults. */
static void
test_reload_of_an_empty_or_missing_file_keeps_the_old_config(void **state)
{
    struct fixture f = {0};
    (void)state;

    struct agent *a = open_agent_with(&f, "empty", false,
                                      WITH_COORDINATOR "labels = rack=a1\ninterval_ms = 300\n");
    struct agent_config before = *agent_get_config(a);

    rewrite(f.config_path, "");
    assert_int_equal(agent_reload(a), -ENODATA);
    assert_memory_equal(agent_get_config(a), &before, sizeof(before));
    rewrite(f.config_path, "# only a comment\n\n");
    assert_int_equal(agent_reload(a), -ENODATA);
    assert_memory_equal(agent_get_config(a), &before, sizeof(before));
    assert_int_equal(agent_get_state(a)->policy.interval_ms, 300);
    unlink(f.config_path);
    assert_int_equal(agent_reload(a), -ENOENT);
    assert_memory_equal(agent_get_config(a), &before, sizeof(before));
    assert_int_equal(f.box.n_hellos, 1);
    agent_close(&a);
}

/* Keys read once at start keep their old value (and are named in the log); the rest apply. */
static void
test_reload_keeps_restart_keys_and_applies_the_rest(void **state)
{
    struct fixture f = {0};
    char text[2048];
    (void)state;

    struct agent *a = open_agent_with(&f, "restart", false, WITH_COORDINATOR);
    snprintf(text, sizeof(text),
             "uri = sim:%s/all_hog.json\nstate_dir = %s/elsewhere\ncoordinator = tcp://"
             "127.0.0.1:2\ninsecure = yes\nhost_id = hv2\ninterval_ms = 400\n",
             SCENARIO_DIR, f.state_dir);
    rewrite(f.config_path, text);
    assert_int_equal(agent_reload(a), 0);
    const struct agent_config *c = agent_get_config(a);
    assert_non_null(strstr(c->uri, "one_hog.json"));
    assert_string_equal(c->state_dir, f.state_dir);
    assert_string_equal(c->coordinator, "tcp://127.0.0.1:1");
    assert_string_equal(c->host_id, "hv1");
    assert_int_equal(agent_get_state(a)->policy.interval_ms, 400);
    agent_close(&a);
}

/* What systemd's watchdog heard (notify has no context pointer: file scope). */
static struct {
    uint64_t ready_ms, last_ms, max_gap_ms;
    size_t pings;
    bool stop_sent;
} heard;

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Records the gaps between WATCHDOG pings; 1.2 s after READY it raises SIGTERM once (blocked,
 * so it waits for the agent's sigtimedwait, which takes it) to end the run. */
static void
watchdog_notify(const char *state)
{
    uint64_t now = mono_ms();

    if (strcmp(state, "READY=1") == 0 && !heard.ready_ms) {
        heard.ready_ms = heard.last_ms = now;
    } else if (strcmp(state, "WATCHDOG=1") == 0) {
        if (now - heard.last_ms > heard.max_gap_ms)
            heard.max_gap_ms = now - heard.last_ms;
        heard.last_ms = now;
        heard.pings++;
    }
    if (heard.ready_ms && now - heard.ready_ms >= 1200 && !heard.stop_sent) {
        heard.stop_sent = true;
        raise(SIGTERM);
    }
}

/* Rounds 3 s apart (an hour is allowed): the watchdog still hears from the agent every
 * watchdog_ms while it waits, not once a round. */
static void
test_watchdog_pinged_while_waiting_between_rounds(void **state)
{
    struct agent_options opts = {.notify = watchdog_notify, .watchdog_ms = 100};
    struct agent_config config;
    struct agent *a = NULL;
    char err[CONFIG_ERR_MAX], state_dir[512];
    sigset_t stop, old;
    (void)state;

    snprintf(state_dir, sizeof(state_dir), "%s/watchdog", dir);
    agent_config_init_defaults(&config);
    assert_int_equal(
        agent_config_set(&config, "uri", "sim:" SCENARIO_DIR "/one_hog.json", err, sizeof(err)), 0);
    assert_int_equal(agent_config_set(&config, "state_dir", state_dir, err, sizeof(err)), 0);
    config.policy.interval_ms = 3000;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, &old);
    if (agent_open(&opts, &config, &stop, &a, err, sizeof(err)) < 0)
        fail_msg("agent_open: %s", err);
    assert_int_equal(agent_run(a), 0);
    agent_close(&a);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (heard.pings < 6 || heard.max_gap_ms > 300)
        fail_msg("want a WATCHDOG at least every ~100 ms over 1.2 s; got %zu pings, longest gap "
                 "%" PRIu64 " ms",
                 heard.pings, heard.max_gap_ms);
}

/* Runs an agent on one_hog at speed (20: guest stats arrive 20 times a round), rounds 1 s
 * apart, until max_rounds rounds planned (polls that planned included). Its link's messages
 * go to box. */
static void
run_agent(
    struct fixture *f, const char *state_sub, int speed, const char *extra, uint64_t max_rounds)
{
    struct agent_options opts = {
        .link_emit = emit, .link_emit_ctx = &f->box, .max_rounds = max_rounds};
    struct agent_config config;
    char err[CONFIG_ERR_MAX], text[1024];
    sigset_t none;

    snprintf(text, sizeof(text),
             "uri = sim:%s/one_hog.json?speed=%d\nstate_dir = %s/%s\n" WITH_COORDINATOR
             "interval_ms = 1000\n%s",
             SCENARIO_DIR, speed, dir, state_sub, extra);
    snprintf(f->config_path, sizeof(f->config_path), "%s/%s.conf", dir, state_sub);
    FILE *file = fopen(f->config_path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    opts.config_path = f->config_path;
    if (agent_load_config(&opts, &config, err, sizeof(err)) < 0)
        fail_msg("agent_load_config: %s", err);
    sigemptyset(&none);
    if (agent_open(&opts, &config, &none, &f->agent, err, sizeof(err)) < 0)
        fail_msg("agent_open: %s", err);
    assert_int_equal(agent_run(f->agent), 0);
    agent_close(&f->agent);
}

/* Guest stats arrive 20 times a round here, so most rounds are polls that plan: the decisions
 * of every one of them reach the coordinator, whether or not its report was due. (Before, a
 * poll's decisions went nowhere: the coordinator's decision counts fell short of the agent's.) */
static void
test_every_decision_is_reported(void **state)
{
    struct fixture f = {0};
    (void)state;

    run_agent(&f, "decisions", 20, "", 12);
    if (f.box.n_reports == 0)
        fail_msg("no report was sent");
    if (f.box.granted_differs)
        fail_msg("a report's decisions granted %" PRIu64 " KiB in all, its counters say %" PRIu64
                 " KiB: a round's decisions were never sent (%zu reports)",
                 f.box.granted_got_kib, f.box.granted_want_kib, f.box.n_reports);
    if (f.box.granted_sent_kib == 0)
        fail_msg("no grow was reported: the scenario did not exercise the rule");
    /* And every report lists its VMs in uuid order, which spares the coordinator a sort. */
    assert_true(f.box.most_vms >= 2);
    assert_false(f.box.vms_unordered);
}

/* Reports spaced a minute apart: heartbeats go in between, one after every heartbeat interval
 * of silence; a report every round (report_interval_ms = 0) leaves nothing to say in between. */
static void
test_heartbeats_fill_the_silence_between_reports(void **state)
{
    struct fixture spaced = {0}, every_round = {0};
    (void)state;

    run_agent(&spaced, "heartbeats", 1, "report_interval_ms = 60000\nheartbeat_interval_ms = 100\n",
              2);
    if (spaced.box.n_reports > 2 || spaced.box.n_heartbeats < 5)
        fail_msg("two rounds a second apart, reports a minute apart, a heartbeat after 100 ms of "
                 "silence: want at most 2 reports and at least 5 heartbeats, got %zu and %zu",
                 spaced.box.n_reports, spaced.box.n_heartbeats);
    run_agent(&every_round, "no-heartbeats", 1, "report_interval_ms = 0\n", 2);
    if (every_round.box.n_reports != 2 || every_round.box.n_heartbeats != 0)
        fail_msg("two rounds, each reported: want 2 reports and no heartbeat, got %zu and %zu",
                 every_round.box.n_reports, every_round.box.n_heartbeats);
}

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[600];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_a_valid_push_and_persists_it),
        cmocka_unit_test(test_refuses_a_push_below_a_local_limit),
        cmocka_unit_test(test_refuses_an_invalid_push),
        cmocka_unit_test(test_refuses_a_push_it_cannot_persist),
        cmocka_unit_test(test_dry_run_applies_a_push_and_persists_nothing),
        cmocka_unit_test(test_ack_applied_only_after_persisted),
        cmocka_unit_test(test_reload_sends_new_labels_in_a_hello),
        cmocka_unit_test(test_reload_of_an_empty_or_missing_file_keeps_the_old_config),
        cmocka_unit_test(test_reload_keeps_restart_keys_and_applies_the_rest),
        cmocka_unit_test(test_watchdog_pinged_while_waiting_between_rounds),
        cmocka_unit_test(test_every_decision_is_reported),
        cmocka_unit_test(test_heartbeats_fill_the_silence_between_reports),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
