/*
 * meminfo.h - how much memory this host can still give, from the kernel's own estimate.
 *
 * libvirt's node memory stats give free, buffers and cached, and cached includes shared memory
 * (Shmem: tmpfs, and guest RAM backed by memfd or /dev/shm), which cannot be dropped like page
 * cache. Counting it as available lets the scheduler hand out memory the host does not have.
 * The kernel's MemAvailable already leaves it out (and keeps the zone watermarks); where it is
 * missing (kernels before 3.14) free + buffers + cached - shmem is used.
 */
#ifndef MEMSCHED_AGENT_MEMINFO_H
#define MEMSCHED_AGENT_MEMINFO_H

#include <stdint.h>

#define MEMINFO_PATH "/proc/meminfo"

/* Read path (MEMINFO_PATH, or a copy in tests) into *available_kib. Returns 0, -errno when the
 * file cannot be read, or -ENODATA when it has neither MemAvailable nor the fields to derive
 * it; *available_kib is untouched on failure. */
int meminfo_available_kib(const char *path, uint64_t *available_kib);

#endif /* MEMSCHED_AGENT_MEMINFO_H */
