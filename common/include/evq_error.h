/* evq_error.h - the portable error codes every evq function returns.
 *
 * Every fallible function in the project returns 0 on success or one of the
 * negative EVQ_E* codes below. The numbers are the project's own and are the
 * same on every platform, so a test can assert "EVQ_ECONNREFUSED" whether the
 * kernel said ECONNREFUSED (POSIX), WSAECONNREFUSED (Winsock) or
 * ERROR_CONNECTION_REFUSED (a completion on Windows).
 */
#ifndef EVQ_ERROR_H
#define EVQ_ERROR_H

/* X(name, value, message) */
#define EVQ_ERROR_LIST(X)                                                                          \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EWOULDBLOCK, -3, "operation would block")                                                    \
    X(EINTR, -4, "interrupted system call")                                                        \
    X(ECLOSED, -5, "queue or stream is closed")                                                    \
    X(EEXIST, -6, "already registered")                                                            \
    X(ENOENT, -7, "not registered or not found")                                                   \
    X(EBADF, -8, "bad descriptor or handle")                                                       \
    X(ECONNREFUSED, -9, "connection refused")                                                      \
    X(ECONNRESET, -10, "connection reset by peer")                                                 \
    X(ECONNABORTED, -11, "connection aborted")                                                     \
    X(EPIPE, -12, "broken pipe")                                                                   \
    X(ETIMEDOUT, -13, "timed out")                                                                 \
    X(ENOTCONN, -14, "socket is not connected")                                                    \
    X(EADDRINUSE, -15, "address already in use")                                                   \
    X(EADDRNOTAVAIL, -16, "address not available")                                                 \
    X(ENETUNREACH, -17, "network is unreachable")                                                  \
    X(EHOSTUNREACH, -18, "host is unreachable")                                                    \
    X(EINPROGRESS, -19, "operation in progress")                                                   \
    X(EALREADY, -20, "operation already in progress")                                              \
    X(ECANCELED, -21, "operation canceled")                                                        \
    X(EMFILE, -22, "too many open files")                                                          \
    X(ENOBUFS, -23, "no buffer space available")                                                   \
    X(EACCES, -24, "permission denied")                                                            \
    X(ENOTSUP, -25, "operation not supported")                                                     \
    X(EAI_NONAME, -26, "host or service not known")                                                \
    X(EAI_AGAIN, -27, "temporary failure in name resolution")                                      \
    X(EAI_FAIL, -28, "name resolution failed")                                                     \
    X(EOF, -29, "end of stream")                                                                   \
    X(EFULL, -30, "queue is full")                                                                 \
    X(ERANGE, -31, "value out of range")                                                           \
    X(EMSGSIZE, -32, "message too long")                                                           \
    X(EAFNOSUPPORT, -33, "address family not supported")                                           \
    X(ENETDOWN, -34, "network is down")                                                            \
    X(EBUSY, -35, "resource busy")                                                                 \
    X(EIO, -99, "unknown system error")

enum evq_error {
    EVQ_OK = 0,
#define EVQ_ERROR_ENUM(name, value, message) EVQ_##name = value,
    EVQ_ERROR_LIST(EVQ_ERROR_ENUM)
#undef EVQ_ERROR_ENUM
};

/* A short English description of an EVQ_E* code (or of 0). Never NULL. */
const char *evq_strerror(int code);

/* The code's name, such as "EVQ_ECONNRESET", for test output. Never NULL. */
const char *evq_error_name(int code);

/* Translate an errno value (POSIX, and the C runtime on Windows). */
int evq_error_from_errno(int errno_value);

/* Translate a getaddrinfo() result (EAI_*; on Windows these are WSA codes). */
int evq_error_from_gai(int gai_value);

#ifdef _WIN32
/* Translate a Winsock error (WSAGetLastError()). */
int evq_error_from_wsa(int wsa_value);
/* Translate a Win32 error (GetLastError(), or a failed completion's status). */
int evq_error_from_win32(unsigned long win32_value);
#endif

#endif
