/*
 * http.c - the HTTP listener on libmicrohttpd (see http.h).
 *
 * Owns the MHD daemon, its thread and the published document (struct doc). A doc is shared by
 * the server (the current one) and every response made from it; each holds one reference,
 * taken and dropped under the mutex, and the last one calls the publisher's release.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define LOG_MODULE         "http"
#define CONNECTIONS_MAX    64 /* scrapers and dashboards, not the public */
#define CONNECTION_TIMEOUT 30 /* seconds an idle connection is kept */
#define PORT_MAX           65535
#define LOOPBACK           "127.0.0.1"
#define NOT_READY_TEXT     "no metrics document yet: one is being written, ask again in a second\n"
#define NOT_FOUND_TEXT     "not found: try /metrics\n"
#define METHOD_NOT_ALLOWED "only GET and HEAD\n"

struct doc {
    struct MHD_IoVec *iov;
    size_t n;
    unsigned refs; /* under http_server.lock */
    void (*release)(void *ctx);
    void *ctx;
};

struct http_server {
    struct MHD_Daemon *mhd;
    pthread_mutex_t lock;
    struct doc *current; /* NULL before the first publish */
    const char *content_type;
    atomic_uint_fast64_t requests;
    uint16_t port;
};

/* A reference to a doc and the server whose lock guards it: what a response's free callback
 * gets. */
struct doc_ref {
    struct http_server *server;
    struct doc *doc;
};

/* ---- the address ---- */

static int
parse_port(const char *text, uint16_t *port)
{
    uint64_t v = 0;

    if (!*text)
        return -EINVAL;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || v > PORT_MAX)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > PORT_MAX)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* host and port of "ADDR:PORT" or "[ADDR6]:PORT" into their own strings. */
static int
split_host_port(const char *text, char *host, size_t host_len, const char **port)
{
    const char *colon;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= host_len)
            return -EINVAL;
        snprintf(host, host_len, "%.*s", (int)(close - text - 1), text + 1);
        *port = close + 2;
        return 0;
    }
    colon = strchr(text, ':');
    if (!colon || strchr(colon + 1, ':') || (size_t)(colon - text) >= host_len)
        return -EINVAL; /* an IPv6 address without brackets: where would its port start? */
    snprintf(host, host_len, "%.*s", (int)(colon - text), text);
    *port = colon + 1;
    return 0;
}

int
http_listen_parse(
    const char *text, struct sockaddr_storage *addr, socklen_t *addr_len, char *err, size_t err_len)
{
    char host[INET6_ADDRSTRLEN] = LOOPBACK;
    const char *port_text = text[0] == ':' ? text + 1 : text;
    uint16_t port;
    int rc = 0;

    if (strncmp(text, "http://", 7) == 0)
        rc = split_host_port(text + 7, host, sizeof(host), &port_text);
    if (rc == 0)
        rc = parse_port(port_text, &port);
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (rc == 0 && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *addr_len = sizeof(*v4);
    } else if (rc == 0 && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *addr_len = sizeof(*v6);
    } else {
        snprintf(err, err_len,
                 "'%.200s': want http://ADDR:PORT (an IP address, IPv6 in brackets) or a port",
                 text);
        return -EINVAL;
    }
    return 0;
}

/* ---- documents ---- */

static void
doc_unref(struct http_server *s, struct doc *d)
{
    bool last;

    if (!d)
        return;
    pthread_mutex_lock(&s->lock);
    last = --d->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last)
        return;
    if (d->release)
        d->release(d->ctx);
    free(d->iov);
    free(d);
}

static void
response_done(void *cls)
{
    struct doc_ref *ref = cls;

    doc_unref(ref->server, ref->doc);
    free(ref);
}

void
http_server_publish(struct http_server *s,
                    const char *const *parts,
                    const size_t *lens,
                    size_t n,
                    void (*release)(void *ctx),
                    void *ctx)
{
    struct doc *d = util_xcalloc(1, sizeof(*d)), *old;

    d->iov = util_xcalloc(n ? n : 1, sizeof(*d->iov));
    for (size_t i = 0; i < n; i++)
        d->iov[i] = (struct MHD_IoVec){.iov_base = parts[i], .iov_len = lens[i]};
    d->n = n;
    d->refs = 1; /* the server's */
    d->release = release;
    d->ctx = ctx;
    pthread_mutex_lock(&s->lock);
    old = s->current;
    s->current = d;
    pthread_mutex_unlock(&s->lock);
    doc_unref(s, old);
}

void
http_server_withdraw(struct http_server *s)
{
    struct doc *old;

    pthread_mutex_lock(&s->lock);
    old = s->current;
    s->current = NULL;
    pthread_mutex_unlock(&s->lock);
    doc_unref(s, old);
}

/* ---- answers ---- */

static enum MHD_Result
answer_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result
answer_metrics(struct http_server *s, struct MHD_Connection *c)
{
    struct doc_ref *ref = util_xcalloc(1, sizeof(*ref));
    struct MHD_Response *r = NULL;
    enum MHD_Result rc;

    pthread_mutex_lock(&s->lock);
    ref->server = s;
    ref->doc = s->current;
    if (ref->doc)
        ref->doc->refs++;
    pthread_mutex_unlock(&s->lock);
    if (!ref->doc) {
        free(ref);
        return answer_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, NOT_READY_TEXT);
    }
    r = MHD_create_response_from_iovec(ref->doc->iov, (unsigned)ref->doc->n, response_done, ref);
    if (!r) {
        response_done(ref);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, s->content_type);
    rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r); /* the connection keeps its own reference until it is sent */
    return rc;
}

/* libmicrohttpd's access handler, on its thread: GET or HEAD, nothing read from the body. */
static enum MHD_Result
answer(void *cls,
       struct MHD_Connection *c,
       const char *url,
       const char *method,
       const char *version,
       const char *upload_data,
       size_t *upload_data_size,
       void **req_cls)
{
    struct http_server *s = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;

    atomic_fetch_add(&s->requests, 1);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED);
    if (strcmp(url, "/metrics") == 0)
        return answer_metrics(s, c);
    return answer_text(c, MHD_HTTP_NOT_FOUND, NOT_FOUND_TEXT);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's complaints (a port in use, a broken connection), as our log lines. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[512];
    (void)cls;

    vsnprintf(text, sizeof(text), fmt, ap);
    text[strcspn(text, "\n")] = '\0';
    log_warn(LOG_MODULE, "event=http_error why=\"%s\"", text);
}

/* ---- life cycle ---- */

int
http_server_open(
    const char *text, const char *content_type, struct http_server **out, char *err, size_t err_len)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    int rc = http_listen_parse(text, &addr, &addr_len, err, err_len);

    if (rc < 0)
        return rc;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct http_server *s = util_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->content_type = content_type;
    atomic_init(&s->requests, 0);
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                              NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)CONNECTION_TIMEOUT, MHD_OPTION_END);
    if (!s->mhd) {
        rc = errno ? -errno : -EADDRINUSE;
        snprintf(err, err_len, "cannot listen on %.200s: %s", text, strerror(-rc));
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return 0;
}

void
http_server_close(struct http_server **server)
{
    struct http_server *s = server ? *server : NULL;

    if (!s)
        return;
    MHD_stop_daemon(s->mhd); /* joins the thread: every response is gone after this */
    doc_unref(s, s->current);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *server = NULL;
}

uint16_t
http_server_port(const struct http_server *s)
{
    return s->port;
}

uint64_t
http_server_requests(const struct http_server *s)
{
    return atomic_load(&((struct http_server *)s)->requests);
}
