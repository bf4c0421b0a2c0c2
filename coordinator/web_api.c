/*
 * web_api.c - the dashboard's JSON API: routes and parameter checks (pure), and the loop's
 * answers through control_handle() (see web_api.h).
 */
#include "web_api.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wire_text.h"

#define PARAMS_MAX   3
#define COUNT_DIGITS 19 /* below UINT64_MAX: control parses the value as a number */
#define JSON_TYPE    "application/json"
#define TEXT_TYPE    "text/plain; charset=utf-8"
#define WEB_AUTHOR   "web"

enum param_kind {
    PARAM_HOST,  /* a host id */
    PARAM_VM,    /* a VM's name or uuid */
    PARAM_COUNT, /* a decimal number */
    PARAM_SORT,  /* one of the vms command's sort keys */
};

struct param {
    const char *name; /* the query's name and the control option's */
    enum param_kind kind;
    bool required;
};

struct route {
    const char *path;
    const char *command;
    struct param params[PARAMS_MAX];
};

static const struct route routes[] = {
    {"/api/status", "status", {{NULL}}},
    {"/api/hosts", "hosts", {{"limit", PARAM_COUNT, false}, {"after", PARAM_HOST, false}}},
    {"/api/vms",
     "vms",
     {{"host", PARAM_HOST, false}, {"sort", PARAM_SORT, false}, {"limit", PARAM_COUNT, false}}},
    {"/api/why", "why", {{"host", PARAM_HOST, true}, {"vm", PARAM_VM, true}}},
    {"/api/policy", "policy-show", {{NULL}}},
    {"/api/events", "events", {{"since", PARAM_COUNT, false}, {"limit", PARAM_COUNT, false}}},
    {"/api/history", "history", {{"host", PARAM_HOST, true}}},
};

static const struct route *
route_find(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
    }
    return NULL;
}

static bool
count_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > COUNT_DIGITS)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

static bool
value_valid(enum param_kind kind, const char *value)
{
    switch (kind) {
    case PARAM_HOST:
        return wire_host_id_valid(value);
    case PARAM_VM:
        return value[0] != '-' && wire_text_valid(value, WIRE_ARG_MAX, false);
    case PARAM_COUNT:
        return count_valid(value);
    case PARAM_SORT:
        return strcmp(value, "host") == 0 || strcmp(value, "name") == 0 ||
               strcmp(value, "actual") == 0 || strcmp(value, "unused") == 0;
    }
    return false;
}

static const char *
kind_name(enum param_kind kind)
{
    switch (kind) {
    case PARAM_HOST:
        return "host id ([A-Za-z0-9._-], 1-63)";
    case PARAM_VM:
        return "VM name or uuid";
    case PARAM_COUNT:
        return "number";
    case PARAM_SORT:
        return "sort key (host, name, actual or unused)";
    }
    return "value";
}

static const struct param *
param_find(const struct route *r, const char *name)
{
    for (size_t i = 0; i < PARAMS_MAX && r->params[i].name; i++) {
        if (strcmp(r->params[i].name, name) == 0)
            return &r->params[i];
    }
    return NULL;
}

/* Every parameter known, once, well-formed; every required one there. */
static int
check_params(const struct route *r,
             const char *const *names,
             const char *const *values,
             size_t n,
             char *err,
             size_t err_len)
{
    for (size_t i = 0; i < n; i++) {
        const struct param *p = param_find(r, names[i]);
        if (!p) {
            snprintf(err, err_len, "%s takes no parameter '%.64s'", r->path, names[i]);
            return -EINVAL;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(names[k], names[i]) == 0) {
                snprintf(err, err_len, "%s: '%s' given twice", r->path, p->name);
                return -EINVAL;
            }
        }
        if (!value_valid(p->kind, values[i])) {
            snprintf(err, err_len, "%s: '%s' is not a valid %s", r->path, p->name,
                     kind_name(p->kind));
            return -EINVAL;
        }
    }
    for (size_t k = 0; k < PARAMS_MAX && r->params[k].name; k++) {
        bool given = false;
        for (size_t i = 0; i < n && !given; i++)
            given = strcmp(names[i], r->params[k].name) == 0;
        if (r->params[k].required && !given) {
            snprintf(err, err_len, "%s needs '%s'", r->path, r->params[k].name);
            return -EINVAL;
        }
    }
    return 0;
}

int
web_api_route(const char *path,
              const char *const *names,
              const char *const *values,
              size_t n,
              struct wire_control_request *req,
              char *err,
              size_t err_len)
{
    const struct route *r = route_find(path);

    if (!r) {
        snprintf(err, err_len, "no API at %.64s", path);
        return -ENOENT;
    }
    /* Each parameter is two arguments; PARAMS_MAX of them fit WIRE_ARGS_MAX. */
    if (n > PARAMS_MAX) {
        snprintf(err, err_len, "%s: too many parameters", r->path);
        return -EINVAL;
    }
    int rc = check_params(r, names, values, n, err, err_len);
    if (rc < 0)
        return rc;
    memset(req, 0, sizeof(*req));
    snprintf(req->command, sizeof(req->command), "%s", r->command);
    for (size_t i = 0; i < n; i++) {
        snprintf(req->args[req->n_args++], WIRE_ARG_MAX, "--%s", names[i]);
        snprintf(req->args[req->n_args++], WIRE_ARG_MAX, "%s", values[i]);
    }
    req->json = true;
    snprintf(req->author, sizeof(req->author), WEB_AUTHOR);
    return 0;
}

unsigned
web_api_status(enum control_status status)
{
    switch (status) {
    case CONTROL_OK:
        return 200;
    case CONTROL_USAGE:
    case CONTROL_REFUSED:
        return 400;
    case CONTROL_NOT_FOUND:
        return 404;
    case CONTROL_DENIED:
        return 403;
    case CONTROL_INTERNAL:
    case CONTROL_PENDING:
        break;
    }
    return 500;
}

static void
serve_one(struct http_call *call, const struct control_context *cc)
{
    const char *names[HTTP_ARGS_MAX], *values[HTTP_ARGS_MAX];
    size_t n = http_call_n_args(call);
    struct wire_control_request req;
    char err[WEB_API_ERR_MAX];
    char *body = NULL;

    for (size_t i = 0; i < n; i++) {
        names[i] = http_call_arg_name(call, i);
        values[i] = http_call_arg_value(call, i);
    }
    int rc = web_api_route(http_call_path(call), names, values, n, &req, err, sizeof(err));
    if (rc < 0) {
        strncat(err, "\n", sizeof(err) - strlen(err) - 1);
        http_call_answer(&call, rc == -ENOENT ? 404 : 400, TEXT_TYPE, util_xstrdup(err));
        return;
    }
    enum control_status st = control_handle(cc, &req, &body);
    http_call_answer(&call, web_api_status(st), st == CONTROL_OK ? JSON_TYPE : TEXT_TYPE, body);
}

size_t
web_api_serve(struct http_server *server, const struct control_context *cc)
{
    struct control_context read_only = *cc;
    struct http_call *call;
    size_t n = 0;

    read_only.read_only = true; /* the allowlist holds only reads; this makes sure */
    while ((call = http_server_take(server))) {
        serve_one(call, &read_only);
        n++;
    }
    return n;
}
