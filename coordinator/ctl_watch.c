/*
 * ctl_watch.c - memschedctl's live views, as loops of ordinary control requests (ctl_watch.h).
 */
#include "ctl_watch.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define FOLLOW_BATCH    "1000" /* events asked for per poll; a full batch is followed at once */
#define TOP_VMS_DEFAULT "20"   /* VM rows in a top frame */

static void
request_init(struct wire_control_request *req, const struct ctl_watch *w, const char *command)
{
    memset(req, 0, sizeof(*req));
    snprintf(req->command, sizeof(req->command), "%s", command);
    snprintf(req->author, sizeof(req->author), "%s", w->author);
}

static void
request_arg(struct wire_control_request *req, const char *arg)
{
    if (req->n_args < WIRE_ARGS_MAX)
        snprintf(req->args[req->n_args++], WIRE_ARG_MAX, "%s", arg);
}

static void
pause_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Ask and keep the answer only when it is a success; otherwise say why and return the exit
 * code (the reply is cleared then). */
static int
ask_ok(const struct ctl_watch *w,
       const struct wire_control_request *req,
       struct wire_control_reply *reply)
{
    int rc = w->ask(w->ctx, req, reply);

    if (rc != 0)
        return rc;
    if (reply->status != 0) {
        fprintf(stderr, "memschedctl: %s: %s\n", req->command, reply->body ? reply->body : "");
        rc = reply->status;
        wire_control_reply_clear(reply);
    }
    return rc;
}

/* An events table's rows start with their sequence number (right-aligned): the last row's, and
 * how many rows there are. 0 rows for "no events". */
static uint64_t
last_seq_of(const char *body, size_t *rows)
{
    uint64_t last = 0;

    *rows = 0;
    for (const char *line = body; line && *line; line = strchr(line, '\n'), line += !!line) {
        const char *p = line + strspn(line, " ");
        if (isdigit((unsigned char)*p)) {
            last = strtoull(p, NULL, 10);
            (*rows)++;
        }
    }
    return last;
}

/* Print a table, without its header line unless first. */
static void
print_rows(const char *body, bool first)
{
    const char *from = body;

    if (!first) {
        from = strchr(body, '\n');
        from = from ? from + 1 : "";
    }
    fputs(from, stdout);
    if (*from && from[strlen(from) - 1] != '\n')
        fputc('\n', stdout);
    fflush(stdout);
}

/* The same events as JSON, for scripts. */
static int
print_json_batch(const struct ctl_watch *w, const struct wire_control_request *text_req)
{
    struct wire_control_request req = *text_req;
    struct wire_control_reply reply = {0};

    req.json = true;
    int rc = ask_ok(w, &req, &reply);
    if (rc == 0) {
        puts(reply.body);
        fflush(stdout);
        wire_control_reply_clear(&reply);
    }
    return rc;
}

int
ctl_follow_events(const struct ctl_watch *w, char args[][WIRE_ARG_MAX], size_t n_args)
{
    struct wire_control_request req;
    uint64_t last = 0;
    bool first = true;

    request_init(&req, w, "events");
    for (size_t i = 0; i < n_args; i++)
        request_arg(&req, args[i]); /* the first poll: the user's --since and --limit */
    for (;;) {
        struct wire_control_reply reply = {0};
        size_t rows;
        int rc = ask_ok(w, &req, &reply);

        if (rc != 0)
            return rc;
        uint64_t newest = last_seq_of(reply.body, &rows);
        if (rows && w->json)
            rc = print_json_batch(w, &req);
        else if (rows || first)
            print_rows(reply.body, first);
        wire_control_reply_clear(&reply);
        if (rc != 0)
            return rc;
        if (rows) {
            last = newest;
            first = false;
        }
        if (w->once)
            return 0;
        char since[24];
        snprintf(since, sizeof(since), "%" PRIu64, last);
        request_init(&req, w, "events");
        request_arg(&req, "--since");
        request_arg(&req, since);
        request_arg(&req, "--limit");
        request_arg(&req, FOLLOW_BATCH);
        if (rows < (size_t)atoi(FOLLOW_BATCH)) /* a full batch: more are waiting */
            pause_ms(w->interval_ms);
    }
}

/* top's own options: the VMs' sort and row count. Returns 0, or 2 (usage) after saying why. */
static int
top_options(char args[][WIRE_ARG_MAX], size_t n_args, const char **sort, const char **limit)
{
    *sort = "unused";
    *limit = TOP_VMS_DEFAULT;
    for (size_t i = 0; i < n_args; i++) {
        const char **to = strcmp(args[i], "--sort") == 0    ? sort
                          : strcmp(args[i], "--limit") == 0 ? limit
                                                            : NULL;
        if (!to || i + 1 == n_args) {
            fprintf(stderr,
                    "memschedctl: top takes --sort host|name|actual|unused and --limit N, "
                    "not '%s'\n",
                    args[i]);
            return 2;
        }
        *to = args[++i];
    }
    return 0;
}

/* One part of a frame: the coordinator's table for command, with up to two options. */
static int
frame_part(const struct ctl_watch *w,
           FILE *frame,
           const char *command,
           const char *const *opts,
           size_t n_opts)
{
    struct wire_control_request req;
    struct wire_control_reply reply = {0};

    request_init(&req, w, command);
    for (size_t i = 0; i < n_opts; i++)
        request_arg(&req, opts[i]);
    int rc = ask_ok(w, &req, &reply);
    if (rc == 0) {
        fprintf(frame, "%s\n", reply.body);
        wire_control_reply_clear(&reply);
    }
    return rc;
}

int
ctl_top(const struct ctl_watch *w, char args[][WIRE_ARG_MAX], size_t n_args)
{
    const char *sort, *limit;
    int rc = top_options(args, n_args, &sort, &limit);

    if (rc != 0)
        return rc;
    const char *hosts[] = {"--sort", "liveness"};
    const char *vms[] = {"--sort", sort, "--limit", limit};
    for (;;) {
        char *text = NULL, stamp[32];
        size_t len = 0;
        FILE *frame = open_memstream(&text, &len);
        time_t now = time(NULL);
        struct tm tm;

        if (!frame)
            util_oom();
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));
        fprintf(frame, "memschedctl top - %s UTC - every %.1f s - VMs by %s\n\n", stamp,
                w->interval_ms / 1000.0, sort);
        rc = frame_part(w, frame, "status", NULL, 0);
        rc = rc ?: frame_part(w, frame, "hosts", hosts, 2);
        rc = rc ?: frame_part(w, frame, "vms", vms, 4);
        fclose(frame);
        if (rc == 0) {
            if (!w->once)
                fputs("\033[H\033[2J", stdout); /* home, clear: any ANSI terminal */
            fputs(text, stdout);
            fflush(stdout);
        }
        free(text);
        if (rc != 0 || w->once)
            return rc;
        pause_ms(w->interval_ms);
    }
}
