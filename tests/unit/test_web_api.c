/*
 * test_web_api.c - the dashboard API's routes (coordinator/web_api.c): each path's command and
 * arguments, always JSON; unknown paths, unknown, repeated, missing and malformed parameters
 * refused before control_handle() could see them; the HTTP status of each control status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "web_api.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct route_case {
    const char *path;
    const char *names[4];
    const char *values[4];
    size_t n;
    int want_rc;
    const char *want_command; /* when want_rc is 0 */
    const char *want_args;    /* the arguments joined by spaces */
    const char *want_err;     /* a part of err when want_rc < 0 */
};

static const struct route_case cases[] = {
    {"/api/status", {NULL}, {NULL}, 0, 0, "status", "", NULL},
    {"/api/hosts",
     {"limit", "after"},
     {"50", "hv-1.a_b"},
     2,
     0,
     "hosts",
     "--limit 50 --after hv-1.a_b",
     NULL},
    {"/api/hosts", {NULL}, {NULL}, 0, 0, "hosts", "", NULL},
    {"/api/vms",
     {"host", "sort", "limit"},
     {"hv1", "unused", "20"},
     3,
     0,
     "vms",
     "--host hv1 --sort unused --limit 20",
     NULL},
    {"/api/why",
     {"host", "vm"},
     {"hv1", "web server 1"},
     2,
     0,
     "why",
     "--host hv1 --vm web server 1",
     NULL},
    {"/api/policy", {NULL}, {NULL}, 0, 0, "policy-show", "", NULL},
    {"/api/events",
     {"since", "limit"},
     {"12", "100"},
     2,
     0,
     "events",
     "--since 12 --limit 100",
     NULL},
    {"/api/history", {"host"}, {"hv1"}, 1, 0, "history", "--host hv1", NULL},
    /* Not routes: writes and anything else. */
    {"/api/policy-set", {NULL}, {NULL}, 0, -ENOENT, NULL, NULL, "no API"},
    {"/api/hosts-forget", {"host"}, {"hv1"}, 1, -ENOENT, NULL, NULL, "no API"},
    {"/api/", {NULL}, {NULL}, 0, -ENOENT, NULL, NULL, "no API"},
    {"/api/status/", {NULL}, {NULL}, 0, -ENOENT, NULL, NULL, "no API"},
    /* Parameters. */
    {"/api/status", {"limit"}, {"1"}, 1, -EINVAL, NULL, NULL, "takes no parameter 'limit'"},
    {"/api/hosts", {"sort"}, {"vms"}, 1, -EINVAL, NULL, NULL, "takes no parameter 'sort'"},
    {"/api/hosts", {"limit", "limit"}, {"1", "2"}, 2, -EINVAL, NULL, NULL, "given twice"},
    {"/api/hosts", {"limit"}, {"-1"}, 1, -EINVAL, NULL, NULL, "not a valid number"},
    {"/api/hosts", {"limit"}, {""}, 1, -EINVAL, NULL, NULL, "not a valid number"},
    {"/api/hosts",
     {"limit"},
     {"12345678901234567890"},
     1,
     -EINVAL,
     NULL,
     NULL,
     "not a valid number"},
    {"/api/hosts", {"after"}, {"--limit"}, 1, 0, "hosts", "--after --limit", NULL},
    {"/api/hosts", {"after"}, {"a/b"}, 1, -EINVAL, NULL, NULL, "not a valid host id"},
    {"/api/vms", {"host"}, {"hv 1"}, 1, -EINVAL, NULL, NULL, "not a valid host id"},
    {"/api/vms", {"sort"}, {"random"}, 1, -EINVAL, NULL, NULL, "not a valid sort key"},
    {"/api/why", {"host"}, {"hv1"}, 1, -EINVAL, NULL, NULL, "needs 'vm'"},
    {"/api/why", {"host", "vm"}, {"hv1", "--json"}, 2, -EINVAL, NULL, NULL, "not a valid VM"},
    {"/api/why", {"host", "vm"}, {"hv1", "a\nb"}, 2, -EINVAL, NULL, NULL, "not a valid VM"},
    {"/api/history", {NULL}, {NULL}, 0, -EINVAL, NULL, NULL, "needs 'host'"},
    {"/api/hosts", {"a", "b", "c", "d"}, {"1", "2", "3", "4"}, 4, -EINVAL, NULL, NULL, "too many"},
};

static void
join_args(const struct wire_control_request *req, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < req->n_args; i++) {
        if (i)
            strncat(out, " ", len - strlen(out) - 1);
        strncat(out, req->args[i], len - strlen(out) - 1);
    }
}

static void
test_routes(void **state)
{
    (void)state;

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const struct route_case *c = &cases[i];
        struct wire_control_request req;
        char err[WEB_API_ERR_MAX] = "", args[1024];
        int rc = web_api_route(c->path, c->names, c->values, c->n, &req, err, sizeof(err));
        if (rc != c->want_rc)
            fail_msg("case %zu %s: want rc %d, got %d (%s)", i, c->path, c->want_rc, rc, err);
        if (rc < 0) {
            if (!strstr(err, c->want_err))
                fail_msg("case %zu %s: want an error with '%s', got '%s'", i, c->path, c->want_err,
                         err);
            continue;
        }
        join_args(&req, args, sizeof(args));
        if (strcmp(req.command, c->want_command) != 0 || strcmp(args, c->want_args) != 0)
            fail_msg("case %zu %s: want '%s %s', got '%s %s'", i, c->path, c->want_command,
                     c->want_args, req.command, args);
        assert_true(req.json);
        assert_string_equal(req.author, "web");
    }
}

static void
test_status(void **state)
{
    (void)state;

    assert_int_equal(web_api_status(CONTROL_OK), 200);
    assert_int_equal(web_api_status(CONTROL_USAGE), 400);
    assert_int_equal(web_api_status(CONTROL_REFUSED), 400);
    assert_int_equal(web_api_status(CONTROL_NOT_FOUND), 404);
    assert_int_equal(web_api_status(CONTROL_DENIED), 403);
    assert_int_equal(web_api_status(CONTROL_INTERNAL), 500);
    assert_int_equal(web_api_status(CONTROL_PENDING), 500);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
