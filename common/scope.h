/*
 * scope.h - where a policy applies: "fleet", "label:KEY=VALUE" or "host:ID", parsed, and whether
 * a host falls in it. The one copy of the grammar: wire.c checks received scopes with it, the
 * store what it stores, the fleet core, the engine and the control answers match hosts with it.
 * Pure (part of the core): no I/O, no allocation.
 */
#ifndef MEMSCHED_COMMON_SCOPE_H
#define MEMSCHED_COMMON_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "wire_text.h"

/* Broadest first: a host's policy is the one of its narrowest scope. */
enum scope_kind {
    SCOPE_FLEET = 0,
    SCOPE_LABEL,
    SCOPE_HOST,
};

#define SCOPE_LABEL_MAX (WIRE_LABEL_KEY_MAX + WIRE_LABEL_VALUE_MAX) /* "KEY=VALUE" and its NUL */

struct scope {
    enum scope_kind kind;
    char host_id[WIRE_HOST_ID_MAX]; /* SCOPE_HOST */
    char label[SCOPE_LABEL_MAX];    /* SCOPE_LABEL: "KEY=VALUE", as a host carries it */
};

/* Parse a scope shorter than WIRE_SCOPE_MAX: "fleet"; "host:ID" with ID as wire_host_id_valid();
 * "label:KEY=VALUE" with KEY a token shorter than WIRE_LABEL_KEY_MAX and VALUE printable text
 * shorter than WIRE_LABEL_VALUE_MAX. Returns 0, or -EINVAL (NULL text too) leaving *scope
 * untouched. */
int scope_parse(const char *text, struct scope *scope);

/* True when a host with this id and these labels ("KEY=VALUE") falls in scope. */
bool scope_matches(const struct scope *scope,
                   const char *host_id,
                   const char *const *labels,
                   size_t n_labels);

#endif /* MEMSCHED_COMMON_SCOPE_H */
