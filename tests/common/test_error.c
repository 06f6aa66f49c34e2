/* Tests of evq_error.h: every code has a name and a message, and the OS
 * error numbers map to the portable codes. */
#if !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L /* EAI_* in netdb.h */
#endif
#include "evq_error.h"
#include "evq_test.h"

#include <errno.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#else
#include <netdb.h>
#endif

static const int all_codes[] = {
#define EVQ_ERROR_VALUE(name, value, message) EVQ_##name,
    EVQ_ERROR_LIST(EVQ_ERROR_VALUE)
#undef EVQ_ERROR_VALUE
};

EVQ_TEST(every_code_is_negative_and_unique)
{
    for (size_t i = 0; i < EVQ_COUNT(all_codes); i++) {
        CHECK_INT(all_codes[i], <, 0);
        for (size_t j = i + 1; j < EVQ_COUNT(all_codes); j++)
            CHECK_INT(all_codes[i], !=, all_codes[j]);
    }
}

EVQ_TEST(every_code_has_a_message_and_a_name)
{
    for (size_t i = 0; i < EVQ_COUNT(all_codes); i++) {
        CHECK_STR(evq_strerror(all_codes[i]), !=, evq_strerror(12345));
        CHECK_STR(evq_error_name(all_codes[i]), !=, evq_error_name(12345));
        CHECK(strncmp(evq_error_name(all_codes[i]), "EVQ_E", 5) == 0);
    }
    CHECK_STR(evq_strerror(EVQ_OK), ==, "success");
    CHECK_STR(evq_error_name(EVQ_ECONNRESET), ==, "EVQ_ECONNRESET");
    CHECK_STR(evq_strerror(EVQ_ECONNREFUSED), ==, "connection refused");
}

EVQ_TEST(unknown_code_is_named_as_such)
{
    CHECK_STR(evq_strerror(-12345), ==, "not an evq error code");
    CHECK_STR(evq_error_name(7), ==, "EVQ_(unknown)");
}

EVQ_TEST(errno_values_map_to_portable_codes)
{
    CHECK_ERR(evq_error_from_errno(0), EVQ_OK);
    CHECK_ERR(evq_error_from_errno(EINVAL), EVQ_EINVAL);
    CHECK_ERR(evq_error_from_errno(ENOMEM), EVQ_ENOMEM);
    CHECK_ERR(evq_error_from_errno(EAGAIN), EVQ_EWOULDBLOCK);
    CHECK_ERR(evq_error_from_errno(EWOULDBLOCK), EVQ_EWOULDBLOCK);
    CHECK_ERR(evq_error_from_errno(EINTR), EVQ_EINTR);
    CHECK_ERR(evq_error_from_errno(ECONNREFUSED), EVQ_ECONNREFUSED);
    CHECK_ERR(evq_error_from_errno(ECONNRESET), EVQ_ECONNRESET);
    CHECK_ERR(evq_error_from_errno(EPIPE), EVQ_EPIPE);
    CHECK_ERR(evq_error_from_errno(EINPROGRESS), EVQ_EINPROGRESS);
    CHECK_ERR(evq_error_from_errno(EMFILE), EVQ_EMFILE);
    CHECK_ERR(evq_error_from_errno(ENFILE), EVQ_EMFILE);
    CHECK_ERR(evq_error_from_errno(EBADF), EVQ_EBADF);
    CHECK_ERR(evq_error_from_errno(ENOENT), EVQ_ENOENT);
    CHECK_ERR(evq_error_from_errno(EEXIST), EVQ_EEXIST);
}

EVQ_TEST(unmapped_errno_is_eio)
{
    CHECK_ERR(evq_error_from_errno(EDOM), EVQ_EIO);
}

#ifdef _WIN32
EVQ_TEST_WINDOWS(winsock_and_win32_errors_map_to_portable_codes)
{
    CHECK_ERR(evq_error_from_wsa(WSAEWOULDBLOCK), EVQ_EWOULDBLOCK);
    CHECK_ERR(evq_error_from_wsa(WSAECONNREFUSED), EVQ_ECONNREFUSED);
    CHECK_ERR(evq_error_from_wsa(WSAECONNRESET), EVQ_ECONNRESET);
    CHECK_ERR(evq_error_from_wsa(WSAENOTSOCK), EVQ_EBADF);
    CHECK_ERR(evq_error_from_wsa(WSAHOST_NOT_FOUND), EVQ_EAI_NONAME);
    CHECK_ERR(evq_error_from_win32(ERROR_OPERATION_ABORTED), EVQ_ECANCELED);
    CHECK_ERR(evq_error_from_win32(ERROR_NETNAME_DELETED), EVQ_ECONNRESET);
    CHECK_ERR(evq_error_from_win32(ERROR_CONNECTION_REFUSED), EVQ_ECONNREFUSED);
    CHECK_ERR(evq_error_from_win32(WSAECONNABORTED), EVQ_ECONNABORTED);
    CHECK_ERR(evq_error_from_win32(ERROR_ABANDONED_WAIT_0), EVQ_ECLOSED);
}
#else
EVQ_TEST_POSIX(getaddrinfo_errors_map_to_portable_codes)
{
    CHECK_ERR(evq_error_from_gai(0), EVQ_OK);
    CHECK_ERR(evq_error_from_gai(EAI_NONAME), EVQ_EAI_NONAME);
    CHECK_ERR(evq_error_from_gai(EAI_AGAIN), EVQ_EAI_AGAIN);
    CHECK_ERR(evq_error_from_gai(EAI_FAIL), EVQ_EAI_FAIL);
    CHECK_ERR(evq_error_from_gai(EAI_MEMORY), EVQ_ENOMEM);
}
#endif

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(every_code_is_negative_and_unique),
        EVQ_CASE(every_code_has_a_message_and_a_name),
        EVQ_CASE(unknown_code_is_named_as_such),
        EVQ_CASE(errno_values_map_to_portable_codes),
        EVQ_CASE(unmapped_errno_is_eio),
#ifdef _WIN32
        EVQ_CASE(winsock_and_win32_errors_map_to_portable_codes),
#else
        EVQ_CASE(getaddrinfo_errors_map_to_portable_codes),
#endif
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
