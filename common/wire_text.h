/*
 * wire_text.h - the string rules of received fields (host ids, label keys and values, names,
 * reasons): part of the pure core, so modules that check strings need not link the codec.
 */
#ifndef MEMSCHED_COMMON_WIRE_TEXT_H
#define MEMSCHED_COMMON_WIRE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#define WIRE_HOST_ID_MAX     64 /* including the NUL, as every bound below */
#define WIRE_LABEL_KEY_MAX   64
#define WIRE_LABEL_VALUE_MAX 128
#define WIRE_SCOPE_MAX       200

/* The string rules every received field follows. A token is 1 to max-1 characters of
 * [A-Za-z0-9._-] (host ids, label keys, commands); text is shorter than max with no control
 * characters (names, label values, reasons), and may be empty only when allow_empty. */
bool wire_token_valid(const char *s, size_t max);
bool wire_text_valid(const char *s, size_t max, bool allow_empty);

/* True for a host id of 1-63 characters from [A-Za-z0-9._-]. */
bool wire_host_id_valid(const char *host_id);

#endif /* MEMSCHED_COMMON_WIRE_TEXT_H */
