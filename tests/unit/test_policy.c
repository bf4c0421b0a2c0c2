/*
 * test_policy.c - the policy table, defaults, validation, parsing and printing (common/policy.c).
 *
 * Every check is written from policy.h and DESIGN.md's parameter table: defaults are the seed's
 * constants, policy_validate() refuses each cross-field rule and each out-of-range field with a
 * message that names the field and its value, and policy_set() refuses garbage without touching
 * the policy. Values in messages are in edge units (MiB, ms, s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "test_util.h"

#define MIB_1T            UINT64_C(1048576)
#define MIB_16T           UINT64_C(16777216)
#define N_PARAMS_EXPECTED 11u

/* The parameter table of DESIGN.md, in edge units. */
struct param_row {
    const char *name;
    enum config_kind kind;
    uint64_t default_value;
    uint64_t min_value;
    uint64_t max_value;
};

static const struct param_row expected_rows[] = {
    {"vm_min_unused_mib", CONFIG_KIND_MIB, 100, 1, MIB_1T},
    {"vm_grow_target_unused_mib", CONFIG_KIND_MIB, 200, 1, MIB_1T},
    {"vm_excess_unused_mib", CONFIG_KIND_MIB, 300, 1, MIB_1T},
    {"max_release_step_mib", CONFIG_KIND_MIB, 64, 1, MIB_1T},
    {"host_min_unused_mib", CONFIG_KIND_MIB, 200, 0, MIB_16T},
    {"vm_floor_mib", CONFIG_KIND_MIB, 256, 0, MIB_1T},
    {"interval_ms", CONFIG_KIND_U32, 1000, 100, 3600000},
    {"stale_stats_s", CONFIG_KIND_U32, 5, 1, 3600},
    {"demand_signal", CONFIG_KIND_ENUM, POLICY_DEMAND_USABLE, POLICY_DEMAND_UNUSED,
     POLICY_DEMAND_USABLE},
    {"reclaim_idle", CONFIG_KIND_BOOL, 1, 0, 1},
    {"predictive", CONFIG_KIND_BOOL, 1, 0, 1},
};

static struct policy
defaults(void)
{
    struct policy p;

    memset(&p, 0, sizeof(p));
    policy_init_defaults(&p);
    return p;
}

/* ---- defaults and the table ---- */

static void
test_defaults_are_the_seed_constants(void **state)
{
    (void)state;
    struct policy p = defaults();

    assert_int_equal(p.vm_min_unused_kib, MIB(100));
    assert_int_equal(p.vm_grow_target_unused_kib, MIB(200));
    assert_int_equal(p.vm_excess_unused_kib, MIB(300));
    assert_int_equal(p.max_release_step_kib, MIB(64));
    assert_int_equal(p.host_min_unused_kib, MIB(200));
    assert_int_equal(p.vm_floor_kib, MIB(256));
    assert_int_equal(p.interval_ms, 1000);
    assert_int_equal(p.stale_stats_s, 5);
    assert_int_equal(p.demand_signal, POLICY_DEMAND_USABLE);
    assert_true(p.reclaim_idle);
    assert_true(p.predictive);
}

static void
test_table_matches_design(void **state)
{
    (void)state;
    size_t count = 0;
    const struct config_key *params = policy_params(&count);

    assert_non_null(params);
    assert_int_equal(count, N_PARAMS_EXPECTED);
    assert_int_equal(ARRAY_SIZE(expected_rows), N_PARAMS_EXPECTED);
    for (size_t i = 0; i < ARRAY_SIZE(expected_rows); i++) {
        const struct param_row *want = &expected_rows[i];
        const struct config_key *got = policy_param_find(want->name);

        if (got == NULL)
            fail_msg("param %s: want a table row, got none", want->name);
        assert_string_equal(got->name, want->name);
        if (got->kind != want->kind || got->default_value != want->default_value ||
            got->min_value != want->min_value || got->max_value != want->max_value)
            fail_msg("param %s: want kind=%d default=%" PRIu64 " min=%" PRIu64 " max=%" PRIu64
                     ", got kind=%d default=%" PRIu64 " min=%" PRIu64 " max=%" PRIu64,
                     want->name, (int)want->kind, want->default_value, want->min_value,
                     want->max_value, (int)got->kind, got->default_value, got->min_value,
                     got->max_value);
        assert_non_null(got->help);
        assert_true(strlen(got->help) > 0);
    }
    /* Names are unique and each row is found by its own name. */
    for (size_t i = 0; i < count; i++) {
        assert_ptr_equal(policy_param_find(params[i].name), &params[i]);
        for (size_t j = i + 1; j < count; j++)
            assert_string_not_equal(params[i].name, params[j].name);
    }
}

