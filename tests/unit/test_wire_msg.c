/*
 * test_wire_msg.c - the envelope and every body: round trips, and each kind of message a
 * receiver must refuse (wrong version, bad host id, bad uuid, duplicate VMs, unknown reason or
 * state, bad scope, invalid policy, oversized).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "wire.h"

#define UUID_A "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b01"
#define UUID_B "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b02"

static void
envelope(struct wire_msg *m, enum wire_body body)
{
    memset(m, 0, sizeof(*m));
    m->protocol_version = WIRE_PROTOCOL_VERSION;
    strcpy(m->host_id, "hv-01.rack3");
    m->sequence = 77;
    m->body = body;
}

/* A report with two VMs and one decision; the arrays are the caller's. */
static void
report(struct wire_msg *m, struct wire_vm vms[2], struct wire_decision *d)
{
    envelope(m, WIRE_BODY_REPORT);
    memset(vms, 0, 2 * sizeof(*vms));
    strcpy(vms[0].uuid, UUID_A);
    strcpy(vms[0].name, "web");
    vms[0].state = SCHED_VM_RUNNING;
    vms[0].max_kib = 2048 * 1024;
    vms[0].actual_kib = 1024 * 1024;
    vms[0].unused_kib = 50 * 1024;
    vms[0].has_unused = vms[0].managed = true;
    vms[1] = vms[0];
    strcpy(vms[1].uuid, UUID_B);
    strcpy(vms[1].name, "db");
    vms[1].has_unused = false;
    vms[1].stuck = true;
    vms[1].min_kib = 512 * 1024;
    vms[1].cap_kib = 4096 * 1024;
    vms[1].weight = 200;
    memset(d, 0, sizeof(*d));
    strcpy(d->uuid, UUID_A);
    d->reason = SCHED_REASON_GROW;
    d->old_target_kib = 1024 * 1024;
    d->new_target_kib = 1174 * 1024;
    strcpy(d->counterpart, WIRE_COUNTERPART_HOST);
    m->u.report.host_total_kib = 8192 * 1024;
    m->u.report.host_available_kib = 1000 * 1024;
    m->u.report.vms = vms;
    m->u.report.n_vms = 2;
    m->u.report.decisions = d;
    m->u.report.n_decisions = 1;
    m->u.report.counters.rounds = 12;
    m->u.report.policy_version = 3;
}

static void
round_trip(const struct wire_msg *in, struct wire_msg *out)
{
    char err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;

    if (wire_encode(in, &buf, &len, err, sizeof(err)) != 0)
        fail_msg("encode: %s", err);
    if (wire_decode(buf, len, out, err, sizeof(err)) != 0)
        fail_msg("decode: %s", err);
    free(buf);
    assert_int_equal(out->body, in->body);
    assert_string_equal(out->host_id, in->host_id);
    assert_int_equal(out->sequence, in->sequence);
}

static void
test_report_round_trip(void **state)
{
    struct wire_msg in, out;
    struct wire_vm vms[2];
    struct wire_decision d;
    (void)state;

    report(&in, vms, &d);
    round_trip(&in, &out);
    assert_int_equal(out.u.report.n_vms, 2);
    assert_string_equal(out.u.report.vms[1].name, "db");
    assert_true(out.u.report.vms[0].has_unused);
    assert_false(out.u.report.vms[1].has_unused);
    assert_true(out.u.report.vms[1].stuck);
    assert_int_equal(out.u.report.vms[1].min_kib, 512 * 1024);
    assert_int_equal(out.u.report.vms[1].cap_kib, 4096 * 1024);
    assert_int_equal(out.u.report.vms[1].weight, 200);
    assert_int_equal(out.u.report.vms[0].weight, 0); /* none: absent on the wire, 0 again */
    assert_int_equal(out.u.report.vms[0].unused_kib, 50 * 1024);
    assert_int_equal(out.u.report.vms_total, 2); /* not sent: every VM is in the report */
    assert_int_equal(out.u.report.n_decisions, 1);
    assert_int_equal(out.u.report.decisions[0].reason, SCHED_REASON_GROW);
    assert_string_equal(out.u.report.decisions[0].counterpart, "host");
    assert_int_equal(out.u.report.counters.rounds, 12);
    assert_int_equal(out.u.report.policy_version, 3);
    assert_false(out.u.report.has_policy); /* an agent that sends no thresholds */
    wire_msg_clear(&out);
    wire_msg_clear(&out); /* idempotent */

    /* What the round saw and the thresholds it planned with travel too (memschedctl why). */
    report(&in, vms, &d);
    d.signal_kib = 50 * 1024;
    d.need_kib = 150 * 1024;
    d.lookahead_kib = 20 * 1024;
    d.vm_kib = 100 * 1024;
    d.host_kib = 50 * 1024;
    in.u.report.has_policy = true;
    policy_init_defaults(&in.u.report.policy);
    in.u.report.policy.vm_min_unused_kib = 120 * 1024;
    round_trip(&in, &out);
    assert_int_equal(out.u.report.decisions[0].signal_kib, 50 * 1024);
    assert_int_equal(out.u.report.decisions[0].need_kib, 150 * 1024);
    assert_int_equal(out.u.report.decisions[0].lookahead_kib, 20 * 1024);
    assert_int_equal(out.u.report.decisions[0].vm_kib, 100 * 1024);
    assert_int_equal(out.u.report.decisions[0].host_kib, 50 * 1024);
    assert_true(out.u.report.has_policy);
    assert_true(policy_equal(&out.u.report.policy, &in.u.report.policy));
    wire_msg_clear(&out);

    /* A report cut at WIRE_VMS_MAX carries the host's total. */
    report(&in, vms, &d);
    in.u.report.vms_total = 5000;
    round_trip(&in, &out);
    assert_int_equal(out.u.report.n_vms, 2);
    assert_int_equal(out.u.report.vms_total, 5000);
    wire_msg_clear(&out);
}

