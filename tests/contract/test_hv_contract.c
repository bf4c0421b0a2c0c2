/*
 * test_hv_contract.c - one suite over the hypervisor port (hv.h), run against every backend.
 *
 * The same assertions hold for the sim and for libvirt (test:///default, a test-driver XML, a
 * libvirtd over its socket): counts, identities, the error contract and the overrides. What a
 * fixture contains is told by flags, so the suite never hard-codes a fixture:
 *
 *   test_hv_contract URI [--vms N] [--no-balloon NAME] [--no-stats NAME] [--unmanaged NAME]
 *                        [--weight NAME=W] [--min NAME=MIB] [--cap NAME=MIB] [--stopped UUID]
 *
 * --vms: how many running VMs sample finds; --no-balloon: VMs without a balloon device;
 * --no-stats: VMs with a balloon device but no guest stats (no driver); --unmanaged: VMs whose
 * metadata says managed=no or is malformed; --weight/--min/--cap: overrides from metadata (all
 * others must show the defaults); --stopped: a defined domain that is not running. Names may
 * repeat flags. Policy is not tested here: the test driver's numbers are synthetic.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hv.h"
#include "hv_backends.h"
#include "hv_libvirt.h"
#include "hv_sim.h"
#include "test_util.h"

#define MAX_NAMED    32
#define VMS_ROOM     64
#define POLL_ROUNDS  60 /* sample polls while a balloon moves: 60 s of sim time at most */
#define UNKNOWN_UUID "00000000-0000-4000-8000-00000000dead"

struct named_value {
    const char *name;
    uint64_t value;
};

struct expect {
    const char *uri;
    long vms; /* -1: not checked */
    const char *no_balloon[MAX_NAMED];
    size_t n_no_balloon;
    const char *no_stats[MAX_NAMED];
    size_t n_no_stats;
    const char *unmanaged[MAX_NAMED];
    size_t n_unmanaged;
    struct named_value weight[MAX_NAMED];
    size_t n_weight;
    struct named_value min_mib[MAX_NAMED];
    size_t n_min;
    struct named_value cap_mib[MAX_NAMED];
    size_t n_cap;
    const char *stopped[MAX_NAMED];
    size_t n_stopped;
};

static struct expect want = {.vms = -1};

/* ---- helpers ---- */

static bool
listed(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static bool
lookup(const struct named_value *values, size_t n, const char *name, uint64_t *value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(values[i].name, name) == 0) {
            *value = values[i].value;
            return true;
        }
    }
    return false;
}

static struct hv *
open_hv(void)
{
    char err[HV_ERR_MAX] = "";
    struct hv *hv = NULL;
    int rc = hv_open(want.uri, &hv, err, sizeof(err));

    if (rc != 0)
        fail_msg("hv_open(%s): want 0, got %d (%s)", want.uri, rc, err);
    if (sim_from_hv(hv))
        sim_use_fake_clock(sim_from_hv(hv)); /* deterministic: time moves only when we say */
    return hv;
}

static int
sample(struct hv *hv, struct hv_host *host, struct hv_vm *vms, size_t cap, size_t *n)
{
    return hv->ops->sample(hv->ctx, host, vms, cap, n);
}

static void
sample_ok(struct hv *hv, struct hv_host *host, struct hv_vm *vms, size_t *n)
{
    int rc = sample(hv, host, vms, VMS_ROOM, n);
    if (rc != 0)
        fail_msg("sample(%s): want 0, got %d", want.uri, rc);
}

static const struct hv_vm *
find_name(const struct hv_vm *vms, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(vms[i].name, name) == 0)
            return &vms[i];
    return NULL;
}

static const struct hv_vm *
find_uuid(const struct hv_vm *vms, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(vms[i].uuid, uuid) == 0)
            return &vms[i];
    return NULL;
}

/* Let time pass: sim time under the fake clock, a little wall time for libvirt. */
static void
let_time_pass(struct hv *hv)
{
    struct timespec pause = {.tv_nsec = 50 * 1000 * 1000};

    if (sim_from_hv(hv))
        sim_advance(sim_from_hv(hv), 1000);
    else
        nanosleep(&pause, NULL);
}

/* A VM with a balloon, a driver and room to move: what set_target is tried on. */
static const struct hv_vm *
pick_target_vm(const struct hv_vm *vms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct hv_vm *vm = &vms[i];
        if (vm->has_balloon && !listed(want.no_stats, want.n_no_stats, vm->name) &&
            vm->state == SCHED_VM_RUNNING && vm->actual_kib >= MIB(512))
            return vm;
    }
    return NULL;
}

