/*
 * http.c - the HTTP listener on libmicrohttpd (see http.h).
 *
 * Owns the MHD daemon, its thread and the published document (struct doc). A doc is shared by
 * the server (the current one) and every response made from it; each holds one reference,
 * taken and dropped under the mutex, and the last one calls the publisher's release.
 *
 * An API call belongs to its connection (MHD's per-request pointer) from its first headers to
 * MHD's "request completed" callback, which frees it. While it waits for the loop its
 * connection is suspended, so that callback cannot run: the queue and the loop borrow it
 * safely. The queue, a call's state and every suspend and resume happen under the mutex, so a
 * call is never resumed before it is suspended nor answered twice.
 */
#include "http.h"

#include <arpa/inet.h>
#include <assert.h>
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
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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
#define API_PREFIX         "/api/"
#define BUSY_TEXT          "busy: too many API calls wait for the coordinator, ask again soon\n"
#define TIMEOUT_TEXT       "the coordinator did not answer in time, ask again soon\n"
#define CLOSING_TEXT       "the coordinator is stopping\n"
#define BAD_QUERY_TEXT     "bad query: too many or too long parameters\n"
#define TEXT_TYPE          "text/plain; charset=utf-8"
#define CLOSE_WAIT_S       1 /* the longest a close waits for answers to go out */

enum call_state {
    CALL_QUEUED,   /* suspended, in the queue */
    CALL_TAKEN,    /* suspended, the loop's */
    CALL_ANSWERED, /* resumed (or about to be) with status and body */
};

struct http_call {
    struct http_server *server;
    struct MHD_Connection *connection;
    enum call_state state;
    uint64_t queued_ms; /* monotonic */
    char path[HTTP_PATH_MAX];
    size_t n_args;
    char names[HTTP_ARGS_MAX][HTTP_ARG_MAX];
    char values[HTTP_ARGS_MAX][HTTP_ARG_MAX];
    bool bad_query; /* too many or too long parameters */
    unsigned status;
    const char *content_type;
    char *body;
};

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
    const struct http_file *files; /* borrowed */
    size_t n_files;
    bool api;
    uint64_t call_timeout_ms;
    int wake_fd;                             /* an eventfd: non-zero while calls wait */
    struct http_call *queue[HTTP_CALLS_MAX]; /* oldest first; under lock */
    size_t n_queued;
    bool closing;              /* under lock: no call is queued any more */
    size_t live_calls;         /* under lock: calls not yet completed (sent or dropped) */
    pthread_cond_t calls_done; /* signalled when live_calls drops to 0 */
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

/* ---- files ---- */