static void
test_param_find(void **state)
{
    (void)state;
    const struct config_key *row = policy_param_find("max_release_step_mib");

    assert_non_null(row);
    assert_string_equal(row->name, "max_release_step_mib");
    assert_int_equal(row->offset, offsetof(struct policy, max_release_step_kib));
    assert_null(policy_param_find("no_such_param"));
    assert_null(policy_param_find(""));
    assert_null(policy_param_find("max_release_step_mi"));
    assert_null(policy_param_find("max_release_step_mib "));
    assert_null(policy_param_find("max_release_step_kib"));
}

/* The table's default_value, written where offset says, gives the defaults. */
static void
test_table_defaults_fill_the_struct(void **state)
{
    (void)state;
    size_t count = 0;
    const struct config_key *params = policy_params(&count);
    struct policy want = defaults();
    struct policy got;

    memset(&got, 0, sizeof(got));
    for (size_t i = 0; i < count; i++) {
        char *field = (char *)&got + params[i].offset;

        switch (params[i].kind) {
        case CONFIG_KIND_MIB: {
            uint64_t v = params[i].default_value * UTIL_KIB_PER_MIB;
            memcpy(field, &v, sizeof(v));
            break;
        }
        case CONFIG_KIND_U32: {
            uint32_t v = (uint32_t)params[i].default_value;
            memcpy(field, &v, sizeof(v));
            break;
        }
        case CONFIG_KIND_BOOL: {
            bool v = params[i].default_value != 0;
            memcpy(field, &v, sizeof(v));
            break;
        }
        case CONFIG_KIND_ENUM: {
            enum policy_demand_signal v = (enum policy_demand_signal)params[i].default_value;
            memcpy(field, &v, sizeof(v));
            break;
        }
        case CONFIG_KIND_U64:
        case CONFIG_KIND_STRING:
            fail_msg("param %s: no policy parameter has kind %d", params[i].name,
                     (int)params[i].kind);
        }
    }
    assert_true(policy_equal(&want, &got));
}

static void
test_demand_signal_names(void **state)
{
    (void)state;
    assert_string_equal(policy_demand_signal_name(POLICY_DEMAND_UNUSED), "unused");
    assert_string_equal(policy_demand_signal_name(POLICY_DEMAND_USABLE), "usable");
    assert_non_null(policy_demand_signal_name((enum policy_demand_signal)7));
}

/* ---- validation ---- */

static void
test_validate_accepts_defaults(void **state)
{
    (void)state;
    struct policy p = defaults();
    char err[POLICY_ERR_MAX] = "";

    int rc = policy_validate(&p, err, sizeof(err));
    if (rc != 0)
        fail_msg("defaults: want 0, got %d (%s)", rc, err);
}

