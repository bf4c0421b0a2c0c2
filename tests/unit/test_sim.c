/*
 * test_sim.c - the sim model (agent/hv_sim.c) on its own, driven through the port with the fake
 * clock: balloons, guests, workloads, stats, lifecycle, counters, scenario validation, and
 * every scenario shipped in tests/scenarios.
 *
 * Expected values come from the model's documented constants (tests/scenarios/README.md):
 * guest overhead 40 MiB, reserve 32 MiB, watermark 64 MiB (MemAvailable = MemFree + cache - 64),
 * page cache used/8 or filling free memory down to 20 MiB, QEMU overhead 32 MiB by default,
 * steps of 100 ms. Sizes are written in MiB (MIB() makes KiB) with the arithmetic in the
 * comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv.h"
#include "hv_backends.h"
#include "hv_sim.h"
#include "log.h"
#include "test_util.h"

#define VMS_MAX       16
#define OVERHEAD_MIB  40
#define RESERVE_MIB   32
#define WATERMARK_MIB 64
#define FILL_FREE_MIB 20
#define QEMU_MIB      32 /* default qemu_overhead_mib */

/* Want/got in decimal (KiB, ms, counts) with the expression, instead of cmocka's hex. */
#define ASSERT_U64(got, want)                                                                      \
    do {                                                                                           \
        uint64_t got_ = (got);                                                                     \
        uint64_t want_ = (want);                                                                   \
        if (got_ != want_)                                                                         \
            fail_msg("%s: want %" PRIu64 ", got %" PRIu64 " (%s)", #got, want_, got_, #want);      \
    } while (0)

/* A scenario with one VM "vm" on an 8192/1024 host: its sizes, extra keys and workload are
 * spliced in. ONE_VM gives the usual sizes: max 2048, initial 1024, 256 MiB/s. */
#define VM_JSON(sizes, vm_keys, workload)                                                          \
    "{\"host\": {\"total_mib\": 8192, \"reserved_mib\": 1024}, \"vms\": [{\"name\": "              \
    "\"vm\", " sizes vm_keys ", \"workload\": [" workload "]}]}"
#define ONE_VM(vm_keys, workload)                                                                  \
    VM_JSON("\"max_mib\": 2048, \"initial_mib\": 1024, \"balloon_mib_per_s\": 256", vm_keys,       \
            workload)

struct fixture {
    struct hv *hv;
    struct sim *sim;
};

static void
fixture_open(struct fixture *f, const char *json)
{
    char err[HV_ERR_MAX] = "";
    int rc = sim_open_json(json, "test.json", &f->hv, err, sizeof(err));

    if (rc != 0)
        fail_msg("sim_open_json: rc=%d err=%s", rc, err);
    f->sim = sim_from_hv(f->hv);
    assert_non_null(f->sim);
    sim_use_fake_clock(f->sim);
}

static void
fixture_close(struct fixture *f)
{
    hv_close(&f->hv);
    assert_null(f->hv);
    hv_close(&f->hv); /* repeatable */
}

/* The port's sample of VM name; fails the test when it is not running. */
static struct hv_vm
sample_vm(struct fixture *f, const char *name)
{
    struct hv_host host;
    struct hv_vm vms[VMS_MAX];
    size_t n = 0;

    assert_int_equal(f->hv->ops->sample(f->hv->ctx, &host, vms, VMS_MAX, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(vms[i].name, name) == 0)
            return vms[i];
    fail_msg("vm %s not in the sample (%zu VMs)", name, n);
    return vms[0];
}

static struct hv_host
sample_host(struct fixture *f, size_t *n_vms)
{
    struct hv_host host;
    struct hv_vm vms[VMS_MAX];
    size_t n = 0;

    assert_int_equal(f->hv->ops->sample(f->hv->ctx, &host, vms, VMS_MAX, &n), 0);
    if (n_vms)
        *n_vms = n;
    return host;
}

static struct sim_vm_view
view_vm(struct fixture *f, const char *name)
{
    struct sim_vm_view v;

    for (size_t i = 0; i < sim_vm_count(f->sim); i++) {
        sim_vm_view(f->sim, i, &v);
        if (strcmp(v.name, name) == 0)
            return v;
    }
    fail_msg("vm %s not in the scenario", name);
    return v;
}

static int
set_target(struct fixture *f, const char *name, uint64_t target_kib)
{
    struct sim_vm_view v = view_vm(f, name);
    return f->hv->ops->set_target(f->hv->ctx, v.uuid, target_kib);
}

static void
assert_actual_mib(struct fixture *f, const char *name, double want_mib)
{
    struct hv_vm vm = sample_vm(f, name);
    double got_mib = (double)vm.actual_kib / 1024.0;

    if (got_mib < want_mib - 0.01 || got_mib > want_mib + 0.01)
        fail_msg("t=%" PRIu64 " ms vm %s: want actual %.2f MiB, got %.2f MiB", sim_now_ms(f->sim),
                 name, want_mib, got_mib);
}

/* unused of a guest with used U on actual A (cache room permitting): A - 40 - U - U/8. */
static uint64_t
unused_kib(uint64_t actual_mib, uint64_t used_mib)
{
    uint64_t fits = MIB(actual_mib) - MIB(OVERHEAD_MIB + RESERVE_MIB);
    uint64_t cache = MIB(used_mib) / 8;

    if (cache > fits - MIB(used_mib))
        cache = fits - MIB(used_mib);
    return MIB(actual_mib) - MIB(OVERHEAD_MIB) - MIB(used_mib) - cache;
}

/* usable (MemAvailable) of the same guest: unused + cache - watermark, at least 0. */
static uint64_t
usable_kib(uint64_t actual_mib, uint64_t used_mib)
{
    uint64_t unused = unused_kib(actual_mib, used_mib);
    uint64_t cache = MIB(actual_mib) - MIB(OVERHEAD_MIB) - MIB(used_mib) - unused;

    return unused + cache > MIB(WATERMARK_MIB) ? unused + cache - MIB(WATERMARK_MIB) : 0;
}

/* ---- balloon ---- */

static void
test_balloon_moves_at_speed_and_stops(void **state)
{
    struct fixture f;
    (void)state;

    fixture_open(&f, ONE_VM("", "{\"at_s\": 0, \"used_mib\": 300}"));
    assert_actual_mib(&f, "vm", 1024);
    assert_int_equal(set_target(&f, "vm", MIB(1536)), 0);
    sim_advance(f.sim, 1000); /* 256 MiB/s up */
    assert_actual_mib(&f, "vm", 1280);
    sim_advance(f.sim, 500);
    assert_actual_mib(&f, "vm", 1408);
    sim_advance(f.sim, 500);
    assert_actual_mib(&f, "vm", 1536);
    sim_advance(f.sim, 5000); /* stays at its target */
    assert_actual_mib(&f, "vm", 1536);

    assert_int_equal(set_target(&f, "vm", MIB(1000)), 0);
    sim_advance(f.sim, 1000); /* and down */
    assert_actual_mib(&f, "vm", 1280);
    sim_advance(f.sim, 3000);
    assert_actual_mib(&f, "vm", 1000);
    ASSERT_U64(view_vm(&f, "vm").target_kib, MIB(1000));
    ASSERT_U64(view_vm(&f, "vm").targets_set, 2);
    fixture_close(&f);
}

static void
test_balloon_slow_speed_is_exact(void **state)
{
    struct fixture f;
    (void)state;

    /* 0.5 MiB/s = 51.2 KiB per 100 ms step: the remainder is carried, so 10 s moves exactly
     * 5120 KiB. */
    fixture_open(&f, "{\"host\": {\"total_mib\": 8192}, \"vms\": [{\"name\": \"vm\", "
                     "\"max_mib\": 2048, \"initial_mib\": 1024, \"balloon_mib_per_s\": 0.5}]}");
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 10000);
    ASSERT_U64(sample_vm(&f, "vm").actual_kib, MIB(1024) + 5120);
    fixture_close(&f);
}

static void
test_inflate_stops_short_of_a_squeezed_guest(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    (void)state;

    fixture_open(&f, ONE_VM("", "{\"at_s\": 0, \"used_mib\": 800}"));
    /* The guest holds 800 + 40 overhead + 32 reserve = 872 MiB: the balloon stops there. */
    assert_int_equal(set_target(&f, "vm", MIB(256)), 0);
    sim_advance(f.sim, 10000);
    assert_actual_mib(&f, "vm", 872);
    vm = sample_vm(&f, "vm");
    ASSERT_U64(vm.unused_kib, MIB(RESERVE_MIB)); /* the cache was dropped first */
    ASSERT_U64(vm.usable_kib, 0);                /* 32 free, no cache, 64 held back */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(800));
    ASSERT_U64(view_vm(&f, "vm").target_kib, MIB(256)); /* short of target, for good */
    ASSERT_U64(view_vm(&f, "vm").refused_kib, 0);
    fixture_close(&f);
}

