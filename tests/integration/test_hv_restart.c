/*
 * test_hv_restart.c - the libvirt backend across libvirtd restarts, through the port (hv.h).
 *
 *   test_hv_restart URI LIBVIRTD_SH
 *
 * Run by test_hv_restart.sh, which starts a private libvirtd (tests/lib/libvirtd.sh) and passes
 * its test+unix URI; LIBVIRTD_DIR in the environment lets this program kill, stop and restart
 * that daemon through the same library. What must hold: while libvirtd is gone every op answers
 * -ENOTCONN quickly (never a crash, never a call that blocks for more than a few seconds), and
 * once it is back the backend reconnects by itself within the back-off (30 s at most) and
 * set_target works again. The daemon's test driver starts over at each restart (domain "test",
 * 2 GiB of 8), so nothing is carried across.
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
#include "test_util.h"

#define VMS_ROOM       16
#define CALL_MAX_MS    3000u  /* no op may block longer while libvirtd is away */
#define LOSS_MAX_MS    10000u /* the loss is seen within this */
#define RECOVER_MAX_MS 45000u /* back-off tops out at 30 s; this leaves room */
#define POLL_MS        100u
#define TARGET_KIB     (MIB(1536u))

static const char *uri;
static const char *libvirtd_sh;

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run one function of tests/lib/libvirtd.sh on the daemon in $LIBVIRTD_DIR. */
static void
libvirtd(const char *function)
{
    char cmd[1024];
    int rc;

    snprintf(cmd, sizeof(cmd), "bash -c '. \"%s\" && %s'", libvirtd_sh, function);
    rc = system(cmd);
    if (rc != 0)
        fail_msg("%s: want exit 0, got %d", cmd, rc);
}

/* One sample, timed: the call must return within CALL_MAX_MS whatever libvirtd does. */
static int
timed_sample(struct hv *hv, struct hv_vm *vms, size_t *n)
{
    struct hv_host host;
    uint64_t start = now_ms();
    int rc = hv->ops->sample(hv->ctx, &host, vms, VMS_ROOM, n);
    uint64_t took = now_ms() - start;

    if (took > CALL_MAX_MS)
        fail_msg("sample took %" PRIu64 " ms (rc %d); want at most %u", took, rc, CALL_MAX_MS);
    return rc;
}

static void
wait_for_rc(struct hv *hv, int want_rc, uint64_t max_ms, const char *what)
{
    struct hv_vm vms[VMS_ROOM];
    uint64_t start = now_ms();
    size_t n = 0;
    int rc;

    for (;;) {
        rc = timed_sample(hv, vms, &n);
        if (rc == want_rc)
            break;
        if (rc != 0 && rc != -ENOTCONN)
            fail_msg("%s: sample gave %d; want 0 or -ENOTCONN only", what, rc);
        if (now_ms() - start > max_ms)
            fail_msg("%s: sample still gives %d after %" PRIu64 " ms; want %d", what, rc,
                     now_ms() - start, want_rc);
        sleep_ms(POLL_MS);
    }
    fprintf(stderr, "restart: %s after %" PRIu64 " ms\n", what, now_ms() - start);
}

/* Connected: a VM is there, and a target set on it shows in the next sample. */
static void
check_working(struct hv *hv)
{
    struct hv_vm vms[VMS_ROOM];
    size_t n = 0;
    int rc;

    assert_int_equal(timed_sample(hv, vms, &n), 0);
    if (n < 1)
        fail_msg("want at least one VM on %s, got none", uri);
    rc = hv->ops->set_target(hv->ctx, vms[0].uuid, TARGET_KIB);
    if (rc != 0)
        fail_msg("set_target(%s, %u): want 0, got %d", vms[0].name, TARGET_KIB, rc);
    assert_int_equal(hv->ops->set_stats_period(hv->ctx, 1), 0);
    assert_int_equal(timed_sample(hv, vms, &n), 0);
    if (vms[0].actual_kib != TARGET_KIB)
        fail_msg("vm %s: want actual_kib=%u after set_target, got %" PRIu64, vms[0].name,
                 TARGET_KIB, vms[0].actual_kib);
}

