/*
 * log.c - leveled key=value lines on stderr, and the rate limit for recurring failures.
 *
 * Where stderr goes decides the line's head. Into the journal (systemd sets JOURNAL_STREAM to
 * stderr's device:inode), a syslog priority "<3>".."<7>" (sd-daemon(3)'s SD_ERR..SD_DEBUG), so
 * `journalctl -p warning` selects by level; the journal stamps the time itself. Anywhere else
 * (a terminal, a file, a test's log), an RFC 3339 UTC time with milliseconds.
 */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BACKOFF_FIRST_MS 1000

static enum log_level max_level = LOG_LEVEL_INFO;

/* syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int level_priorities[] = {
    [LOG_LEVEL_ERR] = 3,
    [LOG_LEVEL_WARN] = 4,
    [LOG_LEVEL_INFO] = 6,
    [LOG_LEVEL_DEBUG] = 7,
};

static const char *const level_names[] = {
    [LOG_LEVEL_ERR] = "err",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

void
log_set_level(enum log_level level)
{
    max_level = level;
}

int
log_parse_level(const char *name, enum log_level *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *
log_level_name(enum log_level level)
{
    if ((unsigned)level < sizeof(level_names) / sizeof(level_names[0]))
        return level_names[level];
    return "invalid";
}

bool
log_enabled(enum log_level level)
{
    return level <= max_level;
}

bool
log_to_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    uintmax_t dev, ino;
    struct stat st;

    if (!stream || sscanf(stream, "%ju:%ju", &dev, &ino) != 2 || fstat(2, &st) < 0)
        return false;
    return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

/* "<3>" into the journal, "2026-12-02T07:30:01.123Z " elsewhere. */
static void
line_head(enum log_level level, char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;

    if (log_to_journal()) {
        snprintf(out, len, "<%d>", level_priorities[level]);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03ldZ ", ts.tv_nsec / 1000000);
}

void
log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    char head[40];
    char line[1024];
    va_list ap;

    if (!log_enabled(level))
        return;
    line_head(level, head, sizeof(head));
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line keeps lines whole when several threads log. */
    fprintf(stderr, "%s%s %s: %s\n", head, level_names[level], module, line);
}

bool
log_limit_failure(struct log_limit *limit, uint64_t now_ms, uint64_t max_ms)
{
    limit->failures++;
    if (!limit->failing) {
        limit->failing = true;
        limit->backoff_ms = BACKOFF_FIRST_MS;
        limit->next_ms = now_ms + limit->backoff_ms;
        return true;
    }
    if (now_ms < limit->next_ms)
        return false;
    limit->backoff_ms = limit->backoff_ms * 2 > max_ms ? max_ms : limit->backoff_ms * 2;
    limit->next_ms = now_ms + limit->backoff_ms;
    return true;
}

uint64_t
log_limit_success(struct log_limit *limit)
{
    uint64_t failures = limit->failing ? limit->failures : 0;

    limit->failing = false;
    limit->failures = 0;
    limit->backoff_ms = 0;
    return failures;
}
