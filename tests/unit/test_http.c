/*
 * test_http.c - the HTTP listener (coordinator/http.c) on a free loopback port, spoken to over
 * a plain socket: 503 before anything is published, the published parts concatenated with the
 * content type given, 404 elsewhere, 405 for other methods, HEAD without a body, a newer
 * document replacing the older (released once), 503 again after a withdraw, and every document
 * released by the close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"

#define TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One request over HTTP/1.0 (the server closes after the answer); the whole answer in out. */
static void
request(uint16_t port, const char *method, const char *path, char *out, size_t out_len)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    char req[256];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    for (ssize_t r; got + 1 < out_len && (r = read(fd, out + got, out_len - 1 - got)) > 0;)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_bad_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
