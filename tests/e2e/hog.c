/*
 * hog.c - the memory hog of the e2e guests (statically linked; the initramfs /init runs it).
 *
 * It allocates and touches anonymous memory at a set rate (4 MiB chunks) up to a set limit,
 * holds it, and frees it when told. It measures what an application in the guest would suffer:
 * an allocation *fails* when the guest's MemAvailable would fall below a reserve (24 MiB unless
 * the command says otherwise) after it - the definition of issue 8. A failed allocation is not
 * made: the hog postpones it and tries again every tick (50 ms) until memory arrives (the
 * balloon deflating), so a hog whose limit is out of reach keeps its guest short, asking, as a
 * real workload would, and holds what it got. It counts, since its last `hog` command, the
 * seconds (1 s buckets from the command) in which at least one allocation due at the set rate
 * failed (failed_s) or was postponed for any reason (waited_s >= failed_s).
 *
 * No-OOM protection: whatever the reserve, a chunk is also postponed (a wait, not a failure)
 * while MemFree after it would be below the kernel's high watermarks (/proc/zoneinfo) plus a
 * margin: below the min watermark the kernel OOM-kills, and the watermarks are set at boot for
 * the guest's maximum memory, not what the balloon leaves. (MemAvailable already excludes the
 * high watermarks, so a 24 MiB MemAvailable reserve is the stricter of the two unless the guest
 * holds reclaimable page cache. With transparent huge pages on, min_free_kbytes alone is ~44 MiB
 * in a 1 GiB guest: the guests boot with transparent_hugepage=never.) A reserve of 0 turns the
 * MemAvailable criterion off and leaves only this guard: the harness touches every free page so.
 *
 * Control: one line per command on the virtio-serial port named "memsched.hog"
 * (/sys/class/virtio-ports/NAME/name), answered on the same port with one line
 * "ok id=ID held_mib=..." or "err id=ID why=...":
 *   [id=ID] hog RATE_MIB_S LIMIT_MIB [RESERVE_MIB]   grow toward LIMIT (from what is held);
 *                                                    RESERVE: MemAvailable kept (24; 0: off);
 *                                                    resets the waited/failed counters
 *   [id=ID] free                                     free everything held, stop the reader,
 *                                                    drop the page cache (a known state)
 *   [id=ID] cache PATH [MIB_S] | cache off           a child reads PATH (a disk) in a loop,
 *                                                    at most MIB_S (0: no limit), filling the
 *                                                    page cache / stops it
 *   [id=ID] status                                   answer only
 *   [id=ID] balloon                                  load virtio_balloon.ko (a late driver)
 * The answer: "ok id=ID state=... held_mib=... limit_mib=... memfree_mib=... avail_mib=...
 * cmd_ms=... waited_s=... failed_s=... cache=on|off".
 * The kernel command line may start a hog at boot: memsched.hog=RATE,LIMIT[,RESERVE].
 *
 * Console (stdout, the guest's serial console): one line per state change, one whenever the
 * waited/failed counters change, and one per second while the amount held changes,
 * "hog: t_ms=... state=... held_mib=... limit_mib=... rate_mib_s=... memfree_mib=...
 * avail_mib=... cmd_ms=... waited_s=... failed_s=...", so the host can read back what it held,
 * and in which second (cmd_ms: since the last hog command) an allocation failed.
 *
 * Invariants: held_mib is exactly the memory mapped and touched (whole chunks); nothing is
 * allocated while MemAvailable - chunk < reserve (reserve > 0) or MemFree - chunk < the high
 * watermarks + 16 MiB.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MIB           4u
#define MAX_CHUNKS          4096u /* 16 GiB: far above any e2e guest */
#define TICK_MS             50
#define LOG_EVERY_MS        1000
#define QUIET_LOG_MS        10000
#define PORT_NAME           "memsched.hog"
#define PORT_SCAN_MS        500
#define DEFAULT_RESERVE_MIB 24u /* MemAvailable after an allocation (issue 8) */
#define WMARK_MARGIN_MIB    16u /* above the high watermarks, whatever the reserve says */
#define LINE_MAX_BYTES      256
#define BALLOON_MODULE      "/lib/modules/virtio_balloon.ko"
#define PAGE_BYTES          4096u
#define READ_BYTES          (1u << 20)

