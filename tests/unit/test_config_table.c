/*
 * test_config_table.c - the config-table engine (common/config_table.c) on a table of every
 * kind: defaults, set (parsing, bounds, no change on failure), format, bounds checking,
 * equality, and config_print (common/config.c) read back by the config parser.
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
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_table.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum color { COLOR_RED, COLOR_GREEN, COLOR_BLUE };

static const char *const color_names[] = {"red", "green", "blue"};

struct sample {
    char name[16];
    char note[16];
    bool flag;
    uint64_t count;
    uint32_t small;
    uint64_t mem_kib;
    enum color color;
};

static const struct config_key rows[] = {
    {
        .name = "name",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct sample, name),
        .size = sizeof(((struct sample *)0)->name),
        .default_text = "anon",
        .min_value = 1,
        .help = "a name, 1 to 15 characters",
    },
    {
        .name = "note",
        .kind = CONFIG_KIND_STRING,
        .offset = offsetof(struct sample, note),
        .size = sizeof(((struct sample *)0)->note),
        .default_text = "",
        .help = "a note; empty: none",
    },
    {
        .name = "flag",
        .kind = CONFIG_KIND_BOOL,
        .offset = offsetof(struct sample, flag),
        .default_value = 1,
        .max_value = 1,
        .help = "a switch",
    },
    {
        .name = "count",
        .kind = CONFIG_KIND_U64,
        .offset = offsetof(struct sample, count),
        .default_value = 10,
        .min_value = 5,
        .max_value = UINT64_C(10000000000),
        .help = "a 64-bit number",
    },
    {
        .name = "small_ms",
        .kind = CONFIG_KIND_U32,
        .offset = offsetof(struct sample, small),
        .default_value = 100,
        .min_value = 0,
        .max_value = 1000,
        .help = "a 32-bit number",
    },
    {
        .name = "mem_mib",
        .kind = CONFIG_KIND_MIB,
        .offset = offsetof(struct sample, mem_kib),
        .default_value = 64,
        .min_value = 1,
        .max_value = 1048576,
        .help = "memory, KiB inside",
    },
    {
        .name = "color",
        .kind = CONFIG_KIND_ENUM,
        .offset = offsetof(struct sample, color),
        .default_value = COLOR_GREEN,
        .min_value = COLOR_RED,
        .max_value = COLOR_BLUE,
        .names = color_names,
        .help = "red, green or blue",
    },
};

static const struct config_table table = {rows, ARRAY_SIZE(rows), NULL};
static const struct config_table named = {rows, ARRAY_SIZE(rows), "sample"};

static struct sample
defaults(void)
{
    struct sample s;

    memset(&s, 0, sizeof(s));
    config_defaults(&table, &s);
    return s;
}

static void
test_defaults_fill_every_field(void **state)
{
    (void)state;
    struct sample s;

    memset(&s, 0xa5, sizeof(s));
    config_defaults(&table, &s);
    assert_string_equal(s.name, "anon");
    assert_string_equal(s.note, "");
    assert_true(s.flag);
    assert_int_equal(s.count, 10);
    assert_int_equal(s.small, 100);
    assert_int_equal(s.mem_kib, 64 * 1024);
    assert_int_equal(s.color, COLOR_GREEN);
    char err[256] = "";
    if (config_check_bounds(&table, &s, err, sizeof(err)) != 0)
        fail_msg("defaults: want within bounds, got \"%s\"", err);
}

struct ok_case {
    const char *key;
    const char *value;
    const char *printed; /* what config_format gives back */
};

static void
test_set_each_kind_and_format_back(void **state)
{
    (void)state;
    const struct ok_case cases[] = {
        {"name", "x", "x"},
        {"name", "fifteen-chars-x", "fifteen-chars-x"},
        {"note", "", ""},
        {"flag", "off", "false"},
        {"flag", "YES", "true"},
        {"flag", "0", "false"},
        {"count", "5", "5"},
        {"count", "10000000000", "10000000000"},
        {"count", "007", "7"},
        {"small_ms", "0", "0"},
        {"small_ms", "1000", "1000"},
        {"mem_mib", "1", "1"},
        {"mem_mib", "1048576", "1048576"},
        {"color", "blue", "blue"},
        {"color", "red", "red"},
    };
    char err[256], got[64];

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct sample s = defaults();
        int rc = config_set(&table, &s, cases[i].key, cases[i].value, err, sizeof(err));
        if (rc != 0)
            fail_msg("set %s=\"%s\": want 0, got %d (%s)", cases[i].key, cases[i].value, rc, err);
        config_format(config_key_find(&table, cases[i].key), &s, got, sizeof(got));
        if (strcmp(got, cases[i].printed) != 0)
            fail_msg("set %s=\"%s\": want it printed as \"%s\", got \"%s\"", cases[i].key,
                     cases[i].value, cases[i].printed, got);
    }
    struct sample s = defaults();
    assert_int_equal(config_set(&table, &s, "mem_mib", "3", err, sizeof(err)), 0);
    assert_int_equal(s.mem_kib, 3 * 1024); /* KiB inside */
}

