/*
 * metrics_bench.c - the Prometheus exposition (coordinator/metrics.c) of a fleet held in the
 * fleet core: how large it is and how long it takes to write, whole and in the coordinator's
 * slices.
 *
 * For each --hosts value (default 100 and 10,000) a fleet of that many hosts x --vms (50) VMs
 * is filled (every VM with unused, usable and a target, realistic names and random uuids, two
 * decisions per host, a policy whose floor is known), then written --runs (5) times:
 *   whole   metrics_format() in one call: wall ms (median, best), bytes, lines, bytes per VM;
 *   sliced  metrics_build_step() by --slice (64) hosts, as the coordinator's loop does between
 *           messages: the longest and the median slice, and the finish (fleet totals, HELP and
 *           TYPE lines): the longest the loop is held up by a document being written.
 * Peak RSS (getrusage) after each size tells what one document costs in memory (the daemon
 * keeps the published one and, while writing, the next). It prints numbers and asserts none.
 *
 *   metrics_bench [--hosts N]... [--vms N] [--runs N] [--slice N] [--vm-series yes|no]
 * --vm-series no leaves the per-VM series out, as the coordinator's metrics_vm_series = false.
 * Documented run (release build): build/release/tests/bench/metrics_bench (README, Benchmarks).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

#include "fleet.h"
#include "metrics.h"

#define SIZES_MAX 8
#define RUNS_MAX  64

struct options {
    size_t hosts[SIZES_MAX];
    size_t n_sizes;
    size_t vms;
    size_t runs;
    size_t slice;
    bool omit_vm_series; /* --vm-series no: as metrics_vm_series = false */
};

/* Host h's report: n VMs, two decisions. */
static void
fill_report(struct wire_report *r,
            struct wire_vm *vms,
            struct wire_decision *d,
            size_t h,
            size_t n,
            uint64_t *seed)
{
    memset(r, 0, sizeof(*r));
    r->host_total_kib = UINT64_C(512) * 1024 * 1024;
    r->host_available_kib = UINT64_C(64) * 1024 * 1024;
    r->vms = vms;
    r->n_vms = n;
    r->vms_total = n;
    r->decisions = d;
    r->n_decisions = n >= 2 ? 2 : 0;
    r->policy_version = 7;
    r->counters = (struct wire_counters){.rounds = 1000, .granted_kib = 1 << 20};
    for (size_t i = 0; i < n; i++) {
        struct wire_vm *vm = &vms[i];
        uint64_t a = bench_random(seed), b = bench_random(seed);
        memset(vm, 0, sizeof(*vm));
        snprintf(vm->uuid, sizeof(vm->uuid),
                 "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32 "-%012" PRIx64,
                 (uint32_t)a, (uint32_t)(a >> 32) & 0xffff, (uint32_t)(a >> 48) & 0xfff,
                 (uint32_t)b & 0xfff, (b >> 12) & UINT64_C(0xffffffffffff));
        snprintf(vm->name, sizeof(vm->name), "tenant%02zu-app-%03zu.prod", h % 100, i);
        vm->max_kib = UINT64_C(8) * 1024 * 1024;
        vm->actual_kib = (4 + i % 4) * UINT64_C(1024) * 1024;
        vm->target_kib = vm->actual_kib;
        vm->unused_kib = (50 + bench_random(seed) % 1000) * 1024;
        vm->usable_kib = vm->unused_kib * 2;
        vm->stats_age_ms = 800;
        vm->has_unused = vm->has_usable = vm->managed = true;
    }
    for (size_t i = 0; i < r->n_decisions; i++) {
        memset(&d[i], 0, sizeof(d[i]));
        memcpy(d[i].uuid, vms[i].uuid, sizeof(d[i].uuid));
        d[i].reason = i ? SCHED_REASON_SHRINK : SCHED_REASON_GROW;
        d[i].old_target_kib = vms[i].actual_kib;
        d[i].new_target_kib = vms[i].actual_kib + (i ? -65536 : 65536);
    }
}

static struct fleet *
make_fleet(size_t n_hosts, size_t n_vms)
{
    struct fleet *f = fleet_new(&(struct fleet_opts){.hosts_max = n_hosts + 1});
    struct wire_vm *vms = bench_xcalloc(n_vms, sizeof(*vms));
    struct wire_decision d[2];
    struct wire_report r;
    struct wire_hello hello;
    uint64_t seed = 0x9e3779b97f4a7c15u;

    memset(&hello, 0, sizeof(hello));
    strcpy(hello.agent_version, "0.1.0");
    hello.policy_version = 7;
    for (size_t h = 0; h < n_hosts; h++) {
        char id[WIRE_HOST_ID_MAX];
        snprintf(id, sizeof(id), "hv-%05zu.dc1", h);
        fill_report(&r, vms, d, h, n_vms, &seed);
        if (fleet_hello(f, id, &hello, 0) != 0 || fleet_report(f, id, 1, &r, 0) != 0) {
            fprintf(stderr, "metrics_bench: the fleet refused host %s\n", id);
            exit(1);
        }
    }
    free(vms);
    return f;
}

static bool
floor_kib(void *ctx, uint64_t version, uint64_t *kib)
{
    (void)ctx;
    (void)version;
    *kib = 200 * 1024;
    return true;
}

static int
compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), compare_double);
    return v[n / 2];
}

