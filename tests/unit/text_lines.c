/*
 * text_lines.c - cmocka checks on a text of lines (see text_lines.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "text_lines.h"

void
want_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    }
    fail_msg("want the line\n%s\nin\n%s", line, text);
}

void
no_line_with(const char *text, const char *part)
{
    if (strstr(text, part))
        fail_msg("want no '%s' in\n%s", part, text);
}
