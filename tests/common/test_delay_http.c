/* Tests of the delay server's request parser on buffers, without sockets:
 * where a head ends, what a valid request asks for, and which error each
 * bad request gets. */
#include "delay_http.h"
#include "evq_delay_server.h"
#include "evq_test.h"

#include <stdio.h>
#include <string.h>

/* Find the head in text and parse it (-1: no whole head); the text is
 * copied, as parsing decodes the message in place. */
static int parse(const char *text, uint32_t max_delay_ms, delay_http_request *request, char *copy,
                 size_t capacity)
{
    size_t length = strlen(text);
    if (length >= capacity)
        return DELAY_HTTP_HEAD_TOO_LARGE;
    memcpy(copy, text, length + 1);
    size_t head_length = 0;
    if (!delay_http_find_head_end(copy, length, &head_length))
        return -1;
    memset(request, 0, sizeof *request);
    return delay_http_parse_head(copy, head_length, max_delay_ms, request);
}

EVQ_TEST(head_end_needs_an_empty_line)
{
    size_t n = 0;
    CHECK(!delay_http_find_head_end("", 0, &n));
    CHECK(!delay_http_find_head_end("GET /1/x HTTP/1.1", 17, &n));
    CHECK(!delay_http_find_head_end("GET /1/x HTTP/1.1\r\n", 19, &n));
    CHECK(!delay_http_find_head_end("GET /1/x HTTP/1.1\r\nHost: a\r\n\r", 30, &n));
    CHECK(delay_http_find_head_end("GET /1/x HTTP/1.1\r\n\r\n", 21, &n));
    CHECK_UINT(n, ==, 21);
    const char *two = "GET /1/x HTTP/1.1\r\n\r\nGET /2/y HTTP/1.1\r\n\r\n";
    CHECK(delay_http_find_head_end(two, strlen(two), &n));
    CHECK_UINT(n, ==, 21); /* only the first */
}

EVQ_TEST(head_end_accepts_bare_lf_and_skips_leading_empty_lines)
{
    size_t n = 0;
    CHECK(delay_http_find_head_end("GET /1/x HTTP/1.1\n\n", 19, &n));
    CHECK_UINT(n, ==, 19);
    CHECK(delay_http_find_head_end("GET /1/x HTTP/1.1\r\n\n", 20, &n));
    CHECK_UINT(n, ==, 20);
    CHECK(!delay_http_find_head_end("\r\n\r\n\n", 5, &n)); /* only empty lines: not yet a head */
    CHECK(delay_http_find_head_end("\r\n\nGET /1/x HTTP/1.1\r\n\r\n", 24, &n));
    CHECK_UINT(n, ==, 24);
}

EVQ_TEST(a_valid_request_gives_delay_message_and_keep_alive)
{
    char copy[256];
    delay_http_request r;
    REQUIRE_INT(parse("GET /1500/hello%20world HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                      "User-Agent: test\r\n\r\n",
                      60000, &r, copy, sizeof copy),
                ==, DELAY_HTTP_OK);
    CHECK_UINT(r.delay_ms, ==, 1500);
    CHECK_UINT(r.message_length, ==, 11);
    CHECK_MEM(copy + r.message_offset, "hello world", 11);
    CHECK(r.keep_alive);
    CHECK_INT(r.http_minor, ==, 1);
}

EVQ_TEST(connection_header_decides_keep_alive)
{
    static const struct {
        const char *text;
        bool keep_alive;
    } cases[] = {
        {"GET /0/x HTTP/1.1\r\n\r\n", true},
        {"GET /0/x HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET /0/x HTTP/1.1\r\nconnection:   CLOSE  \r\n\r\n", false},
        {"GET /0/x HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET /0/x HTTP/1.1\r\nConnection: upgrade\r\n\r\n", true},
        {"GET /0/x HTTP/1.0\r\n\r\n", false},
        {"GET /0/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET /0/x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET /0/x HTTP/1.9\r\n\r\n", true},
    };
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        char copy[256];
        delay_http_request r;
        if (!CHECK_INT(parse(cases[i].text, 60000, &r, copy, sizeof copy), ==, DELAY_HTTP_OK) ||
            !CHECK_INT(r.keep_alive, ==, cases[i].keep_alive))
            evq_test_note("case %zu: %s", i, cases[i].text);
    }
}