enum hog_state {
    HOG_IDLE = 0, /* nothing asked for (or freed) */
    HOG_GROWING,  /* allocating toward the limit */
    HOG_WAITING,  /* below the limit, but the guest has no memory to spare: waiting */
    HOG_HOLDING,  /* reached the limit */
};

static const char *const state_names[] = {
    [HOG_IDLE] = "idle",
    [HOG_GROWING] = "growing",
    [HOG_WAITING] = "waiting",
    [HOG_HOLDING] = "holding",
};

struct hog {
    void *chunks[MAX_CHUNKS];
    uint32_t n_chunks;
    uint32_t rate_mib_s;
    uint32_t limit_mib;
    uint32_t reserve_mib; /* MemAvailable kept after an allocation; 0: not checked */
    double budget_mib;    /* allocation allowed by the rate, not yet used */
    enum hog_state state;
    uint64_t start_ms;
    uint64_t last_tick_ms;
    uint64_t last_log_ms;
    uint32_t logged_held_mib;
    enum hog_state logged_state;
    uint64_t cmd_ms;       /* when the last hog command arrived */
    uint32_t waited_s;     /* seconds since then with an allocation postponed (any reason) */
    uint32_t failed_s;     /* ... with an allocation failed (MemAvailable below the reserve) */
    int64_t waited_bucket; /* the last second counted in waited_s (-1: none) */
    int64_t failed_bucket; /* ... in failed_s */
    uint32_t logged_waited_s;
    uint32_t logged_failed_s;
    pid_t reader; /* the page-cache reader (cache PATH), 0 when none */
    int port_fd;
    uint64_t last_scan_ms;
    char line[LINE_MAX_BYTES];
    size_t line_len;
    char last_id[32]; /* the host resends until answered: a repeated id is answered, not rerun */
    bool last_ok;
    char last_why[64];
};

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static uint32_t
held_mib(const struct hog *h)
{
    return h->n_chunks * CHUNK_MIB;
}

/* MemFree and MemAvailable in MiB; 0 when /proc/meminfo cannot be read. */
static void
read_meminfo(uint32_t *free_mib, uint32_t *avail_mib)
{
    char buf[128];
    unsigned long kib;
    FILE *f = fopen("/proc/meminfo", "r");

    *free_mib = *avail_mib = 0;
    if (!f)
        return;
    while (fgets(buf, sizeof(buf), f)) {
        if (sscanf(buf, "MemFree: %lu kB", &kib) == 1)
            *free_mib = (uint32_t)(kib / 1024u);
        else if (sscanf(buf, "MemAvailable: %lu kB", &kib) == 1)
            *avail_mib = (uint32_t)(kib / 1024u);
    }
    fclose(f);
}

static void
log_state(struct hog *h, const char *why)
{
    uint32_t free_mib, avail_mib;

    read_meminfo(&free_mib, &avail_mib);
    uint64_t now = now_ms();
    printf("hog: t_ms=%" PRIu64 " state=%s held_mib=%" PRIu32 " limit_mib=%" PRIu32
           " rate_mib_s=%" PRIu32 " memfree_mib=%" PRIu32 " avail_mib=%" PRIu32 " cmd_ms=%" PRIu64
           " waited_s=%" PRIu32 " failed_s=%" PRIu32 "%s%s\n",
           now - h->start_ms, state_names[h->state], held_mib(h), h->limit_mib, h->rate_mib_s,
           free_mib, avail_mib, now - h->cmd_ms, h->waited_s, h->failed_s, why ? " event=" : "",
           why ? why : "");
    fflush(stdout);
    h->last_log_ms = now;
    h->logged_held_mib = held_mib(h);
    h->logged_state = h->state;
    h->logged_waited_s = h->waited_s;
    h->logged_failed_s = h->failed_s;
}

