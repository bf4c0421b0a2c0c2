/*
 * hv_backends.c - the table of hypervisor backends: a URI prefix and the backend's open
 * function. The first entry whose prefix starts the URI opens it, with the prefix removed; the
 * last entry's empty prefix takes everything else (libvirt).
 */
#include "hv_backends.h"

#include <errno.h>
#include <string.h>

#include "hv_libvirt.h"
#include "hv_sim.h"

static const struct backend {
    const char *prefix;
    int (*open)(const char *uri, struct hv **out, char *err, size_t err_len);
} backends[] = {
    {"sim:", hv_sim_open},
    {"", hv_libvirt_open},
};

int
hv_open(const char *uri, struct hv **out, char *err, size_t err_len)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        size_t n = strlen(backends[i].prefix);
        if (strncmp(uri, backends[i].prefix, n) == 0)
            return backends[i].open(uri + n, out, err, err_len);
    }
    return -EINVAL; /* not reached: the last prefix is empty */
}
