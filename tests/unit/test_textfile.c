/*
 * test_textfile.c - the agent's node_exporter textfile (agent/textfile.c): the text of a
 * hand-made round (the coordinator's names and labels for the host and its VMs, the skip
 * reason, the agent's own series, each family one group) and the atomic write (the file
 * replaced whole, readable by others, no temporary file left behind, a failure leaving the old
 * file as it was).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "text_lines.h"
#include "textfile.h"

#define UUID1 "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b01"
#define UUID2 "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b02"
#define VM1   "host=\"hv-7\",domain=\"web\",uuid=\"" UUID1 "\""
#define VM2   "host=\"hv-7\",domain=\"nodriver\",uuid=\"" UUID2 "\""

/* A round on one host: web grown by 64 MiB, nodriver left alone (no balloon). */
struct round_fixture {
    struct hv_host host;
    struct hv_vm vms[2];
    struct sched_vm snapshot[2];
    struct sched_entry entries[2];
    const struct sched_entry *entry_of[2];
    struct policy policy;
    struct round_view view;
    struct round_counters counters;
};

static void
make_round(struct round_fixture *r)
{
    memset(r, 0, sizeof(*r));
    r->host = (struct hv_host){.total_kib = MIB(16384), .available_kib = MIB(3072)};
    strcpy(r->vms[0].uuid, UUID1);
    strcpy(r->vms[0].name, "web");
    r->vms[0].max_kib = MIB(4096);
    r->vms[0].actual_kib = MIB(2048);
    r->vms[0].unused_kib = MIB(80);
    r->vms[0].has_unused = r->vms[0].managed = r->vms[0].has_balloon = true;
    r->vms[0].stats_age_ms = 1500;
    strcpy(r->vms[1].uuid, UUID2);
    strcpy(r->vms[1].name, "nodriver");
    r->vms[1].max_kib = MIB(1024);
    r->vms[1].actual_kib = MIB(1024);
    r->vms[1].managed = true;
    r->snapshot[0].target_kib = MIB(2112);
    r->snapshot[1].stuck = true;
    r->entries[0] = (struct sched_entry){.vm = 0, .reason = SCHED_REASON_GROW};
    r->entries[1] = (struct sched_entry){.vm = 1, .reason = SCHED_REASON_NO_BALLOON};
    r->entry_of[0] = &r->entries[0];
    r->entry_of[1] = &r->entries[1];
    policy_init_defaults(&r->policy);
    r->policy.host_min_unused_kib = MIB(4096); /* above what is available: negative headroom */
    r->view = (struct round_view){.host = &r->host,
                                  .vms = r->vms,
                                  .snapshot = r->snapshot,
                                  .policy = &r->policy,
                                  .entry_of = r->entry_of,
                                  .n_vms = 2};
    r->counters = (struct round_counters){.rounds = 42,
                                          .failed_rounds = 3,
                                          .grows = 5,
                                          .shrinks = 2,
                                          .granted_kib = MIB(1024),
                                          .reclaimed_kib = MIB(64),
                                          .apply_failures = 1};
}

static char *
format(const struct round_fixture *r)
{
    struct textfile_extra extra = {.host_id = "hv-7",
                                   .policy_version = 9,
                                   .round_us = 2500,
                                   .reports_dropped = 4,
                                   .messages_rejected = 6};
    size_t len;
    char *text = textfile_format(&r->view, &r->counters, &extra, &len);

    assert_int_equal(strlen(text), len);
    return text;
}

