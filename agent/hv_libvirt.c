/*
 * hv_libvirt.c - the libvirt backend of the hypervisor port; the only file that includes libvirt.
 *
 * It owns one libvirt connection (reopened with back-off when libvirtd goes away), the callbacks
 * registered on it, and a per-domain cache of what does not change every round: whether the
 * domain has a balloon device (its XML), memsched's overrides (its metadata), whether the guest
 * stats period was set since it started, and whether it may be migrating.
 *
 * One round (sample): one bulk virConnectGetAllDomainStats(BALLOON | STATE, ACTIVE). Drivers that
 * give no balloon.* fields there (libvirt's test driver) are asked per domain instead
 * (virDomainGetInfo + virDomainMemoryStats). Host memory comes from virNodeGetMemoryStats, or,
 * where the driver lacks it, from virNodeGetInfo + virNodeGetFreeMemory, or, where that fails
 * too, from the node's total less what the VMs hold.
 *
 * Process-wide, on the first open: SIGPIPE ignored (libvirt needs it), libvirt errors routed
 * to our log at debug instead of stderr.
 *
 * Threads: libvirt's default event loop runs in one thread per process, started on the first
 * open and never stopped (libvirt offers no way to stop it). Callbacks run there and only queue
 * what they saw into struct lv_shared under its mutex; every libvirt call of the port, the cache
 * and the connection belong to the caller's thread, which drains the queue at each sample.
 * lv_shared is reference counted because libvirt may call a domain event callback until it
 * calls that callback's free function, which can be after the hv is closed.
 *
 * Errors follow hv.h. A lost connection is noticed through the close callback or through a call
 * failing while virConnectIsAlive says the connection is dead; then every op returns -ENOTCONN
 * and each later call tries to reopen, 1 s after the first failed attempt, doubling to 30 s.
 * The outage is logged once at warn (repeats rate-limited by struct log_limit) and the recovery
 * once at info.
 *
 * Invariants: lv->conn is NULL or an open connection whose callbacks carry lv->shared; the cache
 * is sorted by UUID; nothing libvirt allocated outlives the call that got it.
 */
#include "hv_libvirt.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "log.h"
#include "meminfo.h"
#include "sched.h"
#include "util.h"
#include "vm_xml.h"

#define LOG_MODULE "libvirt"

#define META_URI VM_XML_META_URI

#define RETRY_FIRST_MS       1000u
#define RETRY_MAX_MS         30000u
#define OUTAGE_LOG_MAX_MS    600000u /* an outage that lasts is repeated at most every 10 min */
#define KEEPALIVE_INTERVAL_S 5
#define KEEPALIVE_COUNT      3u
#define EVENT_QUEUE_MAX      1024u /* beyond this, the cache is dropped as a whole */

_Static_assert(HV_UUID_LEN == VIR_UUID_STRING_BUFLEN, "UUID string lengths must agree");

enum lv_event_kind {
    LV_EVENT_STARTED,   /* everything cached about the domain is stale */
    LV_EVENT_DEFINED,   /* its XML (balloon device) is stale */
    LV_EVENT_METADATA,  /* its overrides are stale */
    LV_EVENT_MIGRATING, /* a migration pass began: ask for its job from now on */
};

struct lv_event {
    char uuid[HV_UUID_LEN];
    enum lv_event_kind kind;
};

/* What the event thread shares with the caller's thread; every field under lock. */
struct lv_shared {
    pthread_mutex_t lock;
    unsigned refs;      /* the hv's, and one per domain event callback libvirt still holds */
    virConnectPtr conn; /* the connection callbacks are taken from; others are stale */
    bool closed;        /* libvirt closed conn (daemon gone, keepalive timeout) */
    int close_reason;
    size_t n_events;
    bool overflow; /* events were lost: everything cached is stale */
    uint64_t balloon_events;
    struct lv_event events[EVENT_QUEUE_MAX];
};

/* What one domain keeps between rounds (caller's thread only). */
struct lv_dom {
    char uuid[HV_UUID_LEN];
    bool xml_valid;  /* has_balloon is current */
    bool meta_valid; /* the overrides are current */
    bool period_set; /* the stats period was applied since the domain started */
    bool maybe_migrating;
    bool has_balloon;
    uint32_t period_s; /* the stats period in force: read from the XML, or as we set it */
    bool managed;
    uint64_t min_kib;
    uint64_t cap_kib;
    uint32_t weight;
    uint64_t bad_meta_hash; /* of the malformed metadata last warned about, 0 = none */
};

/* Where host memory comes from; each step down is taken once per connection. */
enum lv_host_source {
    LV_HOST_NODE_STATS = 0, /* virNodeGetMemoryStats: free + buffers + cached */
    LV_HOST_FREE_MEMORY,    /* virNodeGetInfo + virNodeGetFreeMemory */
    LV_HOST_SUM_ACTUAL,     /* virNodeGetInfo less the sum of the VMs' actual */
    LV_HOST_SOURCE_COUNT,
};

/* libvirt's last error, copied before any other call can reset it. */
struct lv_err {
    int code;
    int domain;
    char msg[HV_ERR_MAX];
};

struct lv {
    char *uri;
    virConnectPtr conn; /* NULL while disconnected */
    struct lv_shared *shared;
    int event_ids[4];
    bool close_cb;
    enum hv_libvirt_stats_path path;
    unsigned period_s; /* 0 until set_stats_period */

    uint64_t retry_at_ms; /* monotonic; no open attempt before this */
    uint64_t retry_ms;    /* the wait after the next failed attempt */
    struct log_limit outage;

    enum lv_host_source host_source;
    bool host_source_logged[LV_HOST_SOURCE_COUNT];

    struct lv_dom *cache; /* sorted by uuid */
    size_t n_cache;
    size_t cap_cache;
    struct lv_dom *next; /* the cache being built by this round */
    size_t n_next;
    size_t cap_next;
    struct hv_vm *vms; /* this round's VMs, all of them (the caller's room may be smaller) */
    size_t n_vms;
    size_t cap_vms;
    struct lv_event events[EVENT_QUEUE_MAX]; /* drained from shared */
};