/* ---- fixtures ---- */

static int
setup(void **state)
{
    *state = open_hv();
    return 0;
}

static int
teardown(void **state)
{
    struct hv *hv = *state;
    hv_close(&hv);
    hv_close(&hv); /* repeated close is harmless */
    return 0;
}

/* ---- the contract ---- */

static void
test_sample_identities(void **state)
{
    struct hv *hv = *state;
    struct hv_vm vms[VMS_ROOM];
    struct hv_host host;
    size_t n = 0;

    sample_ok(hv, &host, vms, &n);
    if (want.vms >= 0 && n != (size_t)want.vms)
        fail_msg("VM count: want %ld, got %zu", want.vms, n);
    for (size_t i = 0; i < n; i++) {
        const struct hv_vm *vm = &vms[i];
        if (strlen(vm->uuid) != 36)
            fail_msg("vm %zu: UUID \"%s\" is not 36 characters", i, vm->uuid);
        if (vm->name[0] == '\0')
            fail_msg("vm %s: empty name", vm->uuid);
        for (size_t j = 0; j < i; j++)
            if (strcmp(vms[j].uuid, vm->uuid) == 0)
                fail_msg("UUID %s appears twice (%s, %s)", vm->uuid, vms[j].name, vm->name);
    }
    /* Every VM the flags name must be there. */
    for (size_t i = 0; i < want.n_no_balloon; i++)
        if (!find_name(vms, n, want.no_balloon[i]))
            fail_msg("no VM named %s", want.no_balloon[i]);
    for (size_t i = 0; i < want.n_unmanaged; i++)
        if (!find_name(vms, n, want.unmanaged[i]))
            fail_msg("no VM named %s", want.unmanaged[i]);
    for (size_t i = 0; i < want.n_stopped; i++)
        if (find_uuid(vms, n, want.stopped[i]))
            fail_msg("stopped domain %s is sampled as running", want.stopped[i]);
}

static void
test_sample_memory(void **state)
{
    struct hv *hv = *state;
    struct hv_vm vms[VMS_ROOM];
    struct hv_host host;
    size_t n = 0;

    sample_ok(hv, &host, vms, &n);
    if (!(host.total_kib >= host.available_kib && host.available_kib > 0))
        fail_msg("host: want total >= available > 0, got total_kib=%" PRIu64
                 " available_kib=%" PRIu64,
                 host.total_kib, host.available_kib);
    for (size_t i = 0; i < n; i++) {
        const struct hv_vm *vm = &vms[i];
        bool no_balloon = listed(want.no_balloon, want.n_no_balloon, vm->name);
        bool no_stats = no_balloon || listed(want.no_stats, want.n_no_stats, vm->name);

        if (vm->max_kib == 0 || vm->actual_kib == 0 || vm->actual_kib > vm->max_kib)
            fail_msg("vm %s: want 0 < actual <= max, got actual_kib=%" PRIu64 " max_kib=%" PRIu64,
                     vm->name, vm->actual_kib, vm->max_kib);
        if (vm->has_balloon == no_balloon)
            fail_msg("vm %s: has_balloon want %d, got %d", vm->name, !no_balloon, vm->has_balloon);
        if (no_stats && (vm->has_unused || vm->has_usable))
            fail_msg("vm %s: want no guest stats, got has_unused=%d has_usable=%d", vm->name,
                     vm->has_unused, vm->has_usable);
        if (!no_stats && !vm->has_unused)
            fail_msg("vm %s: want guest stats (unused), got none", vm->name);
        if (vm->has_unused && vm->unused_kib > vm->actual_kib)
            fail_msg("vm %s: unused_kib=%" PRIu64 " above actual_kib=%" PRIu64, vm->name,
                     vm->unused_kib, vm->actual_kib);
        if (vm->state != SCHED_VM_RUNNING)
            fail_msg("vm %s: want state running (%d), got %d", vm->name, SCHED_VM_RUNNING,
                     vm->state);
    }
}

