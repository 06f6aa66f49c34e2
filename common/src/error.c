/* error.c - EVQ_E* codes: names, messages, and translation from the OS. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* EAI_* in netdb.h */
#endif
#include "evq_error.h"

#include <errno.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <netdb.h>
#endif

const char *evq_strerror(int code)
{
    switch (code) {
    case EVQ_OK:
        return "success";
#define EVQ_ERROR_MESSAGE(name, value, message)                                                    \
    case EVQ_##name:                                                                               \
        return message;
        EVQ_ERROR_LIST(EVQ_ERROR_MESSAGE)
#undef EVQ_ERROR_MESSAGE
    default:
        return "not an evq error code";
    }
}

const char *evq_error_name(int code)
{
    switch (code) {
    case EVQ_OK:
        return "EVQ_OK";
#define EVQ_ERROR_NAME(name, value, message)                                                       \
    case EVQ_##name:                                                                               \
        return "EVQ_" #name;
        EVQ_ERROR_LIST(EVQ_ERROR_NAME)
#undef EVQ_ERROR_NAME
    default:
        return "EVQ_(unknown)";
    }
}

int evq_error_from_errno(int errno_value)
{
    switch (errno_value) {
    case 0:
        return EVQ_OK;
    case EINVAL:
        return EVQ_EINVAL;
    case ENOMEM:
        return EVQ_ENOMEM;
    case EAGAIN:
        return EVQ_EWOULDBLOCK;
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
        return EVQ_EWOULDBLOCK;
#endif
    case EINTR:
        return EVQ_EINTR;
    case EEXIST:
        return EVQ_EEXIST;
    case ENOENT:
        return EVQ_ENOENT;
    case EBADF:
        return EVQ_EBADF;
    case ECONNREFUSED:
        return EVQ_ECONNREFUSED;
    case ECONNRESET:
        return EVQ_ECONNRESET;
    case ECONNABORTED:
        return EVQ_ECONNABORTED;
    case EPIPE:
        return EVQ_EPIPE;
    case ETIMEDOUT:
        return EVQ_ETIMEDOUT;
    case ENOTCONN:
        return EVQ_ENOTCONN;
    case EADDRINUSE:
        return EVQ_EADDRINUSE;
    case EADDRNOTAVAIL:
        return EVQ_EADDRNOTAVAIL;
    case ENETUNREACH:
        return EVQ_ENETUNREACH;
    case EHOSTUNREACH:
        return EVQ_EHOSTUNREACH;
    case EINPROGRESS:
        return EVQ_EINPROGRESS;
    case EALREADY:
        return EVQ_EALREADY;
    case ECANCELED:
        return EVQ_ECANCELED;
    case EMFILE:
    case ENFILE:
        return EVQ_EMFILE;
    case ENOBUFS:
        return EVQ_ENOBUFS;
    case EACCES:
    case EPERM:
        return EVQ_EACCES;
    case ENOTSUP:
        return EVQ_ENOTSUP;
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
        return EVQ_ENOTSUP;
#endif
    case ERANGE:
        return EVQ_ERANGE;
    case EMSGSIZE:
        return EVQ_EMSGSIZE;
    case EAFNOSUPPORT:
        return EVQ_EAFNOSUPPORT;
    case ENETDOWN:
        return EVQ_ENETDOWN;
    case EBUSY:
        return EVQ_EBUSY;
    default:
        return EVQ_EIO;
    }
}

int evq_error_from_gai(int gai_value)
{
    switch (gai_value) {
    case 0:
        return EVQ_OK;
    case EAI_NONAME:
        return EVQ_EAI_NONAME;
    case EAI_AGAIN:
        return EVQ_EAI_AGAIN;
    case EAI_FAIL:
        return EVQ_EAI_FAIL;
    case EAI_MEMORY:
        return EVQ_ENOMEM;
    case EAI_FAMILY:
        return EVQ_EAFNOSUPPORT;
#if defined(EAI_NODATA) && EAI_NODATA != EAI_NONAME
    case EAI_NODATA:
        return EVQ_EAI_NONAME;
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
        return EVQ_EAI_NONAME;
#endif
#ifdef EAI_SYSTEM
    case EAI_SYSTEM:
        return evq_error_from_errno(errno);
#endif
    default:
        return EVQ_EAI_FAIL;
    }
}