static void
test_stuck_balloon_does_not_move(void **state)
{
    struct fixture f;
    (void)state;

    fixture_open(&f, ONE_VM(", \"stuck_after_s\": 2", "{\"at_s\": 0, \"used_mib\": 300}"));
    assert_false(view_vm(&f, "vm").stuck);
    assert_int_equal(set_target(&f, "vm", MIB(1280)), 0);
    sim_advance(f.sim, 1000);
    assert_actual_mib(&f, "vm", 1280); /* moves before it sticks */
    sim_advance(f.sim, 1000);
    assert_true(view_vm(&f, "vm").stuck);
    assert_int_equal(set_target(&f, "vm", MIB(640)), 0); /* accepted, never acted on */
    sim_advance(f.sim, 10000);
    assert_actual_mib(&f, "vm", 1280);
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 10000);
    assert_actual_mib(&f, "vm", 1280);
    fixture_close(&f);
}

static void
test_no_driver_has_no_stats_and_ignores_targets(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    (void)state;

    fixture_open(&f, ONE_VM(", \"driver\": false", "{\"at_s\": 0, \"used_mib\": 300}"));
    sim_advance(f.sim, 30000);
    vm = sample_vm(&f, "vm");
    assert_true(vm.has_balloon);
    assert_false(vm.has_unused);
    assert_false(vm.has_usable);
    ASSERT_U64(vm.stats_age_ms, 0);
    assert_int_equal(set_target(&f, "vm", MIB(512)), 0);
    sim_advance(f.sim, 10000);
    assert_actual_mib(&f, "vm", 1024);
    assert_false(view_vm(&f, "vm").has_driver);
    ASSERT_U64(view_vm(&f, "vm").targets_set, 1);
    fixture_close(&f);
}

static void
test_no_balloon_device(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 8192}, \"vms\": [{\"name\": \"vm\", "
                     "\"max_mib\": 1024, \"balloon\": false}]}");
    vm = sample_vm(&f, "vm");
    assert_false(vm.has_balloon);
    assert_false(vm.has_unused);
    ASSERT_U64(vm.actual_kib, MIB(1024));
    assert_int_equal(set_target(&f, "vm", MIB(512)), -ENOTSUP);
    ASSERT_U64(view_vm(&f, "vm").targets_set, 0);
    fixture_close(&f);
}

static void
test_port_errors(void **state)
{
    struct fixture f;
    (void)state;

    fixture_open(&f, ONE_VM("", ""));
    assert_int_equal(
        f.hv->ops->set_target(f.hv->ctx, "00000000-0000-0000-0000-000000000000", MIB(512)),
        -ENOENT);
    assert_int_equal(set_target(&f, "vm", 0), -EINVAL);
    assert_int_equal(set_target(&f, "vm", MIB(2048) + 1), -EINVAL);
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    assert_int_equal(f.hv->ops->set_stats_period(f.hv->ctx, 0), 0); /* forget: a no-op here */
    assert_int_equal(f.hv->ops->set_stats_period(f.hv->ctx, 2), 0);
    assert_string_equal(f.hv->ops->name, "sim");
    fixture_close(&f);
}

static void
test_sample_enospc(void **state)
{
    struct fixture f;
    struct hv_host host;
    struct hv_vm vms[3];
    size_t n = 0;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 8192}, \"vms\": ["
                     "{\"name\": \"a\", \"max_mib\": 512}, {\"name\": \"b\", \"max_mib\": 512},"
                     "{\"name\": \"c\", \"max_mib\": 512}]}");
    assert_int_equal(f.hv->ops->sample(f.hv->ctx, &host, vms, 2, &n), -ENOSPC);
    ASSERT_U64(n, 3);
    assert_int_equal(f.hv->ops->sample(f.hv->ctx, &host, vms, 0, &n), -ENOSPC);
    ASSERT_U64(n, 3);
    assert_int_equal(f.hv->ops->sample(f.hv->ctx, &host, vms, 3, &n), 0);
    ASSERT_U64(n, 3);
    assert_string_equal(vms[0].name, "a"); /* scenario order */
    assert_string_equal(vms[2].name, "c");
    ASSERT_U64(vms[1].state, SCHED_VM_RUNNING);
    fixture_close(&f);
}

/* ---- stats ---- */

static void
test_stats_lag_by_the_period(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 8192}, \"stats_period_s\": 2, \"vms\": ["
                     "{\"name\": \"vm\", \"max_mib\": 2048, \"initial_mib\": 1024, \"workload\": "
                     "[{\"at_s\": 0, \"used_mib\": 300}, {\"at_s\": 0.5, \"used_mib\": 600}]}]}");
    vm = sample_vm(&f, "vm"); /* published at start */
    assert_true(vm.has_unused);
    ASSERT_U64(vm.unused_kib, unused_kib(1024, 300));
    ASSERT_U64(vm.usable_kib, unused_kib(1024, 300) + MIB(300) / 8 - MIB(WATERMARK_MIB));
    ASSERT_U64(vm.usable_kib, usable_kib(1024, 300));
    ASSERT_U64(vm.stats_age_ms, 0);

    sim_advance(f.sim, 1500); /* the workload changed at 0.5 s; the guest has not said so */
    vm = sample_vm(&f, "vm");
    ASSERT_U64(vm.unused_kib, unused_kib(1024, 300));
    ASSERT_U64(vm.stats_age_ms, 1500);

    sim_advance(f.sim, 500); /* 2 s: published */
    vm = sample_vm(&f, "vm");
    ASSERT_U64(vm.unused_kib, unused_kib(1024, 600));
    ASSERT_U64(vm.stats_age_ms, 0);
    sim_advance(f.sim, 1900);
    ASSERT_U64(sample_vm(&f, "vm").stats_age_ms, 1900);
    sim_advance(f.sim, 100);
    ASSERT_U64(sample_vm(&f, "vm").stats_age_ms, 0);

    /* A new period applies from the last update. */
    assert_int_equal(f.hv->ops->set_stats_period(f.hv->ctx, 5), 0);
    sim_advance(f.sim, 4900);
    ASSERT_U64(sample_vm(&f, "vm").stats_age_ms, 4900);
    sim_advance(f.sim, 100);
    ASSERT_U64(sample_vm(&f, "vm").stats_age_ms, 0);
    fixture_close(&f);
}