struct bad_case {
    const char *key;
    const char *value;
    const char *want; /* in the message */
};

static void
test_set_refuses_and_leaves_the_struct(void **state)
{
    (void)state;
    const struct bad_case cases[] = {
        {"name", "", "name: must be 1 to 15 characters"},
        {"name", "sixteen-chars-xx", "name: must be 1 to 15 characters"},
        {"note", "sixteen-chars-xx", "note: longer than 15 characters"},
        {"flag", "maybe", "flag='maybe' is not a valid boolean"},
        {"flag", "", "flag='' is not a valid boolean"},
        {"flag", "2", "flag='2'"},
        {"count", "4", "count='4' out of range [5, 10000000000]"},
        {"count", "10000000001", "count='10000000001' out of range"},
        {"count", "18446744073709551616", "count='18446744073709551616' is not a valid whole"},
        {"count", "-1", "count='-1' is not a valid whole number"},
        {"count", "+5", "count='+5'"},
        {"count", "1.5", "count='1.5'"},
        {"count", "12abc", "count='12abc'"},
        {"count", " 12", "count=' 12'"},
        {"count", "", "count=''"},
        {"small_ms", "1001", "small_ms='1001' out of range [0, 1000]"},
        {"small_ms", "4294967296", "small_ms='4294967296' out of range"}, /* would wrap */
        {"mem_mib", "0", "mem_mib='0' out of range [1, 1048576]"},
        {"mem_mib", "18014398509481984", "mem_mib='18014398509481984' out of range"},
        {"mem_mib", "1 KiB", "mem_mib='1 KiB' is not a valid whole number"},
        {"color", "purple", "color='purple' must be red, green or blue"},
        {"color", "1", "color='1' must be red, green or blue"},
        {"color", "Red", "color='Red'"},
    };
    char err[256];

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct sample s = defaults(), before;
        s.count = 77; /* not a default, so a reset would show */
        before = s;
        err[0] = '\0';
        int rc = config_set(&table, &s, cases[i].key, cases[i].value, err, sizeof(err));
        if (rc != -EINVAL)
            fail_msg("set %s=\"%s\": want -EINVAL, got %d", cases[i].key, cases[i].value, rc);
        if (memcmp(&s, &before, sizeof(s)) != 0)
            fail_msg("set %s=\"%s\": want the struct unchanged, got it modified", cases[i].key,
                     cases[i].value);
        if (!strstr(err, cases[i].want))
            fail_msg("set %s=\"%s\": want an error containing \"%s\", got \"%s\"", cases[i].key,
                     cases[i].value, cases[i].want, err);
    }
}

