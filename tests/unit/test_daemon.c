/*
 * test_daemon.c - the coordinator daemon's control dispatch (coordinator/daemon.c): who asks is
 * what the transport proved (an operator key's name, the uid over ipc), and what memschedctl
 * claims is kept beside it, marked, cut to fit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "wire.h"

static struct transport_peer
peer(const char *name, long uid)
{
    struct transport_peer p;

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    p.uid = uid;
    return p;
}

static void
test_author_is_what_the_transport_proved(void **state)
{
    char out[WIRE_AUTHOR_MAX], want[WIRE_AUTHOR_MAX];
    struct transport_peer ops = peer("ops", -1), nobody = peer("", -1);
    struct transport_peer me = peer("", (long)getuid());
    struct passwd *pw = getpwuid(getuid());

    (void)state;
    daemon_real_author(&ops, "", out, sizeof(out));
    assert_string_equal(out, "key:ops");
    daemon_real_author(&ops, "mallory", out, sizeof(out));
    assert_string_equal(out, "key:ops claims mallory");
    daemon_real_author(&ops, "ops", out, sizeof(out));
    assert_string_equal(out, "key:ops");
    daemon_real_author(&nobody, "", out, sizeof(out));
    assert_string_equal(out, "unknown");

    if (pw)
        snprintf(want, sizeof(want), "uid:%ld(%.32s)", (long)getuid(), pw->pw_name);
    else
        snprintf(want, sizeof(want), "uid:%ld", (long)getuid());
    daemon_real_author(&me, "", out, sizeof(out));
    assert_string_equal(out, want);
    if (pw) { /* claiming to be who you are adds nothing */
        daemon_real_author(&me, pw->pw_name, out, sizeof(out));
        assert_string_equal(out, want);
    }
    daemon_real_author(&me, "someone-with-a-very-long-name-indeed-longer-than-fits", out,
                       sizeof(out));
    if (strlen(out) >= WIRE_AUTHOR_MAX || !strstr(out, " claims someone-with-a"))
        fail_msg("a long claim: want it cut below %d characters, got '%s'", WIRE_AUTHOR_MAX, out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_author_is_what_the_transport_proved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