static void
test_other_bodies_round_trip(void **state)
{
    struct wire_msg in, out;
    (void)state;

    envelope(&in, WIRE_BODY_HELLO);
    strcpy(in.u.hello.agent_version, "0.1.0");
    strcpy(in.u.hello.labels[0].key, "rack");
    strcpy(in.u.hello.labels[0].value, "r3");
    in.u.hello.n_labels = 1;
    in.u.hello.policy_version = 9;
    in.u.hello.policy_epoch = UINT64_C(0xfedcba9876543210);
    round_trip(&in, &out);
    assert_string_equal(out.u.hello.labels[0].value, "r3");
    assert_int_equal(out.u.hello.policy_version, 9);
    assert_true(out.u.hello.policy_epoch == UINT64_C(0xfedcba9876543210));

    envelope(&in, WIRE_BODY_POLICY_PUSH);
    in.u.push.version = 4;
    strcpy(in.u.push.scope, "label:rack=r3");
    policy_init_defaults(&in.u.push.policy);
    in.u.push.policy.host_min_unused_kib = 1024 * 1024;
    in.u.push.epoch = 77;
    round_trip(&in, &out);
    assert_true(policy_equal(&in.u.push.policy, &out.u.push.policy));
    assert_int_equal(out.u.push.epoch, 77);
    assert_string_equal(out.u.push.scope, "label:rack=r3");

    envelope(&in, WIRE_BODY_POLICY_ACK);
    in.u.ack.version = 4;
    strcpy(in.u.ack.reason, "host_min_unused_mib=100 below local limit 512");
    round_trip(&in, &out);
    assert_false(out.u.ack.applied);
    assert_string_equal(out.u.ack.reason, in.u.ack.reason);

    envelope(&in, WIRE_BODY_HEARTBEAT);
    in.u.heartbeat_policy_version = 4;
    round_trip(&in, &out);
    assert_int_equal(out.u.heartbeat_policy_version, 4);

    envelope(&in, WIRE_BODY_SAY_HELLO);
    round_trip(&in, &out);
}

/* Encoding refuses what decoding would refuse; the message names the problem. */
static void
expect_refused(const struct wire_msg *m, const char *want)
{
    char err[WIRE_ERR_MAX] = "";
    uint8_t *buf = (uint8_t *)"x";
    size_t len;

    assert_int_equal(wire_encode(m, &buf, &len, err, sizeof(err)), -EINVAL);
    assert_null(buf);
    if (!strstr(err, want))
        fail_msg("want an error containing '%s', got '%s'", want, err);
}