static void
test_unknown_key_and_prefix(void **state)
{
    (void)state;
    struct sample s = defaults(), before = s;
    char err[256];

    assert_int_equal(config_set(&table, &s, "nope", "1", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "unknown key 'nope'");
    assert_int_equal(config_set(&named, &s, "nope", "1", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "sample: unknown parameter 'nope'");
    assert_int_equal(config_set(&table, &s, "Count", "6", err, sizeof(err)), -ENOENT);
    assert_int_equal(config_set(&table, &s, "", "6", err, sizeof(err)), -ENOENT);
    assert_memory_equal(&s, &before, sizeof(s));
    assert_int_equal(config_set(&named, &s, "count", "x", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "sample: count='x' is not a valid whole number");
    assert_null(config_key_find(&table, "nope"));
    assert_ptr_equal(config_key_find(&table, "color"), &rows[6]);
}

/* Bounds over a whole struct: the first field outside, named with its value; MiB fields must be
 * whole MiB (they print as "N KiB" otherwise, which set refuses). */
static void
test_check_bounds(void **state)
{
    (void)state;
    char err[256], got[64];
    struct sample s = defaults();

    s.mem_kib = 1536;
    config_format(config_key_find(&table, "mem_mib"), &s, got, sizeof(got));
    assert_string_equal(got, "1536 KiB");
    assert_int_equal(config_check_bounds(&named, &s, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "sample: mem_mib=1536 KiB out of range [1, 1048576] (whole MiB)");

    s = defaults();
    s.count = 4;
    s.small = 2000;
    assert_int_equal(config_check_bounds(&table, &s, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "count=4 out of range [5, 10000000000]"); /* the first one */

    s = defaults();
    s.color = (enum color)7;
    assert_int_equal(config_check_bounds(&table, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "color=7"));

    s = defaults();
    s.name[0] = '\0';
    assert_int_equal(config_check_bounds(&table, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "name"));
}

static void
test_equal_walks_every_field(void **state)
{
    (void)state;
    struct sample a, b;

    /* Padding and garbage after a string's NUL do not count. */
    memset(&a, 0x00, sizeof(a));
    memset(&b, 0x5a, sizeof(b));
    config_defaults(&table, &a);
    config_defaults(&table, &b);
    assert_true(config_equal(&table, &a, &b));

    struct sample changed[7];
    for (size_t i = 0; i < ARRAY_SIZE(changed); i++)
        changed[i] = a;
    strcpy(changed[0].name, "other");
    strcpy(changed[1].note, "n");
    changed[2].flag = false;
    changed[3].count++;
    changed[4].small++;
    changed[5].mem_kib++; /* one KiB: not visible in MiB, still a difference */
    changed[6].color = COLOR_BLUE;
    assert_int_equal(ARRAY_SIZE(changed), ARRAY_SIZE(rows));
    for (size_t i = 0; i < ARRAY_SIZE(changed); i++) {
        if (config_equal(&table, &a, &changed[i]) || config_equal(&table, &changed[i], &a))
            fail_msg("field %s changed: want not equal, got equal", rows[i].name);
    }
}

static void
test_parsers(void **state)
{
    (void)state;
    uint64_t v = 1;
    bool b = false;

    assert_int_equal(config_parse_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    v = 3;
    assert_int_equal(config_parse_u64("18446744073709551616", &v), -EINVAL);
    assert_int_equal(config_parse_u64("99999999999999999999", &v), -EINVAL);
    assert_int_equal(config_parse_u64("", &v), -EINVAL);
    assert_int_equal(config_parse_u64("1k", &v), -EINVAL);
    assert_int_equal(config_parse_u64("0x10", &v), -EINVAL);
    assert_int_equal(v, 3); /* untouched on failure */
    assert_int_equal(config_parse_bool("On", &b), 0);
    assert_true(b);
    assert_int_equal(config_parse_bool("FALSE", &b), 0);
    assert_false(b);
    assert_int_equal(config_parse_bool("truex", &b), -EINVAL);
}

/* print -> parse gives the same struct, for the defaults and for values of every kind; the
 * defaults appear in the help comments when asked for. */
static void
test_print_round_trip(void **state)
{
    (void)state;
    const char *const sets[][2] = {
        {"name", "printed"}, {"note", "two words"}, {"flag", "no"},    {"count", "12345"},
        {"small_ms", "0"},   {"mem_mib", "2048"},   {"color", "blue"},
    };
    char err[256];
    struct sample values = defaults();

    for (size_t i = 0; i < ARRAY_SIZE(sets); i++)
        assert_int_equal(config_set(&table, &values, sets[i][0], sets[i][1], err, sizeof(err)), 0);
    const struct sample *cases[] = {&values, NULL};
    struct sample defs = defaults();
    cases[1] = &defs;

    for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
        for (int with_defaults = 0; with_defaults < 2; with_defaults++) {
            char *text = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&text, &len);
            assert_non_null(f);
            config_print(&table, cases[c], with_defaults, f);
            assert_int_equal(fclose(f), 0);

            struct sample back;
            memset(&back, 0, sizeof(back));
            config_defaults(&table, &back);
            strcpy(back.name, "reset");
            back.count = 999;
            struct config_binding bind = {&table, &back};
            int rc = config_parse_text(text, "printed", config_bound_set, &bind, err, sizeof(err));
            if (rc != 0 || !config_equal(&table, cases[c], &back))
                fail_msg("case %zu: want the printed text to read back equal, got rc %d (%s):\n%s",
                         c, rc, err, text);
            if (with_defaults && !strstr(text, "# memory, KiB inside (default 64)\nmem_mib = "))
                fail_msg("want the help with its default above the key, got:\n%s", text);
            if (!with_defaults && strstr(text, "(default"))
                fail_msg("want no defaults, got:\n%s", text);
            free(text);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_fill_every_field),
        cmocka_unit_test(test_set_each_kind_and_format_back),
        cmocka_unit_test(test_set_refuses_and_leaves_the_struct),
        cmocka_unit_test(test_unknown_key_and_prefix),
        cmocka_unit_test(test_check_bounds),
        cmocka_unit_test(test_equal_walks_every_field),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_print_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
