/*
 * test_metrics.c - the Prometheus exposition (coordinator/metrics.c) of a fleet built on plain
 * structs: label escaping (backslash, quote, newline, broken UTF-8, cuts), exact sample lines
 * with base units and labels, HELP and TYPE once per family with its samples in one group,
 * the floor headroom (negative below the floor), counters by reason, a host without a report,
 * and a build in slices equal to one in a single call, with a host removed half-way left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "metrics.h"
#include "prom.h"
#include "test_util.h"
#include "text_lines.h"
#include "wire.h"

#define UUID1 "00000000-0000-4000-8000-000000000001"
#define UUID2 "00000000-0000-4000-8000-000000000002"

/* ---- escaping ---- */

static void
check_escape(const char *in, const char *want)
{
    char out[256];
    size_t n = prom_escape_label(in, out, sizeof(out));

    if (strcmp(out, want) != 0 || n != strlen(want))
        fail_msg("escape of '%s': want '%s' (%zu), got '%s' (%zu)", in, want, strlen(want), out, n);
}

static void
test_escape(void **state)
{
    (void)state;
    check_escape("vm-1", "vm-1");
    check_escape("", "");
    check_escape("a\"b", "a\\\"b");
    check_escape("a\\b", "a\\\\b");
    check_escape("line\nnext", "line\\nnext");
    check_escape("tab\there", "tab\there"); /* only \, " and newline are escaped */
    check_escape("caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"); /* valid UTF-8 */
    check_escape("bad\xff", "bad\xef\xbf\xbd");           /* not UTF-8 at all */
    check_escape("cut\xc3", "cut\xef\xbf\xbd");           /* a sequence cut by the end */
    check_escape("\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"); /* an overlong NUL: two bad bytes */
    check_escape("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
    check_escape("\xf4\x90\x80\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx");
}

static void
test_escape_cut(void **state)
{
    char out[5];
    (void)state;

    /* Room for 4 bytes: "ab" fits, the escaped quote (2) fits, the next escape does not, and
     * nothing after it is written either. The return value is the whole length. */
    assert_int_equal(prom_escape_label("ab\"\\c", out, sizeof(out)), 7);
    assert_string_equal(out, "ab\\\"");
    assert_int_equal(prom_escape_label("a\\", out, 3), 3);
    assert_string_equal(out, "a"); /* never half an escape */
    assert_int_equal(prom_escape_label("\xc3\xa9\xc3\xa9\xc3\xa9", out, sizeof(out)), 6);
    assert_string_equal(out, "\xc3\xa9\xc3\xa9"); /* never half a character */
    assert_int_equal(prom_escape_label("abc", NULL, 0), 3);
}

/* ---- a fleet ---- */

static void
hello(struct fleet *f, const char *id, uint64_t policy_version)
{
    struct wire_hello h;

    memset(&h, 0, sizeof(h));
    strcpy(h.agent_version, "0.1.0");
    h.policy_version = policy_version;
    assert_int_equal(fleet_hello(f, id, &h, 0), 0);
}

/* hv-1: 16 GiB, 3 GiB available, two VMs (one with a name to escape, one stuck and
 * unmanaged without stats), a grow and a shrink decision. */
static void
report_hv1(struct fleet *f, uint64_t seq)
{
    struct wire_vm vms[2];
    struct wire_decision d[2];
    struct wire_report r;

    memset(vms, 0, sizeof(vms));
    memset(d, 0, sizeof(d));
    memset(&r, 0, sizeof(r));
    strcpy(vms[0].uuid, UUID1);
    strcpy(vms[0].name, "we\"ird\\name");
    vms[0].max_kib = MIB(4096);
    vms[0].actual_kib = MIB(2048);
    vms[0].target_kib = MIB(2048);
    vms[0].unused_kib = MIB(300);
    vms[0].usable_kib = MIB(250);
    vms[0].has_unused = vms[0].has_usable = vms[0].managed = true;
    vms[0].stats_age_ms = 1500;
    strcpy(vms[1].uuid, UUID2);
    strcpy(vms[1].name, "web");
    vms[1].state = SCHED_VM_PAUSED;
    vms[1].max_kib = MIB(1024);
    vms[1].actual_kib = MIB(1024);
    vms[1].stuck = true;
    vms[1].skip_reason = SCHED_REASON_UNMANAGED;
    strcpy(d[0].uuid, UUID1);
    d[0].reason = SCHED_REASON_GROW;
    d[0].old_target_kib = MIB(1024);
    d[0].new_target_kib = MIB(2048);
    strcpy(d[0].counterpart, WIRE_COUNTERPART_HOST);
    strcpy(d[1].uuid, UUID2);
    d[1].reason = SCHED_REASON_SHRINK;
    d[1].old_target_kib = MIB(1088);
    d[1].new_target_kib = MIB(1024);
    r.host_total_kib = MIB(16384);
    r.host_available_kib = MIB(3072);
    r.vms = vms;
    r.n_vms = 2;
    r.decisions = d;
    r.n_decisions = 2;
    r.vms_total = 2;
    r.counters = (struct wire_counters){.rounds = 42,
                                        .granted_kib = MIB(1024),
                                        .reclaimed_kib = MIB(64),
                                        .apply_failures = 1,
                                        .reports_dropped = 2,
                                        .messages_rejected = 3};
    r.policy_version = 7;
    assert_int_equal(fleet_report(f, "hv-1", seq, &r, 1000), 0);
}

static bool
floor_of(void *ctx, uint64_t version, uint64_t *kib)
{
    (void)ctx;
    if (version != 7)
        return false;
    *kib = MIB(4096); /* above hv-1's 3 GiB available: a negative headroom */
    return true;
}

static struct fleet *
make_fleet(void)
{
    struct fleet *f = fleet_new(NULL);
    struct wire_policy_ack ack = {.version = 7, .applied = true};

    hello(f, "hv-1", 7);
    report_hv1(f, 1);
    assert_int_equal(fleet_policy_ack(f, "hv-1", &ack, 1000), 0);
    hello(f, "hv-2", 0); /* said hello, never reported */
    return f;
}

static char *
format(const struct fleet *f)
{
    struct metrics_source src = {
        .fleet = f, .now_ms = 3500, .pressure_unused_kib = MIB(100), .host_floor_kib = floor_of};
    struct metrics_text *text = metrics_format(&src);
    char *out = metrics_text_join(text);

    assert_int_equal(strlen(out), text->bytes);
    metrics_text_destroy(&text);
    return out;
}

#define VM1 "host=\"hv-1\",domain=\"we\\\"ird\\\\name\",uuid=\"" UUID1 "\""
#define VM2 "host=\"hv-1\",domain=\"web\",uuid=\"" UUID2 "\""

static void
test_samples(void **state)
{
    struct fleet *f = make_fleet();
    char *text = format(f);
    (void)state;

    want_line(text, "memsched_fleet_hosts{liveness=\"fresh\"} 2");
    want_line(text, "memsched_fleet_hosts_reporting 1");
    want_line(text, "memsched_fleet_host_memory_bytes 17179869184");
    want_line(text, "memsched_fleet_vm_max_bytes 5368709120");
    want_line(text, "memsched_fleet_overcommit_ratio 0.3125");
    want_line(text, "memsched_host_liveness{host=\"hv-1\",liveness=\"fresh\"} 1");
    want_line(text, "memsched_host_liveness{host=\"hv-1\",liveness=\"down\"} 0");
    want_line(text, "memsched_host_last_seen_age_seconds{host=\"hv-1\"} 2.5");
    want_line(text, "memsched_host_memory_bytes{host=\"hv-1\"} 17179869184");
    want_line(text, "memsched_host_available_bytes{host=\"hv-1\"} 3221225472");
    want_line(text, "memsched_host_floor_headroom_bytes{host=\"hv-1\"} -1073741824");
    want_line(text, "memsched_host_vms{host=\"hv-1\"} 2");
    want_line(text, "memsched_host_policy_version{host=\"hv-1\"} 7");
    want_line(text, "memsched_host_policy_ack_version{host=\"hv-1\"} 7");
    want_line(text, "memsched_host_policy_ack_applied{host=\"hv-1\"} 1");
    want_line(text, "memsched_host_rounds_total{host=\"hv-1\"} 42");
    want_line(text, "memsched_host_granted_bytes_total{host=\"hv-1\"} 1073741824");
    want_line(text, "memsched_host_agent_errors_total{host=\"hv-1\",kind=\"message_rejected\"} 3");
    want_line(text, "memsched_decisions_total{host=\"hv-1\",reason=\"grow\"} 1");
    want_line(text, "memsched_decisions_total{host=\"hv-1\",reason=\"shrink\"} 1");
    want_line(text,
              "memsched_decision_moved_bytes_total{host=\"hv-1\",reason=\"grow\"} 1073741824");
    want_line(text,
              "memsched_decision_moved_bytes_total{host=\"hv-1\",reason=\"shrink\"} 67108864");
    want_line(text, "memsched_vm_max_bytes{" VM1 "} 4294967296");
    want_line(text, "memsched_vm_balloon_actual_bytes{" VM1 "} 2147483648");
    want_line(text, "memsched_vm_balloon_target_bytes{" VM1 "} 2147483648");
    want_line(text, "memsched_vm_unused_bytes{" VM1 "} 314572800");
    want_line(text, "memsched_vm_usable_bytes{" VM1 "} 262144000");
    want_line(text, "memsched_vm_stats_age_seconds{" VM1 "} 1.5");
    want_line(text, "memsched_vm_state{" VM1 ",state=\"running\"} 1");
    want_line(text, "memsched_vm_managed{" VM1 "} 1");
    want_line(text, "memsched_vm_stuck{" VM1 "} 0");
    want_line(text, "memsched_vm_last_reason{" VM1 ",reason=\"grow\"} 1");
    want_line(text, "memsched_vm_state{" VM2 ",state=\"paused\"} 1");
    want_line(text, "memsched_vm_managed{" VM2 "} 0");
    want_line(text, "memsched_vm_stuck{" VM2 "} 1");
    want_line(text, "memsched_vm_skipped{" VM2 ",reason=\"unmanaged\"} 1");
    no_line_with(text, "memsched_vm_skipped{" VM1);              /* managed: no series */
    no_line_with(text, "memsched_vm_balloon_target_bytes{" VM2); /* none set */
    no_line_with(text, "memsched_vm_unused_bytes{" VM2);         /* not reported */
    /* hv-2 said hello only: liveness and policy, no memory. */
    want_line(text, "memsched_host_policy_version{host=\"hv-2\"} 0");
    no_line_with(text, "memsched_host_memory_bytes{host=\"hv-2\"}");
    no_line_with(text, "memsched_host_floor_headroom_bytes{host=\"hv-2\"}");
    no_line_with(text, "memsched_host_policy_ack_version{host=\"hv-2\"}");
    free(text);
    fleet_destroy(&f);
}

/* metrics_vm_series = false: no per-VM family at all; the hosts' series and the fleet's VM
 * count stay. */
static void
test_without_vm_series(void **state)
{
    struct fleet *f = make_fleet();
    struct metrics_source src = {.fleet = f,
                                 .now_ms = 3500,
                                 .pressure_unused_kib = MIB(100),
                                 .host_floor_kib = floor_of,
                                 .omit_vm_series = true};
    struct metrics_text *text = metrics_format(&src);
    char *out = metrics_text_join(text);
    (void)state;

    no_line_with(out, "memsched_vm_");
    want_line(out, "memsched_fleet_vms 2");
    want_line(out, "memsched_host_vms{host=\"hv-1\"} 2");
    want_line(out, "memsched_host_memory_bytes{host=\"hv-1\"} 17179869184");
    free(out);
    metrics_text_destroy(&text);
    fleet_destroy(&f);
}

/* Every line is a comment or a sample; each family has HELP then TYPE once, before its
 * samples, and its samples in one group; counters end in _total; no family is empty. */
static void
test_structure(void **state)
{
    struct fleet *f = make_fleet();
    char *text = format(f), *save = NULL;
    char seen[64][80];
    size_t n_seen = 0, samples = 0;
    char current[80] = "", type[16] = "";
    (void)state;

    assert_true(text[strlen(text) - 1] == '\n');
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[80];
        if (strncmp(line, "# HELP ", 7) == 0) {
            if (current[0] && samples == 0)
                fail_msg("family %s has no samples", current);
            sscanf(line + 7, "%79s", current);
            for (size_t i = 0; i < n_seen; i++)
                if (strcmp(seen[i], current) == 0)
                    fail_msg("family %s announced twice", current);
            assert_true(n_seen < 64);
            strcpy(seen[n_seen++], current);
            samples = 0;
            type[0] = '\0';
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%79s %15s", name, type), 2);
            assert_string_equal(name, current);
            continue;
        }
        assert_true(line[0] != '#');
        size_t len = strcspn(line, "{ ");
        snprintf(name, sizeof(name), "%.*s", (int)len, line);
        if (strcmp(name, current) != 0)
            fail_msg("sample '%s' outside its family (now in %s)", line, current);
        assert_true(type[0]);
        if (strcmp(type, "counter") == 0 && !strstr(name + strlen(name) - 6, "_total"))
            fail_msg("counter %s does not end in _total", name);
        assert_int_equal(strncmp(name, "memsched_", 9), 0);
        samples++;
    }
    assert_true(samples > 0);
    free(text);
    fleet_destroy(&f);
}

