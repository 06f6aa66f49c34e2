/* test_http.c - the chapter's resumable HTTP head parser, without sockets:
 * every way a head can be cut into pieces gives the same answer, each byte
 * is searched once, and every malformed head gets its status and a reason.
 * It does not depend on the backend, so it runs once (ch06.http.<case>).
 */
#include "http_parse.h"

#include "evq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_HEAD = 8192 };

static const char simple[] = "GET /bytes/10 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "User-Agent: test\r\n\r\n";

/* Parse text in one call. */
static int parse_whole(const char *text, size_t length, size_t max_head, http_request *request,
                       http_error *error)
{
    http_parser parser;
    int rc = http_parser_init(&parser, max_head);
    if (rc != 0)
        return rc;
    return http_parse(&parser, text, length, request, error);
}

static bool target_is(const char *text, const http_request *request, const char *want)
{
    return request->target_length == strlen(want) &&
           memcmp(text + request->target_offset, want, request->target_length) == 0;
}

EVQ_TEST(a_whole_head_in_one_piece)
{
    http_request request;
    http_error error;
    size_t length = strlen(simple);
    REQUIRE_INT(parse_whole(simple, length, MAX_HEAD, &request, &error), ==, HTTP_PARSE_COMPLETE);
    CHECK_INT(request.method, ==, HTTP_GET);
    CHECK(target_is(simple, &request, "/bytes/10"));
    CHECK_INT(request.minor_version, ==, 1);
    CHECK(request.keep_alive); /* HTTP/1.1 keeps the connection by default */
    CHECK_UINT(request.head_length, ==, length);
}

/* Catches a parser that keeps state in local variables (it would never see
 * the head complete when it arrives a byte per call) and one that starts
 * every search at byte 0 again: bytes_searched would grow with the square
 * of the length. The bytes also move to a new buffer before every call, and
 * the old one is overwritten: a parser that kept a pointer reads garbage. */
EVQ_TEST(one_byte_at_a_time_searches_each_byte_once)
{
    size_t length = strlen(simple);
    http_parser parser;
    REQUIRE_OK(http_parser_init(&parser, MAX_HEAD));
    http_request request;
    http_error error;
    char *previous = NULL;
    int result = HTTP_PARSE_NEED_MORE;
    for (size_t have = 1; have <= length; have++) {
        char *copy = malloc(have);
        REQUIRE(copy != NULL);
        memcpy(copy, simple, have);
        if (previous) {
            memset(previous, 'X', have - 1);
            free(previous);
        }
        previous = copy;
        result = http_parse(&parser, copy, have, &request, &error);
        if (have < length)
            CHECK_INT(result, ==, HTTP_PARSE_NEED_MORE);
    }
    CHECK_INT(result, ==, HTTP_PARSE_COMPLETE);
    CHECK(target_is(previous, &request, "/bytes/10"));
    free(previous);
    CHECK_UINT(request.head_length, ==, length);
    CHECK_UINT(parser.bytes_searched, ==, length);
}

/* Every place a head can be cut in two gives the same result. */
EVQ_TEST(every_split_point_gives_the_same_request)
{
    static const char head[] = "\r\nHEAD /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    size_t length = strlen(head);
    for (size_t cut = 0; cut <= length; cut++) {
        http_parser parser;
        REQUIRE_OK(http_parser_init(&parser, MAX_HEAD));
        http_request request;
        http_error error;
        int first = http_parse(&parser, head, cut, &request, &error);
        if (cut < length)
            CHECK_INT(first, ==, HTTP_PARSE_NEED_MORE);
        if (first == HTTP_PARSE_NEED_MORE)
            CHECK_INT(http_parse(&parser, head, length, &request, &error), ==, HTTP_PARSE_COMPLETE);
        CHECK_INT(request.method, ==, HTTP_HEAD);
        CHECK(target_is(head, &request, "/x"));
        CHECK_INT(request.minor_version, ==, 0);
        CHECK(request.keep_alive);
        CHECK_UINT(request.head_length, ==, length); /* the skipped empty line counts */
        CHECK_UINT(parser.bytes_searched, ==, length);
        if (evq_test_failures() > 0) {
            evq_test_note("cut at %zu", cut);
            return;
        }
    }
}