static void
test_stats_stamp_changes_only_with_a_new_sample(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    uint64_t stamp;
    (void)state;

    /* Stats from 3 s after start, every 2 s; the workload moves all the time. */
    fixture_open(&f, "{\"host\": {\"total_mib\": 8192}, \"stats_period_s\": 2, \"vms\": ["
                     "{\"name\": \"vm\", \"max_mib\": 2048, \"initial_mib\": 1024, "
                     "\"stats_delay_s\": 3, \"workload\": [{\"at_s\": 0, \"used_mib\": 200},"
                     "{\"at_s\": 0, \"ramp_to_mib\": 800, \"over_s\": 20}]}]}");
    vm = sample_vm(&f, "vm");
    assert_false(vm.has_unused);
    ASSERT_U64(vm.stats_stamp_ms, 0); /* before the first sample */
    sim_advance(f.sim, 3000);
    vm = sample_vm(&f, "vm");
    assert_true(vm.has_unused);
    ASSERT_U64(vm.stats_stamp_ms, 3000);
    stamp = vm.stats_stamp_ms;
    for (int i = 0; i < 19; i++) { /* 3.1 .. 4.9 s: the guest changes, the sample does not */
        sim_advance(f.sim, 100);
        vm = sample_vm(&f, "vm");
        ASSERT_U64(vm.stats_stamp_ms, stamp);
        ASSERT_U64(vm.stats_age_ms, sim_now_ms(f.sim) - stamp);
    }
    sim_advance(f.sim, 100);
    ASSERT_U64(sample_vm(&f, "vm").stats_stamp_ms, 5000);
    /* A new period takes effect from the last sample. */
    assert_int_equal(f.hv->ops->set_stats_period(f.hv->ctx, 1), 0);
    sim_advance(f.sim, 900);
    ASSERT_U64(sample_vm(&f, "vm").stats_stamp_ms, 5000);
    sim_advance(f.sim, 100);
    ASSERT_U64(sample_vm(&f, "vm").stats_stamp_ms, 6000);
    fixture_close(&f);

    /* Without a driver there is never a sample, so never a stamp. */
    fixture_open(&f, ONE_VM(", \"driver\": false", "{\"at_s\": 0, \"used_mib\": 300}"));
    sim_advance(f.sim, 10000);
    ASSERT_U64(sample_vm(&f, "vm").stats_stamp_ms, 0);
    fixture_close(&f);
}

static void
test_stats_delay(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    (void)state;

    fixture_open(&f, ONE_VM(", \"stats_delay_s\": 18", "{\"at_s\": 0, \"used_mib\": 300}"));
    sim_advance(f.sim, 17900);
    vm = sample_vm(&f, "vm");
    assert_false(vm.has_unused);
    ASSERT_U64(vm.actual_kib, MIB(1024)); /* actual is known before the driver loads */
    sim_advance(f.sim, 100);
    vm = sample_vm(&f, "vm");
    assert_true(vm.has_unused);
    ASSERT_U64(vm.stats_age_ms, 0);
    ASSERT_U64(vm.unused_kib, unused_kib(1024, 300));
    fixture_close(&f);
}

static void
test_stats_period_zero_until_set(void **state)
{
    struct fixture f;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 8192}, \"stats_period_s\": 0, \"vms\": ["
                     "{\"name\": \"vm\", \"max_mib\": 1024}]}");
    sim_advance(f.sim, 10000);
    assert_false(sample_vm(&f, "vm").has_unused);
    assert_int_equal(f.hv->ops->set_stats_period(f.hv->ctx, 1), 0);
    sim_advance(f.sim, 100);
    assert_true(sample_vm(&f, "vm").has_unused);
    fixture_close(&f);
}

/* ---- workload ---- */

static void
test_hog_grows_until_refused_holds_and_frees(void **state)
{
    struct fixture f;
    struct sim_vm_view v;
    (void)state;

    /* max = initial = 1024: fits = 1024 - 72 = 952. The hog starts at 1 s from 200 MiB at
     * 100 MiB/s, so it hits the wall at 8.52 s, holds 5 s and frees at ~13.6 s. */
    fixture_open(&f, VM_JSON("\"max_mib\": 1024", "",
                             "{\"at_s\": 0, \"used_mib\": 200},"
                             "{\"at_s\": 1, \"hog_mib_per_s\": 100, \"hold_s\": 5}"));
    sim_advance(f.sim, 3000);
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(400));
    ASSERT_U64(v.wanted_kib, MIB(400));
    ASSERT_U64(v.refused_kib, 0);
    sim_advance(f.sim, 5500); /* 8.5 s */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(950));
    ASSERT_U64(view_vm(&f, "vm").refused_kib, 0);
    sim_advance(f.sim, 100); /* 8.6 s: wants 960 > 952: refused */
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(952));
    ASSERT_U64(v.wanted_kib, MIB(952));
    ASSERT_U64(v.refused_kib, MIB(8));
    ASSERT_U64(v.starved_ms, 100); /* refused in one step; holding is not starving */
    ASSERT_U64(v.actual_kib, MIB(1024));
    sim_advance(f.sim, 4900); /* 13.5 s: holding */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(952));
    ASSERT_U64(sample_vm(&f, "vm").unused_kib, MIB(RESERVE_MIB));
    sim_advance(f.sim, 100); /* 13.6 s: freed back to where it started */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(200));
    sim_advance(f.sim, 20000);
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(200));
    ASSERT_U64(v.refused_kib, MIB(8));
    fixture_close(&f);
}

static void
test_hog_fed_by_balloon_is_not_refused(void **state)
{
    struct fixture f;
    (void)state;

    /* A hog that the balloon outgrows: 50 MiB/s up to 1500 MiB with the VM grown to max. */
    fixture_open(&f, ONE_VM("", "{\"at_s\": 0, \"used_mib\": 300},"
                                "{\"at_s\": 1, \"hog_mib_per_s\": 50, \"limit_mib\": 1500}"));
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 60000);
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(1500)); /* held forever without hold_s */
    ASSERT_U64(view_vm(&f, "vm").refused_kib, 0);
    fixture_close(&f);
}

static void
test_ramp(void **state)
{
    struct fixture f;
    (void)state;

    fixture_open(&f, ONE_VM("", "{\"at_s\": 0, \"used_mib\": 200},"
                                "{\"at_s\": 2, \"ramp_to_mib\": 800, \"over_s\": 10},"
                                "{\"at_s\": 20, \"ramp_to_mib\": 100, \"over_s\": 7}"));
    sim_advance(f.sim, 2000);
    ASSERT_U64(view_vm(&f, "vm").wanted_kib, MIB(200));
    sim_advance(f.sim, 5000); /* half way */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(500));
    sim_advance(f.sim, 5000);
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(800));
    sim_advance(f.sim, 5000);
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(800));
    sim_advance(f.sim, 3000 + 3500); /* down, half way */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(450));
    sim_advance(f.sim, 10000);
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(100));
    fixture_close(&f);
}

static void
test_step_above_fits_is_refused_and_catches_up(void **state)
{
    struct fixture f;
    (void)state;

    /* Wants 1200 on 1024 (fits 952): short by 248 until the balloon grows. */
    fixture_open(&f, ONE_VM("", "{\"at_s\": 0, \"used_mib\": 1200}"));
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(952));
    ASSERT_U64(view_vm(&f, "vm").refused_kib, MIB(248));
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 5000);
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(1200));
    ASSERT_U64(view_vm(&f, "vm").refused_kib, MIB(248));
    /* Short until fits >= 1200, i.e. actual >= 1272: the steps 0.1 .. 0.9 s. */
    ASSERT_U64(view_vm(&f, "vm").starved_ms, 900);
    fixture_close(&f);
}

/* ---- lifecycle, host, counters ---- */

