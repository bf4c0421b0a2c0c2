/*
 * text_lines.h - cmocka checks on a text of lines (a Prometheus exposition, a textfile): a whole
 * line present, a fragment absent; a failure prints the text. Shared by test_metrics and
 * test_textfile (text_lines.c is compiled into each).
 */
#ifndef MEMSCHED_TESTS_UNIT_TEXT_LINES_H
#define MEMSCHED_TESTS_UNIT_TEXT_LINES_H

/* Fails unless line stands in text as a whole line (between line starts and a newline). */
void want_line(const char *text, const char *line);

/* Fails if part stands anywhere in text. */
void no_line_with(const char *text, const char *part);

#endif /* MEMSCHED_TESTS_UNIT_TEXT_LINES_H */
