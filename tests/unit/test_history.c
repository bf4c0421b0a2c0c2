/*
 * test_history.c - the bounded history (coordinator/history.c) on plain host views and a fake
 * clock: samples read back in order with their slot times; missing slots left out; the newest
 * report in a slot wins; the coarse tier before the fine one; a VM that left kept until it
 * expires; the memory bound (resolution halves, values kept, then series refused, never over
 * the bound); the sweep's catch-up after a halving said once, when done; hosts forgotten;
 * 10,000 hosts found by id after half are forgotten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "history.h"

#define MIB 1024

/* Small tiers: every 10 s for a minute (6 slots), every 60 s for 10 minutes (10 slots). */
static const struct history_opts small = {
    .max_bytes = 1 << 20,
    .fine_step_s = 10,
    .fine_span_s = 60,
    .coarse_step_s = 60,
    .coarse_span_s = 600,
};

struct view {
    struct fleet_host_info info;
    struct fleet_vm vms[4];
};

static void
uuid_n(uint8_t uuid[FLEET_UUID_BYTES], unsigned n)
{
    memset(uuid, 0, FLEET_UUID_BYTES);
    uuid[FLEET_UUID_BYTES - 1] = (uint8_t)n;
}

/* A host with VMs 1..n_vms (sorted by uuid), VM i's balloon i * base MiB, unused base / 2. */
static struct view *
view_of(struct view *v, const char *id, size_t n_vms, uint32_t base_mib)
{
    memset(v, 0, sizeof(*v));
    v->info.host_id = id;
    v->info.host_available_kib = 1000 * MIB;
    for (size_t i = 0; i < n_vms; i++) {
        struct fleet_vm *vm = &v->vms[i];
        uuid_n(vm->uuid, (unsigned)i + 1);
        vm->actual_kib = (uint64_t)(i + 1) * base_mib * MIB;
        vm->unused_kib = (uint64_t)base_mib / 2 * MIB;
        vm->has_unused = true;
        v->info.vm_actual_kib += vm->actual_kib;
    }
    v->info.vms = v->vms;
    v->info.n_vms = n_vms;
    return v;
}

static int
read_vm(struct history *h, const char *host, unsigned n, uint64_t now_ms, struct history_point *out)
{
    uint8_t uuid[FLEET_UUID_BYTES];

    uuid_n(uuid, n);
    return history_read(h, host, uuid, now_ms, out, 64);
}

static void
test_samples_in_order(void **state)
{
    (void)state;
    struct history *h = history_new(&small);
    struct view v;
    struct history_point p[64];

    for (uint32_t t = 0; t < 5; t++)
        history_record(h, &view_of(&v, "hv1", 2, 100 + t)->info, 1000000 + t * 10000);
    int n = read_vm(h, "hv1", 2, 1040000, p);
    /* Fine slots 100..104 (10 s each) inside the last minute; the coarse slot of minute 16
     * (960-1020 s) overlaps the fine window [980, 1040] and is left out. */
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        assert_int_equal(p[i].at_ms, (100 + (uint64_t)i) * 10000);
        assert_int_equal(p[i].a_mib, 2 * (100 + i));
        assert_int_equal(p[i].b_mib, (100 + i) / 2);
    }
    n = history_read(h, "hv1", NULL, 1040000, p, 64);
    assert_int_equal(n, 5);
    assert_int_equal(p[4].a_mib, 1000);
    assert_int_equal(p[4].b_mib, 3 * 104);
    assert_int_equal(history_read(h, "hv2", NULL, 1040000, p, 64), -ENOENT);
    history_destroy(&h);
    assert_null(h);
}

static void
test_gaps_and_newest_wins(void **state)
{
    (void)state;
    struct history *h = history_new(&small);
    struct view v;
    struct history_point p[64];

    history_record(h, &view_of(&v, "hv1", 1, 100)->info, 1000000);
    history_record(h, &view_of(&v, "hv1", 1, 200)->info, 1004000); /* same 10 s slot */
    history_record(h, &view_of(&v, "hv1", 1, 300)->info, 1030000); /* two slots skipped */
    int n = read_vm(h, "hv1", 1, 1030000, p);
    assert_int_equal(n, 2);
    assert_int_equal(p[0].at_ms, 1000000);
    assert_int_equal(p[0].a_mib, 200);
    assert_int_equal(p[1].at_ms, 1030000);
    assert_int_equal(p[1].a_mib, 300);
    /* A report without unused memory reads as unknown. */
    view_of(&v, "hv1", 1, 400);
    v.vms[0].has_unused = false;
    history_record(h, &v.info, 1040000);
    n = read_vm(h, "hv1", 1, 1040000, p);
    assert_int_equal(p[n - 1].b_mib, HISTORY_UNKNOWN);
    history_destroy(&h);
}