static const struct hv_ops lv_ops;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

/* ---- small helpers ---- */

static void
copy_str(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

static uint64_t
hash_str(const char *s)
{
    uint64_t h = util_hash_str(s);
    return h ? h : 1;
}

static void
err_take(struct lv_err *err)
{
    virErrorPtr e = virGetLastError();
    err->code = e ? e->code : VIR_ERR_OK;
    err->domain = e ? e->domain : VIR_FROM_NONE;
    copy_str(err->msg, sizeof(err->msg), e && e->message ? e->message : "unknown libvirt error");
}

/* Maps the error a call on dom (NULL for a connection call) just failed with to hv.h's errno. */
static int
err_errno(struct lv *lv, const struct lv_err *err, virDomainPtr dom)
{
    int active;

    /* Many errors (EOF, broken pipe, "client socket is closed") mean the same: libvirtd is
     * gone. The connection's own state tells that better than the error code. */
    if (lv->conn && virConnectIsAlive(lv->conn) == 0)
        return -ENOTCONN;
    switch (err->code) {
    case VIR_ERR_NO_DOMAIN:
        return -ENOENT;
    case VIR_ERR_OPERATION_INVALID:
        /* libvirt says this for a domain that is not running and for a live change the domain
         * cannot make (QEMU: no balloon device); only asking tells them apart. */
        active = dom ? virDomainIsActive(dom) : 1;
        return active == 1 ? -ENOTSUP : -ENOENT;
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
        return -ENOTSUP;
    case VIR_ERR_INVALID_ARG:
        return -EINVAL;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
        return -ENOTCONN;
    default:
        return -EIO;
    }
}

static int
last_errno(struct lv *lv, virDomainPtr dom, const char *op)
{
    struct lv_err err;
    int rc;

    err_take(&err);
    rc = err_errno(lv, &err, dom);
    log_debug(LOG_MODULE, "op=%s rc=%d code=%d err=\"%s\"", op, rc, err.code, err.msg);
    return rc;
}

/* ---- process-wide set-up: error routing and the event loop ---- */

static void
on_libvirt_error(void *data, virErrorPtr err)
{
    (void)data;
    /* Expected failures (no metadata, a domain gone) are normal here; the callers decide what
     * deserves more than debug. Without this libvirt prints every error on stderr. */
    if (err)
        log_debug(LOG_MODULE, "libvirt_error code=%d domain=%d err=\"%s\"", err->code, err->domain,
                  err->message ? err->message : "");
}

/* libxml2's generic errors (libvirt reading a test-driver file, say) would go to stderr. */
static void LOG_PRINTF(2) on_xml_error(void *data, const char *fmt, ...)
{
    char line[256];
    size_t len;
    va_list ap;

    (void)data;
    if (!log_enabled(LOG_LEVEL_DEBUG))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    len = strlen(line);
    if (len && line[len - 1] == '\n')
        line[len - 1] = '\0';
    log_debug(LOG_MODULE, "libxml2_error err=\"%s\"", line);
}

static void *
event_loop(void *arg)
{
    (void)arg;
    for (;;) {
        if (virEventRunDefaultImpl() < 0) {
            struct timespec pause = {.tv_sec = 1};
            log_warn(LOG_MODULE, "event=event_loop_failed");
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

static void
global_init(void)
{
    struct sigaction old_pipe;
    pthread_t thread;

    /* libvirt writes to its sockets with write(): a daemon that dies under a call would kill
     * us with SIGPIPE (seen in the restart test). libvirt asks applications to ignore it; we
     * do, unless the program installed a handler of its own. */
    if (sigaction(SIGPIPE, NULL, &old_pipe) == 0 && old_pipe.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    if (virInitialize() < 0) {
        global_rc = -EIO;
        return;
    }
    virSetErrorFunc(NULL, on_libvirt_error);
    /* libxml2 keeps this per thread: the default for new threads and this (the caller's) one. */
    xmlThrDefSetGenericErrorFunc(NULL, on_xml_error);
    xmlSetGenericErrorFunc(NULL, on_xml_error);
    /* Keepalive and the remote driver's events need an event loop registered before the first
     * open, and only one may exist per process. */
    if (virEventRegisterDefaultImpl() < 0) {
        global_rc = -EIO;
        return;
    }
    if (pthread_create(&thread, NULL, event_loop, NULL) != 0) {
        global_rc = -EAGAIN;
        return;
    }
    pthread_detach(thread);
}

/* ---- the shared state and the callbacks (event thread) ---- */

static struct lv_shared *
shared_new(void)
{
    struct lv_shared *sh = util_xcalloc(1, sizeof(*sh));
    pthread_mutex_init(&sh->lock, NULL);
    sh->refs = 1;
    return sh;
}

static void
shared_ref(struct lv_shared *sh)
{
    pthread_mutex_lock(&sh->lock);
    sh->refs++;
    pthread_mutex_unlock(&sh->lock);
}

/* Also libvirt's free function for every callback's opaque pointer. */
static void
shared_unref(void *opaque)
{
    struct lv_shared *sh = opaque;
    bool last;

    if (!sh)
        return;
    pthread_mutex_lock(&sh->lock);
    last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

static const char *
dom_name(virDomainPtr dom)
{
    const char *name = virDomainGetName(dom);
    return name ? name : "";
}

static void
queue_event(struct lv_shared *sh, virConnectPtr conn, virDomainPtr dom, enum lv_event_kind kind)
{
    char uuid[HV_UUID_LEN];

    if (virDomainGetUUIDString(dom, uuid) < 0)
        return;
    pthread_mutex_lock(&sh->lock);
    if (conn == sh->conn) {
        if (sh->n_events < EVENT_QUEUE_MAX) {
            memcpy(sh->events[sh->n_events].uuid, uuid, sizeof(uuid));
            sh->events[sh->n_events].kind = kind;
            sh->n_events++;
        } else {
            sh->overflow = true;
        }
    }
    pthread_mutex_unlock(&sh->lock);
}

static int
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    log_debug(LOG_MODULE, "event=lifecycle name=%s type=%d detail=%d", dom_name(dom), event,
              detail);
    if (event == VIR_DOMAIN_EVENT_STARTED)
        queue_event(opaque, conn, dom, LV_EVENT_STARTED);
    else if (event == VIR_DOMAIN_EVENT_DEFINED)
        queue_event(opaque, conn, dom, LV_EVENT_DEFINED);
    return 0;
}

static void
on_balloon_change(virConnectPtr conn, virDomainPtr dom, unsigned long long actual_kib, void *opaque)
{
    struct lv_shared *sh = opaque;

    (void)conn;
    /* The next sample reads the balloon anyway; the event only says it moves. */
    pthread_mutex_lock(&sh->lock);
    sh->balloon_events++;
    pthread_mutex_unlock(&sh->lock);
    log_debug(LOG_MODULE, "event=balloon_change name=%s actual_kib=%llu", dom_name(dom),
              actual_kib);
}

static void
on_metadata_change(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri, void *opaque)
{
    if (type != VIR_DOMAIN_METADATA_ELEMENT || (nsuri && strcmp(nsuri, META_URI) != 0))
        return;
    log_debug(LOG_MODULE, "event=metadata_change name=%s", dom_name(dom));
    queue_event(opaque, conn, dom, LV_EVENT_METADATA);
}

static void
on_migration_iteration(virConnectPtr conn, virDomainPtr dom, int iteration, void *opaque)
{
    log_debug(LOG_MODULE, "event=migration_iteration name=%s iteration=%d", dom_name(dom),
              iteration);
    queue_event(opaque, conn, dom, LV_EVENT_MIGRATING);
}

static void
on_close(virConnectPtr conn, int reason, void *opaque)
{
    struct lv_shared *sh = opaque;

    pthread_mutex_lock(&sh->lock);
    if (conn == sh->conn) {
        sh->closed = true;
        sh->close_reason = reason;
    }
    pthread_mutex_unlock(&sh->lock);
}

static const char *
close_reason_name(int reason)
{
    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_ERROR:
        return "error";
    case VIR_CONNECT_CLOSE_REASON_EOF:
        return "eof";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        return "keepalive";
    case VIR_CONNECT_CLOSE_REASON_CLIENT:
        return "client";
    default:
        return "unknown";
    }
}

/* ---- the domain cache (caller's thread) ---- */

static int
dom_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lv_dom *)a)->uuid, ((const struct lv_dom *)b)->uuid);
}

