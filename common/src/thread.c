/* thread.c - threads, mutexes and condition variables on pthreads and Win32. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "evq_thread.h"
#include "evq_error.h"

#include <stdatomic.h>
#include <stdlib.h>

#ifndef _WIN32
#include <errno.h>
#include <sched.h>
#include <time.h>
#endif

struct thread_start {
    evq_thread_fn fn;
    void *arg;
};

static atomic_uint next_thread_id = 1;
static _Thread_local unsigned current_thread_id;

unsigned evq_thread_id(void)
{
    if (current_thread_id == 0)
        current_thread_id = atomic_fetch_add_explicit(&next_thread_id, 1, memory_order_relaxed);
    return current_thread_id;
}

#ifdef _WIN32

static DWORD WINAPI thread_main(LPVOID param)
{
    struct thread_start start = *(struct thread_start *)param;
    free(param);
    start.fn(start.arg);
    return 0;
}

int evq_thread_start(evq_thread *thread, evq_thread_fn fn, void *arg)
{
    struct thread_start *start = malloc(sizeof *start);
    if (!start)
        return EVQ_ENOMEM;
    start->fn = fn;
    start->arg = arg;
    thread->handle = CreateThread(NULL, 0, thread_main, start, 0, NULL);
    if (!thread->handle) {
        free(start);
        return evq_error_from_win32(GetLastError());
    }
    return 0;
}

int evq_thread_join(evq_thread *thread)
{
    if (WaitForSingleObject(thread->handle, INFINITE) != WAIT_OBJECT_0)
        return evq_error_from_win32(GetLastError());
    CloseHandle(thread->handle);
    thread->handle = NULL;
    return 0;
}

int evq_mutex_init(evq_mutex *mutex)
{
    InitializeSRWLock(&mutex->lock);
    return 0;
}

void evq_mutex_destroy(evq_mutex *mutex)
{
    (void)mutex; /* SRW locks own no resources */
}

void evq_mutex_lock(evq_mutex *mutex)
{
    AcquireSRWLockExclusive(&mutex->lock);
}

void evq_mutex_unlock(evq_mutex *mutex)
{
    ReleaseSRWLockExclusive(&mutex->lock);
}

int evq_cond_init(evq_cond *cond)
{
    InitializeConditionVariable(&cond->cond);
    return 0;
}

void evq_cond_destroy(evq_cond *cond)
{
    (void)cond;
}

void evq_cond_wait(evq_cond *cond, evq_mutex *mutex)
{
    SleepConditionVariableSRW(&cond->cond, &mutex->lock, INFINITE, 0);
}

int evq_cond_timedwait(evq_cond *cond, evq_mutex *mutex, uint32_t timeout_ms)
{
    if (SleepConditionVariableSRW(&cond->cond, &mutex->lock, timeout_ms, 0))
        return 0;
    return GetLastError() == ERROR_TIMEOUT ? EVQ_ETIMEDOUT : 0;
}

void evq_cond_signal(evq_cond *cond)
{
    WakeConditionVariable(&cond->cond);
}

void evq_cond_broadcast(evq_cond *cond)
{
    WakeAllConditionVariable(&cond->cond);
}

void evq_sleep_ms(uint32_t ms)
{
    Sleep(ms);
}

void evq_thread_yield(void)
{
    SwitchToThread();
}

#else /* POSIX */

static void *thread_main(void *param)
{
    struct thread_start start = *(struct thread_start *)param;
    free(param);
    start.fn(start.arg);
    return NULL;
}

int evq_thread_start(evq_thread *thread, evq_thread_fn fn, void *arg)
{
    struct thread_start *start = malloc(sizeof *start);
    if (!start)
        return EVQ_ENOMEM;
    start->fn = fn;
    start->arg = arg;
    int rc = pthread_create(&thread->handle, NULL, thread_main, start);
    if (rc != 0) {
        free(start);
        return evq_error_from_errno(rc);
    }
    return 0;
}

int evq_thread_join(evq_thread *thread)
{
    int rc = pthread_join(thread->handle, NULL);
    return rc == 0 ? 0 : evq_error_from_errno(rc);
}

int evq_mutex_init(evq_mutex *mutex)
{
    int rc = pthread_mutex_init(&mutex->lock, NULL);
    return rc == 0 ? 0 : evq_error_from_errno(rc);
}

void evq_mutex_destroy(evq_mutex *mutex)
{
    pthread_mutex_destroy(&mutex->lock);
}

void evq_mutex_lock(evq_mutex *mutex)
{
    pthread_mutex_lock(&mutex->lock);
}

void evq_mutex_unlock(evq_mutex *mutex)
{
    pthread_mutex_unlock(&mutex->lock);
}

int evq_cond_init(evq_cond *cond)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return evq_error_from_errno(rc);
#ifndef __APPLE__
    /* Time out on the monotonic clock, so that a wall-clock step does not
     * stretch or cut a wait. macOS lacks setclock; it uses a relative wait. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    rc = pthread_cond_init(&cond->cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? 0 : evq_error_from_errno(rc);
}

void evq_cond_destroy(evq_cond *cond)
{
    pthread_cond_destroy(&cond->cond);
}

void evq_cond_wait(evq_cond *cond, evq_mutex *mutex)
{
    pthread_cond_wait(&cond->cond, &mutex->lock);
}

int evq_cond_timedwait(evq_cond *cond, evq_mutex *mutex, uint32_t timeout_ms)
{
    struct timespec ts;
#ifdef __APPLE__
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    int rc = pthread_cond_timedwait_relative_np(&cond->cond, &mutex->lock, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = pthread_cond_timedwait(&cond->cond, &mutex->lock, &ts);
#endif
    return rc == ETIMEDOUT ? EVQ_ETIMEDOUT : 0;
}

void evq_cond_signal(evq_cond *cond)
{
    pthread_cond_signal(&cond->cond);
}

void evq_cond_broadcast(evq_cond *cond)
{
    pthread_cond_broadcast(&cond->cond);
}

void evq_sleep_ms(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    /* nanosleep reports the time left when a signal interrupts it: sleep on. */
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

void evq_thread_yield(void)
{
    sched_yield();
}

#endif
