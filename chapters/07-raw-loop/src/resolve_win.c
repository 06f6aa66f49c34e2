/* resolve_win.c - the system's resolver on Windows: GetAddrInfoW(), copied
 * into an address list. It blocks; the pool calls it on its workers. With
 * AI_NUMERICHOST it only parses, and the loop's thread may call it.
 *
 * The wide-character call, because names are UTF-8 everywhere in the
 * library and getaddrinfo() (the ANSI one) would read them in the system's
 * code page: a name with a non-ASCII letter would be another name. */
#include "resolver.h"

#include "evq_net.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <stdlib.h>
#include <string.h>

/* UTF-8 to a new UTF-16 string; EVQ_EINVAL when the bytes are not UTF-8. */
static int utf8_to_utf16(const char *text, wchar_t **out)
{
    int length = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text, -1, NULL, 0);
    if (length <= 0)
        return EVQ_EINVAL;
    wchar_t *wide = malloc((size_t)length * sizeof *wide);
    if (!wide)
        return EVQ_ENOMEM;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text, -1, wide, length) != length) {
        free(wide);
        return EVQ_EINVAL;
    }
    *out = wide;
    return 0;
}

static void port_to_utf16(uint16_t port, wchar_t service[8])
{
    wchar_t digits[8];
    int n = 0;
    do {
        digits[n++] = (wchar_t)(L'0' + port % 10);
        port /= 10;
    } while (port != 0);
    for (int i = 0; i < n; i++)
        service[i] = digits[n - 1 - i];
    service[n] = L'\0';
}

/* ANCHOR: getaddrinfow */
static int lookup(const char *host, uint16_t port, int flags, evq_address_list *out)
{
    int rc = evq_net_init(); /* WSAStartup, once per process */
    if (rc != 0)
        return rc;
    wchar_t *name = NULL;
    if ((rc = utf8_to_utf16(host, &name)) != 0)
        return rc;
    wchar_t service[8];
    port_to_utf16(port, service);
    ADDRINFOW hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | flags;
    ADDRINFOW *list = NULL;
    int error = GetAddrInfoW(name, service, &hints, &list); /* blocks, unless numeric */
    free(name);
    if (error != 0)
        return evq_error_from_wsa(error); /* it returns a Winsock code, EAI_* being WSA ones */
    for (const ADDRINFOW *ai = list; ai && rc == 0; ai = ai->ai_next) {
        rc = evq_address_list_add(out, ai->ai_addr, ai->ai_addrlen);
        if (rc == EVQ_EAFNOSUPPORT)
            rc = 0;
    }
    FreeAddrInfoW(list);
    return rc;
}
/* ANCHOR_END: getaddrinfow */

int evq_resolve_system(const char *host, uint16_t port, evq_address_list *out, void *context)
{
    (void)context;
    return lookup(host, port, 0, out); /* on a worker: this may take seconds */
}

int resolve_numeric(const char *host, uint16_t port, evq_address_list *out)
{
    return lookup(host, port, AI_NUMERICHOST, out); /* a name is WSAHOST_NOT_FOUND, at once */
}
