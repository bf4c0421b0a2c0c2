/*
 * hv_backends.h - open the hypervisor backend a URI names.
 *
 * The one place that knows every backend (hv_backends.c holds the table); the port (hv.h) and
 * the agent's modules name none of them. Linking this target links every backend.
 */
#ifndef MEMSCHED_AGENT_HV_BACKENDS_H
#define MEMSCHED_AGENT_HV_BACKENDS_H

#include <stddef.h>

#include "hv.h"

/* Open the backend the URI names: "sim:FILE" for a modelled host, anything else is handed to
 * libvirt ("qemu:///system", "test:///default", "test+unix:///default?socket=..."). On failure
 * returns a negative errno and err says why; nothing is left open. A libvirt URI whose daemon
 * is down opens (-ENOTCONN comes from sample later) so an agent can start before libvirtd. */
int hv_open(const char *uri, struct hv **out, char *err, size_t err_len);

#endif /* MEMSCHED_AGENT_HV_BACKENDS_H */
