/*
 * fuzz_config.c - libFuzzer harness for the agent's file formats: the first byte picks the
 * agent's config text (key = value, every agent key and policy parameter, through
 * agent_config_set as the config file is read) or a sim scenario (JSON, sim_open_json).
 *
 * Whatever the bytes: no crash, no leak; a config that loads has a policy that either passes
 * policy_validate() or is refused by it, and its limits are checked without trouble; a
 * scenario that loads can be sampled.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "config.h"
#include "hv.h"
#include "hv_sim.h"
#include "log.h"

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
    if (data[0] & 1)
        fuzz_scenario(text);
    else
        fuzz_agent_config(text);
    free(text);
    return 0;
}
