/*
 * compat_report.c - one agent report, encoded or decoded by whichever version of common/wire.c
 * this is linked with: the tool behind the protocol-compatibility fixtures (make_fixture.sh).
 *
 *   compat_report encode FILE   write the report below, as this version encodes it, to FILE
 *   compat_report decode FILE   decode FILE with this version's rules and print what it holds
 *
 * It uses only what every version since protocol 1 has, so it builds against old trees too;
 * built in today's tree (COMPAT_REPORT_CURRENT) it also fills what newer agents add.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static void
build(struct wire_msg *m, struct wire_vm vms[2], struct wire_decision *d)
{
    memset(m, 0, sizeof(*m));
    memset(vms, 0, 2 * sizeof(*vms));
    memset(d, 0, sizeof(*d));
    m->body = WIRE_BODY_REPORT;
    m->protocol_version = WIRE_PROTOCOL_VERSION;
    strcpy(m->host_id, "hv-old");
    m->sequence = 42;
    strcpy(vms[0].uuid, "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b01");
    strcpy(vms[0].name, "web");
    vms[0].state = SCHED_VM_RUNNING;
    vms[0].max_kib = 4096 * 1024;
    vms[0].actual_kib = 2048 * 1024;
    vms[0].target_kib = 2048 * 1024;
    vms[0].unused_kib = 80 * 1024;
    vms[0].has_unused = vms[0].managed = true;
    vms[1] = vms[0];
    strcpy(vms[1].uuid, "6f1c1c62-3a55-4c8e-9d53-0c6a3c1e2b02");
    strcpy(vms[1].name, "db");
    vms[1].unused_kib = 900 * 1024;
    strcpy(d->uuid, vms[0].uuid);
    d->reason = SCHED_REASON_GROW;
    d->old_target_kib = 1984 * 1024;
    d->new_target_kib = 2048 * 1024;
    strcpy(d->counterpart, vms[1].uuid);
    m->u.report.host_total_kib = 16384 * 1024;
    m->u.report.host_available_kib = 6000 * 1024;
    m->u.report.vms = vms;
    m->u.report.n_vms = 2;
    m->u.report.decisions = d;
    m->u.report.n_decisions = 1;
    m->u.report.counters.rounds = 99;
    m->u.report.policy_version = 5;
#ifdef COMPAT_REPORT_CURRENT /* what today's agents add: the old rules must skip it */
    d->signal_kib = 80 * 1024;
    d->need_kib = 120 * 1024;
    d->vm_kib = 64 * 1024;
    vms[1].skip_reason = SCHED_REASON_NO_BALLOON;
    m->u.report.has_policy = true;
    policy_init_defaults(&m->u.report.policy);
#endif
}

static int
encode(const char *path)
{
    struct wire_msg m;
    struct wire_vm vms[2];
    struct wire_decision d;
    char err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;
    FILE *f = fopen(path, "wb");

    build(&m, vms, &d);
    if (!f || wire_encode(&m, &buf, &len, err, sizeof(err)) != 0 || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "compat_report: encode %s failed\n", path);
        return 1;
    }
    fclose(f);
    free(buf);
    return 0;
}

static int
decode(const char *path)
{
    static uint8_t buf[1 << 16];
    struct wire_msg m;
    char err[WIRE_ERR_MAX];
    FILE *f = fopen(path, "rb");
    size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;

    if (f)
        fclose(f);
    if (wire_decode(buf, len, &m, err, sizeof(err)) != 0) {
        printf("refused: %s\n", err);
        return 1;
    }
    printf("host %s seq %llu vms %zu decisions %zu policy v%llu first %s decision %s -> %llu KiB\n",
           m.host_id, (unsigned long long)m.sequence, m.u.report.n_vms, m.u.report.n_decisions,
           (unsigned long long)m.u.report.policy_version, m.u.report.vms[0].name,
           m.u.report.n_decisions ? m.u.report.decisions[0].uuid : "-",
           m.u.report.n_decisions ? (unsigned long long)m.u.report.decisions[0].new_target_kib
                                  : 0ULL);
    wire_msg_clear(&m);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "encode") == 0)
        return encode(argv[2]);
    if (argc == 3 && strcmp(argv[1], "decode") == 0)
        return decode(argv[2]);
    fprintf(stderr, "usage: compat_report encode|decode FILE\n");
    return 2;
}
