/*
 * hv.c - opens the backend a URI names and closes it; everything else is the backends' own.
 */
#include "hv.h"

#include <stdlib.h>
#include <string.h>

#define SIM_PREFIX "sim:"

int
hv_open(const char *uri, struct hv **out, char *err, size_t err_len)
{
    *out = NULL;
    if (strncmp(uri, SIM_PREFIX, strlen(SIM_PREFIX)) == 0)
        return hv_sim_open(uri + strlen(SIM_PREFIX), out, err, err_len);
    return hv_libvirt_open(uri, out, err, err_len);
}

void
hv_close(struct hv **hv)
{
    if (!hv || !*hv)
        return;
    (*hv)->ops->close((*hv)->ctx);
    free(*hv);
    *hv = NULL;
}