static size_t
count_lines(const struct metrics_text *t)
{
    size_t lines = 0;
    for (size_t i = 0; i < t->n_parts; i++)
        for (size_t j = 0; j < t->lens[i]; j++)
            lines += t->parts[i][j] == '\n';
    return lines;
}

/* The sliced build once: slice times into *slices (the caller frees), the finish's. */
static void
sliced_run(
    const struct metrics_source *src, size_t slice, double **slices, size_t *n, double *finish_ms)
{
    struct metrics_build *b = metrics_build_new(src->fleet);
    size_t cap = fleet_host_count(src->fleet) / slice + 2;
    bool done = false;

    *slices = bench_xcalloc(cap, sizeof(**slices));
    *n = 0;
    while (!done) {
        uint64_t t0 = bench_now_ns();
        done = metrics_build_step(b, src, slice);
        (*slices)[(*n)++] = (double)(bench_now_ns() - t0) / 1e6;
    }
    uint64_t t0 = bench_now_ns();
    struct metrics_text *text = metrics_build_finish(b, src);
    *finish_ms = (double)(bench_now_ns() - t0) / 1e6;
    metrics_build_destroy(&b);
    metrics_text_destroy(&text);
}

static void
measure(const struct options *o, size_t n_hosts)
{
    struct fleet *f = make_fleet(n_hosts, o->vms);
    struct metrics_source src = {
        .fleet = f,
        .now_ms = 1000,
        .pressure_unused_kib = 100 * 1024,
        .host_floor_kib = floor_kib,
        .omit_vm_series = o->omit_vm_series,
    };
    double whole[RUNS_MAX], slice_max = 0, slice_median = 0, finish = 0;
    size_t bytes = 0, lines = 0, n_slices = 0;
    double rss_fleet = bench_peak_rss_mib();

    for (size_t run = 0; run < o->runs; run++) {
        uint64_t t0 = bench_now_ns();
        struct metrics_text *text = metrics_format(&src);
        whole[run] = (double)(bench_now_ns() - t0) / 1e6;
        bytes = text->bytes;
        lines = count_lines(text);
        metrics_text_destroy(&text);

        double *slices, fin;
        sliced_run(&src, o->slice, &slices, &n_slices, &fin);
        for (size_t i = 0; i < n_slices; i++)
            slice_max = slices[i] > slice_max ? slices[i] : slice_max;
        slice_median = median(slices, n_slices);
        finish = fin > finish ? fin : finish;
        free(slices);
    }
    double best = whole[0];
    for (size_t i = 1; i < o->runs; i++)
        best = whole[i] < best ? whole[i] : best;
    size_t vms = n_hosts * o->vms;
    printf("| %6zu x %-3zu | %10.1f | %9.1f | %8.1f | %12zu | %9zu | %6.0f | %6zu | %8.2f | %7.2f "
           "| %7.2f | %7.0f |\n",
           n_hosts, o->vms, bytes / 1048576.0, median(whole, o->runs), best, bytes, lines,
           vms ? (double)bytes / (double)vms : 0.0, n_slices, slice_max, slice_median, finish,
           bench_peak_rss_mib() - rss_fleet);
    printf("RESULT hosts=%zu vms=%zu vm_series=%s bytes=%zu lines=%zu whole_ms=%.1f "
           "slice_max_ms=%.2f finish_ms=%.2f\n",
           n_hosts, o->vms, o->omit_vm_series ? "no" : "yes", bytes, lines, median(whole, o->runs),
           slice_max, finish);
    fflush(stdout);
    fleet_destroy(&f);
}

static int
parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.vms = 50, .runs = 5, .slice = 64};
    for (int i = 1; i + 1 < argc; i += 2) {
        size_t v = strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--hosts") == 0 && o->n_sizes < SIZES_MAX && v > 0)
            o->hosts[o->n_sizes++] = v;
        else if (strcmp(argv[i], "--vms") == 0 && v <= WIRE_VMS_MAX)
            o->vms = v;
        else if (strcmp(argv[i], "--runs") == 0 && v > 0 && v <= RUNS_MAX)
            o->runs = v;
        else if (strcmp(argv[i], "--slice") == 0 && v > 0)
            o->slice = v;
        else if (strcmp(argv[i], "--vm-series") == 0 &&
                 (strcmp(argv[i + 1], "yes") == 0 || strcmp(argv[i + 1], "no") == 0))
            o->omit_vm_series = strcmp(argv[i + 1], "no") == 0;
        else
            return -1;
    }
    if (argc % 2 == 0)
        return -1;
    if (!o->n_sizes) {
        o->hosts[o->n_sizes++] = 100;
        o->hosts[o->n_sizes++] = 10000;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct options o;

    if (parse(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: metrics_bench [--hosts N]... [--vms N] [--runs N] [--slice N] "
                        "[--vm-series yes|no]\n");
        return 2;
    }
    printf("metrics_bench: exposition of hosts x VMs, %zu runs each (median and best of the "
           "whole; the longest slice over all runs), slices of %zu hosts, per-VM series %s\n\n",
           o.runs, o.slice, o.omit_vm_series ? "left out (metrics_vm_series = false)" : "in");
    printf("| hosts x VMs  | MiB        | whole ms  | best ms  | bytes        | lines     | B/VM   "
           "| slices | slice max ms | median | finish | RSS +MiB |\n");
    printf("|--------------|------------|-----------|----------|--------------|-----------|--------"
           "|--------|----------|---------|---------|---------|\n");
    for (size_t i = 0; i < o.n_sizes; i++)
        measure(&o, o.hosts[i]);
    return 0;
}
