/*
 * fuzz_vm_xml.c - libFuzzer on the domain-XML and metadata parsers (agent/vm_xml.c): whatever
 * libvirt or an operator hands over, no crash, and a refusal leaves the defaults.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct vm_overrides ov;
    char bad[VM_XML_BAD_LEN];
    bool has;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    vm_xml_has_balloon(text, &has);
    if (vm_xml_overrides(text, &ov, bad, sizeof(bad)) != 0 &&
        (!ov.managed || ov.min_kib || ov.cap_kib || ov.weight))
        abort(); /* a refused element must not leave overrides behind */
    if (ov.min_kib && ov.cap_kib && ov.min_kib > ov.cap_kib)
        abort();
    free(text);
    return 0;
}