/* A build in slices of one host gives the same text as one call; a host removed between two
 * slices is left out, and the fleet totals are those at the finish. */
static void
test_slices(void **state)
{
    struct fleet *f = make_fleet();
    struct metrics_source src = {.fleet = f, .now_ms = 3500, .host_floor_kib = floor_of};
    char *whole = format(f), *sliced, *cut;
    struct metrics_build *b = metrics_build_new(f);
    struct metrics_text *text;
    (void)state;

    assert_false(metrics_build_step(b, &src, 1));
    assert_true(metrics_build_step(b, &src, 1));
    text = metrics_build_finish(b, &src);
    metrics_build_destroy(&b);
    sliced = metrics_text_join(text);
    metrics_text_destroy(&text);
    assert_string_equal(sliced, whole);

    b = metrics_build_new(f);
    assert_false(metrics_build_step(b, &src, 1));
    assert_int_equal(fleet_remove(f, "hv-2", 2000), 0);
    assert_true(metrics_build_step(b, &src, 1));
    text = metrics_build_finish(b, &src);
    metrics_build_destroy(&b);
    metrics_build_destroy(&b); /* repeatable */
    cut = metrics_text_join(text);
    metrics_text_destroy(&text);
    metrics_text_destroy(&text);
    no_line_with(cut, "hv-2");
    want_line(cut, "memsched_fleet_hosts{liveness=\"fresh\"} 1");
    free(whole);
    free(sliced);
    free(cut);
    fleet_destroy(&f);
}

/* An empty fleet still has the fleet families, with zeros. */
static void
test_empty(void **state)
{
    struct fleet *f = fleet_new(NULL);
    char *text = format(f);
    (void)state;

    want_line(text, "memsched_fleet_hosts{liveness=\"fresh\"} 0");
    want_line(text, "memsched_fleet_host_memory_bytes 0");
    want_line(text, "memsched_fleet_overcommit_ratio 0");
    no_line_with(text, "memsched_host_");
    free(text);
    fleet_destroy(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_cut),
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_without_vm_series),
        cmocka_unit_test(test_slices),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