static struct lv_dom *
cache_find(struct lv *lv, const char *uuid)
{
    struct lv_dom key;

    if (lv->n_cache == 0)
        return NULL;
    copy_str(key.uuid, sizeof(key.uuid), uuid);
    return bsearch(&key, lv->cache, lv->n_cache, sizeof(*lv->cache), dom_cmp);
}

/* Events were lost: nothing cached can be trusted, and any domain may have begun migrating
 * (its job is asked for on the next sample, which clears the doubt). */
static void
cache_invalidate_all(struct lv *lv)
{
    for (size_t i = 0; i < lv->n_cache; i++) {
        lv->cache[i].xml_valid = false;
        lv->cache[i].meta_valid = false;
        lv->cache[i].period_set = false;
        lv->cache[i].maybe_migrating = true;
    }
}

/* Apply what the callbacks saw since the last round. */
static void
drain_events(struct lv *lv)
{
    struct lv_shared *sh = lv->shared;
    size_t n;
    bool overflow;

    pthread_mutex_lock(&sh->lock);
    n = sh->n_events;
    memcpy(lv->events, sh->events, n * sizeof(*lv->events));
    overflow = sh->overflow;
    sh->n_events = 0;
    sh->overflow = false;
    pthread_mutex_unlock(&sh->lock);

    if (overflow)
        cache_invalidate_all(lv);
    for (size_t i = 0; i < n; i++) {
        struct lv_dom *d = cache_find(lv, lv->events[i].uuid);
        if (!d)
            continue; /* not seen yet: the next sample fetches everything anyway */
        switch (lv->events[i].kind) {
        case LV_EVENT_STARTED:
            d->xml_valid = false;
            d->meta_valid = false;
            d->period_set = false;
            break;
        case LV_EVENT_DEFINED:
            d->xml_valid = false;
            break;
        case LV_EVENT_METADATA:
            d->meta_valid = false;
            break;
        case LV_EVENT_MIGRATING:
            d->maybe_migrating = true;
            break;
        }
    }
}

/* The entry of this round's cache for uuid: last round's, or a fresh one. */
static struct lv_dom *
next_push(struct lv *lv, const char *uuid)
{
    struct lv_dom *old = cache_find(lv, uuid);
    struct lv_dom *d;

    if (lv->n_next == lv->cap_next) {
        lv->cap_next = lv->cap_next ? lv->cap_next * 2 : 64;
        lv->next = util_xrealloc(lv->next, lv->cap_next, sizeof(*lv->next));
    }
    d = &lv->next[lv->n_next++];
    if (old) {
        *d = *old;
    } else {
        memset(d, 0, sizeof(*d));
        copy_str(d->uuid, sizeof(d->uuid), uuid);
    }
    return d;
}

/* This round's cache replaces the last: domains no longer active are forgotten. */
static void
cache_commit(struct lv *lv)
{
    struct lv_dom *tmp = lv->cache;
    size_t cap = lv->cap_cache;

    qsort(lv->next, lv->n_next, sizeof(*lv->next), dom_cmp);
    lv->cache = lv->next;
    lv->n_cache = lv->n_next;
    lv->cap_cache = lv->cap_next;
    lv->next = tmp;
    lv->cap_next = cap;
    lv->n_next = 0;
}

/* ---- connection ---- */