static void
test_sample_overrides(void **state)
{
    struct hv *hv = *state;
    struct hv_vm vms[VMS_ROOM];
    struct hv_host host;
    size_t n = 0;

    sample_ok(hv, &host, vms, &n);
    for (size_t i = 0; i < n; i++) {
        const struct hv_vm *vm = &vms[i];
        bool managed = !listed(want.unmanaged, want.n_unmanaged, vm->name);
        uint64_t weight = 0, min_mib = 0, cap_mib = 0;

        lookup(want.weight, want.n_weight, vm->name, &weight);
        lookup(want.min_mib, want.n_min, vm->name, &min_mib);
        lookup(want.cap_mib, want.n_cap, vm->name, &cap_mib);
        if (vm->managed != managed)
            fail_msg("vm %s: managed want %d, got %d", vm->name, managed, vm->managed);
        if (!managed)
            continue; /* an unmanaged VM's other overrides do not matter */
        if (vm->weight != weight || vm->min_kib != MIB(min_mib) || vm->cap_kib != MIB(cap_mib))
            fail_msg("vm %s: want weight=%" PRIu64 " min_kib=%" PRIu64 " cap_kib=%" PRIu64
                     ", got weight=%u min_kib=%" PRIu64 " cap_kib=%" PRIu64,
                     vm->name, weight, MIB(min_mib), MIB(cap_mib), vm->weight, vm->min_kib,
                     vm->cap_kib);
    }
}

static void
test_sample_enospc(void **state)
{
    struct hv *hv = *state;
    struct hv_vm vms[VMS_ROOM];
    struct hv_host host;
    size_t n = 0, n_small = 0;
    int rc;

    sample_ok(hv, &host, vms, &n);
    if (n == 0)
        fail_msg("every contract fixture has VMs, this backend showed none");
    rc = sample(hv, &host, vms, n - 1, &n_small);
    if (rc != -ENOSPC || n_small != n)
        fail_msg("sample with room for %zu of %zu VMs: want -ENOSPC and n=%zu, got %d and n=%zu",
                 n - 1, n, n, rc, n_small);
    n_small = 0;
    rc = sample(hv, &host, NULL, 0, &n_small);
    if (rc != -ENOSPC || n_small != n)
        fail_msg("sample with no room: want -ENOSPC and n=%zu, got %d and n=%zu", n, rc, n_small);
}

static void
test_set_target_moves_balloon(void **state)
{
    struct hv *hv = *state;
    struct hv_vm vms[VMS_ROOM];
    struct hv_host host;
    char uuid[HV_UUID_LEN], name[HV_NAME_MAX];
    uint64_t old_kib, target_kib, got_kib = 0;
    const struct hv_vm *vm;
    size_t n = 0;
    int rc;

    sample_ok(hv, &host, vms, &n);
    vm = pick_target_vm(vms, n);
    if (!vm)
        fail_msg("no VM with a balloon, a driver and >= 512 MiB to set a target on");
    snprintf(uuid, sizeof(uuid), "%s", vm->uuid);
    snprintf(name, sizeof(name), "%s", vm->name);
    old_kib = vm->actual_kib;
    /* Grow when there is room (a grow always arrives), else shrink a little. */
    target_kib = old_kib + MIB(128) <= vm->max_kib ? old_kib + MIB(128) : old_kib - MIB(64);

    rc = hv->ops->set_target(hv->ctx, uuid, target_kib);
    if (rc != 0)
        fail_msg("set_target(%s, %" PRIu64 "): want 0, got %d", name, target_kib, rc);
    for (int i = 0; i < POLL_ROUNDS && got_kib != target_kib; i++) {
        sample_ok(hv, &host, vms, &n);
        vm = find_uuid(vms, n, uuid);
        if (!vm)
            fail_msg("vm %s vanished after set_target", name);
        got_kib = vm->actual_kib;
        if (got_kib != target_kib)
            let_time_pass(hv);
    }
    if (got_kib != target_kib)
        fail_msg("vm %s: want actual_kib=%" PRIu64 " after set_target, got %" PRIu64, name,
                 target_kib, got_kib);
    /* Put it back: test:///default is shared by everything in this process. */
    assert_int_equal(hv->ops->set_target(hv->ctx, uuid, old_kib), 0);
}

