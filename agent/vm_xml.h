/*
 * vm_xml.h - what memsched reads from a domain's XML and from its own metadata element.
 *
 * Pure parsing with libxml2 (never string search), apart from libvirt so that it can be unit
 * tested and fuzzed on its own. The texts come from libvirt, but memsched's metadata is written
 * by operators: anything malformed is refused and named, never guessed at.
 */
#ifndef MEMSCHED_AGENT_VM_XML_H
#define MEMSCHED_AGENT_VM_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* memsched's metadata namespace; libvirt 9.0 accepts a URN here (virsh metadata --uri). */
#define VM_XML_META_URI "urn:memsched:vm:1"

/* Per-VM overrides: managed, floor and cap in KiB (0 = none), weight (0 = the default). */
struct vm_overrides {
    bool managed;
    uint64_t min_kib;
    uint64_t cap_kib;
    uint32_t weight;
};

/* From a domain's XML: a <memballoon> whose model is not "none". Returns 0 or -EINVAL. */
int vm_xml_has_balloon(const char *xml, bool *has_balloon);

/* From a domain's (live) XML: the guest stats period in force, <memballoon><stats period='N'/>
 * under a balloon whose model is not "none"; 0 when none is set. Returns 0 or -EINVAL (*period_s
 * is 0 then). */
int vm_xml_stats_period(const char *xml, unsigned *period_s);

/* memsched's metadata element: <vm managed="yes|no" min_mib="N" max_mib="N" weight="N"/>, every
 * attribute optional. Returns 0, or -EINVAL with what is wrong in bad, as the log line's
 * key=value tail: the offending attribute's name first ("element" for a wrong element, an
 * unknown attribute by its name: a typo must not pass), then value="..." and allowed="...".
 * VM_XML_BAD_LEN holds any of them. *ov holds the defaults (managed, no overrides) on failure. */
#define VM_XML_BAD_LEN 192
int vm_xml_overrides(const char *xml, struct vm_overrides *ov, char *bad, size_t bad_len);

#endif /* MEMSCHED_AGENT_VM_XML_H */