static void
lv_disconnect(struct lv *lv)
{
    virConnectPtr conn = lv->conn;

    if (!conn)
        return;
    pthread_mutex_lock(&lv->shared->lock);
    lv->shared->conn = NULL;
    lv->shared->closed = false;
    lv->shared->n_events = 0;
    pthread_mutex_unlock(&lv->shared->lock);
    /* On a dead connection deregistering still drops the callbacks locally (libvirt then calls
     * their free functions); the failure to tell the daemon is expected. */
    for (size_t i = 0; i < sizeof(lv->event_ids) / sizeof(lv->event_ids[0]); i++) {
        if (lv->event_ids[i] >= 0)
            virConnectDomainEventDeregisterAny(conn, lv->event_ids[i]);
        lv->event_ids[i] = -1;
    }
    if (lv->close_cb)
        virConnectUnregisterCloseCallback(conn, on_close);
    lv->close_cb = false;
    virConnectClose(conn);
    lv->conn = NULL;
}

static void
register_callbacks(struct lv *lv)
{
    static const struct {
        int id;
        virConnectDomainEventGenericCallback cb;
    } events[] = {
        {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle)},
        {VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(on_balloon_change)},
        {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(on_metadata_change)},
        {VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
         VIR_DOMAIN_EVENT_CALLBACK(on_migration_iteration)},
    };
    _Static_assert(sizeof(events) / sizeof(events[0]) ==
                       sizeof(((struct lv *)0)->event_ids) / sizeof(int),
                   "one id per event");

    /* The close callback takes no reference: drivers without a close-callback hook (the test
     * driver) accept the registration but never call its free function, and the remote driver
     * runs the callback under the same lock that virConnectUnregisterCloseCallback takes, so
     * none runs once lv_disconnect has unregistered it. */
    if (virConnectRegisterCloseCallback(lv->conn, on_close, lv->shared, NULL) == 0)
        lv->close_cb = true;
    else
        log_debug(LOG_MODULE, "event=no_close_callback uri=%s", lv->uri);
    /* Each domain event holds a reference that libvirt gives back through shared_unref when it
     * drops the callback (which may be after deregistering, if it is running); a registration
     * that fails never took it. */
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        shared_ref(lv->shared);
        lv->event_ids[i] = virConnectDomainEventRegisterAny(lv->conn, NULL, events[i].id,
                                                            events[i].cb, lv->shared, shared_unref);
        if (lv->event_ids[i] < 0) {
            shared_unref(lv->shared);
            log_debug(LOG_MODULE, "event=no_domain_event id=%d uri=%s", events[i].id, lv->uri);
        }
    }
}

/* One attempt to open. Returns 0; -ENOTCONN when the daemon could not be reached (it may come
 * back); -EINVAL when the URI itself is refused (unparsable, no such driver, a bad test XML). */
static int
lv_connect(struct lv *lv, char *err, size_t err_len)
{
    struct lv_err e;
    virConnectPtr conn = virConnectOpen(lv->uri);

    if (!conn) {
        err_take(&e);
        snprintf(err, err_len, "%s", e.msg);
        /* The transport's system errors (no socket, refused, reset) are a daemon that is down
         * or restarting; every other refusal will not fix itself. */
        return e.domain == VIR_FROM_RPC && e.code == VIR_ERR_SYSTEM_ERROR ? -ENOTCONN : -EINVAL;
    }
    lv->conn = conn;
    pthread_mutex_lock(&lv->shared->lock);
    lv->shared->conn = conn;
    lv->shared->closed = false;
    lv->shared->n_events = 0;
    pthread_mutex_unlock(&lv->shared->lock);
    /* Remote drivers only: a hung daemon is then noticed in ~20 s instead of never. Local
     * drivers (test:///) answer 1 (nothing to do). */
    if (virConnectSetKeepAlive(conn, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT) < 0)
        log_debug(LOG_MODULE, "event=no_keepalive uri=%s", lv->uri);
    register_callbacks(lv);
    /* Everything cached may have changed while we were away; host support is probed again. */
    cache_invalidate_all(lv);
    lv->host_source = LV_HOST_NODE_STATS;
    return 0;
}

static void
lv_outage(struct lv *lv, const char *what, const char *detail)
{
    if (log_limit_failure(&lv->outage, util_clock_ms(CLOCK_MONOTONIC), OUTAGE_LOG_MAX_MS))
        log_warn(LOG_MODULE, "event=%s uri=%s failures=%" PRIu64 " err=\"%s\"", what, lv->uri,
                 lv->outage.failures, detail);
}

/* The connection died under a call: drop it; the next op tries to reopen at once. */
static void
lv_lost(struct lv *lv, const char *reason)
{
    if (!lv->conn)
        return;
    lv_disconnect(lv);
    lv_outage(lv, "connection_lost", reason);
    lv->retry_at_ms = 0;
    lv->retry_ms = RETRY_FIRST_MS;
}

/* 0 with lv->conn open, or -ENOTCONN (reopening when the back-off allows). */
static int
lv_ensure(struct lv *lv)
{
    char err[HV_ERR_MAX];
    uint64_t now_ms;
    uint64_t failures;
    bool closed;
    int reason;

    if (lv->conn) {
        pthread_mutex_lock(&lv->shared->lock);
        closed = lv->shared->closed;
        reason = lv->shared->close_reason;
        pthread_mutex_unlock(&lv->shared->lock);
        if (!closed)
            return 0;
        lv_lost(lv, close_reason_name(reason));
    }
    now_ms = util_clock_ms(CLOCK_MONOTONIC);
    if (now_ms < lv->retry_at_ms)
        return -ENOTCONN;
    if (lv_connect(lv, err, sizeof(err)) < 0) {
        lv->retry_at_ms = now_ms + lv->retry_ms;
        lv->retry_ms = lv->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : lv->retry_ms * 2;
        lv_outage(lv, "unreachable", err);
        return -ENOTCONN;
    }
    lv->retry_at_ms = 0;
    lv->retry_ms = RETRY_FIRST_MS;
    failures = log_limit_success(&lv->outage);
    if (failures)
        log_info(LOG_MODULE, "event=reconnected uri=%s failures=%" PRIu64, lv->uri, failures);
    return 0;
}

