/*
 * fuzz_config.c - libFuzzer harness for the config files: the first byte picks the agent's
 * config text (key = value, every agent key and policy parameter, through agent_config_set as
 * the config file is read), a sim scenario (JSON, sim_open_json), or (bit 2) the coordinator's
 * settings (settings_load_arg).
 *
 * Whatever the bytes: no crash, no leak; a config that loads has a policy that either passes
 * policy_validate() or is refused by it, and its limits are checked without trouble; what
 * --print-config prints of a loaded config (agent or coordinator) reads back equal; a
 * scenario that loads can be sampled.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "config.h"
#include "hv.h"
#include "hv_sim.h"
#include "log.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
setter(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    return agent_config_set(ctx, key, value, err, err_len);
}

static void
fuzz_agent_config(const char *text)
{
    struct agent_config c;
    char err[CONFIG_ERR_MAX], why[POLICY_ERR_MAX];

    agent_config_init_defaults(&c);
    if (config_parse_text(text, "fuzz.conf", setter, &c, err, sizeof(err)) != 0)
        return;
    if (policy_validate(&c.policy, why, sizeof(why)) == 0)
        agent_config_check_limits(&c, &c.policy, why, sizeof(why));

    /* print -> parse gives the same config. */
    char *printed = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&printed, &len);
    struct agent_config back;
    if (!f)
        abort();
    agent_config_print(&c, f);
    if (fclose(f) != 0)
        abort();
    agent_config_init_defaults(&back);
    if (config_parse_text(printed, "printed", setter, &back, err, sizeof(err)) != 0 ||
        !policy_equal(&c.policy, &back.policy) || strcmp(c.uri, back.uri) != 0 ||
        strcmp(c.labels, back.labels) != 0 || c.limit_interval_ms != back.limit_interval_ms ||
        strcmp(c.metrics_textfile, back.metrics_textfile) != 0)
        abort();
    free(printed);
}

static void
fuzz_settings(const char *text)
{
    struct settings s, back;
    char err[CONFIG_ERR_MAX];

    settings_defaults(&s);
    if (settings_load_arg(&s, text, err, sizeof(err)) != 0)
        return;
    settings_check(&s, err, sizeof(err));

    char *printed = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&printed, &len);
    if (!f)
        abort();
    settings_print(&s, f);
    if (fclose(f) != 0)
        abort();
    settings_defaults(&back);
    if (settings_load_arg(&back, printed, err, sizeof(err)) != 0 ||
        !config_equal(settings_table(), &s, &back))
        abort();
    free(printed);
}

static void
fuzz_scenario(const char *json)
{
    struct hv *hv = NULL;
    char err[512];

    if (sim_open_json(json, "fuzz.json", &hv, err, sizeof(err)) != 0)
        return;
    sim_use_fake_clock(sim_from_hv(hv));
    sim_advance(sim_from_hv(hv), 1000);
    hv_close(&hv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;

    if (!quiet++)
        log_set_level(LOG_LEVEL_ERR);
    if (size < 1 || size > 65536)
        return 0;
    char *text = malloc(size);
    if (!text)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 2)
        fuzz_settings(text);
    else if (data[0] & 1)
        fuzz_scenario(text);
    else
        fuzz_agent_config(text);
    free(text);
    return 0;
}
