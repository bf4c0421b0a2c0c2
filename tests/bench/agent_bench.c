/*
 * agent_bench.c - the agent's CPU time per round and its peak RSS, on 100 and 1,000 sim VMs.
 *
 * Each size runs in its own child process (so peak RSS is that size's own), on a generated
 * scenario: a quarter of the VMs hog, the rest idle with excess, on a host with room. Rounds run
 * on the sim's fake clock; the time of round_run() is CPU time (CLOCK_PROCESS_CPUTIME_ID), and
 * the sim backend's share (sampling the model) is measured apart and subtracted, so "own work"
 * is the agent's: tracking, planning, checking, applying, logging (at warn: no lines).
 * Targets: a round's own work < 5 ms and RSS < 10 MiB at 1,000 VMs.
 *
 *   agent_bench [--rounds N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv_sim.h"
#include "log.h"
#include "round.h"

#define TARGET_OWN_MS  5.0
#define TARGET_RSS_MIB 10.0

static uint64_t
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* A scenario of n VMs: every fourth one hogs from t=5 s, the others idle with excess. */
static char *
make_scenario(size_t n)
{
    size_t cap = 256 + n * 256, used = 0;
    char *json = malloc(cap);

    if (!json)
        abort();
    used += (size_t)snprintf(json + used, cap - used,
                             "{\"description\": \"agent_bench\", \"host\": {\"total_mib\": %zu, "
                             "\"reserved_mib\": 4096}, \"vms\": [",
                             n * 3072 + 8192);
    for (size_t i = 0; i < n; i++) {
        bool hog = i % 4 == 0;
        used += (size_t)snprintf(
            json + used, cap - used,
            "%s{\"name\": \"vm%zu\", \"max_mib\": 4096, \"initial_mib\": 2048, \"workload\": "
            "[{\"at_s\": 0, \"used_mib\": 400}%s]}",
            i ? ", " : "", i, hog ? ", {\"at_s\": 5, \"hog_mib_per_s\": 30, \"hold_s\": 30}" : "");
    }
    snprintf(json + used, cap - used, "]}");
    return json;
}

static double
median_ms(uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof(*ns), compare_u64);
    return (double)ns[n / 2] / 1e6;
}

/* The child: run the rounds, print one table row. */
static int
bench_size(size_t n_vms, size_t rounds)
{
    char err[HV_ERR_MAX];
    struct hv *hv;
    struct policy policy;
    char *json = make_scenario(n_vms);
    uint64_t *round_ns = calloc(rounds, sizeof(uint64_t));
    uint64_t *sample_ns = calloc(rounds, sizeof(uint64_t));
    struct hv_host host;
    struct hv_vm *vms = calloc(n_vms, sizeof(*vms));
    size_t n;

    if (!round_ns || !sample_ns || !vms || sim_open_json(json, "bench", &hv, err, sizeof(err))) {
        fprintf(stderr, "agent_bench: %s\n", err);
        return 1;
    }
    free(json);
    struct sim *sim = sim_from_hv(hv);
    sim_use_fake_clock(sim);
    struct round *round = round_new(hv, false);
    policy_init_defaults(&policy);
    for (size_t r = 0; r < rounds; r++) {
        uint64_t start = cpu_ns();
        round_run(round, &policy, sim_now_ms(sim));
        round_ns[r] = cpu_ns() - start;
        start = cpu_ns();
        hv->ops->sample(hv->ctx, &host, vms, n_vms, &n);
        sample_ns[r] = cpu_ns() - start;
        sim_advance(sim, 1000);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double round_med = median_ms(round_ns, rounds), sample_med = median_ms(sample_ns, rounds);
    const struct round_counters *c = round_get_counters(round);
    printf("| %5zu | %6zu | %10.3f | %10.3f | %10.3f | %8.1f | %6" PRIu64 " | %7" PRIu64 " |\n",
           n_vms, rounds, round_med, sample_med, round_med - sample_med, ru.ru_maxrss / 1024.0,
           c->grows, c->shrinks);
    round_destroy(&round);
    hv_close(&hv);
    free(vms);
    free(round_ns);
    free(sample_ns);
    fflush(stdout); /* the child leaves through _exit(), which does not flush */
    return 0;
}

int
main(int argc, char **argv)
{
    static const size_t sizes[] = {100, 1000};
    size_t rounds = 120;

    if (argc == 3 && strcmp(argv[1], "--rounds") == 0)
        rounds = strtoul(argv[2], NULL, 10);
    if (rounds == 0)
        rounds = 1;
    log_set_level(LOG_LEVEL_WARN);
    printf(
        "agent_bench: CPU time per agent round on the sim (fake clock), median of %zu rounds\n\n",
        rounds);
    printf("|   VMs | rounds | round ms   | sim ms     | own ms     | RSS MiB  |  grows | shrinks "
           "|\n");
    printf("|------:|-------:|-----------:|-----------:|-----------:|---------:|-------:|--------:|"
           "\n");
    fflush(stdout);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(bench_size(sizes[k], rounds));
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "agent_bench: the %zu-VM run failed\n", sizes[k]);
            return 1;
        }
    }
    printf("\nround = round_run() (incl. sampling the sim); sim = one sample of the sim alone;\n"
           "own = round - sim. Targets at 1,000 VMs: own < %.0f ms, RSS < %.0f MiB "
           "(RSS includes the sim's model of the host).\n",
           TARGET_OWN_MS, TARGET_RSS_MIB);
    return 0;
}
