/* buffer.h - a stream's read buffer and write queue: plain data structures,
 * no system calls, the same on every backend.
 *
 * Read buffer: one contiguous block, so that a parser can look at every
 * buffered byte at once (evq_tcp_peek).
 *   - Allocated lazily, at read_initial bytes, by the first fill.
 *   - When a fill finds no room at the end: unread bytes are first moved to
 *     the front (compaction); if they still take more than half the block,
 *     it doubles, never beyond read_max. So a fill always has room for at
 *     least half a block, unless read_max unread bytes are waiting: then the
 *     caller must consume before anything more is read (backpressure on the
 *     reading side - the kernel's window closes and the peer slows down).
 *   - Shrink when idle, not on every empty: an emptied block larger than
 *     read_initial shrinks back to read_initial only once the socket has
 *     been found empty (the last fill ended in EAGAIN with room left). A
 *     streaming reader's fills end with the buffer full, so it keeps its
 *     size; shrinking on every empty made it grow from read_initial again
 *     after every consume (5x the receive calls, measured). read_buffer_
 *     release frees the block outright when no more data can come (EOF, an
 *     error). The cost of an idle connection is therefore read_initial
 *     bytes (4 KiB by default) once it has read anything, and 0 before;
 *     evq_tcp_stats.read_capacity shows it.
 *   - `seen` counts the unread bytes at the front that the caller has been
 *     shown (evq_tcp_peek): poll.c reports READABLE only for bytes past it.
 *
 * Write queue: a chain of chunks, never reallocated, so that bytes handed
 * to the kernel stay where they are until it is done with them (IOCP lends
 * them to WSASend until the completion comes back; readiness backends copy
 * them during send(), which is simply the short case of the same rule).
 *   - Push copies at most (limit - queued) bytes: the queue never holds more
 *     than the caller's write_high.
 *   - A chunk holds WRITE_CHUNK_SIZE bytes (16 KiB, one malloc with its
 *     header). Push fills the tail chunk's free space first, then appends
 *     new chunks; appending never moves bytes already queued.
 *   - Pop frees each chunk as soon as all its bytes are sent: an empty queue
 *     costs no memory at all.
 */
#ifndef EVQ_BUFFER_H
#define EVQ_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

/* ---- the read buffer ---- */

struct read_buffer {
    char *data;    /* NULL until the first fill */
    size_t start;  /* data[start .. end) is received and not yet consumed */
    size_t end;
    size_t seen;   /* the first `seen` of those the caller has been shown */
    size_t capacity;
    size_t capacity_peak;
};

/* Room to receive into, at the end of the unread bytes: *space and *len.
 * Allocates, compacts or grows as described above. *len == 0 means the
 * buffer is full at read_max (or its limits were lowered below what it
 * holds): consume first. EVQ_ENOMEM if the allocation failed. */
int read_buffer_reserve(struct read_buffer *rb, size_t read_initial, size_t read_max,
                        char **space, size_t *len);
/* n bytes were received into the space read_buffer_reserve gave. */
void read_buffer_commit(struct read_buffer *rb, size_t n);

static inline size_t read_buffer_length(const struct read_buffer *rb)
{
    return rb->end - rb->start;
}
static inline const char *read_buffer_data(const struct read_buffer *rb)
{
    return rb->data ? rb->data + rb->start : NULL;
}
static inline size_t read_buffer_unseen(const struct read_buffer *rb)
{
    return rb->end - rb->start - rb->seen;
}
static inline void read_buffer_mark_seen(struct read_buffer *rb)
{
    rb->seen = rb->end - rb->start;
}
/* Full at read_max: read_buffer_reserve has no room to give. */
static inline bool read_buffer_full(const struct read_buffer *rb, size_t read_max)
{
    return rb->capacity > 0 && rb->end - rb->start == rb->capacity && rb->capacity >= read_max;
}
/* Drop the first n (<= length) unread bytes (seen ones first); an emptied
 * buffer rewinds. n == 0 touches nothing: on IOCP the kernel may be
 * receiving into an empty buffer. */
void read_buffer_consume(struct read_buffer *rb, size_t n);
/* An empty block larger than read_initial shrinks back to it (the stream
 * looks idle: see above). */
void read_buffer_shrink(struct read_buffer *rb, size_t read_initial);
/* Free the block if it holds no unread bytes (the read side has ended). */
void read_buffer_release(struct read_buffer *rb);
/* Free the block, unread bytes and all. */
void read_buffer_free(struct read_buffer *rb);

/* ---- the write queue ---- */

#define WRITE_CHUNK_SIZE 16384

struct write_chunk {
    struct write_chunk *next;
    size_t start; /* data[start .. end) is queued and not yet sent */
    size_t end;
    char data[];  /* WRITE_CHUNK_SIZE bytes */
};

struct write_queue {
    struct write_chunk *head, *tail;
    size_t queued;      /* bytes pushed and not yet popped */
    size_t queued_peak; /* the most it ever held */
};

/* One run of contiguous queued bytes, for an iovec (sendmsg) or a WSABUF. */
struct write_segment {
    const char *data;
    size_t len;
};

/* Copy the first min(len, limit - queued) bytes of data into the queue;
 * *taken says how many. EVQ_ENOMEM only when nothing could be taken. */
int write_queue_push(struct write_queue *q, const void *data, size_t len, size_t limit,
                     size_t *taken);
/* The first queued bytes as at most max segments, in order; returns the
 * number of segments written (0: the queue is empty). The memory stays put
 * until those bytes are popped. */
size_t write_queue_segments(const struct write_queue *q, struct write_segment *segments,
                            size_t max);
/* n (<= queued) bytes from the front were sent: free the chunks they
 * emptied. */
void write_queue_pop(struct write_queue *q, size_t n);
/* Drop everything queued (a failed connection, a closed stream). */
void write_queue_clear(struct write_queue *q);

static inline bool write_queue_empty(const struct write_queue *q)
{
    return q->queued == 0;
}

#endif
