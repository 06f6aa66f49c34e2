/* delay_http.c - parse one request head for the delay server. See
 * delay_http.h for what is accepted and why. */
#include "delay_http.h"
#include "evq_delay_server.h"

#include <stdio.h>
#include <string.h>

bool delay_http_find_head_end(const char *buffer, size_t length, size_t *head_length)
{
    size_t line_start = 0;
    bool seen_request_line = false;
    while (line_start < length) {
        const char *newline = memchr(buffer + line_start, '\n', length - line_start);
        if (!newline)
            return false;
        size_t newline_at = (size_t)(newline - buffer);
        size_t line_end = newline_at;
        if (line_end > line_start && buffer[line_end - 1] == '\r')
            line_end--;
        if (line_end == line_start) {
            /* An empty line ends the head, once there is a request line;
             * before it, empty lines are skipped. */
            if (seen_request_line) {
                *head_length = newline_at + 1;
                return true;
            }
        } else {
            seen_request_line = true;
        }
        line_start = newline_at + 1;
    }
    return false;
}

/* The next line of a complete head: [*line, *line + *length) without its
 * CRLF or LF. A CR anywhere but right before the LF is an error. */
static enum delay_http_error next_line(char **cursor, char *end, char **line, size_t *length)
{
    char *start = *cursor;
    char *newline = memchr(start, '\n', (size_t)(end - start));
    if (!newline) /* cannot happen for a head found by delay_http_find_head_end */
        return DELAY_HTTP_BAD_REQUEST_LINE;
    char *stop = newline;
    if (stop > start && stop[-1] == '\r')
        stop--;
    if (memchr(start, '\r', (size_t)(stop - start)))
        return DELAY_HTTP_BARE_CR;
    *line = start;
    *length = (size_t)(stop - start);
    *cursor = newline + 1;
    return DELAY_HTTP_OK;
}

/* tchar from RFC 9110 section 5.6.2: what method and header names are made of. */
static bool is_token_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *text, size_t length)
{
    if (length == 0)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!is_token_char((unsigned char)text[i]))
            return false;
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool equals_ignoring_case(const char *text, size_t length, const char *word)
{
    size_t word_length = strlen(word);
    if (length != word_length)
        return false;
    for (size_t i = 0; i < length; i++)
        if (lower(text[i]) != word[i])
            return false;
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim optional whitespace (SP, HTAB) from both ends. */
static void trim(const char **text, size_t *length)
{
    while (*length > 0 && is_space(**text)) {
        (*text)++;
        (*length)--;
    }
    while (*length > 0 && is_space((*text)[*length - 1]))
        (*length)--;
}

/* Decode %XX escapes of text[0, length) in place; the result is never
 * longer than the input. */
static enum delay_http_error percent_decode(char *text, size_t length, size_t *decoded)
{
    size_t out = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] != '%') {
            text[out++] = text[i];
            continue;
        }
        if (length - i < 3)
            return DELAY_HTTP_BAD_PERCENT_ESCAPE;
        int high = hex_value(text[i + 1]);
        int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0)
            return DELAY_HTTP_BAD_PERCENT_ESCAPE;
        text[out++] = (char)(high * 16 + low);
        i += 2;
    }
    *decoded = out;
    return DELAY_HTTP_OK;
}

/* The target: /{delay_ms}/{message}[?query]. */
static enum delay_http_error parse_target(char *head, char *target, size_t length,
                                          uint32_t max_delay_ms, delay_http_request *out)
{
    /* Visible ASCII only (delay_http.h says why). */
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c >= 0x7f)
            return DELAY_HTTP_BAD_TARGET_CHAR;
    }
    if (target[0] != '/')
        return DELAY_HTTP_NOT_ORIGIN_FORM;
    char *query = memchr(target, '?', length);
    size_t path_length = query ? (size_t)(query - target) : length;

    char *delay = target + 1;
    char *slash = memchr(delay, '/', path_length - 1);
    if (!slash)
        return DELAY_HTTP_BAD_PATH;
    if (slash == delay)
        return DELAY_HTTP_MISSING_DELAY;
    uint64_t value = 0;
    bool too_large = false;
    for (char *p = delay; p < slash; p++) {
        if (*p < '0' || *p > '9')
            return DELAY_HTTP_DELAY_NOT_A_NUMBER;
        /* Stop accumulating once past the maximum: 10^30 digits never overflow. */
        if (!too_large) {
            value = value * 10 + (uint64_t)(*p - '0');
            too_large = value > max_delay_ms;
        }
    }
    if (too_large)
        return DELAY_HTTP_DELAY_TOO_LARGE;

    char *message = slash + 1;
    size_t raw_length = (size_t)(target + path_length - message);
    size_t decoded = 0;
    enum delay_http_error error = percent_decode(message, raw_length, &decoded);
    if (error != DELAY_HTTP_OK)
        return error;
    out->delay_ms = (uint32_t)value;
    out->message_offset = (size_t)(message - head);
    out->message_length = decoded;
    return DELAY_HTTP_OK;
}