static void
test_coarse_before_fine(void **state)
{
    (void)state;
    struct history *h = history_new(&small);
    struct view v;
    struct history_point p[64];

    /* A report every 10 s for 5 minutes, balloon = minutes since start. */
    for (uint32_t s = 0; s < 300; s += 10)
        history_record(h, &view_of(&v, "hv1", 1, s / 60)->info, (600 + (uint64_t)s) * 1000);
    uint64_t now = (600 + 290) * 1000;
    int n = read_vm(h, "hv1", 1, now, p);
    /* Coarse slots 10..12 (600-780 s) end before the fine window [830, 890]; slot 13 (780-840)
     * overlaps it and is left out; then the 6 fine slots. */
    assert_int_equal(n, 3 + 6);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(p[i].at_ms, (10 + (uint64_t)i) * 60000);
        assert_int_equal(p[i].a_mib, i); /* the minute's newest report */
    }
    for (int i = 3; i < n; i++) {
        assert_true(p[i].at_ms >= 830000);
        assert_true(p[i].at_ms > p[i - 1].at_ms);
    }
    history_destroy(&h);
}

static void
test_vm_that_left_expires(void **state)
{
    (void)state;
    struct history *h = history_new(&small);
    struct view v;
    struct history_point p[64];
    struct history_stats st;

    history_record(h, &view_of(&v, "hv1", 2, 100)->info, 1000000);
    history_record(h, &view_of(&v, "hv1", 1, 100)->info, 1010000); /* VM 2 left */
    assert_int_equal(read_vm(h, "hv1", 2, 1010000, p), 1);
    history_stats(h, &st);
    assert_int_equal(st.series, 3);
    /* Past the coarse span (10 minutes) after its newest sample, it goes. */
    history_record(h, &view_of(&v, "hv1", 1, 100)->info, 1000000 + 700000);
    assert_int_equal(read_vm(h, "hv1", 2, 1700000, p), -ENOENT);
    assert_int_equal(read_vm(h, "hv1", 1, 1700000, p) > 0, 1);
    history_stats(h, &st);
    assert_int_equal(st.series, 2);
    history_destroy(&h);
}

static void
test_bound_halves_then_refuses(void **state)
{
    (void)state;
    /* Room for a few full-resolution series only. */
    struct history_opts o = {
        .max_bytes = 2000,
        .fine_step_s = 10,
        .fine_span_s = 320,
        .coarse_step_s = 60,
        .coarse_span_s = 960,
    };
    struct history *h = history_new(&o);
    struct history_stats st;
    struct view v;
    struct history_point p[64];
    char id[16];

    /* hv0 reports a while at full resolution: 10 s slots, balloon = seconds / 10. */
    for (uint32_t s = 0; s < 320; s += 10)
        history_record(h, &view_of(&v, "hv0", 1, s / 10)->info, (1000 + (uint64_t)s) * 1000);
    history_stats(h, &st);
    assert_int_equal(st.fine_step_s, 10);
    for (int i = 1; i < 40; i++) {
        snprintf(id, sizeof(id), "hv%d", i);
        history_record(h, &view_of(&v, id, 1, 1)->info, 1320000);
    }
    /* Series catch up with the coarser resolution when next written (or swept): after a
     * round of reports everything is within the bound. */
    history_record(h, &view_of(&v, "hv0", 1, 32)->info, 1320000);
    for (int i = 1; i < 40; i++) {
        snprintf(id, sizeof(id), "hv%d", i);
        history_record(h, &view_of(&v, id, 1, 1)->info, 1320000);
    }
    history_stats(h, &st);
    assert_true(st.bytes <= st.max_bytes);
    assert_true(st.fine_step_s > 10);
    assert_int_equal(st.fine_step_s % 10, 0);
    assert_true(st.fine_slots >= HISTORY_MIN_SLOTS);
    assert_true(st.refused > 0); /* the coarsest resolution filled up too */
    /* hv0's samples survived the halvings: each slot holds the newest of the ones it merged. */
    int n = read_vm(h, "hv0", 1, 1320000, p);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        uint64_t slot_end_s = p[i].at_ms / 1000 + st.fine_step_s;
        uint64_t newest_s = slot_end_s - 10 < 1320 ? slot_end_s - 10 : 1320;
        if (p[i].at_ms >= (1320 - 320) * 1000)
            assert_int_equal(p[i].a_mib, (newest_s - 1000) / 10);
    }
    history_destroy(&h);
}

