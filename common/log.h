/*
 * log.h - one line per event, to stderr (journald picks it up under systemd).
 *
 * Lines read "<head><level> <module>: key=value key=value ...", where the head is a syslog
 * priority ("<4>") when stderr is the journal and a UTC timestamp otherwise (log.c). Recurring
 * failures use a struct log_limit so an outage is logged once, with back-off while it lasts, and
 * its recovery once. Cores never log: they return reason codes and their callers log them.
 */
#ifndef MEMSCHED_COMMON_LOG_H
#define MEMSCHED_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
    LOG_LEVEL_ERR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

#define LOG_PRINTF(fmt_index) __attribute__((format(printf, fmt_index, fmt_index + 1)))

void log_set_level(enum log_level level);

/* Parses "err", "warn", "info", "debug". Returns 0 or -EINVAL. */
int log_parse_level(const char *name, enum log_level *level);

const char *log_level_name(enum log_level level);

bool log_enabled(enum log_level level);

/* True when stderr is the systemd journal (JOURNAL_STREAM names it). */
bool log_to_journal(void);

void log_write(enum log_level level, const char *module, const char *fmt, ...) LOG_PRINTF(3);

#define log_err(module, ...)  log_write(LOG_LEVEL_ERR, module, __VA_ARGS__)
#define log_warn(module, ...) log_write(LOG_LEVEL_WARN, module, __VA_ARGS__)
#define log_info(module, ...) log_write(LOG_LEVEL_INFO, module, __VA_ARGS__)
/* Debug lines are the most frequent and the most often off: their arguments are not even
 * evaluated unless the level is on. */
#define log_debug(module, ...)                                                                     \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_write(LOG_LEVEL_DEBUG, module, __VA_ARGS__);                                       \
    } while (0)

/* Rate limit for a recurring complaint: the first failure is logged, repeats only after the
 * back-off (doubling up to max_ms), and the first success after a failure once. */
struct log_limit {
    uint64_t next_ms;    /* next time a repeat may be logged */
    uint64_t backoff_ms; /* current back-off */
    uint64_t failures;   /* since the last success */
    bool failing;
};

/* True when this failure should be logged now (now_ms monotonic). */
bool log_limit_failure(struct log_limit *limit, uint64_t now_ms, uint64_t max_ms);

/* When this success ends an outage: the number of failures it lasted (log the recovery);
 * otherwise 0. Resets the limit. */
uint64_t log_limit_success(struct log_limit *limit);

#endif /* MEMSCHED_COMMON_LOG_H */