static void
test_validate_accepts_edges(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX] = "";
    struct policy lo = defaults();
    struct policy hi = defaults();
    struct policy eq = defaults();
    int rc;

    /* Every field at its lower bound, with the cross rules kept. */
    lo.vm_min_unused_kib = MIB(1);
    lo.vm_grow_target_unused_kib = MIB(2);
    lo.vm_excess_unused_kib = MIB(2); /* grow_target == excess is allowed */
    lo.max_release_step_kib = MIB(1);
    lo.host_min_unused_kib = 0;
    lo.vm_floor_kib = 0;
    lo.interval_ms = 100;
    lo.stale_stats_s = 2; /* 2000 > max(100, 1000) */
    lo.demand_signal = POLICY_DEMAND_UNUSED;
    lo.reclaim_idle = false;
    rc = policy_validate(&lo, err, sizeof(err));
    if (rc != 0)
        fail_msg("lower edges: want 0, got %d (%s)", rc, err);

    /* Every field at its upper bound, with the cross rules kept. */
    hi.vm_min_unused_kib = MIB(MIB_1T - 1);
    hi.vm_grow_target_unused_kib = MIB(MIB_1T);
    hi.vm_excess_unused_kib = MIB(MIB_1T);
    hi.max_release_step_kib = MIB(MIB_1T);
    hi.host_min_unused_kib = MIB(MIB_16T);
    hi.vm_floor_kib = MIB(MIB_1T);
    hi.interval_ms = 3599999; /* 3600 s must exceed it */
    hi.stale_stats_s = 3600;
    rc = policy_validate(&hi, err, sizeof(err));
    if (rc != 0)
        fail_msg("upper edges: want 0, got %d (%s)", rc, err);

    /* stale_stats_s * 1000 just above the interval. */
    eq.interval_ms = 4999;
    eq.stale_stats_s = 5;
    rc = policy_validate(&eq, err, sizeof(err));
    if (rc != 0)
        fail_msg("interval 4999 ms, stale 5 s: want 0, got %d (%s)", rc, err);
}

/* One rejected policy: what to break and which field(s) the message may name. A cross rule may
 * be reported under either of its two fields; the value printed is that field's, in edge units. */
struct reject_case {
    const char *what;
    struct policy p;
    const char *field_a;
    const char *value_a;
    const char *field_b; /* NULL when only field_a may be named */
    const char *value_b;
};

static bool
names_field(const char *err, const char *field, const char *value)
{
    return field != NULL && strstr(err, field) != NULL && strstr(err, value) != NULL;
}

static void
check_reject(const struct reject_case *c)
{
    char err[POLICY_ERR_MAX];
    struct policy copy = c->p;

    memset(err, 0, sizeof(err));
    int rc = policy_validate(&c->p, err, sizeof(err));
    if (rc != -EINVAL)
        fail_msg("%s: want %d (-EINVAL), got %d (err \"%s\")", c->what, -EINVAL, rc, err);
    if (!names_field(err, c->field_a, c->value_a) && !names_field(err, c->field_b, c->value_b))
        fail_msg("%s: want err naming %s=%s%s%s%s, got \"%s\"", c->what, c->field_a, c->value_a,
                 c->field_b ? " or " : "", c->field_b ? c->field_b : "",
                 c->field_b ? c->value_b : "", err);
    assert_memory_equal(&copy, &c->p, sizeof(copy)); /* validate never writes */
}