/* The sum of every zone's high watermark, MiB (0 when /proc/zoneinfo cannot be read). */
static uint32_t
high_watermarks_mib(void)
{
    char buf[256];
    unsigned long pages, sum = 0;
    FILE *f = fopen("/proc/zoneinfo", "r");

    if (!f)
        return 0;
    while (fgets(buf, sizeof(buf), f))
        if (sscanf(buf, " high %lu", &pages) == 1)
            sum += pages;
    fclose(f);
    return (uint32_t)(sum * 4u / 1024u);
}

enum grow_result {
    GROW_OK = 0,
    GROW_FAILED, /* MemAvailable would fall below the reserve: the allocation fails (postponed) */
    GROW_WAIT,   /* the no-OOM guard (MemFree near the watermarks), the chunk table, mmap */
};

/* One more chunk, every page written; or why not. */
static enum grow_result
grow_one(struct hog *h)
{
    uint32_t free_mib, avail_mib;
    uint32_t kernel_mib = high_watermarks_mib() + WMARK_MARGIN_MIB;

    if (h->n_chunks == MAX_CHUNKS)
        return GROW_WAIT;
    read_meminfo(&free_mib, &avail_mib);
    if (h->reserve_mib > 0 && avail_mib < h->reserve_mib + CHUNK_MIB)
        return GROW_FAILED;
    if (free_mib < kernel_mib + CHUNK_MIB)
        return GROW_WAIT;
    size_t bytes = (size_t)CHUNK_MIB << 20;
    unsigned char *p =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return GROW_WAIT;
    madvise(p, bytes, MADV_NOHUGEPAGE); /* exact accounting, page by page */
    for (size_t off = 0; off < bytes; off += PAGE_BYTES)
        p[off] = (unsigned char)(off / PAGE_BYTES) | 1u;
    h->chunks[h->n_chunks++] = p;
    return GROW_OK;
}

/* An allocation due at the set rate was not made at NOW: count its second (once). */
static void
count_wait(struct hog *h, uint64_t now, bool failed)
{
    int64_t bucket = (int64_t)((now - h->cmd_ms) / 1000u);

    if (bucket != h->waited_bucket) {
        h->waited_bucket = bucket;
        h->waited_s++;
    }
    if (failed && bucket != h->failed_bucket) {
        h->failed_bucket = bucket;
        h->failed_s++;
    }
}

static void
free_all(struct hog *h)
{
    for (uint32_t i = 0; i < h->n_chunks; i++)
        munmap(h->chunks[i], (size_t)CHUNK_MIB << 20);
    h->n_chunks = 0;
    h->budget_mib = 0;
    h->limit_mib = 0;
    h->rate_mib_s = 0;
    h->state = HOG_IDLE;
}

static void
start(struct hog *h, uint32_t rate_mib_s, uint32_t limit_mib, uint32_t reserve_mib)
{
    h->cmd_ms = now_ms();
    h->waited_s = h->failed_s = 0;
    h->waited_bucket = h->failed_bucket = -1;
    h->rate_mib_s = rate_mib_s;
    h->limit_mib = limit_mib;
    h->reserve_mib = reserve_mib;
    h->budget_mib = 0;
    h->state = held_mib(h) >= limit_mib ? HOG_HOLDING : HOG_GROWING;
}