static void
test_lifecycle_start_stop(void **state)
{
    struct fixture f;
    struct hv_host host;
    size_t n = 0;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 8192, \"reserved_mib\": 1024}, \"vms\": ["
                     "{\"name\": \"always\", \"max_mib\": 1024},"
                     "{\"name\": \"late\", \"max_mib\": 2048, \"initial_mib\": 1536, "
                     "\"start_s\": 5, \"stop_s\": 10, \"stats_delay_s\": 1}]}");
    host = sample_host(&f, &n);
    ASSERT_U64(n, 1);
    ASSERT_U64(host.available_kib, MIB(8192 - 1024 - 1024 - QEMU_MIB));
    assert_false(view_vm(&f, "late").running);
    assert_int_equal(set_target(&f, "late", MIB(1024)), -ENOENT);

    sim_advance(f.sim, 5000);
    host = sample_host(&f, &n);
    ASSERT_U64(n, 2);
    ASSERT_U64(host.available_kib, MIB(8192 - 1024 - 1024 - 1536 - 2 * QEMU_MIB));
    assert_true(view_vm(&f, "late").running);
    assert_false(sample_vm(&f, "late").has_unused); /* its stats delay counts from its start */
    sim_advance(f.sim, 1000);
    assert_true(sample_vm(&f, "late").has_unused);
    assert_int_equal(set_target(&f, "late", MIB(1024)), 0);

    sim_advance(f.sim, 4000);
    host = sample_host(&f, &n);
    ASSERT_U64(n, 1);
    ASSERT_U64(host.available_kib, MIB(8192 - 1024 - 1024 - QEMU_MIB));
    assert_false(view_vm(&f, "late").running);
    assert_int_equal(set_target(&f, "late", MIB(1024)), -ENOENT);
    fixture_close(&f);
}

static void
test_host_available_follows_touched(void **state)
{
    struct fixture f;
    struct sim_host_view hv;
    (void)state;

    /* Both start with their initial memory touched; each QEMU costs 32 MiB more. Growing a to
     * 2048 costs the host nothing while its guest (no workload) does not touch the pages;
     * shrinking b to 1024 returns 1024 at once. */
    fixture_open(&f, "{\"host\": {\"total_mib\": 8192, \"reserved_mib\": 1024}, \"vms\": ["
                     "{\"name\": \"a\", \"max_mib\": 2048, \"initial_mib\": 1024},"
                     "{\"name\": \"b\", \"max_mib\": 2048}]}");
    ASSERT_U64(sample_host(&f, NULL).total_kib, MIB(8192));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1024 - 2048 - 2 * QEMU_MIB));
    assert_int_equal(set_target(&f, "a", MIB(2048)), 0);
    assert_int_equal(set_target(&f, "b", MIB(1024)), 0);
    sim_advance(f.sim, 1000);
    assert_actual_mib(&f, "a", 1280);
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1024 - 1792 - 2 * QEMU_MIB));
    sim_advance(f.sim, 10000);
    assert_actual_mib(&f, "a", 2048);
    ASSERT_U64(view_vm(&f, "a").touched_kib, MIB(1024));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1024 - 1024 - 2 * QEMU_MIB));
    sim_host_view(f.sim, &hv);
    ASSERT_U64(hv.total_kib, MIB(8192));
    ASSERT_U64(hv.available_kib, MIB(8192 - 1024 - 1024 - 1024 - 2 * QEMU_MIB));
    fixture_close(&f);
}

static void
test_touched_grows_only_when_the_workload_touches(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    struct sim_vm_view v;
    /* The guest's footprint at used 1300: 40 kernel + 1300 + 1300/8 cache = 1502.5 MiB. */
    const uint64_t footprint_kib = MIB(40 + 1300) + MIB(1300) / 8;
    (void)state;

    fixture_open(&f, ONE_VM("", "{\"at_s\": 0, \"used_mib\": 300},"
                                "{\"at_s\": 5, \"ramp_to_mib\": 1300, \"over_s\": 10},"
                                "{\"at_s\": 20, \"used_mib\": 300}"));
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(1024)); /* all of initial, by default */
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1024 - QEMU_MIB));
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 5000);
    assert_actual_mib(&f, "vm", 2048);
    /* The balloon gave the guest 1024 MiB; nothing touched them, the host still has them. */
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(1024));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1024 - QEMU_MIB));
    sim_advance(f.sim, 5000); /* half way up the ramp: 40 + 800 + 100 = 940 < 1024 touched */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(800));
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(1024));
    sim_advance(f.sim, 5000); /* used 1300: now it touches pages it never had before */
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(1300));
    ASSERT_U64(v.touched_kib, footprint_kib);
    ASSERT_U64(v.rss_kib, footprint_kib + MIB(QEMU_MIB));
    vm = sample_vm(&f, "vm");
    assert_true(vm.has_rss);
    ASSERT_U64(vm.rss_kib, footprint_kib + MIB(QEMU_MIB));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - QEMU_MIB) - footprint_kib);
    sim_advance(f.sim, 6000); /* freed back to 300: the pages stay backed */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(300));
    ASSERT_U64(view_vm(&f, "vm").touched_kib, footprint_kib);
    fixture_close(&f);

    /* touched_mib starts it lower: only what the guest uses is backed (40 + 300 + 37.5). */
    fixture_open(&f, ONE_VM(", \"touched_mib\": 0", "{\"at_s\": 0, \"used_mib\": 300}"));
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(340) + MIB(300) / 8);
    ASSERT_U64(sample_vm(&f, "vm").rss_kib, MIB(340 + QEMU_MIB) + MIB(300) / 8);
    fixture_close(&f);
}

static void
test_balloon_inflating_lowers_touched(void **state)
{
    struct fixture f;
    (void)state;

    /* 2048 MiB of which 1536 are backed; the guest uses 377.5. */
    fixture_open(&f, VM_JSON("\"max_mib\": 2048", ", \"touched_mib\": 1536",
                             "{\"at_s\": 0, \"used_mib\": 300}"));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1536 - QEMU_MIB));
    /* Inflating by 256 takes untouched pages: the host gains nothing. */
    assert_int_equal(set_target(&f, "vm", MIB(1792)), 0);
    sim_advance(f.sim, 1000);
    assert_actual_mib(&f, "vm", 1792);
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(1536));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1536 - QEMU_MIB));
    /* Below what is backed, every page it takes goes back to the host. */
    assert_int_equal(set_target(&f, "vm", MIB(1024)), 0);
    sim_advance(f.sim, 3000);
    assert_actual_mib(&f, "vm", 1024);
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(1024));
    ASSERT_U64(sample_vm(&f, "vm").rss_kib, MIB(1024 + QEMU_MIB));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1024 - QEMU_MIB));
    /* Deflating again: untouched until used. */
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 5000);
    assert_actual_mib(&f, "vm", 2048);
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(1024));
    fixture_close(&f);

    /* A guest that writes the pages it gets back (touch_on_deflate) costs the host at once. */
    fixture_open(&f, ONE_VM(", \"touch_on_deflate\": true", "{\"at_s\": 0, \"used_mib\": 300}"));
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 1000);
    assert_actual_mib(&f, "vm", 1280);
    ASSERT_U64(view_vm(&f, "vm").touched_kib, MIB(1280));
    ASSERT_U64(sample_host(&f, NULL).available_kib, MIB(8192 - 1024 - 1280 - QEMU_MIB));
    fixture_close(&f);
}

static void
test_rss_reported_for_every_running_vm(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 8192, \"reserved_mib\": 1024}, \"vms\": ["
                     "{\"name\": \"a\", \"max_mib\": 2048, \"initial_mib\": 1024, "
                     "\"touched_mib\": 512, \"qemu_overhead_mib\": 100},"
                     "{\"name\": \"b\", \"max_mib\": 2048, \"initial_mib\": 1024, "
                     "\"driver\": false},"
                     "{\"name\": \"c\", \"max_mib\": 512, \"balloon\": false},"
                     "{\"name\": \"d\", \"max_mib\": 512, \"start_s\": 10}]}");
    vm = sample_vm(&f, "a");
    assert_true(vm.has_rss);
    ASSERT_U64(vm.rss_kib, MIB(512 + 100));
    ASSERT_U64(view_vm(&f, "a").rss_kib, MIB(512 + 100));
    vm = sample_vm(&f, "b"); /* no stats, but QEMU's RSS is the host's to read */
    assert_false(vm.has_unused);
    assert_true(vm.has_rss);
    ASSERT_U64(vm.rss_kib, MIB(1024 + QEMU_MIB));
    vm = sample_vm(&f, "c");
    assert_true(vm.has_rss);
    ASSERT_U64(vm.rss_kib, MIB(512 + QEMU_MIB));
    ASSERT_U64(view_vm(&f, "d").rss_kib, 0); /* not running yet */
    ASSERT_U64(sample_host(&f, NULL).available_kib,
               MIB(8192 - 1024 - 612 - 1024 - 512 - 2 * QEMU_MIB));
    fixture_close(&f);
}

