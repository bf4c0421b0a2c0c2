/*
 * sched_bench.c - how long one scheduling round takes, by VM count.
 *
 * For 10, 100, 1,000 and 10,000 VMs it plans rounds over a set of random but plausible host
 * snapshots (a third of the VMs needy, a third with excess, the rest in band, a few skipped) and
 * prints the median, 99th percentile and minimum time per round. Target: 10,000 VMs in <= 2 ms.
 *
 *   sched_bench [--rounds N] [--seed N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"
#include "sched.h"
#include "test_util.h"

#define N_SNAPSHOTS  8
#define TARGET_NS    2000000.0
#define TARGET_N_VMS 10000

static uint64_t
next_random(uint64_t *state)
{
    /* splitmix64: small, fast and good enough to spread VM sizes. */
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void
make_vm(struct sched_vm *vm, uint64_t *rng)
{
    uint64_t max = MIB(1024 + next_random(rng) % 7168);
    uint64_t actual = max / 2 + next_random(rng) % (max / 2);

    memset(vm, 0, sizeof(*vm));
    vm->max_kib = max;
    vm->actual_kib = actual;
    vm->managed = vm->has_balloon = vm->has_unused = vm->has_usable = true;
    vm->weight = (uint32_t)(50 + next_random(rng) % 200);
    switch (next_random(rng) % 3) {
    case 0: /* needy */
        vm->unused_kib = next_random(rng) % MIB(100);
        break;
    case 1: /* excess */
        vm->unused_kib = MIB(300) + next_random(rng) % (actual - MIB(300));
        break;
    default: /* in band */
        vm->unused_kib = MIB(100) + next_random(rng) % MIB(200);
        break;
    }
    vm->usable_kib = vm->unused_kib;
    if (next_random(rng) % 50 == 0)
        vm->has_unused = false; /* no stats yet */
    if (next_random(rng) % 10 == 0)
        vm->target_kib = actual + MIB(next_random(rng) % 64); /* a grow in flight */
}

static int
compare_ns(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
bench_size(size_t n_vms, size_t rounds, uint64_t seed, double *median_ns)
{
    struct policy policy;
    struct sched_vm *snapshots[N_SNAPSHOTS];
    struct sched_host hosts[N_SNAPSHOTS];
    struct sched_work *work = sched_work_new(n_vms);
    uint64_t *times = calloc(rounds, sizeof(*times));
    uint64_t rng = seed;
    volatile uint64_t sink = 0;

    if (!times)
        return -1;
    policy_init_defaults(&policy);
    for (size_t s = 0; s < N_SNAPSHOTS; s++) {
        snapshots[s] = calloc(n_vms, sizeof(struct sched_vm));
        if (!snapshots[s])
            return -1;
        for (size_t i = 0; i < n_vms; i++)
            make_vm(&snapshots[s][i], &rng);
        hosts[s].total_kib = MIB(4096) * n_vms;
        hosts[s].available_kib = MIB(64) * n_vms + next_random(&rng) % MIB(1024);
    }
    for (size_t r = 0; r < rounds; r++) {
        struct sched_plan plan;
        size_t s = r % N_SNAPSHOTS;
        uint64_t start = now_ns();
        sched_plan(&policy, &hosts[s], snapshots[s], n_vms, work, &plan);
        times[r] = now_ns() - start;
        sink += plan.summary.granted_kib;
    }
    qsort(times, rounds, sizeof(*times), compare_ns);
    *median_ns = (double)times[rounds / 2];
    printf("| %6zu | %7zu | %10.1f | %10.1f | %10.1f |\n", n_vms, rounds, times[rounds / 2] / 1e3,
           times[rounds * 99 / 100] / 1e3, times[0] / 1e3);
    for (size_t s = 0; s < N_SNAPSHOTS; s++)
        free(snapshots[s]);
    free(times);
    sched_work_destroy(&work);
    (void)sink;
    return 0;
}

int
main(int argc, char **argv)
{
    static const size_t sizes[] = {10, 100, 1000, 10000};
    size_t rounds = 0;
    uint64_t seed = 1;
    double median_ns = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
    }
    printf("sched_bench: time per scheduling round (seed=%" PRIu64 ")\n\n", seed);
    printf("|    VMs |  rounds | median µs |    p99 µs |    min µs |\n");
    printf("|-------:|--------:|-----------:|-----------:|-----------:|\n");
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        /* Enough rounds for a stable median without making 10,000 VMs take long. */
        size_t n_rounds = rounds ? rounds : (sizes[k] >= 10000 ? 400 : 2000);
        if (bench_size(sizes[k], n_rounds, seed, &median_ns) < 0) {
            fprintf(stderr, "sched_bench: out of memory\n");
            return 1;
        }
    }
    printf("\ntarget: %d VMs in <= %.1f ms per round: median %.3f ms, %s\n", TARGET_N_VMS,
           TARGET_NS / 1e6, median_ns / 1e6, median_ns <= TARGET_NS ? "met" : "MISSED");
    return 0;
}
