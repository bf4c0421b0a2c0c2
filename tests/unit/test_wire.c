/*
 * test_wire.c - the Policy message on the wire (common/wire.c).
 *
 * Round trips go through wire_encode_policy(); malformed and hostile inputs are written by hand
 * as protobuf bytes (tag = field << 3 | wire type, varints little-endian base 128), so this test
 * needs no protobuf-c of its own. What wire.h promises: absent fields keep their defaults, the
 * result passes policy_validate(), -EBADMSG for malformed bytes, -EINVAL for an invalid policy,
 * err says why, and *p is untouched on any failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "test_util.h"
#include "wire.h"


/* Policy field numbers of proto/memsched.proto. */
enum {
    F_VM_MIN_UNUSED = 1,
    F_VM_GROW_TARGET = 2,
    F_VM_EXCESS = 3,
    F_MAX_RELEASE_STEP = 4,
    F_HOST_MIN_UNUSED = 5,
    F_VM_FLOOR = 6,
    F_INTERVAL = 7,
    F_STALE_STATS = 8,
    F_DEMAND_SIGNAL = 9,
    F_RECLAIM_IDLE = 10,
};

/* A hand-written protobuf message. */
struct msg {
    uint8_t bytes[128];
    size_t len;
};

static void
put_varint(struct msg *m, uint64_t v)
{
    do {
        assert_true(m->len < sizeof(m->bytes));
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        m->bytes[m->len++] = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
}

static void
put_tag(struct msg *m, unsigned field)
{
    put_varint(m, (uint64_t)field << 3 | 0); /* wire type 0: varint */
}

static void
put_varint_field(struct msg *m, unsigned field, uint64_t v)
{
    put_tag(m, field);
    put_varint(m, v);
}

static struct policy
defaults(void)
{
    struct policy p;

    memset(&p, 0, sizeof(p));
    policy_init_defaults(&p);
    return p;
}

/* A valid policy with every field away from its default. */
static struct policy
non_default(void)
{
    struct policy p = defaults();

    p.vm_min_unused_kib = MIB(150);
    p.vm_grow_target_unused_kib = MIB(400);
    p.vm_excess_unused_kib = MIB(900);
    p.max_release_step_kib = MIB(128);
    p.host_min_unused_kib = MIB(16777216);
    p.vm_floor_kib = 0;
    p.interval_ms = 2500;
    p.stale_stats_s = 30;
    p.demand_signal = POLICY_DEMAND_USABLE;
    p.reclaim_idle = false;
    return p;
}

static void
assert_policy_eq(const char *what, const struct policy *want, const struct policy *got)
{
    if (policy_equal(want, got))
        return;
    print_error("%s: policies differ (want / got):\n", what);
    print_error("  vm_min_unused_kib         %llu / %llu\n",
                (unsigned long long)want->vm_min_unused_kib,
                (unsigned long long)got->vm_min_unused_kib);
    print_error("  vm_grow_target_unused_kib %llu / %llu\n",
                (unsigned long long)want->vm_grow_target_unused_kib,
                (unsigned long long)got->vm_grow_target_unused_kib);
    print_error("  vm_excess_unused_kib      %llu / %llu\n",
                (unsigned long long)want->vm_excess_unused_kib,
                (unsigned long long)got->vm_excess_unused_kib);
    print_error("  max_release_step_kib      %llu / %llu\n",
                (unsigned long long)want->max_release_step_kib,
                (unsigned long long)got->max_release_step_kib);
    print_error("  host_min_unused_kib       %llu / %llu\n",
                (unsigned long long)want->host_min_unused_kib,
                (unsigned long long)got->host_min_unused_kib);
    print_error("  vm_floor_kib              %llu / %llu\n", (unsigned long long)want->vm_floor_kib,
                (unsigned long long)got->vm_floor_kib);
    print_error("  interval_ms               %u / %u\n", want->interval_ms, got->interval_ms);
    print_error("  stale_stats_s             %u / %u\n", want->stale_stats_s, got->stale_stats_s);
    print_error("  demand_signal             %d / %d\n", (int)want->demand_signal,
                (int)got->demand_signal);
    print_error("  reclaim_idle              %d / %d\n", (int)want->reclaim_idle,
                (int)got->reclaim_idle);
    fail_msg("%s: want equal policies", what);
}

/* Decode buf expecting success; p starts as a valid policy unlike the expected one. */
static void
decode_ok(const char *what, const uint8_t *buf, size_t len, const struct policy *want)
{
    char err[WIRE_ERR_MAX] = "";
    struct policy got = non_default();

    if (policy_equal(&got, want)) {
        got = defaults();
        got.interval_ms = 1234;
    }
    int rc = wire_decode_policy(buf, len, &got, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: want 0, got %d (%s)", what, rc, err);
    assert_policy_eq(what, want, &got);
}

/* Decode buf expecting failure rc_want, err naming err_has (or err_or when not NULL); p must
 * come back byte for byte as it went in. */
static void
decode_fails(const char *what,
             const uint8_t *buf,
             size_t len,
             int rc_want,
             const char *err_has,
             const char *err_or)
{
    char err[WIRE_ERR_MAX];
    struct policy p;
    struct policy before;

    memset(err, 0, sizeof(err));
    memset(&p, 0x5a, sizeof(p)); /* garbage, so any write shows */
    memcpy(&before, &p, sizeof(p));
    int rc = wire_decode_policy(buf, len, &p, err, sizeof(err));
    if (rc != rc_want)
        fail_msg("%s: want %d, got %d (err \"%s\")", what, rc_want, rc, err);
    if (memcmp(&before, &p, sizeof(p)) != 0)
        fail_msg("%s: want p untouched on failure, got it modified", what);
    if (err[0] == '\0')
        fail_msg("%s: want err saying why, got an empty string", what);
    if (err_has != NULL && strstr(err, err_has) == NULL &&
        (err_or == NULL || strstr(err, err_or) == NULL))
        fail_msg("%s: want err naming \"%s\"%s%s, got \"%s\"", what, err_has, err_or ? " or " : "",
                 err_or ? err_or : "", err);
}

static void
round_trip(const char *what, const struct policy *p)
{
    uint8_t *buf = NULL;
    size_t len = 0;

    int rc = wire_encode_policy(p, &buf, &len);
    if (rc != 0)
        fail_msg("%s: encode: want 0, got %d", what, rc);
    /* An empty message would decode to the defaults too and prove nothing. */
    assert_non_null(buf);
    assert_true(len > 0);
    decode_ok(what, buf, len, p);
    free(buf);
}

static void
test_round_trip_defaults(void **state)
{
    (void)state;
    struct policy p = defaults();

    round_trip("defaults", &p);
}

static void
test_round_trip_non_default(void **state)
{
    (void)state;
    struct policy p = non_default();
    char err[POLICY_ERR_MAX] = "";

    assert_int_equal(policy_validate(&p, err, sizeof(err)), 0);
    round_trip("non-default", &p);

    /* Each field alone away from its default. */
    const struct policy all = non_default();
    struct policy one[10];
    for (size_t i = 0; i < ARRAY_SIZE(one); i++)
        one[i] = defaults();
    one[0].vm_min_unused_kib = MIB(1);
    one[1].vm_grow_target_unused_kib = MIB(300);
    one[2].vm_excess_unused_kib = MIB(1048576);
    one[3].max_release_step_kib = all.max_release_step_kib;
    one[4].host_min_unused_kib = 0; /* zero must survive, not read as "absent" */
    one[5].vm_floor_kib = 0;
    one[6].interval_ms = 100;
    one[7].stale_stats_s = 3600;
    one[8].demand_signal = POLICY_DEMAND_USABLE;
    one[9].reclaim_idle = false;
    for (size_t i = 0; i < ARRAY_SIZE(one); i++) {
        char what[64];

        snprintf(what, sizeof(what), "field #%zu alone", i);
        assert_int_equal(policy_validate(&one[i], err, sizeof(err)), 0);
        round_trip(what, &one[i]);
    }
}

static void
test_empty_buffer_is_the_defaults(void **state)
{
    (void)state;
    static const uint8_t empty[1] = {0};
    struct policy want = defaults();

    decode_ok("empty buffer", empty, 0, &want);
}

static void
test_absent_fields_keep_defaults(void **state)
{
    (void)state;
    struct msg m = {.len = 0};
    struct policy want = defaults();

    put_varint_field(&m, F_MAX_RELEASE_STEP, 128);
    put_varint_field(&m, F_RECLAIM_IDLE, 0);
    want.max_release_step_kib = MIB(128);
    want.reclaim_idle = false;
    decode_ok("two fields present", m.bytes, m.len, &want);

    /* A zero on the wire is a value, not an absence. */
    m.len = 0;
    want = defaults();
    put_varint_field(&m, F_HOST_MIN_UNUSED, 0);
    put_varint_field(&m, F_VM_FLOOR, 0);
    want.host_min_unused_kib = 0;
    want.vm_floor_kib = 0;
    decode_ok("explicit zeros", m.bytes, m.len, &want);

    /* Every field, in MiB / ms / s on the wire. */
    m.len = 0;
    want = non_default();
    put_varint_field(&m, F_VM_MIN_UNUSED, 150);
    put_varint_field(&m, F_VM_GROW_TARGET, 400);
    put_varint_field(&m, F_VM_EXCESS, 900);
    put_varint_field(&m, F_MAX_RELEASE_STEP, 128);
    put_varint_field(&m, F_HOST_MIN_UNUSED, 16777216);
    put_varint_field(&m, F_VM_FLOOR, 0);
    put_varint_field(&m, F_INTERVAL, 2500);
    put_varint_field(&m, F_STALE_STATS, 30);
    put_varint_field(&m, F_DEMAND_SIGNAL, 1);
    put_varint_field(&m, F_RECLAIM_IDLE, 0);
    decode_ok("every field by hand", m.bytes, m.len, &want);
}

static void
test_garbage_is_ebadmsg(void **state)
{
    (void)state;
    static const uint8_t all_ff[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t truncated_varint[] = {0x08, 0x80}; /* field 1, value never ends */
    static const uint8_t tag_without_value[] = {0x08};
    static const uint8_t length_past_end[] = {0x5a, 0x10, 'a', 'b'}; /* field 11, 16 bytes */
    static const uint8_t field_zero[] = {0x00, 0x01};
    static const uint8_t text[] = "vm_min_unused_mib=100";
    static const uint8_t overlong_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0xff, 0xff, 0x01};

    decode_fails("all 0xff", all_ff, sizeof(all_ff), -EBADMSG, NULL, NULL);
    decode_fails("truncated varint", truncated_varint, sizeof(truncated_varint), -EBADMSG, NULL,
                 NULL);
    decode_fails("tag without value", tag_without_value, sizeof(tag_without_value), -EBADMSG, NULL,
                 NULL);
    decode_fails("length past the end", length_past_end, sizeof(length_past_end), -EBADMSG, NULL,
                 NULL);
    decode_fails("field number 0", field_zero, sizeof(field_zero), -EBADMSG, NULL, NULL);
    decode_fails("plain text", text, sizeof(text) - 1, -EBADMSG, NULL, NULL);
    decode_fails("overlong varint", overlong_varint, sizeof(overlong_varint), -EBADMSG, NULL, NULL);

    /* A valid message cut short in its last value. */
    struct msg m = {.len = 0};
    put_varint_field(&m, F_MAX_RELEASE_STEP, 128);
    put_varint_field(&m, F_HOST_MIN_UNUSED, 300); /* two-byte varint */
    decode_fails("valid message cut short", m.bytes, m.len - 1, -EBADMSG, NULL, NULL);
}

/* Encode a struct filled by hand, bypassing validation: the decoder is the gate. */
static void
encode_invalid_then_decode(const char *what,
                           const struct policy *bad,
                           const char *field,
                           const char *field_or)
{
    char err[POLICY_ERR_MAX] = "";
    uint8_t *buf = NULL;
    size_t len = 0;

    assert_int_equal(policy_validate(bad, err, sizeof(err)), -EINVAL);
    int rc = wire_encode_policy(bad, &buf, &len);
    if (rc != 0)
        fail_msg("%s: encode: want 0 (encode does not validate), got %d", what, rc);
    decode_fails(what, buf, len, -EINVAL, field, field_or);
    free(buf);
}

static void
test_invalid_policy_is_einval(void **state)
{
    (void)state;
    struct policy p;

    /* min >= grow_target: the message may name either side of the rule. */
    p = defaults();
    p.vm_min_unused_kib = MIB(250);
    p.vm_grow_target_unused_kib = MIB(200);
    encode_invalid_then_decode("min > grow_target", &p, "vm_min_unused_mib",
                               "vm_grow_target_unused_mib");

    p = defaults();
    p.max_release_step_kib = 0;
    encode_invalid_then_decode("release step 0", &p, "max_release_step_mib", NULL);

    p = defaults();
    p.host_min_unused_kib = MIB(16777217);
    encode_invalid_then_decode("host_min above 16 TiB", &p, "host_min_unused_mib", NULL);

    p = defaults();
    p.interval_ms = 99;
    encode_invalid_then_decode("interval below 100 ms", &p, "interval_ms", NULL);

    p = defaults();
    p.stale_stats_s = 0;
    encode_invalid_then_decode("stale_stats 0", &p, "stale_stats_s", NULL);
}

/* Values that only fit once converted carelessly: MiB on the wire, KiB inside. */
static void
test_hostile_values(void **state)
{
    (void)state;
    struct msg m;

    /* 2^54 + 100 MiB is 2^64 + 100 MiB in KiB: wrapping would give a valid 100 MiB. */
    m.len = 0;
    put_varint_field(&m, F_VM_MIN_UNUSED, (UINT64_C(1) << 54) + 100);
    decode_fails("vm_min_unused 2^54 + 100 MiB", m.bytes, m.len, -EINVAL, "vm_min_unused_mib",
                 NULL);

    m.len = 0;
    put_varint_field(&m, F_VM_FLOOR, UINT64_MAX);
    decode_fails("vm_floor 2^64 - 1 MiB", m.bytes, m.len, -EINVAL, "vm_floor_mib", NULL);

    m.len = 0;
    put_varint_field(&m, F_MAX_RELEASE_STEP, 0);
    decode_fails("release step 0 on the wire", m.bytes, m.len, -EINVAL, "max_release_step_mib",
                 NULL);

    m.len = 0;
    put_varint_field(&m, F_STALE_STATS, 1); /* 1000 ms does not exceed a 1000 ms round */
    decode_fails("stale_stats 1 s", m.bytes, m.len, -EINVAL, "stale_stats_s", NULL);
}

/* An enum value the schema does not know: refused either as malformed or as invalid. */
static void
test_unknown_demand_signal(void **state)
{
    (void)state;
    struct msg m = {.len = 0};
    char err[WIRE_ERR_MAX] = "";
    struct policy p = non_default();
    struct policy before;

    put_varint_field(&m, F_DEMAND_SIGNAL, 7);
    memcpy(&before, &p, sizeof(p));
    int rc = wire_decode_policy(m.bytes, m.len, &p, err, sizeof(err));
    if (rc != -EINVAL && rc != -EBADMSG)
        fail_msg("demand_signal 7: want -EINVAL or -EBADMSG, got %d (%s)", rc, err);
    assert_memory_equal(&before, &p, sizeof(p));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_defaults),
        cmocka_unit_test(test_round_trip_non_default),
        cmocka_unit_test(test_empty_buffer_is_the_defaults),
        cmocka_unit_test(test_absent_fields_keep_defaults),
        cmocka_unit_test(test_garbage_is_ebadmsg),
        cmocka_unit_test(test_invalid_policy_is_einval),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_unknown_demand_signal),
    };

    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
