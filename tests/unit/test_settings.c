/*
 * test_settings.c - memsched-coordinator's settings (coordinator/settings.c): the defaults,
 * files and key=value arguments over them, the rules between keys, and --print-config read
 * back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_table.h"
#include "settings.h"

static void
test_defaults(void **state)
{
    (void)state;
    struct settings s;
    char err[256];

    settings_defaults(&s);
    assert_string_equal(s.listen, "tcp://0.0.0.0:7400");
    assert_string_equal(s.control, "ipc:///run/memsched/control.sock");
    assert_string_equal(s.key_file, "/etc/memsched/coordinator.secret");
    assert_string_equal(s.allow_dir, "/etc/memsched/agents");
    assert_string_equal(s.admin_allow_dir, "");
    assert_string_equal(s.admin_read_dir, "");
    assert_string_equal(s.db, "/var/lib/memsched/coordinator.db");
    assert_false(s.insecure);
    assert_int_equal(s.stale_after_ms, 3000);
    assert_int_equal(s.down_after_ms, 10000);
    assert_int_equal(s.pressure_unused_mib, 100);
    assert_int_equal(s.host_retention_ms, UINT64_C(604800000));
    assert_int_equal(s.history_max_mib, 256);
    assert_int_equal(s.log_level, LOG_LEVEL_INFO);
    assert_int_equal(settings_check(&s, err, sizeof(err)), 0);
}

static void
expect_arg_error(const char *arg, const char *want)
{
    struct settings s;
    char err[512] = "";

    settings_defaults(&s);
    assert_int_not_equal(settings_load_arg(&s, arg, err, sizeof(err)), 0);
    if (!strstr(err, want))
        fail_msg("%s: want an error containing \"%s\", got \"%s\"", arg, want, err);
}

static void
test_bad_values(void **state)
{
    (void)state;
    expect_arg_error("bogus=1", "argument:1: unknown key 'bogus'");
    expect_arg_error("listen=", "listen: must be 1 to 1023 characters");
    expect_arg_error("insecure=maybe", "insecure='maybe' is not a valid boolean");
    expect_arg_error("stale_after_ms=499", "stale_after_ms='499' out of range [500, 3600000]");
    expect_arg_error("down_after_ms=86400001", "down_after_ms='86400001' out of range");
    expect_arg_error("host_retention_ms=31536000001", "host_retention_ms='31536000001'");
    expect_arg_error("pressure_unused_mib=1048577", "pressure_unused_mib='1048577'");
    expect_arg_error("history_max_mib=1048577", "history_max_mib='1048577'");
    expect_arg_error("pressure_unused_mib=12abc", "is not a valid whole number");
    expect_arg_error("log_level=loud", "log_level='loud' must be err, warn, info or debug");
}

static void
expect_check_error(const char *arg1, const char *arg2, const char *want)
{
    struct settings s;
    char err[512] = "";

    settings_defaults(&s);
    assert_int_equal(settings_load_arg(&s, arg1, err, sizeof(err)), 0);
    if (arg2)
        assert_int_equal(settings_load_arg(&s, arg2, err, sizeof(err)), 0);
    assert_int_equal(settings_check(&s, err, sizeof(err)), -EINVAL);
    if (!strstr(err, want))
        fail_msg("%s %s: want an error containing \"%s\", got \"%s\"", arg1, arg2 ? arg2 : "", want,
                 err);
}

static void
test_rules_between_keys(void **state)
{
    (void)state;
    expect_check_error("stale_after_ms=10000", NULL, "stale_after_ms=10000 must be below");
    expect_check_error("host_retention_ms=5000", NULL, "must be 0 or at least down_after_ms");
    expect_check_error("control=tcp://127.0.0.1:7401", NULL, "needs admin_allow_dir");
    expect_check_error("insecure=true", NULL, "only allowed on loopback");
    expect_check_error("insecure=true", "listen=tcp://10.0.0.1:7400", "not tcp://10.0.0.1:7400");

    struct settings s;
    char err[256];
    settings_defaults(&s);
    assert_int_equal(settings_load_arg(&s, "insecure=yes", err, sizeof(err)), 0);
    assert_int_equal(settings_load_arg(&s, "listen=tcp://127.0.0.1:7400", err, sizeof(err)), 0);
    assert_int_equal(settings_load_arg(&s, "host_retention_ms=0", err, sizeof(err)), 0);
    assert_int_equal(settings_check(&s, err, sizeof(err)), 0);
}

/* metrics_listen: off by default, a port alone (loopback) or http://ADDR:PORT with an IP. */
static void
test_metrics_listen(void **state)
{
    static const char *const good[] = {
        "metrics_listen=",
        "metrics_listen=9187",
        "metrics_listen=:9187",
        "metrics_listen=http://127.0.0.1:9187",
        "metrics_listen=http://0.0.0.0:0",
        "metrics_listen=http://[::1]:9187",
    };
    struct settings s;
    char err[512];
    (void)state;

    settings_defaults(&s);
    assert_string_equal(s.metrics_listen, "");
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        settings_defaults(&s);
        assert_int_equal(settings_load_arg(&s, good[i], err, sizeof(err)), 0);
        if (settings_check(&s, err, sizeof(err)) != 0)
            fail_msg("%s: want accepted, got \"%s\"", good[i], err);
    }
    expect_check_error("metrics_listen=http://localhost:9187", NULL, "metrics_listen: 'http://");
    expect_check_error("metrics_listen=65536", NULL, "want http://ADDR:PORT");
    expect_check_error("metrics_listen=http://127.0.0.1", NULL, "want http://ADDR:PORT");
    expect_check_error("metrics_listen=tcp://127.0.0.1:9187", NULL, "want http://ADDR:PORT");
    expect_check_error("metrics_listen=http://::1:9187", NULL, "want http://ADDR:PORT");
}

/* A file, then arguments over it; what --print-config prints reads back the same. */
static void
test_file_args_and_print_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/memsched-settings-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# coordinator\nlisten = tcp://127.0.0.1:7555\ninsecure = on\nlog_level = debug\n"
          "admin_read_dir = /etc/memsched/readers\nstale_after_ms = 2000\n",
          f);
    fclose(f);

    struct settings s, back;
    char err[512];
    settings_defaults(&s);
    assert_int_equal(settings_load_file(&s, path, err, sizeof(err)), 0);
    assert_int_equal(settings_load_arg(&s, "stale_after_ms=2500", err, sizeof(err)), 0);
    assert_string_equal(s.listen, "tcp://127.0.0.1:7555");
    assert_true(s.insecure);
    assert_int_equal(s.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(s.stale_after_ms, 2500); /* the argument wins */
    assert_int_equal(settings_check(&s, err, sizeof(err)), 0);

    for (int round = 0; round < 2; round++) {
        if (round == 1)
            settings_defaults(&s); /* the defaults read back too (empty strings included) */
        f = fopen(path, "w");
        assert_non_null(f);
        settings_print(&s, f);
        fclose(f);
        settings_defaults(&back);
        assert_int_equal(settings_load_arg(&back, "db=/elsewhere", err, sizeof(err)), 0);
        if (settings_load_file(&back, path, err, sizeof(err)) != 0)
            fail_msg("round %d: want the printed settings to load, got \"%s\"", round, err);
        assert_true(config_equal(settings_table(), &s, &back));
    }
    unlink(path);

    settings_defaults(&s);
    assert_int_equal(settings_load_file(&s, "/nonexistent/coordinator.conf", err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/coordinator.conf"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_rules_between_keys),
        cmocka_unit_test(test_metrics_listen),
        cmocka_unit_test(test_file_args_and_print_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
