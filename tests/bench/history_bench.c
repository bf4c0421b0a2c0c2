/*
 * history_bench.c - the coordinator's bounded history (coordinator/history.c) at fleet sizes:
 * what it costs in memory, what resolution it keeps, and how long recording holds the loop.
 *
 * For each --hosts value (default 1,000 and 10,000) x --vms (50), every host reports every
 * --period (10) s for --minutes (60) of simulated time (balloons and unused memory wander); then
 * it prints the history's own bytes and the process's RSS growth, the resolution it settled at
 * (every series halves while the bound is short), series refused, the median and the longest
 * history_record() of one host (the longest includes the halvings, and the malloc_trim the
 * daemon runs once they are done: the loop's worst stall), and reading back one host's 51
 * series (what `memschedctl --json history` and the dashboard's host page do). It prints numbers
 * and asserts none.
 *
 *   history_bench [--hosts N]... [--vms N] [--minutes N] [--period S] [--max-mib N]
 * Documented run (release build): build/release/tests/bench/history_bench (README, Benchmarks).
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "history.h"

#define SIZES_MAX 8

struct options {
    size_t hosts[SIZES_MAX];
    size_t n_sizes;
    size_t vms;
    uint64_t minutes;
    uint64_t period_s;
    uint64_t max_mib;
};

struct fleet_views {
    struct fleet_host_info *hosts;
    struct fleet_vm *vms;
    char (*ids)[24];
};

static void
views_new(struct fleet_views *f, size_t hosts, size_t vms, uint64_t *seed)
{
    f->hosts = calloc(hosts, sizeof(*f->hosts));
    f->vms = calloc(hosts * vms, sizeof(*f->vms));
    f->ids = calloc(hosts, sizeof(*f->ids));
    if (!f->hosts || !f->vms || !f->ids) {
        fprintf(stderr, "history_bench: out of memory\n");
        exit(1);
    }
    for (size_t h = 0; h < hosts; h++) {
        snprintf(f->ids[h], sizeof(f->ids[h]), "hv%05zu", h);
        f->hosts[h] = (struct fleet_host_info){
            .host_id = f->ids[h],
            .host_total_kib = UINT64_C(512) << 20,
            .vms = &f->vms[h * vms],
            .n_vms = vms,
        };
        for (size_t v = 0; v < vms; v++) {
            struct fleet_vm *vm = &f->vms[h * vms + v];
            vm->uuid[0] = (uint8_t)v; /* sorted by uuid: the first byte orders them */
            for (size_t b = 1; b < FLEET_UUID_BYTES; b++)
                vm->uuid[b] = (uint8_t)bench_random(seed);
            vm->max_kib = UINT64_C(8) << 20;
            vm->has_unused = true;
        }
    }
}

static void
views_free(struct fleet_views *f)
{
    free(f->hosts);
    free(f->vms);
    free(f->ids);
}

/* A new round's values for one host: balloons and unused memory wander. */
static void
host_round(struct fleet_host_info *host, uint64_t *seed)
{
    host->vm_actual_kib = 0;
    for (size_t v = 0; v < host->n_vms; v++) {
        struct fleet_vm *vm = (struct fleet_vm *)&host->vms[v];
        vm->actual_kib = (UINT64_C(2) << 20) + (bench_random(seed) % 4096) * 1024;
        vm->unused_kib = (bench_random(seed) % 2048) * 1024;
        host->vm_actual_kib += vm->actual_kib;
    }
    host->host_available_kib = (UINT64_C(64) << 20) + (bench_random(seed) % 8192) * 1024;
}

