/*
 * test_eval.c - the what-if evaluator (ctest label `sim`): every planner runs every shipped
 * scenario, memsched never takes a host below its floor on any of them, and on two scenarios
 * small enough to work out by hand the figures are exactly the hand's.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "eval.h"
#include "log.h"
#include "test_util.h"

static void
run(const char *scenario, enum eval_planner planner, uint64_t duration_ms, struct eval_result *r)
{
    struct eval_options o = {.scenario = scenario, .planner = planner, .duration_ms = duration_ms};
    char err[EVAL_ERR_MAX];

    policy_init_defaults(&o.policy);
    if (eval_run(&o, r, err, sizeof(err)) != 0)
        fail_msg("%s under %s: %s", scenario, eval_planner_name(planner), err);
}

/* A scenario written for one test, in a file that is removed again. */
static void
scenario_file(char *path, size_t len, const char *json)
{
    snprintf(path, len, "/tmp/test_eval.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
}

static void
test_every_planner_every_scenario(void **state)
{
    DIR *dir = opendir(SCENARIO_DIR);
    struct dirent *e;
    size_t runs = 0;
    (void)state;

    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL) {
        char path[1024];
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", SCENARIO_DIR, e->d_name);
        for (int p = 0; p < EVAL_PLANNERS; p++) {
            struct eval_result r;
            run(path, (enum eval_planner)p, 0, &r);
            assert_true(r.duration_ms > 0 && r.vms > 0);
            runs++;
            /* memsched keeps the floor wherever the scenario lets it: host_pressure.json starts
             * below it, and only there may the host be below for a while (until donors refill
             * it), never deeper than it started. */
            if (p == EVAL_MEMSCHED && strcmp(e->d_name, "host_pressure.json") != 0 &&
                r.floor_breaches != 0)
                fail_msg("%s: memsched took the host below its floor %llu times (%.1f s, worst "
                         "%.0f MiB)",
                         e->d_name, (unsigned long long)r.floor_breaches, r.floor_below_s,
                         r.floor_worst_mib);
        }
    }
    closedir(dir);
    assert_true(runs >= 10 * EVAL_PLANNERS);
}

/* One guest at its max (512 MiB) using 400: cache min(400 / 8, 512 - 40 - 32 - 400) = 40,
 * MemFree 512 - 40 - 400 - 40 = 32, MemAvailable 32 + 40 - 64 = 8, below vm_min_unused (100) for
 * the whole minute, and nobody can grow it. Every planner: 60 VM-seconds of pressure in one
 * episode of 60 s, no balloon moved. */
static void
test_hand_computed_pressure(void **state)
{
    char path[64];
    (void)state;

    scenario_file(
        path, sizeof(path),
        "{\"host\": {\"total_mib\": 2048}, \"duration_s\": 60, \"vms\": [{\"name\": "
        "\"full\", \"max_mib\": 512, \"workload\": [{\"at_s\": 0, \"used_mib\": 400}]}]}");
    for (int p = 0; p < EVAL_PLANNERS; p++) {
        struct eval_result r;
        run(path, (enum eval_planner)p, 0, &r);
        assert_int_equal(r.duration_ms, 60000);
        assert_true(r.pressure_vm_s > 59.95 && r.pressure_vm_s < 60.05);
        assert_int_equal(r.episodes, 1);
        assert_true(r.relief_worst_s > 59.95 && r.relief_worst_s < 60.05);
        assert_int_equal(r.floor_breaches, 0);
        assert_int_equal(r.balloon_ops, 0);
        assert_true(r.moved_mib == 0.0);
    }
    unlink(path);
}

/* One guest inside the band: 512 MiB, 300 used, cache 300 / 8 = 37.5, MemFree
 * 512 - 40 - 300 - 37.5 = 134.5 (between 100 and 300), MemAvailable 134.5 + 37.5 - 64 = 108
 * (above 100). memsched leaves it alone: no pressure, no target, nothing moved. */
static void
test_hand_computed_quiet(void **state)
{
    char path[64];
    struct eval_result r;
    (void)state;

    scenario_file(path, sizeof(path),
                  "{\"host\": {\"total_mib\": 2048}, \"duration_s\": 30, \"vms\": [{\"name\": "
                  "\"quiet\", \"max_mib\": 1024, \"initial_mib\": 512, \"workload\": [{\"at_s\": "
                  "0, \"used_mib\": 300}]}]}");
    run(path, EVAL_MEMSCHED, 0, &r);
    assert_true(r.pressure_vm_s == 0.0);
    assert_int_equal(r.episodes, 0);
    assert_int_equal(r.balloon_ops, 0);
    assert_true(r.moved_mib == 0.0);
    assert_true(r.idle_moved_mib == 0.0);
    unlink(path);
}

int
main(void)
{
    log_set_level(LOG_LEVEL_WARN); /* the round's decision lines are not this test's output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_planner_every_scenario),
        cmocka_unit_test(test_hand_computed_pressure),
        cmocka_unit_test(test_hand_computed_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