/* Two requests in one buffer: the first ends at its empty line and leaves
 * the second's bytes alone (not even searched), for the next parse. */
EVQ_TEST(pipelined_heads_are_taken_one_at_a_time)
{
    static const char two[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
    size_t length = strlen(two);
    http_parser parser;
    REQUIRE_OK(http_parser_init(&parser, MAX_HEAD));
    http_request request;
    http_error error;
    REQUIRE_INT(http_parse(&parser, two, length, &request, &error), ==, HTTP_PARSE_COMPLETE);
    CHECK(target_is(two, &request, "/a"));
    CHECK(request.keep_alive);
    size_t first = request.head_length;
    CHECK_UINT(first, ==, strlen("GET /a HTTP/1.1\r\n\r\n"));
    CHECK_UINT(parser.bytes_searched, ==, first);

    REQUIRE_OK(http_parser_init(&parser, MAX_HEAD));
    REQUIRE_INT(http_parse(&parser, two + first, length - first, &request, &error), ==,
                HTTP_PARSE_COMPLETE);
    CHECK(target_is(two + first, &request, "/b"));
    CHECK(!request.keep_alive);
    CHECK_UINT(first + request.head_length, ==, length);
}

EVQ_TEST(connection_header_decides_keep_alive)
{
    static const struct {
        const char *text;
        bool keep_alive;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nconnection:CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: Upgrade, close \r\n\r\n", false},
        {"GET / HTTP/1.0\r\n\r\n", false}, /* HTTP/1.0 closes by default */
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true}, /* not the word close */
        {"GET / HTTP/1.9\r\n\r\n", true},                       /* a later 1.x is 1.1 */
    };
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        http_request request;
        http_error error;
        int result = parse_whole(cases[i].text, strlen(cases[i].text), MAX_HEAD, &request, &error);
        if (!CHECK_INT(result, ==, HTTP_PARSE_COMPLETE) ||
            !CHECK_INT(request.keep_alive, ==, cases[i].keep_alive))
            evq_test_note("case %zu: %s", i, cases[i].text);
    }
}

EVQ_TEST(bare_lf_ends_a_line)
{
    static const char text[] = "GET /lf HTTP/1.1\nHost: x\n\n";
    http_request request;
    http_error error;
    REQUIRE_INT(parse_whole(text, strlen(text), MAX_HEAD, &request, &error), ==,
                HTTP_PARSE_COMPLETE);
    CHECK(target_is(text, &request, "/lf"));
    CHECK_UINT(request.head_length, ==, strlen(text));
}

/* The limit counts the whole head: exactly max_head is fine, one more byte
 * is 431. */
EVQ_TEST(a_head_of_exactly_the_limit_is_accepted)
{
    char text[512];
    int base = snprintf(text, sizeof text, "GET / HTTP/1.1\r\nX-Fill: ");
    size_t max_head = 200, fill = max_head - (size_t)base - 4;
    memset(text + base, 'a', fill);
    memcpy(text + base + fill, "\r\n\r\n", 4);
    http_request request;
    http_error error;
    CHECK_INT(parse_whole(text, max_head, max_head, &request, &error), ==, HTTP_PARSE_COMPLETE);
    CHECK_UINT(request.head_length, ==, max_head);
    CHECK_INT(parse_whole(text, max_head, max_head - 1, &request, &error), ==, HTTP_PARSE_ERROR);
    CHECK_INT(error.status, ==, 431);
}

/* Catches a parser that waits for the empty line before checking the size:
 * a client that never ends its head would make the server buffer for ever.
 * The 431 comes once max_head + 1 bytes are in, and no byte beyond that is
 * searched. */
