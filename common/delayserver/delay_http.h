/* delay_http.h - the delay server's request parser: pure functions on a
 * buffer, no sockets, so that every bad input can be tested on its own.
 *
 * Internal to common/delayserver (and its tests); the public API is
 * evq_delay_server.h.
 *
 * What is accepted (and why, where HTTP leaves a choice):
 *   - CRLF or a bare LF ends a line (RFC 9112 section 2.2 lets a recipient
 *     accept a bare LF; it makes `printf 'GET /0/hi HTTP/1.1\n\n' | nc` work).
 *     A CR anywhere else is rejected: a bare CR is a request-smuggling trick.
 *   - Empty lines before the request line are skipped (section 2.2 again).
 *   - The request line is exactly `METHOD SP TARGET SP HTTP/x.y`, one space
 *     each. HTTP/1.0 closes after the answer unless it says
 *     `Connection: keep-alive`; HTTP/1.1 (and 1.x) keeps the connection open
 *     unless it says `Connection: close`. A major version other than 1 -> 505.
 *   - Bytes, the same rules as chapter 3's parser (demo/http_parse.c), so
 *     that the book's two servers never disagree about a request: the
 *     target holds visible ASCII only (0x21-0x7E: a URI is ASCII, RFC 3986,
 *     and any other byte of a message travels percent-encoded, as the
 *     library's client sends every byte); a header value holds visible
 *     ASCII, SP, HTAB and bytes >= 0x80 (RFC 9110 section 5.5's field-vchar
 *     and obs-text), never another control character (NUL, ESC, DEL...):
 *     RFC 9110 lets a recipient either reject or pass such bytes, and
 *     rejecting is the simpler rule, the one that keeps terminal escapes
 *     and smuggling tricks out of logs and answers. Method and header names
 *     are tokens. Each refusal is a 400.
 *   - The target is `/{delay_ms}/{message}[?query]`: delay_ms is one or more
 *     decimal digits (leading zeros allowed, no sign); the message is the
 *     rest of the path, may contain '/', may be empty, and is percent-decoded
 *     ('+' stays '+'); the query, if any, is ignored.
 *   - Header lines need a colon with no space before it; obsolete line
 *     folding is rejected; Host is not required (the book's hand-written
 *     requests may leave it out). A GET here has no body: a Content-Length
 *     other than 0, or any Transfer-Encoding, is rejected, because its bytes
 *     would otherwise be read as the next request.
 */
#ifndef EVQ_DELAY_HTTP_H
#define EVQ_DELAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a request was refused. Each maps to one status and one line of text. */
enum delay_http_error {
    DELAY_HTTP_OK = 0,
    DELAY_HTTP_HEAD_TOO_LARGE,      /* 431 */
    DELAY_HTTP_NUL_BYTE,            /* 400 */
    DELAY_HTTP_BARE_CR,             /* 400 */
    DELAY_HTTP_BAD_REQUEST_LINE,    /* 400 */
    DELAY_HTTP_BAD_METHOD,          /* 400: not even a token */
    DELAY_HTTP_METHOD_NOT_ALLOWED,  /* 405 */
    DELAY_HTTP_BAD_VERSION,         /* 400 */
    DELAY_HTTP_VERSION_UNSUPPORTED, /* 505 */
    DELAY_HTTP_BAD_TARGET_CHAR,     /* 400 */
    DELAY_HTTP_NOT_ORIGIN_FORM,     /* 400 */
    DELAY_HTTP_BAD_PATH,            /* 400 */
    DELAY_HTTP_MISSING_DELAY,       /* 400 */
    DELAY_HTTP_DELAY_NOT_A_NUMBER,  /* 400 */
    DELAY_HTTP_DELAY_TOO_LARGE,     /* 400 */
    DELAY_HTTP_BAD_PERCENT_ESCAPE,  /* 400 */
    DELAY_HTTP_HEADER_NO_COLON,     /* 400 */
    DELAY_HTTP_HEADER_BAD_NAME,     /* 400 */
    DELAY_HTTP_HEADER_FOLDED,       /* 400 */
    DELAY_HTTP_HEADER_BAD_VALUE,    /* 400 */
    DELAY_HTTP_HAS_BODY,            /* 400 */
    DELAY_HTTP_TRANSFER_ENCODING,   /* 400 */
};

/* What a valid request asks for. */
typedef struct delay_http_request {
    uint32_t delay_ms;
    size_t message_offset; /* the decoded message is head[offset, offset + length) */
    size_t message_length;
    bool keep_alive; /* leave the connection open after the answer */
    int http_minor;  /* 0 for HTTP/1.0, 1 for 1.1 and later 1.x */
} delay_http_request;

/* Whether buffer[0, length) holds a whole request head. Returns true and
 * sets *head_length (the bytes up to and including the empty line that ends
 * the head, and any empty lines skipped before the request line) when it
 * does; false when more bytes are needed. */
bool delay_http_find_head_end(const char *buffer, size_t length, size_t *head_length);

/* Parse a complete head (as found by delay_http_find_head_end). The message
 * is percent-decoded in place inside head[], so the caller keeps the buffer
 * until it has sent the answer. Returns DELAY_HTTP_OK or why not. */
enum delay_http_error delay_http_parse_head(char *head, size_t head_length, uint32_t max_delay_ms,
                                            delay_http_request *out);

/* The status code for an error (200 for DELAY_HTTP_OK). */
int delay_http_error_status(enum delay_http_error error);

/* The reason phrase of a status code ("Bad Request"). */
const char *delay_http_status_text(int status);

/* One line of explanation, ending in '\n', into text[capacity] (always
 * NUL-terminated); returns its length. */
size_t delay_http_error_reason(enum delay_http_error error, uint32_t max_delay_ms, char *text,
                               size_t capacity);

#endif
