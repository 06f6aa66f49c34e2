/* evq_thread.h - thin thread, mutex and condition variable wrappers over
 * pthreads and Win32, so that chapters and tests read the same on every OS.
 * Functions that can fail return 0 or an EVQ_E* code.
 */
#ifndef EVQ_THREAD_H
#define EVQ_THREAD_H

#include <stdint.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef struct evq_thread {
    HANDLE handle;
} evq_thread;
typedef struct evq_mutex {
    SRWLOCK lock;
} evq_mutex;
typedef struct evq_cond {
    CONDITION_VARIABLE cond;
} evq_cond;
#else
#include <pthread.h>
typedef struct evq_thread {
    pthread_t handle;
} evq_thread;
typedef struct evq_mutex {
    pthread_mutex_t lock;
} evq_mutex;
typedef struct evq_cond {
    pthread_cond_t cond;
} evq_cond;
#endif

typedef void (*evq_thread_fn)(void *arg);

/* Start a thread running fn(arg). */
int evq_thread_start(evq_thread *thread, evq_thread_fn fn, void *arg);
/* Wait for the thread to finish and release it. */
int evq_thread_join(evq_thread *thread);

int evq_mutex_init(evq_mutex *mutex);
void evq_mutex_destroy(evq_mutex *mutex);
void evq_mutex_lock(evq_mutex *mutex);
void evq_mutex_unlock(evq_mutex *mutex);

int evq_cond_init(evq_cond *cond);
void evq_cond_destroy(evq_cond *cond);
void evq_cond_wait(evq_cond *cond, evq_mutex *mutex);
/* Wait at most timeout_ms (measured on a monotonic clock). Returns 0 when
 * signalled (or woken spuriously: callers re-check their predicate) and
 * EVQ_ETIMEDOUT when the time ran out. */
int evq_cond_timedwait(evq_cond *cond, evq_mutex *mutex, uint32_t timeout_ms);
void evq_cond_signal(evq_cond *cond);
void evq_cond_broadcast(evq_cond *cond);

void evq_sleep_ms(uint32_t ms);
void evq_thread_yield(void);

/* A small id for the calling thread (1, 2, 3... in order of first call). */
unsigned evq_thread_id(void);

#endif
