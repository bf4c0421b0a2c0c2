/*
 * test_log.c - the rate limit that keeps an outage to one line and its recovery to one line,
 * and each line's head: a timestamp on a terminal or file, a syslog priority into the journal.
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Runs write_line with stderr sent to a file, and returns what it wrote (static buffer). */
static const char *
captured(void (*write_line)(void))
{
    static char text[512];
    FILE *f = tmpfile();
    int saved = dup(2);

    assert_non_null(f);
    fflush(stderr);
    dup2(fileno(f), 2);
    write_line();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void
write_warning(void)
{
    log_warn("test", "event=probe value=%d", 7);
}

/* Names stderr (fd 2) as the journal, the way systemd does, for a line written by fn. */
static void
write_warning_into_journal(void)
{
    struct stat st;
    char stream[64];

    assert_int_equal(fstat(2, &st), 0);
    snprintf(stream, sizeof(stream), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    setenv("JOURNAL_STREAM", stream, 1);
    write_warning();
    unsetenv("JOURNAL_STREAM");
}

static void
test_line_head_is_a_timestamp_outside_the_journal(void **state)
{
    regex_t re;
    (void)state;

    unsetenv("JOURNAL_STREAM");
    const char *line = captured(write_warning);
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "warn test: event=probe value=7\n$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, line, 0, NULL, 0) != 0)
        fail_msg("line without a timestamp head: '%s'", line);
    regfree(&re);
}

static void
test_line_head_is_a_priority_into_the_journal(void **state)
{
    (void)state;

    assert_string_equal(captured(write_warning_into_journal),
                        "<4>warn test: event=probe value=7\n");
}

static int debug_args_evaluated;

static int
count_evaluation(void)
{
    return ++debug_args_evaluated;
}

static void
test_debug_arguments_not_evaluated_when_off(void **state)
{
    (void)state;

    log_set_level(LOG_LEVEL_INFO);
    log_debug("test", "n=%d", count_evaluation());
    assert_int_equal(debug_args_evaluated, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_failure_logs_then_backs_off),
        cmocka_unit_test(test_backoff_stops_at_max),
        cmocka_unit_test(test_recovery_logged_once_with_count),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_line_head_is_a_timestamp_outside_the_journal),
        cmocka_unit_test(test_line_head_is_a_priority_into_the_journal),
        cmocka_unit_test(test_debug_arguments_not_evaluated_when_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
