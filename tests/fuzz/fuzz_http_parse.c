/* fuzz_http_parse.c - chapter 3's resumable request parser
 * (chapters/03-buffering/demo/http_parse.c) against itself: the same bytes
 * parsed in one call, and resumed across calls at random cut points, each
 * call on a fresh copy of exactly the bytes received so far (the server's
 * read buffer grows, shrinks and moves between calls).
 *
 * Input: byte 0 picks the head limit (1..128 bytes, or 8192), bytes 1-2
 * seed the cut points, the rest is what the client sent.
 *
 * Rules checked on every input:
 *   - the two ways give the same result: the same request (every field), or
 *     the same status and reason;
 *   - a complete head lies inside the bytes, ends exactly where a simple
 *     line-by-line reading of the bytes says it ends, is at most the limit,
 *     and its target lies inside it and starts with '/';
 *   - 431 exactly when the head exceeds the limit: never when the head ends
 *     within it, and "need more" only while fewer bytes than the limit + 1
 *     have come;
 *   - the parser searches each byte once however the head is cut.
 */
#include "fuzz.h"

#include "http_parse.h"

#include <stdbool.h>
#include <string.h>

enum { NEVER = -1 };

/* Where the head ends by the simplest reading: lines end at LF; the first
 * line that is not empty (after dropping one CR before its LF) is the
 * request line; the next empty line ends the head. NEVER if not in data. */
static long reference_head_end(const unsigned char *data, size_t length)
{
    bool seen_request_line = false;
    size_t line_start = 0;
    for (size_t i = 0; i < length; i++) {
        if (data[i] != '\n')
            continue;
        size_t text_end = i;
        if (text_end > line_start && data[text_end - 1] == '\r')
            text_end--;
        if (text_end == line_start) {
            if (seen_request_line)
                return (long)(i + 1);
        } else {
            seen_request_line = true;
        }
        line_start = i + 1;
    }
    return NEVER;
}

typedef struct outcome {
    int result;
    http_request request;
    http_error error;
    size_t bytes_searched;
} outcome;

static bool same_outcome(const outcome *a, const outcome *b)
{
    if (a->result != b->result)
        return false;
    if (a->result == HTTP_PARSE_ERROR)
        return a->error.status == b->error.status && a->error.reason && b->error.reason &&
               strcmp(a->error.reason, b->error.reason) == 0;
    if (a->result == HTTP_PARSE_COMPLETE)
        return a->request.method == b->request.method &&
               a->request.target_offset == b->request.target_offset &&
               a->request.target_length == b->request.target_length &&
               a->request.minor_version == b->request.minor_version &&
               a->request.keep_alive == b->request.keep_alive &&
               a->request.head_length == b->request.head_length;
    return true;
}

/* Parse data[0, length) in calls that each see data[0, cut), cuts rising. */
static outcome parse_in_pieces(const unsigned char *data, size_t length, size_t max_head,
                               evq_random *random, bool all_at_once)
{
    outcome out;
    memset(&out, 0, sizeof out);
    http_parser parser;
    FUZZ_CHECK(http_parser_init(&parser, max_head) == 0);
    size_t cut = 0;
    out.result = HTTP_PARSE_NEED_MORE;
    for (int calls = 0; out.result == HTTP_PARSE_NEED_MORE; calls++) {
        if (all_at_once) {
            cut = length;
        } else if (cut < length) {
            /* Mostly short steps, sometimes none (the same bytes again). */
            uint64_t step = evq_random_below(random, 8) == 0 ? 0 : 1 + evq_random_below(random, 16);
            cut = step > length - cut ? length : cut + (size_t)step;
        }
        char *copy = malloc(cut ? cut : 1);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, data, cut);
        out.result = http_parse(&parser, copy, cut, &out.request, &out.error);
        free(copy);
        FUZZ_CHECK(out.result == HTTP_PARSE_NEED_MORE || out.result == HTTP_PARSE_COMPLETE ||
                   out.result == HTTP_PARSE_ERROR);
        FUZZ_CHECK(parser.scanned <= cut);
        if (cut == length || all_at_once)
            break;
        FUZZ_CHECK(calls < 1000000);
    }
    out.bytes_searched = parser.bytes_searched;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t max_head = (data[0] & 0x80) ? 8192 : (size_t)(data[0] & 0x7f) + 1;
    evq_random random;
    evq_random_seed(&random, (uint64_t)data[1] << 8 | data[2]);
    data += 3;
    size -= 3;

    outcome whole = parse_in_pieces(data, size, max_head, &random, true);
    outcome pieces = parse_in_pieces(data, size, max_head, &random, false);
    FUZZ_CHECK(same_outcome(&whole, &pieces));
    /* Each byte searched once: a resumed parse searches no more than one
     * that had every byte at once. */
    FUZZ_CHECK(pieces.bytes_searched == whole.bytes_searched);

    long end = reference_head_end(data, size);
    switch (whole.result) {
    case HTTP_PARSE_COMPLETE: {
        const http_request *r = &whole.request;
        FUZZ_CHECK(end != NEVER && r->head_length == (size_t)end);
        FUZZ_CHECK(r->head_length <= max_head && r->head_length <= size);
        FUZZ_CHECK(r->target_length > 0);
        FUZZ_CHECK(r->target_offset < r->head_length);
        FUZZ_CHECK(r->target_length <= r->head_length - r->target_offset);
        FUZZ_CHECK(data[r->target_offset] == '/');
        for (size_t i = 0; i < r->target_length; i++) {
            unsigned char c = data[r->target_offset + i];
            FUZZ_CHECK(c > ' ' && c < 0x7f);
        }
        FUZZ_CHECK(r->method == HTTP_GET || r->method == HTTP_HEAD);
        FUZZ_CHECK(r->minor_version == 0 || r->minor_version == 1);
        break;
    }
    case HTTP_PARSE_NEED_MORE:
        /* Waiting is right only while the limit can still be kept. */
        FUZZ_CHECK(size <= max_head);
        FUZZ_CHECK(end == NEVER);
        break;
    case HTTP_PARSE_ERROR:
        FUZZ_CHECK(whole.error.reason != NULL && whole.error.reason[0] != '\0');
        FUZZ_CHECK(strchr(whole.error.reason, '\n') == NULL);
        if (whole.error.status == 431)
            FUZZ_CHECK(size > max_head && (end == NEVER || (size_t)end > max_head));
        else
            FUZZ_CHECK(whole.error.status == 400 || whole.error.status == 405 ||
                       whole.error.status == 505);
        break;
    default:
        FUZZ_CHECK(!"an unknown result");
    }
    /* A head that ends within the limit is never refused for its size. */
    if (end != NEVER && (size_t)end <= max_head)
        FUZZ_CHECK(whole.result != HTTP_PARSE_ERROR || whole.error.status != 431);
    return 0;
}