/* ---- page cache that fills free memory ---- */

static void
test_fill_cache_keeps_memfree_low_and_gives_way(void **state)
{
    struct fixture f;
    struct hv_vm vm;
    struct sim_vm_view v;
    (void)state;

    /* 1024 MiB, 200 used: the cache takes all but 20 MiB of the rest, 1024 - 40 - 200 - 20 =
     * 764; MemAvailable = 20 + 764 - 64 = 720. Filling, it touches the pages it takes. */
    fixture_open(&f, ONE_VM(", \"page_cache\": \"fill\", \"touched_mib\": 0",
                            "{\"at_s\": 0, \"used_mib\": 200},"
                            "{\"at_s\": 5, \"used_mib\": 800},"
                            "{\"at_s\": 10, \"hog_mib_per_s\": 100, \"limit_mib\": 1900}"));
    v = view_vm(&f, "vm");
    ASSERT_U64(v.cache_kib, MIB(764));
    ASSERT_U64(v.unused_kib, MIB(FILL_FREE_MIB));
    ASSERT_U64(v.usable_kib, MIB(720));
    ASSERT_U64(v.touched_kib, MIB(1024 - FILL_FREE_MIB));
    vm = sample_vm(&f, "vm");
    ASSERT_U64(vm.unused_kib, MIB(FILL_FREE_MIB));
    ASSERT_U64(vm.usable_kib, MIB(720));

    /* The workload takes 600 more at once: the cache gives way, nothing is refused. */
    sim_advance(f.sim, 5000);
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(800));
    ASSERT_U64(v.cache_kib, MIB(1024 - 40 - 800 - FILL_FREE_MIB));
    ASSERT_U64(v.unused_kib, MIB(FILL_FREE_MIB));
    ASSERT_U64(v.usable_kib, MIB(20 + 164 - WATERMARK_MIB));
    ASSERT_U64(v.refused_kib, 0);
    ASSERT_U64(v.starved_ms, 0);

    /* Grown, the guest fills the new memory with cache: the host pays for it at once. */
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 5000);
    assert_actual_mib(&f, "vm", 2048);
    v = view_vm(&f, "vm");
    ASSERT_U64(v.cache_kib, MIB(2048 - 40 - 800 - FILL_FREE_MIB));
    ASSERT_U64(v.touched_kib, MIB(2048 - FILL_FREE_MIB));
    ASSERT_U64(sample_host(&f, NULL).available_kib,
               MIB(8192 - 1024 - (2048 - FILL_FREE_MIB) - QEMU_MIB));

    /* A hog from 800 at 100 MiB/s eats into the cache, never refused: at 15 s it holds 1300. */
    sim_advance(f.sim, 5000);
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(1300));
    ASSERT_U64(v.cache_kib, MIB(2048 - 40 - 1300 - FILL_FREE_MIB));
    ASSERT_U64(v.unused_kib, MIB(FILL_FREE_MIB));
    sim_advance(f.sim, 10000); /* at its limit, 1900: fits is 2048 - 72 = 1976 */
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(1900));
    ASSERT_U64(v.cache_kib, MIB(2048 - 40 - 1900 - FILL_FREE_MIB));
    ASSERT_U64(v.refused_kib, 0);
    ASSERT_U64(v.starved_ms, 0);

    /* Inflating drops cache first and returns backed pages to the host. */
    assert_int_equal(set_target(&f, "vm", MIB(1024)), 0);
    sim_advance(f.sim, 10000);
    assert_actual_mib(&f, "vm", 1900 + 72); /* squeezed: used + kernel + reserve */
    v = view_vm(&f, "vm");
    ASSERT_U64(v.cache_kib, MIB(RESERVE_MIB - FILL_FREE_MIB));
    ASSERT_U64(v.touched_kib, MIB(1900 + 72));
    fixture_close(&f);
}

/* ---- outcome counters ---- */

static void
test_waiting_hog_starves_until_grown(void **state)
{
    struct fixture f;
    struct sim_vm_view v;
    (void)state;

    /* fits = 1024 - 72 = 952. From 200 at 100 MiB/s from 1 s it wants 960 at 8.6 s: refused
     * (8 MiB), and it waits, asking 10 MiB more every 100 ms step, until the balloon grows. */
    fixture_open(&f, ONE_VM("", "{\"at_s\": 0, \"used_mib\": 200},"
                                "{\"at_s\": 1, \"hog_mib_per_s\": 100, \"limit_mib\": 1500, "
                                "\"wait\": true}"));
    sim_advance(f.sim, 8500);
    ASSERT_U64(view_vm(&f, "vm").starved_ms, 0);
    sim_advance(f.sim, 2000); /* 8.6 .. 10.5 s: 20 steps starved */
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(952));
    ASSERT_U64(v.starved_ms, 2000);
    ASSERT_U64(v.refused_kib, MIB(8 + 19 * 10));
    /* Grown at 256 MiB/s, faster than it eats: it goes on at its own rate to its limit. */
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 5000); /* 15.5 s: 952 + 5 x 100 */
    ASSERT_U64(view_vm(&f, "vm").used_kib, MIB(1452));
    sim_advance(f.sim, 5000);
    v = view_vm(&f, "vm");
    ASSERT_U64(v.used_kib, MIB(1500)); /* held forever without hold_s */
    ASSERT_U64(v.starved_ms, 2000);
    ASSERT_U64(v.refused_kib, MIB(198));
    fixture_close(&f);
}

static void
test_host_worst_below_min(void **state)
{
    struct fixture f;
    struct sim_host_view hv;
    (void)state;

    /* 4096 - 1024 reserved - (1024 + 32) = 2016 available, floor 1200. Grown to 2048 in 1 s
     * (not touched), then the workload fills it at 2 s: footprint 40 + 1900 + 76 cache = 2016,
     * available 4096 - 1024 - 2016 - 32 = 1024, 176 below the floor. Freed at 4 s and shrunk
     * back: above the floor again once actual <= 1840, at 4.3 s (steps 2.0 .. 4.2 below). */
    fixture_open(&f, "{\"host\": {\"total_mib\": 4096, \"reserved_mib\": 1024}, "
                     "\"host_min_unused_mib\": 1200, \"vms\": [{\"name\": \"vm\", "
                     "\"max_mib\": 2048, \"initial_mib\": 1024, \"balloon_mib_per_s\": 1024, "
                     "\"workload\": ["
                     "{\"at_s\": 0, \"used_mib\": 300}, {\"at_s\": 2, \"used_mib\": 1900},"
                     "{\"at_s\": 4, \"used_mib\": 300}]}]}");
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 1900);
    sim_host_view(f.sim, &hv);
    ASSERT_U64(hv.available_kib, MIB(2016));
    ASSERT_U64(hv.below_min_ms, 0);
    ASSERT_U64(hv.worst_below_min_kib, 0);
    sim_advance(f.sim, 2100);
    sim_host_view(f.sim, &hv);
    ASSERT_U64(hv.available_kib, MIB(1024));
    ASSERT_U64(hv.worst_below_min_kib, MIB(176));
    assert_int_equal(set_target(&f, "vm", MIB(1024)), 0);
    sim_advance(f.sim, 5000);
    sim_host_view(f.sim, &hv);
    ASSERT_U64(hv.available_kib, MIB(2016));
    ASSERT_U64(hv.below_min_ms, 2300);
    ASSERT_U64(hv.worst_below_min_kib, MIB(176));
    fixture_close(&f);
}

