/*
 * config_corpus.c - seeds for fuzz_config: an agent config (first byte 0), every scenario
 * of tests/scenarios (first byte 1) and coordinator settings (first byte 2).
 *
 *   config_corpus DIR
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
save(const char *dir, const char *name, int kind, const char *text, size_t len)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputc(kind, f) == EOF || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int
main(int argc, char **argv)
{
    static const char config[] =
        "uri = sim:x.json\nstate_dir = /tmp/x\nlog_level = debug\ndry_run = yes\n"
        "coordinator = tcp://127.0.0.1:7400\nhost_id = hv1\nlabels = rack=r1,zone=z\n"
        "limit_vm_min_unused_mib = 50\nlimit_interval_ms = 10000\nvm_min_unused_mib = 100\n"
        "vm_grow_target_unused_mib = 200\nvm_excess_unused_mib = 300\ninterval_ms = 1000\n"
        "demand_signal = usable\nreclaim_idle = off\n";
    char path[4096], *buf;
    struct dirent *e;
    DIR *d;

    if (argc != 2) {
        fputs("usage: config_corpus DIR\n", stderr);
        return 2;
    }
    static const char settings[] =
        "listen = tcp://127.0.0.1:7400\ncontrol = ipc:///tmp/ctl.sock\nkey_file = /tmp/c.secret\n"
        "allow_dir = /tmp/allow\nadmin_read_dir = /tmp/readers\ndb = /tmp/fleet.db\n"
        "insecure = yes\nstale_after_ms = 1500\ndown_after_ms = 4000\n"
        "pressure_unused_mib = 100\nhost_retention_ms = 0\nlog_level = debug\n";

    save(argv[1], "agent.conf", 0, config, strlen(config));
    save(argv[1], "coordinator.conf", 2, settings, strlen(settings));
    d = opendir(SCENARIO_DIR);
    if (!d)
        return 1;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", SCENARIO_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        buf = calloc(1, 65536);
        size_t len = buf ? fread(buf, 1, 65535, f) : 0;
        fclose(f);
        save(argv[1], e->d_name, 1, buf, len);
        free(buf);
    }
    closedir(d);
    return 0;
}