/* When the resolution halves, the series that do not report are halved by the sweep, a few
 * at a time; the history says once, when the sweep halved the last of them, that their old
 * blocks are free (the daemon then trims the heap), and not before or again. */
static void
test_caught_up_once(void **state)
{
    struct history_opts o = {
        .max_bytes = 256 << 10,
        .fine_step_s = 10,
        .fine_span_s = 320,
        .coarse_step_s = 60,
        .coarse_span_s = 960,
    };
    struct history *h = history_new(&o);
    struct history_stats st;
    struct view v;
    char id[16];
    int hosts = 0;
    (void)state;

    /* Hosts of 4 VMs join until the bound halves the resolution. */
    do {
        assert_false(history_take_caught_up(h)); /* nothing halved yet */
        assert_true(hosts < 2000);
        snprintf(id, sizeof(id), "hv%d", hosts++);
        history_record(h, &view_of(&v, id, 4, 1)->info, 1000000);
        history_stats(h, &st);
    } while (st.fine_step_s == 10);
    /* More series than a few sweeps halve: the catch-up takes several records. */
    if (st.series < 4 * 128)
        fail_msg("want over 512 series when the resolution halves, got %zu", st.series);
    assert_false(history_take_caught_up(h));
    /* hv0 alone reports on; the sweep halves the others. */
    int records = 0;
    while (!history_take_caught_up(h)) {
        if (++records > 1000)
            fail_msg("still not caught up after 1000 records (%zu series)", st.series);
        history_record(h, &view_of(&v, "hv0", 4, 1)->info, 1000000);
    }
    if (records < 2)
        fail_msg("caught up after %d record: want the sweep spread over several", records);
    history_stats(h, &st);
    if (st.bytes > st.max_bytes)
        fail_msg("caught up at %" PRIu64 " bytes, over the bound of %" PRIu64, st.bytes,
                 st.max_bytes);
    /* Said once. */
    assert_false(history_take_caught_up(h));
    history_record(h, &view_of(&v, "hv0", 4, 1)->info, 1000000);
    assert_false(history_take_caught_up(h));
    history_destroy(&h);
}

static void
test_many_hosts_forgotten(void **state)
{
    (void)state;
    struct history_opts big = small;
    big.max_bytes = 64 << 20;
    struct history *h = history_new(&big);
    struct history_stats st;
    struct view v;
    struct history_point p[64];
    char id[16];

    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "hv%d", i);
        history_record(h, &view_of(&v, id, 0, 1)->info, 1000000);
    }
    for (int i = 0; i < 10000; i += 2) {
        snprintf(id, sizeof(id), "hv%d", i);
        history_forget_host(h, id);
    }
    history_forget_host(h, "hv-none");
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "hv%d", i);
        assert_int_equal(history_read(h, id, NULL, 1000000, p, 64), i % 2 ? 1 : -ENOENT);
    }
    history_stats(h, &st);
    assert_int_equal(st.hosts, 5000);
    assert_int_equal(st.series, 5000);
    history_destroy(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_in_order),
        cmocka_unit_test(test_gaps_and_newest_wins),
        cmocka_unit_test(test_coarse_before_fine),
        cmocka_unit_test(test_vm_that_left_expires),
        cmocka_unit_test(test_bound_halves_then_refuses),
        cmocka_unit_test(test_caught_up_once),
        cmocka_unit_test(test_many_hosts_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
