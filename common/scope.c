/*
 * scope.c - the policy scope grammar (scope.h): the one copy, checked field by field with the
 * string rules of wire_text.h. Pure.
 */
#include "scope.h"

#include <errno.h>
#include <string.h>

int
scope_parse(const char *text, struct scope *scope)
{
    struct scope s;

    memset(&s, 0, sizeof(s));
    if (!text || strnlen(text, WIRE_SCOPE_MAX) >= WIRE_SCOPE_MAX)
        return -EINVAL;
    if (strcmp(text, "fleet") == 0) {
        s.kind = SCOPE_FLEET;
    } else if (strncmp(text, "host:", 5) == 0) {
        if (!wire_host_id_valid(text + 5))
            return -EINVAL;
        s.kind = SCOPE_HOST;
        strcpy(s.host_id, text + 5);
    } else if (strncmp(text, "label:", 6) == 0) {
        const char *key = text + 6, *eq = strchr(key, '=');
        char k[WIRE_LABEL_KEY_MAX];
        if (!eq || (size_t)(eq - key) >= sizeof(k))
            return -EINVAL;
        memcpy(k, key, (size_t)(eq - key));
        k[eq - key] = '\0';
        if (!wire_token_valid(k, sizeof(k)) ||
            !wire_text_valid(eq + 1, WIRE_LABEL_VALUE_MAX, false))
            return -EINVAL;
        s.kind = SCOPE_LABEL;
        strcpy(s.label, key); /* fits: key < 64 and value < 128 make it < SCOPE_LABEL_MAX */
    } else {
        return -EINVAL;
    }
    *scope = s;
    return 0;
}

bool
scope_matches(const struct scope *scope,
              const char *host_id,
              const char *const *labels,
              size_t n_labels)
{
    switch (scope->kind) {
    case SCOPE_FLEET:
        return true;
    case SCOPE_HOST:
        return strcmp(scope->host_id, host_id) == 0;
    case SCOPE_LABEL:
        for (size_t i = 0; i < n_labels; i++) {
            if (strcmp(scope->label, labels[i]) == 0)
                return true;
        }
        return false;
    }
    return false;
}
