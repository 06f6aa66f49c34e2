/* buffer.c - the read buffer and the write queue of buffer.h. */
#include "buffer.h"

#include "evq_error.h"

#include <stdlib.h>
#include <string.h>

/* ---- the read buffer ---- */

static void note_capacity(struct read_buffer *rb, size_t capacity)
{
    rb->capacity = capacity;
    if (capacity > rb->capacity_peak)
        rb->capacity_peak = capacity;
}

/* ANCHOR: grow */
int read_buffer_reserve(struct read_buffer *rb, size_t read_initial, size_t read_max,
                        char **space, size_t *len)
{
    *space = NULL;
    *len = 0;
    if (!rb->data) { /* lazily: a stream that never reads costs nothing */
        if (!(rb->data = malloc(read_initial)))
            return EVQ_ENOMEM;
        note_capacity(rb, read_initial);
    }
    if (rb->end == rb->capacity) {
        /* No room at the end. Slide the unread bytes to the front first:
         * after a parser consumed most of the block, that is room enough. */
        size_t unread = rb->end - rb->start;
        if (rb->start > 0) {
            memmove(rb->data, rb->data + rb->start, unread);
            rb->start = 0;
            rb->end = unread;
        }
        /* Still mostly unread data: the reader is behind, or one message is
         * larger than the block. Double, but never past read_max. */
        if (unread > rb->capacity / 2 && rb->capacity < read_max) {
            size_t bigger = rb->capacity > read_max / 2 ? read_max : rb->capacity * 2;
            char *grown = realloc(rb->data, bigger);
            if (!grown && rb->end == rb->capacity)
                return EVQ_ENOMEM; /* (with some room left, make do with it) */
            if (grown) {
                rb->data = grown;
                note_capacity(rb, bigger);
            }
        }
    }
    if (rb->end < rb->capacity) {
        *space = rb->data + rb->end;
        *len = rb->capacity - rb->end;
    }
    return 0; /* *len == 0: full at read_max, consume first */
}
/* ANCHOR_END: grow */

void read_buffer_commit(struct read_buffer *rb, size_t n)
{
    rb->end += n;
}

/* ANCHOR: shrink */
void read_buffer_consume(struct read_buffer *rb, size_t n)
{
    /* Nothing to drop, nothing to touch: an empty block may be lent to an
     * IOCP receive right now, and moving it would be a use-after-free. */
    if (n == 0)
        return;
    rb->start += n;
    rb->seen = rb->seen > n ? rb->seen - n : 0;
    if (rb->start == rb->end)
        rb->start = rb->end = 0; /* emptied: the next fill starts at the front */
}

/* Only for an empty block, and only once the socket was found empty: give
 * back what a burst made it grow to, so that an idle stream keeps
 * read_initial bytes, not the largest block it ever had. */
void read_buffer_shrink(struct read_buffer *rb, size_t read_initial)
{
    if (rb->start != rb->end || rb->capacity <= read_initial)
        return;
    char *smaller = realloc(rb->data, read_initial);
    if (smaller) { /* a failed shrink keeps the larger block: still correct */
        rb->data = smaller;
        rb->capacity = read_initial;
    }
}
/* ANCHOR_END: shrink */

void read_buffer_release(struct read_buffer *rb)
{
    if (rb->start == rb->end)
        read_buffer_free(rb);
}

void read_buffer_free(struct read_buffer *rb)
{
    free(rb->data);
    rb->data = NULL;
    rb->start = rb->end = rb->seen = rb->capacity = 0;
}

/* ---- the write queue ---- */

int write_queue_push(struct write_queue *q, const void *data, size_t len, size_t limit,
                     size_t *taken)
{
    *taken = 0;
    size_t room = q->queued < limit ? limit - q->queued : 0;
    size_t want = len < room ? len : room;
    const char *from = data;
    while (*taken < want) {
        struct write_chunk *tail = q->tail;
        if (!tail || tail->end == WRITE_CHUNK_SIZE) {
            /* The tail is full (or there is none): a new chunk. Bytes already
             * queued never move, whatever the kernel is doing with them. */
            struct write_chunk *chunk = malloc(sizeof *chunk + WRITE_CHUNK_SIZE);
            if (!chunk)
                break;
            chunk->next = NULL;
            chunk->start = chunk->end = 0;
            if (tail)
                tail->next = chunk;
            else
                q->head = chunk;
            q->tail = tail = chunk;
        }
        size_t part = WRITE_CHUNK_SIZE - tail->end;
        if (part > want - *taken)
            part = want - *taken;
        memcpy(tail->data + tail->end, from + *taken, part);
        tail->end += part;
        *taken += part;
    }
    q->queued += *taken;
    if (q->queued > q->queued_peak)
        q->queued_peak = q->queued;
    return *taken == 0 && want > 0 ? EVQ_ENOMEM : 0;
}

size_t write_queue_segments(const struct write_queue *q, struct write_segment *segments,
                            size_t max)
{
    size_t count = 0;
    for (const struct write_chunk *c = q->head; c && count < max; c = c->next) {
        if (c->end == c->start)
            continue;
        segments[count].data = c->data + c->start;
        segments[count].len = c->end - c->start;
        count++;
    }
    return count;
}

void write_queue_pop(struct write_queue *q, size_t n)
{
    q->queued -= n;
    while (n > 0 && q->head) {
        struct write_chunk *head = q->head;
        size_t in_head = head->end - head->start;
        size_t part = n < in_head ? n : in_head;
        head->start += part;
        n -= part;
        if (head->start == head->end) {
            q->head = head->next;
            if (!q->head)
                q->tail = NULL;
            free(head);
        }
    }
}

void write_queue_clear(struct write_queue *q)
{
    while (q->head) {
        struct write_chunk *next = q->head->next;
        free(q->head);
        q->head = next;
    }
    q->tail = NULL;
    q->queued = 0;
}
