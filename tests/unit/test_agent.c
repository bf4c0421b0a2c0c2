/*
 * test_agent.c - the agent's gate for pushed policies (agent_on_push): accept, refuse below a
 * local limit, refuse invalid, persist before acking (a dry run persists nothing).
 *
 * The agent runs on a sim scenario (no libvirt, no coordinator) with a state dir of its own.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "agent_config.h"
#include "config.h"
#include "state.h"

static char dir[] = "/tmp/memsched-test-agent-XXXXXX";

struct fixture {
    char state_dir[512];
    struct agent_config config;
    struct agent *agent;
};

static struct agent *
open_agent(struct fixture *f, const char *state_sub, bool dry_run)
{
    struct agent_options opts = {.dry_run = dry_run};
    char err[CONFIG_ERR_MAX];
    sigset_t none;

    sigemptyset(&none);
    snprintf(f->state_dir, sizeof(f->state_dir), "%s/%s", dir, state_sub);
    agent_config_init_defaults(&f->config);
    assert_int_equal(
        agent_config_set(&f->config, "uri", "sim:" SCENARIO_DIR "/one_hog.json", err, sizeof(err)),
        0);
    assert_int_equal(agent_config_set(&f->config, "state_dir", f->state_dir, err, sizeof(err)), 0);
    f->config.dry_run = dry_run;
    int rc = agent_open(&opts, &f->config, &none, &f->agent, err, sizeof(err));
    if (rc < 0)
        fail_msg("agent_open: %s", err);
    return f->agent;
}

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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
