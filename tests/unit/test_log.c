/*
 * test_log.c - the rate limit that keeps an outage to one line and its recovery to one line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"

static void
test_first_failure_logs_then_backs_off(void **state)
{
    struct log_limit limit = {0};
    (void)state;

    assert_true(log_limit_failure(&limit, 0, 30000));
    assert_false(log_limit_failure(&limit, 500, 30000)); /* inside the first 1 s back-off */
    assert_true(log_limit_failure(&limit, 1000, 30000));
    assert_false(log_limit_failure(&limit, 2999, 30000)); /* back-off doubled to 2 s */
    assert_true(log_limit_failure(&limit, 3000, 30000));
}

static void
test_backoff_stops_at_max(void **state)
{
    struct log_limit limit = {0};
    uint64_t now = 0;
    (void)state;

    log_limit_failure(&limit, now, 4000);
    for (int i = 0; i < 10; i++) {
        now = limit.next_ms;
        assert_true(log_limit_failure(&limit, now, 4000));
    }
    assert_int_equal(limit.backoff_ms, 4000);
}

static void
test_recovery_logged_once_with_count(void **state)
{
    struct log_limit limit = {0};
    (void)state;

    assert_int_equal(log_limit_success(&limit), 0); /* no outage: nothing to say */
    log_limit_failure(&limit, 0, 30000);
    log_limit_failure(&limit, 10, 30000);
    log_limit_failure(&limit, 20, 30000);
    assert_int_equal(log_limit_success(&limit), 3);
    assert_int_equal(log_limit_success(&limit), 0);
    assert_true(log_limit_failure(&limit, 30, 30000)); /* a new outage is news again */
}

static void
test_levels(void **state)
{
    enum log_level level;
    (void)state;

    assert_int_equal(log_parse_level("debug", &level), 0);
    assert_int_equal(level, LOG_LEVEL_DEBUG);
    assert_int_not_equal(log_parse_level("loud", &level), 0);
    log_set_level(LOG_LEVEL_WARN);
    assert_true(log_enabled(LOG_LEVEL_ERR));
    assert_false(log_enabled(LOG_LEVEL_INFO));
    log_set_level(LOG_LEVEL_INFO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_failure_logs_then_backs_off),
        cmocka_unit_test(test_backoff_stops_at_max),
        cmocka_unit_test(test_recovery_logged_once_with_count),
        cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