/* A comma-separated Connection value: close and keep-alive are the options
 * that matter here. */
static void parse_connection(const char *value, size_t length, bool *close, bool *keep_alive)
{
    while (length > 0) {
        const char *comma = memchr(value, ',', length);
        size_t item_length = comma ? (size_t)(comma - value) : length;
        const char *item = value;
        size_t trimmed = item_length;
        trim(&item, &trimmed);
        if (equals_ignoring_case(item, trimmed, "close"))
            *close = true;
        else if (equals_ignoring_case(item, trimmed, "keep-alive"))
            *keep_alive = true;
        if (!comma)
            break;
        value = comma + 1;
        length -= item_length + 1;
    }
}

static enum delay_http_error parse_header(char *line, size_t length, bool *close, bool *keep_alive)
{
    if (is_space(line[0]))
        return DELAY_HTTP_HEADER_FOLDED;
    char *colon = memchr(line, ':', length);
    if (!colon)
        return DELAY_HTTP_HEADER_NO_COLON;
    size_t name_length = (size_t)(colon - line);
    /* "Host : x" is rejected too: RFC 9112 section 5.1 says a server MUST
     * answer whitespace before the colon with 400. */
    if (!is_token(line, name_length))
        return DELAY_HTTP_HEADER_BAD_NAME;
    const char *value = colon + 1;
    size_t value_length = length - name_length - 1;
    /* Visible ASCII, SP, HTAB and obs-text (>= 0x80); no other control
     * character (delay_http.h says why). */
    for (size_t i = 0; i < value_length; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return DELAY_HTTP_HEADER_BAD_VALUE;
    }
    trim(&value, &value_length);

    if (equals_ignoring_case(line, name_length, "connection")) {
        parse_connection(value, value_length, close, keep_alive);
    } else if (equals_ignoring_case(line, name_length, "content-length")) {
        if (value_length == 0)
            return DELAY_HTTP_HAS_BODY;
        for (size_t i = 0; i < value_length; i++)
            if (value[i] != '0')
                return DELAY_HTTP_HAS_BODY;
    } else if (equals_ignoring_case(line, name_length, "transfer-encoding")) {
        return DELAY_HTTP_TRANSFER_ENCODING;
    }
    return DELAY_HTTP_OK;
}