EVQ_TEST(the_message_is_decoded_in_place)
{
    static const struct {
        const char *target;
        const char *message;
        size_t length;
    } cases[] = {
        {"/0/plain", "plain", 5},
        {"/0/", "", 0},
        {"/0/a%2Fb%2fc", "a/b/c", 5},
        {"/0/%41%42%43", "ABC", 3},
        {"/0/a+b", "a+b", 3},
        {"/0/a/b/c", "a/b/c", 5},
        {"/0/x?y=1&z", "x", 1},
        {"/0/?only-query", "", 0},
        {"/0/%00", "\0", 1},
        {"/0/%25", "%", 1},
        {"/0000000000000000000012/x", "x", 1},
    };
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        char text[128], copy[128];
        snprintf(text, sizeof text, "GET %s HTTP/1.1\r\n\r\n", cases[i].target);
        delay_http_request r;
        if (!CHECK_INT(parse(text, 60000, &r, copy, sizeof copy), ==, DELAY_HTTP_OK) ||
            !CHECK_UINT(r.message_length, ==, cases[i].length) ||
            !CHECK_MEM(copy + r.message_offset, cases[i].message, cases[i].length))
            evq_test_note("case %zu: %s", i, cases[i].target);
    }
}

EVQ_TEST(the_delay_limit_is_inclusive_and_overflow_safe)
{
    char copy[256];
    delay_http_request r;
    CHECK_INT(parse("GET /500/x HTTP/1.1\r\n\r\n", 500, &r, copy, sizeof copy), ==, DELAY_HTTP_OK);
    CHECK_UINT(r.delay_ms, ==, 500);
    CHECK_INT(parse("GET /501/x HTTP/1.1\r\n\r\n", 500, &r, copy, sizeof copy), ==,
              DELAY_HTTP_DELAY_TOO_LARGE);
    CHECK_INT(parse("GET /4294967295/x HTTP/1.1\r\n\r\n", 4294967295u, &r, copy, sizeof copy), ==,
              DELAY_HTTP_OK);
    CHECK_UINT(r.delay_ms, ==, 4294967295u);
    CHECK_INT(parse("GET /4294967296/x HTTP/1.1\r\n\r\n", 4294967295u, &r, copy, sizeof copy), ==,
              DELAY_HTTP_DELAY_TOO_LARGE);
    CHECK_INT(
        parse("GET /18446744073709551617/x HTTP/1.1\r\n\r\n", 4294967295u, &r, copy, sizeof copy),
        ==, DELAY_HTTP_DELAY_TOO_LARGE);
    /* A non-digit after a too-large prefix is still "not a number". */
    CHECK_INT(parse("GET /99999999999x/x HTTP/1.1\r\n\r\n", 60000, &r, copy, sizeof copy), ==,
              DELAY_HTTP_DELAY_NOT_A_NUMBER);
}

