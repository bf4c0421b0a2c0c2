/*
 * test_vm_xml.c - the balloon device of a domain's XML and memsched's metadata element.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"
#include "vm_xml.h"


static void
test_balloon_device(void **state)
{
    bool has = false;
    (void)state;

    assert_int_equal(vm_xml_has_balloon("<domain><devices><memballoon model='virtio'/></devices>"
                                        "</domain>",
                                        &has),
                     0);
    assert_true(has);
    assert_int_equal(vm_xml_has_balloon("<domain><devices><memballoon model='none'/></devices>"
                                        "</domain>",
                                        &has),
                     0);
    assert_false(has);
    assert_int_equal(vm_xml_has_balloon("<domain><devices/></domain>", &has), 0);
    assert_false(has);
    assert_int_equal(vm_xml_has_balloon("<network/>", &has), -EINVAL);
    assert_int_equal(vm_xml_has_balloon("<domain><devices>", &has), -EINVAL);
    assert_int_equal(vm_xml_has_balloon("", &has), -EINVAL);
}

static void
test_overrides_accepted(void **state)
{
    struct vm_overrides ov;
    char bad[VM_XML_BAD_LEN] = "";
    (void)state;

    assert_int_equal(vm_xml_overrides("<vm/>", &ov, bad, sizeof(bad)), 0);
    assert_true(ov.managed);
    assert_int_equal(ov.min_kib, 0);
    assert_int_equal(
        vm_xml_overrides("<vm managed='no' min_mib='512' max_mib='4096' weight='200'/>", &ov, bad,
                         sizeof(bad)),
        0);
    assert_false(ov.managed);
    assert_int_equal(ov.min_kib, MIB(512));
    assert_int_equal(ov.cap_kib, MIB(4096));
    assert_int_equal(ov.weight, 200);
}

/* Every malformed element is refused, naming what is wrong (the attribute first, then its value
 * and what it may hold), and leaves the defaults. */
static void
test_overrides_refused(void **state)
{
    const struct {
        const char *xml;
        const char *bad;
    } cases[] = {
        {"<vm managed='maybe'/>", "managed value=\"maybe\" allowed=\"yes or no\""},
        {"<vm min_mib='0'/>", "min_mib"},
        {"<vm min_mib='+5'/>", "min_mib"},
        {"<vm min_mib=' 5'/>", "min_mib"},
        {"<vm min_mib='5k'/>", "min_mib"},
        {"<vm min_mib='0x5'/>", "min_mib"},
        {"<vm min_mib='99999999999999999999999'/>", "min_mib"},
        {"<vm max_mib=''/>", "max_mib"},
        {"<vm weight='1001'/>", "weight value=\"1001\" allowed=\"an integer 1-1000\""},
        {"<vm weight='0'/>", "weight"},
        {"<vm wieght='5'/>", "wieght allowed=\"managed, min_mib, max_mib, weight\""},
        {"<vm min_mib='600' max_mib='500'/>",
         "min_mib value=\"600\" allowed=\"at most max_mib (500)\""},
        {"<vm min_mib='a\"b'/>", "min_mib value=\"a?b\""},
        {"<host/>", "element allowed=\"<vm/> in urn:memsched:vm:1\""},
        {"<vm", "element"},
        {"not xml", "element"},
    };
    (void)state;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct vm_overrides ov;
        char bad[VM_XML_BAD_LEN] = "";
        int rc = vm_xml_overrides(cases[i].xml, &ov, bad, sizeof(bad));
        size_t n = strlen(cases[i].bad);
        if (rc != -EINVAL || strncmp(bad, cases[i].bad, n) != 0 || (bad[n] && bad[n] != ' '))
            fail_msg("%s: want -EINVAL naming %s, got %d naming %s", cases[i].xml, cases[i].bad, rc,
                     bad);
        if (!ov.managed || ov.min_kib || ov.cap_kib || ov.weight)
            fail_msg("%s: refused but left overrides behind", cases[i].xml);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balloon_device),
        cmocka_unit_test(test_overrides_accepted),
        cmocka_unit_test(test_overrides_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
