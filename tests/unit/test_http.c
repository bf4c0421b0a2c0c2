/*
 * test_http.c - the HTTP listener (coordinator/http.c) on a free loopback port, spoken to over
 * a plain socket: 503 before anything is published, the published parts concatenated with the
 * content type given, 404 elsewhere, 405 for other methods, HEAD without a body, a newer
 * document replacing the older (released once), 503 again after a withdraw, and every document
 * released by the close. The dashboard's side: files served by exact path ("/" is
 * index.html), and the API handover: a call queued with its path and decoded query, the wake fd
 * readable until it is taken, the loop's answer on the wire; 503 when HTTP_CALLS_MAX wait, 504
 * after the call timeout, 400 for a query too large, 503 for calls still queued at close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"

#define TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Send one request over HTTP/1.0 (the server closes after the answer); the socket to read
 * the answer from. */
static int
send_request(uint16_t port, const char *method, const char *path)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    char req[1024];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

/* The whole answer on fd into out; closes fd. */
static void
read_answer(int fd, char *out, size_t out_len)
{
    size_t got = 0;

    for (ssize_t r; got + 1 < out_len && (r = read(fd, out + got, out_len - 1 - got)) > 0;)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
}

static void
request(uint16_t port, const char *method, const char *path, char *out, size_t out_len)
{
    read_answer(send_request(port, method, path), out, out_len);
}

static void
want_status(const char *answer, const char *status)
{
    if (strncmp(answer + strlen("HTTP/1.0 "), status, strlen(status)) != 0)
        fail_msg("want status %s, got:\n%s", status, answer);
}

static const char *
body_of(const char *answer)
{
    const char *p = strstr(answer, "\r\n\r\n");

    assert_non_null(p);
    return p + 4;
}

static int released;

static void
release(void *ctx)
{
    released++;
    free(ctx);
}

/* Publish "a b\n" + "c\n" (the first part owned by ctx, the second static). */
static void
publish(struct http_server *s, const char *first)
{
    char *owned = strdup(first);
    const char *parts[] = {owned, "c\n"};
    size_t lens[] = {strlen(owned), 2};

    http_server_publish(s, parts, lens, 2, release, owned);
}

static void
test_serve(void **state)
{
    struct http_server *s = NULL;
    char err[HTTP_ERR_MAX], answer[4096];
    (void)state;

    released = 0;
    assert_int_equal(http_server_open("0", TYPE, &s, err, sizeof(err)), 0);
    uint16_t port = http_server_port(s);
    assert_true(port > 0);

    request(port, "GET", "/metrics", answer, sizeof(answer));
    want_status(answer, "503");

    publish(s, "a b\n");
    request(port, "GET", "/metrics", answer, sizeof(answer));
    want_status(answer, "200");
    assert_non_null(strstr(answer, "Content-Type: " TYPE "\r\n"));
    assert_string_equal(body_of(answer), "a b\nc\n");

    request(port, "HEAD", "/metrics", answer, sizeof(answer));
    want_status(answer, "200");
    assert_string_equal(body_of(answer), "");
    request(port, "GET", "/other", answer, sizeof(answer));
    want_status(answer, "404");
    request(port, "POST", "/metrics", answer, sizeof(answer));
    want_status(answer, "405");

    publish(s, "newer\n");
    assert_int_equal(released, 1); /* no request holds the older one */
    request(port, "GET", "/metrics", answer, sizeof(answer));
    assert_string_equal(body_of(answer), "newer\nc\n");

    http_server_withdraw(s);
    assert_int_equal(released, 2);
    request(port, "GET", "/metrics", answer, sizeof(answer));
    want_status(answer, "503");

    publish(s, "last\n");
    assert_true(http_server_requests(s) >= 7); /* the seven above */
    http_server_close(&s);
    assert_null(s);
    assert_int_equal(released, 3);
    http_server_close(&s); /* repeatable */
}

static void
test_bad_listen(void **state)
{
    struct http_server *s = NULL, *t = NULL;
    char err[HTTP_ERR_MAX];
    (void)state;

    assert_int_equal(http_server_open("http://localhost:1", TYPE, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "want http://ADDR:PORT"));
    assert_int_equal(http_server_open("http://127.0.0.1:0", TYPE, &s, err, sizeof(err)), 0);
    char taken[64];
    snprintf(taken, sizeof(taken), "http://127.0.0.1:%u", (unsigned)http_server_port(s));
    assert_true(http_server_open(taken, TYPE, &t, err, sizeof(err)) < 0); /* in use */
    assert_null(t);
    assert_non_null(strstr(err, "cannot listen on"));
    http_server_close(&s);
}

/* ---- the dashboard: files and API calls ---- */

static const char INDEX[] = "<html>index</html>";
static const struct http_file FILES[] = {
    {"/index.html", "text/html; charset=utf-8", INDEX, sizeof(INDEX) - 1},
    {"/app.js", "text/javascript; charset=utf-8", "x()", 3},
};

static struct http_server *
open_api(unsigned call_timeout_ms)
{
    struct http_options o = {
        .listen = "0",
        .content_type = TYPE,
        .files = FILES,
        .n_files = 2,
        .api = true,
        .call_timeout_ms = call_timeout_ms,
    };
    struct http_server *s = NULL;
    char err[HTTP_ERR_MAX];

    assert_int_equal(http_server_open_with(&o, &s, err, sizeof(err)), 0);
    return s;
}

/* Whether the wake fd is readable within timeout_ms. */
static bool
woken(struct http_server *s, int timeout_ms)
{
    struct pollfd p = {.fd = http_server_wake_fd(s), .events = POLLIN};

    return poll(&p, 1, timeout_ms) == 1;
}