EVQ_TEST(an_oversized_head_is_refused_as_soon_as_it_is_certain)
{
    size_t max_head = 1024, length = 64 * 1024;
    char *text = malloc(length);
    REQUIRE(text != NULL);
    memcpy(text, "GET / HTTP/1.1\r\nX-Long: ", 24);
    memset(text + 24, 'a', length - 24); /* no line end anywhere */
    http_parser parser;
    REQUIRE_OK(http_parser_init(&parser, max_head));
    http_request request;
    http_error error;
    CHECK_INT(http_parse(&parser, text, max_head, &request, &error), ==, HTTP_PARSE_NEED_MORE);
    CHECK_INT(http_parse(&parser, text, length, &request, &error), ==, HTTP_PARSE_ERROR);
    CHECK_INT(error.status, ==, 431);
    CHECK(error.reason != NULL && strstr(error.reason, "larger") != NULL);
    CHECK_UINT(parser.bytes_searched, ==, max_head + 1);
    free(text);
}

/* Many short header lines add up: the limit is on the head, not a line. */
EVQ_TEST(many_small_headers_add_up_to_431)
{
    char text[4096];
    size_t length = (size_t)snprintf(text, sizeof text, "GET / HTTP/1.1\r\n");
    while (length + 16 < sizeof text)
        length += (size_t)snprintf(text + length, sizeof text - length, "X-A: 0123456789\r\n");
    http_request request;
    http_error error;
    CHECK_INT(parse_whole(text, length, 1000, &request, &error), ==, HTTP_PARSE_ERROR);
    CHECK_INT(error.status, ==, 431);
}

EVQ_TEST(malformed_heads_get_a_status_and_a_reason)
{
    static const struct {
        const char *text;
        int status;
        const char *reason_part;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET /\r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET  / HTTP/1.1\r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET / HTTP/1.1 \r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET / HTTP/1.1 extra\r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET / HTP/1.1\r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET / HTTP/11\r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET /\x01 HTTP/1.1\r\n\r\n", 400, "METHOD SP TARGET"},
        {"G(T / HTTP/1.1\r\n\r\n", 400, "METHOD SP TARGET"},
        {"GET http://host/ HTTP/1.1\r\n\r\n", 400, "starting with '/'"},
        {"GET * HTTP/1.1\r\n\r\n", 400, "starting with '/'"},
        {"POST / HTTP/1.1\r\n\r\n", 405, "GET and HEAD"},
        {"get / HTTP/1.1\r\n\r\n", 405, "GET and HEAD"}, /* methods are case-sensitive */
        {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
        {"GET / HTTP/1.1\r\nHost example\r\n\r\n", 400, "no colon"},
        {"GET / HTTP/1.1\r\nHost : example\r\n\r\n", 400, "header name"},
        {"GET / HTTP/1.1\r\n: example\r\n\r\n", 400, "header name"},
        {"GET / HTTP/1.1\r\nA: b\r\n continued\r\n\r\n", 400, "folding"},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, "control character"},
        {"GET / HTTP/1.1\rX: y\r\n\r\n", 400, "a CR"},
        {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400, "a CR"},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400, "Content-Length"},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "not a number"},
        {"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "Content-Length"},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding"},
    };
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        http_request request;
        http_error error = {0, NULL};
        int result = parse_whole(cases[i].text, strlen(cases[i].text), MAX_HEAD, &request, &error);
        if (!CHECK_INT(result, ==, HTTP_PARSE_ERROR) ||
            !CHECK_INT(error.status, ==, cases[i].status) || !CHECK(error.reason != NULL) ||
            !CHECK(strstr(error.reason, cases[i].reason_part) != NULL) ||
            !CHECK(strchr(error.reason, '\n') == NULL))
            evq_test_note("case %zu: %s -> %d %s", i, cases[i].text, error.status,
                          error.reason ? error.reason : "(no reason)");
    }
}

