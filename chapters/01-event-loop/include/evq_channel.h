/* evq_channel.h - a bounded channel of messages from producer threads to the
 * loop thread (many senders, one receiver).
 *
 * Nothing here blocks a sender: a full channel says EVQ_EFULL and keeps what
 * it has, and the sender decides what to do (retry later, drop, slow down).
 * The receiver takes messages with evq_channel_try_recv(), which never blocks
 * either; when it has nothing else to do it may sleep in evq_channel_wait()
 * until a message arrives, someone calls evq_channel_wake(), or time runs out.
 */
#ifndef EVQ_CHANNEL_H
#define EVQ_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evq_thread.h"

#define EVQ_MESSAGE_TEXT_MAX 48 /* bytes of a message's text, with its NUL */

/* A message's flags. */
enum {
    /* This message is one part of a longer record and more parts follow from
     * the same sender; the part without this flag ends the record. */
    EVQ_MESSAGE_PART = 1u << 0,
};

typedef struct evq_message {
    uint32_t sender;     /* which producer: 0, 1, 2... */
    uint32_t flags;      /* EVQ_MESSAGE_PART */
    uint64_t sequence;   /* the sender's own count: 0, 1, 2... */
    uint64_t sent_at_ns; /* when it was sent, on the sender's clock */
    char text[EVQ_MESSAGE_TEXT_MAX];
} evq_message;

/* Copy `length` bytes of text into the message and terminate it.
 * EVQ_EMSGSIZE when they do not fit (the message is not changed). */
int evq_message_set_text(evq_message *message, const char *text, size_t length);

typedef struct evq_channel {
    evq_mutex lock;     /* guards everything below */
    evq_cond ready;     /* signalled when a message arrives or on a wake */
    evq_message *slots; /* a ring of `capacity` messages */
    size_t capacity;
    size_t head; /* the oldest message */
    size_t count;
    bool wake_pending; /* evq_channel_wake() was called; the next wait returns */
} evq_channel;

/* EVQ_EINVAL for a capacity of 0, EVQ_ENOMEM. */
int evq_channel_init(evq_channel *channel, size_t capacity);
void evq_channel_destroy(evq_channel *channel);

/* Any thread. 0, or EVQ_EFULL when the channel holds `capacity` messages
 * already: the message is not taken and nothing else changes. Never blocks
 * beyond the channel's short lock. */
int evq_channel_try_send(evq_channel *channel, const evq_message *message);

/* The receiving thread. 0 and the oldest message in *out, or EVQ_EWOULDBLOCK
 * when the channel is empty. Never waits for a message. */
int evq_channel_try_recv(evq_channel *channel, evq_message *out);

/* The receiving thread. Sleep until the channel holds a message, a wake is
 * pending (it is consumed), or timeout_ns have passed on the monotonic clock.
 * Returns 0 in the first two cases and EVQ_ETIMEDOUT in the last; 0 ns only
 * looks. It does not take a message: call evq_channel_try_recv() next. */
int evq_channel_wait(evq_channel *channel, uint64_t timeout_ns);

/* Any thread (not a signal handler: it takes a lock). Make the current or
 * the next evq_channel_wait() return at once. */
void evq_channel_wake(evq_channel *channel);

/* How many messages it holds now (a snapshot: senders may add more). */
size_t evq_channel_count(evq_channel *channel);

#endif