static void
test_set_target_errors(void **state)
{
    struct hv *hv = *state;
    struct hv_vm vms[VMS_ROOM];
    struct hv_host host;
    const struct hv_vm *vm;
    size_t n = 0;
    int rc;

    sample_ok(hv, &host, vms, &n);

    rc = hv->ops->set_target(hv->ctx, UNKNOWN_UUID, MIB(512));
    if (rc != -ENOENT)
        fail_msg("set_target(unknown UUID): want -ENOENT (%d), got %d", -ENOENT, rc);

    for (size_t i = 0; i < want.n_stopped; i++) {
        rc = hv->ops->set_target(hv->ctx, want.stopped[i], MIB(512));
        if (rc != -ENOENT)
            fail_msg("set_target(stopped %s): want -ENOENT (%d), got %d", want.stopped[i], -ENOENT,
                     rc);
    }

    for (size_t i = 0; i < want.n_no_balloon; i++) {
        vm = find_name(vms, n, want.no_balloon[i]);
        assert_non_null(vm);
        rc = hv->ops->set_target(hv->ctx, vm->uuid, vm->actual_kib);
        if (rc != -ENOTSUP)
            fail_msg("set_target(%s, no balloon device): want -ENOTSUP (%d), got %d", vm->name,
                     -ENOTSUP, rc);
    }

    vm = pick_target_vm(vms, n);
    assert_non_null(vm);
    rc = hv->ops->set_target(hv->ctx, vm->uuid, vm->max_kib + MIB(1024));
    if (rc != -EINVAL)
        fail_msg("set_target(%s, above max): want -EINVAL (%d), got %d", vm->name, -EINVAL, rc);
    rc = hv->ops->set_target(hv->ctx, vm->uuid, 0);
    if (rc != -EINVAL)
        fail_msg("set_target(%s, 0): want -EINVAL (%d), got %d", vm->name, -EINVAL, rc);
}

static void
test_set_stats_period(void **state)
{
    struct hv *hv = *state;
    struct hv_vm vms[VMS_ROOM];
    struct hv_host host;
    size_t n = 0;
    int rc;

    /* 0 forgets the period (a dry run): no write, no error. */
    rc = hv->ops->set_stats_period(hv->ctx, 0);
    if (rc != 0)
        fail_msg("set_stats_period(0): want 0, got %d", rc);
    rc = hv->ops->set_stats_period(hv->ctx, 1);
    if (rc != 0)
        fail_msg("set_stats_period(1): want 0, got %d", rc);
    sample_ok(hv, &host, vms, &n); /* and sampling goes on as before */
    if (want.vms >= 0 && n != (size_t)want.vms)
        fail_msg("VM count after set_stats_period: want %ld, got %zu", want.vms, n);
}

/* The libvirt backend's two stats paths must see the same VMs (the benchmark compares them). */
static void
test_stats_paths_agree(void **state)
{
    struct hv *hv = *state;
    struct hv_vm bulk[VMS_ROOM], per[VMS_ROOM];
    struct hv_host host;
    size_t n_bulk = 0, n_per = 0;

    if (sim_from_hv(hv)) {
        /* The sim has one stats path: choosing another is refused, which is all to check. */
        assert_int_equal(hv_libvirt_set_stats_path(hv, HV_LIBVIRT_STATS_PER_DOMAIN), -EINVAL);
        return;
    }
    sample_ok(hv, &host, bulk, &n_bulk);
    assert_int_equal(hv_libvirt_set_stats_path(hv, HV_LIBVIRT_STATS_PER_DOMAIN), 0);
    sample_ok(hv, &host, per, &n_per);
    assert_int_equal(hv_libvirt_set_stats_path(hv, HV_LIBVIRT_STATS_AUTO), 0);
    if (n_bulk != n_per)
        fail_msg("VM count: auto path %zu, per-domain path %zu", n_bulk, n_per);
    for (size_t i = 0; i < n_bulk; i++) {
        const struct hv_vm *a = &bulk[i];
        const struct hv_vm *b = find_uuid(per, n_per, a->uuid);
        if (!b)
            fail_msg("vm %s: seen by the auto path only", a->name);
        if (a->max_kib != b->max_kib || a->actual_kib != b->actual_kib ||
            a->has_unused != b->has_unused || a->unused_kib != b->unused_kib ||
            a->state != b->state || a->managed != b->managed)
            fail_msg("vm %s: auto and per-domain paths disagree (max %" PRIu64 "/%" PRIu64
                     ", actual %" PRIu64 "/%" PRIu64 ", unused %" PRIu64 "/%" PRIu64 ")",
                     a->name, a->max_kib, b->max_kib, a->actual_kib, b->actual_kib, a->unused_kib,
                     b->unused_kib);
    }
}