/* The next call, waiting up to 5 s for one to be queued. */
static struct http_call *
take_call(struct http_server *s)
{
    if (!woken(s, 5000))
        fail_msg("no API call was queued within 5 s");
    struct http_call *call = http_server_take(s);
    assert_non_null(call);
    return call;
}

/* Wait until the server has seen n requests (each is queued by then). */
static void
wait_requests(struct http_server *s, uint64_t n)
{
    for (int i = 0; i < 5000 && http_server_requests(s) < n; i++)
        usleep(1000);
    assert_int_equal(http_server_requests(s), n);
}

static void
test_files(void **state)
{
    struct http_server *s = open_api(0);
    char answer[4096];
    (void)state;

    request(http_server_port(s), "GET", "/", answer, sizeof(answer));
    want_status(answer, "200");
    assert_non_null(strstr(answer, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_string_equal(body_of(answer), INDEX);
    request(http_server_port(s), "GET", "/app.js?v=1", answer, sizeof(answer));
    assert_string_equal(body_of(answer), "x()");
    request(http_server_port(s), "GET", "/../index.html", answer, sizeof(answer));
    want_status(answer, "404");
    request(http_server_port(s), "GET", "/missing.html", answer, sizeof(answer));
    want_status(answer, "404");
    http_server_close(&s);
}

static void
test_api_call(void **state)
{
    struct http_server *s = open_api(0);
    char answer[4096];
    (void)state;

    assert_false(woken(s, 0));
    assert_null(http_server_take(s));
    int fd = send_request(http_server_port(s), "GET", "/api/hosts?limit=5&after=h%2D1&flag");
    struct http_call *call = take_call(s);
    assert_false(woken(s, 0)); /* quiet again once the queue is empty */
    assert_string_equal(http_call_path(call), "/api/hosts");
    assert_int_equal(http_call_n_args(call), 3);
    assert_string_equal(http_call_arg_name(call, 0), "limit");
    assert_string_equal(http_call_arg_value(call, 0), "5");
    assert_string_equal(http_call_arg_name(call, 1), "after");
    assert_string_equal(http_call_arg_value(call, 1), "h-1"); /* decoded */
    assert_string_equal(http_call_arg_name(call, 2), "flag");
    assert_string_equal(http_call_arg_value(call, 2), "");
    http_call_answer(&call, 200, "application/json", strdup("{\"hosts\":[]}"));
    assert_null(call);
    read_answer(fd, answer, sizeof(answer));
    want_status(answer, "200");
    assert_non_null(strstr(answer, "Content-Type: application/json\r\n"));
    assert_string_equal(body_of(answer), "{\"hosts\":[]}");

    /* The loop's status goes through, HEAD has no body. */
    fd = send_request(http_server_port(s), "HEAD", "/api/why");
    call = take_call(s);
    http_call_answer(&call, 404, "text/plain", strdup("no such VM"));
    read_answer(fd, answer, sizeof(answer));
    want_status(answer, "404");
    assert_string_equal(body_of(answer), "");
    http_server_close(&s);
}

static void
test_api_bounds(void **state)
{
    struct http_server *s = open_api(0);
    int fds[HTTP_CALLS_MAX];
    char answer[4096], path[HTTP_ARG_MAX + 64];
    (void)state;

    /* Nine parameters, or one too long: 400 from the HTTP thread, nothing queued. */
    request(http_server_port(s), "GET", "/api/x?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", answer,
            sizeof(answer));
    want_status(answer, "400");
    snprintf(path, sizeof(path), "/api/x?a=%0*d", HTTP_ARG_MAX, 0);
    request(http_server_port(s), "GET", path, answer, sizeof(answer));
    want_status(answer, "400");
    assert_false(woken(s, 0));

    /* HTTP_CALLS_MAX wait: the next is 503 at once; the waiting ones are still answered. */
    uint64_t seen = http_server_requests(s);
    for (int i = 0; i < HTTP_CALLS_MAX; i++) {
        fds[i] = send_request(http_server_port(s), "GET", "/api/status");
        wait_requests(s, ++seen);
    }
    request(http_server_port(s), "GET", "/api/status", answer, sizeof(answer));
    want_status(answer, "503");
    for (int i = 0; i < HTTP_CALLS_MAX; i++) {
        struct http_call *call = take_call(s);
        http_call_answer(&call, 200, "application/json", strdup("{}"));
    }
    assert_null(http_server_take(s));
    for (int i = 0; i < HTTP_CALLS_MAX; i++) {
        read_answer(fds[i], answer, sizeof(answer));
        want_status(answer, "200");
    }
    http_server_close(&s);
}

static void
test_api_timeout_and_close(void **state)
{
    struct http_server *s = open_api(50);
    char answer[4096];
    (void)state;

    /* Not taken within 50 ms: the loop's next take answers it 504 and returns nothing. */
    int fd = send_request(http_server_port(s), "GET", "/api/status");
    assert_true(woken(s, 5000));
    usleep(100 * 1000);
    assert_null(http_server_take(s));
    read_answer(fd, answer, sizeof(answer));
    want_status(answer, "504");

    /* Still queued at close: 503. */
    fd = send_request(http_server_port(s), "GET", "/api/status");
    assert_true(woken(s, 5000));
    http_server_close(&s);
    read_answer(fd, answer, sizeof(answer));
    want_status(answer, "503");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve),      cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_files),      cmocka_unit_test(test_api_call),
        cmocka_unit_test(test_api_bounds), cmocka_unit_test(test_api_timeout_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