static enum MHD_Result
answer_file(struct http_server *s, struct MHD_Connection *c, const char *url)
{
    const char *path = strcmp(url, "/") == 0 ? "/index.html" : url;

    for (size_t i = 0; i < s->n_files; i++) {
        const struct http_file *f = &s->files[i];
        if (strcmp(f->path, path) != 0)
            continue;
        struct MHD_Response *r =
            MHD_create_response_from_buffer(f->len, (void *)f->bytes, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        /* The pages load nothing from elsewhere and run no inline script. */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return rc;
    }
    return answer_text(c, MHD_HTTP_NOT_FOUND, NOT_FOUND_TEXT);
}

/* ---- API calls ---- */

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
wake(struct http_server *s)
{
    uint64_t one = 1;

    if (write(s->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is full, so the fd is readable anyway. */
    }
}

static void
quiet(struct http_server *s)
{
    uint64_t count;

    if (read(s->wake_fd, &count, sizeof(count)) < 0) {
        /* EAGAIN: already quiet. */
    }
}

/* Under s->lock: set the answer and resume the connection, whose handler then sends it. */
static void
settle(struct http_call *call, unsigned status, const char *content_type, char *body)
{
    call->state = CALL_ANSWERED;
    call->status = status;
    call->content_type = content_type;
    call->body = body;
    MHD_resume_connection(call->connection);
}

/* Under s->lock: answer 504 to the queued calls that waited too long (the oldest are first). */
static void
expire(struct http_server *s, uint64_t now)
{
    size_t n = 0;

    while (n < s->n_queued && now - s->queue[n]->queued_ms >= s->call_timeout_ms)
        settle(s->queue[n++], MHD_HTTP_GATEWAY_TIMEOUT, TEXT_TYPE, util_xstrdup(TIMEOUT_TEXT));
    memmove(s->queue, s->queue + n, (s->n_queued - n) * sizeof(s->queue[0]));
    s->n_queued -= n;
}

static enum MHD_Result
copy_arg(void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
    struct http_call *call = cls;
    (void)kind;

    if (!value)
        value = "";
    if (call->n_args == HTTP_ARGS_MAX || strlen(name) >= HTTP_ARG_MAX ||
        strlen(value) >= HTTP_ARG_MAX) {
        call->bad_query = true;
        return MHD_NO;
    }
    snprintf(call->names[call->n_args], HTTP_ARG_MAX, "%s", name);
    snprintf(call->values[call->n_args++], HTTP_ARG_MAX, "%s", value);
    return MHD_YES;
}

/* A new call: queued and its connection suspended, or answered at once (503, 400, 404). */
static enum MHD_Result
call_start(struct http_server *s, struct MHD_Connection *c, const char *url, void **req_cls)
{
    if (strlen(url) >= HTTP_PATH_MAX)
        return answer_text(c, MHD_HTTP_NOT_FOUND, NOT_FOUND_TEXT);
    struct http_call *call = util_xcalloc(1, sizeof(*call));
    call->server = s;
    call->connection = c;
    snprintf(call->path, sizeof(call->path), "%s", url);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, copy_arg, call);
    if (call->bad_query) {
        free(call);
        return answer_text(c, MHD_HTTP_BAD_REQUEST, BAD_QUERY_TEXT);
    }
    uint64_t now = now_ms();
    pthread_mutex_lock(&s->lock);
    expire(s, now);
    if (s->closing || s->n_queued == HTTP_CALLS_MAX) {
        bool closing = s->closing;
        pthread_mutex_unlock(&s->lock);
        free(call);
        return answer_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, closing ? CLOSING_TEXT : BUSY_TEXT);
    }
    call->queued_ms = now;
    call->state = CALL_QUEUED;
    s->queue[s->n_queued++] = call;
    *req_cls = call; /* freed by request_completed() */
    s->live_calls++;
    MHD_suspend_connection(c);
    wake(s);
    pthread_mutex_unlock(&s->lock);
    return MHD_YES;
}

/* A resumed call: send what it was answered. */
static enum MHD_Result
call_finish(struct http_call *call, struct MHD_Connection *c)
{
    const char *body = call->body ? call->body : "";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, call->content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    rc = MHD_queue_response(c, call->status, r);
    MHD_destroy_response(r);
    return rc;
}

static void
request_completed(void *cls,
                  struct MHD_Connection *c,
                  void **req_cls,
                  enum MHD_RequestTerminationCode why)
{
    struct http_call *call = *req_cls;
    struct http_server *s = cls;
    (void)c;
    (void)why;

    if (!call)
        return;
    pthread_mutex_lock(&s->lock);
    if (--s->live_calls == 0)
        pthread_cond_broadcast(&s->calls_done);
    pthread_mutex_unlock(&s->lock);
    free(call->body);
    free(call);
    *req_cls = NULL;
}

int
http_server_wake_fd(const struct http_server *s)
{
    return s->wake_fd;
}

struct http_call *
http_server_take(struct http_server *s)
{
    struct http_call *call = NULL;

    pthread_mutex_lock(&s->lock);
    expire(s, now_ms());
    if (s->n_queued) {
        call = s->queue[0];
        memmove(s->queue, s->queue + 1, (--s->n_queued) * sizeof(s->queue[0]));
        call->state = CALL_TAKEN;
    }
    if (!s->n_queued)
        quiet(s);
    pthread_mutex_unlock(&s->lock);
    return call;
}

