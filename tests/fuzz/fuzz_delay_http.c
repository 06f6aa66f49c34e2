/* fuzz_delay_http.c - the delay server's request parser (delay_http.c), fed
 * the way the server feeds it: the first EVQ_DELAY_SERVER_MAX_HEAD bytes of
 * a connection, searched for the end of a head, then parsed in place.
 *
 * Input: byte 0 picks the maximum delay, the rest is what the client sent.
 *
 * Rules checked on every input:
 *   - the head end lies inside the bytes and ends a line;
 *   - every refusal has a status (400, 405, 431, 505) and one line of text;
 *   - an accepted request's message lies inside the head, and its delay is
 *     at most the maximum;
 *   - with chapter 3's parser built (FUZZ_WITH_CH03_PARSER): the two agree
 *     on bytes. A head the delay server accepts is a complete GET for
 *     chapter 3's parser too, with the same length and connection choice;
 *     and a head chapter 3's parser completes is refused by the delay
 *     server only for what it alone asks (the shape of its path, a delay
 *     in range, percent escapes, GET) - never for a byte rule.
 */
#include "fuzz.h"

#include "delay_http.h"
#include "evq_delay_server.h"

#include <stdbool.h>
#include <string.h>

#ifdef FUZZ_WITH_CH03_PARSER
#include "http_parse.h"
#endif

static uint32_t max_delay_of(uint8_t selector)
{
    switch (selector % 4) {
    case 0:
        return EVQ_DELAY_SERVER_DEFAULT_MAX_DELAY_MS;
    case 1:
        return UINT32_MAX;
    case 2:
        return 0;
    default:
        return selector; /* small: the limit is near the digits the fuzzer writes */
    }
}

#ifdef FUZZ_WITH_CH03_PARSER
/* Errors that only the delay server's own routes give. */
static bool delay_server_only(enum delay_http_error error)
{
    switch (error) {
    case DELAY_HTTP_METHOD_NOT_ALLOWED: /* HEAD is fine for chapter 3 */
    case DELAY_HTTP_NOT_ORIGIN_FORM:
    case DELAY_HTTP_BAD_PATH:
    case DELAY_HTTP_MISSING_DELAY:
    case DELAY_HTTP_DELAY_NOT_A_NUMBER:
    case DELAY_HTTP_DELAY_TOO_LARGE:
    case DELAY_HTTP_BAD_PERCENT_ESCAPE:
        return true;
    default:
        return false;
    }
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t max_delay = max_delay_of(data[0]);
    data++;
    size--;
    /* The server's buffer holds at most this much of a head. */
    size_t length = size < EVQ_DELAY_SERVER_MAX_HEAD ? size : EVQ_DELAY_SERVER_MAX_HEAD;
    char *buffer = malloc(length ? length : 1); /* exact: ASan sees a read past the end */
    if (!buffer)
        return 0;
    memcpy(buffer, data, length);

    size_t head_length = 0;
    if (!delay_http_find_head_end(buffer, length, &head_length)) {
        free(buffer);
        return 0;
    }
    FUZZ_CHECK(head_length > 0 && head_length <= length);
    FUZZ_CHECK(buffer[head_length - 1] == '\n');

#ifdef FUZZ_WITH_CH03_PARSER
    /* Chapter 3's parser on a pristine copy (the delay parser decodes in place). */
    http_parser parser;
    http_request other;
    http_error other_error = {0, NULL};
    FUZZ_CHECK(http_parser_init(&parser, EVQ_DELAY_SERVER_MAX_HEAD) == 0);
    int other_result = http_parse(&parser, buffer, length, &other, &other_error);
#endif

    delay_http_request request;
    memset(&request, 0, sizeof request);
    enum delay_http_error error = delay_http_parse_head(buffer, head_length, max_delay, &request);
    int status = delay_http_error_status(error);
    char reason[160];
    size_t reason_length = delay_http_error_reason(error, max_delay, reason, sizeof reason);
    FUZZ_CHECK(reason_length > 1 && reason_length == strlen(reason));
    FUZZ_CHECK(strchr(reason, '\n') == reason + reason_length - 1);
    if (error == DELAY_HTTP_OK) {
        FUZZ_CHECK(status == 200);
        FUZZ_CHECK(request.message_offset <= head_length);
        FUZZ_CHECK(request.message_length <= head_length - request.message_offset);
        FUZZ_CHECK(request.delay_ms <= max_delay);
        FUZZ_CHECK(request.http_minor == 0 || request.http_minor == 1);
    } else {
        FUZZ_CHECK(status == 400 || status == 405 || status == 431 || status == 505);
    }

#ifdef FUZZ_WITH_CH03_PARSER
    if (error == DELAY_HTTP_OK) {
        FUZZ_CHECK(other_result == HTTP_PARSE_COMPLETE);
        FUZZ_CHECK(other.method == HTTP_GET);
        FUZZ_CHECK(other.head_length == head_length);
        FUZZ_CHECK(other.keep_alive == request.keep_alive);
        FUZZ_CHECK(other.minor_version == request.http_minor);
    } else if (other_result == HTTP_PARSE_COMPLETE) {
        FUZZ_CHECK(delay_server_only(error));
    }
#endif
    free(buffer);
    return 0;
}