/* Daemon gone: every op says -ENOTCONN, fast. */
static void
check_down(struct hv *hv)
{
    uint64_t start;
    int rc;

    wait_for_rc(hv, -ENOTCONN, LOSS_MAX_MS, "loss seen");
    start = now_ms();
    rc = hv->ops->set_target(hv->ctx, "6695eb01-f6a4-8304-79aa-97f2502e193f", TARGET_KIB);
    if (rc != -ENOTCONN)
        fail_msg("set_target while libvirtd is down: want -ENOTCONN, got %d", rc);
    rc = hv->ops->set_stats_period(hv->ctx, 1);
    if (rc != -ENOTCONN)
        fail_msg("set_stats_period while libvirtd is down: want -ENOTCONN, got %d", rc);
    if (now_ms() - start > CALL_MAX_MS)
        fail_msg("ops while libvirtd is down took %" PRIu64 " ms", now_ms() - start);
}

static int
setup(void **state)
{
    char err[HV_ERR_MAX] = "";
    struct hv *hv = NULL;
    int rc = hv_open(uri, &hv, err, sizeof(err));

    if (rc != 0) {
        fprintf(stderr, "hv_open(%s): want 0, got %d (%s)\n", uri, rc, err);
        return -1;
    }
    *state = hv;
    return 0;
}

static int
teardown(void **state)
{
    struct hv *hv = *state;
    hv_close(&hv);
    return 0;
}

static void
test_connected(void **state)
{
    struct hv *hv = *state;
    wait_for_rc(hv, 0, RECOVER_MAX_MS, "first sample");
    check_working(hv);
}

static void
test_kill_and_restart(void **state)
{
    struct hv *hv = *state;

    libvirtd("libvirtd_kill");
    check_down(hv);
    libvirtd("libvirtd_restart");
    wait_for_rc(hv, 0, RECOVER_MAX_MS, "recovered from SIGKILL");
    check_working(hv);
}

static void
test_stop_and_restart_later(void **state)
{
    struct hv *hv = *state;

    libvirtd("libvirtd_stop");
    check_down(hv);
    /* Stay down long enough for the back-off to grow past its first steps. */
    for (int i = 0; i < 40; i++) {
        struct hv_vm vms[VMS_ROOM];
        size_t n;
        assert_int_equal(timed_sample(hv, vms, &n), -ENOTCONN);
        sleep_ms(POLL_MS);
    }
    libvirtd("libvirtd_restart");
    wait_for_rc(hv, 0, RECOVER_MAX_MS, "recovered from SIGTERM after 4 s down");
    check_working(hv);
}

/* An agent may start before libvirtd: the open succeeds and the backend connects later. */
static void
test_open_before_daemon(void **state)
{
    char err[HV_ERR_MAX] = "";
    struct hv *hv = NULL;
    struct hv_vm vms[VMS_ROOM];
    size_t n = 0;
    int rc;

    (void)state;
    libvirtd("libvirtd_stop");
    rc = hv_open(uri, &hv, err, sizeof(err));
    if (rc != 0)
        fail_msg("hv_open with libvirtd down: want 0, got %d (%s)", rc, err);
    assert_int_equal(timed_sample(hv, vms, &n), -ENOTCONN);
    libvirtd("libvirtd_restart");
    wait_for_rc(hv, 0, RECOVER_MAX_MS, "connected after a late start");
    check_working(hv);
    hv_close(&hv);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connected),
        cmocka_unit_test(test_kill_and_restart),
        cmocka_unit_test(test_stop_and_restart_later),
        cmocka_unit_test(test_open_before_daemon),
    };

    if (argc != 3) {
        fprintf(stderr, "usage: test_hv_restart URI LIBVIRTD_SH (run by test_hv_restart.sh)\n");
        return 2;
    }
    uri = argv[1];
    libvirtd_sh = argv[2];
    if (!getenv("LIBVIRTD_DIR")) {
        fprintf(stderr, "test_hv_restart: LIBVIRTD_DIR is not set (run test_hv_restart.sh)\n");
        return 2;
    }
    return cmocka_run_group_tests_name("hv_restart", tests, setup, teardown);
}