EVQ_TEST(well_formed_oddities_are_accepted)
{
    static const char *const texts[] = {
        "GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n",
        "GET /?q=1&r=%20 HTTP/1.1\r\n\r\n",
        "HEAD / HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tvalue\t\r\n\r\n",
        "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
    };
    for (size_t i = 0; i < EVQ_COUNT(texts); i++) {
        http_request request;
        http_error error = {0, NULL};
        int result = parse_whole(texts[i], strlen(texts[i]), MAX_HEAD, &request, &error);
        if (!CHECK_INT(result, ==, HTTP_PARSE_COMPLETE))
            evq_test_note("case %zu: %s -> %d %s", i, texts[i], error.status,
                          error.reason ? error.reason : "");
    }
}

/* Catches a parser that only looks at lines once the head is complete:
 * garbage must be refused when its first line is in, not when (if ever)
 * an empty line arrives. */
EVQ_TEST(a_bad_request_line_is_refused_before_the_head_ends)
{
    static const char text[] = "HELLO THERE\r\nand more without an end";
    http_request request;
    http_error error;
    CHECK_INT(parse_whole(text, strlen(text), MAX_HEAD, &request, &error), ==, HTTP_PARSE_ERROR);
    CHECK_INT(error.status, ==, 400);
}

EVQ_TEST(misuse_is_einval)
{
    http_parser parser;
    http_request request;
    http_error error;
    CHECK_ERR(http_parser_init(NULL, 10), EVQ_EINVAL);
    CHECK_ERR(http_parser_init(&parser, 0), EVQ_EINVAL);
    REQUIRE_OK(http_parser_init(&parser, MAX_HEAD));
    CHECK_ERR(http_parse(NULL, simple, 4, &request, &error), EVQ_EINVAL);
    CHECK_ERR(http_parse(&parser, NULL, 4, &request, &error), EVQ_EINVAL);
    CHECK_ERR(http_parse(&parser, simple, 4, NULL, &error), EVQ_EINVAL);
    CHECK_ERR(http_parse(&parser, simple, 4, &request, NULL), EVQ_EINVAL);
    CHECK_INT(http_parse(&parser, NULL, 0, &request, &error), ==, HTTP_PARSE_NEED_MORE);
    CHECK_INT(http_parse(&parser, simple, 10, &request, &error), ==, HTTP_PARSE_NEED_MORE);
    /* Fewer bytes than already seen: the caller lost some. */
    CHECK_ERR(http_parse(&parser, simple, 9, &request, &error), EVQ_EINVAL);
    CHECK_INT(http_parse(&parser, simple, strlen(simple), &request, &error), ==,
              HTTP_PARSE_COMPLETE);
    /* A finished parser must be started again first. */
    CHECK_ERR(http_parse(&parser, simple, strlen(simple), &request, &error), EVQ_EINVAL);
}

EVQ_TEST(status_texts)
{
    CHECK_STR(http_status_text(200), ==, "OK");
    CHECK_STR(http_status_text(400), ==, "Bad Request");
    CHECK_STR(http_status_text(404), ==, "Not Found");
    CHECK_STR(http_status_text(405), ==, "Method Not Allowed");
    CHECK_STR(http_status_text(431), ==, "Request Header Fields Too Large");
    CHECK_STR(http_status_text(505), ==, "HTTP Version Not Supported");
    CHECK_STR(http_status_text(299), ==, "Unknown");
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_whole_head_in_one_piece),
        EVQ_CASE(one_byte_at_a_time_searches_each_byte_once),
        EVQ_CASE(every_split_point_gives_the_same_request),
        EVQ_CASE(pipelined_heads_are_taken_one_at_a_time),
        EVQ_CASE(connection_header_decides_keep_alive),
        EVQ_CASE(bare_lf_ends_a_line),
        EVQ_CASE(a_head_of_exactly_the_limit_is_accepted),
        EVQ_CASE(an_oversized_head_is_refused_as_soon_as_it_is_certain),
        EVQ_CASE(many_small_headers_add_up_to_431),
        EVQ_CASE(malformed_heads_get_a_status_and_a_reason),
        EVQ_CASE(well_formed_oddities_are_accepted),
        EVQ_CASE(a_bad_request_line_is_refused_before_the_head_ends),
        EVQ_CASE(misuse_is_einval),
        EVQ_CASE(status_texts),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
