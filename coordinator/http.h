/*
 * http.h - the coordinator's HTTP listener (metrics_listen): serves the newest published
 * document at GET /metrics. The only module that touches libmicrohttpd; its types stay here.
 *
 * Threads: libmicrohttpd answers on one internal thread of its own. The coordinator's loop
 * never waits for HTTP and the HTTP thread never touches the fleet: the loop publishes a
 * finished, immutable document (http_server_publish), the thread hands out the newest one. The
 * handover is a pointer swap under a mutex with a reference count, so a slow scraper keeps
 * the document it started with while a newer one is published, and the last reader frees it.
 * Requests are counted (an atomic), so the loop builds documents only while someone reads them.
 */
#ifndef MEMSCHED_COORDINATOR_HTTP_H
#define MEMSCHED_COORDINATOR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_ERR_MAX 256

struct http_server;

/* Parse metrics_listen: "http://ADDR:PORT" (ADDR an IPv4 address, or an IPv6 one in
 * brackets), or "PORT" / ":PORT" for loopback (127.0.0.1). PORT 0 takes a free port. Returns 0
 * or -EINVAL with err. */
int http_listen_parse(const char *text,
                      struct sockaddr_storage *addr,
                      socklen_t *addr_len,
                      char *err,
                      size_t err_len);

/* Listen on text (http_listen_parse) and serve: 503 at /metrics until the first publish.
 * Returns 0 or -errno with err (a bad address, a port in use). */
int http_server_open(const char *text,
                     const char *content_type,
                     struct http_server **out,
                     char *err,
                     size_t err_len);

/* Stop the thread (waits for it) and free what is published. NULL-safe; nulls *server. */
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

#endif /* MEMSCHED_COORDINATOR_HTTP_H */
