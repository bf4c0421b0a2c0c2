/*
 * bench_util.h - what every benchmark needs: a monotonic clock in ns, the process's memory, a
 * seeded xorshift generator. Header-only; benchmarks print numbers and assert none.
 */
#ifndef MEMSCHED_BENCH_UTIL_H
#define MEMSCHED_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The peak resident set so far (getrusage), MiB. */
static inline double
bench_peak_rss_mib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* The resident set now (/proc/self/statm), MiB; 0 when unreadable. */
static inline double
bench_rss_mib(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    int n = f ? fscanf(f, "%lu %lu", &size, &resident) : 0;

    if (f)
        fclose(f);
    return n == 2 ? resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0) : 0;
}

/* xorshift64: a seeded, repeatable stream (never seed with 0). */
static inline uint64_t
bench_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif /* MEMSCHED_BENCH_UTIL_H */