const char *
http_call_path(const struct http_call *call)
{
    return call->path;
}

size_t
http_call_n_args(const struct http_call *call)
{
    return call->n_args;
}

const char *
http_call_arg_name(const struct http_call *call, size_t i)
{
    assert(i < call->n_args);
    return call->names[i];
}

const char *
http_call_arg_value(const struct http_call *call, size_t i)
{
    assert(i < call->n_args);
    return call->values[i];
}

void
http_call_answer(struct http_call **callp, unsigned status, const char *content_type, char *body)
{
    struct http_call *call = *callp;
    struct http_server *s = call->server;

    assert(call->state == CALL_TAKEN);
    pthread_mutex_lock(&s->lock);
    settle(call, status, content_type, body);
    pthread_mutex_unlock(&s->lock);
    *callp = NULL;
}

/* libmicrohttpd's access handler, on its thread: GET or HEAD, nothing read from the body.
 * *req_cls is NULL on a request's first call, its http_call when an API call resumes. */
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

    if (*req_cls)
        return call_finish(*req_cls, c);
    atomic_fetch_add(&s->requests, 1);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED);
    if (strcmp(url, "/metrics") == 0)
        return answer_metrics(s, c);
    if (s->api && strncmp(url, API_PREFIX, strlen(API_PREFIX)) == 0)
        return call_start(s, c, url, req_cls);
    return answer_file(s, c, url);
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
http_server_open_with(const struct http_options *o,
                      struct http_server **out,
                      char *err,
                      size_t err_len)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    int rc = http_listen_parse(o->listen, &addr, &addr_len, err, err_len);

    if (rc < 0)
        return rc;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct http_server *s = util_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->calls_done, NULL);
    s->content_type = o->content_type;
    s->files = o->files;
    s->n_files = o->n_files;
    s->api = o->api;
    s->call_timeout_ms = o->call_timeout_ms ? o->call_timeout_ms : HTTP_CALL_TIMEOUT_MS;
    atomic_init(&s->requests, 0);
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0) {
        rc = -errno;
        snprintf(err, err_len, "eventfd: %s", strerror(-rc));
        pthread_cond_destroy(&s->calls_done);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                              NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)CONNECTION_TIMEOUT, MHD_OPTION_NOTIFY_COMPLETED,
                              request_completed, s, MHD_OPTION_END);
    if (!s->mhd) {
        rc = errno ? -errno : -EADDRINUSE;
        snprintf(err, err_len, "cannot listen on %.200s: %s", o->listen, strerror(-rc));
        close(s->wake_fd);
        pthread_cond_destroy(&s->calls_done);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return 0;
}

int
http_server_open(
    const char *text, const char *content_type, struct http_server **out, char *err, size_t err_len)
{
    struct http_options o = {.listen = text, .content_type = content_type};

    return http_server_open_with(&o, out, err, err_len);
}

void
http_server_close(struct http_server **server)
{
    struct http_server *s = server ? *server : NULL;

    if (!s)
        return;
    /* MHD cannot stop with suspended connections: answer what still waits, and give the
     * HTTP thread a moment to send those answers before the sockets close. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CLOSE_WAIT_S;
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    for (size_t i = 0; i < s->n_queued; i++)
        settle(s->queue[i], MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_TYPE, util_xstrdup(CLOSING_TEXT));
    s->n_queued = 0;
    for (int rc = 0; s->live_calls && rc != ETIMEDOUT;)
        rc = pthread_cond_timedwait(&s->calls_done, &s->lock, &until);
    pthread_mutex_unlock(&s->lock);
    MHD_stop_daemon(s->mhd); /* joins the thread: every response is gone after this */
    close(s->wake_fd);
    pthread_cond_destroy(&s->calls_done);
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