/* ---- sample ---- */

static struct hv_vm *
vm_push(struct lv *lv, virDomainPtr dom)
{
    struct hv_vm *vm;

    if (lv->n_vms == lv->cap_vms) {
        lv->cap_vms = lv->cap_vms ? lv->cap_vms * 2 : 64;
        lv->vms = util_xrealloc(lv->vms, lv->cap_vms, sizeof(*lv->vms));
    }
    vm = &lv->vms[lv->n_vms++];
    memset(vm, 0, sizeof(*vm));
    if (virDomainGetUUIDString(dom, vm->uuid) < 0)
        vm->uuid[0] = '\0';
    copy_str(vm->name, sizeof(vm->name), dom_name(dom));
    vm->managed = true;
    vm->has_balloon = true;
    return vm;
}

static enum sched_vm_state
map_state(int state, int reason)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
        return reason == VIR_DOMAIN_RUNNING_POSTCOPY ? SCHED_VM_MIGRATING : SCHED_VM_RUNNING;
    case VIR_DOMAIN_PAUSED:
        if (reason == VIR_DOMAIN_PAUSED_MIGRATION || reason == VIR_DOMAIN_PAUSED_POSTCOPY)
            return SCHED_VM_MIGRATING;
        return SCHED_VM_PAUSED;
    default:
        return SCHED_VM_OTHER;
    }
}

/* The guest's own numbers count only once it has reported (last-update > 0); before its
 * balloon driver loads, a real guest shows last-update 0 for 15-20 s. */
static void
set_guest_stats(struct hv_vm *vm,
                const uint64_t *unused_kib,
                const uint64_t *usable_kib,
                uint64_t last_update_s,
                uint64_t now_wall_ms)
{
    uint64_t at_ms;

    if (last_update_s == 0 || (!unused_kib && !usable_kib))
        return;
    at_ms = last_update_s > UINT64_MAX / 1000u ? UINT64_MAX : last_update_s * 1000u;
    vm->stats_stamp_ms = at_ms;
    vm->stats_age_ms = now_wall_ms > at_ms ? now_wall_ms - at_ms : 0;
    if (unused_kib) {
        vm->has_unused = true;
        vm->unused_kib = *unused_kib;
    }
    if (usable_kib) {
        vm->has_usable = true;
        vm->usable_kib = *usable_kib;
    }
}

/* Max, actual, stats (and the state when want_state) of one domain, by per-domain calls.
 * Returns 0, -ENOENT (it stopped or vanished) or -ENOTCONN. */
static int
fill_per_domain(
    struct lv *lv, virDomainPtr dom, struct hv_vm *vm, bool want_state, uint64_t now_wall_ms)
{
    virDomainMemoryStatStruct stats[VIR_DOMAIN_MEMORY_STAT_NR];
    virDomainInfo info;
    uint64_t unused = 0, usable = 0, last_update = 0;
    bool has_unused = false, has_usable = false;
    int n;
    int rc;

    if (virDomainGetInfo(dom, &info) < 0) {
        rc = last_errno(lv, dom, "get_info");
        return rc == -ENOTCONN ? rc : -ENOENT;
    }
    if (info.state == VIR_DOMAIN_SHUTOFF || info.state == VIR_DOMAIN_NOSTATE)
        return -ENOENT;
    vm->max_kib = info.maxMem;
    vm->actual_kib = info.memory;
    if (want_state) {
        int state = info.state, reason = 0;
        /* Only a paused domain's reason matters (migration); one more call just for that. */
        if (state == VIR_DOMAIN_PAUSED && virDomainGetState(dom, &state, &reason, 0) < 0)
            reason = 0;
        vm->state = map_state(state, reason);
    }
    n = virDomainMemoryStats(dom, stats, VIR_DOMAIN_MEMORY_STAT_NR, 0);
    if (n < 0) {
        rc = last_errno(lv, dom, "memory_stats");
        if (rc == -ENOTCONN || rc == -ENOENT)
            return rc;
        return 0; /* no stats this round */
    }
    for (int i = 0; i < n && i < VIR_DOMAIN_MEMORY_STAT_NR; i++) {
        switch (stats[i].tag) {
        case VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON:
            vm->actual_kib = stats[i].val;
            break;
        case VIR_DOMAIN_MEMORY_STAT_UNUSED:
            unused = stats[i].val;
            has_unused = true;
            break;
        case VIR_DOMAIN_MEMORY_STAT_USABLE:
            usable = stats[i].val;
            has_usable = true;
            break;
        case VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE:
            last_update = stats[i].val;
            break;
        case VIR_DOMAIN_MEMORY_STAT_AVAILABLE:
            vm->guest_total_kib = stats[i].val;
            break;
        case VIR_DOMAIN_MEMORY_STAT_RSS:
            vm->rss_kib = stats[i].val;
            vm->has_rss = true;
            break;
        default:
            break;
        }
    }
    set_guest_stats(vm, has_unused ? &unused : NULL, has_usable ? &usable : NULL, last_update,
                    now_wall_ms);
    return 0;
}

/* What the cache knows of the domain, fetched where it is stale, copied into vm. Returns 0,
 * -ENOENT (the domain vanished) or -ENOTCONN. */
