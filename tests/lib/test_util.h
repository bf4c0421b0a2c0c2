/*
 * test_util.h - the few spellings every test file needs, in one place: MiB in KiB (the unit of
 * every memory field) and the length of an array.
 */
#ifndef MEMSCHED_TESTS_TEST_UTIL_H
#define MEMSCHED_TESTS_TEST_UTIL_H

#include <stdint.h>

#define MIB(x)        ((uint64_t)(x)*1024u)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* MEMSCHED_TESTS_TEST_UTIL_H */
