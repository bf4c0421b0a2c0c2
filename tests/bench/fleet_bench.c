/*
 * fleet_bench.c - the coordinator's fleet state core alone: how fast it absorbs reports, and how
 * much memory it takes to hold the fleet.
 *
 * 10,000 hosts (--hosts) say hello, then send --rounds reports each of 50 VMs (--vms) with
 * --decisions decisions, in libvirt's order (not sorted by uuid, so the per-report sort is
 * paid). The reports are prebuilt from 64 templates before anything is measured, so the timed
 * loop is fleet_report() calls and nothing else, on one core (the program is single-threaded).
 * Round 1 is the first report of each host (its arrays are allocated); later rounds replace
 * the VM set of a host that holds one (the steady state). Then the fleet's peak RSS
 * (getrusage ru_maxrss; the input templates are ~1 MiB of it), and the readers: totals, a tick,
 * the host list, and the whole-fleet VM sort an operator's `memschedctl vms` asks for.
 * Targets: >= 200,000 VM records/s on one core, RSS < 300 MiB at 10,000 x 50.
 *
 *   fleet_bench [--hosts N] [--vms N] [--rounds N] [--decisions N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

#include "fleet.h"

#define TEMPLATES            64
#define TARGET_RECORDS_PER_S 200000.0
#define TARGET_RSS_MIB       300.0
#define TOTALS_RUNS          21
#define PRESSURE_KIB         (100 * 1024) /* the daemon's default pressure_unused_mib */

/* A report of n_vms VMs with random uuids and realistic names, n_decisions decisions. */
static void
make_template(struct wire_report *r, size_t t, size_t n_vms, size_t n_decisions, uint64_t *seed)
{
    static const enum sched_reason reasons[] = {SCHED_REASON_GROW, SCHED_REASON_SHRINK,
                                                SCHED_REASON_NEED_UNMET, SCHED_REASON_IN_BAND};

    memset(r, 0, sizeof(*r));
    r->host_total_kib = UINT64_C(512) * 1024 * 1024;
    r->host_available_kib = UINT64_C(64) * 1024 * 1024;
    r->vms = bench_xcalloc(n_vms ? n_vms : 1, sizeof(*r->vms));
    r->decisions = bench_xcalloc(n_decisions ? n_decisions : 1, sizeof(*r->decisions));
    r->n_vms = n_vms;
    r->n_decisions = n_decisions;
    r->policy_version = 7;
    for (size_t i = 0; i < n_vms; i++) {
        struct wire_vm *vm = &r->vms[i];
        uint64_t a = bench_random(seed), b = bench_random(seed);
        snprintf(vm->uuid, sizeof(vm->uuid),
                 "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32 "-%012" PRIx64,
                 (uint32_t)a, (uint32_t)(a >> 32) & 0xffff, (uint32_t)(a >> 48) & 0xfff,
                 (uint32_t)b & 0xfff, (b >> 12) & UINT64_C(0xffffffffffff));
        snprintf(vm->name, sizeof(vm->name), "tenant%02zu-app-%03zu.prod", t, i);
        vm->state = SCHED_VM_RUNNING;
        vm->max_kib = UINT64_C(8) * 1024 * 1024;
        vm->actual_kib = (4 + i % 4) * UINT64_C(1024) * 1024;
        vm->target_kib = vm->actual_kib;
        vm->unused_kib = (50 + bench_random(seed) % 1000) * 1024;
        vm->usable_kib = vm->unused_kib * 2;
        vm->stats_age_ms = 800;
        vm->has_unused = vm->has_usable = vm->managed = true;
    }
    for (size_t i = 0; i < n_decisions; i++) {
        struct wire_decision *d = &r->decisions[i];
        memcpy(d->uuid, r->vms[i * 7 % n_vms].uuid, sizeof(d->uuid));
        d->reason = reasons[i % 4];
        d->old_target_kib = r->vms[i].actual_kib;
        d->new_target_kib = d->old_target_kib + 65536;
        strcpy(d->counterpart, WIRE_COUNTERPART_HOST);
    }
}