static int
add_cached(struct lv *lv, virDomainPtr dom, struct hv_vm *vm)
{
    struct lv_dom *d = next_push(lv, vm->uuid);
    int rc;

    if (!d->xml_valid) {
        char *xml = virDomainGetXMLDesc(dom, 0);
        if (!xml) {
            rc = last_errno(lv, dom, "get_xml");
            if (rc == -ENOTCONN || rc == -ENOENT)
                return rc;
            d->has_balloon = true; /* unknown: set_target will hear it from libvirt */
        } else {
            unsigned period_s = 0;
            if (vm_xml_has_balloon(xml, &d->has_balloon) < 0) {
                log_debug(LOG_MODULE, "vm=%s event=unparsable_xml", vm->uuid);
                d->has_balloon = true;
            }
            vm_xml_stats_period(xml, &period_s);
            d->period_s = period_s;
            d->xml_valid = true;
            free(xml);
        }
    }

    if (!d->meta_valid) {
        struct vm_overrides ov = {.managed = true};
        char bad[VM_XML_BAD_LEN];
        char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, META_URI,
                                         VIR_DOMAIN_AFFECT_LIVE);
        if (!xml) {
            struct lv_err e;
            err_take(&e);
            if (e.code == VIR_ERR_NO_DOMAIN_METADATA) {
                d->meta_valid = true;
                d->bad_meta_hash = 0;
            } else {
                rc = err_errno(lv, &e, dom);
                if (rc == -ENOTCONN || rc == -ENOENT)
                    return rc;
                /* The operator may have said managed="no": leave it alone until we know. */
                log_debug(LOG_MODULE, "vm=%s event=metadata_unreadable err=\"%s\"", vm->uuid,
                          e.msg);
                ov.managed = false;
            }
        } else {
            if (vm_xml_overrides(xml, &ov, bad, sizeof(bad)) < 0) {
                uint64_t h = hash_str(xml);
                /* Never guess what a malformed value meant: unmanaged, and said once. */
                if (h != d->bad_meta_hash)
                    log_warn(LOG_MODULE,
                             "vm=%s name=%s event=bad_metadata attribute=%s uri=%s "
                             "action=unmanaged",
                             vm->uuid, vm->name, bad, META_URI);
                d->bad_meta_hash = h;
                ov = (struct vm_overrides){.managed = false};
            } else {
                d->bad_meta_hash = 0;
            }
            d->meta_valid = true;
            free(xml);
        }
        d->managed = ov.managed;
        d->min_kib = ov.min_kib;
        d->cap_kib = ov.cap_kib;
        d->weight = ov.weight;
    }

    if (lv->period_s && d->has_balloon && !d->period_set) {
        if (virDomainSetMemoryStatsPeriod(dom, (int)lv->period_s, VIR_DOMAIN_AFFECT_LIVE) < 0) {
            rc = last_errno(lv, dom, "set_stats_period");
            if (rc == -ENOTCONN || rc == -ENOENT)
                return rc;
        } else {
            d->period_s = lv->period_s;
        }
        d->period_set = true; /* a refusal is not retried every round */
    }

    if (d->maybe_migrating) {
        virDomainJobInfo job;
        /* Source-side precopy shows no state change; its job does, until it ends. */
        if (virDomainGetJobInfo(dom, &job) == 0 && job.type != VIR_DOMAIN_JOB_NONE)
            vm->state = SCHED_VM_MIGRATING;
        else
            d->maybe_migrating = false;
    }

    vm->has_balloon = d->has_balloon;
    vm->stats_period_s = d->period_s;
    vm->managed = d->managed;
    vm->min_kib = d->min_kib;
    vm->cap_kib = d->cap_kib;
    vm->weight = d->weight;
    return 0;
}

static bool
param_ull(virDomainStatsRecordPtr rec, const char *name, uint64_t *out)
{
    unsigned long long v;

    if (virTypedParamsGetULLong(rec->params, rec->nparams, name, &v) != 1)
        return false;
    *out = v;
    return true;
}

static int
sample_bulk(struct lv *lv, uint64_t now_wall_ms)
{
    virDomainStatsRecordPtr *recs = NULL;
    int n;
    int rc = 0;

    n = virConnectGetAllDomainStats(lv->conn, VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_STATE,
                                    &recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
    if (n < 0)
        return last_errno(lv, NULL, "get_all_domain_stats");
    for (int i = 0; i < n && rc == 0; i++) {
        virDomainStatsRecordPtr rec = recs[i];
        struct hv_vm *vm = vm_push(lv, rec->dom);
        uint64_t unused, usable, last_update = 0;
        bool has_unused, has_usable;
        int state = -1, reason = 0;
        bool have_state =
            virTypedParamsGetInt(rec->params, rec->nparams, "state.state", &state) == 1;

        if (have_state &&
            virTypedParamsGetInt(rec->params, rec->nparams, "state.reason", &reason) != 1)
            reason = 0;
        vm->state = map_state(state, reason);
        if (param_ull(rec, "balloon.current", &vm->actual_kib) &&
            param_ull(rec, "balloon.maximum", &vm->max_kib)) {
            has_unused = param_ull(rec, "balloon.unused", &unused);
            has_usable = param_ull(rec, "balloon.usable", &usable);
            param_ull(rec, "balloon.last-update", &last_update);
            vm->has_rss = param_ull(rec, "balloon.rss", &vm->rss_kib);
            if (!param_ull(rec, "balloon.available", &vm->guest_total_kib))
                vm->guest_total_kib = 0;
            set_guest_stats(vm, has_unused ? &unused : NULL, has_usable ? &usable : NULL,
                            last_update, now_wall_ms);
        } else if (lv->path == HV_LIBVIRT_STATS_AUTO) {
            rc = fill_per_domain(lv, rec->dom, vm, !have_state, now_wall_ms);
        }
        if (rc == 0)
            rc = add_cached(lv, rec->dom, vm);
        if (rc == -ENOENT) {
            /* Stopped between the bulk call and ours: it is not running any more. */
            lv->n_vms--;
            rc = 0;
        }
    }
    if (recs)
        virDomainStatsRecordListFree(recs);
    return rc;
}

static int
sample_per_domain(struct lv *lv, uint64_t now_wall_ms)
{
    virDomainPtr *doms = NULL;
    int n;
    int rc = 0;

    n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0)
        return last_errno(lv, NULL, "list_all_domains");
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            struct hv_vm *vm = vm_push(lv, doms[i]);
            rc = fill_per_domain(lv, doms[i], vm, true, now_wall_ms);
            if (rc == 0)
                rc = add_cached(lv, doms[i], vm);
            if (rc == -ENOENT) {
                lv->n_vms--;
                rc = 0;
            }
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    return rc;
}

