/*
 * test_scope.c - the policy scope grammar (common/scope.c): what parses and what does not,
 * the bounds of each part, that wire.c (which checks a pushed scope) agrees on every case,
 * that a refused scope leaves the output alone, and which hosts a scope matches.
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
#include "scope.h"
#include "test_util.h"
#include "wire.h"


/* "<prefix>" followed by n copies of c, in buf. */
static const char *
repeat(char *buf, size_t size, const char *prefix, char c, size_t n)
{
    size_t p = strlen(prefix);

    assert_true(p + n < size);
    memcpy(buf, prefix, p);
    memset(buf + p, c, n);
    buf[p + n] = '\0';
    return buf;
}

static void
test_grammar(void **state)
{
    static const struct {
        const char *text;
        bool valid;
    } cases[] = {
        {"fleet", true},
        {"host:hv-01.rack3", true},
        {"label:rack=r1", true},
        {"label:zone=eu west 1", true},
        {"label:a.b_c-d=x=y", true}, /* the value runs to the end, '=' included */
        {"", false},
        {"Fleet", false},
        {"fleet ", false},
        {"host:", false},
        {"host:bad id", false},
        {"label:", false},
        {"label:rack", false},
        {"label:=v", false},
        {"label:rack=", false},
        {"label:ra ck=v", false},
        {"label:rack=a\tb", false},
        {"cluster:x", false},
    };
    struct scope s;
    (void)state;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int want = cases[i].valid ? 0 : -EINVAL;
        if (scope_parse(cases[i].text, &s) != want)
            fail_msg("scope '%s': want %s", cases[i].text, cases[i].valid ? "valid" : "invalid");
        /* wire.c, which sends the scope, must agree. */
        struct wire_msg m;
        uint8_t *buf = NULL;
        size_t len = 0;
        char err[WIRE_ERR_MAX];
        memset(&m, 0, sizeof(m));
        m.protocol_version = WIRE_PROTOCOL_VERSION;
        strcpy(m.host_id, "coordinator");
        m.body = WIRE_BODY_POLICY_PUSH;
        m.u.push.version = 1;
        snprintf(m.u.push.scope, sizeof(m.u.push.scope), "%s", cases[i].text);
        policy_init_defaults(&m.u.push.policy);
        int rc = wire_encode(&m, &buf, &len, err, sizeof(err));
        if ((rc == 0) != cases[i].valid)
            fail_msg("scope '%s': wire_encode says %d (%s)", cases[i].text, rc, rc ? err : "");
        free(buf);
    }
    char long_value[WIRE_SCOPE_MAX + 8];
    memset(long_value, 'v', sizeof(long_value));
    memcpy(long_value, "label:k=", 8);
    long_value[sizeof(long_value) - 1] = '\0';
    assert_int_equal(scope_parse(long_value, &s), -EINVAL);
    assert_int_equal(scope_parse(NULL, &s), -EINVAL);
}

/* Each part at its longest, and one longer. */
static void
test_bounds(void **state)
{
    char text[2 * WIRE_SCOPE_MAX];
    struct scope s;
    (void)state;

    assert_int_equal(
        scope_parse(repeat(text, sizeof(text), "host:", 'h', WIRE_HOST_ID_MAX - 1), &s), 0);
    assert_int_equal(s.kind, SCOPE_HOST);
    assert_string_equal(s.host_id, text + 5);
    assert_int_equal(scope_parse(repeat(text, sizeof(text), "host:", 'h', WIRE_HOST_ID_MAX), &s),
                     -EINVAL);

    char key[WIRE_LABEL_KEY_MAX + 1];
    repeat(key, sizeof(key), "", 'k', WIRE_LABEL_KEY_MAX - 1);
    snprintf(text, sizeof(text), "label:%s=v", key);
    assert_int_equal(scope_parse(text, &s), 0);
    assert_string_equal(s.label, text + 6);
    repeat(key, sizeof(key), "", 'k', WIRE_LABEL_KEY_MAX);
    snprintf(text, sizeof(text), "label:%s=v", key);
    assert_int_equal(scope_parse(text, &s), -EINVAL);

    /* The longest value: the whole scope (8 + 127 characters) stays under WIRE_SCOPE_MAX. */
    assert_int_equal(
        scope_parse(repeat(text, sizeof(text), "label:k=", 'v', WIRE_LABEL_VALUE_MAX - 1), &s), 0);
    assert_int_equal(strlen(s.label), 2 + WIRE_LABEL_VALUE_MAX - 1);
    assert_int_equal(
        scope_parse(repeat(text, sizeof(text), "label:k=", 'v', WIRE_LABEL_VALUE_MAX), &s),
        -EINVAL);
    assert_int_equal(scope_parse(repeat(text, sizeof(text), "label:k=", 'v', WIRE_SCOPE_MAX), &s),
                     -EINVAL);
}

/* A refused scope leaves *scope as it was. */
static void
test_refused_leaves_output(void **state)
{
    struct scope s;
    (void)state;

    assert_int_equal(scope_parse("host:hv-01", &s), 0);
    assert_int_equal(scope_parse("label:rack=", &s), -EINVAL);
    assert_int_equal(scope_parse(NULL, &s), -EINVAL);
    assert_int_equal(s.kind, SCOPE_HOST);
    assert_string_equal(s.host_id, "hv-01");
}

/* The kinds rank broadest first (control.c orders policies by it). */
static void
test_kinds_rank(void **state)
{
    (void)state;
    assert_true(SCOPE_FLEET < SCOPE_LABEL);
    assert_true(SCOPE_LABEL < SCOPE_HOST);
}

static void
test_matches(void **state)
{
    const char *labels[] = {"rack=r1", "zone=eu west 1"};
    struct scope s;
    (void)state;

    assert_int_equal(scope_parse("fleet", &s), 0);
    assert_true(scope_matches(&s, "any", NULL, 0));
    assert_int_equal(scope_parse("host:hv-01", &s), 0);
    assert_int_equal(s.kind, SCOPE_HOST);
    assert_true(scope_matches(&s, "hv-01", labels, 2));
    assert_false(scope_matches(&s, "hv-011", labels, 2));
    assert_int_equal(scope_parse("label:zone=eu west 1", &s), 0);
    assert_int_equal(s.kind, SCOPE_LABEL);
    assert_string_equal(s.label, "zone=eu west 1");
    assert_true(scope_matches(&s, "hv-01", labels, 2));
    assert_false(scope_matches(&s, "hv-01", labels, 1));
    assert_int_equal(scope_parse("label:rack=r", &s), 0);
    assert_false(scope_matches(&s, "hv-01", labels, 2));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_refused_leaves_output),
        cmocka_unit_test(test_kinds_rank),
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