#ifdef _WIN32
int evq_error_from_wsa(int wsa_value)
{
    switch (wsa_value) {
    case 0:
        return EVQ_OK;
    case WSAEINVAL:
    case WSAEFAULT:
        return EVQ_EINVAL;
    case WSA_NOT_ENOUGH_MEMORY:
        return EVQ_ENOMEM;
    case WSAEWOULDBLOCK:
        return EVQ_EWOULDBLOCK;
    case WSAEINTR:
        return EVQ_EINTR;
    case WSAENOTSOCK:
    case WSAEBADF:
    case WSA_INVALID_HANDLE:
        return EVQ_EBADF;
    case WSAECONNREFUSED:
        return EVQ_ECONNREFUSED;
    case WSAECONNRESET:
    case WSAENETRESET:
        return EVQ_ECONNRESET;
    case WSAECONNABORTED:
        return EVQ_ECONNABORTED;
    case WSAESHUTDOWN:
        return EVQ_EPIPE;
    case WSAETIMEDOUT:
        return EVQ_ETIMEDOUT;
    case WSAENOTCONN:
        return EVQ_ENOTCONN;
    case WSAEADDRINUSE:
        return EVQ_EADDRINUSE;
    case WSAEADDRNOTAVAIL:
        return EVQ_EADDRNOTAVAIL;
    case WSAENETUNREACH:
        return EVQ_ENETUNREACH;
    case WSAEHOSTUNREACH:
        return EVQ_EHOSTUNREACH;
    case WSAEINPROGRESS:
    case WSA_IO_PENDING:
        return EVQ_EINPROGRESS;
    case WSAEALREADY:
        return EVQ_EALREADY;
    case WSA_OPERATION_ABORTED:
    case WSAECANCELLED:
        return EVQ_ECANCELED;
    case WSAEMFILE:
        return EVQ_EMFILE;
    case WSAENOBUFS:
        return EVQ_ENOBUFS;
    case WSAEACCES:
        return EVQ_EACCES;
    case WSAEOPNOTSUPP:
        return EVQ_ENOTSUP;
    case WSAHOST_NOT_FOUND:
    case WSANO_DATA:
        return EVQ_EAI_NONAME;
    case WSATRY_AGAIN:
        return EVQ_EAI_AGAIN;
    case WSANO_RECOVERY:
        return EVQ_EAI_FAIL;
    case WSAEMSGSIZE:
        return EVQ_EMSGSIZE;
    case WSAEAFNOSUPPORT:
        return EVQ_EAFNOSUPPORT;
    case WSAENETDOWN:
        return EVQ_ENETDOWN;
    case WSANOTINITIALISED:
        return EVQ_ECLOSED;
    default:
        return EVQ_EIO;
    }
}

int evq_error_from_win32(unsigned long win32_value)
{
    switch (win32_value) {
    case ERROR_SUCCESS:
        return EVQ_OK;
    case ERROR_INVALID_PARAMETER:
        return EVQ_EINVAL;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return EVQ_ENOMEM;
    case ERROR_INVALID_HANDLE:
        return EVQ_EBADF;
    case ERROR_OPERATION_ABORTED:
        return EVQ_ECANCELED;
    case ERROR_NETNAME_DELETED:
    case ERROR_UNEXP_NET_ERR:
        return EVQ_ECONNRESET;
    case ERROR_CONNECTION_REFUSED:
        return EVQ_ECONNREFUSED;
    case ERROR_CONNECTION_ABORTED:
    case ERROR_REQUEST_ABORTED:
        return EVQ_ECONNABORTED;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
        return EVQ_EPIPE;
    case WAIT_TIMEOUT:
    case ERROR_SEM_TIMEOUT:
        return EVQ_ETIMEDOUT;
    case ERROR_IO_PENDING:
        return EVQ_EINPROGRESS;
    case ERROR_NETWORK_UNREACHABLE:
        return EVQ_ENETUNREACH;
    case ERROR_HOST_UNREACHABLE:
    case ERROR_PORT_UNREACHABLE:
        return EVQ_EHOSTUNREACH;
    case ERROR_ABANDONED_WAIT_0:
        return EVQ_ECLOSED;
    case ERROR_NOT_FOUND:
        return EVQ_ENOENT;
    case ERROR_ACCESS_DENIED:
        return EVQ_EACCES;
    case ERROR_NOT_SUPPORTED:
        return EVQ_ENOTSUP;
    default:
        /* Winsock codes also arrive through GetLastError(). */
        if (win32_value >= WSABASEERR && win32_value < WSABASEERR + 2000)
            return evq_error_from_wsa((int)win32_value);
        return EVQ_EIO;
    }
}
#endif