static void
test_overcommitted_host_has_nothing_available(void **state)
{
    struct fixture f;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 2048, \"reserved_mib\": 1024}, \"vms\": ["
                     "{\"name\": \"a\", \"max_mib\": 2048}]}");
    ASSERT_U64(sample_host(&f, NULL).available_kib, 0);
    fixture_close(&f);
}

static void
test_below_min_accounting(void **state)
{
    struct fixture f;
    struct sim_host_view hv;
    (void)state;

    /* used 800 on 1024: unused = 1024 - 40 - 800 - 100 = 84 < 100. Host: 4096 - 1024 - 1024
     * = 2048 available, under a host threshold of 3000. */
    fixture_open(&f, "{\"host\": {\"total_mib\": 4096, \"reserved_mib\": 1024}, "
                     "\"host_min_unused_mib\": 3000, \"vms\": [{\"name\": \"vm\", "
                     "\"max_mib\": 2048, \"initial_mib\": 1024, "
                     "\"workload\": [{\"at_s\": 0, \"used_mib\": 800}]}]}");
    ASSERT_U64(sample_vm(&f, "vm").unused_kib, MIB(84));
    sim_advance(f.sim, 5000);
    ASSERT_U64(view_vm(&f, "vm").below_min_ms, 5000);
    /* Growing by 16 MiB is enough, and the balloon does that within the first step. */
    assert_int_equal(set_target(&f, "vm", MIB(2048)), 0);
    sim_advance(f.sim, 5000);
    ASSERT_U64(view_vm(&f, "vm").below_min_ms, 5000);
    sim_host_view(f.sim, &hv);
    ASSERT_U64(hv.below_min_ms, 10000);
    fixture_close(&f);

    /* The thresholds are the scenario's: 50 MiB makes the same guest fine. */
    fixture_open(&f, "{\"host\": {\"total_mib\": 4096}, \"vm_min_unused_mib\": 50, \"vms\": ["
                     "{\"name\": \"vm\", \"max_mib\": 2048, \"initial_mib\": 1024, "
                     "\"workload\": [{\"at_s\": 0, \"used_mib\": 800}]}]}");
    sim_advance(f.sim, 5000);
    ASSERT_U64(view_vm(&f, "vm").below_min_ms, 0);
    sim_host_view(f.sim, &hv);
    ASSERT_U64(hv.below_min_ms, 0);
    fixture_close(&f);
}

static void
test_overrides_and_uuids(void **state)
{
    struct fixture f;
    struct fixture g;
    struct hv_vm vm;
    (void)state;

    fixture_open(&f, "{\"host\": {\"total_mib\": 8192}, \"vms\": ["
                     "{\"name\": \"a\", \"max_mib\": 2048, \"managed\": false, \"min_mib\": 512,"
                     " \"cap_mib\": 1536, \"weight\": 300},"
                     "{\"name\": \"b\", \"max_mib\": 2048, "
                     "\"uuid\": \"0B7E5C4E-2F6A-4C1D-9D1E-6A3C2B1F0E9D\"}]}");
    vm = sample_vm(&f, "a");
    assert_false(vm.managed);
    ASSERT_U64(vm.min_kib, MIB(512));
    ASSERT_U64(vm.cap_kib, MIB(1536));
    ASSERT_U64(vm.weight, 300);
    ASSERT_U64(strlen(vm.uuid), HV_UUID_LEN - 1);
    assert_int_equal(vm.uuid[8], '-');
    assert_int_equal(vm.uuid[14], '8'); /* version 8: derived */
    vm = sample_vm(&f, "b");
    assert_true(vm.managed);
    ASSERT_U64(vm.weight, 0);
    assert_string_equal(vm.uuid, "0B7E5C4E-2F6A-4C1D-9D1E-6A3C2B1F0E9D");
    /* UUIDs match without regard to case, as libvirt's do. */
    assert_int_equal(
        f.hv->ops->set_target(f.hv->ctx, "0b7e5c4e-2f6a-4c1d-9d1e-6a3c2b1f0e9d", MIB(1024)), 0);

    /* Derived UUIDs are stable across opens and differ between names. */
    fixture_open(&g,
                 "{\"host\": {\"total_mib\": 8192}, \"vms\": ["
                 "{\"name\": \"a\", \"max_mib\": 1024}, {\"name\": \"c\", \"max_mib\": 1024}]}");
    assert_string_equal(view_vm(&g, "a").uuid, view_vm(&f, "a").uuid);
    assert_string_not_equal(view_vm(&g, "a").uuid, view_vm(&g, "c").uuid);
    fixture_close(&g);
    fixture_close(&f);
}

/* ---- time ---- */

static void
test_real_time_mode(void **state)
{
    char path[512];
    char err[HV_ERR_MAX] = "";
    struct hv *hv = NULL;
    struct sim *sim;
    struct timespec nap = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    uint64_t now_ms;
    (void)state;

    /* Only lower bounds: 20 ms of sleep at speed 1000 is at least 20 s of sim time. */
    snprintf(path, sizeof(path), "sim:%s/contract.json?speed=1000", SCENARIO_DIR);
    assert_int_equal(hv_open(path, &hv, err, sizeof(err)), 0);
    sim = sim_from_hv(hv);
    nanosleep(&nap, NULL);
    now_ms = sim_now_ms(sim);
    if (now_ms < 20000)
        fail_msg("want sim time >= 20000 ms after 20 ms at speed 1000, got %" PRIu64, now_ms);
    hv_close(&hv);
}

static void
test_sim_from_other_backend_is_null(void **state)
{
    static const struct hv_ops other = {.name = "other"};
    struct hv hv = {.ops = &other, .ctx = NULL};
    (void)state;

    assert_null(sim_from_hv(&hv));
    assert_null(sim_from_hv(NULL));
}

/* Run a scenario with a simple deterministic controller and return a digest of every view. */
static uint64_t
run_digest(const char *file)
{
    char err[HV_ERR_MAX] = "";
    struct hv *hv = NULL;
    struct sim *sim;
    uint64_t digest = 1469598103934665603u;

    assert_int_equal(hv_sim_open(file, &hv, err, sizeof(err)), 0);
    sim = sim_from_hv(hv);
    sim_use_fake_clock(sim);
    for (int round = 0; round < 120; round++) {
        struct hv_host host;
        struct hv_vm vms[VMS_MAX];
        size_t n = 0;

        assert_int_equal(hv->ops->sample(hv->ctx, &host, vms, VMS_MAX, &n), 0);
        for (size_t i = 0; i < n; i++) {
            /* Grow the needy by 128 MiB, shrink the rich by 64 MiB. */
            if (!vms[i].has_balloon || !vms[i].has_unused)
                continue;
            if (vms[i].unused_kib < MIB(100) && vms[i].actual_kib + MIB(128) <= vms[i].max_kib)
                hv->ops->set_target(hv->ctx, vms[i].uuid, vms[i].actual_kib + MIB(128));
            else if (vms[i].unused_kib > MIB(300))
                hv->ops->set_target(hv->ctx, vms[i].uuid, vms[i].actual_kib - MIB(64));
        }
        sim_advance(sim, 1000);
        for (size_t i = 0; i < sim_vm_count(sim); i++) {
            struct sim_vm_view v;
            uint64_t fields[9];

            sim_vm_view(sim, i, &v);
            fields[0] = v.actual_kib;
            fields[1] = v.used_kib;
            fields[2] = v.wanted_kib;
            fields[3] = v.refused_kib;
            fields[4] = v.below_min_ms;
            fields[5] = v.targets_set;
            fields[6] = v.touched_kib;
            fields[7] = v.starved_ms;
            fields[8] = v.usable_kib;
            for (size_t k = 0; k < ARRAY_SIZE(fields); k++)
                digest = (digest ^ fields[k]) * 1099511628211u;
        }
        digest = (digest ^ host.available_kib) * 1099511628211u;
    }
    hv_close(&hv);
    return digest;
}

