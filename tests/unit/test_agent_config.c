/*
 * test_agent_config.c - the agent's config file, its errors, and the persisted policy state.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_config.h"
#include "config.h"
#include "state.h"

static char dir[] = "/tmp/memsched-test-XXXXXX";

static const char *
write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *
err_buf(void)
{
    static char buf[CONFIG_ERR_MAX];
    return buf;
}

static void
test_loads_agent_and_policy_keys(void **state)
{
    struct agent_config c;
    char err[CONFIG_ERR_MAX];
    (void)state;

    const char *path = write_file("ok.conf", "# comment\n\n uri = test:///default \n"
                                             "dry_run = yes\nlog_level = debug\n"
                                             "vm_min_unused_mib = 150\nreclaim_idle = off\n");
    assert_int_equal(agent_config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c.uri, "test:///default");
    assert_true(c.dry_run);
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c.policy.vm_min_unused_kib, 150 * 1024);
    assert_false(c.policy.reclaim_idle);
}

static void
expect_error(const char *text, const char *want)
{
    struct agent_config c;
    char err[CONFIG_ERR_MAX] = "";

    agent_config_init_defaults(&c);
    strcpy(c.uri, "untouched");
    const char *path = write_file("bad.conf", text);
    assert_int_not_equal(agent_config_load(path, &c, err, sizeof(err)), 0);
    if (!strstr(err, want))
        fail_msg("want an error containing '%s', got '%s'", want, err);
    assert_string_equal(c.uri, "untouched");
}

static void
test_errors_name_file_line_and_key(void **state)
{
    (void)state;
    expect_error("uri = x\nbogus_key = 1\n", "bad.conf:2: unknown key 'bogus_key'");
    expect_error("dry_run = maybe\n", "bad.conf:1: dry_run='maybe'");
    expect_error("\n\nvm_min_unused_mib = -3\n", "bad.conf:3: policy: vm_min_unused_mib='-3'");
    expect_error("just words\n", "bad.conf:1: expected 'key = value'");
    expect_error("= 5\n", "missing key");
    expect_error("vm_min_unused_mib = 250\n", "vm_min_unused_mib=250 must be below");
    expect_error("log_level = loud\n", "log_level='loud'");
}

static void
test_missing_file(void **state)
{
    struct agent_config c;
    char err[CONFIG_ERR_MAX];
    (void)state;

    assert_int_equal(agent_config_load("/nonexistent/memsched.conf", &c, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/memsched.conf"));
}

static void
test_print_round_trips(void **state)
{
    struct agent_config c, back;
    char err[CONFIG_ERR_MAX], path[512];
    (void)state;

    agent_config_init_defaults(&c);
    c.dry_run = true;
    c.policy.host_min_unused_kib = 4096 * 1024;
    snprintf(path, sizeof(path), "%s/printed.conf", dir);
    FILE *f = fopen(path, "w");
    agent_config_print(&c, f);
    fclose(f);
    assert_int_equal(agent_config_load(path, &back, err, sizeof(err)), 0);
    assert_true(back.dry_run);
    assert_true(policy_equal(&c.policy, &back.policy));
    assert_string_equal(c.uri, back.uri);
}

static void
test_state_round_trip_and_damage(void **state)
{
    struct agent_state s = {.source = STATE_SOURCE_FLEET, .version = 42, .epoch = UINT64_MAX}, back;
    char err[CONFIG_ERR_MAX];
    (void)state;

    assert_int_equal(state_load(dir, &back, err, sizeof(err)), -ENOENT);
    policy_init_defaults(&s.policy);
    s.policy.vm_floor_kib = 512 * 1024;
    assert_int_equal(state_save(dir, &s, err, sizeof(err)), 0);
    assert_int_equal(state_load(dir, &back, err, sizeof(err)), 0);
    assert_int_equal(back.source, STATE_SOURCE_FLEET);
    assert_int_equal(back.version, 42);
    assert_true(back.epoch == UINT64_MAX);
    assert_true(policy_equal(&s.policy, &back.policy));

    write_file("policy.conf", "source = fleet\nversion = 7\nvm_excess_unused_mib = 50\n");
    back.version = 99;
    assert_int_not_equal(state_load(dir, &back, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "vm_grow_target_unused_mib"));
    assert_int_equal(back.version, 99); /* untouched */
    assert_int_not_equal(state_save("/nonexistent-dir", &s, err, sizeof(err)), 0);
}