static void
run_size(const struct options *o, size_t hosts)
{
    uint64_t seed = 0x9e3779b97f4a7c15u ^ hosts;
    struct fleet_views f;
    struct history *h = history_new(&(struct history_opts){.max_bytes = o->max_mib << 20});
    uint64_t rounds = o->minutes * 60 / o->period_s, n_calls = rounds * hosts;
    uint64_t *call_ns = calloc(n_calls, sizeof(*call_ns)), worst = 0, worst_round = 0;
    size_t k = 0;

    views_new(&f, hosts, o->vms, &seed);
    double rss_views = bench_rss_mib();
    for (uint64_t r = 0; r < rounds; r++) {
        uint64_t round_ms = (UINT64_C(1000000) + r * o->period_s) * 1000;
        for (size_t i = 0; i < hosts; i++) {
            host_round(&f.hosts[i], &seed);
            /* hosts spread over the round, as agents' timers are */
            uint64_t at = round_ms + i * o->period_s * 1000 / hosts;
            uint64_t t0 = bench_now_ns();
            history_record(h, &f.hosts[i], at);
            if (history_take_caught_up(h))
                malloc_trim(0); /* as the daemon does, in the loop's time */
            call_ns[k] = bench_now_ns() - t0;
            if (call_ns[k] > worst) {
                worst = call_ns[k];
                worst_round = r;
            }
            k++;
        }
    }
    qsort(call_ns, n_calls, sizeof(*call_ns), bench_compare_u64);

    size_t cap = history_points_max(h);
    struct history_point *p = calloc(cap, sizeof(*p));
    uint64_t now_ms = (UINT64_C(1000000) + rounds * o->period_s) * 1000, points = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t v = 0; v <= o->vms; v++) {
        int n = history_read(h, f.ids[0], v ? f.hosts[0].vms[v - 1].uuid : NULL, now_ms, p, cap);
        points += n > 0 ? (uint64_t)n : 0;
    }
    uint64_t read_ns = bench_now_ns() - t0;

    struct history_stats st;
    history_stats(h, &st);
    printf("%zu hosts x %zu VMs, a report every %" PRIu64 " s for %" PRIu64 " min (%" PRIu64
           " records of a host), bound %" PRIu64 " MiB:\n",
           hosts, o->vms, o->period_s, o->minutes, n_calls, o->max_mib);
    printf("  memory:     history %.1f MiB (%zu series, %.0f B each); RSS grew %.1f MiB, its "
           "peak %.1f MiB\n",
           st.bytes / 1048576.0, st.series, st.series ? (double)st.bytes / st.series : 0.0,
           bench_rss_mib() - rss_views, bench_peak_rss_mib() - rss_views);
    printf("  resolution: every %" PRIu32 " s x %" PRIu32 " slots (%.1f h), then every %" PRIu32
           " s x %" PRIu32 " (%.1f h); %" PRIu64 " series refused\n",
           st.fine_step_s, st.fine_slots, st.fine_step_s * st.fine_slots / 3600.0, st.coarse_step_s,
           st.coarse_slots, st.coarse_step_s * st.coarse_slots / 3600.0, st.refused);
    printf("  record one host: median %.1f us, p99 %.1f us, longest %.1f ms (in round %" PRIu64
           ")\n",
           call_ns[n_calls / 2] / 1e3, call_ns[n_calls * 99 / 100] / 1e3, worst / 1e6, worst_round);
    printf("  read one host's %zu series: %" PRIu64 " points in %.1f us\n", o->vms + 1, points,
           read_ns / 1e3);
    free(p);
    free(call_ns);
    history_destroy(&h);
    views_free(&f);
}

static uint64_t
number(const char *opt, const char *text)
{
    char *end;
    unsigned long long v = text ? strtoull(text, &end, 10) : 0;

    if (!text || *end || v == 0) {
        fprintf(stderr, "history_bench: %s wants a positive number\n", opt);
        exit(2);
    }
    return v;
}

int
main(int argc, char **argv)
{
    struct options o = {.vms = 50, .minutes = 60, .period_s = 10, .max_mib = 256};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--hosts") == 0 && o.n_sizes < SIZES_MAX)
            o.hosts[o.n_sizes++] = number(a, v);
        else if (strcmp(a, "--vms") == 0)
            o.vms = number(a, v);
        else if (strcmp(a, "--minutes") == 0)
            o.minutes = number(a, v);
        else if (strcmp(a, "--period") == 0)
            o.period_s = number(a, v);
        else if (strcmp(a, "--max-mib") == 0)
            o.max_mib = number(a, v);
        else {
            fprintf(stderr, "usage: history_bench [--hosts N]... [--vms N] [--minutes N] "
                            "[--period S] [--max-mib N]\n");
            return 2;
        }
        i++;
    }
    if (o.n_sizes == 0) {
        o.hosts[o.n_sizes++] = 1000;
        o.hosts[o.n_sizes++] = 10000;
    }
    for (size_t i = 0; i < o.n_sizes; i++)
        run_size(&o, o.hosts[i]);
    return 0;
}
