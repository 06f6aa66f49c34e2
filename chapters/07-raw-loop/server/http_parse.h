/* http_parse.h - a resumable parser for the small part of HTTP/1.1 that the
 * chapter's server speaks: a request head (request line, header lines, an
 * empty line), nothing else.
 *
 * Resumable means: the caller hands it the bytes received so far - all of
 * them, from the first byte of the head (the server leaves them in the
 * stream's read buffer and peeks at them again) - and the parser carries on
 * from where it stopped last time. It keeps positions (offsets from the
 * start of the head), never pointers, so the bytes may move between calls
 * (the read buffer grows, shrinks and compacts).
 * Each byte is searched once however the head is cut into pieces.
 *
 * What it accepts (where HTTP leaves a choice, the simpler strict one):
 *   - a line ends with CRLF, or a bare LF (RFC 9112 2.2 allows it; it makes
 *     `printf 'GET / HTTP/1.1\n\n' | nc` work); a CR anywhere else is
 *     rejected (a bare CR is a request-smuggling trick);
 *   - empty lines before the request line are skipped (RFC 9112 2.2);
 *   - the request line is `METHOD SP TARGET SP HTTP/1.x`, one space each:
 *     GET and HEAD; another method -> 405; HTTP/2 and up -> 505;
 *   - the target starts with '/' and holds visible ASCII only;
 *   - header lines are `name: value`, no space before the colon, no
 *     obsolete line folding; `Connection: close` / `keep-alive` (a
 *     comma-separated list, any case) decide whether the connection stays;
 *   - no body: a Content-Length other than 0 or any Transfer-Encoding -> 400,
 *     because its bytes would otherwise be read as the next request;
 *   - the whole head, empty lines before it included, is at most max_head
 *     bytes -> else 431, as soon as that is certain (not when it ends).
 * A line is checked as soon as it is complete, so garbage gets its 400
 * without waiting for the end of a head that may never come.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

enum http_method { HTTP_GET, HTTP_HEAD };

/* What a complete head asked for. Offsets count from the head's first byte. */
typedef struct http_request {
    enum http_method method;
    size_t target_offset, target_length; /* the path, as sent (no decoding) */
    int minor_version;                   /* 0: HTTP/1.0, 1: HTTP/1.1 (and later 1.x) */
    bool keep_alive;                     /* leave the connection open after the answer */
    size_t head_length;                  /* bytes up to and including the empty line */
} http_request;

/* A refusal: the status to answer and one line saying why (no newline). */
typedef struct http_error {
    int status; /* 400, 405, 431 or 505 */
    const char *reason;
} http_error;

enum http_parse_result {
    HTTP_PARSE_NEED_MORE, /* the head is not complete yet: call again with more bytes */
    HTTP_PARSE_COMPLETE,  /* *request is filled in; request->head_length bytes are used */
    HTTP_PARSE_ERROR,     /* *error says what to answer; then close the connection */
};

/* ANCHOR: parser_state */
/* The parse position: what survives from one call (one loop turn) to the next. */
typedef struct http_parser {
    size_t max_head;   /* the most a head may take, in bytes */
    size_t scanned;    /* bytes searched for a line end so far: the next search starts here */
    size_t line_start; /* where the line being received starts */
    bool seen_request_line;
    bool finished;                    /* COMPLETE or ERROR was returned */
    bool says_close, says_keep_alive; /* from Connection headers so far */
    http_request request;             /* filled in line by line */
    size_t bytes_searched;            /* total bytes the line-end search looked at (for tests) */
} http_parser;
/* ANCHOR_END: parser_state */

/* Start a new head. max_head must be > 0 (else EVQ_EINVAL). */
int http_parser_init(http_parser *parser, size_t max_head);

/* Carry on parsing. data[0, length) is every byte of the head received so
 * far (the same bytes as last time, maybe more of them). Returns an
 * http_parse_result, or EVQ_EINVAL for misuse (NULL arguments, or fewer
 * bytes than the parser has already seen). After COMPLETE or ERROR the
 * parser must be initialised again before the next head. */
int http_parse(http_parser *parser, const char *data, size_t length, http_request *request,
               http_error *error);

/* The reason phrase of a status code the server sends ("Bad Request"). */
const char *http_status_text(int status);

#endif