static int
count_vm(const char *host_id, const struct fleet_vm *vm, void *ctx)
{
    (void)host_id;
    (void)vm;
    ++*(size_t *)ctx;
    return 0;
}

static int
count_host(const struct fleet_host_info *h, void *ctx)
{
    (void)h;
    ++*(size_t *)ctx;
    return 0;
}

static int
compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    size_t n_hosts = 10000, n_vms = 50, rounds = 5, n_decisions = 5;
    struct wire_report templates[TEMPLATES];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char(*ids)[WIRE_HOST_ID_MAX];
    struct wire_hello hello;

    for (int i = 1; i + 1 < argc; i += 2) {
        size_t v = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--hosts") == 0)
            n_hosts = v;
        else if (strcmp(argv[i], "--vms") == 0)
            n_vms = v;
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = v ? v : 1;
        else if (strcmp(argv[i], "--decisions") == 0)
            n_decisions = v;
        else {
            fprintf(stderr, "usage: fleet_bench [--hosts N] [--vms N] [--rounds N] "
                            "[--decisions N]\n");
            return 2;
        }
    }
    if (n_vms > WIRE_VMS_MAX || n_decisions > n_vms || n_hosts == 0) {
        fprintf(stderr, "fleet_bench: need hosts > 0, vms <= %d, decisions <= vms\n", WIRE_VMS_MAX);
        return 2;
    }

    for (size_t t = 0; t < TEMPLATES; t++)
        make_template(&templates[t], t, n_vms, n_decisions, &seed);
    ids = bench_xcalloc(n_hosts, sizeof(*ids));
    memset(&hello, 0, sizeof(hello));
    strcpy(hello.agent_version, "0.1.0");
    strcpy(hello.labels[0].key, "rack");
    strcpy(hello.labels[1].key, "zone");
    strcpy(hello.labels[1].value, "eu-west-1a");
    hello.n_labels = 2;
    double rss_before = bench_peak_rss_mib();

    struct fleet *f = fleet_new(NULL);
    fleet_set_pressure_threshold(f, PRESSURE_KIB); /* as the daemon does */
    uint64_t start = bench_now_ns();
    for (size_t h = 0; h < n_hosts; h++) {
        snprintf(ids[h], sizeof(ids[h]), "hv-%05zu.dc1.example.net", h);
        snprintf(hello.labels[0].value, sizeof(hello.labels[0].value), "r%zu", h % 200);
        if (fleet_hello(f, ids[h], &hello, 0) != 0) {
            fprintf(stderr, "fleet_bench: hello refused\n");
            return 1;
        }
    }
    double hello_ms = (double)(bench_now_ns() - start) / 1e6;

    printf("fleet_bench: %zu hosts x %zu VMs, %zu decisions per report, %zu rounds\n\n", n_hosts,
           n_vms, n_decisions, rounds);
    printf("hello of %zu hosts: %.1f ms\n\n", n_hosts, hello_ms);
    printf("| round | wall ms  | cpu ms   | reports/s  | VM records/s | RSS MiB |\n");
    printf("|------:|---------:|---------:|-----------:|-------------:|--------:|\n");
    double steady_best = 0;
    for (size_t r = 1; r <= rounds; r++) {
        uint64_t wall = bench_now_ns(), cpu = bench_cpu_ns();
        for (size_t h = 0; h < n_hosts; h++) {
            if (fleet_report(f, ids[h], r, &templates[h % TEMPLATES], (r - 1) * 1000 + h / 10)) {
                fprintf(stderr, "fleet_bench: report refused\n");
                return 1;
            }
        }
        wall = bench_now_ns() - wall;
        cpu = bench_cpu_ns() - cpu;
        double rate = (double)(n_hosts * n_vms) / ((double)cpu / 1e9);
        if (r > 1 && rate > steady_best)
            steady_best = rate;
        printf("| %5zu | %8.1f | %8.1f | %10.0f | %12.0f | %7.1f |\n", r, (double)wall / 1e6,
               (double)cpu / 1e6, (double)n_hosts / ((double)cpu / 1e9), rate,
               bench_peak_rss_mib());
    }
    double rss_after = bench_peak_rss_mib();

    uint64_t totals_ns[TOTALS_RUNS];
    struct fleet_totals t;
    for (size_t i = 0; i < TOTALS_RUNS; i++) {
        uint64_t s = bench_now_ns();
        fleet_totals(f, rounds * 1000, PRESSURE_KIB, &t);
        totals_ns[i] = bench_now_ns() - s;
    }
    struct fleet_totals walked;
    start = bench_now_ns();
    fleet_totals(f, rounds * 1000, PRESSURE_KIB + 1, &walked); /* not the kept threshold */
    double walked_ms = (double)(bench_now_ns() - start) / 1e6;
    qsort(totals_ns, TOTALS_RUNS, sizeof(totals_ns[0]), compare_u64);
    start = bench_now_ns();
    size_t changes = fleet_tick(f, rounds * 1000 + 60000, NULL, NULL);
    double tick_ms = (double)(bench_now_ns() - start) / 1e6;
    size_t listed = 0;
    start = bench_now_ns();
    fleet_hosts_each(f, count_host, &listed);
    double hosts_ms = (double)(bench_now_ns() - start) / 1e6;
    size_t sorted = 0;
    start = bench_now_ns();
    fleet_vms_each(f, FLEET_VM_KEY_UNUSED, false, 0, count_vm, &sorted);
    double vms_unused_ms = (double)(bench_now_ns() - start) / 1e6;
    sorted = 0;
    start = bench_now_ns();
    fleet_vms_each(f, FLEET_VM_KEY_NAME, false, 0, count_vm, &sorted);
    double vms_name_ms = (double)(bench_now_ns() - start) / 1e6;
    size_t top = 0;
    start = bench_now_ns();
    fleet_vms_each(f, FLEET_VM_KEY_UNUSED, false, 20, count_vm, &top);
    double vms_top_ms = (double)(bench_now_ns() - start) / 1e6;

    printf("\nsteady state (rounds 2+): best %.0f VM records/s on one core (target >= %.0f)\n",
           steady_best, TARGET_RECORDS_PER_S);
    printf("peak RSS %.1f MiB holding %zu x %zu (target < %.0f); %.1f MiB before the fleet "
           "(templates), so the fleet took %.1f MiB, %.0f bytes per VM\n",
           rss_after, n_hosts, n_vms, TARGET_RSS_MIB, rss_before, rss_after - rss_before,
           (rss_after - rss_before) * 1048576.0 / (double)(n_hosts * n_vms));
    printf("fleet_totals: median %.1f us of %d (%zu VMs, %zu under pressure, %" PRIu64
           " decisions/min, overcommit %.2f)\n",
           (double)totals_ns[TOTALS_RUNS / 2] / 1e3, TOTALS_RUNS, t.vms, t.vms_under_pressure,
           t.decisions_last_minute, t.overcommit);
    printf("fleet_totals at a threshold not kept (walks every VM): %.2f ms\n", walked_ms);
    printf("fleet_tick over %zu hosts (%zu went down): %.2f ms\n", n_hosts, changes, tick_ms);
    printf("fleet_hosts_each sorted by id (%zu): %.1f ms\n", listed, hosts_ms);
    printf("fleet_vms_each sorted by unused / by name (%zu VMs): %.1f / %.1f ms\n", sorted,
           vms_unused_ms, vms_name_ms);
    printf("fleet_vms_each, the %zu with least unused (limit): %.1f ms\n", top, vms_top_ms);
    fleet_destroy(&f);
    for (size_t i = 0; i < TEMPLATES; i++) {
        free(templates[i].vms);
        free(templates[i].decisions);
    }
    free(ids);
    return 0;
}