static void
test_samples(void **state)
{
    struct round_fixture r;
    (void)state;

    make_round(&r);
    char *text = format(&r);
    want_line(text, "memsched_host_memory_bytes{host=\"hv-7\"} 17179869184");
    want_line(text, "memsched_host_available_bytes{host=\"hv-7\"} 3221225472");
    want_line(text, "memsched_host_floor_headroom_bytes{host=\"hv-7\"} -1073741824");
    want_line(text, "memsched_host_vms{host=\"hv-7\"} 2");
    want_line(text, "memsched_host_overcommit_ratio{host=\"hv-7\"} 0.3125");
    want_line(text, "memsched_host_policy_version{host=\"hv-7\"} 9");
    want_line(text, "memsched_host_rounds_total{host=\"hv-7\"} 42");
    want_line(text, "memsched_host_granted_bytes_total{host=\"hv-7\"} 1073741824");
    want_line(text, "memsched_host_reclaimed_bytes_total{host=\"hv-7\"} 67108864");
    want_line(text, "memsched_host_agent_errors_total{host=\"hv-7\",kind=\"apply_failure\"} 1");
    want_line(text, "memsched_host_agent_errors_total{host=\"hv-7\",kind=\"report_dropped\"} 4");
    want_line(text, "memsched_host_agent_errors_total{host=\"hv-7\",kind=\"message_rejected\"} 6");
    want_line(text, "memsched_decisions_total{host=\"hv-7\",reason=\"grow\"} 5");
    want_line(text, "memsched_decisions_total{host=\"hv-7\",reason=\"shrink\"} 2");
    want_line(text, "memsched_agent_round_duration_seconds{host=\"hv-7\"} 0.0025");
    want_line(text, "memsched_agent_failed_rounds_total{host=\"hv-7\"} 3");
    want_line(text, "memsched_vm_max_bytes{" VM1 "} 4294967296");
    want_line(text, "memsched_vm_balloon_actual_bytes{" VM1 "} 2147483648");
    want_line(text, "memsched_vm_balloon_target_bytes{" VM1 "} 2214592512");
    want_line(text, "memsched_vm_unused_bytes{" VM1 "} 83886080");
    want_line(text, "memsched_vm_stats_age_seconds{" VM1 "} 1.5");
    want_line(text, "memsched_vm_state{" VM1 ",state=\"running\"} 1");
    want_line(text, "memsched_vm_managed{" VM1 "} 1");
    want_line(text, "memsched_vm_stuck{" VM2 "} 1");
    want_line(text, "memsched_vm_skipped{" VM2 ",reason=\"no_balloon\"} 1");
    no_line_with(text, "memsched_vm_skipped{" VM1);              /* managed */
    no_line_with(text, "memsched_vm_balloon_target_bytes{" VM2); /* none set */
    no_line_with(text, "memsched_vm_unused_bytes{" VM2);         /* not reported */
    /* What only the coordinator knows is not guessed here. */
    no_line_with(text, "memsched_host_liveness");
    no_line_with(text, "memsched_fleet_");
    no_line_with(text, "memsched_vm_last_reason");
    free(text);
}

/* Each family: HELP, then TYPE, then its samples in one group; nothing else. */
static void
test_structure(void **state)
{
    struct round_fixture r;
    char current[80] = "", *save = NULL;
    size_t families = 0;
    (void)state;

    make_round(&r);
    char *text = format(&r);
    assert_true(text[strlen(text) - 1] == '\n');
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[80], type[16];
        if (strncmp(line, "# HELP ", 7) == 0) {
            sscanf(line + 7, "%79s", current);
            families++;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%79s %15s", name, type), 2);
            assert_string_equal(name, current);
            continue;
        }
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, "{ "), line);
        if (strcmp(name, current) != 0)
            fail_msg("sample '%s' outside its family (now in %s)", line, current);
    }
    if (families < 20)
        fail_msg("want at least 20 families, got %zu", families);
    free(text);
}

/* The entries of dir other than . and .., joined by spaces. */
static void
list_dir(const char *dir, char *out, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    assert_non_null(d);
    out[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", e->d_name);
    }
    closedir(d);
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 4096);

    assert_non_null(f);
    assert_true(fread(buf, 1, 4095, f) < 4095);
    fclose(f);
    return buf;
}

static void
test_write_atomic(void **state)
{
    char dir[] = "/tmp/test_textfile.XXXXXX", path[128], bad[160], names[512], err[512];
    struct stat st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/memsched.prom", dir);
    assert_int_equal(textfile_write(path, "first 1\n", 8, err, sizeof(err)), 0);
    assert_int_equal(textfile_write(path, "second 2\n", 9, err, sizeof(err)), 0);
    char *got = slurp(path);
    assert_string_equal(got, "second 2\n");
    free(got);
    assert_int_equal(stat(path, &st), 0);
    if ((st.st_mode & 0777) != 0644)
        fail_msg("want mode 0644 (node_exporter reads it), got %03o", st.st_mode & 0777);
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "memsched.prom"); /* no temporary file left */

    /* A directory in the way: the write fails, says where, and leaves nothing behind. */
    snprintf(bad, sizeof(bad), "%s/sub.prom", dir);
    assert_int_equal(mkdir(bad, 0755), 0);
    snprintf(bad, sizeof(bad), "%s/sub.prom/x", dir);
    assert_int_equal(mkdir(bad, 0755), 0);
    snprintf(bad, sizeof(bad), "%s/sub.prom", dir);
    assert_true(textfile_write(bad, "x 1\n", 4, err, sizeof(err)) < 0);
    if (!strstr(err, "sub.prom"))
        fail_msg("want an error naming the file, got '%s'", err);
    list_dir(dir, names, sizeof(names));
    if (strcmp(names, "memsched.prom sub.prom") != 0 && strcmp(names, "sub.prom memsched.prom"))
        fail_msg("want only memsched.prom and sub.prom after a failed write, got '%s'", names);

    /* No such directory: refused with the reason. */
    snprintf(bad, sizeof(bad), "%s/none/memsched.prom", dir);
    assert_int_equal(textfile_write(bad, "x 1\n", 4, err, sizeof(err)), -ENOENT);

    snprintf(bad, sizeof(bad), "rm -rf '%s'", dir);
    assert_int_equal(system(bad), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_write_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
