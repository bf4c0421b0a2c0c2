/*
 * chan.c - send one command to a guest's hog over its virtio-serial channel and print the answer.
 *
 *   e2e_chan SOCKET ID COMMAND... [--timeout-ms N]
 *
 * SOCKET is the unix socket QEMU listens on for the guest's "memsched.hog" port (libvirt
 * <channel type='unix'><source mode='bind'>). Sends "id=ID COMMAND\n", then waits for the hog's
 * line with the same id ("ok id=ID ..." or "err id=ID ..."), prints it and exits 0 for ok, 1 for
 * err or a timeout, 2 for a usage or socket error. Lines with another id (answers to an earlier
 * connection) are skipped. Connecting is retried until the deadline: QEMU opens the socket when
 * the guest starts, and a guest may not have found its port yet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 15000
#define RESEND_MS          2000
#define LINE_MAX_BYTES     512

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
connect_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "e2e_chan: socket path too long: %s\n", path);
        return -ENAMETOOLONG;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int
send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 1 when line answers id (ok: *ok set), 0 otherwise. */
static int
answers(const char *line, const char *id, bool *ok)
{
    char want[64];

    snprintf(want, sizeof(want), " id=%s ", id);
    if (strncmp(line, "ok", 2) == 0)
        *ok = true;
    else if (strncmp(line, "err", 3) == 0)
        *ok = false;
    else
        return 0;
    char padded[LINE_MAX_BYTES + 2];
    snprintf(padded, sizeof(padded), "%s ", line);
    return strstr(padded, want) != NULL;
}

/* Read lines until the answer; 0 ok, 1 err, -ETIMEDOUT, or a socket error (the guest's end went
 * away: worth a new connection). The command is sent again every RESEND_MS: a guest that had not
 * opened its port yet never saw it. */
static int
await_answer(int fd, const char *cmd, const char *id, int64_t deadline)
{
    char buf[LINE_MAX_BYTES];
    size_t len = 0;
    int64_t next_send = 0;

    for (;;) {
        int64_t now = now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        if (now >= next_send) {
            int rc = send_all(fd, cmd, strlen(cmd));
            if (rc < 0)
                return rc;
            next_send = now + RESEND_MS;
        }
        int64_t wait = (next_send < deadline ? next_send : deadline) - now;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)wait);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0)
            continue;
        ssize_t got = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (got == 0)
            return -ECONNRESET;
        if (got < 0)
            return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        len += (size_t)got;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            bool ok = false;
            *nl = '\0';
            if (answers(buf, id, &ok)) {
                printf("%s\n", buf);
                return ok ? 0 : 1;
            }
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len + 1);
        }
        if (len == sizeof(buf) - 1)
            len = 0; /* an overlong line: drop it */
    }
}

int
main(int argc, char **argv)
{
    int timeout_ms = DEFAULT_TIMEOUT_MS;
    char cmd[LINE_MAX_BYTES];
    size_t used;

    if (argc >= 3 && strcmp(argv[argc - 2], "--timeout-ms") == 0) {
        timeout_ms = atoi(argv[argc - 1]);
        argc -= 2;
    }
    if (argc < 4 || timeout_ms <= 0) {
        fprintf(stderr, "usage: e2e_chan SOCKET ID COMMAND... [--timeout-ms N]\n");
        return 2;
    }
    used = (size_t)snprintf(cmd, sizeof(cmd), "id=%s", argv[2]);
    for (int i = 3; i < argc && used < sizeof(cmd); i++)
        used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, " %s", argv[i]);
    if (used + 2 > sizeof(cmd)) {
        fprintf(stderr, "e2e_chan: command too long\n");
        return 2;
    }
    strcat(cmd, "\n");

    int64_t deadline = now_ms() + timeout_ms;
    int rc = -ETIMEDOUT;
    while (now_ms() < deadline) {
        int fd = connect_unix(argv[1]);
        if (fd == -ENAMETOOLONG)
            return 2;
        if (fd < 0) {
            rc = fd;
            usleep(200 * 1000);
            continue;
        }
        rc = await_answer(fd, cmd, argv[2], deadline);
        close(fd);
        if (rc >= 0)
            return rc;
        if (rc == -ETIMEDOUT)
            break;
        usleep(200 * 1000);
    }
    fprintf(stderr, "e2e_chan: no answer from %s to \"id=%s ...\": %s\n", argv[1], argv[2],
            strerror(-rc));
    return 1;
}