static void
test_deterministic(void **state)
{
    char file[512];
    uint64_t first;
    uint64_t second;
    (void)state;

    snprintf(file, sizeof(file), "%s/demo.json", SCENARIO_DIR);
    first = run_digest(file);
    second = run_digest(file);
    if (first != second)
        fail_msg("same scenario and calls gave different runs: %" PRIx64 " vs %" PRIx64, first,
                 second);
    snprintf(file, sizeof(file), "%s/all_hog.json", SCENARIO_DIR);
    ASSERT_U64(run_digest(file), run_digest(file));
}

/* ---- scenario validation ---- */

static void
expect_rejected(const char *json, const char *const *needles)
{
    char err[HV_ERR_MAX] = "";
    static struct hv dummy;
    struct hv *hv = &dummy; /* must be set to NULL on failure */
    int rc = sim_open_json(json, "bad.json", &hv, err, sizeof(err));

    if (rc != -EINVAL)
        fail_msg("want -EINVAL, got %d for %s", rc, json);
    assert_null(hv);
    if (!strstr(err, "bad.json"))
        fail_msg("error does not name the file: %s", err);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err, needles[i]))
            fail_msg("error does not mention \"%s\": %s", needles[i], err);
}

#define REJECT(json, ...)                                                                          \
    do {                                                                                           \
        const char *const needles_[] = {__VA_ARGS__, NULL};                                        \
        expect_rejected(json, needles_);                                                           \
    } while (0)

static void
test_bad_scenarios_rejected(void **state)
{
    (void)state;

    REJECT("{\"host\": {\"total_mib\": 8192}, \"vms\": [], \"frobnicate\": 1}", "frobnicate",
           "unknown key");
    REJECT(ONE_VM(", \"frobnicate\": true", ""), "vm \"vm\"", "frobnicate", "unknown key");
    REJECT("{\"host\": {\"total_mib\": 8192, \"swap_mib\": 1}, \"vms\": []}", "host", "swap_mib");
    REJECT(ONE_VM("", "{\"at_s\": 0, \"used_mib\": 10, \"speed\": 1}"), "workload[0]", "speed");
    REJECT("{\"host\": {\"total_mib\": 8192}, \"vms\": [{\"name\": \"web\"}]}", "vm \"web\"",
           "max_mib", "required");
    REJECT("{\"vms\": []}", "host", "required");
    REJECT("{\"host\": {\"total_mib\": 8192}}", "vms", "required");
    REJECT("{\"host\": {\"total_mib\": 8192}, \"vms\": [{\"max_mib\": 1024}]}", "vms[0]", "name");
    REJECT(VM_JSON("\"max_mib\": 2048, \"initial_mib\": 4096", "", ""), "vm \"vm\"", "initial_mib",
           "range");
    REJECT(VM_JSON("\"max_mib\": 64", "", ""), "max_mib", "range");
    REJECT(ONE_VM(", \"weight\": 5000", ""), "weight");
    REJECT(VM_JSON("\"max_mib\": 2048", ", \"balloon_mib_per_s\": 0", ""), "balloon_mib_per_s",
           "range");
    REJECT(VM_JSON("\"max_mib\": 2048", ", \"balloon_mib_per_s\": \"fast\"", ""),
           "balloon_mib_per_s", "number");
    REJECT(ONE_VM(", \"balloon\": false", ""), "initial_mib", "max_mib");
    REJECT(VM_JSON("\"max_mib\": 2048", ", \"balloon\": false, \"driver\": true", ""), "driver");
    REJECT(ONE_VM(", \"start_s\": 10, \"stop_s\": 5", ""), "stop_s");
    REJECT(ONE_VM(", \"min_mib\": 1024, \"cap_mib\": 512", ""), "min_mib", "cap_mib");
    REJECT(ONE_VM(", \"uuid\": \"not-a-uuid\"", ""), "uuid");
    REJECT(VM_JSON("\"max_mib\": 1024.5", "", ""), "max_mib", "integer");
    REJECT(ONE_VM("", "{\"at_s\": 5, \"used_mib\": 10}, {\"at_s\": 1, \"used_mib\": 20}"),
           "workload[1]", "at_s", "order");
    REJECT(ONE_VM("", "{\"at_s\": 0}"), "workload[0]", "exactly one");
    REJECT(ONE_VM("", "{\"at_s\": 0, \"used_mib\": 10, \"hog_mib_per_s\": 5}"), "exactly one");
    REJECT(ONE_VM("", "{\"at_s\": 0, \"ramp_to_mib\": 10}"), "over_s", "required");
    REJECT(ONE_VM("", "{\"at_s\": 0, \"used_mib\": 10, \"hold_s\": 5}"), "hold_s");
    REJECT(ONE_VM("", "{\"at_s\": 0, \"used_mib\": 4096}"), "used_mib", "range");
    REJECT(ONE_VM("", "{\"used_mib\": 10}"), "at_s", "required");
    REJECT(ONE_VM("", "{\"at_s\": 0, \"used_mib\": 10, \"wait\": true}"), "wait", "hog_mib_per_s");
    REJECT(ONE_VM("", "{\"at_s\": 0, \"hog_mib_per_s\": 10, \"wait\": 1}"), "wait",
           "true or false");
    REJECT(ONE_VM(", \"page_cache\": \"huge\"", ""), "vm \"vm\"", "page_cache", "fill");
    REJECT(ONE_VM(", \"page_cache\": true", ""), "page_cache");
    REJECT(ONE_VM(", \"touched_mib\": 1025", ""), "touched_mib", "range"); /* > initial */
    REJECT(ONE_VM(", \"touched_mib\": -1", ""), "touched_mib", "range");
    REJECT(ONE_VM(", \"qemu_overhead_mib\": 100000", ""), "qemu_overhead_mib", "range");
    REJECT(ONE_VM(", \"qemu_overhead_mib\": 1.5", ""), "qemu_overhead_mib", "integer");
    REJECT(ONE_VM(", \"touch_on_deflate\": \"yes\"", ""), "touch_on_deflate");
    REJECT("{\"host\": {\"total_mib\": 8192}, \"vms\": [{\"name\": \"x\", \"max_mib\": 512},"
           "{\"name\": \"x\", \"max_mib\": 512}]}",
           "vm \"x\"", "duplicate");
    REJECT("{\"host\": {\"total_mib\": 8192}, \"stats_period_s\": -1, \"vms\": []}",
           "stats_period_s");
    REJECT("{\"host\": {\"total_mib\": 8192, \"reserved_mib\": 8192}, \"vms\": []}",
           "reserved_mib");
    REJECT("{\"host\": {\"total_mib\": 8192}, \"vms\": [], \"description\": 7}", "description");
    REJECT("[1, 2]", "object");
    /* Malformed JSON: jansson's message with the position. */
    REJECT("{\"host\": {\"total_mib\": 8192,}, \"vms\": []}", "malformed JSON", "bad.json:1:");
    REJECT("{\"host\": {\"total_mib\": 1}, \"host\": {\"total_mib\": 2}, \"vms\": []}",
           "malformed JSON", "duplicate");
}

