#define _DEFAULT_SOURCE /* mkstemp */
/* The probe and the "unavailable" path. io_uring_setup is made to fail on
 * purpose (evq_uring_testing_fail_setup) to show what the layer says where
 * io_uring is disabled by sysctl, filtered by seccomp or missing. */
#include "uring_test.h"
#include "evq_uring_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool contains(const char *text, const char *part)
{
    return strstr(text, part) != NULL;
}

EVQ_TEST(probe_lists_the_network_opcodes)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    /* What the book's queue needs (ACCEPT 5.5 ... the newest of them); on a
     * kernel without one, the other tests that need it skip. */
    static const uint8_t ops[] = {IORING_OP_NOP,     IORING_OP_ACCEPT,       IORING_OP_CONNECT,
                                  IORING_OP_RECV,    IORING_OP_SEND,         IORING_OP_SENDMSG,
                                  IORING_OP_TIMEOUT, IORING_OP_LINK_TIMEOUT, IORING_OP_ASYNC_CANCEL,
                                  IORING_OP_READ};
    for (size_t i = 0; i < sizeof ops; i++) {
        if (!evq_uring_has_op(&ring, ops[i]))
            evq_test_note("missing here: %s", evq_uring_op_name(ops[i]));
    }
    CHECK(evq_uring_has_op(&ring, IORING_OP_NOP)); /* every io_uring has NOP */
    CHECK(!evq_uring_has_op(&ring, 255));
    CHECK(!evq_uring_has_op(&ring, 1000));
    evq_uring_close(&ring);
}

EVQ_TEST(a_missing_opcode_is_named)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    static const uint8_t ops[] = {IORING_OP_NOP, 255};
    CHECK_ERR(evq_uring_require_ops(&ring, ops, sizeof ops), EVQ_ENOTSUP);
    CHECK_STR(ring.reason, ==, "this kernel's io_uring lacks IORING_OP_? (opcode 255)");
    CHECK_OK(evq_uring_require_ops(&ring, ops, 1));
    evq_uring_close(&ring);
}

EVQ_TEST(opcode_names)
{
    CHECK_STR(evq_uring_op_name(IORING_OP_RECV), ==, "IORING_OP_RECV");
    CHECK_STR(evq_uring_op_name(IORING_OP_ASYNC_CANCEL), ==, "IORING_OP_ASYNC_CANCEL");
    CHECK_STR(evq_uring_op_name(IORING_OP_NOP), ==, "IORING_OP_NOP");
    CHECK_STR(evq_uring_op_name(250), ==, "IORING_OP_?");
}

EVQ_TEST(enosys_is_unavailable_with_a_reason)
{
    evq_uring_testing_fail_setup(ENOSYS);
    evq_uring ring;
    int code = evq_uring_open(&ring, NULL);
    evq_uring_testing_fail_setup(0);
    CHECK_ERR(code, EVQ_ENOTSUP);
    CHECK_INT(ring.fd, ==, -1);
    CHECK_INT(ring.setup_errno, ==, ENOSYS);
    CHECK(contains(ring.reason, "io_uring is unavailable: io_uring_setup failed with ENOSYS"));
    CHECK(contains(ring.reason, "[forced by evq_uring_testing_fail_setup]"));
    evq_test_note("%s", ring.reason);
    evq_uring_close(&ring);
}

/* EPERM: the reason reads kernel.io_uring_disabled to say who refused. */
static void eperm_with_sysctl(const char *value, const char *expected)
{
    char path[] = "/tmp/evq_uring_sysctl_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE_INT(fd, >=, 0);
    if (value)
        REQUIRE_INT(write(fd, value, strlen(value)), ==, (long long)strlen(value));
    close(fd);
    if (!value)
        unlink(path); /* no such sysctl: a kernel before 6.6 */
    evq_uring_testing_sysctl_path(path);
    evq_uring_testing_fail_setup(EPERM);
    evq_uring ring;
    int code = evq_uring_open(&ring, NULL);
    evq_uring_testing_fail_setup(0);
    evq_uring_testing_sysctl_path(NULL);
    if (value)
        unlink(path);
    CHECK_ERR(code, EVQ_EACCES);
    if (!CHECK(contains(ring.reason, expected)))
        evq_test_note("reason: %s", ring.reason);
}

EVQ_TEST(eperm_names_who_refused)
{
    eperm_with_sysctl("2\n", "disabled for every process by sysctl kernel.io_uring_disabled=2");
    eperm_with_sysctl("1\n", "kernel.io_uring_disabled=1 allows only CAP_SYS_ADMIN and the group "
                             "kernel.io_uring_group");
    eperm_with_sysctl("0\n",
                      "although kernel.io_uring_disabled is 0: most likely a seccomp filter");
    eperm_with_sysctl(NULL, "although kernel.io_uring_disabled is absent");
}

/* What evq_uring_open says when io_uring_setup fails with errno_value. */
static void setup_fails_with(int errno_value, int expected_code, const char *expected_reason)
{
    evq_uring_testing_fail_setup(errno_value);
    evq_uring ring;
    int code = evq_uring_open(&ring, NULL);
    evq_uring_testing_fail_setup(0);
    CHECK_ERR(code, expected_code);
    if (!CHECK(contains(ring.reason, expected_reason)))
        evq_test_note("reason: %s", ring.reason);
}

EVQ_TEST(eacces_is_unavailable_too)
{
    setup_fails_with(EACCES, EVQ_EACCES, "io_uring_setup failed with EACCES");
}

/* Other failures are errors, not "unavailable": a test must fail on them. */
EVQ_TEST(enomem_is_an_error_not_unavailable)
{
    setup_fails_with(ENOMEM, EVQ_ENOMEM, "io_uring_setup failed with ENOMEM");
}

EVQ_TEST(check_says_what_open_says)
{
    evq_uring_support support;
    evq_uring_testing_fail_setup(ENOSYS);
    CHECK_ERR(evq_uring_check(&support), EVQ_ENOTSUP);
    evq_uring_testing_fail_setup(0);
    CHECK_INT(support.setup_errno, ==, ENOSYS);
    CHECK(contains(support.reason, "ENOSYS"));

    int code = evq_uring_check(&support);
    if (code == EVQ_ENOTSUP || code == EVQ_EACCES)
        SKIP("%s", support.reason);
    REQUIRE_OK(code);
    CHECK(support.features & IORING_FEAT_NODROP);
    CHECK_UINT(support.last_op, >=, IORING_OP_NOP);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(probe_lists_the_network_opcodes),
        EVQ_CASE(a_missing_opcode_is_named),
        EVQ_CASE(opcode_names),
        EVQ_CASE(enosys_is_unavailable_with_a_reason),
        EVQ_CASE(eperm_names_who_refused),
        EVQ_CASE(eacces_is_unavailable_too),
        EVQ_CASE(enomem_is_an_error_not_unavailable),
        EVQ_CASE(check_says_what_open_says),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