static void
test_validate_rejects_cross_rules(void **state)
{
    (void)state;
    struct reject_case cases[] = {
        {.what = "min == grow_target",
         .field_a = "vm_min_unused_mib",
         .value_a = "200",
         .field_b = "vm_grow_target_unused_mib",
         .value_b = "200"},
        {.what = "min > grow_target",
         .field_a = "vm_min_unused_mib",
         .value_a = "250",
         .field_b = "vm_grow_target_unused_mib",
         .value_b = "200"},
        {.what = "grow_target > excess",
         .field_a = "vm_grow_target_unused_mib",
         .value_a = "350",
         .field_b = "vm_excess_unused_mib",
         .value_b = "300"},
        {.what = "stale_stats_s * 1000 == interval_ms",
         .field_a = "stale_stats_s",
         .value_a = "5",
         .field_b = "interval_ms",
         .value_b = "5000"},
        {.what = "stale_stats_s * 1000 < interval_ms",
         .field_a = "stale_stats_s",
         .value_a = "5",
         .field_b = "interval_ms",
         .value_b = "60000"},
        {.what = "stale_stats_s * 1000 == 1000 with a short interval",
         .field_a = "stale_stats_s",
         .value_a = "1",
         .field_b = "interval_ms",
         .value_b = "500"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        cases[i].p = defaults();
    cases[0].p.vm_min_unused_kib = MIB(200);
    cases[1].p.vm_min_unused_kib = MIB(250);
    cases[2].p.vm_grow_target_unused_kib = MIB(350);
    cases[3].p.interval_ms = 5000;
    cases[4].p.interval_ms = 60000;
    cases[5].p.interval_ms = 500;
    cases[5].p.stale_stats_s = 1;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        check_reject(&cases[i]);
}

static void
test_validate_rejects_out_of_range(void **state)
{
    (void)state;
    struct reject_case cases[] = {
        {.what = "vm_min_unused 0", .field_a = "vm_min_unused_mib", .value_a = "0"},
        {.what = "vm_excess_unused above 1 TiB",
         .field_a = "vm_excess_unused_mib",
         .value_a = "1048577"},
        {.what = "max_release_step 0", .field_a = "max_release_step_mib", .value_a = "0"},
        {.what = "max_release_step above 1 TiB",
         .field_a = "max_release_step_mib",
         .value_a = "1048577"},
        {.what = "host_min_unused above 16 TiB",
         .field_a = "host_min_unused_mib",
         .value_a = "16777217"},
        {.what = "vm_floor above 1 TiB", .field_a = "vm_floor_mib", .value_a = "1048577"},
        {.what = "interval below 100 ms", .field_a = "interval_ms", .value_a = "99"},
        {.what = "interval above 1 h",
         .field_a = "interval_ms",
         .value_a = "3600001",
         .field_b = "stale_stats_s", /* 3600 s no longer exceeds it either */
         .value_b = "3600"},
        {.what = "stale_stats 0", .field_a = "stale_stats_s", .value_a = "0"},
        {.what = "stale_stats above 1 h", .field_a = "stale_stats_s", .value_a = "3601"},
        {.what = "demand_signal not an enum member", .field_a = "demand_signal", .value_a = "7"},
        {.what = "vm_grow_target above 1 TiB",
         .field_a = "vm_grow_target_unused_mib",
         .value_a = "1048577",
         .field_b = "vm_excess_unused_mib", /* excess must follow it past the bound */
         .value_b = "1048577"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        cases[i].p = defaults();
    cases[0].p.vm_min_unused_kib = 0;
    cases[1].p.vm_excess_unused_kib = MIB(MIB_1T + 1);
    cases[2].p.max_release_step_kib = 0;
    cases[3].p.max_release_step_kib = MIB(MIB_1T + 1);
    cases[4].p.host_min_unused_kib = MIB(MIB_16T + 1);
    cases[5].p.vm_floor_kib = MIB(MIB_1T + 1);
    cases[6].p.interval_ms = 99;
    cases[7].p.interval_ms = 3600001;
    cases[7].p.stale_stats_s = 3600;
    cases[8].p.stale_stats_s = 0;
    cases[9].p.stale_stats_s = 3601;
    cases[10].p.demand_signal = (enum policy_demand_signal)7;
    cases[11].p.vm_grow_target_unused_kib = MIB(MIB_1T + 1);
    cases[11].p.vm_excess_unused_kib = MIB(MIB_1T + 1);

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        check_reject(&cases[i]);
}

/* ---- policy_set ---- */

struct set_ok_case {
    const char *key;
    const char *value;
};

static void
test_set_parses_each_kind(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX] = "";
    struct policy p = defaults();
    struct policy want = defaults();
    const struct set_ok_case sets[] = {
        {"vm_min_unused_mib", "150"},     {"vm_grow_target_unused_mib", "250"},
        {"vm_excess_unused_mib", "4096"}, {"max_release_step_mib", "1"},
        {"host_min_unused_mib", "0"},     {"vm_floor_mib", "1048576"},
        {"interval_ms", "2500"},          {"stale_stats_s", "3600"},
        {"demand_signal", "unused"},      {"reclaim_idle", "false"},
        {"predictive", "false"},
    };

    want.vm_min_unused_kib = MIB(150);
    want.vm_grow_target_unused_kib = MIB(250);
    want.vm_excess_unused_kib = MIB(4096);
    want.max_release_step_kib = MIB(1);
    want.host_min_unused_kib = 0;
    want.vm_floor_kib = MIB(1048576);
    want.interval_ms = 2500;
    want.stale_stats_s = 3600;
    want.demand_signal = POLICY_DEMAND_UNUSED;
    want.reclaim_idle = false;
    want.predictive = false;

    for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
        int rc = policy_set(&p, sets[i].key, sets[i].value, err, sizeof(err));
        if (rc != 0)
            fail_msg("set %s=%s: want 0, got %d (%s)", sets[i].key, sets[i].value, rc, err);
    }
    assert_int_equal(p.vm_min_unused_kib, want.vm_min_unused_kib);
    assert_int_equal(p.vm_grow_target_unused_kib, want.vm_grow_target_unused_kib);
    assert_int_equal(p.vm_excess_unused_kib, want.vm_excess_unused_kib);
    assert_int_equal(p.max_release_step_kib, want.max_release_step_kib);
    assert_int_equal(p.host_min_unused_kib, want.host_min_unused_kib);
    assert_int_equal(p.vm_floor_kib, want.vm_floor_kib);
    assert_int_equal(p.interval_ms, want.interval_ms);
    assert_int_equal(p.stale_stats_s, want.stale_stats_s);
    assert_int_equal(p.demand_signal, want.demand_signal);
    assert_false(p.reclaim_idle);
    assert_true(policy_equal(&p, &want));
}

static void
test_set_booleans(void **state)
{
    (void)state;
    const char *const yes[] = {"true", "yes", "on", "1"};
    const char *const no[] = {"false", "no", "off", "0"};
    char err[POLICY_ERR_MAX] = "";
    struct policy p = defaults();

    for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
        p.reclaim_idle = true;
        int rc = policy_set(&p, "reclaim_idle", no[i], err, sizeof(err));
        if (rc != 0 || p.reclaim_idle)
            fail_msg("reclaim_idle=%s: want rc 0 and false, got rc %d and %d (%s)", no[i], rc,
                     (int)p.reclaim_idle, err);
    }
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        p.reclaim_idle = false;
        int rc = policy_set(&p, "reclaim_idle", yes[i], err, sizeof(err));
        if (rc != 0 || !p.reclaim_idle)
            fail_msg("reclaim_idle=%s: want rc 0 and true, got rc %d and %d (%s)", yes[i], rc,
                     (int)p.reclaim_idle, err);
    }
    assert_int_equal(policy_set(&p, "demand_signal", "unused", err, sizeof(err)), 0);
    assert_int_equal(p.demand_signal, POLICY_DEMAND_UNUSED);
}