EVQ_TEST(each_bad_request_gets_its_own_error)
{
    static const struct {
        const char *text;
        enum delay_http_error error;
    } cases[] = {
        {"GET /abc/x HTTP/1.1\r\n\r\n", DELAY_HTTP_DELAY_NOT_A_NUMBER},
        {"GET /-1/x HTTP/1.1\r\n\r\n", DELAY_HTTP_DELAY_NOT_A_NUMBER},
        {"GET / 1/x HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_REQUEST_LINE},
        {"GET //x HTTP/1.1\r\n\r\n", DELAY_HTTP_MISSING_DELAY},
        {"GET /100 HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_PATH},
        {"GET /100?x=/y HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_PATH},
        {"GET * HTTP/1.1\r\n\r\n", DELAY_HTTP_NOT_ORIGIN_FORM},
        {"GET /0/%g0 HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_PERCENT_ESCAPE},
        {"GET /0/%0 HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_PERCENT_ESCAPE},
        {"GET /0/%0?x HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_PERCENT_ESCAPE},
        {"GET /0/x\r\n\r\n", DELAY_HTTP_BAD_REQUEST_LINE},
        {"GET /0/x \r\n\r\n", DELAY_HTTP_BAD_REQUEST_LINE},
        {" GET /0/x HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_REQUEST_LINE},
        {"GET /0/x HTTP/1.1 \r\n\r\n", DELAY_HTTP_BAD_REQUEST_LINE},
        {"GET /0/x http/1.1\r\n\r\n", DELAY_HTTP_BAD_VERSION},
        {"GET /0/x HTTP/1.10\r\n\r\n", DELAY_HTTP_BAD_VERSION},
        {"GET /0/x HTTP/0.9\r\n\r\n", DELAY_HTTP_VERSION_UNSUPPORTED},
        {"GET /0/x HTTP/3.0\r\n\r\n", DELAY_HTTP_VERSION_UNSUPPORTED},
        {"GE(T /0/x HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_METHOD},
        {"HEAD /0/x HTTP/1.1\r\n\r\n", DELAY_HTTP_METHOD_NOT_ALLOWED},
        {"GET /0/x HTTP/1.1\r\nNoColon\r\n\r\n", DELAY_HTTP_HEADER_NO_COLON},
        {"GET /0/x HTTP/1.1\r\nBad Name: x\r\n\r\n", DELAY_HTTP_HEADER_BAD_NAME},
        {"GET /0/x HTTP/1.1\r\nName\t: x\r\n\r\n", DELAY_HTTP_HEADER_BAD_NAME},
        {"GET /0/x HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", DELAY_HTTP_HEADER_FOLDED},
        {"GET /0/x HTTP/1.1\r\nContent-Length: 1\r\n\r\n", DELAY_HTTP_HAS_BODY},
        {"GET /0/x HTTP/1.1\r\nContent-Length: \r\n\r\n", DELAY_HTTP_HAS_BODY},
        {"GET /0/x HTTP/1.1\r\nContent-Length: -0\r\n\r\n", DELAY_HTTP_HAS_BODY},
        {"GET /0/x HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", DELAY_HTTP_TRANSFER_ENCODING},
        {"GET /0/x\rHTTP/1.1\r\n\r\n", DELAY_HTTP_BARE_CR},
        {"GET /0/x HTTP/1.1\r\nA: b\rc\r\n\r\n", DELAY_HTTP_BARE_CR},
        {"GET /0/\x1b[31m HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_TARGET_CHAR},
        {"GET /0/x\t HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_TARGET_CHAR},
    };
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        char copy[256];
        delay_http_request r;
        if (!CHECK_INT(parse(cases[i].text, 60000, &r, copy, sizeof copy), ==, cases[i].error))
            evq_test_note("case %zu: %s", i, cases[i].text);
    }
    /* Content-Length: 0 (or 000) is no body, and fine. */
    char copy[128];
    delay_http_request r;
    CHECK_INT(
        parse("GET /0/x HTTP/1.1\r\nContent-Length: 000\r\n\r\n", 60000, &r, copy, sizeof copy), ==,
        DELAY_HTTP_OK);
}

EVQ_TEST(bytes_follow_the_same_rules_as_chapter_3s_parser)
{
    /* The target is visible ASCII (a URI is ASCII: other bytes are
     * percent-encoded); a header value is visible ASCII, SP, HTAB and bytes
     * >= 0x80 (RFC 9110's obs-text), never another control character. */
    static const struct {
        const char *text;
        enum delay_http_error error;
    } cases[] = {
        {"GET /0/caf\xc3\xa9 HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_TARGET_CHAR},
        {"GET /0/\x80 HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_TARGET_CHAR},
        {"GET /0/\xff HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_TARGET_CHAR},
        {"GET /0/a\x7f HTTP/1.1\r\n\r\n", DELAY_HTTP_BAD_TARGET_CHAR},
        {"GET /0/x HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", DELAY_HTTP_HEADER_BAD_VALUE},
        {"GET /0/x HTTP/1.1\r\nX-A: \x1b[31mred\r\n\r\n", DELAY_HTTP_HEADER_BAD_VALUE},
        {"GET /0/x HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", DELAY_HTTP_HEADER_BAD_VALUE},
        {"GET /0/x HTTP/1.1\r\nX-A: a\x0b\x0c\r\n\r\n", DELAY_HTTP_HEADER_BAD_VALUE},
        {"GET /0/x HTTP/1.1\r\nX-\xc3\xa9: a\r\n\r\n", DELAY_HTTP_HEADER_BAD_NAME},
        /* Allowed: */
        {"GET /0/caf%C3%A9 HTTP/1.1\r\n\r\n", DELAY_HTTP_OK},
        {"GET /0/x HTTP/1.1\r\nX-A: caf\xc3\xa9\r\n\r\n", DELAY_HTTP_OK},
        {"GET /0/x HTTP/1.1\r\nX-A: \ta\tb c \t\r\n\r\n", DELAY_HTTP_OK},
        {"GET /0/!$&'()*+,;=:@-._~ HTTP/1.1\r\n\r\n", DELAY_HTTP_OK},
    };
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        char copy[256];
        delay_http_request r;
        if (!CHECK_INT(parse(cases[i].text, 60000, &r, copy, sizeof copy), ==, cases[i].error))
            evq_test_note("case %zu: %s", i, cases[i].text);
    }
}

EVQ_TEST(a_nul_byte_is_rejected)
{
    char head[] = "GET /0/a\0b HTTP/1.1\r\n\r\n";
    size_t length = sizeof head - 1;
    size_t head_length = 0;
    REQUIRE(delay_http_find_head_end(head, length, &head_length));
    delay_http_request r;
    CHECK_INT(delay_http_parse_head(head, head_length, 60000, &r), ==, DELAY_HTTP_NUL_BYTE);
}

EVQ_TEST(every_error_has_a_status_and_one_line_of_text)
{
    for (int e = DELAY_HTTP_HEAD_TOO_LARGE; e <= DELAY_HTTP_TRANSFER_ENCODING; e++) {
        int status = delay_http_error_status((enum delay_http_error)e);
        CHECK(status == 400 || status == 405 || status == 431 || status == 505);
        CHECK_STR(delay_http_status_text(status), !=, "Error");
        char text[128];
        size_t n = delay_http_error_reason((enum delay_http_error)e, 60000, text, sizeof text);
        CHECK_UINT(n, >, 1);
        CHECK_UINT(n, ==, strlen(text));
        CHECK(strchr(text, '\n') == text + n - 1);
    }
    CHECK_INT(delay_http_error_status(DELAY_HTTP_HEAD_TOO_LARGE), ==, 431);
    CHECK_INT(delay_http_error_status(DELAY_HTTP_METHOD_NOT_ALLOWED), ==, 405);
    CHECK_INT(delay_http_error_status(DELAY_HTTP_VERSION_UNSUPPORTED), ==, 505);
    CHECK_INT(delay_http_error_status(DELAY_HTTP_DELAY_TOO_LARGE), ==, 400);
    char text[64];
    delay_http_error_reason(DELAY_HTTP_DELAY_TOO_LARGE, 1234, text, sizeof text);
    CHECK_STR(text, ==, "delay_ms is above the maximum of 1234 ms\n");
    /* A short buffer is cut, never overrun. */
    char tiny[8];
    CHECK_UINT(delay_http_error_reason(DELAY_HTTP_BAD_PATH, 0, tiny, sizeof tiny), ==, 7);
    CHECK_UINT(strlen(tiny), ==, 7);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(head_end_needs_an_empty_line),
        EVQ_CASE(head_end_accepts_bare_lf_and_skips_leading_empty_lines),
        EVQ_CASE(a_valid_request_gives_delay_message_and_keep_alive),
        EVQ_CASE(connection_header_decides_keep_alive),
        EVQ_CASE(the_message_is_decoded_in_place),
        EVQ_CASE(the_delay_limit_is_inclusive_and_overflow_safe),
        EVQ_CASE(each_bad_request_gets_its_own_error),
        EVQ_CASE(bytes_follow_the_same_rules_as_chapter_3s_parser),
        EVQ_CASE(a_nul_byte_is_rejected),
        EVQ_CASE(every_error_has_a_status_and_one_line_of_text),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
