/*
 * sim_scenario.h - a sim scenario read from JSON (jansson) into the model's plain structs
 * (sim_scenario.c documents the format). Internal to the memsched_hv_sim target.
 */
#ifndef MEMSCHED_AGENT_SIM_SCENARIO_H
#define MEMSCHED_AGENT_SIM_SCENARIO_H

#include <stddef.h>

#include "sim_model.h"

/* Fill the zeroed sim from JSON text; name is used in error messages. Returns 0, or -EINVAL
 * with err saying where and why. On failure the sim holds what was loaded: model_destroy() it. */
int
scenario_from_text(const char *json, const char *name, struct sim *sim, char *err, size_t err_len);

/* The same from a file: -ENOENT when it cannot be opened. */
int scenario_from_file(const char *file, struct sim *sim, char *err, size_t err_len);

#endif /* MEMSCHED_AGENT_SIM_SCENARIO_H */