/* Parameter bounds only: cross rules are policy_validate's, so set accepts this. */
static void
test_set_leaves_cross_rules_to_validate(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX] = "";
    struct policy p = defaults();

    assert_int_equal(policy_set(&p, "vm_min_unused_mib", "250", err, sizeof(err)), 0);
    assert_int_equal(p.vm_min_unused_kib, MIB(250));
    assert_int_equal(policy_validate(&p, err, sizeof(err)), -EINVAL);
}

struct set_bad_case {
    const char *key;
    const char *value;
};

static void
test_set_rejects_bad_values(void **state)
{
    (void)state;
    const struct set_bad_case bad[] = {
        {"vm_min_unused_mib", "12abc"},
        {"vm_min_unused_mib", ""},
        {"vm_min_unused_mib", "-1"},
        {"vm_min_unused_mib", "99999999999999999999"},
        {"vm_min_unused_mib", "18446744073709551616"}, /* 2^64 */
        {"vm_min_unused_mib", "18014398509481984"},    /* 2^54: KiB would overflow */
        {"vm_min_unused_mib", "1.5"},
        {"vm_min_unused_mib", "abc"},
        {"vm_min_unused_mib", "0"},
        {"vm_min_unused_mib", "1048577"},
        {"vm_grow_target_unused_mib", "1048577"},
        {"vm_excess_unused_mib", "0"},
        {"max_release_step_mib", "0"},
        {"max_release_step_mib", "1048577"},
        {"host_min_unused_mib", "16777217"},
        {"host_min_unused_mib", "-5"},
        {"vm_floor_mib", "1048577"},
        {"interval_ms", "99"},
        {"interval_ms", "3600001"},
        {"interval_ms", "4294967296"}, /* 2^32: would wrap a uint32 */
        {"interval_ms", "4294967396"}, /* 2^32 + 100: wraps to a valid 100 */
        {"interval_ms", "1000ms"},
        {"stale_stats_s", "0"},
        {"stale_stats_s", "3601"},
        {"stale_stats_s", "-1"},
        {"stale_stats_s", ""},
        {"reclaim_idle", "maybe"},
        {"reclaim_idle", ""},
        {"reclaim_idle", "2"},
        {"reclaim_idle", "truex"},
        {"demand_signal", "free"},
        {"demand_signal", ""},
        {"demand_signal", "0"},
        {"demand_signal", "unusedx"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct policy p;
        struct policy before;
        char err[POLICY_ERR_MAX];

        p = defaults();
        p.vm_min_unused_kib = MIB(50); /* not the defaults, so a reset would show */
        memcpy(&before, &p, sizeof(p));
        memset(err, 0, sizeof(err));
        int rc = policy_set(&p, bad[i].key, bad[i].value, err, sizeof(err));
        if (rc != -EINVAL)
            fail_msg("set %s=\"%s\": want %d (-EINVAL), got %d", bad[i].key, bad[i].value, -EINVAL,
                     rc);
        if (memcmp(&before, &p, sizeof(p)) != 0)
            fail_msg("set %s=\"%s\": want p unchanged, got it modified", bad[i].key, bad[i].value);
        if (strstr(err, bad[i].key) == NULL)
            fail_msg("set %s=\"%s\": want err naming the key, got \"%s\"", bad[i].key, bad[i].value,
                     err);
    }
}

static void
test_set_unknown_key(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX] = "";
    struct policy p = defaults();
    struct policy before;

    memcpy(&before, &p, sizeof(p));
    assert_int_equal(policy_set(&p, "no_such_param", "1", err, sizeof(err)), -ENOENT);
    assert_memory_equal(&before, &p, sizeof(p));
    assert_int_equal(policy_set(&p, "", "1", err, sizeof(err)), -ENOENT);
    assert_int_equal(policy_set(&p, "VM_MIN_UNUSED_MIB", "1", err, sizeof(err)), -ENOENT);
    assert_memory_equal(&before, &p, sizeof(p));
}