static void
test_refusals(void **state)
{
    struct wire_msg m;
    struct wire_vm vms[2];
    struct wire_decision d;
    (void)state;

    report(&m, vms, &d);
    strcpy(m.host_id, "bad host");
    expect_refused(&m, "host_id");
    report(&m, vms, &d);
    m.protocol_version = 2;
    expect_refused(&m, "protocol_version=2");
    report(&m, vms, &d);
    strcpy(vms[1].uuid, UUID_A);
    expect_refused(&m, "listed twice");
    report(&m, vms, &d);
    vms[0].uuid[3] = 'z';
    expect_refused(&m, "bad vm uuid");
    report(&m, vms, &d);
    vms[0].actual_kib = SCHED_KIB_MAX + 1;
    expect_refused(&m, "actual_kib");
    report(&m, vms, &d);
    strcpy(vms[0].name, "evil\nname");
    expect_refused(&m, "bad name");
    report(&m, vms, &d);
    d.reason = SCHED_REASON_COUNT;
    expect_refused(&m, "unknown reason");
    report(&m, vms, &d);
    strcpy(d.counterpart, "nobody");
    expect_refused(&m, "bad counterpart");
    report(&m, vms, &d);
    struct wire_decision three[3] = {d, d, d};
    m.u.report.decisions = three;
    m.u.report.n_decisions = 3; /* more decisions than VMs */
    expect_refused(&m, "decisions");

    envelope(&m, WIRE_BODY_POLICY_PUSH);
    m.u.push.version = 1;
    strcpy(m.u.push.scope, "rack=r3");
    policy_init_defaults(&m.u.push.policy);
    expect_refused(&m, "scope");
    strcpy(m.u.push.scope, "fleet");
    m.u.push.policy.vm_min_unused_kib = 300 * 1024;
    expect_refused(&m, "vm_min_unused_mib=300");
    policy_init_defaults(&m.u.push.policy);
    m.u.push.version = 0;
    expect_refused(&m, "version 0");
}

/* Replace the first `from` in buf by `to` (same length): a field spelled otherwise, in a
 * message whose framing stays valid. */
static void
respell(uint8_t *buf, size_t len, const char *from, const char *to)
{
    size_t n = strlen(from);

    assert_int_equal(strlen(to), n);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, from, n) == 0) {
            memcpy(buf + i, to, n);
            return;
        }
    }
    fail_msg("'%s' is not in the encoded message", from);
}

/* The skip reason: a step-2 reason round-trips by name; a managed VM sends none; a name this
 * build does not know (a newer agent's) is taken as other, not refused; a malformed one is. */
static void
test_skip_reason(void **state)
{
    char err[WIRE_ERR_MAX];
    struct wire_msg m, out;
    struct wire_vm vms[2];
    struct wire_decision d;
    uint8_t *buf;
    size_t len;
    (void)state;

    report(&m, vms, &d);
    vms[1].skip_reason = SCHED_REASON_NO_BALLOON;
    vms[0].skip_reason = SCHED_REASON_GROW; /* not a skip: the VM is managed */
    round_trip(&m, &out);
    assert_int_equal(out.u.report.vms[1].skip_reason, SCHED_REASON_NO_BALLOON);
    assert_int_equal(out.u.report.vms[0].skip_reason, SCHED_REASON_IN_BAND);
    wire_msg_clear(&out);

    assert_int_equal(wire_encode(&m, &buf, &len, err, sizeof(err)), 0);
    respell(buf, len, "no_balloon", "new_reason");
    if (wire_decode(buf, len, &out, err, sizeof(err)) != 0)
        fail_msg("an unknown skip reason refused the report: %s", err);
    assert_int_equal(out.u.report.vms[1].skip_reason, WIRE_SKIP_OTHER);
    wire_msg_clear(&out);

    respell(buf, len, "new_reason", "new reason");
    assert_int_equal(wire_decode(buf, len, &out, err, sizeof(err)), -EINVAL);
    if (!strstr(err, "skip_reason"))
        fail_msg("want an error naming skip_reason, got '%s'", err);
    free(buf);

    vms[1].skip_reason = WIRE_SKIP_OTHER; /* passed on as it came */
    round_trip(&m, &out);
    assert_int_equal(out.u.report.vms[1].skip_reason, WIRE_SKIP_OTHER);
    wire_msg_clear(&out);
}

static void
test_garbage_and_size(void **state)
{
    struct wire_msg m;
    char err[WIRE_ERR_MAX];
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    (void)state;

    assert_int_equal(wire_decode(junk, sizeof(junk), &m, err, sizeof(err)), -EBADMSG);
    assert_int_equal(m.body, 0);
    assert_int_equal(wire_decode(junk, WIRE_MSG_MAX_BYTES + 1, &m, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "bytes"));
    /* An empty buffer is a valid protobuf of nothing: no version, no body. */
    assert_int_equal(wire_decode(junk, 0, &m, err, sizeof(err)), -EBADMSG);
}

