/* http_parse.c - the resumable request-head parser (see http_parse.h). */
#include "http_parse.h"

#include "evq_error.h"

#include <string.h>

/* tchar in RFC 9110 5.6.2: what a method or a header name may contain. */
static bool is_token_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* data[0, length) equals word, ignoring ASCII case. */
static bool equals_ignoring_case(const char *data, size_t length, const char *word)
{
    size_t i = 0;
    for (; i < length && word[i] != '\0'; i++) {
        if (lower(data[i]) != lower(word[i]))
            return false;
    }
    return i == length && word[i] == '\0';
}

static int refuse(http_parser *parser, http_error *error, int status, const char *reason)
{
    parser->finished = true;
    error->status = status;
    error->reason = reason;
    return HTTP_PARSE_ERROR;
}

/* The request line, data[start, end) without its line ending. */
static int take_request_line(http_parser *parser, const char *data, size_t start, size_t end,
                             http_error *error)
{
    static const char shape[] = "the request line is not METHOD SP TARGET SP HTTP/1.x";
    const char *line = data + start;
    size_t length = end - start, method_end = 0;
    while (method_end < length && is_token_char((unsigned char)line[method_end]))
        method_end++;
    if (method_end == 0 || method_end == length || line[method_end] != ' ')
        return refuse(parser, error, 400, shape);
    size_t target_start = method_end + 1, target_end = target_start;
    while (target_end < length && (unsigned char)line[target_end] > ' ' &&
           (unsigned char)line[target_end] < 0x7f)
        target_end++; /* visible ASCII: a control byte or a second space ends it */
    if (target_end == target_start || target_end == length || line[target_end] != ' ')
        return refuse(parser, error, 400, shape);
    const char *version = line + target_end + 1;
    size_t version_length = length - target_end - 1;
    if (version_length != 8 || memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9')
        return refuse(parser, error, 400, shape);
    if (version[5] != '1')
        return refuse(parser, error, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    if (method_end == 3 && memcmp(line, "GET", 3) == 0)
        parser->request.method = HTTP_GET;
    else if (method_end == 4 && memcmp(line, "HEAD", 4) == 0)
        parser->request.method = HTTP_HEAD;
    else
        return refuse(parser, error, 405, "only GET and HEAD are served");
    if (line[target_start] != '/')
        return refuse(parser, error, 400, "the target is not a path starting with '/'");
    parser->request.target_offset = start + target_start;
    parser->request.target_length = target_end - target_start;
    parser->request.minor_version = version[7] == '0' ? 0 : 1;
    parser->seen_request_line = true;
    return HTTP_PARSE_NEED_MORE;
}

/* `Connection: a, b, c`: look for close and keep-alive among the options. */
static void take_connection_options(http_parser *parser, const char *value, size_t length)
{
    size_t i = 0;
    while (i < length) {
        size_t start = i;
        while (i < length && value[i] != ',')
            i++;
        size_t end = i++;
        while (start < end && is_blank(value[start]))
            start++;
        while (end > start && is_blank(value[end - 1]))
            end--;
        if (equals_ignoring_case(value + start, end - start, "close"))
            parser->says_close = true;
        else if (equals_ignoring_case(value + start, end - start, "keep-alive"))
            parser->says_keep_alive = true;
    }
}

/* A header line, data[start, end) without its line ending. */
static int take_header_line(http_parser *parser, const char *data, size_t start, size_t end,
                            http_error *error)
{
    const char *line = data + start;
    size_t length = end - start, colon = 0;
    if (is_blank(line[0]))
        return refuse(parser, error, 400, "obsolete line folding is not accepted");
    if (!memchr(line, ':', length))
        return refuse(parser, error, 400, "a header line has no colon");
    while (colon < length && is_token_char((unsigned char)line[colon]))
        colon++;
    if (colon == 0 || line[colon] != ':')
        return refuse(parser, error, 400, "a header name holds a character that is not allowed");
    size_t value_start = colon + 1, value_end = length;
    for (size_t i = value_start; i < length; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < ' ' && c != '\t') || c == 0x7f)
            return refuse(parser, error, 400, "a header value holds a control character");
    }
    while (value_start < value_end && is_blank(line[value_start]))
        value_start++;
    while (value_end > value_start && is_blank(line[value_end - 1]))
        value_end--;
    const char *value = line + value_start;
    size_t value_length = value_end - value_start;
    if (equals_ignoring_case(line, colon, "connection")) {
        take_connection_options(parser, value, value_length);
    } else if (equals_ignoring_case(line, colon, "transfer-encoding")) {
        return refuse(parser, error, 400, "a request body is not accepted (Transfer-Encoding)");
    } else if (equals_ignoring_case(line, colon, "content-length")) {
        /* A body we do not read would be parsed as the next request. */
        bool zero = value_length > 0;
        for (size_t i = 0; i < value_length; i++) {
            if (value[i] < '0' || value[i] > '9')
                return refuse(parser, error, 400, "Content-Length is not a number");
            zero = zero && value[i] == '0';
        }
        if (!zero)
            return refuse(parser, error, 400, "a request body is not accepted (Content-Length)");
    }
    return HTTP_PARSE_NEED_MORE;
}

int http_parser_init(http_parser *parser, size_t max_head)
{
    if (!parser || max_head == 0)
        return EVQ_EINVAL;
    memset(parser, 0, sizeof *parser);
    parser->max_head = max_head;
    return 0;
}

/* A complete line, data[line_start, end) with its line ending. */
static int take_line(http_parser *parser, const char *data, size_t end, http_request *request,
                     http_error *error)
{
    size_t start = parser->line_start, text_end = end - 1;
    if (text_end > start && data[text_end - 1] == '\r')
        text_end--;
    parser->line_start = end;
    if (memchr(data + start, '\r', text_end - start))
        return refuse(parser, error, 400, "a CR that does not end a line");
    if (text_end == start && parser->seen_request_line) { /* the empty line: done */
        parser->finished = true;
        *request = parser->request;
        request->head_length = end;
        request->keep_alive =
            !parser->says_close && (request->minor_version >= 1 || parser->says_keep_alive);
        return HTTP_PARSE_COMPLETE;
    }
    if (text_end == start)
        return HTTP_PARSE_NEED_MORE; /* empty lines before the request line are skipped */
    if (!parser->seen_request_line)
        return take_request_line(parser, data, start, text_end, error);
    return take_header_line(parser, data, start, text_end, error);
}

/* ANCHOR: parse_resume */
int http_parse(http_parser *parser, const char *data, size_t length, http_request *request,
               http_error *error)
{
    if (!parser || (!data && length > 0) || !request || !error || parser->finished ||
        length < parser->scanned)
        return EVQ_EINVAL;
    /* Never look further than one byte past the limit: that byte decides 431. */
    size_t limit = length < parser->max_head + 1 ? length : parser->max_head + 1;
    while (parser->scanned < limit) {
        const char *newline = memchr(data + parser->scanned, '\n', limit - parser->scanned);
        size_t end = newline ? (size_t)(newline - data) + 1 : limit;
        parser->bytes_searched += end - parser->scanned;
        parser->scanned = end; /* the next call starts here, not at 0 */
        if (!newline || end > parser->max_head)
            break;
        int result = take_line(parser, data, end, request, error);
        if (result != HTTP_PARSE_NEED_MORE)
            return result;
    }
    if (parser->scanned > parser->max_head)
        return refuse(parser, error, 431, "the request head is larger than the server accepts");
    return HTTP_PARSE_NEED_MORE;
}
/* ANCHOR_END: parse_resume */

const char *http_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
