/*
 * wire_text.c - the string rules every received field follows (wire_text.h). Pure: no
 * protobuf-c, so the fleet core and the store check strings without linking the codec.
 */
#include "wire_text.h"

bool
wire_text_valid(const char *s, size_t max, bool allow_empty)
{
    size_t n = 0;

    if (!s)
        return allow_empty;
    for (; s[n]; n++) {
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
            return false; /* no control characters: these end up in logs and tables */
        if (n + 1 >= max)
            return false;
    }
    return allow_empty || n > 0;
}

bool
wire_token_valid(const char *s, size_t max)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n + 1 >= max)
            return false;
    }
    return n > 0;
}

bool
wire_host_id_valid(const char *host_id)
{
    return wire_token_valid(host_id, WIRE_HOST_ID_MAX);
}