static void
expect_limit(const struct agent_config *c, const struct policy *p, const char *want)
{
    char why[POLICY_ERR_MAX] = "";

    assert_int_equal(agent_config_check_limits(c, p, why, sizeof(why)), -EPERM);
    if (!strstr(why, want))
        fail_msg("want a refusal naming '%s', got '%s'", want, why);
}

/* With no limits configured, the defaults still refuse a policy that would squeeze every guest
 * in one round or stop scheduling for an hour, field by field; the default policy passes. */
static void
test_default_limits_refuse_starvation(void **state)
{
    struct agent_config c;
    struct policy p;
    char why[POLICY_ERR_MAX];
    (void)state;

    agent_config_init_defaults(&c);
    policy_init_defaults(&p);
    assert_int_equal(agent_config_check_limits(&c, &p, why, sizeof(why)), 0);

    p.vm_min_unused_kib = 1 * 1024;
    expect_limit(&c, &p, "vm_min_unused_mib=1 below this host's limit_vm_min_unused_mib=50");
    policy_init_defaults(&p);
    p.vm_floor_kib = 0;
    expect_limit(&c, &p, "vm_floor_mib=0 below this host's limit_vm_floor_mib=128");
    policy_init_defaults(&p);
    p.host_min_unused_kib = 0;
    expect_limit(&c, &p, "host_min_unused_mib=0 below this host's limit_host_min_unused_mib=100");
    policy_init_defaults(&p);
    p.max_release_step_kib = UINT64_C(1048576) * 1024;
    expect_limit(&c, &p, "max_release_step_mib=1048576 above");
    policy_init_defaults(&p);
    p.interval_ms = 3600000;
    expect_limit(&c, &p, "interval_ms=3600000 above this host's limit_interval_ms=10000");

    /* An operator may loosen or tighten them, in the config file. */
    const char *path = write_file("limits.conf", "limit_interval_ms = 3600000\n"
                                                 "limit_host_min_unused_mib = 0\n");
    assert_int_equal(agent_config_load(path, &c, err_buf(), CONFIG_ERR_MAX), 0);
    policy_init_defaults(&p);
    p.interval_ms = 3600000;
    p.host_min_unused_kib = 0;
    assert_int_equal(agent_config_check_limits(&c, &p, why, sizeof(why)), 0);
    expect_error("limit_interval_ms = 3600001\n", "limit_interval_ms='3600001'");
}

/* metrics_textfile: off by default; --check-config wants its directory, not the file. */
static void
test_metrics_textfile(void **state)
{
    struct agent_config c;
    char err[CONFIG_ERR_MAX] = "", text[1200];
    (void)state;

    agent_config_init_defaults(&c);
    assert_string_equal(c.metrics_textfile, "");
    snprintf(c.state_dir, sizeof(c.state_dir), "%s", dir);
    snprintf(text, sizeof(text), "metrics_textfile = %s/memsched.prom\n", dir);
    assert_int_equal(agent_config_load(write_file("tf.conf", text), &c, err, sizeof(err)), 0);
    snprintf(c.state_dir, sizeof(c.state_dir), "%s", dir);
    assert_int_equal(agent_config_check_files(&c, err, sizeof(err)), 0);

    snprintf(c.metrics_textfile, sizeof(c.metrics_textfile), "%s/none/memsched.prom", dir);
    assert_int_equal(agent_config_check_files(&c, err, sizeof(err)), -ENOENT);
    if (!strstr(err, "metrics_textfile"))
        fail_msg("want an error naming metrics_textfile, got '%s'", err);
    snprintf(c.metrics_textfile, sizeof(c.metrics_textfile), "%s/", dir);
    assert_int_equal(agent_config_check_files(&c, err, sizeof(err)), -EISDIR);
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
        cmocka_unit_test(test_loads_agent_and_policy_keys),
        cmocka_unit_test(test_errors_name_file_line_and_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_print_round_trips),
        cmocka_unit_test(test_state_round_trip_and_damage),
        cmocka_unit_test(test_default_limits_refuse_starvation),
        cmocka_unit_test(test_metrics_textfile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