/* ---- policy_get ---- */

static void
test_get_prints_defaults(void **state)
{
    (void)state;
    struct policy p = defaults();
    const struct set_ok_case want[] = {
        {"vm_min_unused_mib", "100"},    {"vm_grow_target_unused_mib", "200"},
        {"vm_excess_unused_mib", "300"}, {"max_release_step_mib", "64"},
        {"host_min_unused_mib", "200"},  {"vm_floor_mib", "256"},
        {"interval_ms", "1000"},         {"stale_stats_s", "5"},
        {"demand_signal", "usable"},     {"reclaim_idle", "true"},
        {"predictive", "true"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        char buf[64] = "";
        int rc = policy_get(&p, want[i].key, buf, sizeof(buf));
        if (rc != 0 || strcmp(buf, want[i].value) != 0)
            fail_msg("get %s: want rc 0 \"%s\", got rc %d \"%s\"", want[i].key, want[i].value, rc,
                     buf);
    }
    char buf[64] = "";
    assert_int_equal(policy_get(&p, "no_such_param", buf, sizeof(buf)), -ENOENT);
}

/* A value of each parameter's kind that is not its default and is within its bounds. */
static void
other_value(const struct config_key *row, char *buf, size_t len)
{
    switch (row->kind) {
    case CONFIG_KIND_MIB:
    case CONFIG_KIND_U32:
        snprintf(buf, len, "%" PRIu64,
                 row->default_value == row->max_value ? row->min_value : row->max_value);
        break;
    case CONFIG_KIND_BOOL:
        snprintf(buf, len, "%s", row->default_value ? "false" : "true");
        break;
    case CONFIG_KIND_ENUM:
        snprintf(buf, len, "%s", row->default_value == POLICY_DEMAND_UNUSED ? "usable" : "unused");
        break;
    case CONFIG_KIND_U64:
    case CONFIG_KIND_STRING:
        fail_msg("param %s: no policy parameter has kind %d", row->name, (int)row->kind);
    }
}

static void
test_get_set_round_trip_every_param(void **state)
{
    (void)state;
    size_t count = 0;
    const struct config_key *params = policy_params(&count);
    char err[POLICY_ERR_MAX] = "";

    for (size_t i = 0; i < count; i++) {
        const char *key = params[i].name;
        char value[64];
        char got[64] = "";
        struct policy p = defaults();
        struct policy q = defaults();
        int rc;

        /* Defaults: get, then set the printed value on a copy: nothing changes. */
        rc = policy_get(&p, key, got, sizeof(got));
        if (rc != 0)
            fail_msg("get %s: want 0, got %d", key, rc);
        rc = policy_set(&q, key, got, err, sizeof(err));
        if (rc != 0 || !policy_equal(&p, &q))
            fail_msg("set %s=\"%s\" (its own default): want rc 0 and no change, got rc %d (%s)",
                     key, got, rc, err);

        /* Another value: set, get back the same text. */
        other_value(&params[i], value, sizeof(value));
        rc = policy_set(&p, key, value, err, sizeof(err));
        if (rc != 0)
            fail_msg("set %s=\"%s\": want 0, got %d (%s)", key, value, rc, err);
        if (policy_equal(&p, &q))
            fail_msg("set %s=\"%s\": want a changed policy, got the defaults", key, value);
        rc = policy_get(&p, key, got, sizeof(got));
        if (rc != 0 || strcmp(got, value) != 0)
            fail_msg("get %s: want rc 0 \"%s\", got rc %d \"%s\"", key, value, rc, got);
    }
}

/* ---- policy_equal ---- */

static void
test_equal(void **state)
{
    (void)state;
    struct policy a = defaults();
    struct policy b = defaults();

    assert_true(policy_equal(&a, &b));
    assert_true(policy_equal(&a, &a));

    struct policy changed[11];
    for (size_t i = 0; i < ARRAY_SIZE(changed); i++)
        changed[i] = defaults();
    changed[0].vm_min_unused_kib += 1;
    changed[1].vm_grow_target_unused_kib += 1;
    changed[2].vm_excess_unused_kib += 1;
    changed[3].max_release_step_kib += 1;
    changed[4].host_min_unused_kib += 1;
    changed[5].vm_floor_kib += 1;
    changed[6].interval_ms += 1;
    changed[7].stale_stats_s += 1;
    changed[8].demand_signal = POLICY_DEMAND_UNUSED;
    changed[9].reclaim_idle = false;
    changed[10].predictive = false;
    for (size_t i = 0; i < ARRAY_SIZE(changed); i++) {
        if (policy_equal(&a, &changed[i]) || policy_equal(&changed[i], &a))
            fail_msg("field #%zu changed: want not equal, got equal", i);
    }

    /* Padding does not matter, only values. */
    struct policy c;
    struct policy d;
    memset(&c, 0x00, sizeof(c));
    memset(&d, 0xa5, sizeof(d));
    policy_init_defaults(&c);
    policy_init_defaults(&d);
    assert_true(policy_equal(&c, &d));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_seed_constants),
        cmocka_unit_test(test_table_matches_design),
        cmocka_unit_test(test_param_find),
        cmocka_unit_test(test_table_defaults_fill_the_struct),
        cmocka_unit_test(test_demand_signal_names),
        cmocka_unit_test(test_validate_accepts_defaults),
        cmocka_unit_test(test_validate_accepts_edges),
        cmocka_unit_test(test_validate_rejects_cross_rules),
        cmocka_unit_test(test_validate_rejects_out_of_range),
        cmocka_unit_test(test_set_parses_each_kind),
        cmocka_unit_test(test_set_booleans),
        cmocka_unit_test(test_set_leaves_cross_rules_to_validate),
        cmocka_unit_test(test_set_rejects_bad_values),
        cmocka_unit_test(test_set_unknown_key),
        cmocka_unit_test(test_get_prints_defaults),
        cmocka_unit_test(test_get_set_round_trip_every_param),
        cmocka_unit_test(test_equal),
    };

    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