/* URI-independent: what opening gives for URIs that can never work or whose daemon is down. */
static void
test_open_errors(void **state)
{
    static const char *const bad[] = {
        "::not a uri",
        "test:///nonexistent/memsched-contract.xml",
        "sim:/nonexistent/memsched-contract.json",
        "",
    };
    char err[HV_ERR_MAX];
    struct hv *hv = NULL;
    struct hv_vm vms[4];
    struct hv_host host;
    size_t n = 99;
    time_t start;
    int rc;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        rc = hv_open(bad[i], &hv, err, sizeof(err));
        if (rc >= 0 || hv || err[0] == '\0')
            fail_msg("hv_open(\"%s\"): want an error with a message, got %d \"%s\"", bad[i], rc,
                     err);
    }

    /* A daemon that is not there: the open succeeds, every op says -ENOTCONN, at once. */
    start = time(NULL);
    rc = hv_open("test+unix:///default?socket=/nonexistent/memsched-contract-sock", &hv, err,
                 sizeof(err));
    if (rc != 0)
        fail_msg("hv_open(daemon down): want 0, got %d (%s)", rc, err);
    rc = sample(hv, &host, vms, 4, &n);
    if (rc != -ENOTCONN || n != 0)
        fail_msg("sample(daemon down): want -ENOTCONN and n=0, got %d and n=%zu", rc, n);
    assert_int_equal(hv->ops->set_target(hv->ctx, UNKNOWN_UUID, MIB(512)), -ENOTCONN);
    assert_int_equal(hv->ops->set_stats_period(hv->ctx, 1), -ENOTCONN);
    assert_int_equal(hv->ops->set_stats_period(hv->ctx, 0), 0); /* forgetting needs no daemon */
    hv_close(&hv);
    assert_null(hv);
    if (time(NULL) - start > 5)
        fail_msg("the ops on a down daemon took %ld s", (long)(time(NULL) - start));
}

/* ---- arguments ---- */

static void
usage(void)
{
    fprintf(stderr, "usage: test_hv_contract URI [--vms N] [--no-balloon NAME] [--no-stats NAME]"
                    " [--unmanaged NAME] [--weight NAME=W] [--min NAME=MIB] [--cap NAME=MIB]"
                    " [--stopped UUID]\n");
    exit(2);
}

static void
add_name(const char **names, size_t *n, const char *name)
{
    if (*n == MAX_NAMED)
        usage();
    names[(*n)++] = name;
}

static void
add_value(struct named_value *values, size_t *n, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *end = NULL;
    char *name;

    if (!eq || eq == arg || *n == MAX_NAMED)
        usage();
    name = strndup(arg, (size_t)(eq - arg));
    if (!name)
        abort();
    values[*n].name = name; /* lives as long as the process */
    values[*n].value = strtoull(eq + 1, &end, 10);
    if (!end || *end || end == eq + 1)
        usage();
    (*n)++;
}

static void
parse_args(int argc, char **argv)
{
    if (argc < 2)
        usage();
    want.uri = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *flag = argv[i];
        const char *arg = i + 1 < argc ? argv[i + 1] : NULL;
        if (!arg)
            usage();
        i++;
        if (strcmp(flag, "--vms") == 0)
            want.vms = strtol(arg, NULL, 10);
        else if (strcmp(flag, "--no-balloon") == 0)
            add_name(want.no_balloon, &want.n_no_balloon, arg);
        else if (strcmp(flag, "--no-stats") == 0)
            add_name(want.no_stats, &want.n_no_stats, arg);
        else if (strcmp(flag, "--unmanaged") == 0)
            add_name(want.unmanaged, &want.n_unmanaged, arg);
        else if (strcmp(flag, "--stopped") == 0)
            add_name(want.stopped, &want.n_stopped, arg);
        else if (strcmp(flag, "--weight") == 0)
            add_value(want.weight, &want.n_weight, arg);
        else if (strcmp(flag, "--min") == 0)
            add_value(want.min_mib, &want.n_min, arg);
        else if (strcmp(flag, "--cap") == 0)
            add_value(want.cap_mib, &want.n_cap, arg);
        else
            usage();
    }
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_identities),
        cmocka_unit_test(test_sample_memory),
        cmocka_unit_test(test_sample_overrides),
        cmocka_unit_test(test_sample_enospc),
        cmocka_unit_test(test_set_target_moves_balloon),
        cmocka_unit_test(test_set_target_errors),
        cmocka_unit_test(test_set_stats_period),
        cmocka_unit_test(test_stats_paths_agree),
        cmocka_unit_test(test_open_errors),
    };

    parse_args(argc, argv);
    fprintf(stderr, "contract: uri=%s\n", want.uri);
    return cmocka_run_group_tests_name(want.uri, tests, setup, teardown);
}