static void
host_fallback(struct lv *lv, enum lv_host_source source, const char *why)
{
    static const char *const names[] = {
        [LV_HOST_NODE_STATS] = "node_memory_stats",
        [LV_HOST_FREE_MEMORY] = "node_free_memory",
        [LV_HOST_SUM_ACTUAL] = "total_less_vms",
    };

    lv->host_source = source;
    if (lv->host_source_logged[source])
        return;
    lv->host_source_logged[source] = true;
    log_info(LOG_MODULE, "event=host_memory_fallback source=%s uri=%s why=\"%s\"", names[source],
             lv->uri, why);
}

/* A URI without a host part (qemu:///system) is this machine's hypervisor. */
static bool
uri_is_local(const char *uri)
{
    const char *sep = uri ? strstr(uri, "://") : NULL;
    return sep && sep[3] == '/';
}

static int
sample_host(struct lv *lv, struct hv_host *host)
{
    virNodeInfo info;
    struct lv_err e;
    int rc;

    if (lv->host_source == LV_HOST_NODE_STATS) {
        virNodeMemoryStatsPtr params = NULL;
        int nparams = 0;
        uint64_t total = 0, avail = 0;

        if (virNodeGetMemoryStats(lv->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &nparams, 0) ==
                0 &&
            nparams > 0) {
            params = util_xcalloc((size_t)nparams, sizeof(*params));
            if (virNodeGetMemoryStats(lv->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, params, &nparams,
                                      0) < 0)
                nparams = -1;
        } else {
            nparams = -1;
        }
        if (nparams < 0) {
            free(params);
            err_take(&e);
            rc = err_errno(lv, &e, NULL);
            if (rc != -ENOTSUP)
                return rc;
            host_fallback(lv, LV_HOST_FREE_MEMORY, e.msg);
        } else {
            for (int i = 0; i < nparams; i++) {
                if (strcmp(params[i].field, VIR_NODE_MEMORY_STATS_TOTAL) == 0)
                    total = params[i].value;
                else if (strcmp(params[i].field, VIR_NODE_MEMORY_STATS_FREE) == 0 ||
                         strcmp(params[i].field, VIR_NODE_MEMORY_STATS_BUFFERS) == 0 ||
                         strcmp(params[i].field, VIR_NODE_MEMORY_STATS_CACHED) == 0)
                    avail += params[i].value;
            }
            free(params);
            /* cached includes shmem (guest RAM in shared memory): on this host, the kernel's
             * MemAvailable, which leaves it out, is the truth (meminfo.h). */
            uint64_t local_kib;
            if (uri_is_local(lv->uri) && meminfo_available_kib(MEMINFO_PATH, &local_kib) == 0)
                avail = local_kib;
            if (total == 0) {
                host_fallback(lv, LV_HOST_FREE_MEMORY, "node memory stats without a total");
            } else {
                host->total_kib = total;
                host->available_kib = avail < total ? avail : total;
                return 0;
            }
        }
    }

    if (virNodeGetInfo(lv->conn, &info) < 0)
        return last_errno(lv, NULL, "node_get_info");
    host->total_kib = info.memory;

    if (lv->host_source == LV_HOST_FREE_MEMORY) {
        unsigned long long free_bytes = virNodeGetFreeMemory(lv->conn);
        /* 0 is its error value (and no host has nothing free). */
        if (free_bytes > 0) {
            uint64_t free_kib = free_bytes / 1024u;
            host->available_kib = free_kib < host->total_kib ? free_kib : host->total_kib;
            return 0;
        }
        err_take(&e);
        rc = err_errno(lv, &e, NULL);
        if (rc == -ENOTCONN)
            return rc;
        host_fallback(lv, LV_HOST_SUM_ACTUAL, e.msg);
    }

    /* The VMs' balloons are most of what a hypervisor host spends; a rough but safe estimate
     * when the driver tells nothing better. */
    host->available_kib = host->total_kib;
    for (size_t i = 0; i < lv->n_vms; i++)
        host->available_kib -= lv->vms[i].actual_kib < host->available_kib ? lv->vms[i].actual_kib
                                                                           : host->available_kib;
    return 0;
}

static int
lv_sample(void *ctx, struct hv_host *host, struct hv_vm *vms, size_t cap, size_t *n_vms)
{
    struct lv *lv = ctx;
    uint64_t now_wall_ms;
    int rc;

    *n_vms = 0;
    memset(host, 0, sizeof(*host));
    rc = lv_ensure(lv);
    if (rc < 0)
        return rc;
    drain_events(lv);
    lv->n_vms = 0;
    lv->n_next = 0;
    now_wall_ms = util_clock_ms(CLOCK_REALTIME); /* last-update is the guest's wall clock */

    if (lv->path == HV_LIBVIRT_STATS_PER_DOMAIN) {
        rc = sample_per_domain(lv, now_wall_ms);
    } else {
        rc = sample_bulk(lv, now_wall_ms);
        if (rc == -ENOTSUP && lv->path == HV_LIBVIRT_STATS_AUTO) {
            lv->n_vms = 0;
            lv->n_next = 0;
            rc = sample_per_domain(lv, now_wall_ms);
        }
    }
    if (rc == 0)
        rc = sample_host(lv, host);
    if (rc < 0) {
        if (rc == -ENOTCONN)
            lv_lost(lv, "call failed");
        memset(host, 0, sizeof(*host));
        return rc;
    }
    cache_commit(lv);

    *n_vms = lv->n_vms;
    if (vms && cap)
        memcpy(vms, lv->vms, (lv->n_vms < cap ? lv->n_vms : cap) * sizeof(*vms));
    return lv->n_vms > cap ? -ENOSPC : 0;
}