static void
test_open_errors(void **state)
{
    char err[HV_ERR_MAX] = "";
    char path[512];
    struct hv *hv = NULL;
    (void)state;

    assert_int_equal(hv_sim_open("/nonexistent/scenario.json", &hv, err, sizeof(err)), -ENOENT);
    assert_null(hv);
    assert_non_null(strstr(err, "/nonexistent/scenario.json"));
    snprintf(path, sizeof(path), "%s/contract.json?speed=0", SCENARIO_DIR);
    assert_int_equal(hv_sim_open(path, &hv, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "speed"));
    snprintf(path, sizeof(path), "%s/contract.json?speed=fast", SCENARIO_DIR);
    assert_int_equal(hv_sim_open(path, &hv, err, sizeof(err)), -EINVAL);
    snprintf(path, sizeof(path), "%s/contract.json?colour=blue", SCENARIO_DIR);
    assert_int_equal(hv_sim_open(path, &hv, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "colour"));
    assert_int_equal(hv_sim_open("", &hv, err, sizeof(err)), -EINVAL);
    assert_null(hv);
    snprintf(path, sizeof(path), "%s/contract.json?speed=2.5", SCENARIO_DIR);
    assert_int_equal(hv_sim_open(path, &hv, err, sizeof(err)), 0);
    assert_non_null(sim_from_hv(hv));
    hv_close(&hv);
}

/* ---- shipped scenarios ---- */

static void
test_contract_scenario(void **state)
{
    char path[512];
    char err[HV_ERR_MAX] = "";
    struct fixture f;
    struct hv_vm vm;
    size_t n = 0;
    (void)state;

    snprintf(path, sizeof(path), "sim:%s/contract.json", SCENARIO_DIR);
    assert_int_equal(hv_open(path, &f.hv, err, sizeof(err)), 0);
    f.sim = sim_from_hv(f.hv);
    sim_use_fake_clock(f.sim);
    sample_host(&f, &n);
    ASSERT_U64(n, 4);
    vm = sample_vm(&f, "alpha");
    ASSERT_U64(vm.max_kib, MIB(2048));
    ASSERT_U64(vm.actual_kib, MIB(1024));
    assert_true(vm.has_balloon && vm.has_unused && vm.has_usable);
    vm = sample_vm(&f, "beta");
    ASSERT_U64(vm.max_kib, MIB(2048));
    ASSERT_U64(vm.actual_kib, MIB(1024));
    assert_true(vm.has_balloon && vm.has_unused);
    vm = sample_vm(&f, "nodriver");
    assert_true(vm.has_balloon);
    assert_false(vm.has_unused);
    vm = sample_vm(&f, "noballoon");
    assert_false(vm.has_balloon);
    assert_int_equal(set_target(&f, "noballoon", MIB(512)), -ENOTSUP);
    fixture_close(&f);
}

static void
test_every_shipped_scenario_loads_and_runs(void **state)
{
    DIR *dir = opendir(SCENARIO_DIR);
    struct dirent *de;
    size_t loaded = 0;
    (void)state;

    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        char path[768];
        char err[HV_ERR_MAX] = "";
        struct hv *hv = NULL;
        struct sim *sim;
        size_t len = strlen(de->d_name);
        uint64_t end_ms;
        int rc;

        if (len < 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof(path), "sim:%s/%s", SCENARIO_DIR, de->d_name);
        rc = hv_open(path, &hv, err, sizeof(err));
        if (rc != 0)
            fail_msg("%s: rc=%d err=%s", de->d_name, rc, err);
        sim = sim_from_hv(hv);
        sim_use_fake_clock(sim);
        end_ms = sim_duration_ms(sim) ? sim_duration_ms(sim) : 60000;
        /* Left to itself (no agent), the model keeps its invariants every second: a guest's
         * MemFree never below what it keeps free (reserve, or 20 MiB with a filling cache),
         * MemAvailable within 64 MiB below MemFree + nothing more than the guest has, the
         * touched pages within the balloon, and the QEMU RSS reported for every VM. */
        size_t cap = sim_vm_count(sim);
        struct hv_vm *vms = calloc(cap, sizeof(*vms)); /* host1000.json: too many for the stack */
        assert_non_null(vms);
        while (sim_now_ms(sim) < end_ms) {
            struct hv_host host;
            size_t n = 0;

            sim_advance(sim, 1000);
            assert_int_equal(hv->ops->sample(hv->ctx, &host, vms, cap, &n), 0);
            assert_true(host.available_kib <= host.total_kib);
            for (size_t i = 0; i < n; i++) {
                if (vms[i].actual_kib > vms[i].max_kib || !vms[i].has_rss ||
                    (vms[i].has_unused &&
                     (vms[i].unused_kib > vms[i].actual_kib ||
                      vms[i].usable_kib > vms[i].actual_kib ||
                      vms[i].usable_kib + MIB(WATERMARK_MIB) < vms[i].unused_kib ||
                      vms[i].unused_kib < MIB(FILL_FREE_MIB))))
                    fail_msg("%s t=%" PRIu64 " vm %s: actual %" PRIu64 " max %" PRIu64
                             " unused %" PRIu64 " usable %" PRIu64 " has_rss %d",
                             de->d_name, sim_now_ms(sim), vms[i].name, vms[i].actual_kib,
                             vms[i].max_kib, vms[i].unused_kib, vms[i].usable_kib,
                             (int)vms[i].has_rss);
            }
            for (size_t i = 0; i < sim_vm_count(sim); i++) {
                struct sim_vm_view v;

                sim_vm_view(sim, i, &v);
                if (v.touched_kib > v.actual_kib || (v.running && v.rss_kib < v.touched_kib))
                    fail_msg("%s t=%" PRIu64 " vm %s: touched %" PRIu64 " actual %" PRIu64
                             " rss %" PRIu64,
                             de->d_name, sim_now_ms(sim), v.name, v.touched_kib, v.actual_kib,
                             v.rss_kib);
            }
        }
        free(vms);
        hv_close(&hv);
        loaded++;
    }
    closedir(dir);
    if (loaded < 10)
        fail_msg("want at least the 10 shipped scenarios in %s, found %zu", SCENARIO_DIR, loaded);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balloon_moves_at_speed_and_stops),
        cmocka_unit_test(test_balloon_slow_speed_is_exact),
        cmocka_unit_test(test_inflate_stops_short_of_a_squeezed_guest),
        cmocka_unit_test(test_stuck_balloon_does_not_move),
        cmocka_unit_test(test_no_driver_has_no_stats_and_ignores_targets),
        cmocka_unit_test(test_no_balloon_device),
        cmocka_unit_test(test_port_errors),
        cmocka_unit_test(test_sample_enospc),
        cmocka_unit_test(test_stats_lag_by_the_period),
        cmocka_unit_test(test_stats_stamp_changes_only_with_a_new_sample),
        cmocka_unit_test(test_stats_delay),
        cmocka_unit_test(test_stats_period_zero_until_set),
        cmocka_unit_test(test_hog_grows_until_refused_holds_and_frees),
        cmocka_unit_test(test_hog_fed_by_balloon_is_not_refused),
        cmocka_unit_test(test_ramp),
        cmocka_unit_test(test_step_above_fits_is_refused_and_catches_up),
        cmocka_unit_test(test_lifecycle_start_stop),
        cmocka_unit_test(test_host_available_follows_touched),
        cmocka_unit_test(test_touched_grows_only_when_the_workload_touches),
        cmocka_unit_test(test_balloon_inflating_lowers_touched),
        cmocka_unit_test(test_rss_reported_for_every_running_vm),
        cmocka_unit_test(test_fill_cache_keeps_memfree_low_and_gives_way),
        cmocka_unit_test(test_waiting_hog_starves_until_grown),
        cmocka_unit_test(test_host_worst_below_min),
        cmocka_unit_test(test_overcommitted_host_has_nothing_available),
        cmocka_unit_test(test_below_min_accounting),
        cmocka_unit_test(test_overrides_and_uuids),
        cmocka_unit_test(test_real_time_mode),
        cmocka_unit_test(test_sim_from_other_backend_is_null),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_scenarios_rejected),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_contract_scenario),
        cmocka_unit_test(test_every_shipped_scenario_loads_and_runs),
    };

    log_set_level(LOG_LEVEL_WARN); /* the sim logs each open at info */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