/* Allocate what the rate allows since the last tick. */
static void
tick(struct hog *h, uint64_t now)
{
    double dt_s = (double)(now - h->last_tick_ms) / 1000.0;

    h->last_tick_ms = now;
    if (h->state != HOG_GROWING && h->state != HOG_WAITING)
        return;
    h->budget_mib += dt_s * h->rate_mib_s;
    if (h->budget_mib > 2.0 * h->rate_mib_s + CHUNK_MIB)
        h->budget_mib = 2.0 * h->rate_mib_s + CHUNK_MIB; /* no burst after a long wait */
    while (held_mib(h) < h->limit_mib && h->budget_mib >= CHUNK_MIB) {
        enum grow_result r = grow_one(h);
        if (r != GROW_OK) {
            count_wait(h, now, r == GROW_FAILED);
            h->state = HOG_WAITING;
            return;
        }
        h->budget_mib -= CHUNK_MIB;
        h->state = HOG_GROWING;
    }
    if (held_mib(h) >= h->limit_mib)
        h->state = HOG_HOLDING;
}

static int
load_balloon(void)
{
    int fd = open(BALLOON_MODULE, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (syscall(SYS_finit_module, fd, "", 0) < 0)
        rc = -errno;
    close(fd);
    return rc == -EEXIST ? 0 : rc;
}

/* ---- the page-cache reader ---- */

/* The reader: read PATH from start to end, again and again, through the page cache (a warm
 * cache that fills the guest's free memory, as a file server's would). It dies with the hog. */
static void
reader_main(const char *path, uint32_t rate_mib_s)
{
    static char buf[READ_BYTES];
    uint64_t passes = 0, total = 0, t0 = now_ms();

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            printf("hog: event=cache_failed path=%s error=%s\n", path, strerror(errno));
            fflush(stdout);
            _exit(1);
        }
        uint64_t bytes = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            bytes += (uint64_t)n;
            total += (uint64_t)n;
            if (rate_mib_s) { /* keep to the rate: sleep until the bytes read are due */
                uint64_t due_ms = (total >> 10) / rate_mib_s * 1000u >> 10;
                uint64_t el = now_ms() - t0;
                if (due_ms > el)
                    sleep_ms((unsigned)(due_ms - el));
            }
        }
        close(fd);
        if (n < 0 || bytes == 0) {
            printf("hog: event=cache_failed path=%s error=%s\n", path,
                   n < 0 ? strerror(errno) : "empty");
            fflush(stdout);
            _exit(1);
        }
        if (++passes <= 3 || passes % 10 == 0) {
            printf("hog: event=cache_pass path=%s pass=%" PRIu64 " mib=%" PRIu64 "\n", path, passes,
                   bytes >> 20);
            fflush(stdout);
        }
    }
}

static int
reader_start(struct hog *h, const char *path, uint32_t rate_mib_s)
{
    if (h->reader > 0)
        return -EBUSY;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        reader_main(path, rate_mib_s);
    h->reader = pid;
    return 0;
}

static void
reader_stop(struct hog *h)
{
    if (h->reader <= 0)
        return;
    kill(h->reader, SIGKILL);
    waitpid(h->reader, NULL, 0);
    h->reader = 0;
    printf("hog: event=cache_stopped\n");
    fflush(stdout);
}

/* A reader that ended by itself (it could not read its disk) is reaped and said so. */
static void
reader_reap(struct hog *h)
{
    int status;

    if (h->reader > 0 && waitpid(h->reader, &status, WNOHANG) == h->reader) {
        printf("hog: event=cache_exited status=%d\n", status);
        fflush(stdout);
        h->reader = 0;
    }
}

/* Drop the clean page cache (after the reader stops: the next scenario starts cold). */
static void
drop_caches(void)
{
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

    if (fd < 0)
        return;
    if (write(fd, "3\n", 2) < 0) {
        printf("hog: event=drop_caches_failed error=%s\n", strerror(errno));
        fflush(stdout);
    }
    close(fd);
}

/* ---- the control port ---- */