/* ---- set_target, set_stats_period ---- */

static int
lv_set_target(void *ctx, const char *uuid, uint64_t target_kib)
{
    struct lv *lv = ctx;
    struct lv_dom *d;
    virDomainPtr dom;
    int rc;

    if (!uuid || target_kib == 0 || target_kib > ULONG_MAX)
        return -EINVAL;
    rc = lv_ensure(lv);
    if (rc < 0)
        return rc;
    /* libvirt's test driver "sets" a domain without a balloon device; QEMU refuses. The XML
     * we read says it up front, the same way for both. */
    d = cache_find(lv, uuid);
    if (d && d->xml_valid && !d->has_balloon)
        return -ENOTSUP;

    dom = virDomainLookupByUUIDString(lv->conn, uuid);
    if (!dom) {
        rc = last_errno(lv, NULL, "lookup"); /* NO_DOMAIN: -ENOENT; a malformed UUID: -EINVAL */
        goto out;
    }
    if (virDomainSetMemoryFlags(dom, (unsigned long)target_kib, VIR_DOMAIN_AFFECT_LIVE) < 0) {
        struct lv_err e;
        err_take(&e);
        rc = err_errno(lv, &e, dom);
        if (rc == -EIO || rc == -EINVAL)
            log_warn(LOG_MODULE, "vm=%s op=set_target target_kib=%" PRIu64 " rc=%d err=\"%s\"",
                     uuid, target_kib, rc, e.msg);
        else
            log_debug(LOG_MODULE, "vm=%s op=set_target target_kib=%" PRIu64 " rc=%d err=\"%s\"",
                      uuid, target_kib, rc, e.msg);
    }
    virDomainFree(dom);
out:
    if (rc == -ENOTCONN)
        lv_lost(lv, "call failed");
    return rc;
}

static int
lv_set_stats_period(void *ctx, unsigned period_s)
{
    struct lv *lv = ctx;
    virDomainPtr *doms = NULL;
    int n;
    int rc = 0;

    if (period_s > INT_MAX)
        return -EINVAL;
    /* Remembered even while disconnected: every domain gets it once we are back. */
    lv->period_s = period_s;
    if (period_s == 0)
        return 0; /* forgotten: domains that start from now on are left as they are */
    rc = lv_ensure(lv);
    if (rc < 0)
        return rc;
    n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) {
        rc = last_errno(lv, NULL, "list_all_domains");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char uuid[HV_UUID_LEN];
        struct lv_dom *d = NULL;

        if (rc == 0 && virDomainGetUUIDString(doms[i], uuid) == 0)
            d = cache_find(lv, uuid);
        if (rc == 0 && !(d && d->xml_valid && !d->has_balloon)) {
            if (virDomainSetMemoryStatsPeriod(doms[i], (int)period_s, VIR_DOMAIN_AFFECT_LIVE) < 0) {
                /* A domain that stopped or cannot (no balloon) is no failure of the call. */
                if (last_errno(lv, doms[i], "set_stats_period") == -ENOTCONN)
                    rc = -ENOTCONN;
            } else if (d) {
                d->period_s = period_s;
            }
            if (d)
                d->period_set = true;
        }
        virDomainFree(doms[i]);
    }
    free(doms);
out:
    if (rc == -ENOTCONN)
        lv_lost(lv, "call failed");
    return rc;
}

/* ---- open, close ---- */

static void
lv_close(void *ctx)
{
    struct lv *lv = ctx;

    if (!lv)
        return;
    lv_disconnect(lv);
    shared_unref(lv->shared);
    free(lv->cache);
    free(lv->next);
    free(lv->vms);
    free(lv->uri);
    free(lv);
}

static const struct hv_ops lv_ops = {
    .name = "libvirt",
    .sample = lv_sample,
    .set_target = lv_set_target,
    .set_stats_period = lv_set_stats_period,
    .close = lv_close,
};

int
hv_libvirt_open(const char *uri, struct hv **out, char *err, size_t err_len)
{
    struct lv *lv;
    struct hv *hv;
    char why[HV_ERR_MAX];
    int rc;

    *out = NULL;
    if (!uri || !*uri) {
        snprintf(err, err_len, "empty libvirt URI");
        return -EINVAL;
    }
    pthread_once(&global_once, global_init);
    if (global_rc < 0) {
        snprintf(err, err_len, "libvirt could not be initialised (event loop)");
        return global_rc;
    }

    lv = util_xcalloc(1, sizeof(*lv));
    lv->uri = util_xstrdup(uri);
    lv->shared = shared_new();
    for (size_t i = 0; i < sizeof(lv->event_ids) / sizeof(lv->event_ids[0]); i++)
        lv->event_ids[i] = -1;
    lv->retry_ms = RETRY_FIRST_MS;

    rc = lv_connect(lv, why, sizeof(why));
    if (rc == -EINVAL) {
        snprintf(err, err_len, "libvirt URI %s refused: %s", uri, why);
        lv_close(lv);
        return rc;
    }
    if (rc == -ENOTCONN) {
        /* An agent may start before libvirtd: sample answers -ENOTCONN until it is up. */
        lv->retry_at_ms = util_clock_ms(CLOCK_MONOTONIC) + lv->retry_ms;
        lv->retry_ms *= 2;
        lv_outage(lv, "unreachable", why);
    }

    hv = util_xcalloc(1, sizeof(*hv));
    hv->ops = &lv_ops;
    hv->ctx = lv;
    *out = hv;
    return 0;
}

int
hv_libvirt_set_stats_path(struct hv *hv, enum hv_libvirt_stats_path path)
{
    if (!hv || hv->ops != &lv_ops)
        return -EINVAL;
    switch (path) {
    case HV_LIBVIRT_STATS_AUTO:
    case HV_LIBVIRT_STATS_BULK:
    case HV_LIBVIRT_STATS_PER_DOMAIN:
        ((struct lv *)hv->ctx)->path = path;
        return 0;
    }
    return -EINVAL;
}
