/*
 * web_api.h - the dashboard's read-only JSON API: which GET /api/... path is which control
 * command, with which query parameters, and the loop's side of the HTTP handover.
 *
 * Only the routes below reach control_handle() (an allowlist), always as a read-only JSON
 * request: a dashboard can never change a policy or forget a host, whatever it asks. Every
 * query parameter is checked here before control_handle() sees it (a host id by the wire's
 * rules, a VM name by the text rules, counts as decimal numbers); an unknown or repeated one is
 * refused.
 *
 *   /api/status                          status
 *   /api/hosts?limit=N&after=HOST        hosts --limit N --after HOST
 *   /api/vms?host=H&sort=K&limit=N       vms --host H --sort K --limit N
 *   /api/why?host=H&vm=V                 why --host H --vm V (host and vm required)
 *   /api/policy                          policy-show
 *   /api/events?since=SEQ&limit=N        events --since SEQ --limit N
 *   /api/history?host=H                  history --host H (host required)
 */
#ifndef MEMSCHED_COORDINATOR_WEB_API_H
#define MEMSCHED_COORDINATOR_WEB_API_H

#include <stddef.h>

#include "control.h"
#include "http.h"
#include "wire.h"

#define WEB_API_ERR_MAX 256

/* The control request for path with query parameters names[i]=values[i] (i < n): command and
 * "--name value" arguments, json set, nothing else. Returns 0, -ENOENT (no such route) or
 * -EINVAL (a parameter unknown, repeated, missing or malformed) with err. Pure. */
int web_api_route(const char *path,
                  const char *const *names,
                  const char *const *values,
                  size_t n,
                  struct wire_control_request *req,
                  char *err,
                  size_t err_len);

/* The HTTP status for a control status: 200, 400, 404, 403 or 500. */
unsigned web_api_status(enum control_status status);

/* On the loop: answer every call waiting on server through control_handle(cc as given, but
 * read-only). Returns how many were answered. */
size_t web_api_serve(struct http_server *server, const struct control_context *cc);

#endif /* MEMSCHED_COORDINATOR_WEB_API_H */
