/* channel.c - a bounded many-to-one channel on a mutex and a condition
 * variable. The lock is held only to copy one message in or out. */
#include "evq_channel.h"

#include "evq_clock.h"
#include "evq_error.h"

#include <stdlib.h>
#include <string.h>

int evq_message_set_text(evq_message *message, const char *text, size_t length)
{
    if (length >= sizeof message->text)
        return EVQ_EMSGSIZE;
    memcpy(message->text, text, length);
    message->text[length] = '\0';
    return 0;
}

int evq_channel_init(evq_channel *channel, size_t capacity)
{
    memset(channel, 0, sizeof *channel);
    if (capacity == 0)
        return EVQ_EINVAL;
    channel->slots = calloc(capacity, sizeof *channel->slots);
    if (!channel->slots)
        return EVQ_ENOMEM;
    int rc = evq_mutex_init(&channel->lock);
    if (rc != 0)
        goto fail_mutex;
    rc = evq_cond_init(&channel->ready);
    if (rc != 0)
        goto fail_cond;
    channel->capacity = capacity;
    return 0;

fail_cond:
    evq_mutex_destroy(&channel->lock);
fail_mutex:
    free(channel->slots);
    channel->slots = NULL;
    return rc;
}

void evq_channel_destroy(evq_channel *channel)
{
    if (!channel->slots)
        return;
    evq_cond_destroy(&channel->ready);
    evq_mutex_destroy(&channel->lock);
    free(channel->slots);
    memset(channel, 0, sizeof *channel);
}

/* ANCHOR: try_send */
int evq_channel_try_send(evq_channel *channel, const evq_message *message)
{
    evq_mutex_lock(&channel->lock);
    if (channel->count == channel->capacity) {
        evq_mutex_unlock(&channel->lock);
        return EVQ_EFULL; /* the sender keeps its message and decides */
    }
    channel->slots[(channel->head + channel->count) % channel->capacity] = *message;
    channel->count++;
    /* One receiver: waking it is enough, and cheap when it is not asleep. */
    evq_cond_signal(&channel->ready);
    evq_mutex_unlock(&channel->lock);
    return 0;
}
/* ANCHOR_END: try_send */

/* ANCHOR: try_recv */
int evq_channel_try_recv(evq_channel *channel, evq_message *out)
{
    evq_mutex_lock(&channel->lock);
    if (channel->count == 0) {
        evq_mutex_unlock(&channel->lock);
        return EVQ_EWOULDBLOCK; /* "nothing now", never "wait for it" */
    }
    *out = channel->slots[channel->head];
    channel->head = (channel->head + 1) % channel->capacity;
    channel->count--;
    evq_mutex_unlock(&channel->lock);
    return 0;
}
/* ANCHOR_END: try_recv */

/* ANCHOR: wait */
int evq_channel_wait(evq_channel *channel, uint64_t timeout_ns)
{
    uint64_t deadline = evq_sat_add(evq_clock_now_ns(), timeout_ns);
    int rc = 0;
    evq_mutex_lock(&channel->lock);
    while (channel->count == 0 && !channel->wake_pending) {
        /* Woken early (a spurious wakeup) or not, wait only for what is
         * left, never for the whole timeout again. */
        uint64_t left = evq_sat_sub(deadline, evq_clock_now_ns());
        if (left == 0) {
            rc = EVQ_ETIMEDOUT;
            break;
        }
        evq_cond_timedwait(&channel->ready, &channel->lock,
                           (uint32_t)evq_ns_to_timeout_ms(left)); /* rounded up */
    }
    channel->wake_pending = false;
    evq_mutex_unlock(&channel->lock);
    return rc;
}
/* ANCHOR_END: wait */

void evq_channel_wake(evq_channel *channel)
{
    evq_mutex_lock(&channel->lock);
    /* A flag, not just a signal: a wake that comes while the receiver is not
     * yet asleep must still end its next wait. */
    channel->wake_pending = true;
    evq_cond_signal(&channel->ready);
    evq_mutex_unlock(&channel->lock);
}

size_t evq_channel_count(evq_channel *channel)
{
    evq_mutex_lock(&channel->lock);
    size_t count = channel->count;
    evq_mutex_unlock(&channel->lock);
    return count;
}