static void
test_largest_report(void **state)
{
    struct wire_msg in, out;
    struct wire_vm *vms = calloc(WIRE_VMS_MAX + 1, sizeof(*vms));
    struct wire_decision *ds = calloc(WIRE_VMS_MAX, sizeof(*ds));
    char err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;
    (void)state;

    /* The largest legal report: every VM with the longest name and every field, a decision
     * for each with a VM counterpart. It must fit the message limit and the unpack budget. */
    envelope(&in, WIRE_BODY_REPORT);
    for (size_t i = 0; i <= WIRE_VMS_MAX; i++) {
        snprintf(vms[i].uuid, sizeof(vms[i].uuid), "00000000-0000-4000-8000-%012zx", i);
        memset(vms[i].name, 'n', WIRE_NAME_MAX - 1);
        vms[i].max_kib = vms[i].actual_kib = vms[i].target_kib = SCHED_KIB_MAX;
        vms[i].unused_kib = vms[i].usable_kib = SCHED_KIB_MAX;
        vms[i].has_unused = vms[i].has_usable = true;
        vms[i].stats_age_ms = UINT64_MAX;
        if (i < WIRE_VMS_MAX) {
            snprintf(ds[i].uuid, sizeof(ds[i].uuid), "%s", vms[i].uuid);
            snprintf(ds[i].counterpart, sizeof(ds[i].counterpart), "%s", vms[i].uuid);
            ds[i].reason = SCHED_REASON_NEED_UNMET;
            ds[i].old_target_kib = ds[i].new_target_kib = SCHED_KIB_MAX;
        }
    }
    in.u.report.vms = vms;
    in.u.report.n_vms = WIRE_VMS_MAX;
    in.u.report.decisions = ds;
    in.u.report.n_decisions = WIRE_VMS_MAX;
    if (wire_encode(&in, &buf, &len, err, sizeof(err)) != 0)
        fail_msg("encode: %s", err);
    print_message("largest legal report: %zu bytes\n", len);
    assert_true(len <= WIRE_REQUEST_MAX_BYTES); /* what a server takes in one message */
    free(buf);
    round_trip(&in, &out);
    assert_int_equal(out.u.report.n_vms, WIRE_VMS_MAX);
    assert_int_equal(out.u.report.n_decisions, WIRE_VMS_MAX);
    wire_msg_clear(&out);
    in.u.report.n_vms = WIRE_VMS_MAX + 1;
    assert_int_equal(wire_encode(&in, &buf, &len, err, sizeof(err)), -EINVAL);
    free(vms);
    free(ds);
}

static size_t
put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A report of as many 4-byte VM records (an empty uuid each) as fit in the message limit:
 * about a million records, which protobuf-c would allocate one by one (~250 MB). Decoded in a
 * child process, whose peak RSS is its own. Before the unpack budget: 265 MB peak. */
static void
test_hostile_report_bounded(void **state)
{
    size_t records = (WIRE_MSG_MAX_BYTES - 64) / 4, n = 0;
    size_t report_len = records * 4;
    uint8_t *buf = malloc(WIRE_MSG_MAX_BYTES);
    struct rusage ru;
    int status;
    (void)state;

    n += put_varint(buf + n, 1 << 3 | 0); /* protocol_version = 1 */
    n += put_varint(buf + n, 1);
    buf[n++] = 2 << 3 | 2; /* host_id = "hv1" */
    buf[n++] = 3;
    memcpy(buf + n, "hv1", 3);
    n += 3;
    n += put_varint(buf + n, 3 << 3 | 0); /* sequence = 1 */
    n += put_varint(buf + n, 1);
    n += put_varint(buf + n, 11 << 3 | 2); /* report */
    n += put_varint(buf + n, report_len);
    for (size_t i = 0; i < records; i++) {
        static const uint8_t vm[4] = {3 << 3 | 2, 2, 1 << 3 | 2, 0}; /* vms { uuid: "" } */
        memcpy(buf + n, vm, sizeof(vm));
        n += sizeof(vm);
    }
    assert_true(n <= WIRE_MSG_MAX_BYTES);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct wire_msg m;
        char err[WIRE_ERR_MAX];
        int rc = wire_decode(buf, n, &m, err, sizeof(err));
        printf("hostile report of %zu records: rc=%d %s\n", records, rc, err);
        _exit(rc == -E2BIG ? 0 : 1);
    }
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    print_message("hostile report: %zu bytes, %zu records, child peak RSS %ld KiB\n", n, records,
                  ru.ru_maxrss);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    if (ru.ru_maxrss > 64 * 1024)
        fail_msg("decoding a hostile report peaked at %ld KiB, want < 65536", ru.ru_maxrss);
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_round_trip),
        cmocka_unit_test(test_other_bodies_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_skip_reason),
        cmocka_unit_test(test_garbage_and_size),
        cmocka_unit_test(test_largest_report),
        cmocka_unit_test(test_hostile_report_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
