/*
 * vm_xml_corpus.c - writes the seed corpus of fuzz_vm_xml into DIR: metadata elements good and
 * bad, and domain XML with and without a balloon. libxml2 is not instrumented, so the fuzzer
 * needs well-formed seeds to reach our attribute checks.
 *
 *   vm_xml_corpus DIR
 */
#include <stdio.h>
#include <string.h>

static const char *const seeds[] = {
    "<vm/>",
    "<vm managed='yes' min_mib='512' max_mib='4096' weight='200'/>",
    "<vm managed='no'/>",
    "<vm min_mib='600' max_mib='500'/>",
    "<vm weight='1001'/>",
    "<vm xmlns='urn:memsched:vm:1' min_mib='256'/>",
    ("<domain type='qemu'><devices><memballoon model='virtio'><stats period='1'/></memballoon>"
     "</devices></domain>"),
    "<domain><devices><memballoon model='none'/></devices></domain>",
};

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vm_xml_corpus DIR\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/seed%zu.xml", argv[1], i);
        FILE *f = fopen(path, "w");
        if (!f || fwrite(seeds[i], 1, strlen(seeds[i]), f) != strlen(seeds[i])) {
            perror(path);
            return 1;
        }
        fclose(f);
    }
    return 0;
}