/* Find and open /dev/vportNpM whose name is PORT_NAME; -1 while it is not there. */
static int
open_port(void)
{
    DIR *dir = opendir("/sys/class/virtio-ports");
    struct dirent *de;
    char path[300], name[64];
    int fd = -1;

    if (!dir)
        return -1;
    while (fd < 0 && (de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool match =
            fgets(name, sizeof(name), f) && strncmp(name, PORT_NAME, strlen(PORT_NAME)) == 0;
        fclose(f);
        if (!match)
            continue;
        snprintf(path, sizeof(path), "/dev/%s", de->d_name);
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            printf("hog: event=port_open path=%s\n", path);
            fflush(stdout);
        }
    }
    closedir(dir);
    return fd;
}

static void
reply(struct hog *h, const char *id, bool ok, const char *why)
{
    char buf[LINE_MAX_BYTES];
    uint32_t free_mib, avail_mib;
    int n;

    h->last_ok = ok;
    snprintf(h->last_why, sizeof(h->last_why), "%s", ok ? "" : why);
    read_meminfo(&free_mib, &avail_mib);
    if (ok)
        n = snprintf(buf, sizeof(buf),
                     "ok id=%s state=%s held_mib=%" PRIu32 " limit_mib=%" PRIu32
                     " memfree_mib=%" PRIu32 " avail_mib=%" PRIu32 " cmd_ms=%" PRIu64
                     " waited_s=%" PRIu32 " failed_s=%" PRIu32 " cache=%s\n",
                     id, state_names[h->state], held_mib(h), h->limit_mib, free_mib, avail_mib,
                     now_ms() - h->cmd_ms, h->waited_s, h->failed_s, h->reader > 0 ? "on" : "off");
    else
        n = snprintf(buf, sizeof(buf), "err id=%s why=%s\n", id, why);
    if (n > 0 && h->port_fd >= 0 && write(h->port_fd, buf, (size_t)n) < 0) {
        printf("hog: event=reply_failed error=%s\n", strerror(errno));
        fflush(stdout);
    }
}

static void
command(struct hog *h, char *line)
{
    char id[32] = "-", verb[16] = "";
    unsigned rate = 0, limit = 0, reserve = DEFAULT_RESERVE_MIB;
    char *args = line;

    if (strncmp(args, "id=", 3) == 0) {
        size_t len = strcspn(args + 3, " ");
        if (len >= sizeof(id))
            len = sizeof(id) - 1;
        memcpy(id, args + 3, len);
        id[len] = '\0';
        args += 3 + strcspn(args + 3, " ");
        args += strspn(args, " ");
    }
    if (sscanf(args, "%15s", verb) != 1) {
        reply(h, id, false, "empty");
        return;
    }
    if (strcmp(id, "-") != 0 && strcmp(id, h->last_id) == 0) {
        reply(h, id, h->last_ok, h->last_why);
        return;
    }
    snprintf(h->last_id, sizeof(h->last_id), "%s", id);
    printf("hog: event=command id=%s line=\"%s\"\n", id, args);
    fflush(stdout);
    if (strcmp(verb, "hog") == 0) {
        int n = sscanf(args, "hog %u %u %u", &rate, &limit, &reserve);
        if (n < 2 || rate == 0 || limit > MAX_CHUNKS * CHUNK_MIB) {
            reply(h, id, false, "usage:hog_RATE_LIMIT_[RESERVE]");
            return;
        }
        start(h, rate, limit, reserve);
        log_state(h, "hog");
    } else if (strcmp(verb, "free") == 0) {
        uint32_t had = held_mib(h);
        free_all(h);
        reader_stop(h);
        drop_caches();
        printf("hog: event=freed freed_mib=%" PRIu32 "\n", had);
        log_state(h, "free");
    } else if (strcmp(verb, "cache") == 0) {
        char path[128] = "";
        unsigned cache_rate = 0;
        if (sscanf(args, "cache %127s %u", path, &cache_rate) < 1) {
            reply(h, id, false, "usage:cache_PATH_[MIB_S]|off");
            return;
        }
        if (strcmp(path, "off") == 0) {
            reader_stop(h);
        } else {
            int rc = reader_start(h, path, cache_rate);
            printf("hog: event=cache_started path=%s rate_mib_s=%u rc=%d\n", path, cache_rate, rc);
            fflush(stdout);
            if (rc < 0) {
                reply(h, id, false, strerror(-rc));
                return;
            }
        }
    } else if (strcmp(verb, "balloon") == 0) {
        int rc = load_balloon();
        printf("hog: event=balloon_loaded rc=%d\n", rc);
        fflush(stdout);
        if (rc < 0) {
            reply(h, id, false, strerror(-rc));
            return;
        }
    } else if (strcmp(verb, "status") != 0) {
        reply(h, id, false, "unknown_command");
        return;
    }
    reply(h, id, true, NULL);
}

