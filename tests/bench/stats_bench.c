/*
 * stats_bench.c - how long one round's stats collection takes through the port, by libvirt path.
 *
 *   stats_bench URI [--rounds N] [--warmup N]
 *
 * Starts nothing: give it a URI. The documented run is tests/bench/stats_bench.sh, which starts a
 * private libvirtd (tests/lib/libvirtd.sh) with a test-driver node of 500 running domains and
 * passes its test+unix URI, so every call crosses the real socket.
 *
 * Each round is one hv sample() (VMs and host). The paths are measured in turns, round by round,
 * so drift in the machine's load hits them alike; the first --warmup rounds of each fill the
 * backend's per-domain cache (XML, metadata) and are not counted. Printed: rounds, VMs, median,
 * p90 and min per path, and the median ratio per-domain / bulk.
 *
 * What the paths are (agent/hv_libvirt.h): bulk is one virConnectGetAllDomainStats; per-domain
 * is virConnectListAllDomains + virDomainGetInfo + virDomainMemoryStats per domain; auto is the
 * agent's default, bulk with a per-domain fallback for records without balloon fields. libvirt's
 * test driver gives no balloon fields in bulk records, so on it bulk carries less data than with
 * QEMU (where one record holds ~14 balloon fields) and auto falls back for every domain: there,
 * read the bulk line as the cost of the round trips the agent saves, not of a QEMU host's round.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "hv.h"
#include "hv_backends.h"
#include "hv_libvirt.h"
#include "log.h"

#define ROUNDS_DEFAULT 30
#define WARMUP_DEFAULT 2

struct path_run {
    const char *name;
    enum hv_libvirt_stats_path path;
    uint64_t *ns; /* one per measured round */
    size_t n;
    size_t vms;
};

static double
ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* One round on the given path; returns its length in ns, or 0 on failure. */
static uint64_t
one_round(struct hv *hv, struct path_run *run, struct hv_vm *vms, size_t cap)
{
    struct hv_host host;
    size_t n = 0;
    uint64_t start;
    int rc;

    if (hv_libvirt_set_stats_path(hv, run->path) != 0) {
        fprintf(stderr, "stats_bench: not a libvirt URI\n");
        return 0;
    }
    start = bench_now_ns();
    rc = hv->ops->sample(hv->ctx, &host, vms, cap, &n);
    if (rc != 0) {
        fprintf(stderr, "stats_bench: sample on the %s path: %d (%s)\n", run->name, rc,
                rc == -ENOSPC ? "more VMs than room" : strerror(-rc));
        return 0;
    }
    run->vms = n;
    return bench_now_ns() - start;
}

static int
parse_count(const char *s, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (!end || *end || v < 1 || v > 100000)
        return -1;
    *out = (int)v;
    return 0;
}

int
main(int argc, char **argv)
{
    struct path_run runs[] = {
        {.name = "bulk", .path = HV_LIBVIRT_STATS_BULK},
        {.name = "per-domain", .path = HV_LIBVIRT_STATS_PER_DOMAIN},
        {.name = "auto", .path = HV_LIBVIRT_STATS_AUTO},
    };
    const size_t n_runs = sizeof(runs) / sizeof(runs[0]);
    const size_t cap = 16384;
    int rounds = ROUNDS_DEFAULT, warmup = WARMUP_DEFAULT;
    char err[HV_ERR_MAX] = "";
    struct hv *hv = NULL;
    struct hv_vm *vms = NULL;
    int rc = 1;

    if (argc < 2 || argc % 2 != 0)
        goto usage;
    for (int i = 2; i < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0 && parse_count(argv[i + 1], &rounds) == 0)
            continue;
        if (strcmp(argv[i], "--warmup") == 0 && parse_count(argv[i + 1], &warmup) == 0)
            continue;
        goto usage;
    }
    log_set_level(LOG_LEVEL_WARN); /* the backend's info lines (host fallback) are no result */
    if (hv_open(argv[1], &hv, err, sizeof(err)) != 0) {
        fprintf(stderr, "stats_bench: %s\n", err);
        return 1;
    }
    vms = calloc(cap, sizeof(*vms));
    for (size_t r = 0; r < n_runs; r++)
        runs[r].ns = calloc((size_t)rounds, sizeof(uint64_t));
    if (!vms)
        abort();

    for (int i = 0; i < warmup + rounds; i++) {
        for (size_t r = 0; r < n_runs; r++) {
            uint64_t ns;
            if (!runs[r].ns)
                abort();
            ns = one_round(hv, &runs[r], vms, cap);
            if (ns == 0)
                goto out;
            if (i >= warmup)
                runs[r].ns[runs[r].n++] = ns;
        }
    }

    printf("uri: %s\nrounds: %d measured per path (after %d warm-up), taken in turns\n\n", argv[1],
           rounds, warmup);
    printf("%-11s %6s %12s %12s %12s\n", "path", "vms", "median_ms", "p90_ms", "min_ms");
    for (size_t r = 0; r < n_runs; r++) {
        struct path_run *run = &runs[r];
        qsort(run->ns, run->n, sizeof(*run->ns), bench_compare_u64);
        printf("%-11s %6zu %12.3f %12.3f %12.3f\n", run->name, run->vms, ms(run->ns[run->n / 2]),
               ms(run->ns[(run->n * 9) / 10]), ms(run->ns[0]));
    }
    printf("\nratio per-domain / bulk (medians): %.1fx\n",
           (double)runs[1].ns[runs[1].n / 2] / (double)runs[0].ns[runs[0].n / 2]);
    rc = 0;
out:
    for (size_t r = 0; r < n_runs; r++)
        free(runs[r].ns);
    free(vms);
    hv_close(&hv);
    return rc;
usage:
    fprintf(stderr, "usage: stats_bench URI [--rounds N] [--warmup N]\n"
                    "  (tests/bench/stats_bench.sh runs it against a private libvirtd)\n");
    return 2;
}
