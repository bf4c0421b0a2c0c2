/*
 * http.h - the coordinator's HTTP listener (metrics_listen): serves the newest published
 * document at GET /metrics, the dashboard's files (held in memory, by exact path) and hands
 * GET /api/... requests to the coordinator's loop. The only module that touches libmicrohttpd;
 * its types stay here.
 *
 * Threads: libmicrohttpd answers on one internal thread of its own. The coordinator's loop
 * never waits for HTTP and the HTTP thread never touches the fleet: the loop publishes a
 * finished, immutable document (http_server_publish), the thread hands out the newest one. The
 * handover is a pointer swap under a mutex with a reference count, so a slow scraper keeps
 * the document it started with while a newer one is published, and the last reader frees it.
 * Requests are counted (an atomic), so the loop builds documents only while someone reads them.
 *
 * API calls (paths under /api/) need the fleet, so the HTTP thread answers none of them itself:
 * it copies the path and query into a call, suspends the connection, queues the call (at most
 * HTTP_CALLS_MAX wait; more are answered 503 at once) and makes http_server_wake_fd() readable.
 * The loop polls that fd, takes calls (http_server_take) and answers each (http_call_answer),
 * which resumes its connection. A call that waited HTTP_CALL_TIMEOUT_MS (or the timeout given
 * in the options) is answered 504 by
 * whichever side sees it first (the loop when it takes calls, the HTTP thread on each new
 * request), so a busy loop costs clients an error, never a hung connection or unbounded memory.
 */
#ifndef MEMSCHED_COORDINATOR_HTTP_H
#define MEMSCHED_COORDINATOR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_ERR_MAX         256
#define HTTP_CALLS_MAX       32   /* API calls waiting for the loop; more get 503 */
#define HTTP_CALL_TIMEOUT_MS 5000 /* a call waiting longer is answered 504 */
#define HTTP_ARGS_MAX        8    /* query parameters of one call; more get 400 */
#define HTTP_ARG_MAX         256  /* a parameter's name or value, with the NUL; longer get 400 */
#define HTTP_PATH_MAX        64   /* an API path, with the NUL; longer get 404 */

struct http_server;
struct http_call;

/* A file served as it is: path is what the URL asks for ("/index.html"; "/" asks for
 * "/index.html"). */
struct http_file {
    const char *path;
    const char *content_type;
    const void *bytes;
    size_t len;
};

struct http_options {
    const char *listen;            /* http_listen_parse() */
    const char *content_type;      /* of the /metrics document */
    const struct http_file *files; /* borrowed until http_server_close(); may be NULL */
    size_t n_files;
    bool api;                 /* hand /api/... to the loop (http_server_take); else 404 */
    unsigned call_timeout_ms; /* 0: HTTP_CALL_TIMEOUT_MS */
};

/* Parse metrics_listen: "http://ADDR:PORT" (ADDR an IPv4 address, or an IPv6 one in
 * brackets), or "PORT" / ":PORT" for loopback (127.0.0.1). PORT 0 takes a free port. Returns 0
 * or -EINVAL with err. */
int http_listen_parse(const char *text,
                      struct sockaddr_storage *addr,
                      socklen_t *addr_len,
                      char *err,
                      size_t err_len);

/* Listen on o->listen and serve: 503 at /metrics until the first publish, o's files, and with
 * o->api the API calls. Returns 0 or -errno with err (a bad address, a port in use). */
int http_server_open_with(const struct http_options *o,
                          struct http_server **out,
                          char *err,
                          size_t err_len);

/* http_server_open_with() for /metrics alone. */
int http_server_open(const char *text,
                     const char *content_type,
                     struct http_server **out,
                     char *err,
                     size_t err_len);

/* Stop the thread (waits for it) and free what is published; calls still queued are answered
 * 503 first. Call it from the thread that takes calls, with none taken and unanswered.
 * NULL-safe; nulls *server. */
void http_server_close(struct http_server **server);

/* The port it listens on (the one chosen for port 0). */
uint16_t http_server_port(const struct http_server *server);

/* Publish a document: the concatenation of parts[0..n) (lens bytes each). The server takes
 * ownership of the bytes behind parts: release(ctx) is called once no request reads them any
 * more (maybe at once, maybe on the HTTP thread, at the latest in http_server_close). The
 * parts and lens arrays themselves are copied. */
void http_server_publish(struct http_server *server,
                         const char *const *parts,
                         const size_t *lens,
                         size_t n,
                         void (*release)(void *ctx),
                         void *ctx);

/* Withdraw the published document (it is released once no request reads it): /metrics answers
 * 503 again until the next publish. */
void http_server_withdraw(struct http_server *server);

/* Requests answered so far (any path); read from any thread. */
uint64_t http_server_requests(const struct http_server *server);

/* ---- API calls (o->api), taken and answered by the loop ---- */

/* Readable (level-triggered) while calls wait: poll it with the loop's sockets. */
int http_server_wake_fd(const struct http_server *server);

/* The oldest waiting call, or NULL when none waits (the wake fd is quiet again then). Expired
 * calls are answered 504 on the way. The caller owns the call until http_call_answer(). */
struct http_call *http_server_take(struct http_server *server);

/* The path asked for ("/api/hosts", without the query) and its query parameters in the order
 * given, decoded (a parameter without '=' has the value ""). Borrowed until the answer. */
const char *http_call_path(const struct http_call *call);
size_t http_call_n_args(const struct http_call *call);
const char *http_call_arg_name(const struct http_call *call, size_t i);
const char *http_call_arg_value(const struct http_call *call, size_t i);

/* Answer the call and resume its connection: status (200, 400, ...) with body (takes ownership
 * of it; NULL for none) of content_type (a string that outlives the server). Nulls *call. */
void
http_call_answer(struct http_call **call, unsigned status, const char *content_type, char *body);

#endif /* MEMSCHED_COORDINATOR_HTTP_H */