/* Read what the host sent (non-blocking); run each complete line. */
static void
poll_port(struct hog *h, uint64_t now)
{
    char buf[LINE_MAX_BYTES];

    if (h->port_fd < 0) {
        if (now - h->last_scan_ms < PORT_SCAN_MS)
            return;
        h->last_scan_ms = now;
        h->port_fd = open_port();
        if (h->port_fd < 0)
            return;
    }
    for (;;) {
        ssize_t n = read(h->port_fd, buf, sizeof(buf));
        if (n <= 0)
            return; /* EAGAIN: nothing yet; 0: the host is not connected */
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || buf[i] == '\r') {
                h->line[h->line_len] = '\0';
                if (h->line_len)
                    command(h, h->line);
                h->line_len = 0;
            } else if (h->line_len + 1 < sizeof(h->line)) {
                h->line[h->line_len++] = buf[i];
            }
        }
    }
}

/* memsched.hog=RATE,LIMIT[,RESERVE] on the kernel command line starts a hog at boot. */
static void
boot_args(struct hog *h)
{
    char buf[1024];
    unsigned rate = 0, limit = 0, reserve = DEFAULT_RESERVE_MIB;
    FILE *f = fopen("/proc/cmdline", "r");

    if (!f)
        return;
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    char *arg = line ? strstr(line, "memsched.hog=") : NULL;
    if (arg && sscanf(arg, "memsched.hog=%u,%u,%u", &rate, &limit, &reserve) >= 2 && rate > 0) {
        start(h, rate, limit, reserve);
        log_state(h, "boot_hog");
    }
}

int
main(void)
{
    static struct hog h; /* the chunk table is large: not on the stack */

    h.start_ms = h.last_tick_ms = h.cmd_ms = now_ms();
    h.waited_bucket = h.failed_bucket = -1;
    h.port_fd = -1;
    h.reserve_mib = DEFAULT_RESERVE_MIB;
    printf("hog: event=start high_watermarks_mib=%" PRIu32 "\n", high_watermarks_mib());
    log_state(&h, "start");
    boot_args(&h);
    for (;;) {
        uint64_t now = now_ms();
        poll_port(&h, now);
        tick(&h, now);
        reader_reap(&h);
        /* Growing and waiting alternate as memory trickles in: at most one line a second for
         * those; reaching the limit is logged at once, and so is each second counted as waited
         * or failed (its cmd_ms says when: the host relates it to the agent's grants). */
        bool changed = h.state != h.logged_state || held_mib(&h) != h.logged_held_mib;
        bool counted = h.waited_s != h.logged_waited_s || h.failed_s != h.logged_failed_s;
        bool settled = h.state != h.logged_state && h.state == HOG_HOLDING;
        if (settled || counted || (changed && now - h.last_log_ms >= LOG_EVERY_MS) ||
            now - h.last_log_ms >= QUIET_LOG_MS)
            log_state(&h, NULL);
        sleep_ms(TICK_MS);
    }
}