enum delay_http_error delay_http_parse_head(char *head, size_t head_length, uint32_t max_delay_ms,
                                            delay_http_request *out)
{
    if (memchr(head, '\0', head_length))
        return DELAY_HTTP_NUL_BYTE;
    char *cursor = head;
    char *end = head + head_length;
    char *line;
    size_t length;
    enum delay_http_error error;
    do {
        if ((error = next_line(&cursor, end, &line, &length)) != DELAY_HTTP_OK)
            return error;
    } while (length == 0);

    /* METHOD SP TARGET SP VERSION, one space each. */
    char *first_space = memchr(line, ' ', length);
    if (!first_space)
        return DELAY_HTTP_BAD_REQUEST_LINE;
    char *target = first_space + 1;
    char *line_end = line + length;
    char *second_space = memchr(target, ' ', (size_t)(line_end - target));
    if (!second_space)
        return DELAY_HTTP_BAD_REQUEST_LINE;
    char *version = second_space + 1;
    size_t method_length = (size_t)(first_space - line);
    size_t target_length = (size_t)(second_space - target);
    size_t version_length = (size_t)(line_end - version);
    if (method_length == 0 || target_length == 0 || version_length == 0 ||
        memchr(version, ' ', version_length))
        return DELAY_HTTP_BAD_REQUEST_LINE;
    if (!is_token(line, method_length))
        return DELAY_HTTP_BAD_METHOD;
    if (version_length != 8 || memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9')
        return DELAY_HTTP_BAD_VERSION;
    if (version[5] != '1')
        return DELAY_HTTP_VERSION_UNSUPPORTED;
    /* Methods are case-sensitive (RFC 9110 section 9.1): "get" is not GET. */
    if (method_length != 3 || memcmp(line, "GET", 3) != 0)
        return DELAY_HTTP_METHOD_NOT_ALLOWED;

    delay_http_request request;
    memset(&request, 0, sizeof request);
    request.http_minor = version[7] == '0' ? 0 : 1;
    if ((error = parse_target(head, target, target_length, max_delay_ms, &request)) !=
        DELAY_HTTP_OK)
        return error;

    bool close = false, keep_alive = false;
    for (;;) {
        if ((error = next_line(&cursor, end, &line, &length)) != DELAY_HTTP_OK)
            return error;
        if (length == 0)
            break;
        if ((error = parse_header(line, length, &close, &keep_alive)) != DELAY_HTTP_OK)
            return error;
    }
    request.keep_alive = request.http_minor == 0 ? keep_alive && !close : !close;
    *out = request;
    return DELAY_HTTP_OK;
}

int delay_http_error_status(enum delay_http_error error)
{
    switch (error) {
    case DELAY_HTTP_OK:
        return 200;
    case DELAY_HTTP_HEAD_TOO_LARGE:
        return 431;
    case DELAY_HTTP_METHOD_NOT_ALLOWED:
        return 405;
    case DELAY_HTTP_VERSION_UNSUPPORTED:
        return 505;
    default:
        return 400;
    }
}

const char *delay_http_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

_Static_assert(EVQ_DELAY_SERVER_MAX_HEAD == 8192, "update the 431 reason below");

size_t delay_http_error_reason(enum delay_http_error error, uint32_t max_delay_ms, char *text,
                               size_t capacity)
{
    if (capacity == 0)
        return 0;
    const char *reason = "bad request";
    switch (error) {
    case DELAY_HTTP_OK:
        reason = "ok";
        break;
    case DELAY_HTTP_HEAD_TOO_LARGE:
        reason = "the request head is larger than 8192 bytes";
        break;
    case DELAY_HTTP_NUL_BYTE:
        reason = "the request head contains a NUL byte";
        break;
    case DELAY_HTTP_BARE_CR:
        reason = "the request head has a CR that is not followed by LF";
        break;
    case DELAY_HTTP_BAD_REQUEST_LINE:
        reason = "malformed request line: expected 'GET /{delay_ms}/{message} HTTP/1.1'";
        break;
    case DELAY_HTTP_BAD_METHOD:
        reason = "malformed request line: the method is not a token";
        break;
    case DELAY_HTTP_METHOD_NOT_ALLOWED:
        reason = "only GET is allowed";
        break;
    case DELAY_HTTP_BAD_VERSION:
        reason = "malformed HTTP version: expected HTTP/1.1 or HTTP/1.0";
        break;
    case DELAY_HTTP_VERSION_UNSUPPORTED:
        reason = "HTTP version not supported: only HTTP/1.0 and HTTP/1.1";
        break;
    case DELAY_HTTP_BAD_TARGET_CHAR:
        reason = "the path holds a byte that is not visible ASCII (percent-encode it)";
        break;
    case DELAY_HTTP_NOT_ORIGIN_FORM:
        reason = "the path must start with '/': expected /{delay_ms}/{message}";
        break;
    case DELAY_HTTP_BAD_PATH:
        reason = "the path must look like /{delay_ms}/{message}";
        break;
    case DELAY_HTTP_MISSING_DELAY:
        reason = "the path has no delay_ms: expected /{delay_ms}/{message}";
        break;
    case DELAY_HTTP_DELAY_NOT_A_NUMBER:
        reason = "delay_ms must be a whole number of milliseconds (digits only)";
        break;
    case DELAY_HTTP_DELAY_TOO_LARGE: {
        int n = snprintf(text, capacity, "delay_ms is above the maximum of %lu ms\n",
                         (unsigned long)max_delay_ms);
        return n < 0 ? 0 : (size_t)n < capacity ? (size_t)n : capacity - 1;
    }
    case DELAY_HTTP_BAD_PERCENT_ESCAPE:
        reason = "bad percent escape in the message: '%' must be followed by two hex digits";
        break;
    case DELAY_HTTP_HEADER_NO_COLON:
        reason = "a header line has no colon";
        break;
    case DELAY_HTTP_HEADER_BAD_NAME:
        reason = "a header name must be a token followed directly by ':'";
        break;
    case DELAY_HTTP_HEADER_FOLDED:
        reason = "obsolete header line folding is not supported";
        break;
    case DELAY_HTTP_HEADER_BAD_VALUE:
        reason = "a header value holds a control character";
        break;
    case DELAY_HTTP_HAS_BODY:
        reason = "this server takes no request body: Content-Length must be 0";
        break;
    case DELAY_HTTP_TRANSFER_ENCODING:
        reason = "this server takes no request body: Transfer-Encoding is not supported";
        break;
    }
    int n = snprintf(text, capacity, "%s\n", reason);
    return n < 0 ? 0 : (size_t)n < capacity ? (size_t)n : capacity - 1;
}
