/*
 * hv.c - the port's one shared piece: closing a backend. Opening is hv_backends.c's table;
 * everything else is the backends' own.
 */
#include "hv.h"

#include <stdlib.h>

void
hv_close(struct hv **hv)
{
    if (!hv || !*hv)
        return;
    (*hv)->ops->close((*hv)->ctx);
    free(*hv);
    *hv = NULL;
}
